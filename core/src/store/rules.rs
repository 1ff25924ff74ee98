//! The store's rules, written once: what every [`Store`] operation decides, as pure
//! functions over rows the store engine has read. The engine ([`super::engine`]) reads
//! through a backend's row operations, asks these functions, and has the backend write
//! what they answer; neither decides anything of its own. The historical bugs of
//! [`crate::incidents`] that live in the store are switched here, so they act on every
//! backend alike.
//!
//! Nothing here does I/O, reads a clock or draws randomness: time comes in as `now`.
//!
//! # The contract the engine keeps
//!
//! Every [`Store`] method is one transaction of a backend that commits all it writes or
//! nothing, and checks what it depends on inside that transaction (row locks or a single
//! writer). Refusals ([`StoreError`]) come before the first write, but for an enqueue's,
//! which come once its pages are written and undo them with the rest of the transaction.
//! Beyond that, the engine, for every backend alike:
//!
//! 1. **Moves a message only through [`move_message`]**, and writes *all* of the returned
//!    [`MessageMove`] in the same transaction: the status and `updated_at = now`; the
//!    error, when one is given; the lease cleared unless the message is `submitting`; the
//!    campaign counters shifted `from → to` ([`StatusCounts::shift`]); the tenant's
//!    columns moved by [`MessageMove::ledger`] (a delta: `balance`, `reserved`, `charged`);
//!    a [`JournalEntry::Message`] under the next journal sequence number.
//! 2. **Moves a campaign only through [`campaign_move`]**, writing the status, the
//!    completion time it returns and a [`JournalEntry::Campaign`]. After any operation
//!    that can settle messages or start a campaign, it asks [`completes`] for each
//!    campaign touched (in id order) and, if so, moves it to `completed`.
//! 3. **Enqueue**: [`replay`] the idempotency key first; then [`enqueue_target`]; then,
//!    page by page through the tenant's contacts in id order, [`enqueue_page`] and insert
//!    the page's messages with one `from: None` journal entry each, so that no more than
//!    a page is held at once; then [`enqueue_plan`] on the tally and the available credit
//!    (a refusal here rolls the pages back); set the counters to [`EnqueuePlan::counts`],
//!    add [`EnqueuePlan::reserve`] to `reserved`, walk the campaign through
//!    [`EnqueuePlan::statuses`], store the receipt under the key.
//! 4. **Claim**: [`claim_account`] on the oldest queued message of a sending campaign;
//!    then offer that account's due queued messages of sending campaigns, in (due time,
//!    campaign, contact) order, to a [`RateWalk`] whose buckets come from
//!    [`bucket_now`]; save every bucket the walk holds, even when it took nothing; move
//!    what it took to `submitting` with `attempts + 1` and a lease under a fresh token
//!    (tokens are never reused).
//! 5. **Submissions**: [`record_submission`] per result; for an acceptance, [`accept`]
//!    rules: move to `accepted`, record the provider ids (numbered, so a reused provider
//!    id names the message that got it last), then apply the reports parked under
//!    `(account, provider id)` in arrival order through [`report_plan`], deleting them.
//! 6. **Reports**: find the message by `(account, provider id)` — the one given it last —
//!    else by `message_ref` if it is of the same account; none found, or
//!    [`ReportPlan::Park`], parks the report (arrival order kept). Otherwise write the
//!    [`ReportPlan`], then [`report_side_effect`] for the outcome, then completion.
//! 7. **Reaper, unknowns**: [`reap`] per expired lease (in message id order);
//!    [`resolve_plan`] for a resolution; [`stale_cutoff`] for settling, with
//!    [`unknown_outcome_error`].
//! 8. **Operator actions**: [`pause_check`], [`resume_plan`], [`cancel_check`] (then
//!    cancel each queued message), [`retry_failed_check`] with [`is_retryable_failure`]
//!    and [`check_affordable`], [`credit_change`], [`patched_campaign`].
//!
//! A new backend implements the engine's row operations and its transaction; the
//! conformance suite (`store::conformance`) and the differential property test hold it to
//! this contract, and should pass unchanged.

use super::*;
use crate::domain::ledger::{is_charged, on_transition, LedgerDelta, UNKNOWN_OUTCOME};
use crate::domain::phone;
use crate::domain::plan::plan_each;
use crate::domain::rate::{Burst, Rate, TokenBucket};
use crate::domain::records::{ContactFields, Lease};
use crate::domain::report::{decide, ReportDecision};
use crate::ids::ContactId;
use crate::incidents::{active, Bug};
use std::collections::BTreeSet;

/// Most contact rows one import may carry.
pub const MAX_IMPORT_ROWS: usize = 10_000;

