//! The two state machines of the engine: the campaign status graph and the message
//! status lattice.
//!
//! Both are plain enums whose transition functions refuse illegal moves, so a store that
//! routes every change through [`MessageStatus::transition`] or
//! [`CampaignStatus::transition`] cannot move a delivered message back to `accepted` or
//! complete a cancelled campaign, whatever order its inputs arrive in.
//!
//! ```text
//! campaign:  draft → scheduled → sending → completed
//!            draft → sending,  sending ⇄ paused
//!            draft | scheduled | sending | paused → cancelled
//!
//! message:   queued → submitting → accepted → delivered | undelivered | expired | rejected
//!            submitting → queued (retryable, with backoff) | failed | unknown
//!            unknown → accepted | failed          (reconciliation)
//!            queued → skipped | cancelled
//!            failed → queued                       (operator's retry-failed only)
//! ```
//!
//! `failed` is settled but, unlike the truly terminal states, an operator may put it back
//! in the queue with retry-failed — except a failure recorded as [`UNKNOWN_OUTCOME`],
//! which the provider may in fact have sent and which is therefore never resent.
//!
//! [`UNKNOWN_OUTCOME`]: crate::domain::UNKNOWN_OUTCOME

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Waiting for a worker (possibly until `next_attempt_at`).
    Queued,
    /// Claimed by a worker under a lease; a request may be on its way to the provider.
    Submitting,
    /// The provider took it (charged); a delivery report may follow.
    Accepted,
    /// The handset received it.
    Delivered,
    /// The carrier could not deliver it.
    Undelivered,
    /// The provider gave up on delivery.
    Expired,
    /// The provider or carrier rejected it after acceptance.
    Rejected,
    /// Not sent: a permanent error, or attempts exhausted, or an unresolved ambiguity.
    Failed,
    /// A request left but its answer never came: maybe sent, maybe not.
    Unknown,
    /// Never sent: opted out or not a valid number.
    Skipped,
    /// Never sent: the campaign was cancelled first.
    Cancelled,
}

/// Why a transition was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("illegal {kind} transition {from} → {to}")]
pub struct IllegalTransition {
    /// `"message"` or `"campaign"`.
    pub kind: &'static str,
    /// The status the record was in.
    pub from: &'static str,
    /// The status it was asked to move to.
    pub to: &'static str,
}

/// Why a message moves; some moves are legal only for one cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionCause {
    /// Enqueue, claim, submission outcome, delivery report, reaper, reconciliation.
    Engine,
    /// An operator's retry-failed.
    OperatorRetry,
}

impl TransitionCause {
    /// Every cause.
    pub const ALL: [TransitionCause; 2] = [TransitionCause::Engine, TransitionCause::OperatorRetry];

    /// The cause's name on the wire and in the store (its serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            TransitionCause::Engine => "engine",
            TransitionCause::OperatorRetry => "operator_retry",
        }
    }

    /// The cause named `text`, if any.
    pub fn parse(text: &str) -> Option<TransitionCause> {
        TransitionCause::ALL.into_iter().find(|cause| cause.as_str() == text)
    }
}

impl MessageStatus {
    /// Every status, in lattice order.
    pub const ALL: [MessageStatus; 11] = [
        MessageStatus::Queued,
        MessageStatus::Submitting,
        MessageStatus::Accepted,
        MessageStatus::Delivered,
        MessageStatus::Undelivered,
        MessageStatus::Expired,
        MessageStatus::Rejected,
        MessageStatus::Failed,
        MessageStatus::Unknown,
        MessageStatus::Skipped,
        MessageStatus::Cancelled,
    ];

