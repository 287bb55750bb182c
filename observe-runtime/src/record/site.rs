//! Call sites by number: a consumer that hands calls to another thread
//! names each call's site with a small integer, and that thread looks the
//! operation, module, file, line and fixed messages up, instead of every
//! call copying (and escaping) the same strings.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{PoisonError, RwLock};

use tracing_core::Metadata;

/// What a number stands for: the site's operation, its `tracing`
/// metadata (module, file, line) and its fixed messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SiteInfo {
    pub(crate) operation: &'static str,
    pub(crate) meta: &'static Metadata<'static>,
    /// `{op} completed` and the like, as JSON strings: the site's
    /// `operation::Messages` (which the layers above read), spelled out
    /// here because records come before operations.
    pub(crate) messages: &'static [&'static str; 4],
}

/// Every site numbered so far, by number. Only grows, and by one entry per
/// annotated function at most: sites are statics.
static SITES: RwLock<Vec<SiteInfo>> = RwLock::new(Vec::new());

/// A site's number, given the first time it is asked for; kept in the
/// site's static, so later calls read one atomic.
#[derive(Debug)]
pub(crate) struct SiteNumber(AtomicU32);

/// Stored for a site not numbered yet: numbers are stored plus one.
const UNNUMBERED: u32 = 0;

impl SiteNumber {
    pub(crate) const fn new() -> Self {
        Self(AtomicU32::new(UNNUMBERED))
    }

    /// The number of `site`, numbering it now if it has none. `u32::MAX`
    /// (which names no site) if four billion sites were numbered before.
    #[inline]
    pub(crate) fn get(&self, site: impl FnOnce() -> SiteInfo) -> u32 {
        match self.0.load(Ordering::Acquire) {
            UNNUMBERED => self.assign(site()),
            n => n - 1,
        }
    }

    #[cold]
    fn assign(&self, site: SiteInfo) -> u32 {
        let mut sites = SITES.write().unwrap_or_else(PoisonError::into_inner);
        // Another thread may have numbered it while this one waited; both
        // store under the lock, so this load sees its number.
        if let n @ 1.. = self.0.load(Ordering::Acquire) {
            return n - 1;
        }
        // At most `u32::MAX`, so the number is below it.
        let Ok(stored) = u32::try_from(sites.len() + 1) else {
            return u32::MAX;
        };
        sites.push(site);
        self.0.store(stored, Ordering::Release);
        stored - 1
    }
}

/// Appends the sites numbered from `into.len()` on to `into`: a reader
/// keeps its own copy and asks for the rest when it meets a number past
/// its end.
pub(crate) fn catch_up(into: &mut Vec<SiteInfo>) {
    let sites = SITES.read().unwrap_or_else(PoisonError::into_inner);
    if let Some(new) = sites.get(into.len()..) {
        into.extend_from_slice(new);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_keeps_its_number_and_a_reader_finds_it() {
        static META: Metadata<'static> = tracing_core::metadata!(
            name: "site test",
            target: "site::test",
            level: tracing_core::Level::INFO,
            fields: &[],
            callsite: &CALLSITE,
            kind: tracing_core::metadata::Kind::EVENT,
        );
        static CALLSITE: tracing_core::callsite::DefaultCallsite =
            tracing_core::callsite::DefaultCallsite::new(&META);
        static MESSAGES: [&str; 4] = ["\"done\"", "", "", ""];
        let info = |operation| {
            move || SiteInfo {
                operation,
                meta: &META,
                messages: &MESSAGES,
            }
        };
        let (a, b) = (SiteNumber::new(), SiteNumber::new());
        let first = a.get(info("a.op"));
        assert_eq!(a.get(info("ignored")), first, "numbered once");
        let second = b.get(info("b.op"));
        assert_ne!(first, second);
        let mut seen = Vec::new();
        catch_up(&mut seen);
        let at = |n: u32| seen[usize::try_from(n).unwrap()].operation;
        assert_eq!((at(first), at(second)), ("a.op", "b.op"));
    }
}