/// A record that does not exist (or is another tenant's).
pub fn not_found(what: &'static str, id: impl ToString) -> StoreError {
    StoreError::NotFound { what, id: id.to_string() }
}

/// An unacceptable input.
pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> StoreError {
    StoreError::Invalid { field: field.into(), message: message.into() }
}

// --- messages ---------------------------------------------------------------------------

/// Everything one message status change writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageMove {
    /// The status left.
    pub from: MessageStatus,
    /// The status entered.
    pub to: MessageStatus,
    /// Why the move is allowed (for the journal).
    pub cause: TransitionCause,
    /// The error that replaces the message's last error, if any.
    pub error: Option<MessageError>,
    /// The money the move shifts on the tenant's books.
    pub ledger: LedgerDelta,
    /// Whether the message keeps its lease (only while `submitting`).
    pub keeps_lease: bool,
}

/// The move of message `id` (costing `cost`, last error `current_error`) from `from` to
/// `to`. An illegal move panics: callers ask only for moves the rules allowed, so one here
/// is a store bug, and writing it would corrupt the books.
pub fn move_message(
    id: MessageId,
    from: MessageStatus,
    to: MessageStatus,
    cause: TransitionCause,
    cost: Credits,
    current_error: Option<&MessageError>,
    error: Option<MessageError>,
) -> MessageMove {
    from.transition(to, cause).unwrap_or_else(|illegal| panic!("store bug on {id}: {illegal}"));
    let from_code = current_error.map(|error| error.code.as_str());
    let to_code = error.as_ref().map(|error| error.code.as_str()).or(from_code);
    let mut ledger = on_transition(from, to, cost, from_code, to_code);
    if active(Bug::CreditsNotReserved) {
        // Incident 002: credits were checked at enqueue, never held; a charge simply
        // comes off the balance, however many campaigns are drawing on it.
        ledger.reserved = Credits::ZERO;
    }
    MessageMove { from, to, cause, error, ledger, keeps_lease: to == MessageStatus::Submitting }
}

/// Whether a tenant's books hold after a move: nothing reserved beyond the balance. A
/// backend without a constraint of its own asserts it, so a ledger bug stops the store.
pub fn books_hold(books: &Tenant) -> bool {
    // Incident 002 reserves nothing and lets the balance go negative: that is the bug
    // the simulator must see, not a store panic.
    active(Bug::CreditsNotReserved) || (books.reserved >= Credits::ZERO && books.reserved <= books.balance)
}

/// The error a final report records on its message.
pub fn report_error(to: MessageStatus, report: &InboundReport) -> Option<MessageError> {
    if active(Bug::ReportErrorDropped) {
        return None;
    }
    let code = report.error_code.clone()?;
    matches!(to, MessageStatus::Undelivered | MessageStatus::Expired | MessageStatus::Rejected).then(|| MessageError {
        code,
        retryable: false,
        detail: format!("delivery report: {to}"),
    })
}

/// The error recorded on messages settled as unknown outcome.
pub fn unknown_outcome_error() -> MessageError {
    MessageError {
        code: UNKNOWN_OUTCOME.to_owned(),
        retryable: false,
        detail: "no report or lookup resolved the ambiguous submission".to_owned(),
    }
}

/// Adds one message's reservation and charge to a ledger recount.
pub fn recount_message(recount: &mut LedgerRecount, status: MessageStatus, error_code: Option<&str>, cost: Credits) {
    if status.holds_reservation() {
        recount.reserved += cost;
    }
    if is_charged(status, error_code) {
        recount.charged += cost;
    }
}

// --- campaigns --------------------------------------------------------------------------

/// A campaign's move to `to`: the checked new status and its completion time. An illegal
/// move is a store bug, as for messages.
pub fn campaign_move(campaign: &Campaign, to: CampaignStatus, now: Timestamp) -> (CampaignStatus, Option<Timestamp>) {
    let status =
        campaign.status.transition(to).unwrap_or_else(|illegal| panic!("store bug on {}: {illegal}", campaign.id));
    let completed_at = if to == CampaignStatus::Completed { Some(now) } else { campaign.completed_at };
    (status, completed_at)
}

/// The completion rule: a sending campaign with nothing pending is completed.
pub fn completes(status: CampaignStatus, counts: &StatusCounts) -> bool {
    let settled = if active(Bug::CompletionFromCounters) {
        // Incidents 000 and 004: completion from counters, with messages handed to the
        // provider counted as processed before the provider answered.
        counts.queued == 0
    } else {
        counts.pending() == 0
    };
    status == CampaignStatus::Sending && settled
}

