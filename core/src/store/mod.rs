//! The store: the engine's only shared state, and the place its invariants are kept.
//!
//! Every method of [`Store`] is one transaction with conditional updates. A method either
//! does all it says or nothing, and it checks the state it depends on inside the same
//! transaction (a claim only takes `queued` messages of `sending` campaigns; a submission
//! outcome is refused when its fencing token is stale; a report only moves a message
//! forward). Campaign counters and tenant credit columns are updated in the same
//! transaction as the message status changes that move them, so they always equal a
//! recount — which [`Store::recount`] and [`Store::ledger_recount`] let anyone verify.
//!
//! Three backends pass one conformance suite: [`memory::MemoryStore`] (the simulator's),
//! [`sqlite::SqliteStore`] (the embedded default for real use) and, behind the `postgres`
//! feature, `postgres::PostgresStore`. What each operation decides is written once, in
//! [`rules`]; the order in which it is read, decided and written is written once, in the
//! store engine (`engine.rs`), over each backend's row operations (its `Backend` trait).
//! A backend provides rows and transactions, and decides nothing.
//!
//! Methods take the current time as an argument: the store has no clock of its own.

pub mod conformance;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod journal_lines;
pub use crate::domain::rate::Burst;
mod engine;
pub mod memory;
mod pending;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod rules;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use crate::clock::Timestamp;
use crate::domain::plan::SkipReason;
use crate::domain::records::{
    Audience, Campaign, Contact, Message, MessageError, PauseReason, ProviderKind, StatusCounts, Tenant, TrafficAccount,
};
use crate::domain::report::ReportStatus;
use crate::domain::status::{CampaignStatus, IllegalTransition, MessageStatus, TransitionCause};
use crate::domain::template::TemplateError;
use crate::ids::{CampaignId, MessageId, TenantId, TrafficAccountId};
use crate::money::Credits;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Why a store operation did nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No such record, or it belongs to another tenant (the two are not told apart, so a
    /// tenant cannot probe for another's ids).
    #[error("{what} {id} not found")]
    NotFound {
        /// The kind of record.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// The record is not in a state that allows the operation.
    #[error("{0}")]
    IllegalTransition(#[from] IllegalTransition),
    /// The operation conflicts with the record's state (e.g. editing a sent campaign).
    #[error("{0}")]
    Conflict(String),
    /// Not enough available credit; nothing was reserved.
    #[error("insufficient credits: {needed} needed, {available} available")]
    InsufficientCredits {
        /// Credits the operation needed.
        needed: Credits,
        /// Credits available (balance − reserved).
        available: Credits,
    },
    /// An idempotency key was reused with a different request.
    #[error("idempotency key `{key}` was already used with a different request")]
    IdempotencyMismatch {
        /// The key.
        key: String,
    },
    /// The input is not acceptable.
    #[error("{field}: {message}")]
    Invalid {
        /// The field at fault.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The campaign's template cannot be rendered.
    #[error("template: {0}")]
    Template(#[from] TemplateError),
    /// A passing failure of the backend; the same call may succeed later. Nothing changed.
    #[error("transient store error: {0}")]
    Transient(String),
    /// The backend failed; nothing changed.
    #[error("store backend error: {0}")]
    Backend(String),
}

/// A store result.
pub type StoreResult<T> = Result<T, StoreError>;

/// A tenant to create.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTenant {
    /// Display name.
    pub name: String,
    /// Hex SHA-256 of its API key.
    pub api_key_hash: String,
    /// Opening balance.
    pub credits: Credits,
    /// Submissions per second across its campaigns, if limited.
    pub rate_limit_per_s: Option<u32>,
}

/// A change to a tenant's credits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreditChange {
    /// Add credits (must be positive).
    TopUp(Credits),
    /// Add or remove credits; the balance may never fall below what is reserved.
    Adjust(Credits),
}

/// A traffic account to create.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTrafficAccount {
    /// Owner, or `None` for a platform account usable by every tenant.
    pub owner: Option<TenantId>,
    /// Display name.
    pub name: String,
    /// Wire format.
    pub provider: ProviderKind,
    /// Provider base URL.
    pub base_url: String,
    /// Credentials by name.
    pub credentials: BTreeMap<String, String>,
    /// Default sender.
    pub sender: String,
    /// Submissions per second, if limited.
    pub rate_limit_per_s: Option<u32>,
    /// Price of one segment.
    pub price_per_segment: Credits,
    /// Whether the provider honours idempotency keys (from the adapter's capabilities).
    pub idempotent_submissions: bool,
}

/// A contact row to import.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewContact {
    /// The phone number, in international form.
    pub phone: String,
    /// Template attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Opted out.
    #[serde(default)]
    pub opted_out: bool,
}

