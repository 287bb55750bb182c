//! A local OTLP/HTTP receiver: HTTP/1.1 on a std listener, protobuf bodies
//! decoded (and gunzipped) into the OTLP messages, answers scripted per
//! request.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) path: String,
    pub(crate) content_type: String,
    pub(crate) gzip: bool,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) status: u16,
    pub(crate) at: Instant,
}

/// Everything received so far.
#[derive(Debug, Default)]
pub(crate) struct Received {
    /// Spans of the requests answered 2xx.
    pub(crate) spans: Vec<Span>,
    /// Log records of the requests answered 2xx.
    pub(crate) logs: Vec<LogRecord>,
    pub(crate) resources: Vec<Resource>,
    pub(crate) requests: Vec<Request>,
}

#[derive(Default)]
struct State {
    received: Received,
    /// Answers for the next requests: status and extra header lines.
    script: VecDeque<(u16, String)>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    stop: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The receiver; stops accepting when dropped.
pub(crate) struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Receiver {
    /// Listens on a free port of 127.0.0.1.
    pub(crate) fn start() -> Self {
        Self::on(TcpListener::bind("127.0.0.1:0").expect("bind"))
    }

    /// Listens on `addr` (a port chosen before the receiver was there).
    pub(crate) fn start_at(addr: SocketAddr) -> Self {
        Self::on(TcpListener::bind(addr).expect("bind the chosen port"))
    }

    fn on(listener: TcpListener) -> Self {
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let s = Arc::clone(&shared);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let s = Arc::clone(&s);
                std::thread::spawn(move || serve(&conn, &s));
            }
        });
        Self { addr, shared }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers the next request with `status` and the `headers` lines.
    pub(crate) fn answer_next(&self, status: u16, headers: &[(&str, &str)]) {
        let lines: String = headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}\r\n"))
            .collect();
        self.shared.lock().script.push_back((status, lines));
    }

    /// Reads what arrived.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&Received) -> R) -> R {
        f(&self.shared.lock().received)
    }

    /// Waits until `done` holds for what arrived, at most `limit`.
    pub(crate) fn wait(&self, limit: Duration, done: impl Fn(&Received) -> bool) -> bool {
        let until = Instant::now() + limit;
        let mut st = self.shared.lock();
        while !done(&st.received) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Serves requests on one connection until it closes.
fn serve(conn: &TcpStream, shared: &Shared) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(conn);
    let mut writer = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let len: usize = header("content-length").parse().unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let gzip = header("content-encoding") == "gzip";
        if gzip {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(body.as_slice())
                .read_to_end(&mut plain)
                .expect("a gzip body");
            body = plain;
        }
        let mut st = shared.lock();
        let (status, extra) = st.script.pop_front().unwrap_or((200, String::new()));
        if (200..300).contains(&status) {
            let r = &mut st.received;
            match path.as_str() {
                "/v1/traces" => {
                    let req = ExportTraceServiceRequest::decode(body.as_slice()).expect("spans");
                    for rs in req.resource_spans {
                        r.resources.extend(rs.resource);
                        for ss in rs.scope_spans {
                            assert_eq!(ss.scope.expect("a scope").name, "observe");
                            r.spans.extend(ss.spans);
                        }
                    }
                }
                "/v1/logs" => {
                    let req = ExportLogsServiceRequest::decode(body.as_slice()).expect("logs");
                    for rl in req.resource_logs {
                        r.resources.extend(rl.resource);
                        for sl in rl.scope_logs {
                            r.logs.extend(sl.log_records);
                        }
                    }
                }
                _ => {}
            }
        }
        st.received.requests.push(Request {
            path,
            content_type: header("content-type"),
            gzip,
            headers: headers.clone(),
            status,
            at: Instant::now(),
        });
        drop(st);
        shared.changed.notify_all();
        let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n{extra}\r\n");
        if writer.write_all(answer.as_bytes()).is_err() || shared.stop.load(Ordering::SeqCst) {
            return;
        }
    }
}
