//! Whatever goes into a message or a context value, what comes out of a
//! sink is one JSON object per line that gives the value back.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::sync::OnceLock;
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use observe::log::JsonLayer;
use observe::monitor_performance;
use observe::sink::{Sink as _, TcpSink};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::Value;
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt as _;

#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

#[monitor_performance("prop.call", context(value = value))]
fn call(value: &str, message: &str) -> Result<(), Refused> {
    Err(Refused(message.to_owned()))
}

/// One TCP sink to a local json_lines reader, shared by every case: what
/// the reader gets is split on `\n` only, so a raw newline in a line would
/// show up as an extra (unparseable) line.
struct Pipeline {
    sink: TcpSink,
    dispatch: Dispatch,
    lines: std::sync::Mutex<Receiver<String>>,
}

fn pipeline() -> &'static Pipeline {
    static PIPELINE: OnceLock<Pipeline> = OnceLock::new();
    PIPELINE.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            while reader.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
                let line = String::from_utf8(std::mem::take(&mut buf)).expect("lines are UTF-8");
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let sink = TcpSink::builder(addr.to_string())
            .name("prop")
            .capacity_bytes(64 * 1024 * 1024)
            .build()
            .expect("sink");
        let layer = JsonLayer::new("prop")
            .with_sink(sink.clone())
            .with_max_line_bytes(32 * 1024 * 1024);
        Pipeline {
            sink,
            dispatch: Dispatch::new(tracing_subscriber::registry().with(layer)),
            lines: std::sync::Mutex::new(rx),
        }
    })
}

/// Characters that break naive writers, mixed with any others.
fn nasty_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => any::<char>(),
        1 => prop::sample::select(vec!['"', '\\', '\n', '\r', '\t', '\0', '\u{1}', '\u{1f}', '\u{7f}', '\u{85}', '\u{2028}', '\u{2029}', '\u{feff}', '{', '}', ':', ',', '\u{fffd}']),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => vec(nasty_char(), 0..200).prop_map(|c| c.into_iter().collect()),
        2 => any::<String>(),
        // Invalid UTF-8 made valid the way a caller would.
        2 => vec(any::<u8>(), 0..300).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        // 1 MB values.
        1 => vec(nasty_char(), 1..16).prop_map(|c| {
            let chunk: String = c.into_iter().collect();
            chunk.repeat(1024 * 1024 / chunk.len() + 1)
        }),
    ]
}

/// The tests share one pipeline and its receiver: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn receive(n: usize) -> Vec<String> {
    let p = pipeline();
    assert!(
        p.sink.flush(Duration::from_secs(60)),
        "{:?}",
        p.sink.stats()
    );
    let rx = p.lines.lock().expect("receiver");
    (0..n)
        .map(|_| {
            rx.recv_timeout(Duration::from_secs(60))
                .expect("a line for each event")
        })
        .collect()
}

fn parse(line: &str) -> Value {
    let body = line.strip_suffix('\n').expect("newline-terminated");
    assert!(!body.contains('\n'), "raw newline inside a line");
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e})"));
    assert!(v.is_object());
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_text_in_messages_and_context_round_trips(message in text(), value in text(), raw in vec(any::<u8>(), 0..64)) {
        let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let p = pipeline();
        tracing::dispatcher::with_default(&p.dispatch, || {
            tracing::info!(value = value.as_str(), raw = raw.as_slice(), "{message}");
            let _ = call(&value, &message);
        });
        let lines = receive(2);

        let event = parse(&lines[0]);
        prop_assert_eq!(event["message"].as_str(), Some(message.as_str()));
        prop_assert_eq!(event["context"]["value"].as_str(), Some(value.as_str()));
        let lossy = String::from_utf8_lossy(&raw);
        prop_assert_eq!(event["context"]["raw"].as_str(), Some(lossy.as_ref()));

        let failed = parse(&lines[1]);
        let expected = format!("prop.call failed: {message}");
        prop_assert_eq!(failed["message"].as_str(), Some(expected.as_str()));
        prop_assert_eq!(failed["context"]["value"].as_str(), Some(value.as_str()));
        prop_assert_eq!(failed["performance"]["status"].as_str(), Some("error"));
        prop_assert_eq!(p.sink.stats().dropped, 0);
    }
}

#[test]
fn a_context_value_under_the_configured_cap_is_written_whole() {
    // The default cap is 32 KiB; this pipeline's is 32 MiB, set after the
    // layer was made.
    let value = "v".repeat(1024 * 1024);
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let p = pipeline();
    tracing::dispatcher::with_default(&p.dispatch, || {
        let _ = call(&value, "refused");
    });
    let failed = parse(&receive(1)[0]);
    assert_eq!(
        failed["context"]["value"].as_str().map(str::len),
        Some(value.len())
    );
    assert_eq!(failed["context"]["truncated"], Value::Null);
}
