//! When to try a failed submission again.
//!
//! Exponential backoff (base 3 s, ×2 per attempt, at most 5 attempts by default) with
//! jitter drawn from a generator the caller passes in, so a simulation replays exactly.
//! A provider's `Retry-After` is honoured: the next attempt is never earlier than it.
//! Errors are classified once, here: a network error before the request left, HTTP 408,
//! 429 and 5xx are retryable; invalid numbers, blocked destinations and every other 4xx
//! are permanent.

use crate::clock::Timestamp;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Whether an error may go away by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Another attempt may succeed.
    Retryable,
    /// Another attempt will fail the same way.
    Permanent,
}

/// The class of an HTTP status code returned by a provider.
pub fn classify_http_status(status: u16) -> ErrorClass {
    let _ = status;
    todo!("domain helper")
}

/// The backoff policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Delay before the second attempt.
    pub base_delay_ms: u64,
    /// Factor applied per further attempt.
    pub multiplier: u32,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Cap on a single delay.
    pub max_delay_ms: u64,
    /// Jitter as a percentage of the delay, drawn uniformly in ±that range.
    pub jitter_percent: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { base_delay_ms: 3_000, multiplier: 2, max_attempts: 5, max_delay_ms: 300_000, jitter_percent: 20 }
    }
}

/// What to do after a retryable failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryDecision {
    /// Queue the message again, not to be claimed before this time.
    RetryAt(Timestamp),
    /// Attempts exhausted: fail the message.
    GiveUp,
}

impl RetryPolicy {
    /// The delay after attempt number `attempts_made` (1-based) failed, before jitter.
    pub fn backoff_ms(&self, attempts_made: u32) -> u64 {
        let _ = attempts_made;
        todo!("domain helper")
    }

    /// The decision after a retryable failure of attempt number `attempts_made`
    /// (1-based) at `now`, honouring `retry_after_ms` from the provider if given.
    pub fn decide<R: Rng + ?Sized>(
        &self,
        attempts_made: u32,
        retry_after_ms: Option<u64>,
        now: Timestamp,
        rng: &mut R,
    ) -> RetryDecision {
        let _ = (attempts_made, retry_after_ms, now, rng);
        todo!("domain helper")
    }
}