/// One rejected import row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    /// Zero-based row index in the request.
    pub row: usize,
    /// The field at fault.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// The result of a contact import: valid rows are written, invalid ones reported.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    /// New contacts.
    pub created: u32,
    /// Existing contacts (same tenant and number) whose attributes or opt-out changed.
    pub updated: u32,
    /// Existing contacts left as they were.
    pub unchanged: u32,
    /// Rejected rows.
    pub errors: Vec<RowError>,
}

/// A campaign to create (status `draft`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCampaign {
    /// Display name.
    pub name: String,
    /// Body with placeholders.
    pub body_template: String,
    /// Sender override.
    pub sender: Option<String>,
    /// Recipients.
    pub audience: Audience,
    /// Account to send through.
    pub traffic_account: TrafficAccountId,
    /// Start time; `None` starts at enqueue.
    pub schedule_at: Option<Timestamp>,
}

/// Changes to a draft campaign; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignPatch {
    /// New name.
    pub name: Option<String>,
    /// New template.
    pub body_template: Option<String>,
    /// New sender override (`Some(None)` clears it).
    pub sender: Option<Option<String>>,
    /// New audience.
    pub audience: Option<Audience>,
    /// New traffic account.
    pub traffic_account: Option<TrafficAccountId>,
    /// New schedule (`Some(None)` clears it).
    pub schedule_at: Option<Option<Timestamp>>,
}

/// What a campaign would cost if enqueued now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preview {
    /// Contacts in the audience.
    pub audience: u32,
    /// Messages that would be sent.
    pub recipients: u32,
    /// Audience contacts that would be skipped (opted out, invalid number).
    pub skipped: u32,
    /// Total segments to send.
    pub segments: u64,
    /// Credits enqueue would reserve.
    pub estimated_cost: Credits,
    /// The tenant's available credit.
    pub available_credits: Credits,
    /// Whether enqueue would succeed on credit.
    pub sufficient_credits: bool,
}

impl Preview {
    /// The preview of no message yet, for a tenant with `available` credit: messages are
    /// counted in one at a time with [`Preview::add`].
    pub fn empty(available: Credits) -> Preview {
        Preview {
            audience: 0,
            recipients: 0,
            skipped: 0,
            segments: 0,
            estimated_cost: Credits::ZERO,
            available_credits: available,
            sufficient_credits: true,
        }
    }

    /// Counts one more planned message in (its body is not kept).
    pub fn add(&mut self, message: &crate::domain::plan::PlannedMessage) {
        self.audience += 1;
        if message.skip.is_none() {
            self.recipients += 1;
            self.segments += u64::from(message.segments);
            self.estimated_cost += message.cost;
        } else {
            self.skipped += 1;
        }
        self.sufficient_credits = self.estimated_cost <= self.available_credits;
    }
}

impl NewCampaign {
    /// Refuses a campaign no store may create, before any lookup: a name, a body whose
    /// placeholders close, a start time no later than [`LATEST`]. The store checks the
    /// account and the audience against its own records.
    pub fn check(&self) -> StoreResult<()> {
        let invalid = |field: &str, message: String| Err(StoreError::Invalid { field: field.into(), message });
        if self.name.trim().is_empty() {
            return invalid("name", "a campaign needs a name".into());
        }
        if self.body_template.is_empty() {
            return invalid("body_template", "a campaign needs a body".into());
        }
        crate::domain::template::check(&self.body_template)?;
        match self.schedule_at {
            Some(at) if at > LATEST => invalid(
                "schedule_at",
                format!("{} ms is after the year 9999; expected milliseconds since the Unix epoch", at.0),
            ),
            _ => Ok(()),
        }
    }
}

impl NewTenant {
    /// Refuses a tenant no store may create.
    pub fn check(&self) -> StoreResult<()> {
        if self.name.trim().is_empty() {
            return Err(StoreError::Invalid { field: "name".into(), message: "a tenant needs a name".into() });
        }
        if self.credits < Credits::ZERO || self.credits > Credits::MAX {
            return Err(StoreError::Invalid {
                field: "credits".into(),
                message: format!("expected an opening balance of 0 to {} credits, got {}", Credits::MAX, self.credits),
            });
        }
        check_rate_limit(self.rate_limit_per_s)
    }
}

