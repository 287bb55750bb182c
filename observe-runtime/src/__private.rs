//! What the `monitor_performance` expansion names, and the types its
//! signatures mention. Not a public API: it may change in any release.

pub use crate::__callsite;
pub use crate::__objective;
pub use crate::base::names::is_valid_operation;
pub use crate::operation::{
    Callsite, ContextValue, ContextWriter, DebugValue, DescribeDebug, DescribeDisplay,
    DescribeName, DisplayValue, ErrWrap, ErrorInfo, Guard, Hint, IsResult, Messages, Monitored,
    Never, NotResult, Wrap, call_once, debug, display, monitored,
};
pub use crate::record::{EVENT_NAME, FIELDS};
pub use crate::slo::DeclaredObjective;
pub use crate::volume::sample_threshold;
pub use inventory;
pub use tracing_core;
