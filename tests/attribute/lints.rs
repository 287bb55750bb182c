//! The expansion stays clean under a user's strictest lints: this file is
//! compiled by `cargo clippy --all-targets -- -D warnings` in CI. (`unsafe
//! fn` is covered by the trybuild pass cases: this workspace forbids
//! `unsafe` code.)
#![deny(warnings, clippy::all, clippy::pedantic)]

use std::sync::Arc;

use observe::monitor_performance;

/// A store.
#[derive(Debug, Default)]
pub struct Store {
    items: Vec<u32>,
}

/// Errors of the store.
#[derive(Debug)]
pub enum StoreError {
    /// Not there.
    Missing,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("missing")
    }
}

impl Store {
    /// Gets an item.
    ///
    /// # Errors
    /// When the index is out of range.
    #[monitor_performance("store.get", context(index = index))]
    pub fn get(&self, index: usize) -> Result<u32, StoreError> {
        self.items.get(index).copied().ok_or(StoreError::Missing)
    }

    /// Adds an item.
    #[monitor_performance(level = "debug", slow = "10ms")]
    pub fn push(&mut self, v: u32) -> &mut u32 {
        self.items.push(v);
        let last = self.items.len() - 1;
        &mut self.items[last]
    }

    /// Counts items.
    #[monitor_performance]
    #[must_use]
    pub fn count(self: Arc<Self>) -> usize {
        self.items.len()
    }

    /// Counts items, asynchronously.
    #[monitor_performance(context(shown = %self.items.len(), dbg = ?self.items))]
    pub async fn count_async(&self) -> usize {
        self.items.len()
    }
}

/// Parses.
///
/// # Errors
/// When the text is not a number.
#[monitor_performance]
pub fn parse(s: &str) -> Result<i64, std::num::ParseIntError> {
    let v: i64 = s.parse()?;
    if v < 0 {
        return Ok(0);
    }
    Ok(v)
}

/// Sums.
#[monitor_performance]
pub fn sum<T>(items: impl IntoIterator<Item = T>) -> T
where
    T: std::iter::Sum<T>,
{
    items.into_iter().sum()
}

#[test]
fn strict_lints_compile_and_run() {
    let mut s = Store::default();
    *s.push(1) += 1;
    assert_eq!(s.get(0).ok(), Some(2));
    assert!(s.get(5).is_err());
    assert_eq!(futures::executor::block_on(s.count_async()), 1);
    assert_eq!(Arc::new(s).count(), 1);
    assert_eq!(parse("-3").ok(), Some(0));
    assert_eq!(sum(vec![1, 2, 3]), 6);
}