/// Checks a campaign to create or the result of a change: its fields, its account
/// (`account`, as read) and, for a contact list, that every contact is the tenant's
/// (`owner_of` reads a contact's tenant).
pub fn check_new_campaign(
    tenant: TenantId,
    new: &NewCampaign,
    account: impl FnOnce(TrafficAccountId) -> StoreResult<TrafficAccount>,
    mut owner_of: impl FnMut(ContactId) -> StoreResult<Option<TenantId>>,
) -> StoreResult<()> {
    new.check()?;
    if !account(new.traffic_account)?.usable_by(tenant) {
        return Err(not_found("traffic account", new.traffic_account));
    }
    if let Audience::Contacts { ids } = &new.audience {
        if ids.is_empty() {
            return Err(invalid("audience", "a contact list audience needs at least one contact"));
        }
        for id in ids {
            if owner_of(*id)? != Some(tenant) {
                return Err(not_found("contact", id));
            }
        }
    }
    Ok(())
}

/// A draft campaign with `patch` applied, to be checked with [`check_new_campaign`];
/// only a draft can be changed.
pub fn patched_campaign(current: &Campaign, patch: CampaignPatch) -> StoreResult<NewCampaign> {
    if current.status != CampaignStatus::Draft {
        return Err(StoreError::Conflict(format!(
            "campaign {} is {}; only a draft can be changed",
            current.id, current.status
        )));
    }
    Ok(NewCampaign {
        name: patch.name.unwrap_or(current.name.clone()),
        body_template: patch.body_template.unwrap_or(current.body_template.clone()),
        sender: patch.sender.unwrap_or(current.sender.clone()),
        audience: patch.audience.unwrap_or(current.audience.clone()),
        traffic_account: patch.traffic_account.unwrap_or(current.traffic_account),
        schedule_at: patch.schedule_at.unwrap_or(current.schedule_at),
    })
}

/// `campaign` with the checked fields of `new` written in.
pub fn apply_patch(campaign: &mut Campaign, new: NewCampaign) {
    campaign.name = new.name;
    campaign.body_template = new.body_template;
    campaign.sender = new.sender;
    campaign.audience = new.audience;
    campaign.traffic_account = new.traffic_account;
    campaign.schedule_at = new.schedule_at;
}

/// Checks a pause.
pub fn pause_check(campaign: &Campaign) -> StoreResult<()> {
    campaign.status.transition(CampaignStatus::Paused)?;
    Ok(())
}

/// What a resume does besides moving the campaign back to `sending`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResumePlan {
    /// Move the campaign's `submitting` messages back to `queued` (only the
    /// `resume-requeues-in-flight` bug does).
    pub requeue_in_flight: bool,
}

/// Checks a resume and says what it does.
pub fn resume_plan(campaign: &Campaign) -> StoreResult<ResumePlan> {
    // draft → sending is legal, but only through enqueue, which creates the messages.
    if campaign.status != CampaignStatus::Paused {
        return Err(StoreError::Conflict(format!(
            "only a paused campaign can be resumed; {} is {}",
            campaign.id, campaign.status
        )));
    }
    // The pause/resume bug: resume "restarts" the campaign by putting back in the queue
    // whatever has not finished, including messages a worker is sending.
    Ok(ResumePlan { requeue_in_flight: active(Bug::ResumeRequeuesInFlight) })
}

/// Checks a cancel; the backend then cancels every queued message, in id order.
pub fn cancel_check(campaign: &Campaign) -> StoreResult<()> {
    campaign.status.transition(CampaignStatus::Cancelled)?;
    Ok(())
}

/// The status a cancel leaves `campaign` in, once its queued messages were cancelled.
pub fn cancelled_status(campaign: &Campaign) -> CampaignStatus {
    let sending = campaign.status == CampaignStatus::Sending;
    if active(Bug::CancelCompletes) && sending && campaign.counts.pending() == 0 {
        return CampaignStatus::Completed;
    }
    CampaignStatus::Cancelled
}

/// Checks a retry-failed.
pub fn retry_failed_check(campaign: &Campaign) -> StoreResult<()> {
    match campaign.status {
        CampaignStatus::Sending | CampaignStatus::Paused => Ok(()),
        status => Err(StoreError::Conflict(format!(
            "retry-failed needs a sending or paused campaign; {} is {status}",
            campaign.id
        ))),
    }
}

/// Whether retry-failed requeues a message in `status` with `error_code`: failures of
/// unknown outcome are charged and may have been sent, so never again.
pub fn is_retryable_failure(status: MessageStatus, error_code: Option<&str>) -> bool {
    status == MessageStatus::Failed && error_code != Some(UNKNOWN_OUTCOME)
}

/// Refuses to reserve `cost` when only `available` is.
pub fn check_affordable(cost: Credits, available: Credits) -> StoreResult<()> {
    if cost > available {
        return Err(StoreError::InsufficientCredits { needed: cost, available });
    }
    Ok(())
}

