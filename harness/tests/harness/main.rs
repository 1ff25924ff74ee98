//! Integration tests of smsim-harness, linked once.

mod certify;
mod cli;
mod hostile;
mod incidents;
mod net;
mod oracle;
mod serve;
mod simulation;
