//! Whole simulations: determinism, every scenario file, bad scenario files.

use smsim_harness::check::scenario_passes;
use smsim_harness::run::{run, RunOptions};
use smsim_harness::scenario::{Scenario, ScenarioError};
use std::path::{Path, PathBuf};

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

fn load(name: &str) -> Scenario {
    Scenario::load(&scenarios_dir().join(name)).unwrap()
}

/// Same scenario + seed ⇒ same trace hash, run after run.
#[test]
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

#[test]
fn different_seeds_take_different_paths() {
    let scenario = load("swarm-chaos.toml");
    let one = run(&scenario, 1, &RunOptions::default()).unwrap();
    let two = run(&scenario, 2, &RunOptions::default()).unwrap();
    assert_ne!(one.trace_hash, two.trace_hash);
}

/// Every scenario file (regressions included) runs through one loader, a few seeds each.
#[test]
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

#[test]
fn a_swarm_sweep_goes_through_the_dangerous_paths() {
    let scenario = load("swarm-chaos.toml");
    let mut seen = std::collections::BTreeSet::new();
    for seed in 1..5 {
        seen.extend(run(&scenario, seed, &RunOptions::default()).unwrap().coverage.into_keys());
    }
    for mark in [
        "report_before_answer_sent",
        "duplicate_report_sent",
        "submission_unknown",
        "timeout_after_accept",
        "enqueue_replayed",
    ] {
        assert!(seen.contains(mark), "no seed of 1..5 went through `{mark}`; seen: {seen:?}");
    }
}

fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    let scenario = Scenario::parse(text, Path::new("bad.toml"))?;
    scenario.validate(Path::new("bad.toml"))?;
    Ok(scenario)
}

#[test]
fn bad_scenarios_are_refused_with_file_line_and_expectation() {
    let unknown_key = parse("duration_s = 10\nworkerz = 3\n").unwrap_err().to_string();
    assert!(unknown_key.starts_with("bad.toml:2:"), "{unknown_key}");
    assert!(unknown_key.contains("workerz"), "{unknown_key}");
    let wrong_type = parse("[engine]\nworkers = \"three\"\n").unwrap_err().to_string();
    assert!(wrong_type.starts_with("bad.toml:2:"), "{wrong_type}");
    let zero_workers = parse("[engine]\nworkers = 0\n").unwrap_err().to_string();
    assert!(zero_workers.contains("engine.workers") && zero_workers.contains("1 to 64"), "{zero_workers}");
    let negative_rate = parse("[faults.rates]\nprovider_5xx = -0.5\n").unwrap_err().to_string();
    assert!(negative_rate.contains("provider_5xx") && negative_rate.contains("0..=1"), "{negative_rate}");
    let late_action = parse("duration_s = 10\n[[tenants]]\nname = \"a\"\n[[traffic_accounts]]\nname = \"m\"\nprovider = \"mitto\"\n[[campaigns]]\nname = \"c\"\ntenant = \"a\"\ntraffic_account = \"m\"\n[[operator]]\naction = \"pause\"\ncampaign = \"c\"\nat_s = 99\n")
        .unwrap_err()
        .to_string();
    assert!(late_action.contains("operator[0].at_s"), "{late_action}");
    let missing = Scenario::load(Path::new("/nonexistent/scenario.toml")).unwrap_err().to_string();
    assert!(missing.contains("/nonexistent/scenario.toml"), "{missing}");
}
