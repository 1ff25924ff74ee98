//! Coverage marks: the rare paths a run can go through, written once.
//!
//! A leaf module. The provider, the driver and the run loop record marks by value, and a
//! scenario's `expect.coverage` names them; because a scenario file parses its marks
//! into [`Mark`], a misspelt mark is a load error with the file and line, not a sweep
//! that silently never reaches it. These are the `sometimes` properties: a sweep (and
//! `cargo test`) fails a scenario whose expected marks fired in none of its seeds.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Declares [`Mark`] from one table of `Variant = "name"` rows with their documentation,
/// grouped by the part of the simulation that records them.
macro_rules! marks {
    ($( $group:literal { $( $(#[doc = $doc:literal])+ $variant:ident = $name:literal, )* } )*) => {
        /// A rare path a run went through.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Mark {
            $( $( $(#[doc = $doc])+ #[serde(rename = $name)] $variant, )* )*
        }

        impl Mark {
            /// Every mark.
            pub const ALL: &'static [Mark] = &[$( $( Mark::$variant ),* ),*];

            /// Its name in scenario files and reports.
            pub fn name(self) -> &'static str {
                match self {
                    $( $( Mark::$variant => $name, )* )*
                }
            }

            /// The path the run went through: its documentation, in one paragraph.
            pub fn doc(self) -> &'static str {
                match self {
                    $( $( Mark::$variant => concat!($($doc),+).trim_ascii(), )* )*
                }
            }

            /// The part of the simulation that records it.
            pub fn group(self) -> &'static str {
                match self {
                    $( $( Mark::$variant => $group, )* )*
                }
            }
        }
    };
}

marks! {
    "The simulated provider" {
        /// A submit request answered with a scheduled outage's status.
        ProviderOutage = "provider_outage",
        /// A submit request answered 503 by the `provider_5xx` rate.
        Provider5xx = "provider_5xx",
        /// A submit request answered 429 by the `provider_429` rate.
        Provider429 = "provider_429",
        /// A request accepted whose answer never arrived.
        TimeoutAfterAccept = "timeout_after_accept",
        /// A request accepted and answered with garbage.
        MalformedAnswer = "malformed_answer",
        /// A bulk request partly refused.
        PartialBulkFailure = "partial_bulk_failure",
        /// The provider asked for the calling worker to crash after accepting its batch.
        CrashAfterAcceptRequested = "crash_after_accept_requested",
        /// A final report sent before the submit answer.
        ReportBeforeAnswerSent = "report_before_answer_sent",
        /// A report sent twice.
        DuplicateReportSent = "duplicate_report_sent",
        /// An intermediate report sent after the final one.
        IntermediateAfterFinalSent = "intermediate_after_final_sent",
        /// A report for an id nobody sent.
        UnknownIdReportSent = "unknown_id_report_sent",
        /// A report with a bad signature or token.
        ForgedReportSent = "forged_report_sent",
        /// Several reports in one webhook call.
        ReportsBatchedInOneWebhook = "reports_batched_in_one_webhook",
        /// An Infobip-style answer that left an accepted message out.
        AcceptedButLeftOutOfTheAnswer = "accepted_but_left_out_of_the_answer",
        /// An Infobip-style answer in another order than the request.
        AnswerShuffled = "answer_shuffled",
    }
    "The driver" {
        /// A driver request retried after a network error.
        RequestRetried = "request_retried",
        /// An enqueue retried after a network error.
        EnqueueRetried = "enqueue_retried",
        /// Two enqueue clicks with the same idempotency key.
        DoubleClickSameKey = "double_click_same_key",
        /// Two enqueue clicks with different keys.
        DoubleClickDifferentKeys = "double_click_different_keys",
        /// Two enqueue clicks without a key.
        DoubleClickNoKey = "double_click_no_key",
        /// An enqueue answered as a replay of an earlier one.
        EnqueueReplayed = "enqueue_replayed",
        /// A tenant tried another tenant's campaign.
        IsolationProbe = "isolation_probe",
        /// An operator paused a campaign.
        OperatorPause = "operator_pause",
        /// An operator resumed a campaign.
        OperatorResume = "operator_resume",
        /// An operator cancelled a campaign.
        OperatorCancel = "operator_cancel",
        /// An operator requeued failed messages.
        OperatorRetryFailed = "operator_retry_failed",
    }
    "The run loop: timed faults" {
        /// A worker host crashed.
        CrashWorker = "crash_worker",
        /// The API host crashed.
        CrashApi = "crash_api",
        /// The provider host crashed.
        CrashProvider = "crash_provider",
        /// A link was cut.
        Partition = "partition",
        /// A link held its messages.
        HeldLink = "held_link",
        /// A worker crashed holding a batch the provider had accepted.
        CrashBetweenAcceptAndCommit = "crash_between_accept_and_commit",
        /// A store call failed transiently.
        StoreTransientFailure = "store_transient_failure",
    }
    "The run loop: the store's journal" {
        /// A submission's outcome became unknown.
        SubmissionUnknown = "submission_unknown",
        /// An unknown outcome resolved as accepted.
        UnknownResolvedAccepted = "unknown_resolved_accepted",
        /// An unknown outcome settled as failed (refuted or timed out).
        UnknownSettledOrRefuted = "unknown_settled_or_refuted",
        /// A retryable failure sent a message back to the queue.
        RetryScheduled = "retry_scheduled",
        /// An operator requeued a failed message.
        FailedRequeuedByOperator = "failed_requeued_by_operator",
        /// A queued message was cancelled.
        QueuedCancelled = "queued_cancelled",
    }
}

impl Mark {
    /// The mark of a crash of `host` (`worker-N`, `api`, `provider`).
    pub fn crash_of(host: &str) -> Option<Mark> {
        match host {
            "api" => Some(Mark::CrashApi),
            "provider" => Some(Mark::CrashProvider),
            worker if worker.starts_with("worker-") => Some(Mark::CrashWorker),
            _ => None,
        }
    }
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_names_are_the_printed_names_and_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for &mark in Mark::ALL {
            assert!(seen.insert(mark.name()), "{mark} twice");
            let json = serde_json::to_string(&mark).unwrap();
            assert_eq!(json, format!("\"{mark}\""));
            assert_eq!(serde_json::from_str::<Mark>(&json).unwrap(), mark);
        }
        assert_eq!(Mark::ALL.len(), 39);
        assert_eq!(Mark::HeldLink.doc(), "A link held its messages.");
        assert_eq!(Mark::HeldLink.group(), "The run loop: timed faults");
    }
}
