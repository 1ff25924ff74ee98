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

impl Kind {
    /// Its name, as reports and the reference print it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Always => "always",
            Kind::Eventually => "eventually",
            Kind::Sometimes => "sometimes",
        }
    }
}

/// Declares [`Invariant`] from one table of `Variant = "name", kind` rows with their
/// documentation, so an invariant cannot be listed without its name, its kind and the
/// sentence the reference page prints for it.
macro_rules! invariants {
    ($( $(#[doc = $doc:literal])+ $variant:ident = $name:literal, $kind:ident; )*) => {
        /// The invariants, by name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum Invariant {
            $( $(#[doc = $doc])+ #[serde(rename = $name)] $variant, )*
        }

        impl Invariant {
            /// Every invariant.
            pub const ALL: [Invariant; [$($name),*].len()] = [$( Invariant::$variant ),*];

            /// Its name in scenarios and reports.
            pub fn name(self) -> &'static str {
                match self {
                    $( Invariant::$variant => $name, )*
                }
            }

            /// When it must hold: liveness and attribution once faults healed (a report may
            /// still be on its way before), every other one after every step.
            pub fn kind(self) -> Kind {
                match self {
                    $( Invariant::$variant => Kind::$kind, )*
                }
            }

            /// What it demands: its documentation, in one paragraph.
            pub fn doc(self) -> &'static str {
                match self {
                    $( Invariant::$variant => concat!($($doc),+).trim_ascii(), )*
                }
            }
        }
    };
}

invariants! {
    /// Status counts ≤ total and sum to it; sent + failed ≤ contacts; stored = recount.
    Counters = "counters", Always;
    /// 0 ≤ progress ≤ 100, never decreasing between operator actions.
    Progress = "progress", Always;
    /// The provider accepted each message at most once.
    AtMostOnce = "at-most-once", Always;
    /// Balance ≥ 0; charges match acceptances; money conserved.
    Money = "money", Always;
    /// Every status change follows the lattice; terminal stays terminal.
    Transitions = "transitions", Always;
    /// Completed ⇔ nothing pending; announced once.
    Completion = "completion", Always;
    /// Nothing is claimed after a pause or cancel committed.
    Halt = "halt", Always;
    /// Submissions per window within the account's and tenant's limits.
    Rate = "rate", Always;
    /// No tenant reads or changes another's; forged webhooks change nothing; no message to
    /// an opted-out or invalid number.
    Isolation = "isolation", Always;
    /// After healing: campaigns finish, reports are reflected, leases do not linger.
    Liveness = "liveness", Eventually;
    /// What the operator was told is what happened: an acknowledged cancel ends the
    /// campaign `cancelled` with no acceptance later than one lease after it; an
    /// acknowledged pause stops acceptances within one lease and the campaign does not
    /// complete while paused; an acknowledged resume leads to completion.
    Operator = "operator", Always;
    /// Every final report the engine acknowledged ends on the message the provider
    /// accepted under that id, with that report's status, and with the error code the
    /// report carried, if it carried one, as the message's last error.
    Attribution = "attribution", Eventually;
    /// Forged reports are refused and change nothing.
    Forgery = "forgery", Always;
    /// Every message is its campaign's template rendered for its contact: the customer
    /// gets the text the operator wrote, personalised as written.
    Content = "content", Always;
    /// A message the provider refused with a retryable error (429, 5xx) is tried again no
    /// sooner than the backoff and `Retry-After` allow, and fails for it only once its
    /// attempts are spent; an acknowledged retry-failed requeues the campaign's failures.
    Retries = "retries", Always;
    /// Bad input is refused with the documented answer — a template at fault with `400
    /// VALIDATION` on `body_template` naming the byte of the placeholder at fault, an
    /// import's bad rows by index and field, an import of more than 10 000 rows whole with
    /// `413 PAYLOAD_TOO_LARGE` — and changes nothing; an import's valid rows
    /// are counted created, updated or unchanged as the judge's own contact book counts
    /// them, and what the tenant then lists is that book.
    Input = "input", Always;
}

impl Invariant {
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
        assert_eq!(Invariant::ALL.len(), 16);
        assert_eq!(Invariant::Halt.doc(), "Nothing is claimed after a pause or cancel committed.");
        assert!(Invariant::Operator.doc().contains("one lease after it; an acknowledged pause"));
    }
}
