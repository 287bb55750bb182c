//! The resource every signal is sent with, and the attribute values the
//! traces and logs share.

use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::correlation::lower_hex;

/// The instrumentation scope of every span and log record.
pub(crate) const SCOPE_NAME: &str = "observe";

/// `service.name`, `service.version` (when known), then `attributes` (the
/// configured ones and `OTEL_RESOURCE_ATTRIBUTES`) except any that would
/// repeat a key already set: the first one given wins.
pub(crate) fn build(
    service: &str,
    version: Option<&str>,
    attributes: &[(String, String)],
) -> Resource {
    let mut attrs = vec![string("service.name", service)];
    if let Some(v) = version {
        attrs.push(string("service.version", v));
    }
    for (k, v) in attributes {
        if !attrs.iter().any(|a| a.key == *k) {
            attrs.push(string(k, v));
        }
    }
    Resource {
        attributes: attrs,
        ..Resource::default()
    }
}

/// The scope: observe, at its version.
pub(crate) fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: SCOPE_NAME.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        ..InstrumentationScope::default()
    }
}

pub(crate) fn any(value: Value) -> AnyValue {
    AnyValue { value: Some(value) }
}

pub(crate) fn key_value(key: impl Into<String>, value: Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(any(value)),
        ..KeyValue::default()
    }
}

pub(crate) fn string(key: impl Into<String>, value: impl Into<String>) -> KeyValue {
    key_value(key, Value::StringValue(value.into()))
}

/// A JSON value as an attribute value: numbers stay numbers (integers as
/// integers), objects become key-value lists, arrays arrays; `null` is an
/// empty value.
pub(crate) fn from_json(v: serde_json::Value) -> AnyValue {
    use serde_json::Value as J;
    let value = match v {
        J::Null => None,
        J::Bool(b) => Some(Value::BoolValue(b)),
        J::Number(n) => Some(match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::IntValue(i),
            (None, Some(f)) => Value::DoubleValue(f),
            (None, None) => Value::StringValue(n.to_string()),
        }),
        J::String(s) => Some(Value::StringValue(s)),
        J::Array(a) => Some(Value::ArrayValue(ArrayValue {
            values: a.into_iter().map(from_json).collect(),
        })),
        J::Object(o) => Some(Value::KvlistValue(KeyValueList {
            values: o
                .into_iter()
                .map(|(k, v)| KeyValue {
                    key: k,
                    value: Some(from_json(v)),
                    ..KeyValue::default()
                })
                .collect(),
        })),
    };
    AnyValue { value }
}

/// The `N` bytes of a trace or span ID (`N` at most 16) from its `2 * N`
/// lowercase hex digits, as JSON lines and queued spans write it; `None`
/// for anything else (or all zeros, an invalid ID).
pub(crate) fn hex_id<const N: usize>(hex: &[u8]) -> Option<[u8; N]> {
    let v = fixed_hex(hex, 2 * N).filter(|v| *v != 0)?;
    v.to_be_bytes()
        .get(16usize.checked_sub(N)?..)?
        .try_into()
        .ok()
}

/// A field of exactly `digits` lowercase hex digits (W3C trace context's
/// spelling, at most 32) as a number.
pub(crate) fn fixed_hex(hex: &[u8], digits: usize) -> Option<u128> {
    if hex.len() != digits {
        return None;
    }
    lower_hex(std::str::from_utf8(hex).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resource_names_the_service_first() {
        let r = build(
            "billing",
            Some("1.2.3"),
            &[
                ("service.name".into(), "other".into()),
                ("deployment.environment".into(), "prod".into()),
            ],
        );
        let pairs: Vec<(String, String)> = r
            .attributes
            .iter()
            .map(|kv| match kv.value.as_ref().and_then(|v| v.value.clone()) {
                Some(Value::StringValue(s)) => (kv.key.clone(), s),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("service.name".into(), "billing".into()),
                ("service.version".into(), "1.2.3".into()),
                ("deployment.environment".into(), "prod".into()),
            ]
        );
    }

    #[test]
    fn ids_are_lowercase_hex_of_their_size() {
        assert_eq!(hex_id::<2>(b"0aff"), Some([0x0a, 0xff]));
        assert_eq!(fixed_hex(b"0000", 4), Some(0));
        assert_eq!(fixed_hex(b"00ff", 3), None);
        for bad in [
            "", "0a", "0aff00", "0x12", "zzzz", "0000", "+1ff", "é1", "0AfF",
        ] {
            assert_eq!(hex_id::<2>(bad.as_bytes()), None, "{bad}");
        }
    }
}