/// The amount a credit change adds to the balance and to `funded`. The amount must pass
/// [`CreditChange::check`], and the balance it leaves must stay within [`Credits::MAX`]
/// and not below what is reserved; every sum is checked, so no change wraps around (or,
/// in SQLite, turns a column into a lossy REAL).
pub fn credit_change(books: &Tenant, change: CreditChange) -> StoreResult<Credits> {
    change.check()?;
    let delta = match change {
        CreditChange::TopUp(amount) => amount,
        CreditChange::Adjust(delta) => delta,
    };
    let beyond = || {
        invalid(
            change.field(),
            format!("the balance would pass {} credits (it is {}, the change {delta})", Credits::MAX, books.balance),
        )
    };
    let balance = books.balance.checked_add(delta).filter(|balance| *balance <= Credits::MAX).ok_or_else(beyond)?;
    books.funded.checked_add(delta).ok_or_else(beyond)?;
    if balance < books.reserved {
        // The delta is negative and within ±Credits::MAX here, so its negation exists.
        return Err(StoreError::InsufficientCredits { needed: -delta, available: books.available() });
    }
    Ok(delta)
}

// --- contacts ---------------------------------------------------------------------------

/// Refuses an import of too many rows.
pub fn check_import_size(rows: usize) -> StoreResult<()> {
    if rows > MAX_IMPORT_ROWS {
        return Err(invalid("rows", format!("at most {MAX_IMPORT_ROWS} contacts per import, got {rows}")));
    }
    Ok(())
}

/// What importing one valid row did to the tenant's contacts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactChange {
    /// A new contact.
    Created,
    /// The contact with that number got new attributes or opt-out.
    Updated,
    /// The contact with that number already held them.
    Unchanged,
}

/// The change for a row whose number is held by no contact (`None`) or by one that holds
/// the same attributes and opt-out (`Some(true)`) or not (`Some(false)`).
pub fn contact_change(existing_same: Option<bool>) -> ContactChange {
    match existing_same {
        None => ContactChange::Created,
        Some(true) => ContactChange::Unchanged,
        Some(false) => ContactChange::Updated,
    }
}

/// Imports `rows`: each valid row goes to `write` with its canonical number, which writes
/// it and says what it did; invalid rows are reported by their index.
pub fn import_contacts(
    rows: &[NewContact],
    mut write: impl FnMut(String, &NewContact) -> StoreResult<ContactChange>,
) -> StoreResult<ImportReport> {
    check_import_size(rows.len())?;
    let mut report = ImportReport::default();
    for (row, contact) in rows.iter().enumerate() {
        match import_row(row, contact) {
            Err(error) => report.errors.push(error),
            Ok(phone) => match write(phone, contact)? {
                ContactChange::Created => report.created += 1,
                ContactChange::Updated => report.updated += 1,
                ContactChange::Unchanged => report.unchanged += 1,
            },
        }
    }
    Ok(report)
}

/// An import row's number in canonical form, or why row `row` is rejected.
pub fn import_row(row: usize, contact: &NewContact) -> Result<String, RowError> {
    let phone = phone::normalize_e164(&contact.phone).map_err(|error| RowError {
        row,
        field: "phone".into(),
        message: error.to_string(),
    })?;
    if let Some((field, message)) = attribute_error(&contact.attributes) {
        return Err(RowError { row, field, message: message.into() });
    }
    Ok(phone)
}

/// Checks an import row's attributes: the first offending key, with its message.
pub fn attribute_error(attributes: &BTreeMap<String, String>) -> Option<(String, &'static str)> {
    for (key, value) in attributes {
        let name_ok = (1..=64).contains(&key.len())
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !name_ok {
            return Some((format!("attributes.{key}"), "attribute names are 1 to 64 letters, digits, _ - ."));
        }
        if value.len() > 1024 {
            return Some((format!("attributes.{key}"), "attribute values are at most 1024 bytes"));
        }
    }
    None
}

// --- enqueue ----------------------------------------------------------------------------

/// Contacts read and planned at a time by an enqueue or a preview: what one request holds
/// is a page of contacts and their rendered messages, whatever the audience's size.
pub const CONTACT_PAGE: u32 = 1_000;

/// Counts the messages `campaign` would send to the audience among `contacts` (one page
/// of the tenant's, in id order) into `preview`, one rendered body held at a time.
pub fn count_page<C: ContactFields>(
    campaign: &Campaign,
    account: &TrafficAccount,
    contacts: &[C],
    preview: &mut Preview,
) -> StoreResult<()> {
    for message in plan_each(campaign, account, contacts) {
        preview.add(&message?);
    }
    Ok(())
}

