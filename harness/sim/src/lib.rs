//! smsim-sim: the deterministic simulator that runs the smsim engine on turmoil's
//! simulated network and clock and checks it after every step.
//!
//! * [`scenario`] reads and validates scenario files.
//! * [`world`] turns a scenario and a seed into turmoil hosts, a store, a simulated
//!   [`provider`], a [`driver`] and a fault plan.
//! * [`run`] steps the world, applies faults, heals, and asks the [`oracle`] after every step.
//! * [`check`] runs scenarios over seeds inside `cargo test`.
//! * [`sweep`] runs many seeds in parallel; [`shrink`] minimises a failing fault plan.
//! * [`trace`] records every event of a run as JSON lines and hashes them.
//! * [`timeline`] gathers what a run's HTML timeline shows, beside the trace; the
//!   provider logs the [`exchange`]s it draws.
//! * [`report`] prints a run's outcome for people.
//! * [`net`] binds the engine's network seams (listener, HTTP connector) to turmoil.
//! * [`faulty_store`] wraps a store with seeded transient failures.
//! * Leaf vocabularies that the modules above share, each written once and checked when
//!   a scenario loads: [`fault`] (the rate faults), [`coverage`] (the marks),
//!   [`invariant`] (the oracle's properties). Keeping them leaves means `scenario`
//!   depends on no module that depends on it (`driver → scenario`, `oracle → driver`).
//!   The modules form layers with no cycle (`docs/src/design/architecture.md`, "Layers";
//!   a test reads the `crate::` paths to keep it so).
//!
//! Nothing here parses command lines or writes files of its own accord: the `smsim`
//! command (`harness/cli`) does that, and the certification kit (`harness/certify`)
//! reuses the [`run`] loop for its system arm.

pub mod check;
pub mod clock;
pub mod coverage;
pub mod driver;
pub mod exchange;
pub mod fault;
pub mod faulty_store;
pub mod invariant;
pub mod net;
pub mod oracle;
pub mod provider;
pub mod report;
pub mod run;
pub mod scenario;
pub mod shrink;
pub mod sweep;
pub mod timeline;
pub mod trace;
pub mod world;
