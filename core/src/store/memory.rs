//! The in-memory store: the simulator's store, a backend of the store engine
//! ([`super::engine`]) like SQLite and PostgreSQL.
//!
//! The engine sequences every step of the contract; this file provides its row operations
//! over plain collections ([`Backend`] for [`Tx`]), and the reads that are not a step
//! (listings, recounts, statistics). One mutex guards the whole state, so every call is
//! trivially one transaction ([`MemoryStore::transaction`]).
//!
//! A simulated campaign holds a million messages, so the rows are compact (shared
//! campaign fields, shared bodies, boxed rarely-set fields) and indexes keep the hot paths
//! proportional to the work, not to the store: the claimable queue holds only queued
//! messages of sending campaigns, ordered by due time. [`State::write_state`] is the one
//! place a stored message's status changes, and it moves the message between the indexes
//! with it.

use super::engine::{self, Backend, ContactRow, DueVisit};
use super::pending::Pending;
use super::rules::{self, not_found};
use super::*;
use crate::domain::ledger::LedgerDelta;
use crate::domain::rate::TokenBucket;
use crate::domain::records::{Encoding, Lease};
use crate::ids::ContactId;
use std::cell::{Cell, RefCell, RefMut};
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

    /// Runs `work` as one transaction of the store engine. What it writes stands at once,
    /// except what this store can undo: the journal entries and `meta` counters it took,
    /// and the rows of an enqueue, kept in the transaction until the enqueue is decided
    /// ([`Backend::write_enqueued`]). The engine refuses before its first other write (the
    /// contract at the head of [`rules`]); a refusal after one is a store bug, and stops
    /// the store rather than leave it half-written.
    fn transaction<T>(&self, work: impl FnOnce(&Tx<'_>) -> StoreResult<T>) -> StoreResult<T> {
        let mut state = self.lock();
        let (journal_before, meta_before) = (state.journal.len(), state.meta);
        let tx = Tx {
            state: RefCell::new(&mut state),
            pending: RefCell::default(),
            enqueue: RefCell::default(),
            wrote: Cell::new(false),
        };
        match work(&tx) {
            Ok(value) => {
                tx.write_pending()?;
                assert!(tx.enqueue.borrow().is_none(), "store bug: messages created for an enqueue never decided");
                Ok(value)
            }
            Err(error) => {
                assert!(!tx.wrote.get(), "store bug: a step refused after a write this store cannot undo: {error}");
                let state = tx.state.into_inner();
                state.journal.truncate(journal_before);
                state.meta = meta_before;
                Err(error)
            }
        }
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
    fn new(message: &Message, bodies: &mut BTreeSet<Arc<str>>) -> StoredMessage {
        let body = match bodies.get(message.body.as_str()) {
            Some(known) => known.clone(),
            None => {
                let body: Arc<str> = message.body.as_str().into();
                bodies.insert(body.clone());
                body
            }
        };
        StoredMessage {
            id: message.id,
            destination: message.destination.as_str().into(),
            body,
            encoding: message.encoding,
            segments: message.segments,
            cost: message.cost,
            status: message.status,
            attempts: message.attempts,
            next_attempt_at: message.next_attempt_at,
            lease: message.lease.clone().map(Box::new),
            provider_message_id: message.provider_message_id.as_deref().map(Box::from),
            bulk_id: message.bulk_id.as_deref().map(Arc::from),
            last_error: message.last_error.clone().map(Box::new),
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
        self.after(None)
    }

    /// The contacts with ids above `after` (all, without it), in id order, found by index:
    /// a page of an enqueue starts where the last ended without walking the ones before.
    fn after(&self, after: Option<ContactId>) -> impl Iterator<Item = (ContactId, &StoredContact)> {
        // Ids are handed out from 1: the contact after id `n` is at index `n`.
        let start = after.map_or(0, |id| usize::try_from(id.0).unwrap_or(usize::MAX)).min(self.rows.len());
        self.rows[start..].iter().zip(start as u64 + 1..).map(|(contact, id)| (ContactId(id), contact))
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

impl BucketKey {
    /// The bucket of `kind` (`account` or `tenant`, as the engine names them) `id`.
    fn of(kind: &str, id: u64) -> BucketKey {
        match kind {
            "account" => BucketKey::Account(TrafficAccountId(id)),
            "tenant" => BucketKey::Tenant(TenantId(id)),
            other => panic!("store bug: no rate-limit bucket of kind {other:?}"),
        }
    }
}

/// The counters the engine takes values of ([`Backend::take_meta`]), which the SQL stores
/// keep in their `meta` table.
#[derive(Clone, Copy, Debug, Default)]
struct Meta {
    journal_seq: u64,
    fencing_token: u64,
    provider_id_assigned: u64,
    parked_seq: u64,
    parked_expired: u64,
}

impl Meta {
    fn slot(&mut self, key: &str) -> &mut u64 {
        match key {
            "journal_seq" => &mut self.journal_seq,
            "fencing_token" => &mut self.fencing_token,
            "provider_id_assigned" => &mut self.provider_id_assigned,
            "parked_seq" => &mut self.parked_seq,
            engine::PARKED_EXPIRED => &mut self.parked_expired,
            other => panic!("store bug: no counter {other:?}"),
        }
    }
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
    /// boxed without spare capacity. The message given an id last holds it.
    by_provider_id: BTreeMap<(TrafficAccountId, Box<str>), MessageId>,
    /// Queued messages of sending campaigns, per account, by (due time, id).
    ready: BTreeMap<TrafficAccountId, BTreeSet<(Timestamp, MessageId)>>,
    /// Leased messages by (lease expiry, id).
    leases: BTreeSet<(Timestamp, MessageId)>,
    /// Leased messages by fencing token.
    by_token: BTreeMap<u64, BTreeSet<MessageId>>,
    /// Unknown messages by (time they became unknown, id).
    unknowns: BTreeSet<(Timestamp, MessageId)>,
    /// Parked reports by the number they were parked under: arrival order.
    parked: BTreeMap<u64, ParkedReport>,
    parked_by_provider_id: BTreeMap<(TrafficAccountId, Box<str>), BTreeSet<u64>>,
    buckets: BTreeMap<BucketKey, TokenBucket>,
    idempotency: BTreeMap<(TenantId, String), (String, EnqueueReceipt)>,
    journal: Vec<JournalEntry>,
    meta: Meta,
    /// The bulk id last recorded: a bulk request's messages share it.
    last_bulk_id: Option<Arc<str>>,
    next_tenant: u64,
    next_account: u64,
    next_campaign: u64,
}

impl State {
    fn tenant(&self, id: TenantId) -> StoreResult<&Tenant> {
        self.tenants.get(&id).ok_or_else(|| not_found("tenant", id))
    }

    fn account(&self, id: TrafficAccountId) -> StoreResult<&TrafficAccount> {
        self.accounts.get(&id).ok_or_else(|| not_found("traffic account", id))
    }

    fn campaign_of(&self, tenant: TenantId, id: CampaignId) -> StoreResult<&Campaign> {
        self.campaigns.get(&id).filter(|campaign| campaign.tenant == tenant).ok_or_else(|| not_found("campaign", id))
    }

    fn campaign_messages(&self, campaign: CampaignId) -> impl Iterator<Item = &StoredMessage> {
        self.messages.campaign(campaign).iter()
    }

    /// The whole messages `ids` name, each of which exists.
    fn messages_named(&self, ids: impl IntoIterator<Item = MessageId>) -> Vec<Message> {
        ids.into_iter()
            .map(|id| self.messages.message(&id).expect("store bug: an index names a missing message"))
            .collect()
    }

    /// `attributes` as a contact keeps them, names shared through the store's name set.
    fn compact_attributes(&mut self, attributes: &BTreeMap<String, String>) -> Box<[(Arc<str>, Box<str>)]> {
        attributes
            .iter()
            .map(|(name, value)| {
                let name = match self.attribute_names.get(name.as_str()) {
                    Some(known) => known.clone(),
                    None => {
                        let name: Arc<str> = name.as_str().into();
                        self.attribute_names.insert(name.clone());
                        name
                    }
                };
                (name, value.as_str().into())
            })
            .collect()
    }

    /// Adds `delta` to `tenant`'s books.
    fn apply_ledger(&mut self, tenant: TenantId, delta: LedgerDelta) {
        let books = self.tenants.get_mut(&tenant).expect("store bug: books of a missing tenant");
        books.balance += delta.balance;
        books.reserved += delta.reserved;
        books.charged += delta.charged;
        // SQLite keeps this with a CHECK constraint; here nothing else would.
        assert!(rules::books_hold(books), "ledger broken for {tenant}: {books:?}");
    }

    /// Writes `message`'s state (status, attempts, due time, lease, error, update time)
    /// over its stored row, and moves it between the indexes its status and lease put it
    /// in: the one place a stored message's status changes.
    fn write_state(&mut self, message: &Message) {
        let id = message.id;
        let account = self.messages.owner(&id).1;
        let stored = self.messages.get_mut(&id).expect("store bug: a write to a missing message");
        let (status, due, since, lease) =
            (stored.status, stored.next_attempt_at, stored.updated_at, stored.lease.take());
        stored.status = message.status;
        stored.attempts = message.attempts;
        stored.next_attempt_at = message.next_attempt_at;
        stored.updated_at = message.updated_at;
        stored.lease = message.lease.clone().map(Box::new);
        if stored.last_error.as_deref() != message.last_error.as_ref() {
            stored.last_error = message.last_error.clone().map(Box::new);
        }
        match status {
            MessageStatus::Queued => self.unready(account, due, id),
            // A message's update time changes only with its status, so it still says when
            // the message became unknown.
            MessageStatus::Unknown => _ = self.unknowns.remove(&(since, id)),
            _ => {}
        }
        if let Some(lease) = lease {
            self.leases.remove(&(lease.expires_at, id));
            if let Some(held) = self.by_token.get_mut(&lease.token) {
                held.remove(&id);
                if held.is_empty() {
                    self.by_token.remove(&lease.token);
                }
            }
        }
        match message.status {
            MessageStatus::Queued => self.index_if_claimable(id),
            MessageStatus::Unknown => _ = self.unknowns.insert((message.updated_at, id)),
            _ => {}
        }
        if let Some(lease) = &message.lease {
            self.leases.insert((lease.expires_at, id));
            self.by_token.entry(lease.token).or_default().insert(id);
        }
    }

    /// Writes the provider ids `message` was just given: the message given an id last
    /// holds it.
    fn write_provider_ids(&mut self, message: &Message) {
        let bulk_id = message.bulk_id.as_deref().map(|bulk_id| match &self.last_bulk_id {
            Some(last) if **last == *bulk_id => last.clone(),
            _ => self.last_bulk_id.insert(bulk_id.into()).clone(),
        });
        let stored = self.messages.get_mut(&message.id).expect("store bug: a write to a missing message");
        stored.provider_message_id = message.provider_message_id.as_deref().map(Box::from);
        stored.bulk_id = bulk_id;
        if let Some(provider_message_id) = &message.provider_message_id {
            let account = self.messages.owner(&message.id).1;
            self.by_provider_id.insert((account, provider_message_id.as_str().into()), message.id);
        }
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

    /// Takes message `id`, due at `due`, out of `account`'s claimable index.
    fn unready(&mut self, account: TrafficAccountId, due: Timestamp, id: MessageId) {
        if let Some(ready) = self.ready.get_mut(&account) {
            ready.remove(&(due, id));
        }
    }

    /// Writes campaign `id`'s status; its queued messages are claimable while it sends.
    fn write_campaign_status(&mut self, id: CampaignId, status: CampaignStatus, completed_at: Option<Timestamp>) {
        let campaign = self.campaigns.get_mut(&id).expect("store bug: a write to a missing campaign");
        (campaign.status, campaign.completed_at) = (status, completed_at);
        let queued: Vec<(MessageId, Timestamp)> = self
            .campaign_messages(id)
            .filter(|message| message.status == MessageStatus::Queued)
            .map(|message| (message.id, message.next_attempt_at))
            .collect();
        for (message, due) in queued {
            if status == CampaignStatus::Sending {
                self.index_if_claimable(message);
            } else {
                self.unready(self.messages.owner(&message).1, due, message);
            }
        }
    }
}

/// The rows of an enqueue, kept in its transaction until it is decided.
struct Enqueued {
    campaign: CampaignId,
    tenant: TenantId,
    traffic_account: TrafficAccountId,
    sender: Arc<str>,
    created_at: Timestamp,
    rows: Vec<StoredMessage>,
    /// The bodies so far, each kept once.
    bodies: BTreeSet<Arc<str>>,
}

/// One transaction of the engine over the state ([`MemoryStore::transaction`]).
struct Tx<'a> {
    state: RefCell<&'a mut State>,
    /// Sums the engine owes the state; written by [`Backend::write_pending`] before anything
    /// reads them back, and at the end.
    pending: RefCell<Pending>,
    enqueue: RefCell<Option<Enqueued>>,
    /// Whether anything was written that a refusal could not undo.
    wrote: Cell<bool>,
}

impl<'a> Tx<'a> {
    /// The state, to write rows that a refusal could not undo.
    fn write(&self) -> RefMut<'_, &'a mut State> {
        self.wrote.set(true);
        self.state.borrow_mut()
    }
}

impl Backend for Tx<'_> {
    fn pending(&self) -> RefMut<'_, Pending> {
        self.pending.borrow_mut()
    }

    fn take_meta(&self, key: &'static str, count: u64) -> StoreResult<u64> {
        self.pending.borrow_mut().take_meta(key, count, || Ok(*self.state.borrow_mut().meta.slot(key)))
    }

    fn write_pending(&self) -> StoreResult<()> {
        let (journal, writes) = {
            let mut pending = self.pending.borrow_mut();
            (pending.take_journal(), pending.take_writes())
        };
        let mut state = self.state.borrow_mut();
        state.journal.extend(journal);
        for (key, value) in writes.meta {
            *state.meta.slot(key) = value;
        }
        if !writes.counters.is_empty() || !writes.ledger.is_empty() {
            self.wrote.set(true);
        }
        for ((campaign, status), shift) in writes.counters {
            let counts =
                &mut state.campaigns.get_mut(&campaign).expect("store bug: counts of a missing campaign").counts;
            let counter = counts.get_mut(status);
            *counter = u32::try_from(i64::from(*counter) + shift)
                .expect("store bug: a campaign counter out of step with its messages");
        }
        for (tenant, delta) in writes.ledger {
            state.apply_ledger(tenant, delta);
        }
        Ok(())
    }

    fn tenant(&self, id: TenantId) -> StoreResult<Tenant> {
        self.write_pending()?;
        self.state.borrow().tenant(id).cloned()
    }

    fn campaign(&self, id: CampaignId) -> StoreResult<Option<Campaign>> {
        self.write_pending()?;
        Ok(self.state.borrow().campaigns.get(&id).cloned())
    }

    fn scheduled_due(&self, now: Timestamp) -> StoreResult<Vec<Campaign>> {
        self.write_pending()?;
        let state = self.state.borrow();
        let due = state.campaigns.values().filter(|campaign| {
            campaign.status == CampaignStatus::Scheduled && campaign.schedule_at.is_none_or(|at| at <= now)
        });
        Ok(due.cloned().collect())
    }

    fn contact_owner(&self, id: ContactId) -> StoreResult<Option<TenantId>> {
        Ok(self.state.borrow().contacts.get(&id).map(|contact| contact.tenant))
    }

    fn write_campaign_fields(&self, campaign: &Campaign) -> StoreResult<()> {
        let mut state = self.write();
        let stored = state.campaigns.get_mut(&campaign.id).expect("store bug: a write to a missing campaign");
        let new = NewCampaign {
            name: campaign.name.clone(),
            body_template: campaign.body_template.clone(),
            sender: campaign.sender.clone(),
            audience: campaign.audience.clone(),
            traffic_account: campaign.traffic_account,
            schedule_at: campaign.schedule_at,
        };
        rules::apply_patch(stored, new);
        Ok(())
    }

    fn write_pause_reason(&self, id: CampaignId, reason: Option<&PauseReason>) -> StoreResult<()> {
        let mut state = self.write();
        state.campaigns.get_mut(&id).expect("store bug: a write to a missing campaign").pause_reason = reason.cloned();
        Ok(())
    }

    fn contacts_after(&self, tenant: TenantId, after: Option<ContactId>, limit: u32) -> StoreResult<Vec<Contact>> {
        let state = self.state.borrow();
        let page = state.contacts.after(after).filter(|(_, contact)| contact.tenant == tenant);
        Ok(page.take(limit as usize).map(|(id, contact)| contact.to_contact(id)).collect())
    }

    /// Keeps the rows in the transaction until the enqueue is decided: a refused enqueue
    /// leaves nothing behind. The first page makes room for the whole audience at once
    /// (a million-row vector grown by doubling would hold the old and the new at once).
    fn insert_messages(&self, messages: &[Message]) -> StoreResult<()> {
        let Some(first) = messages.first() else { return Ok(()) };
        let mut enqueue = self.enqueue.borrow_mut();
        let enqueue = enqueue.get_or_insert_with(|| {
            let mut state = self.state.borrow_mut();
            let audience = state.contacts.iter().filter(|(_, contact)| contact.tenant == first.tenant).count();
            state.journal.reserve(audience);
            Enqueued {
                campaign: first.id.campaign,
                tenant: first.tenant,
                traffic_account: first.traffic_account,
                sender: first.sender.as_str().into(),
                created_at: first.created_at,
                rows: Vec::with_capacity(audience),
                bodies: BTreeSet::new(),
            }
        });
        for message in messages {
            assert!(
                message.id.campaign == enqueue.campaign
                    && message.tenant == enqueue.tenant
                    && message.traffic_account == enqueue.traffic_account
                    && *message.sender == *enqueue.sender
                    && message.created_at == enqueue.created_at,
                "store bug: an enqueue's messages differ in what their campaign gives them"
            );
            enqueue.rows.push(StoredMessage::new(message, &mut enqueue.bodies));
        }
        Ok(())
    }

    /// The enqueue is decided: its rows join the store.
    fn write_enqueued(&self, id: CampaignId, counts: StatusCounts, now: Timestamp) -> StoreResult<()> {
        let enqueue = self.enqueue.borrow_mut().take();
        let mut state = self.write();
        if let Some(enqueue) = enqueue {
            assert_eq!(enqueue.campaign, id, "store bug: another campaign's messages enqueued");
            let messages = CampaignMessages {
                tenant: enqueue.tenant,
                traffic_account: enqueue.traffic_account,
                sender: enqueue.sender,
                created_at: enqueue.created_at,
                rows: enqueue.rows.into_boxed_slice(),
            };
            state.messages.insert_campaign(id, messages);
        }
        let campaign = state.campaigns.get_mut(&id).expect("store bug: a write to a missing campaign");
        campaign.counts = counts;
        campaign.enqueued_at = Some(now);
        Ok(())
    }

    fn stored_receipt(&self, tenant: TenantId, key: &str) -> StoreResult<Option<(String, EnqueueReceipt)>> {
        Ok(self.state.borrow().idempotency.get(&(tenant, key.to_owned())).cloned())
    }

    fn store_receipt(&self, tenant: TenantId, key: &IdempotencyKey, receipt: &EnqueueReceipt) -> StoreResult<()> {
        let stored = (key.request_hash.clone(), receipt.clone());
        self.write().idempotency.insert((tenant, key.key.clone()), stored);
        Ok(())
    }

    fn message(&self, id: MessageId) -> StoreResult<Option<Message>> {
        Ok(self.state.borrow().messages.message(&id))
    }

    fn messages_in(&self, id: CampaignId, status: MessageStatus) -> StoreResult<Vec<Message>> {
        let state = self.state.borrow();
        let ids = state.campaign_messages(id).filter(|message| message.status == status).map(|message| message.id);
        Ok(state.messages_named(ids.collect::<Vec<_>>()))
    }

    fn stale_unknowns(&self, cutoff: Timestamp) -> StoreResult<Vec<Message>> {
        let state = self.state.borrow();
        let stale = state.unknowns.iter().take_while(|(since, _)| *since <= cutoff).map(|(_, id)| *id);
        Ok(state.messages_named(stale.collect::<BTreeSet<_>>()))
    }

    fn expired_leases(&self, now: Timestamp) -> StoreResult<Vec<Message>> {
        let state = self.state.borrow();
        let expired = state.leases.iter().take_while(|(expires, _)| *expires <= now).map(|(_, id)| *id);
        Ok(state.messages_named(expired.collect::<BTreeSet<_>>()))
    }

    fn contact_by_phone(&self, tenant: TenantId, phone: &str) -> StoreResult<Option<ContactRow>> {
        let state = self.state.borrow();
        let Some(&id) = state.contact_by_phone.get(&(tenant, phone.into())) else { return Ok(None) };
        let contact = &state.contacts[&id];
        let attributes = contact.attributes.iter().map(|(name, value)| (name.to_string(), value.to_string()));
        Ok(Some((id, attributes.collect(), contact.opted_out)))
    }

    fn update_contact(&self, id: ContactId, row: &NewContact) -> StoreResult<()> {
        let mut state = self.write();
        let (attributes, opted_out) = (state.compact_attributes(&row.attributes), row.opted_out);
        let contact = state.contacts.get_mut(&id).expect("store bug: a write to a missing contact");
        (contact.attributes, contact.opted_out) = (attributes, opted_out);
        Ok(())
    }

    fn insert_contact(&self, tenant: TenantId, phone: &str, row: &NewContact) -> StoreResult<()> {
        let mut state = self.write();
        let (attributes, opted_out) = (state.compact_attributes(&row.attributes), row.opted_out);
        let phone: Box<str> = phone.into();
        let id = state.contacts.push(StoredContact { tenant, phone: phone.clone(), attributes, opted_out });
        state.contact_by_phone.insert((tenant, phone), id);
        Ok(())
    }

    fn write_campaign_status(&self, campaign: &Campaign) -> StoreResult<()> {
        self.write().write_campaign_status(campaign.id, campaign.status, campaign.completed_at);
        Ok(())
    }

    fn first_due(&self, account: Option<TrafficAccountId>) -> StoreResult<Option<(Timestamp, TrafficAccountId)>> {
        let state = self.state.borrow();
        let first = |ready: &BTreeSet<(Timestamp, MessageId)>| ready.first().copied();
        Ok(match account {
            Some(account) => state.ready.get(&account).and_then(first).map(|(due, _)| (due, account)),
            None => state
                .ready
                .iter()
                .filter_map(|(account, ready)| first(ready).map(|(due, id)| (due, id, *account)))
                .min()
                .map(|(due, _, account)| (due, account)),
        })
    }

    fn account(&self, id: TrafficAccountId) -> StoreResult<TrafficAccount> {
        self.state.borrow().account(id).cloned()
    }

    fn visit_due(&self, account: TrafficAccountId, now: Timestamp, visit: DueVisit<'_>) -> StoreResult<()> {
        let state = self.state.borrow();
        let Some(ready) = state.ready.get(&account) else { return Ok(()) };
        for &(_, id) in ready.range(..=(now, MessageId::new(CampaignId(u64::MAX), ContactId(u64::MAX)))) {
            let message = state.messages.message(&id).expect("store bug: the queue names a missing message");
            let tenant_rate = state.tenants[&message.tenant].rate_limit_per_s;
            if !visit(message, tenant_rate)? {
                break;
            }
        }
        Ok(())
    }

    fn stored_bucket(&self, kind: &str, id: u64) -> StoreResult<Option<TokenBucket>> {
        Ok(self.state.borrow().buckets.get(&BucketKey::of(kind, id)).copied())
    }

    fn save_bucket(&self, kind: &str, id: u64, bucket: TokenBucket) -> StoreResult<()> {
        self.write().buckets.insert(BucketKey::of(kind, id), bucket);
        Ok(())
    }

    fn save_claimed(&self, messages: &[Message]) -> StoreResult<()> {
        let mut state = self.write();
        messages.iter().for_each(|message| state.write_state(message));
        Ok(())
    }

    fn messages_by_id(&self, ids: &[MessageId]) -> StoreResult<BTreeMap<MessageId, Message>> {
        let state = self.state.borrow();
        Ok(ids.iter().filter_map(|id| Some((*id, state.messages.message(id)?))).collect())
    }

    fn save_state(&self, message: &Message) -> StoreResult<()> {
        self.write().write_state(message);
        Ok(())
    }

    fn save_provider_ids(&self, message: &Message) -> StoreResult<()> {
        self.write().write_provider_ids(message);
        Ok(())
    }

    fn save_states(&self, messages: &[&Message]) -> StoreResult<()> {
        let mut state = self.write();
        messages.iter().for_each(|message| state.write_state(message));
        Ok(())
    }

    /// In the order the provider ids were given: the message given an id last holds it.
    fn save_acceptances(&self, accepted: &[(&Message, u64)]) -> StoreResult<()> {
        let mut in_order = accepted.to_vec();
        in_order.sort_by_key(|(_, assigned)| *assigned);
        let mut state = self.write();
        for (message, _) in in_order {
            state.write_state(message);
            state.write_provider_ids(message);
        }
        Ok(())
    }

    fn any_parked_reports(&self, account: TrafficAccountId) -> StoreResult<bool> {
        let state = self.state.borrow();
        let first = state.parked_by_provider_id.range((account, Box::from(""))..).next();
        Ok(first.is_some_and(|((parked_under, _), _)| *parked_under == account))
    }

    fn parked_reports(&self) -> StoreResult<Vec<(InboundReport, Timestamp)>> {
        let state = self.state.borrow();
        Ok(state.parked.values().map(|parked| (parked.report.clone(), parked.received_at)).collect())
    }

    fn delete_parked_received_by(&self, cutoff: Timestamp) -> StoreResult<u64> {
        let mut state = self.write();
        let expired: Vec<u64> =
            state.parked.iter().filter(|(_, parked)| parked.received_at <= cutoff).map(|(number, _)| *number).collect();
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
        Ok(expired.len() as u64)
    }

    fn take_parked_reports(
        &self,
        account: TrafficAccountId,
        provider_message_id: &str,
    ) -> StoreResult<Vec<InboundReport>> {
        let mut state = self.write();
        let numbers = state.parked_by_provider_id.remove(&(account, provider_message_id.into())).unwrap_or_default();
        let reports = numbers.iter().map(|number| state.parked.remove(number).expect("parked index out of step"));
        Ok(reports.map(|parked| parked.report).collect())
    }

    fn extend_leases(&self, token: u64, expires_at: Timestamp) -> StoreResult<u32> {
        let held = self.state.borrow().by_token.get(&token).map(|held| held.iter().copied().collect::<Vec<_>>());
        let held = held.unwrap_or_default();
        for &id in &held {
            let mut message =
                self.state.borrow().messages.message(&id).expect("store bug: a lease of a missing message");
            if let Some(lease) = &mut message.lease {
                lease.expires_at = expires_at;
            }
            self.save_state(&message)?;
        }
        Ok(held.len() as u32)
    }

    fn message_for_report(&self, report: &InboundReport) -> StoreResult<Option<Message>> {
        let state = self.state.borrow();
        let key = (report.traffic_account, report.provider_message_id.as_str().into());
        Ok(state.by_provider_id.get(&key).and_then(|id| state.messages.message(id)))
    }

    fn park(&self, report: InboundReport, now: Timestamp) -> StoreResult<ReportOutcome> {
        self.pending().set_parked(report.traffic_account, true);
        let number = self.next_meta("parked_seq")?;
        let mut state = self.write();
        let key = (report.traffic_account, report.provider_message_id.as_str().into());
        state.parked_by_provider_id.entry(key).or_default().insert(number);
        state.parked.insert(number, ParkedReport { report, received_at: now });
        Ok(ReportOutcome::Parked)
    }
}

impl Store for MemoryStore {
    engine::engine_steps!(write = transaction, read = transaction);

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

    fn contacts(&self, tenant: TenantId) -> StoreResult<Vec<Contact>> {
        let state = self.lock();
        state.tenant(tenant)?;
        let contacts = state.contacts.iter().filter(|(_, contact)| contact.tenant == tenant);
        Ok(contacts.map(|(id, contact)| contact.to_contact(id)).collect())
    }

    fn create_campaign(&self, tenant: TenantId, new: NewCampaign, now: Timestamp) -> StoreResult<Campaign> {
        let mut state = self.lock();
        state.tenant(tenant)?;
        rules::check_new_campaign(
            tenant,
            &new,
            |id| state.account(id).cloned(),
            |id| Ok(state.contacts.get(&id).map(|contact| contact.tenant)),
        )?;
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

    fn campaigns(&self, tenant: TenantId) -> StoreResult<Vec<Campaign>> {
        let state = self.lock();
        state.tenant(tenant)?;
        Ok(state.campaigns.values().filter(|campaign| campaign.tenant == tenant).cloned().collect())
    }

    fn all_campaigns(&self) -> StoreResult<Vec<Campaign>> {
        Ok(self.lock().campaigns.values().cloned().collect())
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

    fn unknown_messages(&self, limit: u32) -> StoreResult<Vec<Message>> {
        let state = self.lock();
        Ok(state
            .unknowns
            .iter()
            .take(limit as usize)
            .map(|(_, id)| state.messages.message(id).expect("indexed"))
            .collect())
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
        stats.parked_reports_expired = tenant.is_none().then_some(state.meta.parked_expired);
        Ok(stats)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> StoreError {
        StoreError::Conflict("refused".into())
    }

    #[test]
    fn a_refusal_undoes_the_journal_entries_and_counters_it_took() {
        let store = MemoryStore::new();
        let entry = |seq| JournalEntry::Campaign {
            seq,
            at: Timestamp(1),
            campaign: CampaignId(1),
            from: CampaignStatus::Draft,
            to: CampaignStatus::Sending,
        };
        let result = store.transaction(|tx| -> StoreResult<()> {
            tx.journal(entry)?;
            tx.write_pending()?;
            tx.take_meta("fencing_token", 3)?;
            Err(refused())
        });
        assert_eq!(result, Err(refused()));
        assert_eq!(store.take_journal().unwrap(), [], "the entry written before the refusal is undone");
        let (seq, token) =
            store.transaction(|tx| Ok((tx.take_meta("journal_seq", 1)?, tx.take_meta("fencing_token", 1)?))).unwrap();
        assert_eq!((seq, token), (1, 1), "the counters taken before the refusal are given back");
        store.transaction(|tx| tx.journal(entry)).unwrap();
        assert_eq!(store.take_journal().unwrap(), [entry(2)], "a committed transaction keeps what it took");
    }

    #[test]
    #[should_panic(expected = "refused after a write this store cannot undo")]
    fn a_refusal_after_a_write_it_cannot_undo_stops_the_store() {
        let store = MemoryStore::new();
        let bucket = TokenBucket { milli_tokens: 0, updated_at: Timestamp(0) };
        let _ = store.transaction(|tx| -> StoreResult<()> {
            tx.save_bucket("account", 1, bucket)?;
            Err(refused())
        });
    }
}
