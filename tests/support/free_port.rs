//! A free local port for a server a test starts, or for a client to find
//! nothing listening on.

#[path = "ports.rs"]
mod ports;

use std::net::{TcpListener, UdpSocket};

/// A port free for both TCP and UDP on 127.0.0.1 right now, and never
/// handed out before in this process: tests running in parallel each
/// release their port before their server binds it. Drawn from below the
/// ephemeral range (see [`ports`]), or from `bind(0)` where that range
/// leaves no room.
pub(crate) fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let free = |port: u16| {
        !given.contains(&port)
            && TcpListener::bind(("127.0.0.1", port)).is_ok()
            && UdpSocket::bind(("127.0.0.1", port)).is_ok()
    };
    let port = ports::below_ephemeral(free).unwrap_or_else(|| {
        loop {
            let tcp = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
            let port = tcp.local_addr().expect("addr").port();
            drop(tcp);
            if free(port) {
                break port;
            }
        }
    });
    given.push(port);
    port
}
