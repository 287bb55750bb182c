//! The shared vocabulary every other module may use and that uses none of
//! them: the clock, metric names, a call's status, the background-component
//! contract, the JSON writers and per-thread slots.

#[cfg(test)]
pub(crate) mod alloc_count;
pub(crate) mod clock;
mod component;
pub(crate) mod duration;
pub(crate) mod json;
pub mod names;
pub(crate) mod percent;
pub(crate) mod setting;
mod status;
pub(crate) mod supervise;
pub(crate) mod thread_slot;
#[cfg(test)]
pub(crate) mod wait;

pub use component::Background;
pub use status::Status;
