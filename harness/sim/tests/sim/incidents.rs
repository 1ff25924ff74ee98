//! Every incident of the seed documents, both directions: with its bug switched on, a
//! sweep of a few seeds finds the violation the scenario names and prints how to
//! reproduce it; with the bug off, the same seeds pass.

use smsim_sim::oracle::Invariant;
use smsim_sim::run::{run, RunOptions};
use smsim_sim::scenario::Scenario;
use std::path::{Path, PathBuf};

fn incident_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/incidents");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_incident_is_found_with_its_bug_and_absent_without_it() {
    let files = incident_files();
    assert!(files.len() >= 7, "expected the seven incident reproductions, found {files:?}");
    for file in files {
        let scenario = Scenario::load(&file).unwrap();
        let incident =
            scenario.expect.incident.clone().unwrap_or_else(|| panic!("{} names no incident", file.display()));
        let breaks = Invariant::parse(&incident.breaks).unwrap();
        let seeds = 1..=incident.within_seeds.unwrap_or(5);
        let path = file.display().to_string();
        let with_bug = RunOptions { scenario_path: Some(path.clone()), ..RunOptions::default() };
        let found = seeds
            .clone()
            .map(|seed| run(&scenario, seed, &with_bug).unwrap())
            .find(|report| !report.passed())
            .unwrap_or_else(|| panic!("{path}: bug `{}` went unnoticed for seeds {seeds:?}", incident.bug));
        let violation = found.violation.as_ref().unwrap();
        assert_eq!(violation.invariant, breaks, "{path}: expected `{breaks}` to break:\n{violation}");
        assert!(
            found.reproduce.starts_with(&format!("smsim replay {path} --seed {}", found.seed)),
            "{}",
            found.reproduce
        );
        let normal = RunOptions { scenario_path: Some(path.clone()), without_bug: true, ..RunOptions::default() };
        for seed in seeds.clone() {
            let report = run(&scenario, seed, &normal).unwrap();
            assert!(
                report.passed(),
                "{path} seed {seed} fails on the normal engine:\n{}",
                smsim_sim::report::summary(&report)
            );
        }
    }
}

/// `smsim shrink`'s core on a real failure: the shrunk plan still breaks the same
/// invariant and is no larger than the one it started from.
#[test]
fn a_failing_fault_plan_shrinks_and_still_fails() {
    use smsim_sim::shrink::{shrink, with_plan};
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/incidents/resend-after-crash.toml");
    let scenario = Scenario::load(&file).unwrap();
    let options = RunOptions::default();
    let failing = run(&scenario, 2, &options).unwrap();
    let broken = failing.violation.as_ref().expect("seed 2 finds the resend").invariant;
    let still_fails = |plan: &smsim_sim::world::FaultPlan| {
        run(&with_plan(&scenario, plan), 2, &options).unwrap().violation.is_some_and(|v| v.invariant == broken)
    };
    let (smaller, runs) = shrink(failing.faults.clone(), 8, still_fails);
    assert!(runs <= 8);
    assert!(still_fails(&smaller), "the shrunk plan no longer fails");
    assert!(smaller.events.len() <= failing.faults.events.len());
    assert!(smaller.rates.crash_after_accept <= failing.faults.rates.crash_after_accept);
}
