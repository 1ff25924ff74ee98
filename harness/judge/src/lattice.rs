//! The judge's own status lattice, written from the design (DESIGN.md, "Domain"), not
//! from the engine: a table of edges and the few properties the invariants ask about.
//!
//! Statuses are read from what the engine exposes (its journal, its API) by name, so an
//! engine that invents a status, or spells one differently, is caught at the first
//! observation rather than mapped onto something it is not.

use serde::Serialize;
use std::fmt;

/// Where a message stands, as the design names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting to be claimed.
    Queued,
    /// Claimed by a worker, the request possibly on its way.
    Submitting,
    /// The provider took it.
    Accepted,
    /// Final: on the handset.
    Delivered,
    /// Final: the carrier gave up.
    Undelivered,
    /// Final: its validity ran out.
    Expired,
    /// Final: the network refused it after the provider took it.
    Rejected,
    /// Permanently failed (or settled as an unknown outcome).
    Failed,
    /// The outcome of its submission is not known.
    Unknown,
    /// Never sent: opted out or an invalid number.
    Skipped,
    /// Never sent: its campaign was cancelled.
    Cancelled,
}

impl Status {
    /// Every status.
    pub const ALL: [Status; 11] = [
        Status::Queued,
        Status::Submitting,
        Status::Accepted,
        Status::Delivered,
        Status::Undelivered,
        Status::Expired,
        Status::Rejected,
        Status::Failed,
        Status::Unknown,
        Status::Skipped,
        Status::Cancelled,
    ];

    /// Its name, as the design (and every engine's wire) spells it.
    pub fn name(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Submitting => "submitting",
            Status::Accepted => "accepted",
            Status::Delivered => "delivered",
            Status::Undelivered => "undelivered",
            Status::Expired => "expired",
            Status::Rejected => "rejected",
            Status::Failed => "failed",
            Status::Unknown => "unknown",
            Status::Skipped => "skipped",
            Status::Cancelled => "cancelled",
        }
    }

    /// The status named `name`.
    pub fn parse(name: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|status| status.name() == name)
    }

    /// Still the engine's work: not yet sent, or sent with the outcome not yet known.
    pub fn is_pending(self) -> bool {
        matches!(self, Status::Queued | Status::Submitting | Status::Unknown)
    }

    /// The provider took it, whatever became of it since ("sent").
    pub fn is_sent(self) -> bool {
        matches!(self, Status::Accepted | Status::Delivered | Status::Undelivered | Status::Expired | Status::Rejected)
    }

    /// A delivery report's final word.
    pub fn is_final_report(self) -> bool {
        matches!(self, Status::Delivered | Status::Undelivered | Status::Expired | Status::Rejected)
    }

    /// Never changes again by itself (only the operator's retry-failed takes a failed
    /// message back to the queue).
    pub fn is_terminal(self) -> bool {
        self.is_final_report() || matches!(self, Status::Failed | Status::Skipped | Status::Cancelled)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Who moved a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mover {
    /// The engine by itself: workers, reports, the reaper, the reconciler.
    Engine,
    /// The operator's retry-failed.
    OperatorRetry,
}

/// The message lattice, one row per edge (DESIGN.md): `queued → submitting → accepted →
/// delivered | undelivered | expired | rejected`; `submitting → queued | failed |
/// unknown`; `unknown → accepted | failed`; `queued → skipped | cancelled`.
const MESSAGE_EDGES: [(Status, Status); 14] = [
    (Status::Queued, Status::Submitting),
    (Status::Queued, Status::Skipped),
    (Status::Queued, Status::Cancelled),
    (Status::Submitting, Status::Accepted),
    (Status::Submitting, Status::Queued),
    (Status::Submitting, Status::Failed),
    (Status::Submitting, Status::Unknown),
    (Status::Accepted, Status::Delivered),
    (Status::Accepted, Status::Undelivered),
    (Status::Accepted, Status::Expired),
    (Status::Accepted, Status::Rejected),
    (Status::Unknown, Status::Accepted),
    (Status::Unknown, Status::Failed),
    // The one edge out of a terminal status, and only the operator's.
    (Status::Failed, Status::Queued),
];

/// Whether a message may be created in `status`: queued, or skipped at once.
pub fn may_create(status: Status) -> bool {
    matches!(status, Status::Queued | Status::Skipped)
}

/// Whether `mover` may move a message `from → to`.
pub fn may_move(from: Status, to: Status, mover: Mover) -> bool {
    let operator_edge = (from, to) == (Status::Failed, Status::Queued);
    MESSAGE_EDGES.contains(&(from, to)) && (operator_edge == (mover == Mover::OperatorRetry))
}

/// Where a campaign stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignState {
    /// Being written.
    Draft,
    /// Enqueued, waiting for its start time.
    Scheduled,
    /// Its messages may be sent.
    Sending,
    /// Halted, by the operator or by the engine with a reason.
    Paused,
    /// Every message settled.
    Completed,
    /// Stopped for good.
    Cancelled,
}

