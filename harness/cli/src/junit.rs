//! JUnit XML for CI systems: certification reports (one test suite per adapter, one test
//! case per clause). Kept out of the certification kit so a third party's
//! `assert_certified` does not pull in an XML writer it never uses.

use smsim_certify::{Outcome, Report};
use std::time::Duration;

/// The certification reports as JUnit XML: one test suite per adapter, one test case per
/// clause; a failed clause carries its statement and evidence, one that does not apply is
/// skipped with the reason.
pub fn certification(reports: &[Report]) -> String {
    use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
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

#[cfg(test)]
mod tests {
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
