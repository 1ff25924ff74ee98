//! Token-bucket arithmetic for rate limits.
//!
//! A bucket holds up to `rate_per_s` tokens (one second of burst) and refills
//! continuously at `rate_per_s` tokens per second. Tokens are counted in thousandths so
//! that refill over a few milliseconds is exact in integers. The bucket's state lives in
//! the store, so every worker on every machine draws from the same bucket.

use crate::clock::Timestamp;
use serde::{Deserialize, Serialize};

/// Thousandths of a token per token.
pub const MILLI_TOKENS_PER_TOKEN: u64 = 1_000;

/// A bucket's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenBucket {
    /// Tokens held, in thousandths.
    pub milli_tokens: u64,
    /// When `milli_tokens` was last brought up to date.
    pub updated_at: Timestamp,
}

impl TokenBucket {
    /// A full bucket for `rate_per_s` at `now`.
    pub fn full(rate_per_s: u32, now: Timestamp) -> TokenBucket {
        TokenBucket { milli_tokens: u64::from(rate_per_s) * MILLI_TOKENS_PER_TOKEN, updated_at: now }
    }

    /// The bucket refilled up to `now` (a clock that went backwards refills nothing).
    pub fn refilled(self, rate_per_s: u32, now: Timestamp) -> TokenBucket {
        if now <= self.updated_at {
            return self;
        }
        let capacity = u64::from(rate_per_s) * MILLI_TOKENS_PER_TOKEN;
        // rate_per_s tokens per second is rate_per_s milli-tokens per millisecond.
        let earned = now.ms_since(self.updated_at).saturating_mul(u64::from(rate_per_s));
        TokenBucket { milli_tokens: self.milli_tokens.saturating_add(earned).min(capacity), updated_at: now }
    }

    /// Whole tokens available at `now`.
    pub fn available(self, rate_per_s: u32, now: Timestamp) -> u32 {
        (self.refilled(rate_per_s, now).milli_tokens / MILLI_TOKENS_PER_TOKEN).min(u64::from(u32::MAX)) as u32
    }

    /// Takes up to `wanted` whole tokens at `now`: how many were granted and the bucket after.
    pub fn take(self, wanted: u32, rate_per_s: u32, now: Timestamp) -> (u32, TokenBucket) {
        let bucket = self.refilled(rate_per_s, now);
        let granted = wanted.min(bucket.available(rate_per_s, now));
        let after =
            TokenBucket { milli_tokens: bucket.milli_tokens - u64::from(granted) * MILLI_TOKENS_PER_TOKEN, ..bucket };
        (granted, after)
    }

    /// Milliseconds from `now` until one whole token is available (0 if one is;
    /// `u64::MAX` if the rate is zero and none ever will be).
    pub fn ms_until_next_token(self, rate_per_s: u32, now: Timestamp) -> u64 {
        let bucket = self.refilled(rate_per_s, now);
        if bucket.milli_tokens >= MILLI_TOKENS_PER_TOKEN {
            return 0;
        }
        if rate_per_s == 0 {
            return u64::MAX;
        }
        let missing = MILLI_TOKENS_PER_TOKEN - bucket.milli_tokens;
        missing.div_ceil(u64::from(rate_per_s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T: Timestamp = Timestamp(1_000_000);

    #[test]
    fn a_full_bucket_grants_one_second_of_burst_then_refills() {
        let bucket = TokenBucket::full(10, T);
        let (granted, bucket) = bucket.take(25, 10, T);
        assert_eq!(granted, 10);
        assert_eq!(bucket.ms_until_next_token(10, T), 100);
        assert_eq!(bucket.available(10, T.plus_ms(99)), 0);
        assert_eq!(bucket.available(10, T.plus_ms(100)), 1);
        assert_eq!(bucket.available(10, T.plus_ms(10_000)), 10, "capped at one second of burst");
    }

    #[test]
    fn a_clock_going_backwards_refills_nothing() {
        let (_, bucket) = TokenBucket::full(5, T).take(5, 5, T);
        assert_eq!(bucket.available(5, Timestamp(0)), 0);
    }

    #[test]
    fn rate_zero_grants_nothing_ever() {
        let bucket = TokenBucket::full(0, T);
        assert_eq!(bucket.take(1, 0, T.plus_ms(1_000_000)).0, 0);
        assert_eq!(bucket.ms_until_next_token(0, T), u64::MAX);
    }

    proptest! {
        /// However takes are timed, no window of one second grants more than burst plus
        /// refill (2 x rate), and nothing up to time T exceeds rate + rate x T / 1000.
        #[test]
        fn grants_never_exceed_the_rate(rate in 1u32..50, steps in proptest::collection::vec((0u64..400, 0u32..20), 1..60)) {
            let mut bucket = TokenBucket::full(rate, T);
            let mut now = T;
            let mut grants: Vec<(u64, u32)> = Vec::new();
            for (advance, wanted) in steps {
                now = now.plus_ms(advance);
                let (granted, after) = bucket.take(wanted, rate, now);
                bucket = after;
                grants.push((now.ms_since(T), granted));
            }
            let total: u64 = grants.iter().map(|(_, granted)| u64::from(*granted)).sum();
            let elapsed = now.ms_since(T);
            prop_assert!(total <= u64::from(rate) + u64::from(rate) * elapsed / 1000);
            for &(start, _) in &grants {
                let window: u64 = grants.iter().filter(|(at, _)| *at >= start && *at < start + 1000).map(|(_, g)| u64::from(*g)).sum();
                prop_assert!(window <= 2 * u64::from(rate), "{} granted in one second at rate {}", window, rate);
            }
        }
    }
}
