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
        let _ = (rate_per_s, now);
        todo!("domain helper")
    }

    /// Whole tokens available at `now`.
    pub fn available(self, rate_per_s: u32, now: Timestamp) -> u32 {
        let _ = (rate_per_s, now);
        todo!("domain helper")
    }

    /// Takes up to `wanted` whole tokens at `now`: how many were granted and the bucket after.
    pub fn take(self, wanted: u32, rate_per_s: u32, now: Timestamp) -> (u32, TokenBucket) {
        let _ = (wanted, rate_per_s, now);
        todo!("domain helper")
    }

    /// Milliseconds from `now` until one whole token is available (0 if one is).
    pub fn ms_until_next_token(self, rate_per_s: u32, now: Timestamp) -> u64 {
        let _ = (rate_per_s, now);
        todo!("domain helper")
    }
}
