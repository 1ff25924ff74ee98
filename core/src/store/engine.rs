//! The store engine: the one place that sequences the store's contract. Every step that
//! changes state is written here once, over the row operations a backend provides
//! ([`Backend`]): a message's move with its counters, ledger and journal, an acceptance
//! with the reports parked for it, the completion check, a claim, the record of a claim's
//! submissions, an enqueue and a preview, a webhook's reports (found by provider id, else
//! by reference, else parked), and the operator's and the maintenance's actions (a
//! draft's update, the start of scheduled campaigns, pause, resume, cancel, retry of
//! failures, the resolution and settling of unknown outcomes, the reaper, a contact
//! import).
//!
//! The decisions are the rules' ([`super::rules`]); the sequence of reads, decisions and
//! writes that applies them lives here, so the in-memory store, SQLite and PostgreSQL
//! cannot drift apart in it. What differs between the backends — collections or
//! statements, round trips, batching, how a transaction is undone — stays in each.

use super::pending::Pending;
use super::rules::{self, not_found, ReapDecision, ReportPlan, SubmissionPlan};
use super::NewCampaign;
use super::{
    CampaignPatch, Claim, ClaimOutcome, ClaimRequest, EnqueueReceipt, IdempotencyKey, ImportReport, InboundReport,
    JournalEntry, NewContact, Preview, ReapReport, RecordOutcome, ReportOutcome, Resolution, RetryReceipt, StoreResult,
    SubmissionResult,
};
use crate::domain::ledger::LedgerDelta;
use crate::domain::rate::{Burst, Rate, TokenBucket};
use crate::domain::records::{Campaign, Contact, Message, MessageError, StatusCounts, Tenant, TrafficAccount};
use crate::domain::{CampaignStatus, MessageStatus, PauseReason, TransitionCause};
use crate::ids::ContactId;
use crate::money::Credits;
use crate::{CampaignId, MessageId, TenantId, Timestamp, TrafficAccountId};
use std::cell::RefMut;
use std::collections::{BTreeMap, BTreeSet};

/// The [`Store`](super::Store) methods that are one step of this engine in one
/// transaction, written once for every backend: `$write` and `$read` name the store's own
/// methods that run a closure in a writing and in a reading transaction (which may run it
/// again after a passing failure, so the closures only borrow what they are given).
/// `impl Store for … { engine_steps!(write = …, read = …); … }` writes them; the store
/// writes by hand only the methods where its statements differ.
macro_rules! engine_steps {
    (write = $write:ident, read = $read:ident) => {
        fn update_campaign(
            &self,
            tenant: TenantId,
            id: CampaignId,
            patch: CampaignPatch,
            _now: Timestamp,
        ) -> StoreResult<Campaign> {
            self.$write(|tx| engine::update_campaign(tx, tenant, id, &patch))
        }

        fn campaign(&self, tenant: TenantId, id: CampaignId) -> StoreResult<Campaign> {
            self.$read(|tx| tx.campaign_of(tenant, id))
        }

        fn preview(&self, tenant: TenantId, id: CampaignId) -> StoreResult<Preview> {
            self.$read(|tx| engine::preview(tx, tenant, id))
        }

        fn enqueue(
            &self,
            tenant: TenantId,
            id: CampaignId,
            key: Option<IdempotencyKey>,
            now: Timestamp,
        ) -> StoreResult<EnqueueReceipt> {
            self.$write(|tx| engine::enqueue(tx, tenant, id, key.as_ref(), now))
        }

        fn start_due_campaigns(&self, now: Timestamp) -> StoreResult<Vec<CampaignId>> {
            self.$write(|tx| engine::start_due_campaigns(tx, now))
        }

        fn pause(
            &self,
            tenant: TenantId,
            id: CampaignId,
            reason: PauseReason,
            now: Timestamp,
        ) -> StoreResult<Campaign> {
            self.$write(|tx| engine::pause(tx, tenant, id, &reason, now))
        }

        fn resume(&self, tenant: TenantId, id: CampaignId, now: Timestamp) -> StoreResult<Campaign> {
            self.$write(|tx| engine::resume(tx, tenant, id, now))
        }

        fn cancel(&self, tenant: TenantId, id: CampaignId, now: Timestamp) -> StoreResult<Campaign> {
            self.$write(|tx| engine::cancel(tx, tenant, id, now))
        }

        fn retry_failed(&self, tenant: TenantId, id: CampaignId, now: Timestamp) -> StoreResult<RetryReceipt> {
            self.$write(|tx| engine::retry_failed(tx, tenant, id, now))
        }

        fn message(&self, id: MessageId) -> StoreResult<Message> {
            self.$read(|tx| tx.message(id)?.ok_or_else(|| not_found("message", id)))
        }

        fn claim(&self, request: ClaimRequest, now: Timestamp) -> StoreResult<ClaimOutcome> {
            rules::lease_expiry(request.lease_ms, now)?;
            self.$write(|tx| engine::claim(tx, &request, now))
        }

        fn renew_lease(&self, token: u64, lease_ms: u64, now: Timestamp) -> StoreResult<u32> {
            self.$write(|tx| engine::renew_lease(tx, token, lease_ms, now))
        }

        fn record_submissions(
            &self,
            token: u64,
            results: Vec<(MessageId, SubmissionResult)>,
            now: Timestamp,
        ) -> StoreResult<Vec<RecordOutcome>> {
            rules::check_submission_times(&results)?;
            self.$write(|tx| engine::record_submissions(tx, token, &results, now))
        }

        fn apply_report(&self, report: InboundReport, now: Timestamp) -> StoreResult<ReportOutcome> {
            let reports = [report];
            Ok(self.$write(|tx| engine::apply_reports(tx, &reports, now))?.pop().expect("one outcome per report"))
        }

        fn apply_reports(&self, reports: Vec<InboundReport>, now: Timestamp) -> StoreResult<Vec<ReportOutcome>> {
            self.$write(|tx| engine::apply_reports(tx, &reports, now))
        }

        fn reap_expired_leases(&self, now: Timestamp) -> StoreResult<ReapReport> {
            self.$write(|tx| engine::reap_expired_leases(tx, now))
        }

        fn resolve_unknown(&self, id: MessageId, resolution: Resolution, now: Timestamp) -> StoreResult<bool> {
            self.$write(|tx| engine::resolve_unknown(tx, id, &resolution, now))
        }

        fn settle_stale_unknowns(&self, older_than_ms: u64, now: Timestamp) -> StoreResult<Vec<MessageId>> {
            self.$write(|tx| engine::settle_stale_unknowns(tx, older_than_ms, now))
        }

        fn expire_parked_reports(&self, older_than_ms: u64, now: Timestamp) -> StoreResult<u64> {
            self.$write(|tx| engine::expire_parked_reports(tx, older_than_ms, now))
        }

        fn import_contacts(
            &self,
            tenant: TenantId,
            rows: Vec<NewContact>,
            _now: Timestamp,
        ) -> StoreResult<ImportReport> {
            self.$write(|tx| engine::import_contacts(tx, tenant, &rows))
        }

        fn parked_summary(&self) -> StoreResult<Vec<ParkedSummary>> {
            self.$read(|tx| Ok(rules::summarize_parked(tx.parked_reports()?)))
        }
    };
}
pub(super) use engine_steps;

