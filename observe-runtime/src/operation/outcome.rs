//! How a call's return value is classified, and its error described.
//!
//! Classification happens at the annotated function, where the return type
//! is concrete, by method-resolution priority ("autoref specialisation"):
//! `(&Wrap(&value)).__observe_err()` picks [`IsResult`] when the value is a
//! `core::result::Result` (whatever alias names it) and [`NotResult`]
//! otherwise. The error is then described the same way: by `Display` if it
//! has one, else by `Debug`, else by its type name alone.

use std::borrow::Cow;
use std::fmt;

/// Borrows a return value for classification.
#[doc(hidden)]
#[derive(Debug)]
pub struct Wrap<'a, T: ?Sized>(pub &'a T);

/// An uninhabited error type: what a non-`Result` value "returns" as error.
#[doc(hidden)]
#[derive(Debug)]
pub enum Never {}

impl fmt::Display for Never {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {}
    }
}

/// Chosen for `core::result::Result<T, E>`.
#[doc(hidden)]
pub trait IsResult<'a> {
    /// The error type.
    type Err: ?Sized;
    /// The error, if the value is `Err`.
    fn __observe_err(&self) -> Option<&'a Self::Err>;
}

impl<'a, T, E> IsResult<'a> for Wrap<'a, Result<T, E>> {
    type Err = E;
    #[inline]
    fn __observe_err(&self) -> Option<&'a E> {
        self.0.as_ref().err()
    }
}

/// Chosen for every other type.
#[doc(hidden)]
pub trait NotResult {
    /// Never an error.
    fn __observe_err(&self) -> Option<&'static Never>;
}

impl<T: ?Sized> NotResult for &Wrap<'_, T> {
    #[inline]
    fn __observe_err(&self) -> Option<&'static Never> {
        None
    }
}

/// Borrows an error for description.
#[doc(hidden)]
#[derive(Debug)]
pub struct ErrWrap<'a, E: ?Sized>(pub &'a E);

/// What the log line and the metrics say of a returned error.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct ErrorInfo<'a> {
    type_name: &'static str,
    message: Message<'a>,
}

#[derive(Clone, Copy)]
enum Message<'a> {
    Display(&'a dyn fmt::Display),
    Debug(&'a dyn fmt::Debug),
    None,
}

impl fmt::Debug for ErrorInfo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorInfo")
            .field("type_name", &self.type_name)
            .field("message", &format_args!("{self}"))
            .finish()
    }
}

impl fmt::Display for ErrorInfo<'_> {
    /// The error's `Display`, else its `Debug`, else its short type name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.message {
            Message::Display(d) => d.fmt(f),
            Message::Debug(d) => d.fmt(f),
            Message::None => f.write_str(&short_type_name(self.type_name)),
        }
    }
}

impl ErrorInfo<'_> {
    /// The error's short type name (`io::Error` becomes `Error`,
    /// `my::E<alloc::string::String>` becomes `E<String>`).
    pub(crate) fn short_type_name(&self) -> Cow<'static, str> {
        short_type_name(self.type_name)
    }
}

/// Preferred: the error has `Display`.
#[doc(hidden)]
pub trait DescribeDisplay<'a> {
    /// Describes the error.
    fn __observe_describe(&self) -> ErrorInfo<'a>;
}

impl<'a, E: fmt::Display> DescribeDisplay<'a> for &ErrWrap<'a, E> {
    fn __observe_describe(&self) -> ErrorInfo<'a> {
        ErrorInfo {
            type_name: std::any::type_name::<E>(),
            message: Message::Display(self.0),
        }
    }
}

/// Second choice: the error has `Debug`.
#[doc(hidden)]
pub trait DescribeDebug<'a> {
    /// Describes the error.
    fn __observe_describe(&self) -> ErrorInfo<'a>;
}

impl<'a, E: fmt::Debug> DescribeDebug<'a> for &&ErrWrap<'a, E> {
    fn __observe_describe(&self) -> ErrorInfo<'a> {
        ErrorInfo {
            type_name: std::any::type_name::<E>(),
            message: Message::Debug(self.0),
        }
    }
}

/// Last resort: only the type name is known.
#[doc(hidden)]
pub trait DescribeName<'a> {
    /// Describes the error.
    fn __observe_describe(&self) -> ErrorInfo<'a>;
}

impl<'a, E: ?Sized> DescribeName<'a> for ErrWrap<'a, E> {
    fn __observe_describe(&self) -> ErrorInfo<'a> {
        ErrorInfo {
            type_name: std::any::type_name::<E>(),
            message: Message::None,
        }
    }
}

/// Drops module paths from every path in a type name.
pub(crate) fn short_type_name(full: &'static str) -> Cow<'static, str> {
    const DELIMS: &[char] = &['<', '>', ',', ' ', '(', ')', '[', ']', '&', ';', '*'];
    if !full.contains(DELIMS) {
        return Cow::Borrowed(full.rsplit("::").next().unwrap_or(full));
    }
    let mut out = String::with_capacity(full.len());
    let mut segment_start = 0;
    let mut rest = full;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("::") {
            out.truncate(segment_start);
            rest = after;
            continue;
        }
        let Some(c) = rest.chars().next() else { break };
        out.push(c);
        if DELIMS.contains(&c) {
            segment_start = out.len();
        }
        rest = &rest[c.len_utf8()..];
    }
    Cow::Owned(out)
}

#[cfg(test)]
// The explicit borrows select the impl; removing them changes the meaning.
#[allow(clippy::needless_borrow)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(short_type_name("std::io::error::Error"), "Error");
        assert_eq!(short_type_name("Plain"), "Plain");
        assert_eq!(short_type_name("my::E<alloc::string::String>"), "E<String>");
        assert_eq!(short_type_name("&dyn core::error::Error"), "&dyn Error");
        assert_eq!(
            short_type_name("a::Pair<a::b::X, (u8, c::Y)>"),
            "Pair<X, (u8, Y)>"
        );
    }

    #[derive(Debug)]
    struct OnlyDebug;
    struct Opaque;

    #[test]
    fn classification_prefers_result_then_display_then_debug() {
        let ok: Result<u8, std::io::Error> = Ok(1);
        assert!((&Wrap(&ok)).__observe_err().is_none());

        let err: std::io::Result<u8> = Err(std::io::Error::other("disk full"));
        let e = (&Wrap(&err)).__observe_err().expect("is an error");
        let info = (&&ErrWrap(e)).__observe_describe();
        assert_eq!(info.to_string(), "disk full");
        assert_eq!(info.short_type_name(), "Error");

        let dbg: Result<(), OnlyDebug> = Err(OnlyDebug);
        let e = (&Wrap(&dbg)).__observe_err().expect("is an error");
        assert_eq!((&&ErrWrap(e)).__observe_describe().to_string(), "OnlyDebug");

        let opaque: Result<(), Opaque> = Err(Opaque);
        let e = (&Wrap(&opaque)).__observe_err().expect("is an error");
        assert_eq!((&&ErrWrap(e)).__observe_describe().to_string(), "Opaque");

        #[allow(dead_code)]
        enum Result2 {
            Err(u8),
        }
        let not_result = Result2::Err(1);
        assert!((&Wrap(&not_result)).__observe_err().is_none());
        assert!((&Wrap(&5u32)).__observe_err().is_none());
    }
}
