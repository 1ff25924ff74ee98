//! What `smsim sweep` tells a CI system: progress while it runs (a bar on a terminal,
//! plain lines in a log), and at the end JSON, JUnit XML ([`crate::junit::sweep`]) and a
//! coverage report saying in how many seeds each coverage mark fired.
//!
//! Seeds are kept by seed number, whatever order the worker threads finish them in, so
//! every output of a sweep is the same on every machine.

use serde::Serialize;
use smsim_sim::oracle::Violation;
use smsim_sim::run::RunReport;
use smsim_sim::sweep::SweepReport;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// One seed's outcome, as CI reports need it.
#[derive(Clone, Debug, Serialize)]
pub struct SeedOutcome {
    /// The seed.
    pub seed: u64,
    /// The broken invariant, if any.
    pub violation: Option<Violation>,
    /// The command that reproduces the seed.
    pub reproduce: String,
    /// Simulated milliseconds.
    pub simulated_ms: u64,
}

/// A coverage mark's reach over a sweep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MarkReach {
    /// Seeds in which it fired at least once.
    pub seeds: u64,
    /// Times it fired, over all seeds.
    pub count: u64,
}

/// The sweep of one scenario, for CI outputs.
#[derive(Debug, Serialize)]
pub struct ScenarioSweep {
    /// Scenario name.
    pub scenario: String,
    /// Scenario file.
    pub path: String,
    /// Seeds run.
    pub runs: u64,
    /// Whether every seed passed and every expected mark fired.
    pub passed: bool,
    /// Every seed run, in seed order (for JUnit; the JSON lists only the failing ones, so
    /// a shard of a million-seed sweep writes a small file).
    #[serde(skip)]
    pub seeds: Vec<SeedOutcome>,
    /// The failing seeds, in seed order.
    pub failures: Vec<SeedOutcome>,
    /// Per coverage mark, how many seeds reached it.
    pub coverage: BTreeMap<String, MarkReach>,
    /// Marks the scenario expects that no seed reached.
    pub uncovered: Vec<String>,
    /// Timelines written for failing seeds.
    pub timelines: Vec<String>,
    /// Wall time of the sweep (seconds); the only field that differs between machines.
    pub wall_s: f64,
}

impl ScenarioSweep {
    /// The coverage report: per mark, in how many of the seeds it fired.
    pub fn coverage_report(&self) -> String {
        let mut out = format!("  coverage over {} seeds (mark: seeds reached, times fired):\n", self.runs);
        if self.coverage.is_empty() {
            out.push_str("    nothing rare happened in any seed\n");
        }
        for (mark, reach) in &self.coverage {
            let share = reach.seeds as f64 * 100.0 / self.runs.max(1) as f64;
            out.push_str(&format!("    {mark:<36} {:>8} seeds ({share:5.1}%)  ×{}\n", reach.seeds, reach.count));
        }
        for mark in &self.uncovered {
            out.push_str(&format!("    {mark:<36} never reached (expected by the scenario)\n"));
        }
        out
    }
}

/// A seed's outcome and the coverage marks it fired, with how often.
type SeedMarks = (SeedOutcome, Vec<(String, u64)>);

/// Collects seeds as a sweep finishes them, from any thread.
#[derive(Debug, Default)]
pub struct Collected {
    seeds: Mutex<BTreeMap<u64, SeedMarks>>,
}

impl Collected {
    /// Notes a finished run.
    pub fn add(&self, report: &RunReport) {
        let outcome = SeedOutcome {
            seed: report.seed,
            violation: report.violation.clone(),
            reproduce: report.reproduce.clone(),
            simulated_ms: report.simulated_ms,
        };
        let marks = report.coverage.iter().map(|(mark, count)| (mark.clone(), *count)).collect();
        self.seeds.lock().expect("sweep outcomes poisoned").insert(report.seed, (outcome, marks));
    }

    /// The scenario's sweep, from what was collected and the sweep's report.
    pub fn into_sweep(self, path: &str, report: &SweepReport, wall_s: f64) -> ScenarioSweep {
        let mut coverage: BTreeMap<String, MarkReach> = BTreeMap::new();
        let mut seeds = Vec::new();
        for (outcome, marks) in self.seeds.into_inner().expect("sweep outcomes poisoned").into_values() {
            for (mark, count) in marks {
                let reach = coverage.entry(mark).or_default();
                reach.seeds += 1;
                reach.count += count;
            }
            seeds.push(outcome);
        }
        ScenarioSweep {
            scenario: report.scenario.clone(),
            path: path.to_owned(),
            runs: report.runs,
            passed: report.passed(),
            failures: seeds.iter().filter(|seed| seed.violation.is_some()).cloned().collect(),
            seeds,
            coverage,
            uncovered: report.uncovered.clone(),
            timelines: Vec::new(),
            wall_s,
        }
    }
}

/// Progress of a long sweep: an indicatif bar when stderr is a terminal, otherwise a plain
/// line about every tenth of the way and at every failure, which reads well in a CI log.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    name: String,
    total: u64,
    done: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicU64,
}

impl Progress {
    /// Progress over `total` seeds of scenario `name`.
    pub fn new(name: &str, total: u64, terminal: bool) -> Progress {
        let bar = terminal.then(|| {
            let bar = indicatif::ProgressBar::new(total);
            let style = indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} seeds, {per_sec}, eta {eta} {msg}",
            )
            .expect("the progress template is valid")
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(name.to_owned());
            bar
        });
        Progress { bar, name: name.to_owned(), total, done: 0.into(), failed: 0.into() }
    }

    /// Notes a finished seed.
    pub fn seed_done(&self, report: &RunReport) {
        use std::sync::atomic::Ordering::SeqCst;
        let done = self.done.fetch_add(1, SeqCst) + 1;
        let failed = self.failed.fetch_add(u64::from(!report.passed()), SeqCst) + u64::from(!report.passed());
        match &self.bar {
            Some(bar) => {
                bar.inc(1);
                if failed > 0 {
                    bar.set_message(format!("({failed} failed)"));
                }
            }
            None => {
                let step = (self.total / 10).max(1);
                if !report.passed() {
                    eprintln!("sweep {}: seed {} failed ({done}/{} seeds run)", self.name, report.seed, self.total);
                } else if done % step == 0 || done == self.total {
                    eprintln!("sweep {}: {done}/{} seeds, {failed} failed", self.name, self.total);
                }
            }
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coverage_report_counts_seeds_not_firings() {
        let mut coverage = BTreeMap::new();
        coverage.insert("held_link".to_owned(), MarkReach { seeds: 3, count: 40 });
        let sweep = ScenarioSweep {
            scenario: "demo".into(),
            path: "scenarios/demo.toml".into(),
            runs: 4,
            passed: false,
            seeds: Vec::new(),
            failures: Vec::new(),
            coverage,
            uncovered: vec!["crash_worker".into()],
            timelines: Vec::new(),
            wall_s: 0.0,
        };
        let report = sweep.coverage_report();
        assert!(report.contains("held_link") && report.contains("3 seeds ( 75.0%)  ×40"), "{report}");
        assert!(report.contains("crash_worker") && report.contains("never reached"), "{report}");
    }
}
