//! The `smsim` command.

fn main() {}