/// Refuses a rate limit of zero, which would never let a message go (and would make
/// "when is the next token" infinitely far away); no limit is written as none.
fn check_rate_limit(rate_limit_per_s: Option<u32>) -> StoreResult<()> {
    match rate_limit_per_s {
        Some(0) => Err(StoreError::Invalid {
            field: "rate_limit_per_s".into(),
            message: "expected at least 1 per second (leave it out for no limit)".into(),
        }),
        _ => Ok(()),
    }
}

impl CreditChange {
    /// The name of the request field this change comes from (`top_up` or `adjust`).
    pub fn field(self) -> &'static str {
        match self {
            CreditChange::TopUp(_) => "top_up",
            CreditChange::Adjust(_) => "adjust",
        }
    }

    /// Refuses an amount no store may apply, before any lookup: a top-up must be 1 to
    /// [`Credits::MAX`], an adjustment a non-zero amount within ±[`Credits::MAX`]. The
    /// store checks the resulting balance against the same bound and the reservation.
    pub fn check(self) -> StoreResult<()> {
        let invalid = |message: String| Err(StoreError::Invalid { field: self.field().into(), message });
        match self {
            CreditChange::TopUp(amount) if amount <= Credits::ZERO || amount > Credits::MAX => {
                invalid(format!("expected a top-up of 1 to {} credits, got {amount}", Credits::MAX))
            }
            CreditChange::Adjust(delta) if delta == Credits::ZERO || !delta.within_bound() => {
                invalid(format!("expected a non-zero adjustment within ±{} credits, got {delta}", Credits::MAX))
            }
            _ => Ok(()),
        }
    }
}

impl NewTrafficAccount {
    /// The account as it will be once created, under a placeholder id: what an adapter is
    /// built from, to check the credentials before anything is stored.
    pub fn preview(&self) -> TrafficAccount {
        TrafficAccount {
            id: TrafficAccountId(0),
            owner: self.owner,
            name: self.name.clone(),
            provider: self.provider,
            base_url: self.base_url.clone(),
            credentials: self.credentials.clone(),
            sender: self.sender.clone(),
            rate_limit_per_s: self.rate_limit_per_s,
            price_per_segment: self.price_per_segment,
            idempotent_submissions: self.idempotent_submissions,
        }
    }

    /// Refuses an account no store may create (its owner is checked by the store).
    pub fn check(&self) -> StoreResult<()> {
        let invalid =
            |field: &str, message: &str| Err(StoreError::Invalid { field: field.into(), message: message.into() });
        if self.name.trim().is_empty() {
            return invalid("name", "a traffic account needs a name");
        }
        if self.base_url.trim().is_empty() {
            return invalid("base_url", "a traffic account needs the provider's base URL");
        }
        if self.sender.trim().is_empty() {
            return invalid("sender", "a traffic account needs a default sender");
        }
        if self.price_per_segment < Credits::ZERO || self.price_per_segment > Credits::MAX_PRICE_PER_SEGMENT {
            return Err(StoreError::Invalid {
                field: "price_per_segment".into(),
                message: format!(
                    "expected a price of 0 to {} credits per segment, got {}",
                    Credits::MAX_PRICE_PER_SEGMENT,
                    self.price_per_segment
                ),
            });
        }
        check_rate_limit(self.rate_limit_per_s)
    }
}

/// An `Idempotency-Key` and a fingerprint of the request it came with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyKey {
    /// The client's key.
    pub key: String,
    /// Hex SHA-256 of the request (method, path, body).
    pub request_hash: String,
}

/// The answer to an enqueue; the same answer is returned for a replayed idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnqueueReceipt {
    /// The campaign.
    pub campaign: CampaignId,
    /// Its status after the enqueue (`sending` or `scheduled`).
    pub status: CampaignStatus,
    /// Messages created (sendable and skipped).
    pub messages: u32,
    /// Messages created already skipped.
    pub skipped: u32,
    /// Credits reserved.
    pub reserved: Credits,
    /// True when this answer is a replay of an earlier request with the same key.
    pub replayed: bool,
}

/// A worker's request for work.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRequest {
    /// The worker's name (recorded on the lease).
    pub worker: String,
    /// Claim only for this account; `None` picks the account with the most overdue message.
    pub traffic_account: Option<TrafficAccountId>,
    /// At most this many messages (the adapter's batch size).
    pub max_messages: u32,
    /// Lease length.
    pub lease_ms: u64,
    /// The capacity of the rate-limit buckets the claim draws from.
    #[serde(default, skip_serializing_if = "Burst::is_one_second")]
    pub burst: Burst,
}

