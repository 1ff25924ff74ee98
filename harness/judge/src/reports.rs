//! What a provider's report status means on the lattice, from each provider's published
//! list of statuses.
//!
//! * Mitto: `Sent` (intermediate), `Delivered`, `Failure`.
//! * Twilio (Message resource, `status`): `accepted`, `scheduled`, `queued`, `sending`,
//!   `sent`, `receiving`, `received` (intermediate or not ours), `delivered`, `read`
//!   (delivered and then read), `undelivered`, `failed` (could not be sent: the network
//!   refused it), `canceled` (a scheduled message cancelled before it left),
//!   `partially_delivered` (an MMS whose parts did not all arrive: not final).
//! * Infobip: the status group names the outcome — `PENDING` (intermediate), `DELIVERED`,
//!   `UNDELIVERABLE`, `EXPIRED`, `REJECTED`; a status name starts with its group
//!   (`DELIVERED_TO_HANDSET`).

use crate::lattice::Status;
use crate::observation::Wire;

/// The final status a report with `status` settles a message in, or `None` for a status
/// that is not final (or that the judge does not know, which it treats the same way: a
/// report it cannot read proves nothing about where the message must end).
pub fn final_status(wire: Wire, status: &str) -> Option<Status> {
    match wire {
        Wire::Mitto => match status {
            "Delivered" => Some(Status::Delivered),
            "Failure" => Some(Status::Undelivered),
            _ => None,
        },
        Wire::Twilio => match status {
            "delivered" | "read" => Some(Status::Delivered),
            "undelivered" => Some(Status::Undelivered),
            "failed" | "canceled" => Some(Status::Rejected),
            _ => None,
        },
        Wire::Infobip => {
            let group = status.split('_').next().unwrap_or(status);
            match group {
                "DELIVERED" => Some(Status::Delivered),
                "UNDELIVERABLE" => Some(Status::Undelivered),
                "EXPIRED" => Some(Status::Expired),
                "REJECTED" => Some(Status::Rejected),
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finals_by_wire() {
        assert_eq!(final_status(Wire::Mitto, "Delivered"), Some(Status::Delivered));
        assert_eq!(final_status(Wire::Mitto, "Sent"), None);
        assert_eq!(final_status(Wire::Mitto, "Failure"), Some(Status::Undelivered));
        assert_eq!(final_status(Wire::Twilio, "sent"), None);
        assert_eq!(final_status(Wire::Twilio, "partially_delivered"), None);
        assert_eq!(final_status(Wire::Twilio, "failed"), Some(Status::Rejected));
        assert_eq!(final_status(Wire::Infobip, "EXPIRED_EXPIRED"), Some(Status::Expired));
        assert_eq!(final_status(Wire::Infobip, "REJECTED_NETWORK"), Some(Status::Rejected));
        assert_eq!(final_status(Wire::Infobip, "PENDING_ENROUTE"), None);
    }
}
