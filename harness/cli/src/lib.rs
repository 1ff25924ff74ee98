//! smsim-cli: what the `smsim` command does beyond parsing its arguments.
//!
//! * [`serve`] runs the engine for real on SQLite and tokio sockets.
//! * [`bench`] measures simulation speed, real-mode throughput and memory (`smsim bench`).
//! * [`reference`] renders the book's reference tables from the code's registries.
//! * [`junit`] writes certification reports and sweeps as JUnit XML.
//! * [`timeline`] writes a run's timeline as one self-contained HTML page.
//! * [`sweep_output`] turns sweep reports into JSON and progress lines for CI.
//! * [`stdout`] prints the command's output, ending quietly when its reader has gone.
//!
//! The simulator itself is `smsim-sim` (`harness/sim`) and the certification kit
//! `smsim-certify` (`harness/certify`); this crate only wires them to a terminal.

pub mod bench;
pub mod bench_postgres;
pub mod junit;
pub mod reference;
pub mod serve;
pub mod stdout;
pub mod sweep_output;
pub mod timeline;