/// A batch of messages claimed under one lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The fencing token every write about these messages must carry.
    pub token: u64,
    /// The account they are sent through.
    pub traffic_account: TrafficAccountId,
    /// When the lease expires unless renewed.
    pub expires_at: Timestamp,
    /// The messages, now `submitting`, in claim order (oldest due first).
    pub messages: Vec<Message>,
}

/// Why a claim came back empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum IdleReason {
    /// Nothing is due.
    NothingDue {
        /// When the next queued message becomes due, if any is queued.
        next_due_at: Option<Timestamp>,
    },
    /// Messages are due but a rate limit has no tokens now.
    RateLimited {
        /// When a token will be available.
        retry_at: Timestamp,
    },
}

/// The answer to a claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ClaimOutcome {
    /// Work.
    Claimed(Claim),
    /// No work, and why.
    Idle(IdleReason),
}

/// What a worker learned about one submitted message, after applying the retry policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum SubmissionResult {
    /// The provider took it.
    Accepted {
        /// The provider's id.
        provider_message_id: String,
        /// The bulk request's id.
        bulk_id: Option<String>,
    },
    /// A retryable failure: queue it again.
    Retry {
        /// The error.
        error: MessageError,
        /// Not before this time.
        next_attempt_at: Timestamp,
    },
    /// A permanent failure, or attempts exhausted.
    Failed {
        /// The error.
        error: MessageError,
    },
    /// The request may or may not have reached the provider.
    Unknown {
        /// What happened.
        error: MessageError,
    },
}

/// What recording one submission result did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "recorded")]
pub enum RecordOutcome {
    /// The result was written; the message is now in `status`.
    Recorded {
        /// The new status.
        status: MessageStatus,
        /// Parked delivery reports applied along with it.
        parked_reports_applied: u32,
    },
    /// The token is stale (the lease was taken over or the message moved on): refused.
    Fenced {
        /// Where the message actually stands.
        status: MessageStatus,
    },
}

/// A delivery report, as an adapter parsed and authenticated it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InboundReport {
    /// The account whose webhook received it.
    pub traffic_account: TrafficAccountId,
    /// The provider's message id.
    pub provider_message_id: String,
    /// Our message id, when the provider echoes it (status callback URL, client id).
    pub message_ref: Option<MessageId>,
    /// The status, mapped onto the lattice.
    pub status: ReportStatus,
    /// The provider's error code, if any.
    pub error_code: Option<String>,
}

/// What applying one report did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "applied")]
pub enum ReportOutcome {
    /// The message moved.
    Applied {
        /// The message.
        message: MessageId,
        /// From this status.
        from: MessageStatus,
        /// To this one.
        to: MessageStatus,
    },
    /// The message already had this status.
    Duplicate {
        /// The message.
        message: MessageId,
    },
    /// The report would have moved the message backwards; recorded and ignored.
    IgnoredBackwards {
        /// The message.
        message: MessageId,
        /// Its status, kept.
        status: MessageStatus,
    },
    /// No message is known by that id yet; the report is kept until one is.
    Parked,
    /// The status string was not recognised; recorded and ignored.
    Unrecognized,
}

/// What a pass of the reaper did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReapReport {
    /// Expired leases returned to `queued` (the provider honours idempotency keys).
    pub requeued: Vec<MessageId>,
    /// Expired leases moved to `unknown` for reconciliation.
    pub unknown: Vec<MessageId>,
}

/// How an ambiguous submission was resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "resolution")]
pub enum Resolution {
    /// The provider has it.
    Accepted {
        /// The provider's id.
        provider_message_id: String,
    },
    /// The provider does not have it: fail it and release its credits.
    NotAccepted {
        /// The error to record.
        error: MessageError,
    },
}

/// The answer to retry-failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryReceipt {
    /// Failed messages put back in the queue.
    pub requeued: u32,
    /// Credits reserved for them.
    pub reserved: Credits,
}

/// Work waiting in the queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    /// Queued messages of sending campaigns.
    pub queued: u32,
    /// Of those, due now.
    pub due: u32,
    /// Messages under a lease.
    pub submitting: u32,
    /// Messages awaiting reconciliation.
    pub unknown: u32,
    /// Reports parked for provider ids not yet known: store-wide, or for one tenant those
    /// that came to its own private accounts (a shared account's cannot be told apart).
    pub parked_reports: u32,
    /// Parked reports removed unmatched after the retention, since the store was made
    /// (store-wide view only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parked_reports_expired: Option<u64>,
}

