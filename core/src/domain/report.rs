//! What a delivery report does to a message.
//!
//! Reports arrive duplicated, out of order, before the submission they describe was
//! recorded, and after the campaign completed. [`decide`] is the single rule for all of
//! them: a report may only move a message forward along the lattice; anything else is
//! recorded and ignored. Incident 000 bumped a counter on every report; here a duplicate
//! report is a no-op by construction because the status it asks for is already held.

use super::status::{MessageStatus, TransitionCause};
use serde::{Deserialize, Serialize};

/// A delivery status as the provider reported it, mapped onto the lattice.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    /// Intermediate: the provider has it (queued, sending, sent to carrier).
    Accepted,
    /// Final: delivered to the handset.
    Delivered,
    /// Final: the carrier could not deliver it.
    Undelivered,
    /// Final: validity period ran out.
    Expired,
    /// Final: rejected by the provider or carrier.
    Rejected,
    /// A status string the adapter does not know; reported, never guessed.
    Unrecognized(String),
}

impl ReportStatus {
    /// The message status this report asks for, if it maps onto the lattice.
    pub fn target(&self) -> Option<MessageStatus> {
        match self {
            ReportStatus::Accepted => Some(MessageStatus::Accepted),
            ReportStatus::Delivered => Some(MessageStatus::Delivered),
            ReportStatus::Undelivered => Some(MessageStatus::Undelivered),
            ReportStatus::Expired => Some(MessageStatus::Expired),
            ReportStatus::Rejected => Some(MessageStatus::Rejected),
            ReportStatus::Unrecognized(_) => None,
        }
    }
}

/// What to do with a report for a message currently in some status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum ReportDecision {
    /// Move the message through these statuses, in order.
    Apply {
        /// The statuses to pass through (one or two: `unknown → accepted → delivered`).
        path: Vec<MessageStatus>,
    },
    /// The message already holds this status: a duplicate.
    Duplicate,
    /// The report would move the message backwards or sideways out of a final status.
    IgnoredBackwards,
    /// The submission has not been recorded yet: keep the report until it is.
    Park,
    /// The status string is not one the adapter knows.
    Unrecognized,
}

/// The rule for applying a report asking for `report` to a message in `current`.
pub fn decide(current: MessageStatus, report: &ReportStatus) -> ReportDecision {
    let Some(target) = report.target() else {
        return ReportDecision::Unrecognized;
    };
    if current == target {
        return ReportDecision::Duplicate;
    }
    match current {
        // The answer to the submit request has not been recorded; the report is real
        // news but must wait until the message has its provider id.
        MessageStatus::Submitting | MessageStatus::Queued => ReportDecision::Park,
        // A report resolves an ambiguous submission: the provider has the message.
        MessageStatus::Unknown => {
            let mut path = vec![MessageStatus::Accepted];
            if target != MessageStatus::Accepted {
                path.push(target);
            }
            ReportDecision::Apply { path }
        }
        _ if current.allows(target, TransitionCause::Engine) => ReportDecision::Apply { path: vec![target] },
        _ => ReportDecision::IgnoredBackwards,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use MessageStatus::*;

    #[test]
    fn a_final_report_on_an_accepted_message_settles_it() {
        assert_eq!(decide(Accepted, &ReportStatus::Delivered), ReportDecision::Apply { path: vec![Delivered] });
    }

    #[test]
    fn a_duplicate_report_changes_nothing() {
        assert_eq!(decide(Delivered, &ReportStatus::Delivered), ReportDecision::Duplicate);
    }

    #[test]
    fn an_intermediate_status_after_a_final_one_is_ignored() {
        assert_eq!(decide(Delivered, &ReportStatus::Accepted), ReportDecision::IgnoredBackwards);
        assert_eq!(decide(Delivered, &ReportStatus::Undelivered), ReportDecision::IgnoredBackwards);
    }

    #[test]
    fn a_report_before_the_submit_answer_is_parked() {
        assert_eq!(decide(Submitting, &ReportStatus::Delivered), ReportDecision::Park);
    }

    #[test]
    fn a_report_resolves_an_unknown_submission() {
        assert_eq!(
            decide(Unknown, &ReportStatus::Delivered),
            ReportDecision::Apply { path: vec![Accepted, Delivered] }
        );
        assert_eq!(decide(Unknown, &ReportStatus::Accepted), ReportDecision::Apply { path: vec![Accepted] });
    }

    #[test]
    fn an_unknown_status_string_is_reported_not_guessed() {
        assert_eq!(decide(Accepted, &ReportStatus::Unrecognized("WEIRD".into())), ReportDecision::Unrecognized);
    }

    fn any_report() -> impl Strategy<Value = ReportStatus> {
        prop_oneof![
            Just(ReportStatus::Accepted),
            Just(ReportStatus::Delivered),
            Just(ReportStatus::Undelivered),
            Just(ReportStatus::Expired),
            Just(ReportStatus::Rejected),
            "[A-Z]{1,8}".prop_map(ReportStatus::Unrecognized),
        ]
    }

    proptest! {
        /// Any sequence of reports, in any order and with any duplicates, applied to an
        /// accepted message follows the lattice and ends in at most one final status,
        /// which the first final report decided.
        #[test]
        fn reports_in_any_order_follow_the_lattice(reports in proptest::collection::vec(any_report(), 0..32)) {
            let mut status = Accepted;
            let first_final = reports.iter().filter_map(ReportStatus::target).find(|target| target.is_terminal());
            for report in &reports {
                if let ReportDecision::Apply { path } = decide(status, report) {
                    for next in path {
                        prop_assert!(status.allows(next, TransitionCause::Engine));
                        status = next;
                    }
                }
            }
            prop_assert_eq!(status, first_final.unwrap_or(Accepted));
        }
    }
}
