//! Money as an integer number of credits.
//!
//! One credit is the smallest billing unit (a tenth of a cent in the examples, so a
//! $0.055 segment costs 55 credits). Integers keep every sum exact: the `money`
//! invariant compares totals for equality, which floating point would make a lie.

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

    /// The raw number.
    pub fn get(self) -> i64 {
        self.0
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

impl Mul<u32> for Credits {
    type Output = Credits;
    fn mul(self, factor: u32) -> Credits {
        Credits(self.0 * i64::from(factor))
    }
}

impl Sum for Credits {
    fn sum<I: Iterator<Item = Credits>>(iter: I) -> Credits {
        Credits(iter.map(|c| c.0).sum())
    }
}
