//! A client that sends its request a byte at a time must not hold up a
//! Prometheus scrape of the `/metrics` listener, nor keep its connection
//! forever.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use observe::metrics::MetricsListener;

/// Gap between two bytes of the slow client.
const DRIBBLE: Duration = Duration::from_millis(200);

/// How a [`SlowClient`]'s connection ended.
#[derive(Debug)]
enum End {
    /// The server answered (with what) or closed the connection.
    CutOff(String),
    /// Told to stop, or gave up after `limit`, still connected.
    StillOpen,
}

/// Sends a request head one byte every [`DRIBBLE`] on its own thread,
/// never finishing it, until stopped, cut off, or after `limit`.
struct SlowClient {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<End>>,
}

impl SlowClient {
    /// Returns once connected with the first byte sent, so the server
    /// accepts this connection before any opened after.
    fn start(addr: SocketAddr, limit: Duration) -> Self {
        let mut stream = TcpStream::connect(addr).expect("connect the slow client");
        stream.write_all(b"G").expect("first byte");
        // Reading with a timeout is the pause between bytes, and notices
        // the server's answer or close as soon as it comes.
        stream.set_read_timeout(Some(DRIBBLE)).expect("timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let head = b"ET /metrics HTTP/1.1\r\nHost: slow\r\nX-Pad: ";
            let until = Instant::now() + limit;
            let mut answer = Vec::new();
            let mut next = head.iter().copied().chain(std::iter::repeat(b'a'));
            while !flag.load(Ordering::SeqCst) && Instant::now() < until {
                let mut buf = [0u8; 1024];
                match stream.read(&mut buf) {
                    Ok(0) => return End::CutOff(String::from_utf8_lossy(&answer).into()),
                    Ok(n) => {
                        answer.extend_from_slice(&buf[..n]);
                        continue;
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => return End::CutOff(String::from_utf8_lossy(&answer).into()),
                }
                let byte = next.next().unwrap_or(b'a');
                if stream.write_all(&[byte]).is_err() {
                    return End::CutOff(String::from_utf8_lossy(&answer).into());
                }
            }
            End::StillOpen
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Waits for the connection to end on its own.
    fn finish(mut self) -> End {
        self.thread
            .take()
            .expect("joined once")
            .join()
            .expect("slow client thread")
    }
}

impl Drop for SlowClient {
    // Also on a failed assertion: the slow client must not outlive the
    // test, or a listener serving it alone could never be stopped.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn listener() -> MetricsListener {
    let bound = TcpListener::bind("127.0.0.1:0").expect("bind");
    MetricsListener::serve(bound, || "up 1\n".to_owned()).expect("serve")
}

fn scrape(addr: SocketAddr, timeout: Duration) -> io::Result<String> {
    let mut c = TcpStream::connect_timeout(&addr, timeout)?;
    c.set_read_timeout(Some(timeout))?;
    c.set_write_timeout(Some(timeout))?;
    c.write_all(b"GET /metrics HTTP/1.1\r\nHost: prometheus\r\n\r\n")?;
    let mut out = String::new();
    c.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn a_scrape_is_served_while_a_slow_client_dribbles_its_request() {
    let server = listener();
    let slow = SlowClient::start(server.local_addr(), Duration::from_secs(20));
    // A serial listener would wait on the slow client for its whole
    // request, far beyond this; a free one answers in milliseconds.
    let started = Instant::now();
    let scraped = scrape(server.local_addr(), Duration::from_secs(2));
    let took = started.elapsed();
    drop(slow);
    let scraped = scraped.expect("the scrape is answered despite the slow client");
    assert!(scraped.starts_with("HTTP/1.1 200 OK\r\n"), "{scraped}");
    assert!(scraped.ends_with("\r\n\r\nup 1\n"), "{scraped}");
    assert!(took < Duration::from_secs(4), "scrape took {took:?}");
    server.stop();
}

#[test]
fn a_client_dribbling_its_request_is_cut_off() {
    let server = listener();
    let started = Instant::now();
    // The request head would never end: only a deadline on the whole
    // head, not on each read, ends the connection.
    let end = SlowClient::start(server.local_addr(), Duration::from_secs(12)).finish();
    let took = started.elapsed();
    match end {
        End::CutOff(answer) => assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408 "),
            "{answer}"
        ),
        End::StillOpen => panic!("still connected after {took:?}"),
    }
    assert!(took < Duration::from_secs(15), "cut off after {took:?}");
    // And the listener still serves.
    let scraped = scrape(server.local_addr(), Duration::from_secs(5)).expect("scrape");
    assert!(scraped.starts_with("HTTP/1.1 200 OK\r\n"), "{scraped}");
}
