//! The unit tests' global allocator: the system's, counting the
//! allocations and frees of a thread that asks it to, so a test can say
//! what a path allocates or leaves behind.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting for the threads that ask it to.
struct Counting;

/// What a thread counted: allocations (every `realloc` included, growing
/// or not) and frees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) allocs: u64,
    pub(crate) frees: u64,
}

thread_local! {
    /// `Some`: this thread counts.
    static COUNTS: Cell<Option<Counts>> = const { Cell::new(None) };
}

fn note(f: impl FnOnce(&mut Counts)) {
    let _ = COUNTS.try_with(|c| {
        if let Some(mut counts) = c.get() {
            f(&mut counts);
            c.set(Some(counts));
        }
    });
}

// SAFETY: every call is passed on to `System` unchanged.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(|c| c.allocs += 1);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(|c| c.frees += 1);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(|c| c.allocs += 1);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What `f` allocates and frees on this thread.
pub(crate) fn counted(f: impl FnOnce()) -> Counts {
    COUNTS.with(|c| c.set(Some(Counts::default())));
    f();
    COUNTS.with(|c| c.replace(None)).unwrap_or_default()
}