/// The messages an enqueue of `campaign` creates for the audience among `contacts` (one
/// page of the tenant's, in id order), each counted into `tally` as it is planned. The
/// caller writes the page before planning the next, and asks [`enqueue_plan`] about the
/// tally once every page is in.
pub fn enqueue_page<C: ContactFields>(
    campaign: &Campaign,
    account: &TrafficAccount,
    contacts: &[C],
    tally: &mut Preview,
    now: Timestamp,
) -> StoreResult<Vec<Message>> {
    plan_each(campaign, account, contacts)
        .map(|planned| {
            let planned = planned?;
            tally.add(&planned);
            Ok(new_message(&planned, campaign.tenant, account.id, now))
        })
        .collect()
}

/// The answer stored under an idempotency key, checked against the key now presented:
/// the earlier answer again, or a mismatch.
pub fn replay(stored: Option<(&str, &EnqueueReceipt)>, key: &IdempotencyKey) -> StoreResult<Option<EnqueueReceipt>> {
    match stored {
        None => Ok(None),
        Some((hash, _)) if hash != key.request_hash => Err(StoreError::IdempotencyMismatch { key: key.key.clone() }),
        Some((_, receipt)) => Ok(Some(EnqueueReceipt { replayed: true, ..receipt.clone() })),
    }
}

/// The status an enqueue moves `campaign` to: `scheduled` if it starts later, else
/// `sending`. Only a draft: scheduled → sending is a legal edge, but it belongs to the
/// scheduler; a second enqueue of a scheduled campaign would create its messages twice.
pub fn enqueue_target(campaign: &Campaign, now: Timestamp) -> StoreResult<CampaignStatus> {
    let target = match campaign.schedule_at {
        // The schedule stored and never read: the campaign goes out when it is enqueued.
        Some(_) if active(Bug::ScheduleIgnored) => CampaignStatus::Sending,
        Some(start) if start > now => CampaignStatus::Scheduled,
        _ => CampaignStatus::Sending,
    };
    if campaign.status != CampaignStatus::Draft {
        return Err(StoreError::Conflict(format!(
            "campaign {} is {}; only a draft can be enqueued",
            campaign.id, campaign.status
        )));
    }
    campaign.status.transition(target)?;
    Ok(target)
}

/// What an enqueue writes once its messages are created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnqueuePlan {
    /// The campaign's counters once they exist.
    pub counts: StatusCounts,
    /// Credits to add to the tenant's `reserved`.
    pub reserve: Credits,
    /// The campaign statuses to pass through, in order.
    pub statuses: Vec<CampaignStatus>,
    /// The answer (stored under the idempotency key, if any).
    pub receipt: EnqueueReceipt,
}

/// Decides the enqueue of `campaign` towards `target` (from [`enqueue_target`]), given
/// the `tally` of every message it creates ([`enqueue_page`]): refused whole if the
/// audience is empty or the tenant's `available` credit falls short.
pub fn enqueue_plan(
    campaign: &Campaign,
    target: CampaignStatus,
    tally: &Preview,
    available: Credits,
) -> StoreResult<EnqueuePlan> {
    if tally.audience == 0 {
        return Err(invalid("audience", "the audience has no contacts"));
    }
    let cost = tally.estimated_cost;
    check_affordable(cost, available)?;
    let counts = StatusCounts { queued: tally.recipients, skipped: tally.skipped, ..StatusCounts::default() };
    let mut statuses = vec![target];
    if completes(target, &counts) {
        statuses.push(CampaignStatus::Completed);
    }
    let receipt = EnqueueReceipt {
        campaign: campaign.id,
        status: *statuses.last().expect("a target"),
        messages: tally.audience,
        skipped: counts.skipped,
        reserved: cost,
        replayed: false,
    };
    // Incident 002: credits checked at enqueue, never reserved.
    let reserve = if active(Bug::CreditsNotReserved) { Credits::ZERO } else { cost };
    Ok(EnqueuePlan { counts, reserve, statuses, receipt })
}

// --- claims -----------------------------------------------------------------------------

/// The account a claim draws from, given the oldest queued message of a sending campaign
/// (of the requested account, if one was) — or why there is nothing to claim.
pub fn claim_account(
    first_due: Option<(Timestamp, TrafficAccountId)>,
    now: Timestamp,
) -> Result<TrafficAccountId, IdleReason> {
    match first_due {
        None => Err(IdleReason::NothingDue { next_due_at: None }),
        Some((due, _)) if due > now => Err(IdleReason::NothingDue { next_due_at: Some(due) }),
        Some((_, account)) => Ok(account),
    }
}

