//! Every incident of the seed documents, both directions: with its bug switched on, a
//! sweep of a few seeds finds the violation the scenario names and prints how to
//! reproduce it; with the bug off, the same seeds pass.

use smsim_harness::oracle::Invariant;
use smsim_harness::run::{run, RunOptions};
use smsim_harness::scenario::Scenario;
use std::path::{Path, PathBuf};

fn incident_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/incidents");
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
                smsim_harness::report::summary(&report)
            );
        }
    }
}