    /// The status's name on the wire and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Queued => "queued",
            MessageStatus::Submitting => "submitting",
            MessageStatus::Accepted => "accepted",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Undelivered => "undelivered",
            MessageStatus::Expired => "expired",
            MessageStatus::Rejected => "rejected",
            MessageStatus::Failed => "failed",
            MessageStatus::Unknown => "unknown",
            MessageStatus::Skipped => "skipped",
            MessageStatus::Cancelled => "cancelled",
        }
    }

    /// The status named `text`, if any.
    pub fn parse(text: &str) -> Option<MessageStatus> {
        MessageStatus::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// Still in flight: the campaign cannot complete while any message is here.
    pub fn is_pending(self) -> bool {
        matches!(self, MessageStatus::Queued | MessageStatus::Submitting | MessageStatus::Unknown)
    }

    /// Never changes again, for any cause.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            MessageStatus::Delivered
                | MessageStatus::Undelivered
                | MessageStatus::Expired
                | MessageStatus::Rejected
                | MessageStatus::Skipped
                | MessageStatus::Cancelled
        )
    }

    /// The provider accepted this message (it is "sent" and charged).
    pub fn is_provider_accepted(self) -> bool {
        matches!(
            self,
            MessageStatus::Accepted
                | MessageStatus::Delivered
                | MessageStatus::Undelivered
                | MessageStatus::Expired
                | MessageStatus::Rejected
        )
    }

    /// Holds a credit reservation in this status.
    pub fn holds_reservation(self) -> bool {
        self.is_pending()
    }

    /// Whether the lattice allows `self → to` for `cause`.
    pub fn allows(self, to: MessageStatus, cause: TransitionCause) -> bool {
        use MessageStatus::*;
        match cause {
            TransitionCause::OperatorRetry => self == Failed && to == Queued,
            TransitionCause::Engine
                if matches!(self, Delivered | Undelivered | Expired | Rejected)
                    && to == Accepted
                    && crate::incidents::active(crate::incidents::Bug::FinalReopened) =>
            {
                true
            }
            TransitionCause::Engine => matches!(
                (self, to),
                (Queued, Submitting | Skipped | Cancelled)
                    | (Submitting, Accepted | Queued | Failed | Unknown)
                    | (Accepted, Delivered | Undelivered | Expired | Rejected)
                    | (Unknown, Accepted | Failed)
            ),
        }
    }

    /// `self → to` if the lattice allows it for `cause`.
    pub fn transition(self, to: MessageStatus, cause: TransitionCause) -> Result<MessageStatus, IllegalTransition> {
        if self.allows(to, cause) {
            Ok(to)
        } else {
            Err(IllegalTransition { kind: "message", from: self.as_str(), to: to.as_str() })
        }
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a campaign stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    /// Being written; no messages yet.
    Draft,
    /// Messages created and credits reserved; waiting for its start time.
    Scheduled,
    /// Workers may claim its messages.
    Sending,
    /// Halted by an operator or automatically (see the pause reason).
    Paused,
    /// Every message settled.
    Completed,
    /// Stopped for good; queued messages were cancelled and their credits released.
    Cancelled,
}

impl CampaignStatus {
    /// Every status.
    pub const ALL: [CampaignStatus; 6] = [
        CampaignStatus::Draft,
        CampaignStatus::Scheduled,
        CampaignStatus::Sending,
        CampaignStatus::Paused,
        CampaignStatus::Completed,
        CampaignStatus::Cancelled,
    ];

    /// The status's name on the wire and in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignStatus::Draft => "draft",
            CampaignStatus::Scheduled => "scheduled",
            CampaignStatus::Sending => "sending",
            CampaignStatus::Paused => "paused",
            CampaignStatus::Completed => "completed",
            CampaignStatus::Cancelled => "cancelled",
        }
    }

    /// The status named `text`, if any.
    pub fn parse(text: &str) -> Option<CampaignStatus> {
        CampaignStatus::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// Never changes again.
    pub fn is_terminal(self) -> bool {
        matches!(self, CampaignStatus::Completed | CampaignStatus::Cancelled)
    }

    /// Whether the graph allows `self → to`.
    pub fn allows(self, to: CampaignStatus) -> bool {
        use CampaignStatus::*;
        matches!(
            (self, to),
            (Draft, Scheduled | Sending)
                | (Scheduled, Sending)
                | (Sending, Completed | Paused)
                | (Paused, Sending)
                | (Draft | Scheduled | Sending | Paused, Cancelled)
        )
    }

    /// `self → to` if the graph allows it.
    pub fn transition(self, to: CampaignStatus) -> Result<CampaignStatus, IllegalTransition> {
        if self.allows(to) {
            Ok(to)
        } else {
            Err(IllegalTransition { kind: "campaign", from: self.as_str(), to: to.as_str() })
        }
    }
}

