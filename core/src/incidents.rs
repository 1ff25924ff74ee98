//! Historical bugs, re-introduced on purpose so the simulator can show it finds them.
//!
//! With the `incidents` cargo feature off (the default) [`active`] is a constant `false`
//! and every branch guarded by it compiles away: the engine is exactly the normal one.
//! With it on, one bug at a time can be switched on for the current thread — a simulation
//! runs on one thread, so parallel sweeps of different bugs do not interfere.
//!
//! Each bug lives at the place in the engine where it lived in the incident it comes from.
//! The store's bugs live in the shared store rules (`store::rules`), which every backend
//! calls, so a bug switched on acts on the in-memory store and on SQLite alike:
//!
//! | bug | seed document | where | what it does |
//! |---|---|---|---|
//! | `counter-per-report` | 000, 001 | store rules: `report_side_effect` | bumps the delivered counter and charges again on every report, duplicates included |
//! | `reaper-resends` | 000 | store rules: `reap` | returns ambiguous submissions to the queue, so they are sent again |
//! | `completion-from-counters` | 000, 004 | store rules: `completes` | completes a campaign when settled + in-flight reach the total |
//! | `unbounded-progress` | 004 | domain: progress | counts delivered messages twice and does not clamp |
//! | `credits-not-reserved` | 002 | store rules: `enqueue_plan`, `move_message` | checks credit at enqueue but reserves nothing; charges at acceptance |
//! | `bulk-ids-shifted` | 003 | Mitto adapter | maps bulk answer entries to messages shifted by one |
//! | `resume-requeues-in-flight` | issue 4 | store rules: `resume_plan` | puts messages still with a worker back in the queue |
//!
//! And the bug classes an engine's own rules cannot see, because the rule itself is the
//! bug (the judge, `harness/judge`, keeps its own):
//!
//! | bug | where | what it does |
//! |---|---|---|
//! | `final-reopened` | domain: `MessageStatus::allows` | a lattice edge too many: a late intermediate report takes a final message back to `accepted` |
//! | `template-priced` | domain: `plan_messages` | prices each message by its template's segments, not its rendered body's |
//! | `unknown-refunded` | domain: `ledger::is_charged` | refunds an unknown outcome instead of charging it |
//! | `cancel-completes` | store rules: `cancelled_status` | a cancel with nothing left in flight ends the campaign `completed` |
//! | `lookup-by-own-sender` | Twilio adapter: `lookup` | looks a messaging-service send up by the account's own sender, which the service never used: it finds nothing, and the message is released though sent |
//! | `retry-without-backoff` | domain: `RetryPolicy::decide` | requeues a refused submission to go again at once, ignoring the backoff and the provider's `Retry-After` |
//! | `schedule-ignored` | store rules: `enqueue_target` | starts a scheduled campaign when it is enqueued, not at its start time |
//! | `private-account-shared` | domain: `TrafficAccount::usable_by` | lets any tenant send through another tenant's private account |
//! | `sends-after-lease-lost` | worker: `submit_claim` | renews the lease between chunks but sends every chunk, held or not |
//! | `strict-burst-ignored` | domain: `Rate::capacity` | fills a strict bucket with a second's worth, so a quiet account bursts to twice its limit |
//! | `template-unchecked` | domain: `template::check` | checks a template's length but not its placeholders, so a malformed one is stored and fails only when it renders |

use std::fmt;
use std::str::FromStr;

/// A historical bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bug {
    /// A counter bumped (and a charge made) on every delivery report.
    CounterPerReport,
    /// The reaper resends ambiguous submissions.
    ReaperResends,
    /// Completion decided from counters that include in-flight messages.
    CompletionFromCounters,
    /// Progress computed without a bound.
    UnboundedProgress,
    /// Credits checked at enqueue but not reserved.
    CreditsNotReserved,
    /// Bulk answer ids mapped to the wrong messages.
    BulkIdsShifted,
    /// Resume re-queues messages that are still being submitted.
    ResumeRequeuesInFlight,
    /// A late intermediate report reopens a final message.
    FinalReopened,
    /// Messages priced by their template, not their rendered body.
    TemplatePriced,
    /// An unknown outcome refunded instead of charged.
    UnknownRefunded,
    /// A cancel ends the campaign completed.
    CancelCompletes,
    /// A status lookup filters by a sender the messaging service never used.
    LookupByOwnSender,
    /// A refused submission goes again at once.
    RetryWithoutBackoff,
    /// A scheduled campaign starts when it is enqueued.
    ScheduleIgnored,
    /// A private traffic account is usable by every tenant.
    PrivateAccountShared,
    /// A worker sends messages whose lease it lost.
    SendsAfterLeaseLost,
    /// A strict rate limit bursts like the default one.
    StrictBurstIgnored,
    /// A template's placeholders are not checked where it enters.
    TemplateUnchecked,
}

