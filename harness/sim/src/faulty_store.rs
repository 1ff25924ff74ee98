//! A store that fails transiently on command: every writing call may, at a seeded rate,
//! return [`StoreError::Transient`] *before* touching the inner store, as a database
//! would on a lost connection or a lock timeout. Nothing changes when it fails, so the
//! engine's retry paths are exercised without the store itself lying.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use smsim_core::domain::{Campaign, Contact, Message, PauseReason, StatusCounts, Tenant, TrafficAccount};
use smsim_core::store::*;
use smsim_core::{CampaignId, MessageId, TenantId, Timestamp, TrafficAccountId};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A store wrapper injecting transient failures.
pub struct FaultyStore<S> {
    inner: Arc<S>,
    rate_millionths: AtomicU64,
    rng: Mutex<ChaCha8Rng>,
    failures: AtomicU64,
}

impl<S: Store> FaultyStore<S> {
    /// Wraps `inner`, failing writing calls with probability `rate`, drawn from `seed`.
    pub fn new(inner: Arc<S>, rate: f64, seed: u64) -> Self {
        FaultyStore {
            inner,
            rate_millionths: AtomicU64::new((rate.clamp(0.0, 1.0) * 1e6) as u64),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            failures: AtomicU64::new(0),
        }
    }

    /// Stops failing (the heal phase).
    pub fn heal(&self) {
        self.rate_millionths.store(0, Ordering::SeqCst);
    }

    /// Failures injected so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::SeqCst)
    }

    fn maybe_fail(&self, call: &str) -> StoreResult<()> {
        let rate = self.rate_millionths.load(Ordering::SeqCst);
        if rate == 0 {
            return Ok(());
        }
        let fail = self.rng.lock().expect("fault rng poisoned").random_range(0..1_000_000) < rate;
        if fail {
            self.failures.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Transient(format!("injected failure of {call}")));
        }
        Ok(())
    }
}

/// Delegates reading calls as they are and writing calls through `maybe_fail`.
macro_rules! delegate {
    (read $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        fn $name(&self, $($arg: $ty),*) -> StoreResult<$ret> {
            self.inner.$name($($arg),*)
        }
    };
    (write $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        fn $name(&self, $($arg: $ty),*) -> StoreResult<$ret> {
            self.maybe_fail(stringify!($name))?;
            self.inner.$name($($arg),*)
        }
    };
}

impl<S: Store> Store for FaultyStore<S> {
    delegate!(write create_tenant(new: NewTenant, now: Timestamp) -> Tenant);
    delegate!(read tenant(id: TenantId) -> Tenant);
    delegate!(read tenant_by_api_key_hash(api_key_hash: &str) -> Option<Tenant>);
    delegate!(read tenants() -> Vec<Tenant>);
    delegate!(write change_credits(tenant: TenantId, change: CreditChange, now: Timestamp) -> Tenant);
    delegate!(write create_traffic_account(new: NewTrafficAccount) -> TrafficAccount);
    delegate!(read traffic_account(id: TrafficAccountId) -> TrafficAccount);
    delegate!(read traffic_accounts() -> Vec<TrafficAccount>);
    delegate!(write import_contacts(tenant: TenantId, rows: Vec<NewContact>, now: Timestamp) -> ImportReport);
    delegate!(read contacts(tenant: TenantId) -> Vec<Contact>);
    delegate!(write create_campaign(tenant: TenantId, new: NewCampaign, now: Timestamp) -> Campaign);
    delegate!(write update_campaign(tenant: TenantId, id: CampaignId, patch: CampaignPatch, now: Timestamp) -> Campaign);
    delegate!(read campaign(tenant: TenantId, id: CampaignId) -> Campaign);
    delegate!(read campaigns(tenant: TenantId) -> Vec<Campaign>);
    delegate!(read all_campaigns() -> Vec<Campaign>);
    delegate!(read preview(tenant: TenantId, id: CampaignId) -> Preview);
    delegate!(write enqueue(tenant: TenantId, id: CampaignId, key: Option<IdempotencyKey>, now: Timestamp) -> EnqueueReceipt);
    delegate!(write start_due_campaigns(now: Timestamp) -> Vec<CampaignId>);
    delegate!(write pause(tenant: TenantId, id: CampaignId, reason: PauseReason, now: Timestamp) -> Campaign);
    delegate!(write resume(tenant: TenantId, id: CampaignId, now: Timestamp) -> Campaign);
    delegate!(write cancel(tenant: TenantId, id: CampaignId, now: Timestamp) -> Campaign);
    delegate!(write retry_failed(tenant: TenantId, id: CampaignId, now: Timestamp) -> RetryReceipt);
    delegate!(read failures_by_code(tenant: TenantId, id: CampaignId) -> BTreeMap<String, u32>);
    delegate!(read messages(campaign: CampaignId) -> Vec<Message>);
    delegate!(read visit_messages(campaign: CampaignId, visit: &mut dyn FnMut(&Message)) -> ());
    delegate!(read message(id: MessageId) -> Message);
    delegate!(write claim(request: ClaimRequest, now: Timestamp) -> ClaimOutcome);
    delegate!(write renew_lease(token: u64, lease_ms: u64, now: Timestamp) -> u32);
    delegate!(write record_submissions(token: u64, results: Vec<(MessageId, SubmissionResult)>, now: Timestamp) -> Vec<RecordOutcome>);
    delegate!(write apply_report(report: InboundReport, now: Timestamp) -> ReportOutcome);
    delegate!(write reap_expired_leases(now: Timestamp) -> ReapReport);
    delegate!(read unknown_messages(limit: u32) -> Vec<Message>);
    delegate!(write resolve_unknown(id: MessageId, resolution: Resolution, now: Timestamp) -> bool);
    delegate!(write settle_stale_unknowns(older_than_ms: u64, now: Timestamp) -> Vec<MessageId>);
    delegate!(read queue_stats(tenant: Option<TenantId>, now: Timestamp) -> QueueStats);
    delegate!(read recount(campaign: CampaignId) -> StatusCounts);
    delegate!(read ledger_recount(tenant: TenantId) -> LedgerRecount);
    delegate!(read take_journal() -> Vec<JournalEntry>);
}

