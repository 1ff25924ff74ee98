//! The in-memory store: the simulator's store and the reference model of the store
//! semantics.
//!
//! One mutex guards the whole state, so every trait method is trivially one transaction.
//! All-or-nothing is kept by checking everything an operation can refuse *before* its
//! first write. Every message status change goes through [`State::move_message`], which
//! keeps the campaign counters, the tenant's credit columns, the journal and the indexes
//! in step with the message — the one place where a counter can change.
//!
//! Indexes keep the hot paths proportional to the work, not to the store: the claimable
//! queue holds only queued messages of sending campaigns, ordered by due time.

use super::rules::{self, not_found, ReapDecision, ReportPlan, SubmissionPlan};
use super::*;
use crate::domain::ledger::LedgerDelta;
use crate::domain::rate::{Rate, TokenBucket};
use crate::domain::records::{ContactFields, Encoding, Lease};
use crate::domain::status::TransitionCause;
use crate::ids::ContactId;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

pub use super::rules::MAX_IMPORT_ROWS;

/// The in-memory store.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock is a store bug; the state may be half-written,
        // so refusing to go on is the only safe answer.
        self.state.lock().expect("memory store poisoned by an earlier panic")
    }
}

/// A contact as this store keeps it. A simulated campaign holds a million of them, so the
/// attributes are a sorted boxed slice with shared names rather than a map: a `BTreeMap`
/// with one entry is a whole B-tree node, half a kilobyte.
#[derive(Clone, Debug)]
struct StoredContact {
    tenant: TenantId,
    phone: Box<str>,
    /// Sorted by name, names unique.
    attributes: Box<[(Arc<str>, Box<str>)]>,
    opted_out: bool,
}

impl StoredContact {
    fn to_contact(&self, id: ContactId) -> Contact {
        Contact {
            id,
            tenant: self.tenant,
            phone: self.phone.to_string(),
            attributes: self.attributes.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect(),
            opted_out: self.opted_out,
        }
    }

    /// Whether the contact holds exactly `attributes`.
    fn has_attributes(&self, attributes: &BTreeMap<String, String>) -> bool {
        self.attributes.len() == attributes.len()
            && self
                .attributes
                .iter()
                .zip(attributes)
                .all(|((name, value), (other_name, other_value))| **name == **other_name && **value == **other_value)
    }
}

/// A message as this store keeps it. A simulated campaign holds a million of them, so
/// what all of a campaign's messages share (tenant, account, sender, creation time) is
/// kept once in [`CampaignMessages`], strings carry no spare capacity, bodies (which
/// differ only by their placeholders) are shared, and the lease and the error, rarely
/// set, are boxed.
#[derive(Clone, Debug)]
struct StoredMessage {
    id: MessageId,
    destination: Box<str>,
    body: Arc<str>,
    encoding: Encoding,
    segments: u32,
    cost: Credits,
    status: MessageStatus,
    attempts: u32,
    next_attempt_at: Timestamp,
    lease: Option<Box<Lease>>,
    provider_message_id: Option<Box<str>>,
    bulk_id: Option<Arc<str>>,
    last_error: Option<Box<MessageError>>,
    updated_at: Timestamp,
}

impl StoredMessage {
    /// `message` as kept, its body taken from `bodies` where already there. Its tenant,
    /// account, sender and creation time are its campaign's ([`CampaignMessages`]).
    fn new(message: Message, bodies: &mut BTreeSet<Arc<str>>) -> StoredMessage {
        let body = match bodies.get(message.body.as_str()) {
            Some(known) => known.clone(),
            None => {
                let body: Arc<str> = message.body.into();
                bodies.insert(body.clone());
                body
            }
        };
        StoredMessage {
            id: message.id,
            destination: message.destination.into_boxed_str(),
            body,
            encoding: message.encoding,
            segments: message.segments,
            cost: message.cost,
            status: message.status,
            attempts: message.attempts,
            next_attempt_at: message.next_attempt_at,
            lease: message.lease.map(Box::new),
            provider_message_id: message.provider_message_id.map(String::into_boxed_str),
            bulk_id: message.bulk_id.map(Arc::from),
            last_error: message.last_error.map(Box::new),
            updated_at: message.updated_at,
        }
    }

    /// The message, with what it shares with the rest of `campaign`.
    fn to_message(&self, campaign: &CampaignMessages) -> Message {
        Message {
            id: self.id,
            tenant: campaign.tenant,
            traffic_account: campaign.traffic_account,
            destination: self.destination.to_string(),
            sender: campaign.sender.to_string(),
            body: self.body.to_string(),
            encoding: self.encoding,
            segments: self.segments,
            cost: self.cost,
            status: self.status,
            attempts: self.attempts,
            next_attempt_at: self.next_attempt_at,
            lease: self.lease.as_deref().cloned(),
            provider_message_id: self.provider_message_id.as_deref().map(str::to_owned),
            bulk_id: self.bulk_id.as_deref().map(str::to_owned),
            last_error: self.last_error.as_deref().cloned(),
            created_at: campaign.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A stored contact with its id, as planning reads it.
struct ContactRef<'a> {
    id: ContactId,
    contact: &'a StoredContact,
}

impl ContactFields for ContactRef<'_> {
    fn id(&self) -> ContactId {
        self.id
    }

    fn tenant(&self) -> TenantId {
        self.contact.tenant
    }

    fn phone(&self) -> &str {
        &self.contact.phone
    }

    fn attribute(&self, name: &str) -> Option<&str> {
        let attributes = &self.contact.attributes;
        attributes.binary_search_by(|(known, _)| (**known).cmp(name)).ok().map(|index| &*attributes[index].1)
    }

    fn opted_out(&self) -> bool {
        self.contact.opted_out
    }
}

/// The contacts, by id. Ids are handed out in order from 1 and contacts are never
/// removed, so a vector indexed by id holds them with no per-entry overhead (a B-tree
/// filled in key order is left half full: twice the room, for a million contacts).
#[derive(Default)]
struct Contacts {
    rows: Vec<StoredContact>,
}

impl Contacts {
    fn index(id: ContactId) -> Option<usize> {
        usize::try_from(id.0).ok()?.checked_sub(1)
    }

    fn get(&self, id: &ContactId) -> Option<&StoredContact> {
        self.rows.get(Self::index(*id)?)
    }

