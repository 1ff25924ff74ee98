//! Integration tests of smsim-sim, linked once.

mod incidents;
mod net;
mod oracle;
mod simulation;
