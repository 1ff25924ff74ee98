//! A broken invariant with its evidence, and what a run says of each invariant.

use crate::invariant::Invariant;
use serde::Serialize;
use std::fmt;

/// A broken invariant, with the evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Which.
    pub invariant: Invariant,
    /// Ms since the run began at which it was found.
    pub at_ms: u64,
    /// What is wrong.
    pub message: String,
    /// The facts that show it.
    pub evidence: Vec<String>,
}

impl Violation {
    /// A violation of `invariant` at `at_ms`.
    pub fn new(invariant: Invariant, at_ms: u64, message: impl Into<String>, evidence: Vec<String>) -> Violation {
        Violation { invariant, at_ms, message: message.into(), evidence }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invariant `{}` broken at {} ms: {}", self.invariant, self.at_ms, self.message)?;
        for line in &self.evidence {
            writeln!(f, "  evidence: {line}")?;
        }
        Ok(())
    }
}

/// What a run says of one invariant (for one tenant, where it is judged per tenant).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Checked this many times, and held every time.
    Held(u64),
    /// Checked, broken.
    Broken,
    /// Never checked, and why: what the judge was not shown.
    NotChecked(String),
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Held(checks) => write!(f, "held ({checks} checks)"),
            Verdict::Broken => f.write_str("BROKEN"),
            Verdict::NotChecked(why) => write!(f, "not checked: {why}"),
        }
    }
}
