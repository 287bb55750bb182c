//! Per-thread slots: a thread leases a small index on first use and gives
//! it back when it exits, so per-thread data (metric shards, queue lanes)
//! can live in arrays indexed by it instead of in thread-locals that other
//! threads cannot read.
//!
//! While a thread holds a slot it is the only thread using that index, so
//! data kept per slot has one writer. The lease hand-over goes through a
//! mutex: the next holder of a slot sees everything the last one wrote.
//! Threads beyond [`slot_count`] (and a thread whose locals are being torn
//! down) get [`SHARED`], slot 0, which any number of threads may use at
//! once.

use std::cell::Cell;
use std::sync::{Mutex, OnceLock, PoisonError};

/// The slot any number of threads may use at once.
pub(crate) const SHARED: u32 = 0;

/// A thread's slot before its first update.
const UNASSIGNED: u32 = u32::MAX;

/// Most exclusive slots a process hands out, whatever its core count.
pub(crate) const MAX_SLOTS: usize = 64;

thread_local! {
    /// This thread's slot. No destructor: readable in every state of the
    /// thread, including while its other locals are dropped.
    static SLOT: Cell<u32> = const { Cell::new(UNASSIGNED) };
    /// The lease that gives the slot back when the thread exits.
    static LEASE: Cell<Option<Lease>> = const { Cell::new(None) };
}

/// Exclusive slots handed out: four per core (threads of blocking pools
/// outnumber the cores), between 8 and [`MAX_SLOTS`].
pub(crate) fn slot_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        (cores * 4).clamp(8, MAX_SLOTS)
    })
}

/// Slots no thread holds, lowest last (so the lowest is taken first).
fn free_slots() -> &'static Mutex<Vec<u32>> {
    static FREE: OnceLock<Mutex<Vec<u32>>> = OnceLock::new();
    FREE.get_or_init(|| {
        #[allow(clippy::cast_possible_truncation)]
        let top = slot_count() as u32;
        Mutex::new((1..=top).rev().collect())
    })
}

struct Lease(u32);

impl Drop for Lease {
    fn drop(&mut self) {
        // Anything this thread still records after this point (another
        // local's destructor) goes to the shared block: the slot may
        // belong to another thread by then.
        SLOT.with(|s| s.set(SHARED));
        free_slots()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(self.0);
    }
}

/// This thread's slot: [`SHARED`] or an exclusive one.
#[inline(always)]
pub(crate) fn slot() -> u32 {
    let s = SLOT.with(Cell::get);
    if s == UNASSIGNED { assign() } else { s }
}

#[cold]
#[inline(never)]
fn assign() -> u32 {
    let taken = free_slots()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop();
    let slot = match taken {
        Some(s) if LEASE.try_with(|l| l.set(Some(Lease(s)))).is_ok() => s,
        Some(s) => {
            // The thread is exiting: it cannot hold a lease.
            free_slots()
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(s);
            SHARED
        }
        // Every slot is held: this thread shares slot 0 from now on.
        None => SHARED,
    };
    SLOT.with(|c| c.set(slot));
    slot
}

/// Held by tests that count on a free slot or exhaust them, so that
/// tests running in parallel do not take each other's slots.
#[cfg(test)]
pub(crate) static TEST_SLOTS: Mutex<()> = Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_is_given_back_when_its_thread_exits() {
        let _slots = TEST_SLOTS.lock().unwrap_or_else(PoisonError::into_inner);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..slot_count() * 3 {
            let s = std::thread::spawn(slot).join().expect("thread");
            assert_ne!(s, SHARED, "a slot was not given back");
            seen.insert(s);
        }
        assert!(seen.len() < slot_count(), "{seen:?}");
    }

    #[test]
    fn threads_beyond_the_slot_count_share_slot_0() {
        let _slots = TEST_SLOTS.lock().unwrap_or_else(PoisonError::into_inner);
        let barrier = std::sync::Barrier::new(slot_count() + 4);
        let slots: Vec<u32> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..slot_count() + 4)
                .map(|_| {
                    s.spawn(|| {
                        let slot = slot();
                        barrier.wait();
                        slot
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        let mut exclusive: Vec<u32> = slots.iter().copied().filter(|&s| s != SHARED).collect();
        let n = exclusive.len();
        exclusive.sort_unstable();
        exclusive.dedup();
        assert_eq!(
            exclusive.len(),
            n,
            "two live threads hold one slot: {slots:?}"
        );
        assert!(n <= slot_count() && slots.len() - n >= 4, "{slots:?}");
    }
}
