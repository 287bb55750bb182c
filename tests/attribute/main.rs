//! What one annotated call does: its outcome and error classification, its
//! log line (byte for byte), its call record, the form of its correlation ID, and an expansion that stays
//! clean under a user's strictest lints.
//!
//! One process for all of them is safe: every test records through a
//! thread-scoped subscriber and recorder (`observe::testing::capture`, or
//! its own `with_default`/`with_local_recorder`) or through none, and none
//! installs a global subscriber or recorder. The one process-wide setting
//! touched here, the ID format that `uuid_ids` switches to UUID v7 and back,
//! is read by no other test in this binary: none looks at an ID's form (the
//! ones that compare IDs set them with `correlation::scope`).

mod errors;
mod impl_block;
mod line_format;
// Public: its items are public API, as at a crate root, and it denies
// every warning, `unreachable_pub` among them.
pub mod lints;
mod logs;
mod outcomes;
mod record;
mod redaction;
mod uuid_ids;