    fn get_mut(&mut self, id: &ContactId) -> Option<&mut StoredContact> {
        self.rows.get_mut(Self::index(*id)?)
    }

    /// Adds the contact of the next id, returning it.
    fn push(&mut self, contact: StoredContact) -> ContactId {
        self.rows.push(contact);
        ContactId(self.rows.len() as u64)
    }

    fn iter(&self) -> impl Iterator<Item = (ContactId, &StoredContact)> {
        self.rows.iter().enumerate().map(|(index, contact)| (ContactId(index as u64 + 1), contact))
    }
}

/// The messages, per campaign, in contact order. A campaign's messages are all created
/// at its enqueue and never removed, so each campaign's are one slice sorted by contact,
/// allocated once at its exact size and searched by halving: no per-entry overhead,
/// and no second copy of the batch while it is built (`BTreeMap::from_iter` collects
/// and sorts one).
#[derive(Default)]
struct Messages {
    campaigns: BTreeMap<CampaignId, CampaignMessages>,
}

/// One campaign's messages, and what they all share: they are created together, at its
/// enqueue, for its tenant, through its account, from one sender.
#[derive(Clone, Debug)]
struct CampaignMessages {
    tenant: TenantId,
    traffic_account: TrafficAccountId,
    sender: Arc<str>,
    created_at: Timestamp,
    /// Sorted by contact.
    rows: Box<[StoredMessage]>,
}

impl CampaignMessages {
    fn position(&self, id: &MessageId) -> Option<usize> {
        self.rows.binary_search_by_key(&id.contact, |message| message.id.contact).ok()
    }
}

impl Messages {
    fn get(&self, id: &MessageId) -> Option<&StoredMessage> {
        let campaign = self.campaigns.get(&id.campaign)?;
        Some(&campaign.rows[campaign.position(id)?])
    }

    fn get_mut(&mut self, id: &MessageId) -> Option<&mut StoredMessage> {
        let campaign = self.campaigns.get_mut(&id.campaign)?;
        let position = campaign.position(id)?;
        Some(&mut campaign.rows[position])
    }

    fn contains_key(&self, id: &MessageId) -> bool {
        self.get(id).is_some()
    }

    /// The whole message `id`.
    fn message(&self, id: &MessageId) -> Option<Message> {
        let campaign = self.campaigns.get(&id.campaign)?;
        Some(campaign.rows[campaign.position(id)?].to_message(campaign))
    }

    /// The tenant and account of message `id` (its campaign's).
    fn owner(&self, id: &MessageId) -> (TenantId, TrafficAccountId) {
        let campaign = self.campaigns.get(&id.campaign).unwrap_or_else(|| panic!("store bug: {id} has no campaign"));
        (campaign.tenant, campaign.traffic_account)
    }

    /// The campaign's messages, in contact order.
    fn campaign(&self, campaign: CampaignId) -> &[StoredMessage] {
        self.campaigns.get(&campaign).map_or(&[], |messages| &messages.rows)
    }

    /// Adds a campaign's messages, all of them at once.
    fn insert_campaign(&mut self, campaign: CampaignId, messages: CampaignMessages) {
        assert!(
            messages.rows.iter().all(|message| message.id.campaign == campaign)
                && messages.rows.windows(2).all(|pair| pair[0].id.contact < pair[1].id.contact),
            "store bug: {campaign}'s messages are not its own in contact order"
        );
        let previous = self.campaigns.insert(campaign, messages);
        assert!(previous.is_none(), "store bug: messages of {campaign} created twice");
    }
}

impl std::ops::Index<&MessageId> for Messages {
    type Output = StoredMessage;

    fn index(&self, id: &MessageId) -> &StoredMessage {
        self.get(id).unwrap_or_else(|| panic!("store bug: {id} is indexed but missing"))
    }
}

impl std::ops::Index<&ContactId> for Contacts {
    type Output = StoredContact;

    fn index(&self, id: &ContactId) -> &StoredContact {
        self.get(id).unwrap_or_else(|| panic!("store bug: {id} is indexed but missing"))
    }
}

/// A report kept until the message it names is known.
#[derive(Clone, Debug)]
struct ParkedReport {
    report: InboundReport,
    received_at: Timestamp,
}

/// Whose rate-limit bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum BucketKey {
    Account(TrafficAccountId),
    Tenant(TenantId),
}

#[derive(Default)]
struct State {
    tenants: BTreeMap<TenantId, Tenant>,
    accounts: BTreeMap<TrafficAccountId, TrafficAccount>,
    contacts: Contacts,
    contact_by_phone: BTreeMap<(TenantId, Box<str>), ContactId>,
    /// Attribute names, each held once however many contacts carry it.
    attribute_names: BTreeSet<Arc<str>>,
    campaigns: BTreeMap<CampaignId, Campaign>,
    messages: Messages,
    /// Messages by (account, provider id): one entry per accepted message, so the id is
    /// boxed without spare capacity.
    by_provider_id: BTreeMap<(TrafficAccountId, Box<str>), MessageId>,
    /// Queued messages of sending campaigns, per account, by (due time, id).
    ready: BTreeMap<TrafficAccountId, BTreeSet<(Timestamp, MessageId)>>,
    /// Submitting messages by (lease expiry, id).
    leases: BTreeSet<(Timestamp, MessageId)>,
    /// Submitting messages by fencing token.
    by_token: BTreeMap<u64, BTreeSet<MessageId>>,
    /// Unknown messages by (time they became unknown, id).
    unknowns: BTreeSet<(Timestamp, MessageId)>,
    /// Parked reports in arrival order.
    parked: BTreeMap<u64, ParkedReport>,
    parked_by_provider_id: BTreeMap<(TrafficAccountId, Box<str>), BTreeSet<u64>>,
    buckets: BTreeMap<BucketKey, TokenBucket>,
    idempotency: BTreeMap<(TenantId, String), (String, EnqueueReceipt)>,
    journal: Vec<JournalEntry>,
    /// The bulk id last recorded: a bulk request's messages share it.
    last_bulk_id: Option<Arc<str>>,
    next_seq: u64,
    next_token: u64,
    next_parked: u64,
    /// Parked reports removed unmatched after the retention.
    parked_expired: u64,
    next_tenant: u64,
    next_account: u64,
    next_campaign: u64,
}

impl State {
    // --- lookups ------------------------------------------------------------------------

