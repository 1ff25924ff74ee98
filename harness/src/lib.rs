//! smsim-harness: the deterministic simulator, the certification kit and the `smsim` CLI.
//!
//! * [`scenario`] reads and validates scenario files.
//! * [`net`] binds the engine's network seams (listener, HTTP connector) to turmoil.

pub mod net;
pub mod scenario;
