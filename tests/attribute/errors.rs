//! Error classification: any `Result<T, E>` by type, whatever alias names
//! it; anything else is a success.

use observe::monitor_performance;
use observe::testing::{self, Captured};

fn status_and_type(c: &Captured<impl Sized>) -> (String, Option<String>, String) {
    assert_eq!(c.lines.len(), 1, "{:#?}", c.raw_lines);
    let l = &c.lines[0];
    (
        l["performance"]["status"]
            .as_str()
            .expect("status")
            .to_owned(),
        l["context"]["error_type"].as_str().map(str::to_owned),
        l["message"].as_str().expect("message").to_owned(),
    )
}

#[monitor_performance]
fn io_result() -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "config.toml missing",
    ))
}

#[monitor_performance]
fn anyhow_result() -> anyhow::Result<u8> {
    anyhow::bail!("upstream returned 503")
}

type Result<T> = std::result::Result<T, String>;

#[monitor_performance]
fn user_alias() -> Result<u8> {
    Err("bad input".to_owned())
}

mod shadow {
    /// A user type that happens to be called `Result`.
    pub(crate) enum Result {
        Err,
    }
}

#[monitor_performance]
fn not_core_result() -> shadow::Result {
    shadow::Result::Err
}

#[derive(Debug)]
#[allow(dead_code)] // `code` is only read through `Debug`, which is the point.
struct DebugOnly {
    code: u16,
}

#[monitor_performance]
fn debug_only() -> std::result::Result<(), DebugOnly> {
    Err(DebugOnly { code: 7 })
}

#[monitor_performance]
fn parse(s: &str) -> std::result::Result<i32, std::num::ParseIntError> {
    let v: i32 = s.parse()?;
    Ok(v)
}

#[monitor_performance]
fn option_none() -> Option<u8> {
    None
}

#[monitor_performance]
async fn async_err() -> std::result::Result<(), std::fmt::Error> {
    Err(std::fmt::Error)
}

#[monitor_performance]
async fn async_panic() -> u8 {
    panic!("async boom")
}

#[test]
fn io_result_alias() {
    let c = testing::capture(io_result);
    assert_eq!(
        status_and_type(&c),
        (
            "error".into(),
            Some("Error".into()),
            "io_result failed: config.toml missing".into()
        )
    );
    assert_eq!(
        c.metrics.counter(
            "operation_errors_total",
            &[("operation", "io_result"), ("error_type", "Error")]
        ),
        Some(1)
    );
}

#[test]
fn anyhow_result_alias() {
    let c = testing::capture(anyhow_result);
    assert_eq!(
        status_and_type(&c),
        (
            "error".into(),
            Some("Error".into()),
            "anyhow_result failed: upstream returned 503".into()
        )
    );
}

#[test]
fn users_own_result_alias() {
    let c = testing::capture(user_alias);
    assert_eq!(
        status_and_type(&c),
        (
            "error".into(),
            Some("String".into()),
            "user_alias failed: bad input".into()
        )
    );
}

#[test]
fn a_type_named_result_is_not_an_error() {
    let c = testing::capture(not_core_result);
    assert_eq!(
        status_and_type(&c),
        ("success".into(), None, "not_core_result completed".into())
    );
}

#[test]
fn debug_only_errors_use_debug() {
    let c = testing::capture(debug_only);
    assert_eq!(
        status_and_type(&c),
        (
            "error".into(),
            Some("DebugOnly".into()),
            "debug_only failed: DebugOnly { code: 7 }".into()
        )
    );
}

#[test]
fn question_mark_errors_are_classified() {
    let c = testing::capture(|| parse("x1"));
    assert_eq!(
        status_and_type(&c),
        (
            "error".into(),
            Some("ParseIntError".into()),
            "parse failed: invalid digit found in string".into()
        )
    );
    let ok = testing::capture(|| parse("41"));
    assert_eq!(ok.output, Ok(41));
    assert_eq!(status_and_type(&ok).0, "success");
}

#[test]
fn none_is_a_success() {
    let c = testing::capture(option_none);
    assert_eq!(status_and_type(&c).0, "success");
}

#[test]
fn async_errors_and_panics() {
    let c = futures::executor::block_on(testing::capture_async(async_err()));
    assert_eq!(
        status_and_type(&c),
        (
            "error".into(),
            Some("Error".into()),
            "async_err failed: an error occurred when formatting an argument".into()
        )
    );

    let c = testing::capture(|| {
        std::panic::catch_unwind(|| futures::executor::block_on(async_panic()))
    });
    assert!(c.output.is_err());
    assert_eq!(
        status_and_type(&c),
        ("panic".into(), None, "async_panic panicked".into())
    );
    assert_eq!(
        c.metrics
            .gauge("operation_in_flight", &[("operation", "async_panic")]),
        Some(0.0)
    );
}
