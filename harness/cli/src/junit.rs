//! JUnit XML for CI systems: certification reports (one test suite per adapter, one test
//! case per clause) and sweeps (one test suite per scenario, one test case per seed or per
//! scenario). Kept out of the certification kit so a third party's `assert_certified` does
//! not pull in an XML writer it never uses.

use crate::sweep_output::{ScenarioSweep, SeedOutcome};
use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
use smsim_certify::{Outcome, Report};
use std::time::Duration;

/// How a sweep's JUnit report is cut into test cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SweepCases {
    /// One test case per scenario × seed (fine for thousands of seeds).
    PerSeed,
    /// One test case per scenario, its failing seeds listed (for 10⁶ seeds).
    PerScenario,
}

/// The sweeps as JUnit XML: one test suite per scenario. A failure's message names the
/// invariant; its text holds the evidence and the command that reproduces it.
pub fn sweep(sweeps: &[ScenarioSweep], cases: SweepCases) -> String {
    let mut junit = quick_junit::Report::new("smsim sweep");
    for sweep in sweeps {
        let classname = format!("sweep.{}", sweep.scenario);
        let mut suite = TestSuite::new(classname.clone());
        let mut add = |name: String, status: TestCaseStatus| {
            let mut case = TestCase::new(name, status);
            case.set_classname(classname.clone());
            suite.add_test_case(case);
        };
        match cases {
            SweepCases::PerSeed => {
                for seed in &sweep.seeds {
                    add(format!("seed {}", seed.seed), seed_status(seed));
                }
            }
            SweepCases::PerScenario => {
                let failures = &sweep.failures;
                let status = match failures.first() {
                    None => TestCaseStatus::success(),
                    Some(first) => {
                        let seeds: Vec<String> = failures.iter().map(|seed| seed.seed.to_string()).collect();
                        let mut status = seed_status(first);
                        let description = format!(
                            "failing seeds ({} of {}): {}\n\nfirst failure, seed {}:\n{}",
                            failures.len(),
                            sweep.runs,
                            seeds.join(" "),
                            first.seed,
                            failure_text(first)
                        );
                        status.set_description(description);
                        status
                    }
                };
                add(format!("{} seeds", sweep.runs), status);
            }
        }
        if !sweep.uncovered.is_empty() {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(format!("expected coverage never reached: {}", sweep.uncovered.join(", ")));
            add("expected coverage".into(), status);
        }
        junit.add_test_suite(suite);
    }
    junit.to_string().expect("JUnit reports serialise")
}

fn seed_status(seed: &SeedOutcome) -> TestCaseStatus {
    let Some(violation) = &seed.violation else { return TestCaseStatus::success() };
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
    status
        .set_message(format!(
            "invariant `{}` broken at {} ms: {}",
            violation.invariant, violation.at_ms, violation.message
        ))
        .set_type(violation.invariant.name())
        .set_description(failure_text(seed));
    status
}

fn failure_text(seed: &SeedOutcome) -> String {
    let mut text = String::new();
    if let Some(violation) = &seed.violation {
        text.push_str(&violation.to_string());
    }
    text.push_str(&format!("reproduce with:\n  {}\n", seed.reproduce));
    text
}

/// The certification reports as JUnit XML: one test suite per adapter, one test case per
/// clause; a failed clause carries its statement and evidence, one that does not apply is
/// skipped with the reason.
pub fn certification(reports: &[Report]) -> String {
    let mut junit = quick_junit::Report::new("smsim certify");
    for report in reports {
        let mut suite = TestSuite::new(format!("certify.{}", report.adapter));
        for clause in &report.clauses {
            let status = match &clause.outcome {
                Outcome::Pass => TestCaseStatus::success(),
                Outcome::Fail(evidence) => {
                    let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    status.set_message(clause.clause.statement).set_description(evidence.as_str());
                    status
                }
                Outcome::NotApplicable(reason) => {
                    let mut status = TestCaseStatus::skipped();
                    status.set_message(reason.as_str());
                    status
                }
            };
            let mut case = TestCase::new(clause.clause.id, status);
            case.set_classname(format!("certify.{}", report.adapter)).set_time(Duration::from_millis(clause.millis));
            suite.add_test_case(case);
        }
        junit.add_test_suite(suite);
    }
    junit.to_string().expect("JUnit reports serialise")
}

