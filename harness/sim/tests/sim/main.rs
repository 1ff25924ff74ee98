//! Integration tests of smsim-sim, linked once.

mod hostile;
mod incidents;
mod layers;
mod net;
mod oracle;
mod simulation;
mod spec;