/// What a claim's walk is offered each due message with ([`Backend::visit_due`]): the
/// message and its tenant's rate limit; it answers whether it wants more.
pub(super) type DueVisit<'a> = &'a mut dyn FnMut(Message, Option<u32>) -> StoreResult<bool>;

/// A contact as an import finds it: id, attributes, opt-out.
pub(super) type ContactRow = (ContactId, BTreeMap<String, String>, bool);

/// The row operations of a backend's open transaction, and the steps built on them that
/// every backend takes alike: a message's move (counters, ledger and journal with it), an
/// acceptance with the reports parked for it, the completion check.
///
/// A backend's transaction commits all it writes or nothing. The engine refuses before its
/// first write, except an enqueue, whose refusal comes once its pages are inserted
/// ([`Backend::insert_messages`]) and must undo them with the rest.
pub(super) trait Backend {
    // --- what each backend provides -------------------------------------------------------

    /// The sums this transaction owes the database ([`Pending`]).
    fn pending(&self) -> RefMut<'_, Pending>;

    /// Takes `count` consecutive values of the counter `key`; returns the first.
    fn take_meta(&self, key: &'static str, count: u64) -> StoreResult<u64>;

    /// The tenant `id`, its books as this transaction has changed them.
    fn tenant(&self, id: TenantId) -> StoreResult<Tenant>;

    /// The campaign `id`, its counters as this transaction has changed them.
    fn campaign(&self, id: CampaignId) -> StoreResult<Option<Campaign>>;

    /// The scheduled campaigns whose time has come by `now`, in id order.
    fn scheduled_due(&self, now: Timestamp) -> StoreResult<Vec<Campaign>>;

    /// The tenant contact `id` belongs to, if it exists.
    fn contact_owner(&self, id: ContactId) -> StoreResult<Option<TenantId>>;

    /// Writes the fields of a draft that an update may change.
    fn write_campaign_fields(&self, campaign: &Campaign) -> StoreResult<()>;

    /// Writes campaign `id`'s pause reason.
    fn write_pause_reason(&self, id: CampaignId, reason: Option<&PauseReason>) -> StoreResult<()>;

    /// At most `limit` of `tenant`'s contacts with ids above `after` (all, without it), in
    /// id order: one page of an enqueue or a preview.
    fn contacts_after(&self, tenant: TenantId, after: Option<ContactId>, limit: u32) -> StoreResult<Vec<Contact>>;

    /// Inserts new `messages` (never leased, never given a provider id).
    fn insert_messages(&self, messages: &[Message]) -> StoreResult<()>;

    /// Writes what [`Pending`] holds, and empties it.
    fn write_pending(&self) -> StoreResult<()>;

    /// The request hash and receipt stored under `tenant`'s idempotency key `key`, if any.
    fn stored_receipt(&self, tenant: TenantId, key: &str) -> StoreResult<Option<(String, EnqueueReceipt)>>;

    /// Stores `receipt` under `tenant`'s idempotency key `key`.
    fn store_receipt(&self, tenant: TenantId, key: &IdempotencyKey, receipt: &EnqueueReceipt) -> StoreResult<()>;

    /// Writes an enqueued campaign's first counters and its enqueue time.
    fn write_enqueued(&self, id: CampaignId, counts: StatusCounts, now: Timestamp) -> StoreResult<()>;

    /// The message `id`, if it exists.
    fn message(&self, id: MessageId) -> StoreResult<Option<Message>>;

    /// Campaign `id`'s messages in `status`, in contact order.
    fn messages_in(&self, id: CampaignId, status: MessageStatus) -> StoreResult<Vec<Message>>;

    /// The messages unknown since `cutoff` or before, in id order.
    fn stale_unknowns(&self, cutoff: Timestamp) -> StoreResult<Vec<Message>>;

    /// The messages in flight whose lease expired by `now`, in id order.
    fn expired_leases(&self, now: Timestamp) -> StoreResult<Vec<Message>>;

    /// `tenant`'s contact with the number `phone`, if any: its id, attributes and opt-out.
    fn contact_by_phone(&self, tenant: TenantId, phone: &str) -> StoreResult<Option<ContactRow>>;

    /// Gives contact `id` the attributes and opt-out of `row`.
    fn update_contact(&self, id: ContactId, row: &NewContact) -> StoreResult<()>;

    /// Adds to `tenant` the contact of `row`, under the number `phone` (its canonical form).
    fn insert_contact(&self, tenant: TenantId, phone: &str, row: &NewContact) -> StoreResult<()>;

    /// Writes `campaign`'s status and completion time.
    fn write_campaign_status(&self, campaign: &Campaign) -> StoreResult<()>;

    /// The due time and account of the oldest queued message of a sending campaign, of
    /// `account` if one is given; ties go to the smaller message id.
    fn first_due(&self, account: Option<TrafficAccountId>) -> StoreResult<Option<(Timestamp, TrafficAccountId)>>;

    /// The traffic account `id`.
    fn account(&self, id: TrafficAccountId) -> StoreResult<TrafficAccount>;

    /// Offers `account`'s messages due by `now` (queued, of a sending campaign) to `visit`
    /// in (due time, campaign, contact) order, each with its tenant's rate limit, until
    /// `visit` answers `false` or none is left.
    fn visit_due(&self, account: TrafficAccountId, now: Timestamp, visit: DueVisit<'_>) -> StoreResult<()>;

    /// The stored rate-limit bucket `id` of `kind` (`account` or `tenant`), if any.
    fn stored_bucket(&self, kind: &str, id: u64) -> StoreResult<Option<TokenBucket>>;

    /// Stores a rate-limit bucket (`kind` is `account` or `tenant`).
    fn save_bucket(&self, kind: &str, id: u64, bucket: TokenBucket) -> StoreResult<()>;

    /// Writes the rows of messages just claimed.
    fn save_claimed(&self, messages: &[Message]) -> StoreResult<()>;

    /// The messages `ids` name that exist, read together.
    fn messages_by_id(&self, ids: &[MessageId]) -> StoreResult<BTreeMap<MessageId, Message>>;

    /// Writes the parts of `message` that change with its status.
    fn save_state(&self, message: &Message) -> StoreResult<()>;

    /// Writes the provider ids `message` was just given, numbered in assignment order.
    fn save_provider_ids(&self, message: &Message) -> StoreResult<()>;

    /// Writes the state of each of `messages`.
    fn save_states(&self, messages: &[&Message]) -> StoreResult<()>;

    /// Writes each accepted message's state with its provider ids and the number they were
    /// given (a report for a provider id goes to the message that was given it last).
    fn save_acceptances(&self, accepted: &[(&Message, u64)]) -> StoreResult<()>;

    /// Whether the store holds any report parked under `account`.
    fn any_parked_reports(&self, account: TrafficAccountId) -> StoreResult<bool>;
    /// Every parked report with when it arrived.
    fn parked_reports(&self) -> StoreResult<Vec<(InboundReport, Timestamp)>>;
    /// Deletes the parked reports received at or before `cutoff`; how many.
    fn delete_parked_received_by(&self, cutoff: Timestamp) -> StoreResult<u64>;

    /// The reports parked under `account` and `provider_message_id`, in the order they
    /// arrived, taken out of the store.
    fn take_parked_reports(
        &self,
        account: TrafficAccountId,
        provider_message_id: &str,
    ) -> StoreResult<Vec<InboundReport>>;

    /// Moves the lease expiry of the messages still `submitting` under `token` to
    /// `expires_at`; how many.
    fn extend_leases(&self, token: u64, expires_at: Timestamp) -> StoreResult<u32>;

    /// Before a webhook's `reports` are applied, one after another: a store may look their
    /// messages up together here, and hold the rows they move until [`Backend::end_reports`].
    fn begin_reports(&self, _reports: &[InboundReport]) -> StoreResult<()> {
        Ok(())
    }

    /// After a webhook's reports: writes what [`Backend::begin_reports`] held back.
    fn end_reports(&self) -> StoreResult<()> {
        Ok(())
    }

    /// The message `report`'s provider id names, as this transaction left it: the one of
    /// its account given that id last.
    fn message_for_report(&self, report: &InboundReport) -> StoreResult<Option<Message>>;

    /// Keeps `report`, which names no message known yet, for when its provider id becomes
    /// known (arrival order kept).
    fn park(&self, report: InboundReport, now: Timestamp) -> StoreResult<ReportOutcome>;

    // --- the steps every backend takes alike -----------------------------------------------

    /// Campaign `id`, if `tenant` owns it; not found otherwise (another tenant's campaign
    /// is not told apart from a missing one).
    fn campaign_of(&self, tenant: TenantId, id: CampaignId) -> StoreResult<Campaign> {
        self.campaign(id)?.filter(|campaign| campaign.tenant == tenant).ok_or_else(|| not_found("campaign", id))
    }

    /// Checks a new or changed campaign's references: its account usable by `tenant`, its
    /// audience `tenant`'s contacts.
    fn check_new_campaign(&self, tenant: TenantId, new: &NewCampaign) -> StoreResult<()> {
        rules::check_new_campaign(tenant, new, |id| self.account(id), |id| self.contact_owner(id))
    }

    /// Moves `campaign` to `to` as [`rules::campaign_move`] decides, with its journal entry.
    fn set_campaign_status(&self, campaign: &mut Campaign, to: CampaignStatus, now: Timestamp) -> StoreResult<()> {
        let from = campaign.status;
        (campaign.status, campaign.completed_at) = rules::campaign_move(campaign, to, now);
        self.write_campaign_status(campaign)?;
        let id = campaign.id;
        self.journal(|seq| JournalEntry::Campaign { seq, at: now, campaign: id, from, to })
    }

    /// Sets and writes `campaign`'s pause reason.
    fn set_pause_reason(&self, campaign: &mut Campaign, reason: Option<PauseReason>) -> StoreResult<()> {
        self.write_pause_reason(campaign.id, reason.as_ref())?;
        campaign.pause_reason = reason;
        Ok(())
    }

    /// Takes the next value of the counter `key`.
    fn next_meta(&self, key: &'static str) -> StoreResult<u64> {
        self.take_meta(key, 1)
    }

    /// Appends the entry `entry(seq)` to the journal under the next sequence number.
    fn journal(&self, entry: impl FnOnce(u64) -> JournalEntry) -> StoreResult<()> {
        let seq = self.next_meta("journal_seq")?;
        self.journal_at(entry(seq))
    }

    /// Appends `entry` under the sequence number it carries (taken with `take_meta`).
    fn journal_at(&self, entry: JournalEntry) -> StoreResult<()> {
        self.pending().journal(entry);
        Ok(())
    }

    /// Adds `delta` to the tenant's books.
    fn apply_ledger(&self, tenant: TenantId, delta: LedgerDelta) -> StoreResult<()> {
        self.pending().add_ledger(tenant, delta);
        Ok(())
    }

    /// Moves `message` to `to` as [`rules::move_message`] decides, writing counters, ledger
    /// and journal with it, and saves its state. Callers set the fields that change with
    /// the move (attempts, due time, a new lease) before calling.
    fn move_message(
        &self,
        message: &mut Message,
        to: MessageStatus,
        cause: TransitionCause,
        error: Option<MessageError>,
        now: Timestamp,
    ) -> StoreResult<()> {
        self.shift_message(message, to, cause, error, now)?;
        self.save_state(message)
    }

    /// Moves `message` to `to` as [`rules::move_message`] decides, with its counters,
    /// ledger and journal, leaving its row to the caller (a store's `move_message` writes
    /// it at once; a batch writes its rows together).
    fn shift_message(
        &self,
        message: &mut Message,
        to: MessageStatus,
        cause: TransitionCause,
        error: Option<MessageError>,
        now: Timestamp,
    ) -> StoreResult<()> {
        let from = message.status;
        let change = rules::move_message(message.id, from, to, cause, message.cost, message.last_error.as_ref(), error);
        if let Some(error) = change.error {
            message.last_error = Some(error);
        }
        message.status = to;
        message.updated_at = now;
        if !change.keeps_lease {
            message.lease = None;
        }
        self.apply_ledger(message.tenant, change.ledger)?;
        self.pending().shift(message.id.campaign, from, to);
        let id = message.id;
        self.journal(|seq| JournalEntry::Message { seq, at: now, message: id, from: Some(from), to, cause })
    }

    /// Applies `report` to `message` as [`rules::report_plan`] decides, writing its row.
    fn apply_report_to(
        &self,
        message: &mut Message,
        report: &InboundReport,
        now: Timestamp,
    ) -> StoreResult<ReportOutcome> {
        Ok(match rules::report_plan(message.id, message.status, message.provider_message_id.is_some(), report) {
            ReportPlan::Apply { moves, assign_provider_id, outcome } => {
                for (step, error) in moves {
                    self.move_message(message, step, TransitionCause::Engine, error, now)?;
                }
                if assign_provider_id {
                    message.provider_message_id = Some(report.provider_message_id.clone());
                    self.save_provider_ids(message)?;
                    // The message learned its provider id from this report: the reports
                    // parked under that id while its submission was unrecorded are its too.
                    if self.has_parked_reports(message.traffic_account)? {
                        for parked in self.take_parked_reports(message.traffic_account, &report.provider_message_id)? {
                            self.apply_report_to(message, &parked, now)?;
                        }
                    }
                }
                outcome
            }
            ReportPlan::Ignore(outcome) => outcome,
            ReportPlan::Park => ReportOutcome::Parked,
        })
    }

    /// Completes each of `campaigns` (in id order) that [`rules::completes`] says is done.
    fn complete_if_settled(&self, campaigns: impl IntoIterator<Item = CampaignId>, now: Timestamp) -> StoreResult<()> {
        let affected: BTreeSet<CampaignId> = campaigns.into_iter().collect();
        for id in affected {
            let mut campaign = self.campaign(id)?.expect("affected campaigns exist");
            if rules::completes(campaign.status, &campaign.counts) {
                self.set_campaign_status(&mut campaign, CampaignStatus::Completed, now)?;
            }
        }
        Ok(())
    }

    /// Whether any report is parked under `account`: read once per transaction (and
    /// account), so that a batch of acceptances with nothing parked does not look up each
    /// provider id in turn.
    fn has_parked_reports(&self, account: TrafficAccountId) -> StoreResult<bool> {
        if let Some(known) = self.pending().parked(account) {
            return Ok(known);
        }
        let any = self.any_parked_reports(account)?;
        self.pending().set_parked(account, any);
        Ok(any)
    }

    /// Accepts `message` under `provider_message_id` and applies the reports parked under
    /// that id, leaving its row to the caller: returns how many reports were applied and
    /// the number the provider id was given (in assignment order: a report for a provider
    /// id goes to the message that was given it last), which the caller writes with the
    /// row (`save_acceptances`), batched with the other acceptances of its call.
    ///
    /// A parked report that moves the message writes its state at once (as every move
    /// does); the row written afterwards holds the same final state, plus the provider ids.
    fn accept(
        &self,
        message: &mut Message,
        provider_message_id: String,
        bulk_id: Option<String>,
        now: Timestamp,
    ) -> StoreResult<(u32, u64)> {
        self.shift_message(message, MessageStatus::Accepted, TransitionCause::Engine, None, now)?;
        let assigned = self.next_meta("provider_id_assigned")?;
        let parked = if self.has_parked_reports(message.traffic_account)? {
            self.take_parked_reports(message.traffic_account, &provider_message_id)?
        } else {
            Vec::new()
        };
        message.provider_message_id = Some(provider_message_id);
        message.bulk_id = bulk_id;
        for report in &parked {
            self.apply_report_to(message, report, now)?;
        }
        Ok((parked.len() as u32, assigned))
    }
}

/// A contact's attributes as the SQL stores keep them: one JSON object.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(super) fn attributes_json(attributes: &BTreeMap<String, String>) -> StoreResult<String> {
    serde_json::to_string(attributes)
        .map_err(|error| super::StoreError::Backend(format!("contact attributes as JSON: {error}")))
}

/// The campaign counter column of `status` (the same in both SQL schemas).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(super) fn counter_column(status: MessageStatus) -> &'static str {
    match status {
        MessageStatus::Queued => "n_queued",
        MessageStatus::Submitting => "n_submitting",
        MessageStatus::Accepted => "n_accepted",
        MessageStatus::Delivered => "n_delivered",
        MessageStatus::Undelivered => "n_undelivered",
        MessageStatus::Expired => "n_expired",
        MessageStatus::Rejected => "n_rejected",
        MessageStatus::Failed => "n_failed",
        MessageStatus::Unknown => "n_unknown",
        MessageStatus::Skipped => "n_skipped",
        MessageStatus::Cancelled => "n_cancelled",
    }
}