    fn tenant(&self, id: TenantId) -> StoreResult<&Tenant> {
        self.tenants.get(&id).ok_or_else(|| not_found("tenant", id))
    }

    fn account(&self, id: TrafficAccountId) -> StoreResult<&TrafficAccount> {
        self.accounts.get(&id).ok_or_else(|| not_found("traffic account", id))
    }

    fn campaign_of(&self, tenant: TenantId, id: CampaignId) -> StoreResult<&Campaign> {
        self.campaigns.get(&id).filter(|campaign| campaign.tenant == tenant).ok_or_else(|| not_found("campaign", id))
    }

    fn campaign_mut(&mut self, id: CampaignId) -> &mut Campaign {
        self.campaigns.get_mut(&id).expect("message refers to a missing campaign")
    }

    fn tenant_contacts(&self, tenant: TenantId) -> Vec<Contact> {
        self.tenant_audience(tenant).iter().map(|found| found.contact.to_contact(found.id)).collect()
    }

    /// The tenant's contacts as planning reads them, without copying them.
    fn tenant_audience(&self, tenant: TenantId) -> Vec<ContactRef<'_>> {
        self.contacts
            .iter()
            .filter(|(_, contact)| contact.tenant == tenant)
            .map(|(id, contact)| ContactRef { id, contact })
            .collect()
    }

    /// `attributes` as a contact keeps them, names shared through the store's name set.
    fn compact_attributes(&mut self, attributes: BTreeMap<String, String>) -> Box<[(Arc<str>, Box<str>)]> {
        attributes
            .into_iter()
            .map(|(name, value)| {
                let name = match self.attribute_names.get(name.as_str()) {
                    Some(known) => known.clone(),
                    None => {
                        let name: Arc<str> = name.into();
                        self.attribute_names.insert(name.clone());
                        name
                    }
                };
                (name, value.into_boxed_str())
            })
            .collect()
    }

    fn campaign_messages(&self, campaign: CampaignId) -> impl Iterator<Item = &StoredMessage> {
        self.messages.campaign(campaign).iter()
    }

    // --- journal ------------------------------------------------------------------------

    fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    fn journal_campaign(&mut self, campaign: CampaignId, from: CampaignStatus, to: CampaignStatus, at: Timestamp) {
        let seq = self.next_seq();
        self.journal.push(JournalEntry::Campaign { seq, at, campaign, from, to });
    }

    // --- validation ---------------------------------------------------------------------

    fn check_new_campaign(&self, tenant: TenantId, new: &NewCampaign) -> StoreResult<()> {
        rules::check_new_campaign(
            tenant,
            new,
            |id| self.account(id).cloned(),
            |id| Ok(self.contacts.get(&id).map(|contact| contact.tenant)),
        )
    }

    // --- the one place a message changes status --------------------------------------------

    /// Moves message `id` to `to`, keeping counters, ledger, journal and indexes in step.
    /// `error` replaces the message's last error when given. Refuses illegal moves with a
    /// panic: every caller has checked the status it starts from, so an illegal move here
    /// is a store bug.
    fn move_message(
        &mut self,
        id: MessageId,
        to: MessageStatus,
        cause: TransitionCause,
        error: Option<MessageError>,
        now: Timestamp,
    ) {
        let message = self.messages.get_mut(&id).expect("move of a missing message");
        let from = message.status;
        let change = rules::move_message(id, from, to, cause, message.cost, message.last_error.as_deref(), error);
        if let Some(error) = change.error {
            message.last_error = Some(Box::new(error));
        }
        let previous_change = message.updated_at;
        message.status = to;
        message.updated_at = now;
        let (due, lease) = (message.next_attempt_at, message.lease.take());
        let (tenant, account) = self.messages.owner(&id);
        if let Some(lease) = lease {
            self.leases.remove(&(lease.expires_at, id));
            if let Some(held) = self.by_token.get_mut(&lease.token) {
                held.remove(&id);
                if held.is_empty() {
                    self.by_token.remove(&lease.token);
                }
            }
        }
        match from {
            MessageStatus::Queued => {
                if let Some(ready) = self.ready.get_mut(&account) {
                    ready.remove(&(due, id));
                }
            }
            MessageStatus::Unknown => {
                // A message's `updated_at` only changes with its status, so it still says
                // when the message became unknown.
                self.unknowns.remove(&(previous_change, id));
            }
            _ => {}
        }
        match to {
            MessageStatus::Unknown => {
                self.unknowns.insert((now, id));
            }
            MessageStatus::Queued => self.index_if_claimable(id),
            _ => {}
        }
        self.apply_ledger(tenant, change.ledger);
        self.campaign_mut(id.campaign).counts.shift(from, to);
        let seq = self.next_seq();
        self.journal.push(JournalEntry::Message { seq, at: now, message: id, from: Some(from), to, cause });
    }

    fn apply_ledger(&mut self, tenant: TenantId, delta: LedgerDelta) {
        if delta == LedgerDelta::NONE {
            return;
        }
        let books = self.tenants.get_mut(&tenant).expect("message of a missing tenant");
        books.balance += delta.balance;
        books.reserved += delta.reserved;
        books.charged += delta.charged;
        // SQLite keeps this with a CHECK constraint; here nothing else would.
        assert!(rules::books_hold(books), "ledger broken for {tenant}: {books:?}");
    }

    /// Puts a queued message in the claimable index if its campaign is sending.
    fn index_if_claimable(&mut self, id: MessageId) {
        let message = &self.messages[&id];
        if message.status == MessageStatus::Queued && self.campaigns[&id.campaign].status == CampaignStatus::Sending {
            let due = message.next_attempt_at;
            let (_, account) = self.messages.owner(&id);
            self.ready.entry(account).or_default().insert((due, id));
        }
    }

    fn set_campaign_status(&mut self, id: CampaignId, to: CampaignStatus, now: Timestamp) {
        let campaign = self.campaign_mut(id);
        let from = campaign.status;
        (campaign.status, campaign.completed_at) = rules::campaign_move(campaign, to, now);
        self.journal_campaign(id, from, to, now);
        // Claimability of the campaign's queued messages follows its status.
        let queued: Vec<MessageId> = self
            .campaign_messages(id)
            .filter(|message| message.status == MessageStatus::Queued)
            .map(|message| message.id)
            .collect();
        for message in queued {
            if to == CampaignStatus::Sending {
                self.index_if_claimable(message);
            } else {
                let (account, due) = (self.messages.owner(&message).1, self.messages[&message].next_attempt_at);
                if let Some(ready) = self.ready.get_mut(&account) {
                    ready.remove(&(due, message));
                }
            }
        }
    }

    /// The completion rule: a sending campaign with nothing pending is completed.
    fn complete_if_settled(&mut self, campaigns: impl IntoIterator<Item = CampaignId>, now: Timestamp) {
        let affected: BTreeSet<CampaignId> = campaigns.into_iter().collect();
        for id in affected {
            let campaign = &self.campaigns[&id];
            if rules::completes(campaign.status, &campaign.counts) {
                self.set_campaign_status(id, CampaignStatus::Completed, now);
            }
        }
    }

    fn set_lease(&mut self, id: MessageId, lease: Lease) {
        self.leases.insert((lease.expires_at, id));
        self.by_token.entry(lease.token).or_default().insert(id);
        self.messages.get_mut(&id).expect("lease on a missing message").lease = Some(Box::new(lease));
    }

    // --- acceptance and reports ------------------------------------------------------------

    /// Records that the provider accepted `id` (from `submitting` or `unknown`) and applies
    /// the reports parked for it. Returns the number of parked reports consumed.
    fn accept(&mut self, id: MessageId, provider_message_id: String, bulk_id: Option<String>, now: Timestamp) -> u32 {
        self.move_message(id, MessageStatus::Accepted, TransitionCause::Engine, None, now);
        let bulk_id = bulk_id.map(|bulk_id| match &self.last_bulk_id {
            Some(last) if **last == *bulk_id => last.clone(),
            _ => self.last_bulk_id.insert(bulk_id.into()).clone(),
        });
        let message = self.messages.get_mut(&id).expect("accepted a missing message");
        message.provider_message_id = Some(provider_message_id.as_str().into());
        message.bulk_id = bulk_id;
        let key = (self.messages.owner(&id).1, provider_message_id.into_boxed_str());
        self.by_provider_id.insert(key.clone(), id);
        let parked = self.parked_by_provider_id.remove(&key).unwrap_or_default();
        let mut consumed = 0;
        for number in parked {
            let ParkedReport { report, .. } = self.parked.remove(&number).expect("parked index out of step");
            self.apply_report_to(id, &report, now);
            consumed += 1;
        }
        consumed
    }

    fn park(&mut self, report: InboundReport, now: Timestamp) -> ReportOutcome {
        self.next_parked += 1;
        let number = self.next_parked;
        self.parked_by_provider_id
            .entry((report.traffic_account, report.provider_message_id.as_str().into()))
            .or_default()
            .insert(number);
        self.parked.insert(number, ParkedReport { report, received_at: now });
        ReportOutcome::Parked
    }

    /// Applies `report` to message `id` by [`rules::report_plan`]. A decision to park is
    /// returned as `Parked` without parking (the caller decides).
    fn apply_report_to(&mut self, id: MessageId, report: &InboundReport, now: Timestamp) -> ReportOutcome {
        let message = &self.messages[&id];
        match rules::report_plan(id, message.status, message.provider_message_id.is_some(), report) {
            ReportPlan::Apply { moves, assign_provider_id, outcome } => {
                for (step, error) in moves {
                    self.move_message(id, step, TransitionCause::Engine, error, now);
                }
                if assign_provider_id {
                    let message = self.messages.get_mut(&id).expect("report on a missing message");
                    message.provider_message_id = Some(report.provider_message_id.as_str().into());
                    let key: (TrafficAccountId, Box<str>) =
                        (self.messages.owner(&id).1, report.provider_message_id.as_str().into());
                    self.by_provider_id.insert(key.clone(), id);
                    // The message learned its provider id from this report: the reports
                    // parked under that id while its submission was unrecorded are its too.
                    for number in self.parked_by_provider_id.remove(&key).unwrap_or_default() {
                        let ParkedReport { report, .. } =
                            self.parked.remove(&number).expect("parked index out of step");
                        self.apply_report_to(id, &report, now);
                    }
                }
                outcome
            }
            ReportPlan::Ignore(outcome) => outcome,
            ReportPlan::Park => ReportOutcome::Parked,
        }
    }

    // --- rate limits ------------------------------------------------------------------------

    fn bucket(&self, key: BucketKey, rate: Rate, now: Timestamp) -> TokenBucket {
        rules::bucket_now(self.buckets.get(&key).copied(), rate, now)
    }
}

