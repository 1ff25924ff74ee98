//! The rate faults, written once: each fault's name, what it does, and the upper bound
//! a swarm seed draws its rate from.
//!
//! A leaf module: scenarios spell the rates (`[faults.rates]`), the world draws and
//! merges them, the provider and the faulty store act on them, shrinking halves them and
//! the trace records them. All of those loop over [`Fault::ALL`] instead of naming
//! twelve fields each, so a new fault is one line of the table below.
//!
//! [`Fault::ALL`] is in declaration order, and that order is part of every seed's
//! outcome: swarm mode draws the rates in it, and the trace records [`FaultRates`] as a
//! JSON object in it. Append a new fault at the end.

use serde::{Deserialize, Serialize};

/// Declares [`Fault`] and [`FaultRates`] from one table of
/// `Variant / field: swarm upper bound, per occasion` rows with their documentation (what
/// happens, on each occasion, with the fault's probability).
macro_rules! faults {
    ($( $(#[doc = $doc:literal])+ $variant:ident / $field:ident : swarm $upper:literal, per $per:literal, )*) => {
        /// A fault that happens with a probability per occasion during the fault phase.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
        pub enum Fault {
            $( $(#[doc = $doc])+ $variant, )*
        }

        impl Fault {
            /// Every fault, in declaration order (the order of swarm draws and traces).
            pub const ALL: &'static [Fault] = &[$( Fault::$variant ),*];

            /// Its name in scenario files (`faults.rates.NAME`) and reports.
            pub fn name(self) -> &'static str {
                match self {
                    $( Fault::$variant => stringify!($field), )*
                }
            }

            /// What happens with its probability: its documentation, in one paragraph.
            pub fn doc(self) -> &'static str {
                match self {
                    $( Fault::$variant => concat!($($doc),+).trim_ascii(), )*
                }
            }

            /// The occasion its probability applies to (each submit request, each accepted
            /// message…).
            pub fn per(self) -> &'static str {
                match self {
                    $( Fault::$variant => $per, )*
                }
            }

            /// The highest rate a swarm seed draws for it.
            pub fn swarm_upper(self) -> f64 {
                match self {
                    $( Fault::$variant => $upper, )*
                }
            }
        }

        /// Per-occasion probabilities of faults during the fault phase, all in 0..=1.
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct FaultRates {
            $( $(#[doc = $doc])+ #[serde(default)] pub $field: f64, )*
        }

        impl FaultRates {
            /// The rate of `fault`.
            pub fn get(&self, fault: Fault) -> f64 {
                match fault {
                    $( Fault::$variant => self.$field, )*
                }
            }

            /// The rate of `fault`, to change.
            pub fn get_mut(&mut self, fault: Fault) -> &mut f64 {
                match fault {
                    $( Fault::$variant => &mut self.$field, )*
                }
            }
        }
    };
}

faults! {
    /// Answered 503 without accepting.
    Provider5xx / provider_5xx: swarm 0.2, per "submit request (and Infobip log lookup)",
    /// Answered 429 with `Retry-After: 2` without accepting.
    Provider429 / provider_429: swarm 0.2, per "submit request (and Infobip log lookup)",
    /// Accepted, but the answer is held for 600 s (the engine times out: an ambiguous
    /// outcome).
    TimeoutAfterAccept / timeout_after_accept: swarm 0.1, per "submit request",
    /// Each of its messages, with probability 0.3, is refused (Mitto: `THROTTLED` or
    /// `BLOCKED`; Infobip: `REJECTED_NETWORK`) or, Infobip only, accepted but left out of
    /// the answer.
    PartialBulkFailure / partial_bulk_failure: swarm 0.3, per "Mitto or Infobip request",
    /// Accepted, answered 200 with truncated JSON.
    MalformedAnswer / malformed_answer: swarm 0.1, per "submit request",
    /// The final report is sent a second time, 50 ms later.
    DuplicateReport / duplicate_report: swarm 0.5, per "accepted message",
    /// The final report is sent at once, before the submit answer (and without an
    /// intermediate report).
    ReportBeforeAnswer / report_before_answer: swarm 0.3, per "accepted message",
    /// An intermediate report 100 ms after the final one.
    IntermediateAfterFinal / intermediate_after_final: swarm 0.3, per "accepted message",
    /// Also a delivered report for an id nobody sent.
    UnknownIdReport / unknown_id_report: swarm 0.2, per "accepted message",
    /// Also an undelivered report with a wrong token or signature, sent once, at a third
    /// of the final report's delay.
    ForgedReport / forged_report: swarm 0.2, per "accepted message",
    /// Fails with a transient error before touching the store.
    StoreTransient / store_transient: swarm 0.05, per "writing store call",
    /// After the provider accepted, the calling worker host is crashed before the answer
    /// reaches it (restarted 2 s later).
    CrashAfterAccept / crash_after_accept: swarm 0.1, per "submit request",
}

impl FaultRates {
    /// Every fault with its rate, in [`Fault::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Fault, f64)> + '_ {
        Fault::ALL.iter().map(|&fault| (fault, self.get(fault)))
    }

    /// These rates where set (above 0), `drawn` for the faults left at 0: a scenario's own
    /// rates win over a swarm seed's.
    pub fn or_else(&self, drawn: &FaultRates) -> FaultRates {
        let mut merged = self.clone();
        for &fault in Fault::ALL {
            if merged.get(fault) <= 0.0 {
                *merged.get_mut(fault) = drawn.get(fault);
            }
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trace records the rates as JSON in declaration order; `ALL` and the serde
    /// names must agree with it, or every swarm snapshot would move.
    #[test]
    fn all_follows_the_serialized_order_and_names() {
        let json = serde_json::to_string(&FaultRates::default()).unwrap();
        let names: Vec<String> = Fault::ALL.iter().map(|fault| format!("\"{}\":0.0", fault.name())).collect();
        assert_eq!(json, format!("{{{}}}", names.join(",")));
        assert_eq!(Fault::ALL.len(), 12);
        assert_eq!(Fault::DuplicateReport.per(), "accepted message");
        assert_eq!(Fault::DuplicateReport.doc(), "The final report is sent a second time, 50 ms later.");
    }

    #[test]
    fn a_scenarios_own_rate_wins_over_the_drawn_one() {
        let mine = FaultRates { duplicate_report: 0.4, ..FaultRates::default() };
        let drawn = FaultRates { duplicate_report: 0.1, provider_5xx: 0.2, ..FaultRates::default() };
        let merged = mine.or_else(&drawn);
        assert_eq!((merged.duplicate_report, merged.provider_5xx, merged.forged_report), (0.4, 0.2, 0.0));
    }
}
