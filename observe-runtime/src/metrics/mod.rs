//! Metrics through the `metrics` facade: names, per-callsite handles, and
//! the Prometheus recorder.

mod handles;
pub mod names;

pub(crate) use handles::{Handles, Mode, finish, note_global_recorder, start};