impl Store for MemoryStore {
    fn create_tenant(&self, new: NewTenant, _now: Timestamp) -> StoreResult<Tenant> {
        new.check()?;
        let mut state = self.lock();
        state.next_tenant += 1;
        let tenant = Tenant {
            id: TenantId(state.next_tenant),
            name: new.name,
            api_key_hash: new.api_key_hash,
            balance: new.credits,
            reserved: Credits::ZERO,
            charged: Credits::ZERO,
            funded: new.credits,
            rate_limit_per_s: new.rate_limit_per_s,
        };
        state.tenants.insert(tenant.id, tenant.clone());
        Ok(tenant)
    }

    fn tenant(&self, id: TenantId) -> StoreResult<Tenant> {
        self.lock().tenant(id).cloned()
    }

    fn tenant_by_api_key_hash(&self, api_key_hash: &str) -> StoreResult<Option<Tenant>> {
        Ok(self.lock().tenants.values().find(|tenant| tenant.api_key_hash == api_key_hash).cloned())
    }

    fn tenants(&self) -> StoreResult<Vec<Tenant>> {
        Ok(self.lock().tenants.values().cloned().collect())
    }

    fn change_credits(&self, tenant: TenantId, change: CreditChange, _now: Timestamp) -> StoreResult<Tenant> {
        let mut state = self.lock();
        let delta = rules::credit_change(state.tenant(tenant)?, change)?;
        let books = state.tenants.get_mut(&tenant).expect("checked above");
        books.balance += delta;
        books.funded += delta;
        Ok(books.clone())
    }

