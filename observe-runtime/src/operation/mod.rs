//! One monitored call: its static callsite, its guard, and its outcome.

mod callsite;
mod context;
mod guard;
mod interop;
mod monitored;
mod outcome;

#[cfg(feature = "otlp")]
pub(crate) use callsite::Message;
pub use callsite::{Callsite, Messages};
pub use context::{ContextValue, ContextWriter, DebugValue, DisplayValue, debug, display};
pub use guard::{Guard, Hint, call_once};
pub use interop::{TRACING_SPAN_NAME, set_tracing_spans};
pub use monitored::{Monitored, monitored};
pub use outcome::{
    DescribeDebug, DescribeDisplay, DescribeName, ErrWrap, ErrorInfo, IsResult, Never, NotResult,
    Wrap,
};
