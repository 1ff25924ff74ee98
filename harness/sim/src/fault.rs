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
/// `Variant / field: swarm upper bound` rows with their documentation.
macro_rules! faults {
    ($( $(#[$doc:meta])* $variant:ident / $field:ident : swarm $upper:literal, )*) => {
        /// A fault that happens with a probability per occasion during the fault phase.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
        pub enum Fault {
            $( $(#[$doc])* $variant, )*
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
            $( $(#[$doc])* #[serde(default)] pub $field: f64, )*
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
    /// A provider request answered 5xx.
    Provider5xx / provider_5xx: swarm 0.2,
    /// A provider request answered 429 with `Retry-After`.
    Provider429 / provider_429: swarm 0.2,
    /// A provider request accepted whose answer never arrives.
    TimeoutAfterAccept / timeout_after_accept: swarm 0.1,
    /// A bulk answer with some per-message errors (Infobip-style: or accepted but left
    /// out of the answer).
    PartialBulkFailure / partial_bulk_failure: swarm 0.3,
    /// A malformed 200 answer (after accepting).
    MalformedAnswer / malformed_answer: swarm 0.1,
    /// A delivery report sent twice.
    DuplicateReport / duplicate_report: swarm 0.5,
    /// A delivery report sent before the submit answer.
    ReportBeforeAnswer / report_before_answer: swarm 0.3,
    /// An intermediate report sent after the final one.
    IntermediateAfterFinal / intermediate_after_final: swarm 0.3,
    /// A report for an id nobody sent.
    UnknownIdReport / unknown_id_report: swarm 0.2,
    /// A forged report (bad signature or token).
    ForgedReport / forged_report: swarm 0.2,
    /// A store call fails transiently.
    StoreTransient / store_transient: swarm 0.05,
    /// A worker crashes right after the provider accepted its batch, before it records.
    CrashAfterAccept / crash_after_accept: swarm 0.1,
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
    }

    #[test]
    fn a_scenarios_own_rate_wins_over_the_drawn_one() {
        let mine = FaultRates { duplicate_report: 0.4, ..FaultRates::default() };
        let drawn = FaultRates { duplicate_report: 0.1, provider_5xx: 0.2, ..FaultRates::default() };
        let merged = mine.or_else(&drawn);
        assert_eq!((merged.duplicate_report, merged.provider_5xx, merged.forged_report), (0.4, 0.2, 0.0));
    }
}
