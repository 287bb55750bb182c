//! Counters split across per-thread shards, so that threads calling the same
//! operation on different cores never write the same cache line.
//!
//! Each thread is given a shard index once (round robin); a value is kept
//! as one cell per shard, each shard's cells on cache lines of their own,
//! and read as the sum of its shards. Sums are exact: every update lands in
//! exactly one shard, and reads add them up.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Cells per cache-line pair: 128 bytes, the unit adjacent-line prefetchers
/// pull in together.
const CELLS_PER_LINE: usize = 16;

/// Two cache lines of cells, aligned so that no two shards share one.
#[repr(align(128))]
struct Line([AtomicU64; CELLS_PER_LINE]);

impl Line {
    fn new() -> Self {
        Self(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

/// How many shards every sharded value has: twice the cores (so threads
/// beyond the core count rarely share a shard with a running thread),
/// rounded up to a power of two, between 4 and 64.
pub(crate) fn shard_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        (cores * 2).next_power_of_two().clamp(4, 64)
    })
}

/// Next shard index to give a thread.
static NEXT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's shard index; `usize::MAX` until first use.
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// This thread's shard index (not yet reduced to a value's shard count).
#[inline]
fn shard() -> usize {
    SHARD
        .try_with(|s| {
            let i = s.get();
            if i == usize::MAX { assign(s) } else { i }
        })
        // A thread whose locals are gone (a destructor that records) uses
        // shard 0: still exact, only not contention-free.
        .unwrap_or(0)
}

#[cold]
fn assign(s: &Cell<usize>) -> usize {
    let i = NEXT.fetch_add(1, Ordering::Relaxed);
    s.set(i);
    i
}

/// `width` counters, each split across [`shard_count`] shards.
pub(crate) struct Cells {
    lines: Box<[Line]>,
    /// Lines per shard.
    stride: usize,
    width: usize,
    /// `shard_count() - 1`.
    mask: usize,
}

impl std::fmt::Debug for Cells {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sums: Vec<u64> = (0..self.width).map(|i| self.sum(i)).collect();
        f.debug_struct("Cells")
            .field("shards", &(self.mask + 1))
            .field("sums", &sums)
            .finish()
    }
}

impl Cells {
    pub(crate) fn new(width: usize) -> Self {
        let shards = shard_count();
        let stride = width.div_ceil(CELLS_PER_LINE).max(1);
        Self {
            lines: (0..shards * stride).map(|_| Line::new()).collect(),
            stride,
            width,
            mask: shards - 1,
        }
    }

    /// Bytes these cells take on the heap.
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.lines)
    }

    #[inline]
    fn cell(&self, shard: usize, i: usize) -> &AtomicU64 {
        let line = &self.lines[(shard & self.mask) * self.stride + i / CELLS_PER_LINE];
        &line.0[i % CELLS_PER_LINE]
    }

    /// Adds `v` (wrapping) to counter `i` in this thread's shard.
    #[inline]
    pub(crate) fn add(&self, i: usize, v: u64) {
        self.cell(shard(), i).fetch_add(v, Ordering::Relaxed);
    }

    /// Adds 1 to counter `i` and `v` to counter `j`, in this thread's shard.
    #[inline]
    pub(crate) fn add_two(&self, i: usize, j: usize, v: u64) {
        let s = shard();
        self.cell(s, i).fetch_add(1, Ordering::Relaxed);
        self.cell(s, j).fetch_add(v, Ordering::Relaxed);
    }

    /// Counter `i`: the (wrapping) sum of its shards.
    pub(crate) fn sum(&self, i: usize) -> u64 {
        (0..=self.mask).fold(0u64, |acc, s| {
            acc.wrapping_add(self.cell(s, i).load(Ordering::Relaxed))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_are_exact_across_threads() {
        let cells = Cells::new(20);
        std::thread::scope(|s| {
            for t in 0..8u64 {
                let cells = &cells;
                s.spawn(move || {
                    for _ in 0..10_000 {
                        cells.add(0, 1);
                        cells.add_two(17, 19, t);
                    }
                });
            }
        });
        assert_eq!(cells.sum(0), 80_000);
        assert_eq!(cells.sum(17), 80_000);
        assert_eq!(cells.sum(19), 10_000 * (0..8).sum::<u64>());
        assert_eq!(cells.sum(5), 0);
    }

    #[test]
    fn shards_never_share_a_cache_line() {
        let cells = Cells::new(18);
        let addr = |s, i| std::ptr::from_ref(cells.cell(s, i)) as usize / 128;
        for s in 0..shard_count() - 1 {
            assert!(addr(s, 17) < addr(s + 1, 0), "shard {s} touches the next");
        }
        assert_eq!(cells.heap_bytes(), shard_count() * 256);
    }

    #[test]
    #[allow(clippy::cast_sign_loss, clippy::cast_possible_wrap)]
    fn wrapping_adds_make_signed_sums() {
        let cells = Cells::new(1);
        cells.add(0, 3);
        std::thread::scope(|s| {
            s.spawn(|| cells.add(0, -5i64 as u64));
        });
        assert_eq!(cells.sum(0) as i64, -2);
    }
}