    fn create_traffic_account(&self, new: NewTrafficAccount) -> StoreResult<TrafficAccount> {
        new.check()?;
        let mut state = self.lock();
        if let Some(owner) = new.owner {
            state.tenant(owner)?;
        }
        state.next_account += 1;
        let account = TrafficAccount {
            id: TrafficAccountId(state.next_account),
            owner: new.owner,
            name: new.name,
            provider: new.provider,
            base_url: new.base_url,
            credentials: new.credentials,
            sender: new.sender,
            rate_limit_per_s: new.rate_limit_per_s,
            price_per_segment: new.price_per_segment,
            idempotent_submissions: new.idempotent_submissions,
        };
        state.accounts.insert(account.id, account.clone());
        Ok(account)
    }

    fn traffic_account(&self, id: TrafficAccountId) -> StoreResult<TrafficAccount> {
        self.lock().account(id).cloned()
    }

    fn traffic_accounts(&self) -> StoreResult<Vec<TrafficAccount>> {
        Ok(self.lock().accounts.values().cloned().collect())
    }

    fn import_contacts(&self, tenant: TenantId, rows: Vec<NewContact>, _now: Timestamp) -> StoreResult<ImportReport> {
        let mut state = self.lock();
        state.tenant(tenant)?;
        rules::import_contacts(rows, |phone, contact| {
            let phone = phone.into_boxed_str();
            let existing = state.contact_by_phone.get(&(tenant, phone.clone())).copied();
            let same = existing.map(|id| {
                let stored = &state.contacts[&id];
                stored.has_attributes(&contact.attributes) && stored.opted_out == contact.opted_out
            });
            let change = rules::contact_change(same);
            let id = match (change, existing) {
                (rules::ContactChange::Unchanged, _) => return Ok(change),
                (_, Some(id)) => id,
                (_, None) => {
                    let stored =
                        StoredContact { tenant, phone: phone.clone(), attributes: Box::new([]), opted_out: false };
                    let id = state.contacts.push(stored);
                    state.contact_by_phone.insert((tenant, phone), id);
                    id
                }
            };
            let attributes = state.compact_attributes(contact.attributes);
            let stored = state.contacts.get_mut(&id).expect("phone index out of step");
            stored.attributes = attributes;
            stored.opted_out = contact.opted_out;
            Ok(change)
        })
    }

    fn contacts(&self, tenant: TenantId) -> StoreResult<Vec<Contact>> {
        let state = self.lock();
        state.tenant(tenant)?;
        Ok(state.tenant_contacts(tenant))
    }

    fn create_campaign(&self, tenant: TenantId, new: NewCampaign, now: Timestamp) -> StoreResult<Campaign> {
        let mut state = self.lock();
        state.tenant(tenant)?;
        state.check_new_campaign(tenant, &new)?;
        state.next_campaign += 1;
        let campaign = Campaign {
            id: CampaignId(state.next_campaign),
            tenant,
            name: new.name,
            body_template: new.body_template,
            sender: new.sender,
            audience: new.audience,
            traffic_account: new.traffic_account,
            status: CampaignStatus::Draft,
            pause_reason: None,
            schedule_at: new.schedule_at,
            counts: StatusCounts::default(),
            created_at: now,
            enqueued_at: None,
            completed_at: None,
        };
        state.campaigns.insert(campaign.id, campaign.clone());
        Ok(campaign)
    }

    fn update_campaign(
        &self,
        tenant: TenantId,
        id: CampaignId,
        patch: CampaignPatch,
        _now: Timestamp,
    ) -> StoreResult<Campaign> {
        let mut state = self.lock();
        let mut updated = state.campaign_of(tenant, id)?.clone();
        let new = rules::patched_campaign(&updated, patch)?;
        state.check_new_campaign(tenant, &new)?;
        rules::apply_patch(&mut updated, new);
        state.campaigns.insert(id, updated.clone());
        Ok(updated)
    }

    fn campaign(&self, tenant: TenantId, id: CampaignId) -> StoreResult<Campaign> {
        self.lock().campaign_of(tenant, id).cloned()
    }

    fn campaigns(&self, tenant: TenantId) -> StoreResult<Vec<Campaign>> {
        let state = self.lock();
        state.tenant(tenant)?;
        Ok(state.campaigns.values().filter(|campaign| campaign.tenant == tenant).cloned().collect())
    }

    fn all_campaigns(&self) -> StoreResult<Vec<Campaign>> {
        Ok(self.lock().campaigns.values().cloned().collect())
    }

    fn preview(&self, tenant: TenantId, id: CampaignId) -> StoreResult<Preview> {
        let state = self.lock();
        let campaign = state.campaign_of(tenant, id)?;
        let account = state.account(campaign.traffic_account)?;
        let available = state.tenant(tenant)?.available();
        rules::preview(campaign, account, &state.tenant_audience(tenant), available)
    }

    fn enqueue(
        &self,
        tenant: TenantId,
        id: CampaignId,
        key: Option<IdempotencyKey>,
        now: Timestamp,
    ) -> StoreResult<EnqueueReceipt> {
        let mut state = self.lock();
        let campaign = state.campaign_of(tenant, id)?.clone();
        if let Some(key) = &key {
            let stored = state.idempotency.get(&(tenant, key.key.clone()));
            if let Some(receipt) = rules::replay(stored.map(|(hash, receipt)| (hash.as_str(), receipt)), key)? {
                return Ok(receipt);
            }
        }
        let target = rules::enqueue_target(&campaign, now)?;
        let account = state.account(campaign.traffic_account)?.clone();
        let available = state.tenant(tenant)?.available();
        // The messages are built a page of contacts at a time, as the SQL stores do: the
        // rows kept are all this store holds of the campaign, with no plan beside them.
        let sender: Arc<str> = campaign.sender.clone().unwrap_or_else(|| account.sender.clone()).into();
        let mut tally = Preview::empty(available);
        let mut bodies = BTreeSet::new();
        let contacts = state.tenant_audience(tenant);
        // Room for every contact's message made once (the audience may be fewer), not by
        // doubling a million-row vector, which holds the old and the new buffer at once.
        let mut created = Vec::with_capacity(contacts.len());
        for page in contacts.chunks(rules::CONTACT_PAGE as usize) {
            for message in rules::enqueue_page(&campaign, &account, page, &mut tally, now)? {
                assert!(*message.sender == *sender, "store bug: one campaign's messages from two senders");
                created.push(StoredMessage::new(message, &mut bodies));
            }
        }
        let plan = rules::enqueue_plan(&campaign, target, &tally, available)?;
        // Everything that could refuse has been checked: write.
        assert!(state.campaign_messages(id).next().is_none(), "store bug: messages of {id} created twice");
        // One journal entry per message: room made once, not by doubling a million-entry
        // vector (which holds the old and the new buffer at once).
        state.journal.reserve(created.len());
        for message in &created {
            let seq = state.next_seq();
            state.journal.push(JournalEntry::created(seq, now, message.id, message.status));
        }
        let messages = CampaignMessages {
            tenant,
            traffic_account: account.id,
            sender,
            created_at: now,
            rows: created.into_boxed_slice(),
        };
        state.messages.insert_campaign(id, messages);
        state.tenants.get_mut(&tenant).expect("checked above").reserved += plan.reserve;
        {
            let stored = state.campaign_mut(id);
            stored.counts = plan.counts;
            stored.enqueued_at = Some(now);
        }
        for status in plan.statuses {
            state.set_campaign_status(id, status, now);
        }
        if let Some(key) = key {
            state.idempotency.insert((tenant, key.key), (key.request_hash, plan.receipt.clone()));
        }
        Ok(plan.receipt)
    }