/// A store whose *answers* are tampered with, so tests can show the oracle catches an
/// engine that reports wrong numbers. The inner store stays correct.
pub struct TamperedStore<S> {
    inner: Arc<S>,
    campaigns: fn(&mut Campaign),
    tenants: fn(&mut Tenant),
}

impl<S: Store> TamperedStore<S> {
    /// Wraps `inner`, passing every campaign and tenant it returns through the functions.
    pub fn new(inner: Arc<S>, campaigns: fn(&mut Campaign), tenants: fn(&mut Tenant)) -> Self {
        TamperedStore { inner, campaigns, tenants }
    }
}

impl<S: Store> Store for TamperedStore<S> {
    fn tenant(&self, id: TenantId) -> StoreResult<Tenant> {
        let mut tenant = self.inner.tenant(id)?;
        (self.tenants)(&mut tenant);
        Ok(tenant)
    }
    fn tenants(&self) -> StoreResult<Vec<Tenant>> {
        let mut tenants = self.inner.tenants()?;
        tenants.iter_mut().for_each(self.tenants);
        Ok(tenants)
    }
    fn all_campaigns(&self) -> StoreResult<Vec<Campaign>> {
        let mut campaigns = self.inner.all_campaigns()?;
        campaigns.iter_mut().for_each(self.campaigns);
        Ok(campaigns)
    }
    delegate!(read create_tenant(new: NewTenant, now: Timestamp) -> Tenant);
    delegate!(read tenant_by_api_key_hash(api_key_hash: &str) -> Option<Tenant>);
    delegate!(read change_credits(tenant: TenantId, change: CreditChange, now: Timestamp) -> Tenant);
    delegate!(read create_traffic_account(new: NewTrafficAccount) -> TrafficAccount);
    delegate!(read traffic_account(id: TrafficAccountId) -> TrafficAccount);
    delegate!(read traffic_accounts() -> Vec<TrafficAccount>);
    delegate!(read import_contacts(tenant: TenantId, rows: Vec<NewContact>, now: Timestamp) -> ImportReport);
    delegate!(read contacts(tenant: TenantId) -> Vec<Contact>);
    delegate!(read create_campaign(tenant: TenantId, new: NewCampaign, now: Timestamp) -> Campaign);
    delegate!(read update_campaign(tenant: TenantId, id: CampaignId, patch: CampaignPatch, now: Timestamp) -> Campaign);
    delegate!(read campaign(tenant: TenantId, id: CampaignId) -> Campaign);
    delegate!(read campaigns(tenant: TenantId) -> Vec<Campaign>);
    delegate!(read preview(tenant: TenantId, id: CampaignId) -> Preview);
    delegate!(read enqueue(tenant: TenantId, id: CampaignId, key: Option<IdempotencyKey>, now: Timestamp) -> EnqueueReceipt);
    delegate!(read start_due_campaigns(now: Timestamp) -> Vec<CampaignId>);
    delegate!(read pause(tenant: TenantId, id: CampaignId, reason: PauseReason, now: Timestamp) -> Campaign);
    delegate!(read resume(tenant: TenantId, id: CampaignId, now: Timestamp) -> Campaign);
    delegate!(read cancel(tenant: TenantId, id: CampaignId, now: Timestamp) -> Campaign);
    delegate!(read retry_failed(tenant: TenantId, id: CampaignId, now: Timestamp) -> RetryReceipt);
    delegate!(read failures_by_code(tenant: TenantId, id: CampaignId) -> BTreeMap<String, u32>);
    delegate!(read messages(campaign: CampaignId) -> Vec<Message>);
    delegate!(read visit_messages(campaign: CampaignId, visit: &mut dyn FnMut(&Message)) -> ());
    delegate!(read message(id: MessageId) -> Message);
    delegate!(read claim(request: ClaimRequest, now: Timestamp) -> ClaimOutcome);
    delegate!(read renew_lease(token: u64, lease_ms: u64, now: Timestamp) -> u32);
    delegate!(read record_submissions(token: u64, results: Vec<(MessageId, SubmissionResult)>, now: Timestamp) -> Vec<RecordOutcome>);
    delegate!(read apply_report(report: InboundReport, now: Timestamp) -> ReportOutcome);
    delegate!(read reap_expired_leases(now: Timestamp) -> ReapReport);
    delegate!(read unknown_messages(limit: u32) -> Vec<Message>);
    delegate!(read resolve_unknown(id: MessageId, resolution: Resolution, now: Timestamp) -> bool);
    delegate!(read settle_stale_unknowns(older_than_ms: u64, now: Timestamp) -> Vec<MessageId>);
    delegate!(read queue_stats(tenant: Option<TenantId>, now: Timestamp) -> QueueStats);
    delegate!(read recount(campaign: CampaignId) -> StatusCounts);
    delegate!(read ledger_recount(tenant: TenantId) -> LedgerRecount);
    delegate!(read take_journal() -> Vec<JournalEntry>);
}
