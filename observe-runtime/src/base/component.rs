//! The contract between the builder and the components it starts: the
//! metrics back-ends and the system sampler implement it, the builder stops
//! them, and neither needs to know the other.

use std::fmt;
use std::time::Duration;

/// Work that runs in the background while observe is installed (an HTTP
/// listener, a push loop, a sampler), stopped when the guard drops.
pub trait Background: Send + fmt::Debug {
    /// Stops, delivering what it still holds, within `timeout`.
    fn stop(self: Box<Self>, timeout: Duration);
}