impl CampaignState {
    /// Every state.
    pub const ALL: [CampaignState; 6] = [
        CampaignState::Draft,
        CampaignState::Scheduled,
        CampaignState::Sending,
        CampaignState::Paused,
        CampaignState::Completed,
        CampaignState::Cancelled,
    ];

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            CampaignState::Draft => "draft",
            CampaignState::Scheduled => "scheduled",
            CampaignState::Sending => "sending",
            CampaignState::Paused => "paused",
            CampaignState::Completed => "completed",
            CampaignState::Cancelled => "cancelled",
        }
    }

    /// The state named `name`.
    pub fn parse(name: &str) -> Option<CampaignState> {
        CampaignState::ALL.into_iter().find(|state| state.name() == name)
    }

    /// Never changes again.
    pub fn is_terminal(self) -> bool {
        matches!(self, CampaignState::Completed | CampaignState::Cancelled)
    }
}

impl fmt::Display for CampaignState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The campaign graph (DESIGN.md): `draft → scheduled → sending → completed`, `sending ⇄
/// paused`, `draft | scheduled | sending | paused → cancelled`. A campaign enqueued with
/// no start time goes from draft to sending at once.
const CAMPAIGN_EDGES: [(CampaignState, CampaignState); 10] = [
    (CampaignState::Draft, CampaignState::Scheduled),
    (CampaignState::Draft, CampaignState::Sending),
    (CampaignState::Scheduled, CampaignState::Sending),
    (CampaignState::Sending, CampaignState::Completed),
    (CampaignState::Sending, CampaignState::Paused),
    (CampaignState::Paused, CampaignState::Sending),
    (CampaignState::Draft, CampaignState::Cancelled),
    (CampaignState::Scheduled, CampaignState::Cancelled),
    (CampaignState::Sending, CampaignState::Cancelled),
    (CampaignState::Paused, CampaignState::Cancelled),
];

/// Whether a campaign may move `from → to` in one step.
pub fn campaign_may_move(from: CampaignState, to: CampaignState) -> bool {
    CAMPAIGN_EDGES.contains(&(from, to))
}

/// Whether a campaign seen `from` may later be seen `to`, any number of moves between
/// (an observer that samples, like live mode, sees paths, not edges).
pub fn campaign_may_reach(from: CampaignState, to: CampaignState) -> bool {
    let mut reached = vec![from];
    let mut index = 0;
    while let Some(&state) = reached.get(index) {
        for (edge_from, edge_to) in CAMPAIGN_EDGES {
            if edge_from == state && !reached.contains(&edge_to) {
                reached.push(edge_to);
            }
        }
        index += 1;
    }
    reached.contains(&to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for status in Status::ALL {
            assert_eq!(Status::parse(status.name()), Some(status));
        }
        for state in CampaignState::ALL {
            assert_eq!(CampaignState::parse(state.name()), Some(state));
        }
        assert_eq!(Status::parse("Delivered"), None, "names are exact");
    }

    #[test]
    fn terminal_statuses_have_no_engine_edge_out() {
        for from in Status::ALL.into_iter().filter(|status| status.is_terminal()) {
            for to in Status::ALL {
                assert!(!may_move(from, to, Mover::Engine), "{from} → {to}");
            }
        }
    }

    #[test]
    fn only_the_operator_takes_a_failed_message_back_and_only_to_the_queue() {
        assert!(may_move(Status::Failed, Status::Queued, Mover::OperatorRetry));
        assert!(!may_move(Status::Failed, Status::Queued, Mover::Engine));
        assert!(!may_move(Status::Delivered, Status::Queued, Mover::OperatorRetry));
        assert!(!may_move(Status::Queued, Status::Submitting, Mover::OperatorRetry));
    }

    #[test]
    fn a_final_report_cannot_be_overwritten_nor_an_acceptance_undone() {
        assert!(!may_move(Status::Delivered, Status::Undelivered, Mover::Engine));
        assert!(!may_move(Status::Accepted, Status::Queued, Mover::Engine));
        assert!(!may_move(Status::Unknown, Status::Queued, Mover::Engine), "no blind resend");
        assert!(may_move(Status::Unknown, Status::Accepted, Mover::Engine));
    }

    #[test]
    fn campaign_paths() {
        use CampaignState::*;
        assert!(campaign_may_reach(Draft, Completed));
        assert!(campaign_may_reach(Paused, Completed), "through sending");
        assert!(!campaign_may_move(Paused, Completed));
        assert!(!campaign_may_reach(Completed, Sending));
        assert!(!campaign_may_reach(Cancelled, Completed));
        assert!(!campaign_may_reach(Sending, Scheduled));
        assert!(campaign_may_reach(Sending, Sending));
    }
}
