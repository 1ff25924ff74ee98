//! Money as an integer number of credits.
//!
//! One credit is the smallest billing unit (a tenth of a cent in the examples, so a
//! $0.055 segment costs 55 credits). Integers keep every sum exact: the `money`
//! invariant compares totals for equality, which floating point would make a lie.
//!
//! Integers can overflow, so every amount that enters from outside is bounded
//! ([`Credits::MAX`], [`Credits::MAX_PRICE_PER_SEGMENT`]) and refused with a typed error
//! beyond its bound, and the arithmetic that combines amounts is checked
//! ([`Credits::checked_add`] and friends). The bounds are far above any real account and
//! far enough below `i64::MAX` that a balance, its reservation and its charges, and their
//! sums, stay exact in an `i64` — and in SQLite's INTEGER, which silently turns an
//! overflowing sum into a lossy REAL.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Mul, Neg, Sub, SubAssign};

/// An amount of credits; negative only as a delta.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Credits(pub i64);

impl Credits {
    /// No credits.
    pub const ZERO: Credits = Credits(0);

    /// The largest balance, opening balance, top-up or adjustment: a quadrillion credits.
    pub const MAX: Credits = Credits(1_000_000_000_000_000);

    /// The largest price of one segment: a billion credits. Times the most segments a
    /// message can have (`u32::MAX`) it still fits an `i64`.
    pub const MAX_PRICE_PER_SEGMENT: Credits = Credits(1_000_000_000);

    /// The raw number.
    pub fn get(self) -> i64 {
        self.0
    }

    /// `self + other`, or `None` past the range of `i64`.
    pub fn checked_add(self, other: Credits) -> Option<Credits> {
        self.0.checked_add(other.0).map(Credits)
    }

    /// `self - other`, or `None` past the range of `i64`.
    pub fn checked_sub(self, other: Credits) -> Option<Credits> {
        self.0.checked_sub(other.0).map(Credits)
    }

    /// `-self`, or `None` for `i64::MIN`.
    pub fn checked_neg(self) -> Option<Credits> {
        self.0.checked_neg().map(Credits)
    }

    /// `self × factor`, or `None` past the range of `i64`.
    pub fn checked_mul(self, factor: u32) -> Option<Credits> {
        self.0.checked_mul(i64::from(factor)).map(Credits)
    }

    /// Whether `self` is an acceptable magnitude for an amount from outside:
    /// within `-MAX..=MAX`.
    pub fn within_bound(self) -> bool {
        (-Credits::MAX.0..=Credits::MAX.0).contains(&self.0)
    }
}

impl fmt::Display for Credits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Add for Credits {
    type Output = Credits;
    fn add(self, other: Credits) -> Credits {
        Credits(self.0 + other.0)
    }
}

impl AddAssign for Credits {
    fn add_assign(&mut self, other: Credits) {
        self.0 += other.0;
    }
}

impl Sub for Credits {
    type Output = Credits;
    fn sub(self, other: Credits) -> Credits {
        Credits(self.0 - other.0)
    }
}

impl SubAssign for Credits {
    fn sub_assign(&mut self, other: Credits) {
        self.0 -= other.0;
    }
}

impl Neg for Credits {
    type Output = Credits;
    fn neg(self) -> Credits {
        Credits(-self.0)
    }
}

/// Saturates at `i64::MAX` (a cost that large can never be afforded, since no balance
/// exceeds [`Credits::MAX`], so it is refused as insufficient credit rather than wrapping
/// into a small or negative cost).
impl Mul<u32> for Credits {
    type Output = Credits;
    fn mul(self, factor: u32) -> Credits {
        Credits(self.0.saturating_mul(i64::from(factor)))
    }
}

/// Saturates at the bounds of `i64`, for the same reason as `Mul`: the total cost of a
/// huge campaign reads as unaffordable, never as a wrapped-around small number.
impl Sum for Credits {
    fn sum<I: Iterator<Item = Credits>>(iter: I) -> Credits {
        Credits(iter.fold(0i64, |total, c| total.saturating_add(c.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_price_at_its_bound_times_the_most_segments_fits() {
        assert!(Credits::MAX_PRICE_PER_SEGMENT.checked_mul(u32::MAX).is_some());
    }

    #[test]
    fn products_and_sums_past_i64_saturate_instead_of_wrapping() {
        assert_eq!(Credits(i64::MAX / 2 + 1) * 2, Credits(i64::MAX));
        assert_eq!([Credits(i64::MAX), Credits(1)].into_iter().sum::<Credits>(), Credits(i64::MAX));
    }

    #[test]
    fn checked_arithmetic_reports_overflow() {
        assert_eq!(Credits(i64::MAX).checked_add(Credits(1)), None);
        assert_eq!(Credits(i64::MIN).checked_sub(Credits(1)), None);
        assert_eq!(Credits(i64::MIN).checked_neg(), None);
        assert!(Credits::MAX.within_bound() && (-Credits::MAX).within_bound());
        assert!(!Credits(Credits::MAX.0 + 1).within_bound() && !Credits(i64::MIN).within_bound());
    }
}