/// A rate-limit bucket as it stands at `now`: the stored one refilled, or a full one.
fn bucket(tx: &impl Backend, kind: &str, id: u64, rate: Rate, now: Timestamp) -> StoreResult<TokenBucket> {
    Ok(rules::bucket_now(tx.stored_bucket(kind, id)?, rate, now))
}

/// Walks `account`'s due messages in (due time, id) order through a [`rules::RateWalk`],
/// returning the rows of the messages taken, in its order.
fn walk_due(
    tx: &impl Backend,
    account: &TrafficAccount,
    max: u32,
    burst: Burst,
    now: Timestamp,
) -> StoreResult<(rules::RateWalk, Vec<Message>)> {
    let account_bucket = match account.rate_limit_per_s {
        Some(per_s) => {
            let rate = Rate::new(per_s, burst);
            Some((rate, bucket(tx, "account", account.id.0, rate, now)?))
        }
        None => None,
    };
    let mut walk = rules::RateWalk::new(max, account_bucket, burst);
    let mut taken = Vec::new();
    if walk.wants_more() {
        tx.visit_due(account.id, now, &mut |message, tenant_rate| {
            let tenant = message.tenant;
            let before = walk.taken.len();
            walk.offer(message.id, tenant, tenant_rate, now, |rate| bucket(tx, "tenant", tenant.0, rate, now))?;
            if walk.taken.len() > before {
                taken.push(message);
            }
            Ok(walk.wants_more())
        })?;
    }
    Ok((walk, taken))
}

