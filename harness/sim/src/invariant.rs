//! The invariants, as named values with their kind: the judge's list
//! ([`smsim_judge::invariant`]), which scenarios name and reports print.

pub use smsim_judge::invariant::{Invariant, Kind};