impl Bug {
    /// Every bug.
    pub const ALL: [Bug; 18] = [
        Bug::CounterPerReport,
        Bug::ReaperResends,
        Bug::CompletionFromCounters,
        Bug::UnboundedProgress,
        Bug::CreditsNotReserved,
        Bug::BulkIdsShifted,
        Bug::ResumeRequeuesInFlight,
        Bug::FinalReopened,
        Bug::TemplatePriced,
        Bug::UnknownRefunded,
        Bug::CancelCompletes,
        Bug::LookupByOwnSender,
        Bug::RetryWithoutBackoff,
        Bug::ScheduleIgnored,
        Bug::PrivateAccountShared,
        Bug::SendsAfterLeaseLost,
        Bug::StrictBurstIgnored,
        Bug::TemplateUnchecked,
    ];

    /// Its name in scenarios.
    pub fn name(self) -> &'static str {
        match self {
            Bug::CounterPerReport => "counter-per-report",
            Bug::ReaperResends => "reaper-resends",
            Bug::CompletionFromCounters => "completion-from-counters",
            Bug::UnboundedProgress => "unbounded-progress",
            Bug::CreditsNotReserved => "credits-not-reserved",
            Bug::BulkIdsShifted => "bulk-ids-shifted",
            Bug::ResumeRequeuesInFlight => "resume-requeues-in-flight",
            Bug::FinalReopened => "final-reopened",
            Bug::TemplatePriced => "template-priced",
            Bug::UnknownRefunded => "unknown-refunded",
            Bug::CancelCompletes => "cancel-completes",
            Bug::LookupByOwnSender => "lookup-by-own-sender",
            Bug::RetryWithoutBackoff => "retry-without-backoff",
            Bug::ScheduleIgnored => "schedule-ignored",
            Bug::PrivateAccountShared => "private-account-shared",
            Bug::SendsAfterLeaseLost => "sends-after-lease-lost",
            Bug::StrictBurstIgnored => "strict-burst-ignored",
            Bug::TemplateUnchecked => "template-unchecked",
        }
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Bug {
    type Err = String;
    fn from_str(text: &str) -> Result<Bug, String> {
        Bug::ALL.into_iter().find(|bug| bug.name() == text).ok_or_else(|| {
            let names: Vec<&str> = Bug::ALL.iter().map(|bug| bug.name()).collect();
            format!("unknown bug `{text}`; expected one of {}", names.join(", "))
        })
    }
}

#[cfg(feature = "incidents")]
thread_local! {
    static ACTIVE: std::cell::Cell<Option<Bug>> = const { std::cell::Cell::new(None) };
}

/// Whether the engine was built with the `incidents` feature.
pub const AVAILABLE: bool = cfg!(feature = "incidents");

/// Switches `bug` on (or every bug off) for the current thread. Without the `incidents`
/// feature, switching a bug on is refused.
pub fn activate(bug: Option<Bug>) -> Result<(), String> {
    #[cfg(feature = "incidents")]
    {
        ACTIVE.with(|active| active.set(bug));
        Ok(())
    }
    #[cfg(not(feature = "incidents"))]
    match bug {
        None => Ok(()),
        Some(bug) => Err(format!(
            "bug `{bug}` needs an engine built with the `incidents` feature (cargo … --features incidents)"
        )),
    }
}

/// Whether `bug` is switched on for the current thread.
#[inline(always)]
pub fn active(bug: Bug) -> bool {
    #[cfg(feature = "incidents")]
    {
        ACTIVE.with(|active| active.get() == Some(bug))
    }
    #[cfg(not(feature = "incidents"))]
    {
        let _ = bug;
        false
    }
}