    fn start_due_campaigns(&self, now: Timestamp) -> StoreResult<Vec<CampaignId>> {
        let mut state = self.lock();
        let due: Vec<CampaignId> = state
            .campaigns
            .values()
            .filter(|campaign| {
                campaign.status == CampaignStatus::Scheduled && campaign.schedule_at.is_none_or(|at| at <= now)
            })
            .map(|campaign| campaign.id)
            .collect();
        for &id in &due {
            state.set_campaign_status(id, CampaignStatus::Sending, now);
        }
        state.complete_if_settled(due.iter().copied(), now);
        Ok(due)
    }

    fn pause(&self, tenant: TenantId, id: CampaignId, reason: PauseReason, now: Timestamp) -> StoreResult<Campaign> {
        let mut state = self.lock();
        rules::pause_check(state.campaign_of(tenant, id)?)?;
        state.set_campaign_status(id, CampaignStatus::Paused, now);
        state.campaign_mut(id).pause_reason = Some(reason);
        Ok(state.campaigns[&id].clone())
    }

    fn resume(&self, tenant: TenantId, id: CampaignId, now: Timestamp) -> StoreResult<Campaign> {
        let mut state = self.lock();
        let plan = rules::resume_plan(state.campaign_of(tenant, id)?)?;
        state.set_campaign_status(id, CampaignStatus::Sending, now);
        state.campaign_mut(id).pause_reason = None;
        if plan.requeue_in_flight {
            let in_flight: Vec<MessageId> =
                state.campaign_messages(id).filter(|m| m.status == MessageStatus::Submitting).map(|m| m.id).collect();
            for message in in_flight {
                state.move_message(message, MessageStatus::Queued, TransitionCause::Engine, None, now);
            }
        }
        state.complete_if_settled([id], now);
        Ok(state.campaigns[&id].clone())
    }

    fn cancel(&self, tenant: TenantId, id: CampaignId, now: Timestamp) -> StoreResult<Campaign> {
        let mut state = self.lock();
        rules::cancel_check(state.campaign_of(tenant, id)?)?;
        let queued: Vec<MessageId> = state
            .campaign_messages(id)
            .filter(|message| message.status == MessageStatus::Queued)
            .map(|message| message.id)
            .collect();
        for message in queued {
            state.move_message(message, MessageStatus::Cancelled, TransitionCause::Engine, None, now);
        }
        let status = rules::cancelled_status(&state.campaigns[&id]);
        state.set_campaign_status(id, status, now);
        state.campaign_mut(id).pause_reason = None;
        Ok(state.campaigns[&id].clone())
    }

    fn retry_failed(&self, tenant: TenantId, id: CampaignId, now: Timestamp) -> StoreResult<RetryReceipt> {
        let mut state = self.lock();
        rules::retry_failed_check(state.campaign_of(tenant, id)?)?;
        let retryable: Vec<(MessageId, Credits)> = state
            .campaign_messages(id)
            .filter(|message| {
                rules::is_retryable_failure(
                    message.status,
                    message.last_error.as_ref().map(|error| error.code.as_str()),
                )
            })
            .map(|message| (message.id, message.cost))
            .collect();
        let cost: Credits = retryable.iter().map(|(_, cost)| *cost).sum();
        rules::check_affordable(cost, state.tenant(tenant)?.available())?;
        for &(message, _) in &retryable {
            {
                let stored = state.messages.get_mut(&message).expect("listed above");
                stored.attempts = 0;
                stored.next_attempt_at = now;
            }
            state.move_message(message, MessageStatus::Queued, TransitionCause::OperatorRetry, None, now);
        }
        Ok(RetryReceipt { requeued: retryable.len() as u32, reserved: cost })
    }

    fn failures_by_code(&self, tenant: TenantId, id: CampaignId) -> StoreResult<BTreeMap<String, u32>> {
        let state = self.lock();
        state.campaign_of(tenant, id)?;
        let mut failures = BTreeMap::new();
        for message in state.campaign_messages(id).filter(|message| message.status == MessageStatus::Failed) {
            let code = message.last_error.as_ref().map_or("UNKNOWN", |error| error.code.as_str());
            *failures.entry(code.to_owned()).or_insert(0) += 1;
        }
        Ok(failures)
    }

    fn messages(&self, campaign: CampaignId) -> StoreResult<Vec<Message>> {
        let state = self.lock();
        if !state.campaigns.contains_key(&campaign) {
            return Err(not_found("campaign", campaign));
        }
        let Some(messages) = state.messages.campaigns.get(&campaign) else { return Ok(Vec::new()) };
        Ok(messages.rows.iter().map(|message| message.to_message(messages)).collect())
    }

    fn visit_messages(&self, campaign: CampaignId, visit: &mut dyn FnMut(&Message)) -> StoreResult<()> {
        let state = self.lock();
        if !state.campaigns.contains_key(&campaign) {
            return Err(not_found("campaign", campaign));
        }
        if let Some(messages) = state.messages.campaigns.get(&campaign) {
            messages.rows.iter().for_each(|message| visit(&message.to_message(messages)));
        }
        Ok(())
    }

    fn message(&self, id: MessageId) -> StoreResult<Message> {
        self.lock().messages.message(&id).ok_or_else(|| not_found("message", id))
    }

