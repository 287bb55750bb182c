//! How a monitored call ended: the `status` label of its metrics and the
//! `performance.status` of its log line.

use std::fmt;

/// The outcome of one monitored call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// The call returned, and not an `Err`.
    Success,
    /// The call returned `Err(_)`.
    Error,
    /// The call panicked (the guard was dropped while unwinding).
    Panic,
    /// The call's future was dropped before it finished.
    Cancelled,
}

impl Status {
    /// Every status, in index order.
    pub(crate) const ALL: [Status; 4] = [Self::Success, Self::Error, Self::Panic, Self::Cancelled];

    /// The label value: `success`, `error`, `panic` or `cancelled`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
            Self::Panic => "panic",
            Self::Cancelled => "cancelled",
        }
    }

    pub(crate) const fn index(self) -> usize {
        match self {
            Self::Success => 0,
            Self::Error => 1,
            Self::Panic => 2,
            Self::Cancelled => 3,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