/// Parked reports, with when each arrived, counted by (account, status): first and last
/// arrival per group, in account then status order.
pub fn summarize_parked(parked: impl IntoIterator<Item = (InboundReport, Timestamp)>) -> Vec<ParkedSummary> {
    let mut groups: BTreeMap<(TrafficAccountId, ReportStatus), ParkedSummary> = BTreeMap::new();
    for (report, at) in parked {
        let key = (report.traffic_account, report.status.clone());
        let group = groups.entry(key).or_insert_with(|| ParkedSummary {
            traffic_account: report.traffic_account,
            status: report.status,
            reports: 0,
            first_received_at: at,
            last_received_at: at,
        });
        group.reports += 1;
        group.first_received_at = group.first_received_at.min(at);
        group.last_received_at = group.last_received_at.max(at);
    }
    groups.into_values().collect()
}

/// A rate-limit bucket as it stands at `now`: the stored one refilled, or a full one.
pub fn bucket_now(stored: Option<TokenBucket>, rate: Rate, now: Timestamp) -> TokenBucket {
    stored.unwrap_or_else(|| TokenBucket::full(rate, now)).refilled(rate, now)
}

/// A claim's walk through the due messages of one account, taking each within the
/// account's and its tenant's rate limits.
#[derive(Clone, Debug, Default)]
pub struct RateWalk {
    /// Messages taken, in walk order.
    pub taken: Vec<MessageId>,
    /// The account's bucket, if the account is rate limited.
    pub account_bucket: Option<(Rate, TokenBucket)>,
    /// Each rate-limited tenant's bucket met so far.
    pub tenant_buckets: BTreeMap<TenantId, (Rate, TokenBucket)>,
    /// Tenants whose bucket was empty when one of their messages came up.
    skipped_tenants: BTreeSet<TenantId>,
    /// The walk stopped because the account's bucket ran dry.
    account_exhausted: bool,
    /// At most this many are taken.
    max: u32,
    /// The capacity of every bucket the walk meets.
    burst: Burst,
}

impl RateWalk {
    /// A walk taking at most `max`, under the account's bucket if it is limited; the
    /// tenants' buckets it meets hold `burst` (the account's was read with it too).
    pub fn new(max: u32, account_bucket: Option<(Rate, TokenBucket)>, burst: Burst) -> RateWalk {
        RateWalk { max, account_bucket, burst, ..RateWalk::default() }
    }

    /// Whether the walk wants another message.
    pub fn wants_more(&self) -> bool {
        (self.taken.len() as u32) < self.max && !self.account_exhausted
    }

    /// Offers the due message `id` of `tenant` (limited to `tenant_rate`); `stored` reads
    /// the tenant's bucket at that rate ([`bucket_now`]) the first time it is needed.
    pub fn offer(
        &mut self,
        id: MessageId,
        tenant: TenantId,
        tenant_rate: Option<u32>,
        now: Timestamp,
        stored: impl FnOnce(Rate) -> StoreResult<TokenBucket>,
    ) -> StoreResult<()> {
        if let Some((rate, bucket)) = self.account_bucket {
            if bucket.available(rate, now) == 0 {
                self.account_exhausted = true;
                return Ok(());
            }
        }
        if let Some(rate) = tenant_rate.map(|per_s| Rate::new(per_s, self.burst)) {
            let bucket = match self.tenant_buckets.get(&tenant) {
                Some((_, bucket)) => *bucket,
                None => stored(rate)?,
            };
            if bucket.available(rate, now) == 0 {
                self.tenant_buckets.insert(tenant, (rate, bucket));
                self.skipped_tenants.insert(tenant);
                return Ok(());
            }
            self.tenant_buckets.insert(tenant, (rate, bucket.take(1, rate, now).1));
        }
        if let Some((rate, bucket)) = self.account_bucket {
            self.account_bucket = Some((rate, bucket.take(1, rate, now).1));
        }
        self.taken.push(id);
        Ok(())
    }

    /// Why a walk that took nothing is idle: the account's wait if its bucket stopped the
    /// walk, else the shortest wait of a skipped tenant.
    pub fn idle(&self, now: Timestamp) -> IdleReason {
        let wait_ms = if self.account_exhausted {
            let (rate, bucket) = self.account_bucket.expect("an exhausted account is rate limited");
            bucket.ms_until_next_token(rate, now)
        } else {
            self.skipped_tenants
                .iter()
                .map(|tenant| {
                    let (rate, bucket) = self.tenant_buckets[tenant];
                    bucket.ms_until_next_token(rate, now)
                })
                .min()
                .unwrap_or(0)
        };
        IdleReason::RateLimited { retry_at: now.plus_ms(wait_ms) }
    }
}

/// The longest lease a claim or a renewal may take: a day. A lease is a promise that a
/// worker is still at it; one beyond a day is a unit mistake, and one past [`LATEST`]
/// could not even be stored.
pub const MAX_LEASE_MS: u64 = 24 * 60 * 60 * 1_000;