/// [`Store::claim`](super::Store::claim) inside `tx`: the oldest due account's messages
/// taken within the rate limits, each moved to `submitting` under one new lease (the next
/// fencing token) and written together.
pub(super) fn claim(tx: &impl Backend, request: &ClaimRequest, now: Timestamp) -> StoreResult<ClaimOutcome> {
    let account = match rules::claim_account(tx.first_due(request.traffic_account)?, now) {
        Ok(account) => tx.account(account)?,
        Err(idle) => return Ok(ClaimOutcome::Idle(idle)),
    };
    let (walk, taken) = walk_due(tx, &account, request.max_messages, request.burst, now)?;
    if let Some((_, bucket)) = walk.account_bucket {
        tx.save_bucket("account", account.id.0, bucket)?;
    }
    for (tenant, (_, bucket)) in &walk.tenant_buckets {
        tx.save_bucket("tenant", tenant.0, *bucket)?;
    }
    if walk.taken.is_empty() {
        return Ok(ClaimOutcome::Idle(walk.idle(now)));
    }
    let lease = rules::claim_lease(request, tx.next_meta("fencing_token")?, now)?;
    debug_assert_eq!(walk.taken, taken.iter().map(|message| message.id).collect::<Vec<_>>());
    let mut messages = Vec::with_capacity(taken.len());
    for mut message in taken {
        message.attempts += 1;
        message.lease = Some(lease.clone());
        tx.shift_message(&mut message, MessageStatus::Submitting, TransitionCause::Engine, None, now)?;
        messages.push(message);
    }
    tx.save_claimed(&messages)?;
    let (token, expires_at) = (lease.token, lease.expires_at);
    Ok(ClaimOutcome::Claimed(Claim { token, traffic_account: account.id, expires_at, messages }))
}