/// The reports parked for one account with one status: what an operator weighs against
/// the account's unknown outcomes when no report could name its message (a Mitto-style
/// report carries only the provider's id, which a lost bulk answer never told the engine).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedSummary {
    /// The account whose webhook received them.
    pub traffic_account: TrafficAccountId,
    /// Their status as reported (`delivered`, `undelivered`, …).
    pub status: ReportStatus,
    /// How many.
    pub reports: u32,
    /// When the first arrived.
    pub first_received_at: Timestamp,
    /// When the last arrived.
    pub last_received_at: Timestamp,
}

/// A tenant's credit columns recomputed from its messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerRecount {
    /// Σ cost of messages holding a reservation.
    pub reserved: Credits,
    /// Σ cost of charged messages.
    pub charged: Credits,
}

/// One entry of the store's journal: every status change, in commit order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum JournalEntry {
    /// A message changed status.
    Message {
        /// Sequence number (1, 2, …) across the whole journal.
        seq: u64,
        /// When.
        at: Timestamp,
        /// The message.
        message: MessageId,
        /// From (`None` when created).
        from: Option<MessageStatus>,
        /// To.
        to: MessageStatus,
        /// Why it was allowed.
        cause: TransitionCause,
    },
    /// A campaign changed status.
    Campaign {
        /// Sequence number.
        seq: u64,
        /// When.
        at: Timestamp,
        /// The campaign.
        campaign: CampaignId,
        /// From.
        from: CampaignStatus,
        /// To.
        to: CampaignStatus,
    },
}

impl JournalEntry {
    /// The entry of `message`'s creation by an enqueue, in `status` (queued or skipped).
    pub fn created(seq: u64, at: Timestamp, message: MessageId, status: MessageStatus) -> JournalEntry {
        JournalEntry::Message { seq, at, message, from: None, to: status, cause: TransitionCause::Engine }
    }

    /// The entry's sequence number.
    pub fn seq(&self) -> u64 {
        match self {
            JournalEntry::Message { seq, .. } | JournalEntry::Campaign { seq, .. } => *seq,
        }
    }
}

