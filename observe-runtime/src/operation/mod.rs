//! One monitored call: its static callsite, its guard, and its outcome.

mod callsite;
mod context;
mod guard;
mod monitored;
mod outcome;

pub use callsite::{Callsite, Messages};
pub use context::{ContextValue, ContextWriter, DebugValue, DisplayValue, debug, display};
pub use guard::{Guard, Hint, call_once};
pub use monitored::{Monitored, monitored};
pub use outcome::{
    DescribeDebug, DescribeDisplay, DescribeName, ErrWrap, ErrorInfo, IsResult, Never, NotResult,
    Wrap,
};
