//! Local ports for servers that bind them a moment after they are chosen.
//!
//! A port from `bind(0)` lies inside the kernel's ephemeral range, where
//! every outgoing connection also takes its local port: one made between
//! choosing the port and the server binding it can take it first ("Address
//! already in use"). Ports are drawn from below that range instead.
//! Shared by the tests' `free_port` and the `ha_ingestor` example.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

/// Ports below this, where the well-known and most often configured
/// service ports lie, are left alone.
const FLOOR: u16 = 10_000;

/// A random port below the ephemeral range that `usable` accepts (it
/// binds it, and checks it is not already handed out), or `None` when the
/// range is too small or 64 draws found none.
pub(crate) fn below_ephemeral(usable: impl Fn(u16) -> bool) -> Option<u16> {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    if low <= FLOOR + 1_000 {
        return None;
    }
    let span = u64::from(low - FLOOR);
    let random = RandomState::new();
    (0..64u64)
        .map(|draw| {
            // Below `span`, so the narrowing is lossless.
            #[allow(clippy::cast_possible_truncation)]
            let offset = (random.hash_one(draw) % span) as u16;
            FLOOR + offset
        })
        .find(|&port| usable(port))
}
