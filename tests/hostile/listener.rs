//! Hostile clients of the `/metrics` listener: each plays one trick again
//! and again (from several connections at once) until stopped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::peer::Behaviour;

/// The tricks a client can play on the listener, in matrix order.
pub(crate) const CLIENT_TRICKS: [Behaviour; 7] = [
    Behaviour::GarbageStatus,
    Behaviour::EndlessHeaders,
    Behaviour::Drip,
    Behaviour::HugeBody,
    Behaviour::CloseMidBody,
    Behaviour::Reset,
    Behaviour::AcceptNeverRead,
];

/// Connections playing the trick at once: twenty for the ones that hold
/// a connection (more than the listener's slots), four for the others.
fn connections(trick: Behaviour) -> usize {
    match trick {
        Behaviour::Drip | Behaviour::AcceptNeverRead => 20,
        _ => 4,
    }
}

/// Clients playing one trick until dropped.
pub(crate) struct HostileClients {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl HostileClients {
    pub(crate) fn start(addr: SocketAddr, trick: Behaviour) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..connections(trick))
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(mut c) = TcpStream::connect(addr) else {
                            std::thread::sleep(Duration::from_millis(20));
                            continue;
                        };
                        let _ = c.set_write_timeout(Some(Duration::from_secs(1)));
                        let _ = c.set_read_timeout(Some(Duration::from_millis(200)));
                        // Cut off, it comes back at once, as a flood
                        // would.
                        play(&mut c, trick, &stop);
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for HostileClients {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Whether the server has answered or hung up (reads time out every
/// 200 ms, which also paces the dripping).
fn cut_off(c: &mut TcpStream) -> bool {
    match c.read(&mut [0u8; 1024]) {
        // An answer of any length, or the close (0), ends the trick.
        Ok(n) => n <= 1024,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// One connection's worth of `trick`.
fn play(c: &mut TcpStream, trick: Behaviour, stop: &AtomicBool) {
    let stopped = || stop.load(Ordering::Relaxed);
    match trick {
        Behaviour::GarbageStatus => {
            let _ = c.write_all(b"SSH-2.0-x\r\n\0\xff\xfe garbage\r\n\r\n");
            let _ = cut_off(c);
        }
        Behaviour::EndlessHeaders => {
            let flood = "X-Flood: 1\r\n".repeat(500);
            let _ = c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
            while !stopped() && c.write_all(flood.as_bytes()).is_ok() {}
        }
        Behaviour::Drip => {
            let head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: ".iter();
            for &byte in head.chain(std::iter::repeat(&b'a')) {
                if stopped() || c.write_all(&[byte]).is_err() || cut_off(c) {
                    return;
                }
            }
        }
        Behaviour::HugeBody => {
            let _ = c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: ");
            let _ = c.write_all(&vec![b'a'; 1024 * 1024]);
            let _ = cut_off(c);
        }
        Behaviour::CloseMidBody => {
            let _ = c.write_all(b"GET /met");
        }
        Behaviour::Reset => {
            // The answer left unread makes the close a reset.
            let _ = c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
            std::thread::sleep(Duration::from_millis(50));
        }
        Behaviour::AcceptNeverRead => {
            // Connected, never a byte sent, until stopped or cut off.
            while !stopped() && !cut_off(c) {}
        }
        _ => {}
    }
}

/// A sane scrape: the answer, or why there is none.
pub(crate) fn scrape(addr: SocketAddr, timeout: Duration) -> Result<String, String> {
    let mut c = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    c.set_read_timeout(Some(timeout))
        .and_then(|()| c.set_write_timeout(Some(timeout)))
        .and_then(|()| c.write_all(b"GET /metrics HTTP/1.1\r\nHost: prometheus\r\n\r\n"))
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    c.read_to_string(&mut out)
        .map_err(|e| format!("{e} after {out:?}"))?;
    Ok(out)
}
