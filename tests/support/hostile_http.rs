//! A small loopback HTTP server that misbehaves as told, then turns sane
//! on the same port: what the hostile-peer tests of the `_bulk` sink and
//! of the InfluxDB push share. Each test answers sanely its own way.

use std::io::{BufRead, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How the server answers a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Play {
    /// The test's own sane answer.
    Sane,
    /// A chunked answer whose second chunk claims `ffffffffffffffff` bytes.
    OverflowingChunk,
    /// A status line, then one header line every 500 ms.
    DripHeaders,
    /// `100 Continue` after `100 Continue`.
    EndlessInterim,
    /// A body delimited by close that never ends (past any limit).
    EndlessBody,
    /// Half of the announced body, then close.
    CloseMidBody,
    /// `401 Unauthorized`, as during a credential rotation.
    #[allow(dead_code, reason = "only the `_bulk` sink meets it")]
    Unauthorized,
}

/// A loopback server playing a [`Play`] that can be switched.
pub(crate) struct HostileServer {
    pub(crate) url: String,
    play: Arc<Mutex<Play>>,
}

impl HostileServer {
    /// Starts playing `play`; each connection goes to `serve`, with the
    /// current play, on a thread of its own.
    pub(crate) fn start<F>(play: Play, serve: F) -> Self
    where
        F: Fn(TcpStream, &Mutex<Play>) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let play = Arc::new(Mutex::new(play));
        let (shared, serve) = (Arc::clone(&play), Arc::new(serve));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (play, serve) = (Arc::clone(&shared), Arc::clone(&serve));
                std::thread::spawn(move || serve(stream, &play));
            }
        });
        Self { url, play }
    }

    pub(crate) fn set(&self, play: Play) {
        *lock(&self.play) = play;
    }
}

/// Reads one request; its body, or `None` once the client is gone.
pub(crate) fn read_request(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(body)
}

/// Writes `play`'s answer until it is done or the client hangs up.
/// `status` is that of the answers whose body is cut or endless: the
/// InfluxDB push reads the body of an error only.
pub(crate) fn misbehave(w: &mut impl Write, play: Play, status: &str) {
    let _ = match play {
        Play::Sane => Ok(()),
        Play::OverflowingChunk => w.write_all(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\nffffffffffffffff\r\n",
        ),
        Play::DripHeaders => (|| {
            w.write_all(b"HTTP/1.1 200 OK\r\n")?;
            // Bounded so a client that never gives up ends the test.
            for i in 0..240 {
                w.write_all(format!("X-Drip-{i}: 1\r\n").as_bytes())?;
                w.flush()?;
                std::thread::sleep(Duration::from_millis(500));
            }
            Ok(())
        })(),
        Play::EndlessInterim => (|| {
            for _ in 0..100_000 {
                w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(())
        })(),
        Play::EndlessBody => (|| {
            w.write_all(format!("HTTP/1.1 {status}\r\n\r\n").as_bytes())?;
            let block = vec![b' '; 1 << 20];
            for _ in 0..1024 {
                w.write_all(&block)?;
            }
            Ok(())
        })(),
        Play::CloseMidBody => w.write_all(
            format!("HTTP/1.1 {status}\r\nContent-Length: 40\r\n\r\n{{\"errors\":").as_bytes(),
        ),
        Play::Unauthorized => {
            w.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 12\r\n\r\nrotating key")
        }
    };
    let _ = w.flush();
}
