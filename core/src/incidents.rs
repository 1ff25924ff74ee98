//! Historical bugs, re-introduced on purpose so the simulator can show it finds them.
//!
//! With the `incidents` cargo feature off (the default) [`active`] is a constant `false`
//! and every branch guarded by it compiles away: the engine is exactly the normal one.
//! With it on, one bug at a time can be switched on for the current thread — a simulation
//! runs on one thread, so parallel sweeps of different bugs do not interfere.
//!
//! Each bug lives at the place in the engine where it lived in the incident it comes from.
//! The store's bugs live in the shared store rules (`store::rules`), which every backend
//! calls, so a bug switched on acts on the in-memory store and on SQLite alike. Besides the
//! bugs of the incident write-ups there are bug classes an engine's own rules cannot see,
//! because the rule itself is the bug (the judge, `harness/judge`, keeps its own).
//!
//! The table below, `bugs!`, is the one list: each bug's name, its seed document, where
//! it lives and what it does. The book's table of bugs
//! (`docs/src/reference/generated/incidents.md`) is generated from it by `smsim reference`.

use std::fmt;
use std::str::FromStr;

/// Declares [`Bug`] from one table of `Variant = "name", seed "document", at "place"` rows
/// whose documentation says what the bug does.
macro_rules! bugs {
    ($( $(#[doc = $doc:literal])+ $variant:ident = $name:literal, seed $seed:literal, at $at:literal; )*) => {
        /// A historical bug.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Bug {
            $( $(#[doc = $doc])+ $variant, )*
        }

        impl Bug {
            /// Every bug.
            pub const ALL: [Bug; [$($name),*].len()] = [$( Bug::$variant ),*];

            /// Its name in scenarios.
            pub fn name(self) -> &'static str {
                match self {
                    $( Bug::$variant => $name, )*
                }
            }

            /// What it does: its documentation, in one paragraph.
            pub fn doc(self) -> &'static str {
                match self {
                    $( Bug::$variant => concat!($($doc),+).trim_ascii(), )*
                }
            }

            /// The incident write-up it comes from (a file number in `../shared/seeds/`,
            /// or an issue), or `—` for a bug class no incident had.
            pub fn seed_document(self) -> &'static str {
                match self {
                    $( Bug::$variant => $seed, )*
                }
            }

            /// Where in the engine it lives.
            pub fn location(self) -> &'static str {
                match self {
                    $( Bug::$variant => $at, )*
                }
            }
        }
    };
}

bugs! {
    /// Bumps the delivered counter and charges again on every report, duplicates included.
    CounterPerReport = "counter-per-report", seed "000, 001", at "store rules: `report_side_effect`";
    /// Returns ambiguous submissions to the queue, so they are sent again.
    ReaperResends = "reaper-resends", seed "000", at "store rules: `reap`";
    /// Completes a campaign when settled + in-flight reach the total.
    CompletionFromCounters = "completion-from-counters", seed "000, 004", at "store rules: `completes`";
    /// Counts delivered messages twice and does not clamp progress.
    UnboundedProgress = "unbounded-progress", seed "004", at "domain: progress";
    /// Checks credit at enqueue but reserves nothing; charges at acceptance.
    CreditsNotReserved = "credits-not-reserved", seed "002", at "store rules: `enqueue_plan`, `move_message`";
    /// Maps bulk answer entries to messages shifted by one.
    BulkIdsShifted = "bulk-ids-shifted", seed "003", at "Mitto adapter";
    /// Puts messages still with a worker back in the queue.
    ResumeRequeuesInFlight = "resume-requeues-in-flight", seed "issue 4", at "store rules: `resume_plan`";
    /// A lattice edge too many: a late intermediate report takes a final message back to
    /// `accepted`.
    FinalReopened = "final-reopened", seed "—", at "domain: `MessageStatus::allows`";
    /// Prices each message by its template's segments, not its rendered body's.
    TemplatePriced = "template-priced", seed "—", at "domain: `plan_each`";
    /// Refunds an unknown outcome instead of charging it.
    UnknownRefunded = "unknown-refunded", seed "—", at "domain: `ledger::is_charged`";
    /// A cancel with nothing left in flight ends the campaign `completed`.
    CancelCompletes = "cancel-completes", seed "—", at "store rules: `cancelled_status`";
    /// Looks a messaging-service send up by the account's own sender, which the service never used:
    /// it finds nothing, and the message is released though sent.
    LookupByOwnSender = "lookup-by-own-sender", seed "—", at "Twilio adapter: `lookup`";
    /// Requeues a refused submission to go again at once, ignoring the backoff and the provider's
    /// `Retry-After`.
    RetryWithoutBackoff = "retry-without-backoff", seed "—", at "domain: `RetryPolicy::decide`";
    /// Starts a scheduled campaign when it is enqueued, not at its start time.
    ScheduleIgnored = "schedule-ignored", seed "—", at "store rules: `enqueue_target`";
    /// Lets any tenant send through another tenant's private account.
    PrivateAccountShared = "private-account-shared", seed "—", at "domain: `TrafficAccount::usable_by`";
    /// Renews the lease between chunks but sends every chunk, held or not.
    SendsAfterLeaseLost = "sends-after-lease-lost", seed "—", at "worker: `submit_claim`";
    /// Fills a strict rate-limit bucket with a second's worth, so a quiet account bursts to twice
    /// its limit.
    StrictBurstIgnored = "strict-burst-ignored", seed "—", at "domain: `Rate::capacity`";
    /// Checks a template's length but not its placeholders, so a malformed one is stored
    /// and fails only when it renders.
    TemplateUnchecked = "template-unchecked", seed "—", at "domain: `template::check`";
    /// Records a final report's status but not the error code it carries: the message keeps
    /// its earlier error, or none, and its failures are filed under the wrong cause.
    ReportErrorDropped = "report-error-dropped", seed "—", at "store rules: `report_error`";
    /// Takes a worker's write for a message that is still `submitting`, whoever holds its lease
    /// now: a stale worker's hand-back puts another worker's message back in the queue.
    StaleWriteTaken = "stale-write-taken", seed "—", at "store rules: `record_submission`";
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