/// [`Store::record_submissions`](super::Store::record_submissions) inside `tx`.
///
/// The batch's rows are read together, changed in memory in the order of `results` (an
/// id named twice sees its first change), and each row changed is written once at the
/// end: with its provider ids if it was accepted here (the number they were given kept),
/// else its state alone.
pub(super) fn record_submissions(
    tx: &impl Backend,
    token: u64,
    results: &[(MessageId, SubmissionResult)],
    now: Timestamp,
) -> StoreResult<Vec<RecordOutcome>> {
    let ids: BTreeSet<MessageId> = results.iter().map(|(id, _)| *id).collect();
    let mut current = tx.messages_by_id(&ids.into_iter().collect::<Vec<_>>())?;
    // Refused before anything is written, as every step refuses.
    if let Some((missing, _)) = results.iter().find(|(id, _)| !current.contains_key(id)) {
        return Err(not_found("message", missing));
    }
    let mut changed: BTreeMap<MessageId, Option<u64>> = BTreeMap::new();
    let mut outcomes = Vec::with_capacity(results.len());
    let mut affected = BTreeSet::new();
    for (id, result) in results {
        let message = current.get_mut(id).expect("read above");
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

// --- leases ----------------------------------------------------------------------------------

/// [`Store::renew_lease`](super::Store::renew_lease) inside `tx`: the messages still held
/// under `token` are held `lease_ms` from `now`; a lease time out of bounds is refused.
pub(super) fn renew_lease(tx: &impl Backend, token: u64, lease_ms: u64, now: Timestamp) -> StoreResult<u32> {
    let expires_at = rules::lease_expiry(lease_ms, now)?;
    tx.extend_leases(token, expires_at)
}

// --- reports ---------------------------------------------------------------------------------

/// [`Store::apply_reports`](super::Store::apply_reports) inside `tx`: a webhook's reports
/// in order, as one after another would apply them.
pub(super) fn apply_reports(
    tx: &impl Backend,
    reports: &[InboundReport],
    now: Timestamp,
) -> StoreResult<Vec<ReportOutcome>> {
    tx.begin_reports(reports)?;
    let outcomes = reports.iter().map(|report| apply_report(tx, report, now)).collect::<StoreResult<Vec<_>>>();
    tx.end_reports()?;
    outcomes
}

/// One report: its message found by provider id, else by the reference it names (of the
/// same account), else it is parked; applied as the rules decide (parked, if they say so),
/// its side effect on the counters and books, then the completion check.
fn apply_report(tx: &impl Backend, report: &InboundReport, now: Timestamp) -> StoreResult<ReportOutcome> {
    let by_provider = tx.message_for_report(report)?;
    let by_reference = match (&by_provider, report.message_ref) {
        (None, Some(id)) => tx.message(id)?.filter(|message| message.traffic_account == report.traffic_account),
        _ => None,
    };
    let Some(mut message) = by_provider.or(by_reference) else {
        return tx.park(report.clone(), now);
    };
    let before = message.status;
    let outcome = tx.apply_report_to(&mut message, report, now)?;
    if outcome == ReportOutcome::Parked {
        return tx.park(report.clone(), now);
    }
    if let Some(delta) = rules::report_side_effect(&outcome, message.cost) {
        tx.pending().count(message.id.campaign, MessageStatus::Delivered);
        tx.apply_ledger(message.tenant, delta)?;
    }
    if rules::report_may_complete(before) {
        tx.complete_if_settled([message.id.campaign], now)?;
    }
    Ok(outcome)
}

// --- operator actions and the maintenance of unknowns ------------------------------------------

/// Calls `each` on `tenant`'s contacts a page ([`rules::CONTACT_PAGE`]) at a time, in id order.
fn each_contact_page(
    tx: &impl Backend,
    tenant: TenantId,
    mut each: impl FnMut(&[Contact]) -> StoreResult<()>,
) -> StoreResult<()> {
    let mut after = None;
    loop {
        let page = tx.contacts_after(tenant, after, rules::CONTACT_PAGE)?;
        let Some(last) = page.last() else { return Ok(()) };
        after = Some(last.id);
        each(&page)?;
        if page.len() < rules::CONTACT_PAGE as usize {
            return Ok(());
        }
    }
}

/// [`Store::preview`](super::Store::preview) inside `tx`.
pub(super) fn preview(tx: &impl Backend, tenant: TenantId, id: CampaignId) -> StoreResult<Preview> {
    let campaign = tx.campaign_of(tenant, id)?;
    let account = tx.account(campaign.traffic_account)?;
    let mut preview = Preview::empty(tx.tenant(tenant)?.available());
    each_contact_page(tx, tenant, |page| rules::count_page(&campaign, &account, page, &mut preview))?;
    Ok(preview)
}

/// [`Store::enqueue`](super::Store::enqueue) inside `tx`: the messages created and
/// journalled a page at a time, then the decision on the whole, which a refusal undoes
/// with the transaction.
pub(super) fn enqueue(
    tx: &impl Backend,
    tenant: TenantId,
    id: CampaignId,
    key: Option<&IdempotencyKey>,
    now: Timestamp,
) -> StoreResult<EnqueueReceipt> {
    let mut campaign = tx.campaign_of(tenant, id)?;
    if let Some(key) = key {
        let stored = tx.stored_receipt(tenant, &key.key)?;
        if let Some(receipt) = rules::replay(stored.as_ref().map(|(hash, receipt)| (hash.as_str(), receipt)), key)? {
            return Ok(receipt);
        }
    }
    let target = rules::enqueue_target(&campaign, now)?;
    let account = tx.account(campaign.traffic_account)?;
    let available = tx.tenant(tenant)?.available();
    let mut tally = Preview::empty(available);
    each_contact_page(tx, tenant, |page| {
        let messages = rules::enqueue_page(&campaign, &account, page, &mut tally, now)?;
        // One counter update for the page's creation entries.
        let first_seq = tx.take_meta("journal_seq", messages.len() as u64)?;
        tx.insert_messages(&messages)?;
        for (seq, message) in (first_seq..).zip(&messages) {
            tx.journal_at(JournalEntry::created(seq, now, message.id, message.status))?;
        }
        tx.write_pending()
    })?;
    let plan = rules::enqueue_plan(&campaign, target, &tally, available)?;
    tx.apply_ledger(tenant, LedgerDelta::reserve(plan.reserve))?;
    tx.write_enqueued(campaign.id, plan.counts, now)?;
    campaign.counts = plan.counts;
    campaign.enqueued_at = Some(now);
    for status in plan.statuses {
        tx.set_campaign_status(&mut campaign, status, now)?;
    }
    if let Some(key) = key {
        tx.store_receipt(tenant, key, &plan.receipt)?;
    }
    Ok(plan.receipt)
}

/// [`Store::update_campaign`](super::Store::update_campaign) inside `tx`.
pub(super) fn update_campaign(
    tx: &impl Backend,
    tenant: TenantId,
    id: CampaignId,
    patch: &CampaignPatch,
) -> StoreResult<Campaign> {
    let mut campaign = tx.campaign_of(tenant, id)?;
    let new = rules::patched_campaign(&campaign, patch.clone())?;
    tx.check_new_campaign(tenant, &new)?;
    rules::apply_patch(&mut campaign, new);
    tx.write_campaign_fields(&campaign)?;
    Ok(campaign)
}

/// [`Store::start_due_campaigns`](super::Store::start_due_campaigns) inside `tx`.
pub(super) fn start_due_campaigns(tx: &impl Backend, now: Timestamp) -> StoreResult<Vec<CampaignId>> {
    let mut started = Vec::new();
    for mut campaign in tx.scheduled_due(now)? {
        tx.set_campaign_status(&mut campaign, CampaignStatus::Sending, now)?;
        started.push(campaign.id);
    }
    tx.complete_if_settled(started.iter().copied(), now)?;
    Ok(started)
}

/// [`Store::pause`](super::Store::pause) inside `tx`.
pub(super) fn pause(
    tx: &impl Backend,
    tenant: TenantId,
    id: CampaignId,
    reason: &PauseReason,
    now: Timestamp,
) -> StoreResult<Campaign> {
    let mut campaign = tx.campaign_of(tenant, id)?;
    rules::pause_check(&campaign)?;
    tx.set_campaign_status(&mut campaign, CampaignStatus::Paused, now)?;
    tx.set_pause_reason(&mut campaign, Some(reason.clone()))?;
    Ok(campaign)
}

/// [`Store::resume`](super::Store::resume) inside `tx`: messages still in flight from
/// before the pause go back to the queue if the rules say so.
pub(super) fn resume(tx: &impl Backend, tenant: TenantId, id: CampaignId, now: Timestamp) -> StoreResult<Campaign> {
    let mut campaign = tx.campaign_of(tenant, id)?;
    let plan = rules::resume_plan(&campaign)?;
    tx.set_campaign_status(&mut campaign, CampaignStatus::Sending, now)?;
    tx.set_pause_reason(&mut campaign, None)?;
    if plan.requeue_in_flight {
        for mut message in tx.messages_in(id, MessageStatus::Submitting)? {
            tx.move_message(&mut message, MessageStatus::Queued, TransitionCause::Engine, None, now)?;
        }
    }
    tx.complete_if_settled([id], now)?;
    Ok(tx.campaign(id)?.expect("exists"))
}

/// [`Store::cancel`](super::Store::cancel) inside `tx`: the queued messages are cancelled;
/// those in flight keep their outcome.
pub(super) fn cancel(tx: &impl Backend, tenant: TenantId, id: CampaignId, now: Timestamp) -> StoreResult<Campaign> {
    rules::cancel_check(&tx.campaign_of(tenant, id)?)?;
    for mut message in tx.messages_in(id, MessageStatus::Queued)? {
        tx.move_message(&mut message, MessageStatus::Cancelled, TransitionCause::Engine, None, now)?;
    }
    let mut campaign = tx.campaign(id)?.expect("exists");
    let status = rules::cancelled_status(&campaign);
    tx.set_campaign_status(&mut campaign, status, now)?;
    tx.set_pause_reason(&mut campaign, None)?;
    Ok(campaign)
}

/// [`Store::retry_failed`](super::Store::retry_failed) inside `tx`: the retryable failures
/// go back to the queue, all or none, as the tenant's credit allows.
pub(super) fn retry_failed(
    tx: &impl Backend,
    tenant: TenantId,
    id: CampaignId,
    now: Timestamp,
) -> StoreResult<RetryReceipt> {
    rules::retry_failed_check(&tx.campaign_of(tenant, id)?)?;
    let mut failed = tx.messages_in(id, MessageStatus::Failed)?;
    failed.retain(|message| {
        rules::is_retryable_failure(message.status, message.last_error.as_ref().map(|error| error.code.as_str()))
    });
    let cost: Credits = failed.iter().map(|message| message.cost).sum();
    rules::check_affordable(cost, tx.tenant(tenant)?.available())?;
    let requeued = failed.len() as u32;
    for mut message in failed {
        message.attempts = 0;
        message.next_attempt_at = now;
        tx.move_message(&mut message, MessageStatus::Queued, TransitionCause::OperatorRetry, None, now)?;
    }
    Ok(RetryReceipt { requeued, reserved: cost })
}

/// [`Store::resolve_unknown`](super::Store::resolve_unknown) inside `tx`.
pub(super) fn resolve_unknown(
    tx: &impl Backend,
    id: MessageId,
    resolution: &Resolution,
    now: Timestamp,
) -> StoreResult<bool> {
    let mut message = tx.message(id)?.ok_or_else(|| not_found("message", id))?;
    let Some(resolution) = rules::resolve_plan(message.status, resolution.clone()) else {
        return Ok(false);
    };
    match resolution {
        Resolution::Accepted { provider_message_id } => {
            let (_, assigned) = tx.accept(&mut message, provider_message_id, None, now)?;
            tx.save_acceptances(&[(&message, assigned)])?;
        }
        Resolution::NotAccepted { error } => {
            tx.move_message(&mut message, MessageStatus::Failed, TransitionCause::Engine, Some(error), now)?
        }
    }
    tx.complete_if_settled([id.campaign], now)?;
    Ok(true)
}

/// The `meta` counter of parked reports expired unmatched.
pub(super) const PARKED_EXPIRED: &str = "parked_expired";

/// [`Store::expire_parked_reports`](super::Store::expire_parked_reports) inside `tx`.
pub(super) fn expire_parked_reports(tx: &impl Backend, older_than_ms: u64, now: Timestamp) -> StoreResult<u64> {
    let expired = tx.delete_parked_received_by(Timestamp(now.0.saturating_sub(older_than_ms)))?;
    if expired > 0 {
        tx.take_meta(PARKED_EXPIRED, expired)?;
    }
    Ok(expired)
}

/// [`Store::settle_stale_unknowns`](super::Store::settle_stale_unknowns) inside `tx`.
pub(super) fn settle_stale_unknowns(
    tx: &impl Backend,
    older_than_ms: u64,
    now: Timestamp,
) -> StoreResult<Vec<MessageId>> {
    let stale = match rules::stale_cutoff(older_than_ms, now) {
        Some(cutoff) => tx.stale_unknowns(cutoff)?,
        None => Vec::new(),
    };
    let mut settled = Vec::with_capacity(stale.len());
    for mut message in stale {
        let error = rules::unknown_outcome_error();
        tx.move_message(&mut message, MessageStatus::Failed, TransitionCause::Engine, Some(error), now)?;
        settled.push(message.id);
    }
    tx.complete_if_settled(settled.iter().map(|id| id.campaign), now)?;
    Ok(settled)
}

/// [`Store::reap_expired_leases`](super::Store::reap_expired_leases) inside `tx`: each
/// expired lease's message goes back to the queue if its account takes a submission twice
/// without harm, else to unknown.
pub(super) fn reap_expired_leases(tx: &impl Backend, now: Timestamp) -> StoreResult<ReapReport> {
    let mut report = ReapReport::default();
    for mut message in tx.expired_leases(now)? {
        match rules::reap(tx.account(message.traffic_account)?.idempotent_submissions) {
            ReapDecision::Requeue => {
                message.next_attempt_at = now;
                tx.move_message(&mut message, MessageStatus::Queued, TransitionCause::Engine, None, now)?;
                report.requeued.push(message.id);
            }
            ReapDecision::Unknown => {
                tx.move_message(&mut message, MessageStatus::Unknown, TransitionCause::Engine, None, now)?;
                report.unknown.push(message.id);
            }
        }
    }
    Ok(report)
}

/// [`Store::import_contacts`](super::Store::import_contacts) inside `tx`: a row whose
/// number `tenant` already holds updates that contact, or leaves it as it is if nothing
/// changed.
pub(super) fn import_contacts(tx: &impl Backend, tenant: TenantId, rows: &[NewContact]) -> StoreResult<ImportReport> {
    tx.tenant(tenant)?;
    rules::import_contacts(rows, |phone, contact| {
        let existing = tx.contact_by_phone(tenant, &phone)?;
        let same = existing
            .as_ref()
            .map(|(_, stored, opted_out)| *stored == contact.attributes && *opted_out == contact.opted_out);
        let change = rules::contact_change(same);
        match (change, existing) {
            (rules::ContactChange::Unchanged, _) => {}
            (_, Some((id, _, _))) => tx.update_contact(id, contact)?,
            (_, None) => tx.insert_contact(tenant, &phone, contact)?,
        }
        Ok(change)
    })
}