impl fmt::Display for CampaignStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_happy_path_is_legal() {
        use MessageStatus::*;
        let path = [Queued, Submitting, Accepted, Delivered];
        for pair in path.windows(2) {
            assert!(pair[0].allows(pair[1], TransitionCause::Engine), "{} → {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn a_delivered_message_cannot_go_back_to_accepted() {
        let refused = MessageStatus::Delivered.transition(MessageStatus::Accepted, TransitionCause::Engine);
        assert_eq!(refused, Err(IllegalTransition { kind: "message", from: "delivered", to: "accepted" }));
    }

    #[test]
    fn retry_failed_is_the_only_way_out_of_failed() {
        assert!(!MessageStatus::Failed.allows(MessageStatus::Queued, TransitionCause::Engine));
        assert!(MessageStatus::Failed.allows(MessageStatus::Queued, TransitionCause::OperatorRetry));
        assert!(!MessageStatus::Delivered.allows(MessageStatus::Queued, TransitionCause::OperatorRetry));
    }

    #[test]
    fn a_completed_campaign_cannot_be_cancelled_or_resumed() {
        assert!(CampaignStatus::Completed.transition(CampaignStatus::Cancelled).is_err());
        assert!(CampaignStatus::Completed.transition(CampaignStatus::Sending).is_err());
        assert!(CampaignStatus::Cancelled.transition(CampaignStatus::Sending).is_err());
    }

    #[test]
    fn names_round_trip() {
        for status in MessageStatus::ALL {
            assert_eq!(MessageStatus::parse(status.as_str()), Some(status));
        }
        for status in CampaignStatus::ALL {
            assert_eq!(CampaignStatus::parse(status.as_str()), Some(status));
        }
        for cause in TransitionCause::ALL {
            assert_eq!(TransitionCause::parse(cause.as_str()), Some(cause));
            // The store's columns and the JSON journal entries of schema 4 name a cause alike.
            assert_eq!(serde_json::to_value(cause).expect("a cause serialises"), cause.as_str());
        }
        assert_eq!(TransitionCause::parse("operator"), None);
    }

    fn any_message_status() -> impl Strategy<Value = MessageStatus> {
        proptest::sample::select(MessageStatus::ALL.to_vec())
    }

    fn any_cause() -> impl Strategy<Value = TransitionCause> {
        prop_oneof![Just(TransitionCause::Engine), Just(TransitionCause::OperatorRetry)]
    }

    proptest! {
        /// Feeding any sequence of requested moves through `transition` (keeping only the
        /// accepted ones) never takes a message out of a terminal state.
        #[test]
        fn terminal_states_stay_terminal(
            requests in proptest::collection::vec((any_message_status(), any_cause()), 0..64)
        ) {
            let mut status = MessageStatus::Queued;
            let mut reached_terminal: Option<MessageStatus> = None;
            for (to, cause) in requests {
                if let Ok(next) = status.transition(to, cause) {
                    prop_assert!(reached_terminal.is_none(), "left terminal {:?} for {:?}", reached_terminal, next);
                    status = next;
                }
                if status.is_terminal() {
                    reached_terminal = Some(status);
                }
            }
        }

        /// Every legal move of the lattice either stays pending or settles; nothing moves
        /// from settled back to pending except the operator's retry of a failure.
        #[test]
        fn settled_never_becomes_pending_by_itself(from in any_message_status(), to in any_message_status()) {
            if !from.is_pending() && to.is_pending() && from.allows(to, TransitionCause::Engine) {
                prop_assert!(false, "{} → {} reopens a settled message", from, to);
            }
        }
    }
}
