//! Token-bucket arithmetic for rate limits.
//!
//! A bucket refills continuously at `per_s` tokens per second and holds at most its
//! [`Burst`]'s capacity: one second's worth by default, so in any one-second window up to
//! twice the rate may be taken (the full bucket, then the refill); one token when strict,
//! so no window ever sees more than the rate plus one — for a provider that answers 429
//! above a hard per-second cap. Tokens are counted in thousandths so that refill over a few
//! milliseconds is exact in integers. The bucket's state lives in the store, so every
//! worker on every machine draws from the same bucket.

use crate::clock::Timestamp;
use serde::{Deserialize, Serialize};

/// Thousandths of a token per token.
pub const MILLI_TOKENS_PER_TOKEN: u64 = 1_000;

/// How many tokens a bucket holds at most.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Burst {
    /// One second's worth: after a quiet spell, a full second's messages at once.
    #[default]
    OneSecond,
    /// One token: messages are spread evenly from the start and after every outage.
    Strict,
}

impl std::str::FromStr for Burst {
    type Err = String;

    /// `one-second` or `strict` (as the command line writes it; `one_second` too).
    fn from_str(text: &str) -> Result<Burst, String> {
        match text {
            "one-second" | "one_second" => Ok(Burst::OneSecond),
            "strict" => Ok(Burst::Strict),
            other => Err(format!("`{other}`: expected one-second or strict")),
        }
    }
}

impl Burst {
    /// Whether this is the default (for `skip_serializing_if`).
    pub fn is_one_second(&self) -> bool {
        *self == Burst::OneSecond
    }
}

/// A rate limit: tokens per second and the bucket's capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Tokens earned per second.
    pub per_s: u32,
    /// How many the bucket holds.
    pub burst: Burst,
}

impl Rate {
    /// `per_s` with `burst`.
    pub fn new(per_s: u32, burst: Burst) -> Rate {
        Rate { per_s, burst }
    }

    /// The most thousandths of a token the bucket holds.
    fn capacity(self) -> u64 {
        let burst = if crate::incidents::active(crate::incidents::Bug::StrictBurstIgnored) {
            Burst::OneSecond
        } else {
            self.burst
        };
        match burst {
            Burst::OneSecond => u64::from(self.per_s) * MILLI_TOKENS_PER_TOKEN,
            Burst::Strict => MILLI_TOKENS_PER_TOKEN.min(u64::from(self.per_s) * MILLI_TOKENS_PER_TOKEN),
        }
    }
}

impl From<u32> for Rate {
    /// `per_s` with one second of burst.
    fn from(per_s: u32) -> Rate {
        Rate { per_s, burst: Burst::OneSecond }
    }
}

/// A bucket's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenBucket {
    /// Tokens held, in thousandths.
    pub milli_tokens: u64,
    /// When `milli_tokens` was last brought up to date.
    pub updated_at: Timestamp,
}

impl TokenBucket {
    /// A full bucket for `rate` at `now`.
    pub fn full(rate: impl Into<Rate>, now: Timestamp) -> TokenBucket {
        TokenBucket { milli_tokens: rate.into().capacity(), updated_at: now }
    }

    /// The bucket refilled up to `now` (a clock that went backwards refills nothing).
    pub fn refilled(self, rate: impl Into<Rate>, now: Timestamp) -> TokenBucket {
        let rate = rate.into();
        if now <= self.updated_at {
            return self;
        }
        // per_s tokens per second is per_s milli-tokens per millisecond.
        let earned = now.ms_since(self.updated_at).saturating_mul(u64::from(rate.per_s));
        TokenBucket { milli_tokens: self.milli_tokens.saturating_add(earned).min(rate.capacity()), updated_at: now }
    }

    /// Whole tokens available at `now`.
    pub fn available(self, rate: impl Into<Rate>, now: Timestamp) -> u32 {
        (self.refilled(rate, now).milli_tokens / MILLI_TOKENS_PER_TOKEN).min(u64::from(u32::MAX)) as u32
    }

    /// Takes up to `wanted` whole tokens at `now`: how many were granted and the bucket after.
    pub fn take(self, wanted: u32, rate: impl Into<Rate>, now: Timestamp) -> (u32, TokenBucket) {
        let rate = rate.into();
        let bucket = self.refilled(rate, now);
        let granted = wanted.min(bucket.available(rate, now));
        let after =
            TokenBucket { milli_tokens: bucket.milli_tokens - u64::from(granted) * MILLI_TOKENS_PER_TOKEN, ..bucket };
        (granted, after)
    }

    /// Milliseconds from `now` until one whole token is available (0 if one is;
    /// `u64::MAX` if the rate is zero and none ever will be).
    pub fn ms_until_next_token(self, rate: impl Into<Rate>, now: Timestamp) -> u64 {
        let rate = rate.into();
        let bucket = self.refilled(rate, now);
        if bucket.milli_tokens >= MILLI_TOKENS_PER_TOKEN {
            return 0;
        }
        if rate.per_s == 0 {
            return u64::MAX;
        }
        let missing = MILLI_TOKENS_PER_TOKEN - bucket.milli_tokens;
        missing.div_ceil(u64::from(rate.per_s))
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

    #[test]
    fn a_quiet_account_bursts_to_twice_the_rate_unless_strict() {
        let busiest = |burst: Burst| {
            let rate = Rate::new(100, burst);
            // Quiet for a while, then taken from every 10 ms for a second.
            let mut bucket = TokenBucket::full(rate, T);
            let mut granted = 0;
            for step in 0..100 {
                let (got, after) = bucket.take(1_000, rate, T.plus_ms(10 * step));
                granted += got;
                bucket = after;
            }
            granted
        };
        assert_eq!(busiest(Burst::OneSecond), 199, "a second's burst, then its refill");
        assert_eq!(busiest(Burst::Strict), 100, "one token, then the refill");
        assert_eq!("strict".parse(), Ok(Burst::Strict));
        assert_eq!("one-second".parse(), Ok(Burst::OneSecond));
        assert!("bursty".parse::<Burst>().unwrap_err().contains("one-second or strict"));
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

            /// A strict bucket (one token) never grants more than the rate plus one in any
            /// second — from a full start, after a quiet spell, however takes are timed — while
            /// the default bucket may grant nearly twice the rate (shown by the unit test below).
            #[test]
            fn a_strict_bucket_grants_at_most_the_rate_plus_one_in_any_second(
                rate in 1u32..50,
                steps in proptest::collection::vec((0u64..3_000, 0u32..60), 1..80),
            ) {
                let strict = Rate::new(rate, Burst::Strict);
                let mut bucket = TokenBucket::full(strict, T);
                let mut now = T;
                let mut grants: Vec<(u64, u32)> = Vec::new();
                for (advance, wanted) in steps {
                    now = now.plus_ms(advance);
                    let (granted, after) = bucket.take(wanted, strict, now);
                    bucket = after;
                    grants.push((now.ms_since(T), granted));
                }
                for &(start, _) in &grants {
                    let window: u64 = grants.iter().filter(|(at, _)| *at >= start && *at < start + 1000).map(|(_, g)| u64::from(*g)).sum();
                    prop_assert!(window <= u64::from(rate) + 1, "{} granted in one second at a strict rate {}", window, rate);
                }
            }
    }
}
