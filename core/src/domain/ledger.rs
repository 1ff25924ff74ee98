//! Money moved by a status change.
//!
//! A tenant's books have three columns: `balance` (owned, not yet charged, reservations
//! included), `reserved` (held for messages in flight) and `charged` (spent). Enqueue
//! reserves each message's exact cost; every later move of the message shifts money by
//! the delta this module computes, in the same transaction as the status change. So at
//! every instant, for every tenant:
//!
//! * `reserved` = Σ cost of its messages in `queued | submitting | unknown`;
//! * `charged`  = Σ cost of its provider-accepted messages + those settled as
//!   [`UNKNOWN_OUTCOME`] (the provider may have sent them);
//! * `balance + charged` = `funded` (every credit ever added);
//! * `0 ≤ reserved ≤ balance`.

use super::status::MessageStatus;
use crate::money::Credits;
use serde::{Deserialize, Serialize};

/// The error code of a message whose submission outcome was never learned.
pub const UNKNOWN_OUTCOME: &str = "UNKNOWN_OUTCOME";

/// Changes to a tenant's three columns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerDelta {
    /// Change of `balance`.
    pub balance: Credits,
    /// Change of `reserved`.
    pub reserved: Credits,
    /// Change of `charged`.
    pub charged: Credits,
}

impl LedgerDelta {
    /// Nothing moves.
    pub const NONE: LedgerDelta =
        LedgerDelta { balance: Credits::ZERO, reserved: Credits::ZERO, charged: Credits::ZERO };

    /// Hold `cost` for a message about to be (re)queued.
    pub fn reserve(cost: Credits) -> LedgerDelta {
        LedgerDelta { reserved: cost, ..LedgerDelta::NONE }
    }

    /// Let go of the hold on `cost`.
    pub fn release(cost: Credits) -> LedgerDelta {
        LedgerDelta { reserved: -cost, ..LedgerDelta::NONE }
    }

    /// Turn the hold on `cost` into a charge.
    pub fn charge(cost: Credits) -> LedgerDelta {
        LedgerDelta { balance: -cost, reserved: -cost, charged: cost }
    }
}

/// Whether a message in `status` with last error `error_code` is charged.
pub fn is_charged(status: MessageStatus, error_code: Option<&str>) -> bool {
    let unknown_charged = !crate::incidents::active(crate::incidents::Bug::UnknownRefunded);
    status.is_provider_accepted()
        || (unknown_charged && status == MessageStatus::Failed && error_code == Some(UNKNOWN_OUTCOME))
}

/// The money a message of `cost` moves when it goes `from → to`, `to_error_code` being
/// the error recorded with the new status.
///
/// Derived from the reservation and charge rules rather than listed per edge, so that a
/// new edge in the lattice cannot forget to move money.
pub fn on_transition(
    from: MessageStatus,
    to: MessageStatus,
    cost: Credits,
    from_error_code: Option<&str>,
    to_error_code: Option<&str>,
) -> LedgerDelta {
    let was_reserved = from.holds_reservation();
    let is_reserved = to.holds_reservation();
    let was_charged = is_charged(from, from_error_code);
    let now_charged = is_charged(to, to_error_code);
    assert!(!was_charged || now_charged, "a charge is never refunded by the engine: {from} → {to}");
    match (was_reserved, is_reserved, was_charged, now_charged) {
        (true, false, false, true) => LedgerDelta::charge(cost),
        (true, false, false, false) => LedgerDelta::release(cost),
        (false, true, false, false) => LedgerDelta::reserve(cost),
        _ => LedgerDelta::NONE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MessageStatus::*;

    const COST: Credits = Credits(55);

    #[test]
    fn acceptance_turns_the_reservation_into_a_charge() {
        assert_eq!(on_transition(Submitting, Accepted, COST, None, None), LedgerDelta::charge(COST));
        assert_eq!(on_transition(Unknown, Accepted, COST, None, None), LedgerDelta::charge(COST));
    }

    #[test]
    fn a_failure_skip_or_cancel_releases_it() {
        assert_eq!(on_transition(Submitting, Failed, COST, None, Some("INVALID_NUMBER")), LedgerDelta::release(COST));
        assert_eq!(on_transition(Queued, Skipped, COST, None, None), LedgerDelta::release(COST));
        assert_eq!(on_transition(Queued, Cancelled, COST, None, None), LedgerDelta::release(COST));
    }

    #[test]
    fn an_unresolved_ambiguity_stays_charged() {
        assert_eq!(on_transition(Unknown, Failed, COST, None, Some(UNKNOWN_OUTCOME)), LedgerDelta::charge(COST));
    }

    #[test]
    fn moves_inside_flight_and_after_acceptance_move_nothing() {
        for (from, to) in [
            (Queued, Submitting),
            (Submitting, Queued),
            (Submitting, Unknown),
            (Accepted, Delivered),
            (Accepted, Rejected),
        ] {
            assert_eq!(on_transition(from, to, COST, None, None), LedgerDelta::NONE, "{from} → {to}");
        }
    }

    #[test]
    fn retry_failed_reserves_again() {
        assert_eq!(on_transition(Failed, Queued, COST, Some("HTTP_400"), None), LedgerDelta::reserve(COST));
    }
}
