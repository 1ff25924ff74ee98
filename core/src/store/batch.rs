//! Step sequences the two SQL stores share: what one trait method does inside its
//! transaction, in terms of the row operations each store provides ([`BatchTx`]). The
//! decisions are the rules' ([`super::rules`]); the sequence of reads, decisions and
//! writes that applies them to a batch lives here once, so that SQLite and PostgreSQL
//! cannot drift apart in it.

use super::rules::{self, not_found, SubmissionPlan};
use super::{RecordOutcome, StoreResult, SubmissionResult};
use crate::domain::records::{Message, MessageError};
use crate::domain::{MessageStatus, TransitionCause};
use crate::{CampaignId, MessageId, Timestamp};
use std::collections::{BTreeMap, BTreeSet};

/// The row operations of an SQL store's open transaction that the shared sequences use.
pub(super) trait BatchTx {
    /// The messages `ids` name that exist, read together.
    fn messages_by_id(&self, ids: &[MessageId]) -> StoreResult<BTreeMap<MessageId, Message>>;

    /// Moves `message` to `to` with its counters, ledger and journal, leaving its row to
    /// the caller.
    fn shift_message(
        &self,
        message: &mut Message,
        to: MessageStatus,
        cause: TransitionCause,
        error: Option<MessageError>,
        now: Timestamp,
    ) -> StoreResult<()>;

    /// Accepts `message` under `provider_message_id` and applies the reports parked under
    /// that id, leaving its row to the caller: how many reports were applied, and the
    /// number the provider id was given.
    fn accept(
        &self,
        message: &mut Message,
        provider_message_id: String,
        bulk_id: Option<String>,
        now: Timestamp,
    ) -> StoreResult<(u32, u64)>;

    /// Writes the state of each of `messages`.
    fn save_states(&self, messages: &[&Message]) -> StoreResult<()>;

    /// Writes each accepted message's state with its provider ids and their number.
    fn save_acceptances(&self, accepted: &[(&Message, u64)]) -> StoreResult<()>;

    /// Completes each of `campaigns` the completion rule says is done.
    fn complete_if_settled(&self, campaigns: impl IntoIterator<Item = CampaignId>, now: Timestamp) -> StoreResult<()>;
}

/// [`Store::record_submissions`](super::Store::record_submissions) inside `tx`.
///
/// The batch's rows are read together, changed in memory in the order of `results` (an
/// id named twice sees its first change), and each row changed is written once at the
/// end: with its provider ids if it was accepted here (the number they were given kept),
/// else its state alone.
pub(super) fn record_submissions(
    tx: &impl BatchTx,
    token: u64,
    results: &[(MessageId, SubmissionResult)],
    now: Timestamp,
) -> StoreResult<Vec<RecordOutcome>> {
    let ids: BTreeSet<MessageId> = results.iter().map(|(id, _)| *id).collect();
    let mut current = tx.messages_by_id(&ids.into_iter().collect::<Vec<_>>())?;
    let mut changed: BTreeMap<MessageId, Option<u64>> = BTreeMap::new();
    let mut outcomes = Vec::with_capacity(results.len());
    let mut affected = BTreeSet::new();
    for (id, result) in results {
        let message = current.get_mut(id).ok_or_else(|| not_found("message", id))?;
        let lease_token = message.lease.as_ref().map(|lease| lease.token);
        let parked_reports_applied = match rules::record_submission(message.status, lease_token, token, result.clone())
        {
            SubmissionPlan::Fenced => {
                outcomes.push(RecordOutcome::Fenced { status: message.status });
                continue;
            }
            SubmissionPlan::Accept { provider_message_id, bulk_id } => {
                let (applied, assigned) = tx.accept(message, provider_message_id, bulk_id, now)?;
                changed.insert(*id, Some(assigned));
                applied
            }
            SubmissionPlan::Move { to, error, next_attempt_at } => {
                message.next_attempt_at = next_attempt_at.unwrap_or(message.next_attempt_at);
                tx.shift_message(message, to, TransitionCause::Engine, Some(error), now)?;
                changed.entry(*id).or_insert(None);
                0
            }
        };
        affected.insert(id.campaign);
        outcomes.push(RecordOutcome::Recorded { status: message.status, parked_reports_applied });
    }
    let row = |id: &MessageId| current.get(id).expect("a changed message was read");
    let moved: Vec<&Message> =
        changed.iter().filter(|(_, assigned)| assigned.is_none()).map(|(id, _)| row(id)).collect();
    let accepted: Vec<(&Message, u64)> =
        changed.iter().filter_map(|(id, assigned)| Some((row(id), (*assigned)?))).collect();
    tx.save_states(&moved)?;
    tx.save_acceptances(&accepted)?;
    tx.complete_if_settled(affected, now)?;
    Ok(outcomes)
}
