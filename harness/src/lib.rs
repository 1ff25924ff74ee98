//! smsim-harness: the deterministic simulator, the certification kit and the `smsim` CLI.
//!
//! * [`scenario`] reads and validates scenario files.
//! * [`trace`] records every event of a run as JSON lines and hashes them.
//! * [`net`] binds the engine's network seams (listener, HTTP connector) to turmoil.

pub mod net;
pub mod scenario;
pub mod trace;
