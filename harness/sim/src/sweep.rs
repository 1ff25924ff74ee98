//! Sweeps: many seeds of one or more scenarios, in parallel, with shards for CI matrices.
//!
//! Each simulation runs on one OS thread (turmoil is single-threaded and deterministic),
//! so `--jobs J` runs J seeds at once. Results are reported in seed order whatever the
//! order they finished in, so a sweep's output is as reproducible as its runs.

use crate::run::{run, RunOptions, RunReport};
use crate::scenario::Scenario;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Which seeds a sweep runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    /// The first seed.
    pub start: u64,
    /// How many seeds (before sharding).
    pub count: u64,
    /// This shard, 1-based, and the number of shards.
    pub shard: (u64, u64),
}

impl SeedRange {
    /// The seeds of this shard.
    pub fn seeds(&self) -> Vec<u64> {
        let (index, shards) = self.shard;
        (self.start..self.start + self.count).filter(|seed| (seed - self.start) % shards == index - 1).collect()
    }
}

/// The outcome of a sweep of one scenario.
#[derive(Debug)]
pub struct SweepReport {
    /// Scenario name.
    pub scenario: String,
    /// Seeds run.
    pub runs: u64,
    /// Failing runs, in seed order.
    pub failures: Vec<RunReport>,
    /// Coverage marks summed over the runs.
    pub coverage: BTreeMap<String, u64>,
    /// Marks the scenario expects (`expect.coverage`) that fired in none of the runs: a
    /// green sweep that never went where the scenario is meant to go proves nothing.
    pub uncovered: Vec<String>,
    /// Simulated milliseconds summed over the runs.
    pub simulated_ms: u64,
}

impl SweepReport {
    /// Whether every run passed and every expected coverage mark fired at least once.
    pub fn passed(&self) -> bool {
        self.failures.is_empty() && self.uncovered.is_empty()
    }
}

/// Runs `scenario` for every seed of `seeds` on `jobs` threads. Unless `keep_going`, it
/// stops starting new seeds after the first failure.
pub fn sweep(
    scenario: &Scenario,
    scenario_path: &str,
    seeds: &[u64],
    jobs: usize,
    keep_going: bool,
    on_done: &(dyn Fn(&RunReport) + Sync),
) -> anyhow::Result<SweepReport> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let results: Mutex<BTreeMap<u64, RunReport>> = Mutex::new(BTreeMap::new());
    let errors: Mutex<Vec<anyhow::Error>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let index = next.fetch_add(1, Ordering::SeqCst);
                let Some(&seed) = seeds.get(index) else { return };
                let options = RunOptions {
                    keep_trace: false,
                    scenario_path: Some(scenario_path.to_owned()),
                    without_bug: false,
                    adapters: None,
                };
                match run(scenario, seed, &options) {
                    Ok(report) => {
                        on_done(&report);
                        if !report.passed() && !keep_going {
                            stop.store(true, Ordering::SeqCst);
                        }
                        results.lock().expect("sweep results poisoned").insert(seed, report);
                    }
                    Err(error) => {
                        errors.lock().expect("sweep errors poisoned").push(error.context(format!("seed {seed}")));
                        stop.store(true, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    if let Some(error) = errors.into_inner().expect("sweep errors poisoned").into_iter().next() {
        return Err(error);
    }
    let results = results.into_inner().expect("sweep results poisoned");
    let mut coverage = BTreeMap::new();
    let mut simulated_ms = 0;
    let mut failures = Vec::new();
    let runs = results.len() as u64;
    for (_, report) in results {
        simulated_ms += report.simulated_ms;
        for (mark, count) in &report.coverage {
            *coverage.entry(mark.clone()).or_default() += count;
        }
        if !report.passed() {
            failures.push(report);
        }
    }
    let uncovered = scenario.expect.coverage.iter().filter(|mark| !coverage.contains_key(*mark)).cloned().collect();
    Ok(SweepReport { scenario: scenario.name.clone(), runs, failures, coverage, uncovered, simulated_ms })
}
