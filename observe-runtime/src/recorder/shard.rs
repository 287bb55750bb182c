//! Values split into per-thread shards, so that threads calling the same
//! operation on different cores never write the same cache line.
//!
//! Each value has a block of cells per thread slot
//! ([`thread_slot`](crate::base::thread_slot)), made on that slot's first
//! update. A thread holding an exclusive slot is the only writer of its
//! block, so its updates are a plain load and store: no locked
//! instruction, no cache line shared with another writer. Slot 0, the
//! shared block, takes atomic read-modify-write operations: still exact,
//! only contended. A value is read as the wrapping sum of its blocks.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::base::thread_slot::{self, SHARED};

/// Cells per block line: 128 bytes, the unit adjacent-line prefetchers
/// pull in together.
const CELLS_PER_LINE: usize = 16;

/// Two cache lines of cells, aligned so that no two blocks share one.
#[repr(align(128))]
struct Line([AtomicU64; CELLS_PER_LINE]);

impl Line {
    fn new() -> Self {
        Self(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

/// One slot's cells.
struct Block(Box<[Line]>);

impl Block {
    fn new(width: usize) -> Self {
        Self(
            (0..width.div_ceil(CELLS_PER_LINE))
                .map(|_| Line::new())
                .collect(),
        )
    }

    #[inline(always)]
    fn cell(&self, i: usize) -> &AtomicU64 {
        &self.0[i / CELLS_PER_LINE].0[i % CELLS_PER_LINE]
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.0)
    }
}

/// The block a thread writes, and how.
#[derive(Clone, Copy)]
pub(crate) struct Writer<'a> {
    block: &'a Block,
    /// Whether the thread is the block's only writer.
    exclusive: bool,
}

impl Writer<'_> {
    /// Adds `v` (wrapping) to cell `i`.
    #[inline(always)]
    pub(crate) fn add(self, i: usize, v: u64) {
        let cell = self.block.cell(i);
        if self.exclusive {
            // The only writer: a load and a store, no locked instruction.
            cell.store(
                cell.load(Ordering::Relaxed).wrapping_add(v),
                Ordering::Relaxed,
            );
        } else {
            cell.fetch_add(v, Ordering::Relaxed);
        }
    }
}

/// `width` cells: a shared block, and one block per exclusive slot made on
/// that slot's first update. Only cells below `exclusive_width` are ever
/// written through an exclusive slot; the rest (rare values) always go to
/// the shared block, so exclusive blocks stay small.
pub(crate) struct Sharded {
    exclusive_width: usize,
    shared: Block,
    slots: Box<[OnceLock<Block>]>,
}

impl std::fmt::Debug for Sharded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sharded")
            .field("exclusive_width", &self.exclusive_width)
            .field(
                "slots_in_use",
                &self.slots.iter().filter(|s| s.get().is_some()).count(),
            )
            .finish_non_exhaustive()
    }
}

impl Sharded {
    pub(crate) fn new(width: usize, exclusive_width: usize) -> Self {
        Self {
            exclusive_width: exclusive_width.min(width),
            shared: Block::new(width),
            slots: (0..=thread_slot::slot_count())
                .map(|_| OnceLock::new())
                .collect(),
        }
    }

    /// Where the calling thread writes cells below `exclusive_width`.
    #[inline(always)]
    pub(crate) fn writer(&self) -> Writer<'_> {
        let slot = thread_slot::slot() as usize;
        match self.slots.get(slot).filter(|_| slot != SHARED as usize) {
            Some(cell) => Writer {
                block: cell.get_or_init(|| Block::new(self.exclusive_width)),
                exclusive: true,
            },
            None => self.shared(),
        }
    }

    /// The shared block, for cells at or above `exclusive_width`.
    #[inline]
    pub(crate) fn shared(&self) -> Writer<'_> {
        Writer {
            block: &self.shared,
            exclusive: false,
        }
    }

    /// Cell `i`: the wrapping sum of its blocks.
    pub(crate) fn sum(&self, i: usize) -> u64 {
        let mut total = self.shared.cell(i).load(Ordering::Relaxed);
        if i < self.exclusive_width {
            for block in self.slots.iter().filter_map(OnceLock::get) {
                total = total.wrapping_add(block.cell(i).load(Ordering::Relaxed));
            }
        }
        total
    }

    /// Bytes on the heap: the slot table and every block made so far.
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        self.shared.bytes()
            + std::mem::size_of_val(&*self.slots)
            + self
                .slots
                .iter()
                .filter_map(OnceLock::get)
                .map(Block::bytes)
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::thread_slot::{TEST_SLOTS, slot_count};

    fn exclusive() -> std::sync::MutexGuard<'static, ()> {
        TEST_SLOTS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[test]
    fn sums_are_exact_across_threads_beyond_the_slot_count() {
        let _slots = exclusive();
        let cells = Sharded::new(40, 20);
        let threads = slot_count() as u64 * 2 + 3;
        std::thread::scope(|s| {
            for t in 0..threads {
                let cells = &cells;
                s.spawn(move || {
                    for _ in 0..10_000 {
                        cells.writer().add(0, 1);
                        cells.writer().add(19, t);
                        cells.shared().add(39, 1);
                    }
                });
            }
        });
        assert_eq!(cells.sum(0), threads * 10_000);
        assert_eq!(cells.sum(19), 10_000 * (0..threads).sum::<u64>());
        assert_eq!(cells.sum(39), threads * 10_000);
        assert_eq!(cells.sum(5), 0);
    }

    #[test]
    fn values_carry_on_when_a_slot_changes_hands() {
        let _slots = exclusive();
        let cells = Sharded::new(1, 1);
        std::thread::scope(|s| {
            for _ in 0..slot_count() * 3 {
                s.spawn(|| cells.writer().add(0, 2)).join().expect("thread");
            }
        });
        assert_eq!(cells.sum(0), slot_count() as u64 * 6);
    }

    #[test]
    fn blocks_never_share_a_cache_line() {
        let _slots = exclusive();
        let cells = Sharded::new(18, 18);
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| cells.writer().add(17, 1));
            }
        });
        let blocks: Vec<&Block> = std::iter::once(&cells.shared)
            .chain(cells.slots.iter().filter_map(OnceLock::get))
            .collect();
        for b in &blocks {
            let first = std::ptr::from_ref(b.cell(0)) as usize;
            assert_eq!(first % 128, 0);
            assert_eq!(b.bytes(), 256);
        }
    }

    #[test]
    #[allow(clippy::cast_sign_loss, clippy::cast_possible_wrap)]
    fn wrapping_adds_make_signed_sums() {
        let cells = Sharded::new(1, 1);
        cells.writer().add(0, 3);
        std::thread::scope(|s| {
            s.spawn(|| cells.writer().add(0, -5i64 as u64));
        });
        assert_eq!(cells.sum(0) as i64, -2);
    }
}
