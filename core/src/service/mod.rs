//! The engine's long-running services: [`worker::Worker`] (claim → submit → record),
//! [`maintenance::Maintenance`] (reaper, reconciler, scheduler).
//!
//! Services hold no state that matters: everything they decide is written to the store
//! in one transaction before they act on it, so a service may crash at any await point
//! and a new one picks up where it stopped. Their only resources — the store, the
//! clock, the HTTP client adapters send through, a seeded generator — are passed in.
//! Nothing here uses `tokio::select!`: sequential awaits keep a simulation's schedule a
//! function of its seed.

pub mod maintenance;
pub mod worker;

use crate::adapter::{adapter_for, AdapterConfigError, HttpClient, ProviderAdapter};
use crate::domain::records::TrafficAccount;
use crate::domain::retry::RetryPolicy;
use crate::ids::TrafficAccountId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Tunables of the services.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// How long a claim is leased before the reaper may take it back.
    pub lease_ms: u64,
    /// Most messages a worker claims at once (the adapter submits them in batches of its
    /// own maximum, renewing the lease in between).
    pub claim_batch: u32,
    /// Longest a worker sleeps when there is nothing to do.
    pub idle_poll_ms: u64,
    /// How often the reaper, reconciler and scheduler run.
    pub maintenance_interval_ms: u64,
    /// How long an ambiguous submission may stay unknown before it is settled as
    /// `UNKNOWN_OUTCOME` (charged).
    pub unknown_settle_after_ms: u64,
    /// How long after becoming unknown a "not found" from a status lookup is trusted
    /// (a provider may not list a message it accepted a moment ago).
    pub lookup_grace_ms: u64,
    /// Backoff policy for retryable failures.
    pub retry: RetryPolicy,
    /// Where providers reach this engine's webhooks (`https://sms.example.com`).
    pub webhook_base_url: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            lease_ms: 30_000,
            claim_batch: 200,
            idle_poll_ms: 500,
            maintenance_interval_ms: 1_000,
            unknown_settle_after_ms: 10 * 60_000,
            lookup_grace_ms: 30_000,
            retry: RetryPolicy::default(),
            webhook_base_url: "http://localhost:8080".to_owned(),
        }
    }
}

/// Builds provider adapters for traffic accounts.
///
/// The default builds this crate's adapters ([`adapter_for`]); a simulator or a
/// certification run may substitute its own (a third-party adapter, a deliberately
/// broken one).
pub trait AdapterFactory: Send + Sync {
    /// The adapter for `account`, sending through `client`.
    fn build(
        &self,
        account: &TrafficAccount,
        client: Arc<dyn HttpClient>,
        webhook_base_url: &str,
    ) -> Result<Arc<dyn ProviderAdapter>, AdapterConfigError>;
}

/// The factory of this crate's adapters.
#[derive(Clone, Copy, Debug, Default)]
pub struct BuiltinAdapters;

impl AdapterFactory for BuiltinAdapters {
    fn build(
        &self,
        account: &TrafficAccount,
        client: Arc<dyn HttpClient>,
        webhook_base_url: &str,
    ) -> Result<Arc<dyn ProviderAdapter>, AdapterConfigError> {
        adapter_for(account, client, webhook_base_url)
    }
}

/// Adapters per traffic account, built once and shared by a process's services.
pub struct Adapters {
    factory: Arc<dyn AdapterFactory>,
    client: Arc<dyn HttpClient>,
    webhook_base_url: String,
    built: Mutex<BTreeMap<TrafficAccountId, Arc<dyn ProviderAdapter>>>,
}

impl Adapters {
    /// Adapters made by `factory`, sending through `client`.
    pub fn new(
        factory: Arc<dyn AdapterFactory>,
        client: Arc<dyn HttpClient>,
        webhook_base_url: impl Into<String>,
    ) -> Self {
        Adapters { factory, client, webhook_base_url: webhook_base_url.into(), built: Mutex::new(BTreeMap::new()) }
    }

    /// This crate's adapters, sending through `client`.
    pub fn builtin(client: Arc<dyn HttpClient>, webhook_base_url: impl Into<String>) -> Self {
        Adapters::new(Arc::new(BuiltinAdapters), client, webhook_base_url)
    }

    /// Whether an adapter can be built for `account` — its credentials are complete —
    /// without keeping it: accounts are checked when they are created, not when their
    /// first webhook arrives.
    pub fn check(&self, account: &TrafficAccount) -> Result<(), AdapterConfigError> {
        self.factory.build(account, self.client.clone(), &self.webhook_base_url).map(drop)
    }

    /// The adapter for `account`.
    pub fn for_account(&self, account: &TrafficAccount) -> Result<Arc<dyn ProviderAdapter>, AdapterConfigError> {
        let mut built = self.built.lock().expect("adapter cache poisoned");
        if let Some(adapter) = built.get(&account.id) {
            return Ok(adapter.clone());
        }
        let adapter = self.factory.build(account, self.client.clone(), &self.webhook_base_url)?;
        built.insert(account.id, adapter.clone());
        Ok(adapter)
    }
}
