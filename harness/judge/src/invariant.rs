//! The invariants the judge decides, as named values with their kind.
//!
//! Scenarios name invariants (`expect.invariants`, `expect.incident.breaks`), live runs
//! report them, and the judge decides them: all three read this one list. Names are
//! parsed when a scenario loads, so a misspelt one is a load error.

use serde::{Deserialize, Serialize};
use std::fmt;

/// When an invariant must hold (stateright's property kinds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// After every step of the run, faults or not.
    Always,
    /// By the end of the heal phase, once faults stopped.
    Eventually,
    /// In at least one run of a sweep. The `sometimes` properties are the coverage marks
    /// a scenario expects (the simulator's `smsim_sim::coverage::Mark`), not invariants of
    /// one run.
    Sometimes,
}

/// The invariants, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Invariant {
    /// Status counts ≤ total and sum to it; sent + failed ≤ contacts; stored = recount.
    Counters,
    /// 0 ≤ progress ≤ 100, never decreasing between operator actions.
    Progress,
    /// The provider accepted each message at most once.
    AtMostOnce,
    /// Balance ≥ 0; charges match acceptances; money conserved.
    Money,
    /// Every status change follows the lattice; terminal stays terminal.
    Transitions,
    /// Completed ⇔ nothing pending; announced once.
    Completion,
    /// Nothing is claimed after a pause or cancel committed.
    Halt,
    /// Submissions per window within the account's and tenant's limits.
    Rate,
    /// No tenant reads or changes another's; forged webhooks change nothing; no message to
    /// an opted-out or invalid number.
    Isolation,
    /// After healing: campaigns finish, reports are reflected, leases do not linger.
    Liveness,
    /// What the operator was told is what happened: an acknowledged cancel ends the
    /// campaign `cancelled` with no acceptance later than one lease after it; an
    /// acknowledged pause stops acceptances within one lease and the campaign does not
    /// complete while paused; an acknowledged resume leads to completion.
    Operator,
    /// Every final report the engine acknowledged ends on the message the provider
    /// accepted under that id, with that report's status.
    Attribution,
    /// Forged reports are refused and change nothing.
    Forgery,
    /// Every message is its campaign's template rendered for its contact: the customer
    /// gets the text the operator wrote, personalised as written.
    Content,
    /// A message the provider refused with a retryable error (429, 5xx) is tried again no
    /// sooner than the backoff and `Retry-After` allow, and fails for it only once its
    /// attempts are spent; an acknowledged retry-failed requeues the campaign's failures.
    Retries,
    /// Bad input is refused with the documented answer — a template at fault with `400
    /// VALIDATION` on `body_template` naming the byte of the placeholder at fault, an
    /// import's bad rows by index and field — and changes nothing; an import's valid rows
    /// are counted created, updated or unchanged as the judge's own contact book counts
    /// them, and what the tenant then lists is that book.
    Input,
}

impl Invariant {
    /// Every invariant.
    pub const ALL: [Invariant; 16] = [
        Invariant::Counters,
        Invariant::Progress,
        Invariant::AtMostOnce,
        Invariant::Money,
        Invariant::Transitions,
        Invariant::Completion,
        Invariant::Halt,
        Invariant::Rate,
        Invariant::Isolation,
        Invariant::Liveness,
        Invariant::Operator,
        Invariant::Attribution,
        Invariant::Forgery,
        Invariant::Content,
        Invariant::Retries,
        Invariant::Input,
    ];

    /// Its name in scenarios and reports.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::Counters => "counters",
            Invariant::Progress => "progress",
            Invariant::AtMostOnce => "at-most-once",
            Invariant::Money => "money",
            Invariant::Transitions => "transitions",
            Invariant::Completion => "completion",
            Invariant::Halt => "halt",
            Invariant::Rate => "rate",
            Invariant::Isolation => "isolation",
            Invariant::Liveness => "liveness",
            Invariant::Operator => "operator",
            Invariant::Attribution => "attribution",
            Invariant::Forgery => "forgery",
            Invariant::Content => "content",
            Invariant::Retries => "retries",
            Invariant::Input => "input",
        }
    }

    /// When it must hold: liveness and attribution once faults healed (a report may still
    /// be on its way before), every other one after every step.
    pub fn kind(self) -> Kind {
        // Every invariant is listed: a new one must say which kind it is.
        match self {
            Invariant::Liveness | Invariant::Attribution => Kind::Eventually,
            Invariant::Counters
            | Invariant::Progress
            | Invariant::AtMostOnce
            | Invariant::Money
            | Invariant::Transitions
            | Invariant::Completion
            | Invariant::Halt
            | Invariant::Rate
            | Invariant::Isolation
            | Invariant::Operator
            | Invariant::Forgery
            | Invariant::Content
            | Invariant::Retries
            | Invariant::Input => Kind::Always,
        }
    }

    /// The invariant named `name`.
    pub fn parse(name: &str) -> Option<Invariant> {
        Invariant::ALL.into_iter().find(|invariant| invariant.name() == name)
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The serde names (what scenario files spell) are the names reports print.
    #[test]
    fn serde_names_are_the_printed_names() {
        for invariant in Invariant::ALL {
            let json = serde_json::to_string(&invariant).unwrap();
            assert_eq!(json, format!("\"{}\"", invariant.name()));
            assert_eq!(serde_json::from_str::<Invariant>(&json).unwrap(), invariant);
            assert_eq!(Invariant::parse(invariant.name()), Some(invariant));
        }
        assert_eq!(Invariant::Liveness.kind(), Kind::Eventually);
        assert_eq!(Invariant::Money.kind(), Kind::Always);
        assert_eq!(Invariant::Attribution.kind(), Kind::Eventually);
    }
}
