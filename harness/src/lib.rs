//! smsim-harness: the deterministic simulator, the certification kit and the `smsim` CLI.
//!
//! * [`scenario`] reads and validates scenario files.
//! * [`world`] turns a scenario and a seed into turmoil hosts, a store, a simulated
//!   [`provider`], a [`driver`] and a fault plan.
//! * [`run`] steps the world, applies faults, heals, and asks the [`oracle`] after every step.
//! * [`check`] runs scenarios over seeds inside `cargo test`.
//! * [`sweep`] runs many seeds in parallel; [`shrink`] minimises a failing fault plan.
//! * [`trace`] records every event of a run as JSON lines and hashes them.
//! * [`serve`] runs the engine for real on SQLite and tokio sockets.
//! * [`certify`] judges a provider adapter clause by clause against stubbed providers.
//! * [`net`] binds the engine's network seams (listener, HTTP connector) to turmoil.
//! * [`bench`] measures simulation speed, real-mode throughput and memory (`smsim bench`).
//! * [`stdout`] prints the CLI's output, ending quietly when its reader has gone.

pub mod bench;
pub mod certify;
pub mod check;
pub mod clock;
pub mod driver;
pub mod faulty_store;
pub mod net;
pub mod oracle;
pub mod provider;
pub mod report;
pub mod run;
pub mod scenario;
pub mod serve;
pub mod shrink;
pub mod stdout;
pub mod sweep;
pub mod trace;
pub mod world;
