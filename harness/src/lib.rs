//! smsim-harness: the deterministic simulator, the certification kit and the `smsim` CLI.
