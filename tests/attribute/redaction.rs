//! Secrets kept out of the line: keys matched case- and
//! separator-insensitively, secret pairs and URL credentials masked inside
//! rendered values and error texts, and huge rendered values cut while they
//! are formatted (design.md section 5).

use std::cell::Cell;
use std::fmt;

use observe::monitor_performance;
use observe::testing;

#[derive(Debug)]
#[allow(dead_code)]
struct Login {
    user: &'static str,
    password: &'static str,
    token: Option<&'static str>,
}

#[monitor_performance("login", context(req = ?login, who = %login.user))]
fn login(login: &Login) -> bool {
    true
}

#[test]
fn secrets_inside_a_debug_context_value_are_masked() {
    let req = Login {
        user: "a",
        password: "hunter2",
        token: Some("t0k3n"),
    };
    let c = testing::capture(|| login(&req));
    let line = &c.lines[0];
    assert_eq!(
        line["context"]["req"],
        "Login { user: \"a\", password: \"[REDACTED]\", token: [REDACTED] }"
    );
    assert_eq!(line["context"]["who"], "a");
    for raw in &c.raw_lines {
        assert!(!raw.contains("hunter2") && !raw.contains("t0k3n"), "{raw}");
    }
}

#[monitor_performance(
    "keys",
    context(
        privateKey = "k1",
        PrivateKey = "k2",
        session_id = 5,
        sessionId = "s",
        pwd = "p",
        dbPwd = "p2",
        credentials = "c",
        bearer = "b",
        jwt = "j",
        dsn = "d",
        entity_id = "e",
        kids_name = "n"
    )
)]
fn keys() {}

#[test]
fn keys_match_case_and_separator_insensitively() {
    let c = testing::capture(keys);
    let context = &c.lines[0]["context"];
    for key in [
        "privateKey",
        "PrivateKey",
        "session_id",
        "sessionId",
        "pwd",
        "dbPwd",
        "credentials",
        "bearer",
        "jwt",
        "dsn",
    ] {
        assert_eq!(context[key], "[REDACTED]", "{key}: {context}");
    }
    assert_eq!(context["entity_id"], "e");
    // `dsn` does not match across the words of `kids_name`.
    assert_eq!(context["kids_name"], "n");
}

#[monitor_performance("fetch")]
fn fetch(url: &str) -> Result<(), String> {
    Err(format!("GET {url}: 401 Unauthorized"))
}

#[test]
fn the_error_text_of_a_failed_call_is_masked() {
    let c = testing::capture(|| {
        fetch("https://svc:pa55w0rd@api.example.com/v1/items?access_token=t0k&page=2")
    });
    let line = &c.lines[0];
    assert_eq!(
        line["message"],
        "fetch failed: GET https://svc:[REDACTED]@api.example.com/v1/items?access_token=[REDACTED]&page=2: 401 Unauthorized"
    );
    assert_eq!(line["context"]["error_type"], "String");
    let raw = &c.raw_lines[0];
    assert!(!raw.contains("pa55w0rd") && !raw.contains("t0k"), "{raw}");
}

#[monitor_performance("plain", context(note = %"key=value, user: bob", n = 3u8))]
fn plain() {}

#[test]
fn values_with_nothing_secret_are_untouched() {
    let c = testing::capture(plain);
    assert_eq!(c.lines[0]["context"]["note"], "key=value, user: bob");
    assert_eq!(c.lines[0]["context"]["n"], 3);
}

/// A `Display` that writes 100 MB in 10-byte pieces, ignoring errors as a
/// careless impl would, and counts the bytes it was allowed to write.
struct Flood {
    accepted: Cell<usize>,
}

impl fmt::Display for Flood {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for _ in 0..10_000_000 {
            if f.write_str("0123456789").is_ok() {
                self.accepted.set(self.accepted.get() + 10);
            }
        }
        Ok(())
    }
}

#[monitor_performance("flood", context(body = %flood))]
fn flooded(flood: &Flood) {}

#[test]
fn a_huge_display_value_is_cut_while_it_is_formatted() {
    let flood = Flood {
        accepted: Cell::new(0),
    };
    let c = testing::capture(|| flooded(&flood));
    // Nothing near 100 MB was taken: the largest line cap in the process
    // (tests here use the 32 KiB default), then at most 1 MiB measured for
    // `original_bytes`, then every write refused.
    assert!(
        flood.accepted.get() <= 32 * 1024 + (1 << 20) + 64,
        "{} bytes accepted",
        flood.accepted.get()
    );
    let line = &c.lines[0];
    assert_eq!(line["context"]["truncated"], true, "{line}");
    assert!(line["context"]["original_bytes"].as_u64() > Some(32 * 1024));
    assert!(c.raw_lines[0].len() <= 32 * 1024);
}
