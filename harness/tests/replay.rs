//! Byte-for-byte replay and the reviewed snapshots of every scenario.
//!
//! These tests compare trace hashes, so they run alone in their own test process, one
//! after the other: simulations running on other threads of the same process have been
//! seen to shift a crash scenario's trace (see the README's note on determinism).

use smsim_harness::check::scenario_passes;
use smsim_harness::run::{run, RunOptions};
use smsim_harness::scenario::Scenario;
use std::path::{Path, PathBuf};

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn load(name: &str) -> Scenario {
    Scenario::load(&scenarios_dir().join(name)).unwrap()
}

/// The only test of this binary, so nothing else runs beside it.
#[test]
fn traces_replay_and_outcomes_match_their_snapshots() {
    seeds_replay_byte_for_byte();
    every_scenario_holds_its_invariants();
}

/// Same scenario + seed ⇒ same trace hash, run after run.
fn seeds_replay_byte_for_byte() {
    for (name, seed) in [("happy-path.toml", 11), ("swarm-chaos.toml", 3)] {
        let scenario = load(name);
        let first = run(&scenario, seed, &RunOptions::default()).unwrap();
        let second = run(&scenario, seed, &RunOptions::default()).unwrap();
        assert_eq!(first.trace_hash, second.trace_hash, "{name} seed {seed} did not replay");
        assert_eq!(first.events, second.events);
        assert_eq!(first.coverage, second.coverage);
    }
}

/// Every scenario file (regressions included) runs through one loader, a few seeds each.
fn every_scenario_holds_its_invariants() {
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in [scenarios_dir(), scenarios_dir().join("regressions")] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            files.extend(
                entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "toml")),
            );
        }
    }
    files.sort();
    assert!(files.len() >= 2, "no scenarios found in {}", scenarios_dir().display());
    for file in files {
        let scenario = Scenario::load(&file).unwrap();
        if scenario.expect.incident.is_some() {
            continue;
        }
        let seeds = match scenario.seed {
            Some(seed) => seed..seed + 1,
            None if scenario.faults.swarm => 1..3,
            None => 1..2,
        };
        let reports = scenario_passes(&file, seeds);
        snapshot(&scenario, &reports[0]);
    }
}

/// A scenario's outcome at its first seed, reviewed like code (`cargo insta review`).
fn snapshot(scenario: &Scenario, report: &smsim_harness::run::RunReport) {
    let outcome = serde_json::json!({
        "scenario": report.scenario,
        "seed": report.seed,
        "trace_hash": report.trace_hash,
        "events": report.events,
        "campaigns": report.campaigns,
        "charged": report.charged,
        "faults": report.faults,
        "invariants_checked": report.checks,
        "coverage": report.coverage,
    });
    insta::with_settings!({ snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots"), prepend_module_to_snapshot => false }, {
        insta::assert_json_snapshot!(scenario.name.clone(), outcome);
    });
}
