//! One HTTP exchange between two hosts: what the simulated provider logs of each request
//! it answers and what a run's timeline draws. A leaf, so the provider that records
//! exchanges does not depend on the timeline that gathers them.

use serde::Serialize;

/// One HTTP exchange (or several alike that ended at the same moment).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Exchange {
    /// The calling host.
    pub from: String,
    /// The called host.
    pub to: String,
    /// When the request arrived, or when the answer did where only that is known (ms).
    pub at_ms: u64,
    /// When it was answered (ms).
    pub until_ms: u64,
    /// Method and path, or what was sent.
    pub what: String,
    /// The HTTP status answered, 0 when none arrived.
    pub status: u16,
    /// How many alike exchanges this stands for (a batch of reports).
    pub count: u32,
}
