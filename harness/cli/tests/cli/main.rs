//! Integration tests of the `smsim` command, linked once.

mod browser;
mod cli;
mod docs;
mod live;
mod live_node;
mod many_processes;
mod official;
mod serve;
