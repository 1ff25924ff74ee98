//! Integration tests of smsim-harness, linked once.

mod net;
mod oracle;
mod serve;
mod simulation;
