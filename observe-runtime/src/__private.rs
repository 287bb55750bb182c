//! What the `monitor_performance` expansion names. Not a public API: it may
//! change in any release.

pub use crate::__callsite;
pub use crate::correlation::CallScope;
pub use crate::operation::{
    Callsite, ContextWriter, DescribeDebug, DescribeDisplay, DescribeName, ErrWrap, FIELDS, Guard,
    Hint, IsResult, NotResult, Wrap, call_once, call_scope, debug, display, typed,
};
pub use tracing_core;