    fn claim(&self, request: ClaimRequest, now: Timestamp) -> StoreResult<ClaimOutcome> {
        // Checked before anything moves: this store has no rollback.
        rules::lease_expiry(request.lease_ms, now)?;
        let mut state = self.lock();
        let first_due = |ready: &BTreeSet<(Timestamp, MessageId)>| ready.iter().next().map(|(due, _)| *due);
        // The oldest queued message: of the account asked for, or of any account.
        let oldest = match request.traffic_account {
            Some(account) => state.ready.get(&account).and_then(first_due).map(|due| (due, account)),
            None => state
                .ready
                .iter()
                .filter_map(|(account, ready)| ready.iter().next().map(|&(due, id)| (due, id, *account)))
                .min()
                .map(|(due, _, account)| (due, account)),
        };
        let account_id = match rules::claim_account(oldest, now) {
            Ok(account) => account,
            Err(idle) => return Ok(ClaimOutcome::Idle(idle)),
        };
        let account = state.account(account_id)?.clone();
        let account_rate = account.rate_limit_per_s.map(|per_s| Rate::new(per_s, request.burst));
        let account_bucket = account_rate.map(|rate| (rate, state.bucket(BucketKey::Account(account_id), rate, now)));
        let mut walk = rules::RateWalk::new(request.max_messages, account_bucket, request.burst);
        let empty = BTreeSet::new();
        let ready = state.ready.get(&account_id).unwrap_or(&empty);
        for &(_, id) in ready.range(..=(now, MessageId::new(CampaignId(u64::MAX), ContactId(u64::MAX)))) {
            if !walk.wants_more() {
                break;
            }
            let (tenant, _) = state.messages.owner(&id);
            let rate = state.tenants[&tenant].rate_limit_per_s;
            walk.offer(id, tenant, rate, now, |rate| Ok(state.bucket(BucketKey::Tenant(tenant), rate, now)))?;
        }
        // Save the buckets as they stand after this claim, whether or not it took anything.
        if let Some((_, bucket)) = walk.account_bucket {
            state.buckets.insert(BucketKey::Account(account_id), bucket);
        }
        for (tenant, (_, bucket)) in &walk.tenant_buckets {
            state.buckets.insert(BucketKey::Tenant(*tenant), *bucket);
        }
        if walk.taken.is_empty() {
            return Ok(ClaimOutcome::Idle(walk.idle(now)));
        }
        state.next_token += 1;
        let lease = rules::claim_lease(&request, state.next_token, now)?;
        let mut messages = Vec::with_capacity(walk.taken.len());
        for id in walk.taken {
            state.move_message(id, MessageStatus::Submitting, TransitionCause::Engine, None, now);
            state.messages.get_mut(&id).expect("claimed").attempts += 1;
            state.set_lease(id, lease.clone());
            messages.push(state.messages.message(&id).expect("claimed"));
        }
        Ok(ClaimOutcome::Claimed(Claim {
            token: lease.token,
            traffic_account: account_id,
            expires_at: lease.expires_at,
            messages,
        }))
    }

    fn renew_lease(&self, token: u64, lease_ms: u64, now: Timestamp) -> StoreResult<u32> {
        let expires_at = rules::lease_expiry(lease_ms, now)?;
        let mut state = self.lock();
        let held: Vec<MessageId> =
            state.by_token.get(&token).map(|held| held.iter().copied().collect()).unwrap_or_default();
        for &id in &held {
            let old = *state.messages[&id].lease.clone().expect("indexed by token, so leased");
            state.leases.remove(&(old.expires_at, id));
            state.set_lease(id, Lease { expires_at, ..old });
        }
        Ok(held.len() as u32)
    }

    fn record_submissions(
        &self,
        token: u64,
        results: Vec<(MessageId, SubmissionResult)>,
        now: Timestamp,
    ) -> StoreResult<Vec<RecordOutcome>> {
        rules::check_submission_times(&results)?;
        let mut state = self.lock();
        if let Some((missing, _)) = results.iter().find(|(id, _)| !state.messages.contains_key(id)) {
            return Err(not_found("message", missing));
        }
        let mut outcomes = Vec::with_capacity(results.len());
        let mut affected = BTreeSet::new();
        for (id, result) in results {
            let message = &state.messages[&id];
            let lease_token = message.lease.as_ref().map(|lease| lease.token);
            let parked_reports_applied = match rules::record_submission(message.status, lease_token, token, result) {
                SubmissionPlan::Fenced => {
                    outcomes.push(RecordOutcome::Fenced { status: message.status });
                    continue;
                }
                SubmissionPlan::Accept { provider_message_id, bulk_id } => {
                    state.accept(id, provider_message_id, bulk_id, now)
                }
                SubmissionPlan::Move { to, error, next_attempt_at } => {
                    if let Some(due) = next_attempt_at {
                        state.messages.get_mut(&id).expect("checked").next_attempt_at = due;
                    }
                    state.move_message(id, to, TransitionCause::Engine, Some(error), now);
                    0
                }
            };
            affected.insert(id.campaign);
            outcomes.push(RecordOutcome::Recorded { status: state.messages[&id].status, parked_reports_applied });
        }
        state.complete_if_settled(affected, now);
        Ok(outcomes)
    }

    fn apply_report(&self, report: InboundReport, now: Timestamp) -> StoreResult<ReportOutcome> {
        let mut state = self.lock();
        let by_provider =
            state.by_provider_id.get(&(report.traffic_account, report.provider_message_id.as_str().into())).copied();
        let by_reference = report
            .message_ref
            .filter(|id| state.messages.contains_key(id) && state.messages.owner(id).1 == report.traffic_account);
        let Some(id) = by_provider.or(by_reference) else {
            return Ok(state.park(report, now));
        };
        let before = state.messages[&id].status;
        let outcome = state.apply_report_to(id, &report, now);
        if outcome == ReportOutcome::Parked {
            return Ok(state.park(report, now));
        }
        let (tenant, cost) = (state.messages.owner(&id).0, state.messages[&id].cost);
        if let Some(delta) = rules::report_side_effect(&outcome, cost) {
            state.campaign_mut(id.campaign).counts.delivered += 1;
            let books = state.tenants.get_mut(&tenant).expect("message of a missing tenant");
            books.balance += delta.balance;
            books.charged += delta.charged;
        }
        if rules::report_may_complete(before) {
            state.complete_if_settled([id.campaign], now);
        }
        Ok(outcome)
    }