/// The engine's shared state. See the module documentation for the rules every
/// implementation keeps.
pub trait Store: Send + Sync + 'static {
    // --- tenants and accounts -------------------------------------------------------

    /// Creates a tenant with an opening balance (which counts as funded).
    fn create_tenant(&self, new: NewTenant, now: Timestamp) -> StoreResult<Tenant>;
    /// A tenant by id.
    fn tenant(&self, id: TenantId) -> StoreResult<Tenant>;
    /// The tenant whose API key hashes to `api_key_hash`.
    fn tenant_by_api_key_hash(&self, api_key_hash: &str) -> StoreResult<Option<Tenant>>;
    /// Every tenant, by id.
    fn tenants(&self) -> StoreResult<Vec<Tenant>>;
    /// Tops up or adjusts credits. A top-up must be positive; an adjustment may not take
    /// the balance below what is reserved.
    fn change_credits(&self, tenant: TenantId, change: CreditChange, now: Timestamp) -> StoreResult<Tenant>;
    /// Creates a traffic account.
    fn create_traffic_account(&self, new: NewTrafficAccount) -> StoreResult<TrafficAccount>;
    /// An account by id.
    fn traffic_account(&self, id: TrafficAccountId) -> StoreResult<TrafficAccount>;
    /// Every account, by id.
    fn traffic_accounts(&self) -> StoreResult<Vec<TrafficAccount>>;

    // --- contacts and campaigns -----------------------------------------------------

    /// Imports contacts: valid rows are created or update the contact with the same
    /// number; invalid rows are reported and skipped. Row numbers are the request's.
    fn import_contacts(&self, tenant: TenantId, rows: Vec<NewContact>, now: Timestamp) -> StoreResult<ImportReport>;
    /// A tenant's contacts, by id.
    fn contacts(&self, tenant: TenantId) -> StoreResult<Vec<Contact>>;
    /// Creates a draft campaign (the template and the account are checked).
    fn create_campaign(&self, tenant: TenantId, new: NewCampaign, now: Timestamp) -> StoreResult<Campaign>;
    /// Changes a draft campaign.
    fn update_campaign(
        &self,
        tenant: TenantId,
        id: CampaignId,
        patch: CampaignPatch,
        now: Timestamp,
    ) -> StoreResult<Campaign>;
    /// A campaign with its counters.
    fn campaign(&self, tenant: TenantId, id: CampaignId) -> StoreResult<Campaign>;
    /// A tenant's campaigns, by id.
    fn campaigns(&self, tenant: TenantId) -> StoreResult<Vec<Campaign>>;
    /// Every campaign of every tenant, by id (for the scheduler and the oracle).
    fn all_campaigns(&self) -> StoreResult<Vec<Campaign>>;
    /// What enqueueing would create and cost now.
    fn preview(&self, tenant: TenantId, id: CampaignId) -> StoreResult<Preview>;
    /// Creates the campaign's messages and reserves their exact cost, all or nothing;
    /// moves it to `sending`, or to `scheduled` if its start time is later than `now`.
    /// With a key already used for the same request, returns the first answer again
    /// (`replayed`); with a key used for another request, [`StoreError::IdempotencyMismatch`].
    /// A refused enqueue is not remembered under its key.
    fn enqueue(
        &self,
        tenant: TenantId,
        id: CampaignId,
        key: Option<IdempotencyKey>,
        now: Timestamp,
    ) -> StoreResult<EnqueueReceipt>;
    /// Moves scheduled campaigns whose start time has come to `sending`.
    fn start_due_campaigns(&self, now: Timestamp) -> StoreResult<Vec<CampaignId>>;
    /// Pauses a sending campaign: its queued messages are no longer claimed.
    fn pause(&self, tenant: TenantId, id: CampaignId, reason: PauseReason, now: Timestamp) -> StoreResult<Campaign>;
    /// Resumes a paused campaign.
    fn resume(&self, tenant: TenantId, id: CampaignId, now: Timestamp) -> StoreResult<Campaign>;
    /// Cancels a campaign: queued messages are cancelled and their credits released;
    /// messages already with a worker or the provider finish their course.
    fn cancel(&self, tenant: TenantId, id: CampaignId, now: Timestamp) -> StoreResult<Campaign>;
    /// Puts a sending or paused campaign's failed messages back in the queue, reserving
    /// their cost again, all or nothing. Failures of unknown outcome are never retried.
    fn retry_failed(&self, tenant: TenantId, id: CampaignId, now: Timestamp) -> StoreResult<RetryReceipt>;
    /// Failed messages of a campaign by error code.
    fn failures_by_code(&self, tenant: TenantId, id: CampaignId) -> StoreResult<BTreeMap<String, u32>>;
    /// A campaign's messages, by id.
    fn messages(&self, campaign: CampaignId) -> StoreResult<Vec<Message>>;
    /// Calls `visit` with each of a campaign's messages, by id, as [`Store::messages`]
    /// lists them, without holding them all at once: a million-message campaign's copy is
    /// worth not making just to read it through. The default lists them first.
    fn visit_messages(&self, campaign: CampaignId, visit: &mut dyn FnMut(&Message)) -> StoreResult<()> {
        self.messages(campaign)?.iter().for_each(visit);
        Ok(())
    }
    /// A message by id.
    fn message(&self, id: MessageId) -> StoreResult<Message>;

    // --- workers --------------------------------------------------------------------

    /// Claims up to `max_messages` due, queued messages of sending campaigns sent through
    /// one account, within that account's and their tenants' rate limits, moving them to
    /// `submitting` under a new lease with a fresh fencing token.
    fn claim(&self, request: ClaimRequest, now: Timestamp) -> StoreResult<ClaimOutcome>;
    /// Extends the lease of every message still held under `token`; returns how many.
    fn renew_lease(&self, token: u64, lease_ms: u64, now: Timestamp) -> StoreResult<u32>;
    /// Records what happened to submitted messages. Each result is written only if the
    /// message is still `submitting` under `token`; otherwise it is [`RecordOutcome::Fenced`].
    /// An `Accepted` result for a message that the reaper moved to `unknown` resolves it.
    fn record_submissions(
        &self,
        token: u64,
        results: Vec<(MessageId, SubmissionResult)>,
        now: Timestamp,
    ) -> StoreResult<Vec<RecordOutcome>>;
    /// Applies a delivery report, idempotently and in any order.
    fn apply_report(&self, report: InboundReport, now: Timestamp) -> StoreResult<ReportOutcome>;
    /// Applies the reports of one webhook, in order; one outcome each. A store may apply
    /// them in one transaction (SQLite does: one commit instead of one per report). On an
    /// error some may have been applied: the provider's retry finds them duplicates.
    fn apply_reports(&self, reports: Vec<InboundReport>, now: Timestamp) -> StoreResult<Vec<ReportOutcome>> {
        reports.into_iter().map(|report| self.apply_report(report, now)).collect()
    }
    /// Returns expired leases: to `queued` where the account's provider honours
    /// idempotency keys, otherwise to `unknown`. Never a blind resend.
    fn reap_expired_leases(&self, now: Timestamp) -> StoreResult<ReapReport>;
    /// Messages in `unknown`, oldest first.
    fn unknown_messages(&self, limit: u32) -> StoreResult<Vec<Message>>;
    /// Resolves one `unknown` message; false if it was no longer unknown.
    fn resolve_unknown(&self, id: MessageId, resolution: Resolution, now: Timestamp) -> StoreResult<bool>;
    /// Settles as failed with [`UNKNOWN_OUTCOME`](crate::domain::UNKNOWN_OUTCOME) (cost
    /// charged) every message unknown for longer than `older_than_ms`.
    fn settle_stale_unknowns(&self, older_than_ms: u64, now: Timestamp) -> StoreResult<Vec<MessageId>>;
    /// The parked reports, counted by account and status, with when the first and the last
    /// of each arrived ([`rules::summarize_parked`]).
    fn parked_summary(&self) -> StoreResult<Vec<ParkedSummary>>;
    /// Removes the parked reports received `older_than_ms` or longer before `now`: their
    /// provider ids never became known, and never will past the retention. Returns how many,
    /// and adds them to the store-wide count ([`QueueStats::parked_reports_expired`]).
    fn expire_parked_reports(&self, older_than_ms: u64, now: Timestamp) -> StoreResult<u64>;

    // --- observation ----------------------------------------------------------------

    /// Queue statistics, for one tenant or all.
    fn queue_stats(&self, tenant: Option<TenantId>, now: Timestamp) -> StoreResult<QueueStats>;
    /// A campaign's messages counted by status afresh (the oracle compares this with the
    /// stored counters).
    fn recount(&self, campaign: CampaignId) -> StoreResult<StatusCounts>;
    /// A tenant's reserved and charged credits recomputed from its messages.
    fn ledger_recount(&self, tenant: TenantId) -> StoreResult<LedgerRecount>;
    /// Removes and returns the journal entries written since the last call, in order.
    fn take_journal(&self) -> StoreResult<Vec<JournalEntry>>;
}

