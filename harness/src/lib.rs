//! smsim-harness: the deterministic simulator, the certification kit and the `smsim` CLI.
//!
//! * [`scenario`] reads and validates scenario files.
//! * [`trace`] records every event of a run as JSON lines and hashes them.
//! * [`serve`] runs the engine for real on SQLite and tokio sockets.
//! * [`net`] binds the engine's network seams (listener, HTTP connector) to turmoil.

pub mod net;
pub mod scenario;
pub mod serve;
pub mod trace;