/// A live run as JUnit XML: one test suite, one test case per invariant; a broken one
/// carries its violation, one live mode cannot observe is skipped with the reason.
pub fn live(report: &smsim_live::report::LiveReport) -> String {
    use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
    let name = format!("live.{}.seed-{}", report.scenario, report.seed);
    let mut suite = TestSuite::new(name.clone());
    for row in &report.verdicts {
        let status = match (row.verdict, &row.why) {
            ("broken", _) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                let evidence: String = report
                    .violations
                    .iter()
                    .filter(|violation| violation.invariant == row.invariant)
                    .map(|violation| format!("{violation}rerun with: {}", report.reproduce))
                    .collect();
                status.set_message(row.invariant.name()).set_description(evidence);
                status
            }
            (_, Some(reason)) => {
                let mut status = TestCaseStatus::skipped();
                status.set_message(reason.as_str());
                status
            }
            _ => TestCaseStatus::success(),
        };
        let case_name = match &row.tenant {
            Some(tenant) => format!("{}.{tenant}", row.invariant.name()),
            None => row.invariant.name().to_owned(),
        };
        let mut case = TestCase::new(case_name, status);
        case.set_classname(name.clone());
        suite.add_test_case(case);
    }
    let mut junit = quick_junit::Report::new("smsim live");
    junit.add_test_suite(suite);
    junit.to_string().expect("JUnit reports serialise")
}

#[cfg(test)]
mod tests {
    use crate::sweep_output::{ScenarioSweep, SeedOutcome};
    use smsim_sim::oracle::{Invariant, Violation};

    fn failing_sweep() -> ScenarioSweep {
        let seed = |seed: u64, broken: bool| SeedOutcome {
            seed,
            violation: broken.then(|| Violation {
                invariant: Invariant::AtMostOnce,
                at_ms: 1_234,
                message: "the provider accepted msg_1_2 2 times".into(),
                evidence: vec!["accepted at 1200 ms as M00000003".into()],
            }),
            reproduce: format!("smsim replay scenarios/demo.toml --seed {seed}"),
            simulated_ms: 5_000,
        };
        ScenarioSweep {
            scenario: "demo".into(),
            path: "scenarios/demo.toml".into(),
            runs: 3,
            passed: false,
            seeds: vec![seed(1, false), seed(2, true), seed(3, true)],
            failures: vec![seed(2, true), seed(3, true)],
            coverage: Default::default(),
            uncovered: Vec::new(),
            timelines: Vec::new(),
            wall_s: 0.1,
        }
    }

    #[test]
    fn a_sweep_renders_one_case_per_seed_with_invariant_evidence_and_command() {
        let junit = super::sweep(&[failing_sweep()], super::SweepCases::PerSeed);
        assert_eq!(junit.matches("<testcase ").count(), 3, "{junit}");
        assert_eq!(junit.matches("<failure ").count(), 2, "{junit}");
        assert!(junit.contains("invariant `at-most-once` broken at 1234 ms"), "{junit}");
        assert!(junit.contains("M00000003") && junit.contains("smsim replay scenarios/demo.toml --seed 2"), "{junit}");
    }

    #[test]
    fn a_sweep_per_scenario_lists_its_failing_seeds() {
        let junit = super::sweep(&[failing_sweep()], super::SweepCases::PerScenario);
        assert_eq!(junit.matches("<testcase ").count(), 1, "{junit}");
        assert!(junit.contains("failing seeds (2 of 3): 2 3"), "{junit}");
    }

    use smsim_certify::{certify, Options, Subject};
    use smsim_core::domain::ProviderKind;

    #[test]
    fn a_certification_report_renders_as_junit() {
        let options = Options {
            only: vec!["submit.single".into(), "submit.batch".into()],
            system_seeds: 1,
            ..Options::default()
        };
        let report = certify(&Subject::builtin(ProviderKind::Twilio), &options);
        let junit = super::certification(&[report]);
        assert!(junit.contains("<testcase name=\"submit.single\"") && junit.contains("<skipped"), "{junit}");
    }
}