/// Hands the macro `$wrapper` every [`Store`] method a wrapper forwards, one per line as
/// `read name(arguments) -> answer;` or `write name(arguments) -> answer;` (the answer
/// without its `StoreResult`), so that a wrapper around a store — the simulator's fault
/// injector, a test's switch or gate — is written as what it does to one call, not as a
/// copy of the trait. The list is written once, here beside the trait: a method added to
/// the trait and not here is a compile error in every wrapper, never a silent default.
///
/// `apply_reports` is left out on purpose: its default applies each report through the
/// wrapper's own `apply_report`, so a wrapper hooks every report of a batch (the fault
/// injector draws once per report) unless it writes `apply_reports` itself.
#[macro_export]
macro_rules! store_methods {
    ($wrapper:ident) => {
        $wrapper! {
            write create_tenant(new: $crate::store::NewTenant, now: $crate::Timestamp) -> $crate::domain::Tenant;
            read tenant(id: $crate::TenantId) -> $crate::domain::Tenant;
            read tenant_by_api_key_hash(api_key_hash: &str) -> Option<$crate::domain::Tenant>;
            read tenants() -> Vec<$crate::domain::Tenant>;
            write change_credits(tenant: $crate::TenantId, change: $crate::store::CreditChange, now: $crate::Timestamp) -> $crate::domain::Tenant;
            write create_traffic_account(new: $crate::store::NewTrafficAccount) -> $crate::domain::TrafficAccount;
            read traffic_account(id: $crate::TrafficAccountId) -> $crate::domain::TrafficAccount;
            read traffic_accounts() -> Vec<$crate::domain::TrafficAccount>;
            write import_contacts(tenant: $crate::TenantId, rows: Vec<$crate::store::NewContact>, now: $crate::Timestamp) -> $crate::store::ImportReport;
            read contacts(tenant: $crate::TenantId) -> Vec<$crate::domain::Contact>;
            write create_campaign(tenant: $crate::TenantId, new: $crate::store::NewCampaign, now: $crate::Timestamp) -> $crate::domain::Campaign;
            write update_campaign(tenant: $crate::TenantId, id: $crate::CampaignId, patch: $crate::store::CampaignPatch, now: $crate::Timestamp) -> $crate::domain::Campaign;
            read campaign(tenant: $crate::TenantId, id: $crate::CampaignId) -> $crate::domain::Campaign;
            read campaigns(tenant: $crate::TenantId) -> Vec<$crate::domain::Campaign>;
            read all_campaigns() -> Vec<$crate::domain::Campaign>;
            read preview(tenant: $crate::TenantId, id: $crate::CampaignId) -> $crate::store::Preview;
            write enqueue(tenant: $crate::TenantId, id: $crate::CampaignId, key: Option<$crate::store::IdempotencyKey>, now: $crate::Timestamp) -> $crate::store::EnqueueReceipt;
            write start_due_campaigns(now: $crate::Timestamp) -> Vec<$crate::CampaignId>;
            write pause(tenant: $crate::TenantId, id: $crate::CampaignId, reason: $crate::domain::PauseReason, now: $crate::Timestamp) -> $crate::domain::Campaign;
            write resume(tenant: $crate::TenantId, id: $crate::CampaignId, now: $crate::Timestamp) -> $crate::domain::Campaign;
            write cancel(tenant: $crate::TenantId, id: $crate::CampaignId, now: $crate::Timestamp) -> $crate::domain::Campaign;
            write retry_failed(tenant: $crate::TenantId, id: $crate::CampaignId, now: $crate::Timestamp) -> $crate::store::RetryReceipt;
            read failures_by_code(tenant: $crate::TenantId, id: $crate::CampaignId) -> std::collections::BTreeMap<String, u32>;
            read messages(campaign: $crate::CampaignId) -> Vec<$crate::domain::Message>;
            read visit_messages(campaign: $crate::CampaignId, visit: &mut dyn FnMut(&$crate::domain::Message)) -> ();
            read message(id: $crate::MessageId) -> $crate::domain::Message;
            write claim(request: $crate::store::ClaimRequest, now: $crate::Timestamp) -> $crate::store::ClaimOutcome;
            write renew_lease(token: u64, lease_ms: u64, now: $crate::Timestamp) -> u32;
            write record_submissions(token: u64, results: Vec<($crate::MessageId, $crate::store::SubmissionResult)>, now: $crate::Timestamp) -> Vec<$crate::store::RecordOutcome>;
            write apply_report(report: $crate::store::InboundReport, now: $crate::Timestamp) -> $crate::store::ReportOutcome;
            write reap_expired_leases(now: $crate::Timestamp) -> $crate::store::ReapReport;
            read unknown_messages(limit: u32) -> Vec<$crate::domain::Message>;
            write resolve_unknown(id: $crate::MessageId, resolution: $crate::store::Resolution, now: $crate::Timestamp) -> bool;
            write settle_stale_unknowns(older_than_ms: u64, now: $crate::Timestamp) -> Vec<$crate::MessageId>;
            write expire_parked_reports(older_than_ms: u64, now: $crate::Timestamp) -> u64;
            read queue_stats(tenant: Option<$crate::TenantId>, now: $crate::Timestamp) -> $crate::store::QueueStats;
            read parked_summary() -> Vec<$crate::store::ParkedSummary>;
            read recount(campaign: $crate::CampaignId) -> $crate::domain::StatusCounts;
            read ledger_recount(tenant: $crate::TenantId) -> $crate::store::LedgerRecount;
            read take_journal() -> Vec<$crate::store::JournalEntry>;
        }
    };
}