/// When a lease of `lease_ms` taken at `now` expires, or a typed error naming `lease_ms`
/// when it is longer than [`MAX_LEASE_MS`] or would end after [`LATEST`].
pub fn lease_expiry(lease_ms: u64, now: Timestamp) -> StoreResult<Timestamp> {
    let expires_at = now.0.checked_add(lease_ms).map(Timestamp).filter(|at| *at <= LATEST);
    match expires_at {
        Some(at) if lease_ms <= MAX_LEASE_MS => Ok(at),
        _ => Err(invalid("lease_ms", format!("expected a lease of at most {MAX_LEASE_MS} ms, got {lease_ms}"))),
    }
}

/// The lease claimed messages are held under (see [`lease_expiry`] for its bound).
pub fn claim_lease(request: &ClaimRequest, token: u64, now: Timestamp) -> StoreResult<Lease> {
    Ok(Lease { worker: request.worker.clone(), expires_at: lease_expiry(request.lease_ms, now)?, token })
}

/// Refuses submission results no store can keep: a retry due after [`LATEST`] (a
/// provider's absurd `Retry-After` that got through) is a typed error naming
/// `next_attempt_at`, checked before anything is written.
pub fn check_submission_times(results: &[(MessageId, SubmissionResult)]) -> StoreResult<()> {
    for (id, result) in results {
        if let SubmissionResult::Retry { next_attempt_at, .. } = result {
            if *next_attempt_at > LATEST {
                return Err(invalid(
                    "next_attempt_at",
                    format!("{id}: a retry at {next_attempt_at} is after the year 9999"),
                ));
            }
        }
    }
    Ok(())
}

// --- submissions, reports, reaper -------------------------------------------------------

/// What to write for one submission result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubmissionPlan {
    /// Refused: the token is stale or the message moved on.
    Fenced,
    /// The provider has it: accept it (see the module's contract).
    Accept {
        /// The provider's id.
        provider_message_id: String,
        /// The bulk request's id.
        bulk_id: Option<String>,
    },
    /// Move the message, with this error, due again at `next_attempt_at` if given.
    Move {
        /// The new status.
        to: MessageStatus,
        /// Its error.
        error: MessageError,
        /// The new due time, for a retry.
        next_attempt_at: Option<Timestamp>,
    },
}

/// The rule for a submission result under `token`, for a message in `status` whose lease
/// carries `lease_token`. An acceptance for a message the reaper moved to `unknown`
/// resolves it; anything else needs the lease.
pub fn record_submission(
    status: MessageStatus,
    lease_token: Option<u64>,
    token: u64,
    result: SubmissionResult,
) -> SubmissionPlan {
    // A message is held by the token its lease carries, not by being `submitting`: the
    // reaper and a retry may have given it to another worker since this one claimed it.
    let token_ignored = active(Bug::StaleWriteTaken);
    let holds_lease = status == MessageStatus::Submitting && (lease_token == Some(token) || token_ignored);
    let late_acceptance = status == MessageStatus::Unknown && matches!(result, SubmissionResult::Accepted { .. });
    if !holds_lease && !late_acceptance {
        return SubmissionPlan::Fenced;
    }
    match result {
        SubmissionResult::Accepted { provider_message_id, bulk_id } => {
            SubmissionPlan::Accept { provider_message_id, bulk_id }
        }
        SubmissionResult::Retry { error, next_attempt_at } => {
            SubmissionPlan::Move { to: MessageStatus::Queued, error, next_attempt_at: Some(next_attempt_at) }
        }
        SubmissionResult::Failed { error } => {
            SubmissionPlan::Move { to: MessageStatus::Failed, error, next_attempt_at: None }
        }
        SubmissionResult::Unknown { error } => {
            SubmissionPlan::Move { to: MessageStatus::Unknown, error, next_attempt_at: None }
        }
    }
}

/// What one report does to the message it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportPlan {
    /// Move the message through these statuses, each with the error to record, then give
    /// it the report's provider id if `assign_provider_id`; answer `outcome`.
    Apply {
        /// The moves, in order.
        moves: Vec<(MessageStatus, Option<MessageError>)>,
        /// The message has no provider id yet: it takes the report's.
        assign_provider_id: bool,
        /// The answer.
        outcome: ReportOutcome,
    },
    /// Nothing changes; the answer is `outcome`.
    Ignore(ReportOutcome),
    /// The submission is not recorded yet: park the report.
    Park,
}