    fn reap_expired_leases(&self, now: Timestamp) -> StoreResult<ReapReport> {
        let mut state = self.lock();
        let mut expired: Vec<MessageId> =
            state.leases.iter().take_while(|(expires, _)| *expires <= now).map(|(_, id)| *id).collect();
        expired.sort();
        let mut report = ReapReport::default();
        for id in expired {
            let (_, account) = state.messages.owner(&id);
            match rules::reap(state.accounts[&account].idempotent_submissions) {
                ReapDecision::Requeue => {
                    state.messages.get_mut(&id).expect("leased").next_attempt_at = now;
                    state.move_message(id, MessageStatus::Queued, TransitionCause::Engine, None, now);
                    report.requeued.push(id);
                }
                ReapDecision::Unknown => {
                    state.move_message(id, MessageStatus::Unknown, TransitionCause::Engine, None, now);
                    report.unknown.push(id);
                }
            }
        }
        Ok(report)
    }

    fn unknown_messages(&self, limit: u32) -> StoreResult<Vec<Message>> {
        let state = self.lock();
        Ok(state
            .unknowns
            .iter()
            .take(limit as usize)
            .map(|(_, id)| state.messages.message(id).expect("indexed"))
            .collect())
    }

    fn resolve_unknown(&self, id: MessageId, resolution: Resolution, now: Timestamp) -> StoreResult<bool> {
        let mut state = self.lock();
        let status = state.messages.get(&id).ok_or_else(|| not_found("message", id))?.status;
        let Some(resolution) = rules::resolve_plan(status, resolution) else {
            return Ok(false);
        };
        match resolution {
            Resolution::Accepted { provider_message_id } => {
                state.accept(id, provider_message_id, None, now);
            }
            Resolution::NotAccepted { error } => {
                state.move_message(id, MessageStatus::Failed, TransitionCause::Engine, Some(error), now);
            }
        }
        state.complete_if_settled([id.campaign], now);
        Ok(true)
    }

    fn settle_stale_unknowns(&self, older_than_ms: u64, now: Timestamp) -> StoreResult<Vec<MessageId>> {
        let mut state = self.lock();
        let mut stale: Vec<MessageId> = match rules::stale_cutoff(older_than_ms, now) {
            Some(cutoff) => {
                state.unknowns.iter().take_while(|(since, _)| *since <= cutoff).map(|(_, id)| *id).collect()
            }
            None => Vec::new(),
        };
        stale.sort();
        for &id in &stale {
            let error = rules::unknown_outcome_error();
            state.move_message(id, MessageStatus::Failed, TransitionCause::Engine, Some(error), now);
        }
        state.complete_if_settled(stale.iter().map(|id| id.campaign), now);
        Ok(stale)
    }

    fn queue_stats(&self, tenant: Option<TenantId>, now: Timestamp) -> StoreResult<QueueStats> {
        let state = self.lock();
        if let Some(tenant) = tenant {
            state.tenant(tenant)?;
        }
        let mine = |owner: TenantId| tenant.is_none_or(|tenant| tenant == owner);
        let mut stats = QueueStats::default();
        for ready in state.ready.values() {
            for (due, id) in ready {
                if mine(state.messages.owner(id).0) {
                    stats.queued += 1;
                    if *due <= now {
                        stats.due += 1;
                    }
                }
            }
        }
        for (_, id) in &state.leases {
            if mine(state.messages.owner(id).0) {
                stats.submitting += 1;
            }
        }
        for (_, id) in &state.unknowns {
            if mine(state.messages.owner(id).0) {
                stats.unknown += 1;
            }
        }
        stats.parked_reports = state
            .parked
            .values()
            .filter(|parked| match tenant {
                None => true,
                Some(tenant) => state
                    .accounts
                    .get(&parked.report.traffic_account)
                    .is_some_and(|account| account.owner == Some(tenant)),
            })
            .count() as u32;
        stats.parked_reports_expired = tenant.is_none().then_some(state.parked_expired);
        Ok(stats)
    }

    fn parked_summary(&self) -> StoreResult<Vec<ParkedSummary>> {
        let state = self.lock();
        Ok(rules::summarize_parked(state.parked.values().map(|parked| (parked.report.clone(), parked.received_at))))
    }

    fn expire_parked_reports(&self, older_than_ms: u64, now: Timestamp) -> StoreResult<u64> {
        let mut state = self.lock();
        let cutoff = now.0.saturating_sub(older_than_ms);
        let expired: Vec<u64> = state
            .parked
            .iter()
            .filter(|(_, parked)| parked.received_at.0 <= cutoff)
            .map(|(number, _)| *number)
            .collect();
        for number in &expired {
            let ParkedReport { report, .. } = state.parked.remove(number).expect("listed just now");
            let key = (report.traffic_account, report.provider_message_id.as_str().into());
            if let Some(numbers) = state.parked_by_provider_id.get_mut(&key) {
                numbers.remove(number);
                if numbers.is_empty() {
                    state.parked_by_provider_id.remove(&key);
                }
            }
        }
        state.parked_expired += expired.len() as u64;
        Ok(expired.len() as u64)
    }

    fn recount(&self, campaign: CampaignId) -> StoreResult<StatusCounts> {
        let state = self.lock();
        if !state.campaigns.contains_key(&campaign) {
            return Err(not_found("campaign", campaign));
        }
        let mut counts = StatusCounts::default();
        for message in state.campaign_messages(campaign) {
            *counts.get_mut(message.status) += 1;
        }
        Ok(counts)
    }

    fn ledger_recount(&self, tenant: TenantId) -> StoreResult<LedgerRecount> {
        let state = self.lock();
        state.tenant(tenant)?;
        let mut recount = LedgerRecount::default();
        // The tenant is its campaigns' messages': only the tenant's campaigns are walked.
        let campaigns = state.messages.campaigns.values().filter(|campaign| campaign.tenant == tenant);
        for message in campaigns.flat_map(|campaign| campaign.rows.iter()) {
            let code = message.last_error.as_ref().map(|error| error.code.as_str());
            rules::recount_message(&mut recount, message.status, code, message.cost);
        }
        Ok(recount)
    }

    fn take_journal(&self) -> StoreResult<Vec<JournalEntry>> {
        Ok(std::mem::take(&mut self.lock().journal))
    }
}
