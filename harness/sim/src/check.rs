//! The library entry point for tests: run a scenario over seeds inside `cargo test` and
//! fail with the reproduction command.
//!
//! ```no_run
//! smsim_sim::check::scenario_passes("scenarios/happy-path.toml", 1..4);
//! ```
//!
//! `SMSIM_SEED=n` pins every check to that one seed, to chase a failure.

use crate::run::{run, RunOptions, RunReport};
use crate::scenario::Scenario;
use std::ops::Range;
use std::path::Path;

/// The seeds to run: `SMSIM_SEED` if set, otherwise `seeds`.
pub fn seeds(seeds: Range<u64>) -> Vec<u64> {
    match std::env::var("SMSIM_SEED").ok().and_then(|seed| seed.parse().ok()) {
        Some(seed) => vec![seed],
        None => seeds.collect(),
    }
}

/// Runs the scenario at `path` for every seed and returns the reports; panics on the
/// first failing seed with the summary, the evidence and the command to reproduce.
pub fn scenario_passes(path: impl AsRef<Path>, seed_range: Range<u64>) -> Vec<RunReport> {
    let path = path.as_ref();
    let scenario = Scenario::load(path).unwrap_or_else(|error| panic!("{error}"));
    seeds(seed_range)
        .into_iter()
        .map(|seed| {
            let options = RunOptions {
                keep_trace: false,
                scenario_path: Some(path.display().to_string()),
                without_bug: false,
                adapters: None,
            };
            let report = run(&scenario, seed, &options)
                .unwrap_or_else(|error| panic!("{}: seed {seed}: {error}", path.display()));
            assert!(report.passed(), "\n{}", crate::report::summary(&report));
            report
        })
        .collect()
}
