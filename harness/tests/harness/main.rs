//! Integration tests of smsim-harness, linked once.

mod net;
mod serve;
