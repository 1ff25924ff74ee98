//! Integration tests of the `smsim` command, linked once.

mod cli;
mod many_processes;
mod serve;
