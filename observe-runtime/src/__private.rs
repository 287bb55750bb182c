//! What the `monitor_performance` expansion names. Not a public API: it may
//! change in any release.

pub use crate::__callsite;
pub use crate::operation::{
    Callsite, ContextWriter, DescribeDebug, DescribeDisplay, DescribeName, ErrWrap, Guard, Hint,
    IsResult, NotResult, Wrap, call_once, debug, display, is_valid_operation, monitored,
};
pub use crate::record::{EVENT_NAME, FIELDS};
pub use tracing_core;
