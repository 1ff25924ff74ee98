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
    match status {
        408 | 429 | 500..=599 => ErrorClass::Retryable,
        _ => ErrorClass::Permanent,
    }
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
        let exponent = attempts_made.saturating_sub(1).min(63);
        let factor = u64::from(self.multiplier).saturating_pow(exponent);
        self.base_delay_ms.saturating_mul(factor).min(self.max_delay_ms)
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
        if attempts_made >= self.max_attempts {
            return RetryDecision::GiveUp;
        }
        let backoff = self.backoff_ms(attempts_made);
        let spread = backoff.saturating_mul(u64::from(self.jitter_percent)) / 100;
        let jittered = if spread == 0 { backoff } else { backoff - spread + rng.random_range(0..=2 * spread) };
        let delay = jittered.max(retry_after_ms.unwrap_or(0));
        if crate::incidents::active(crate::incidents::Bug::RetryWithoutBackoff) {
            // A retry loop that goes again at once: the provider's throttling meets a storm.
            return RetryDecision::RetryAt(now);
        }
        RetryDecision::RetryAt(now.plus_ms(delay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const NOW: Timestamp = Timestamp(1_000_000);

    #[test]
    fn classification() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert_eq!(classify_http_status(status), ErrorClass::Retryable, "{status}");
        }
        for status in [400, 401, 403, 404, 409, 422, 302] {
            assert_eq!(classify_http_status(status), ErrorClass::Permanent, "{status}");
        }
    }

    #[test]
    fn default_backoff_is_3_6_12_24_seconds_then_gives_up() {
        let policy = RetryPolicy::default();
        assert_eq!((1..=4).map(|n| policy.backoff_ms(n)).collect::<Vec<_>>(), vec![3_000, 6_000, 12_000, 24_000]);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(policy.decide(5, None, NOW, &mut rng), RetryDecision::GiveUp);
        assert!(matches!(policy.decide(4, None, NOW, &mut rng), RetryDecision::RetryAt(_)));
    }

    #[test]
    fn backoff_is_capped_and_never_overflows() {
        let policy = RetryPolicy { max_attempts: 200, ..RetryPolicy::default() };
        assert_eq!(policy.backoff_ms(100), policy.max_delay_ms);
    }

    #[test]
    fn retry_after_wins_when_longer() {
        let policy = RetryPolicy { jitter_percent: 0, ..RetryPolicy::default() };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(policy.decide(1, Some(60_000), NOW, &mut rng), RetryDecision::RetryAt(NOW.plus_ms(60_000)));
        assert_eq!(policy.decide(1, Some(10), NOW, &mut rng), RetryDecision::RetryAt(NOW.plus_ms(3_000)));
    }

    proptest! {
        #[test]
        fn jitter_stays_in_bounds_and_replays(seed in any::<u64>(), attempt in 1u32..5) {
            let policy = RetryPolicy::default();
            let decide = || policy.decide(attempt, None, NOW, &mut ChaCha8Rng::seed_from_u64(seed));
            let RetryDecision::RetryAt(at) = decide() else { panic!("gave up early") };
            let backoff = policy.backoff_ms(attempt);
            let delay = at.ms_since(NOW);
            prop_assert!(delay >= backoff * 80 / 100 && delay <= backoff * 120 / 100, "{} outside 20% of {}", delay, backoff);
            prop_assert_eq!(decide(), RetryDecision::RetryAt(at));
        }
    }
}
