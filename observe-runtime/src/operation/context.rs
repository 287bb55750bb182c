//! Values a monitored call puts into its log lines' `context`, from the
//! attribute's `context(key = expr, ...)` option.
//!
//! They are rendered to JSON once, at call start, and only when a line
//! could be written; secret-looking keys are redacted then.

use std::fmt::{self, Write as _};

use crate::base::json;

/// A value that can be written into the log's `context` object.
///
/// Implemented for numbers, `bool`, `char`, strings, `Option` and
/// references; wrap anything else with `%` (Display) or `?` (Debug) in the
/// attribute: `context(user = %user, req = ?request)`. Anything else is a
/// compile error at the value that says so.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be put into the log context as it is",
    label = "not a number, bool or string",
    note = "write `key = %expr` to log it with Display, or `key = ?expr` to log it with Debug"
)]
pub trait ContextValue {
    /// Appends the value as JSON.
    fn write_json(&self, out: &mut String);
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl ContextValue for $t {
            fn write_json(&self, out: &mut String) {
                json::write_u64(out, u64::from(*self));
            }
        }
    )*};
}
macro_rules! signed {
    ($($t:ty),*) => {$(
        impl ContextValue for $t {
            fn write_json(&self, out: &mut String) {
                json::write_i64(out, i64::from(*self));
            }
        }
    )*};
}
unsigned!(u8, u16, u32, u64);
signed!(i8, i16, i32, i64);

impl ContextValue for usize {
    fn write_json(&self, out: &mut String) {
        json::write_u64(out, *self as u64);
    }
}

impl ContextValue for isize {
    fn write_json(&self, out: &mut String) {
        json::write_i64(out, *self as i64);
    }
}

impl ContextValue for u128 {
    fn write_json(&self, out: &mut String) {
        // JSON readers lose precision past 2^53; text keeps every digit.
        let _ = write!(out, "\"{self}\"");
    }
}

impl ContextValue for i128 {
    fn write_json(&self, out: &mut String) {
        let _ = write!(out, "\"{self}\"");
    }
}

impl ContextValue for f64 {
    fn write_json(&self, out: &mut String) {
        json::write_f64(out, *self);
    }
}

impl ContextValue for f32 {
    fn write_json(&self, out: &mut String) {
        json::write_f64(out, f64::from(*self));
    }
}

impl ContextValue for bool {
    fn write_json(&self, out: &mut String) {
        json::write_bool(out, *self);
    }
}

impl ContextValue for char {
    fn write_json(&self, out: &mut String) {
        let mut buf = [0u8; 4];
        json::write_escaped(out, self.encode_utf8(&mut buf));
    }
}

impl ContextValue for str {
    fn write_json(&self, out: &mut String) {
        crate::log::write_context_str(out, self);
    }
}

impl ContextValue for String {
    fn write_json(&self, out: &mut String) {
        crate::log::write_context_str(out, self);
    }
}

impl ContextValue for std::borrow::Cow<'_, str> {
    fn write_json(&self, out: &mut String) {
        crate::log::write_context_str(out, self);
    }
}

impl ContextValue for std::sync::Arc<str> {
    fn write_json(&self, out: &mut String) {
        crate::log::write_context_str(out, self);
    }
}

impl ContextValue for Box<str> {
    fn write_json(&self, out: &mut String) {
        crate::log::write_context_str(out, self);
    }
}

impl ContextValue for crate::correlation::CorrelationId {
    fn write_json(&self, out: &mut String) {
        out.push('"');
        self.write_to(out);
        out.push('"');
    }
}

impl<T: ContextValue + ?Sized> ContextValue for &T {
    fn write_json(&self, out: &mut String) {
        (**self).write_json(out);
    }
}

impl<T: ContextValue + ?Sized> ContextValue for &mut T {
    fn write_json(&self, out: &mut String) {
        (**self).write_json(out);
    }
}

impl<T: ContextValue> ContextValue for Option<T> {
    fn write_json(&self, out: &mut String) {
        match self {
            Some(v) => v.write_json(out),
            None => out.push_str("null"),
        }
    }
}

/// Writes a value with its `Display` implementation (`key = %expr`).
#[doc(hidden)]
#[derive(Debug)]
pub struct DisplayValue<'a, T: ?Sized>(&'a T);

/// Writes a value with its `Debug` implementation (`key = ?expr`).
#[doc(hidden)]
#[derive(Debug)]
pub struct DebugValue<'a, T: ?Sized>(&'a T);

/// Wraps a value to be logged with `Display`.
#[doc(hidden)]
pub fn display<T: fmt::Display + ?Sized>(value: &T) -> DisplayValue<'_, T> {
    DisplayValue(value)
}

/// Wraps a value to be logged with `Debug`.
#[doc(hidden)]
pub fn debug<T: fmt::Debug + ?Sized>(value: &T) -> DebugValue<'_, T> {
    DebugValue(value)
}

impl<T: fmt::Display + ?Sized> ContextValue for DisplayValue<'_, T> {
    fn write_json(&self, out: &mut String) {
        crate::log::write_context_value(out, self.0);
    }
}

impl<T: fmt::Debug + ?Sized> ContextValue for DebugValue<'_, T> {
    fn write_json(&self, out: &mut String) {
        crate::log::write_context_value(out, format_args!("{:?}", self.0));
    }
}

/// Collects a call's context fields as the inside of a JSON object.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct ContextWriter {
    json: String,
}

impl ContextWriter {
    /// Adds `key: value`, redacting the value when the key looks secret.
    ///
    /// Keys come from the attribute, which only accepts `[A-Za-z0-9_.]`
    /// identifiers, so they need no escaping.
    pub fn field<V: ContextValue + ?Sized>(&mut self, key: &'static str, value: &V) {
        if !self.json.is_empty() {
            self.json.push(',');
        }
        json::write_escaped(&mut self.json, key);
        self.json.push(':');
        if crate::log::redactor().is_secret(key) {
            json::write_escaped(&mut self.json, crate::log::REDACTED);
        } else {
            value.write_json(&mut self.json);
        }
    }

    pub(crate) fn into_json(self) -> Option<String> {
        (!self.json.is_empty()).then_some(self.json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_redacts() {
        let mut w = ContextWriter::default();
        w.field("entity_id", "sensor.kitchen");
        w.field("count", &3u32);
        w.field("ratio", &0.5f64);
        w.field("user", &display(&"a\"b"));
        w.field("req", &debug(&vec![1, 2]));
        w.field("api_token", "hunter2");
        w.field("maybe", &None::<u8>);
        let json = format!("{{{}}}", w.into_json().expect("fields"));
        let v: serde_json::Value = serde_json::from_str(&json).expect("valid json");
        assert_eq!(v["entity_id"], "sensor.kitchen");
        assert_eq!(v["count"], 3);
        assert_eq!(v["ratio"], 0.5);
        assert_eq!(v["user"], "a\"b");
        assert_eq!(v["req"], "[1, 2]");
        assert_eq!(v["api_token"], "[REDACTED]");
        assert!(v["maybe"].is_null());
    }
}