/// The message an enqueue stores for `planned`: queued, or skipped with its reason.
pub fn new_message(
    planned: &crate::domain::plan::PlannedMessage,
    tenant: TenantId,
    traffic_account: TrafficAccountId,
    now: Timestamp,
) -> Message {
    let (status, last_error) = match planned.skip {
        Some(reason) => (MessageStatus::Skipped, Some(skip_error(reason))),
        None => (MessageStatus::Queued, None),
    };
    Message {
        id: planned.id,
        tenant,
        traffic_account,
        destination: planned.destination.clone(),
        sender: planned.sender.clone(),
        body: planned.body.clone(),
        encoding: planned.encoding,
        segments: planned.segments,
        cost: planned.cost,
        status,
        attempts: 0,
        next_attempt_at: now,
        lease: None,
        provider_message_id: None,
        bulk_id: None,
        last_error,
        created_at: now,
        updated_at: now,
    }
}

/// The latest instant a store accepts: the last millisecond of the year 9999. A time
/// beyond it is a typo, and SQLite keeps times as signed 64-bit integers.
pub const LATEST: Timestamp = Timestamp(253_402_300_799_999);

/// Why a planned message is created skipped, as a message error.
pub fn skip_error(reason: SkipReason) -> MessageError {
    MessageError {
        code: reason.code().to_owned(),
        retryable: false,
        detail: format!("skipped: {}", reason.code().to_lowercase().replace('_', " ")),
    }
}

/// Hex SHA-256 of `text`; used for API keys and request fingerprints.
pub fn sha256_hex(text: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(text))
}