/// The rule for `report` on message `id` in `status` (with a provider id or not).
pub fn report_plan(id: MessageId, status: MessageStatus, has_provider_id: bool, report: &InboundReport) -> ReportPlan {
    match decide(status, &report.status) {
        ReportDecision::Apply { path } => {
            let last = *path.last().expect("an applied report has a path");
            let count = path.len();
            let moves = path
                .into_iter()
                .enumerate()
                .map(|(index, step)| (step, if index + 1 == count { report_error(last, report) } else { None }))
                .collect();
            let outcome = ReportOutcome::Applied { message: id, from: status, to: last };
            ReportPlan::Apply { moves, assign_provider_id: !has_provider_id, outcome }
        }
        ReportDecision::Duplicate => ReportPlan::Ignore(ReportOutcome::Duplicate { message: id }),
        ReportDecision::IgnoredBackwards => ReportPlan::Ignore(ReportOutcome::IgnoredBackwards { message: id, status }),
        ReportDecision::Park => ReportPlan::Park,
        ReportDecision::Unrecognized => ReportPlan::Ignore(ReportOutcome::Unrecognized),
    }
}

/// Whether a report applied to a message that was in `before` can complete its
/// campaign. Only a change that settles a pending message lowers the campaign's pending
/// count ([`completes`]), and every change that lowered it before this one checked
/// completion then; so a report on a settled message (the common case: `accepted` to
/// `delivered`) cannot complete anything, and a batch of reports need not read its
/// campaign back after each one.
pub fn report_may_complete(before: MessageStatus) -> bool {
    before.is_pending()
}

/// What a directly applied report does beyond its [`ReportPlan`], for a message of
/// `cost`: normally nothing. With the `counter-per-report` bug, a duplicate or backward
/// report bumps the delivered counter by one and moves this money (balance and charged
/// only), as incidents 000 and 001 did with `$inc: { sentCount: 1, actualCost: cost }`.
pub fn report_side_effect(outcome: &ReportOutcome, cost: Credits) -> Option<LedgerDelta> {
    let ignored = matches!(outcome, ReportOutcome::Duplicate { .. } | ReportOutcome::IgnoredBackwards { .. });
    (ignored && active(Bug::CounterPerReport)).then_some(LedgerDelta {
        balance: -cost,
        reserved: Credits::ZERO,
        charged: cost,
    })
}

/// What the reaper does with an expired lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReapDecision {
    /// Back to `queued`, due now: the provider deduplicates a resubmission by its key.
    Requeue,
    /// To `unknown`, for reconciliation: never a blind resend.
    Unknown,
}

/// The rule for an expired lease on an account whose provider honours idempotency keys
/// (`idempotent_submissions`) or not.
pub fn reap(idempotent_submissions: bool) -> ReapDecision {
    // Incident 000: the reaper "retried" expired claims, resending what a crashed worker
    // had already handed to the provider.
    if idempotent_submissions || active(Bug::ReaperResends) {
        ReapDecision::Requeue
    } else {
        ReapDecision::Unknown
    }
}

/// The rule for resolving a message in `status`: `None` if it is no longer unknown, else
/// the resolution to write (an acceptance, or a failure with its error).
pub fn resolve_plan(status: MessageStatus, resolution: Resolution) -> Option<Resolution> {
    (status == MessageStatus::Unknown).then_some(resolution)
}

/// Unknown messages that became unknown at or before this time are stale; `None` when
/// none can be (the bound reaches back before the epoch).
pub fn stale_cutoff(older_than_ms: u64, now: Timestamp) -> Option<Timestamp> {
    now.0.checked_sub(older_than_ms).map(Timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_waits_for_every_pending_message() {
        let counts = StatusCounts { submitting: 1, delivered: 3, ..StatusCounts::default() };
        assert!(!completes(CampaignStatus::Sending, &counts));
        assert!(completes(CampaignStatus::Sending, &StatusCounts { delivered: 3, ..StatusCounts::default() }));
        assert!(!completes(CampaignStatus::Paused, &StatusCounts::default()));
    }

    #[test]
    fn the_reaper_never_resends_to_a_provider_without_idempotency_keys() {
        assert_eq!(reap(false), ReapDecision::Unknown);
        assert_eq!(reap(true), ReapDecision::Requeue);
    }

    #[test]
    fn a_stale_token_is_fenced_but_a_late_acceptance_resolves_an_unknown() {
        let accepted = || SubmissionResult::Accepted { provider_message_id: "p".into(), bulk_id: None };
        assert_eq!(record_submission(MessageStatus::Submitting, Some(1), 2, accepted()), SubmissionPlan::Fenced);
        assert!(matches!(
            record_submission(MessageStatus::Unknown, None, 2, accepted()),
            SubmissionPlan::Accept { .. }
        ));
    }

    #[test]
    fn the_stale_bound_never_reaches_before_the_epoch() {
        assert_eq!(stale_cutoff(10, Timestamp(5)), None);
        assert_eq!(stale_cutoff(10, Timestamp(15)), Some(Timestamp(5)));
    }
}
