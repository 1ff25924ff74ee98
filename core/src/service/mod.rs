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
pub mod reconcile;
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
    /// The capacity of the rate-limit buckets: one second's worth, or strict (one token,
    /// so a provider never sees more than the limit + 1 in any second).
    #[serde(skip_serializing_if = "crate::domain::rate::Burst::is_one_second")]
    pub rate_burst: crate::domain::rate::Burst,
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
            rate_burst: crate::domain::rate::Burst::OneSecond,
        }
    }
}

/// A combination of timings that turns deliveries into failures with no fault at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimingProblem {
    /// A request may still be on the wire when its lease ends: the reaper takes the message
    /// back as `unknown` while the provider is accepting it.
    #[error(
        "--lease-ms {lease_ms} is shorter than --provider-timeout-ms {provider_timeout_ms}: a request may \
         outlive the lease of the message it carries, and its outcome is then lost"
    )]
    LeaseShorterThanTimeout {
        /// The lease.
        lease_ms: u64,
        /// The provider timeout.
        provider_timeout_ms: u64,
    },
    /// An unknown outcome settles (charged, reported failed) before its report can come.
    #[error(
        "--unknown-settle-after-ms {settle_ms} is shorter than --lease-ms {lease_ms} + --provider-timeout-ms \
         {provider_timeout_ms} + --report-delay-ms {report_delay_ms} = {needed}: a message the provider \
         delivered would settle as failed before its delivery report could arrive"
    )]
    SettleBeforeReports {
        /// The settle delay.
        settle_ms: u64,
        /// The lease.
        lease_ms: u64,
        /// The provider timeout.
        provider_timeout_ms: u64,
        /// The longest delay of a delivery report the operator declares.
        report_delay_ms: u64,
        /// Their sum.
        needed: u64,
    },
    /// An unknown outcome settles (charged) before a status lookup may trust "not found":
    /// a message claimed but never sent is charged though the provider never had it.
    #[error(
        "--unknown-settle-after-ms {settle_ms} is shorter than --lookup-grace-ms {lookup_grace_ms} + \
         --maintenance-interval-ms {interval_ms}: a message never sent would settle as failed, charged, before \
         a status lookup could show the provider never had it"
    )]
    SettleBeforeLookups {
        /// The settle delay.
        settle_ms: u64,
        /// How long a "not found" waits before it is trusted.
        lookup_grace_ms: u64,
        /// How often maintenance looks up.
        interval_ms: u64,
    },
}

impl EngineConfig {
    /// Refuses timings that lose outcomes with no fault at all, given the provider timeout
    /// and the longest report delay the operator declares: the lease must outlast a
    /// request, and an unknown outcome must wait out the lease, a request and its report,
    /// and the grace after which a status lookup's "not found" is trusted.
    pub fn check_timing(&self, provider_timeout_ms: u64, report_delay_ms: u64) -> Result<(), TimingProblem> {
        if self.lease_ms < provider_timeout_ms {
            return Err(TimingProblem::LeaseShorterThanTimeout { lease_ms: self.lease_ms, provider_timeout_ms });
        }
        let needed = self.lease_ms.saturating_add(provider_timeout_ms).saturating_add(report_delay_ms);
        if self.unknown_settle_after_ms < needed {
            return Err(TimingProblem::SettleBeforeReports {
                settle_ms: self.unknown_settle_after_ms,
                lease_ms: self.lease_ms,
                provider_timeout_ms,
                report_delay_ms,
                needed,
            });
        }
        let lookups_done = self.lookup_grace_ms.saturating_add(self.maintenance_interval_ms);
        if self.unknown_settle_after_ms < lookups_done {
            return Err(TimingProblem::SettleBeforeLookups {
                settle_ms: self.unknown_settle_after_ms,
                lookup_grace_ms: self.lookup_grace_ms,
                interval_ms: self.maintenance_interval_ms,
            });
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A live-mode configuration: lookups trusted after 500 ms, maintenance every 200 ms.
    fn config(lease_ms: u64, unknown_settle_after_ms: u64) -> EngineConfig {
        EngineConfig {
            lease_ms,
            unknown_settle_after_ms,
            lookup_grace_ms: 500,
            maintenance_interval_ms: 200,
            ..EngineConfig::default()
        }
    }

    /// The defaults hold; a lease shorter than a request, or a settle delay shorter than
    /// lease + request + report, is refused naming the flags; the boundaries are allowed.
    #[test]
    fn timings_that_lose_outcomes_are_refused() {
        EngineConfig::default().check_timing(10_000, 60_000).unwrap();
        config(1_000, 2_000).check_timing(1_000, 0).unwrap();
        config(1_000, 2_000).check_timing(800, 200).unwrap();
        let short = config(100, 100).check_timing(10_000, 0).unwrap_err();
        assert!(matches!(short, TimingProblem::LeaseShorterThanTimeout { .. }));
        assert!(short.to_string().contains("--lease-ms 100") && short.to_string().contains("--provider-timeout-ms"));
        let early = config(1_000, 1_999).check_timing(800, 200).unwrap_err();
        assert_eq!(
            early,
            TimingProblem::SettleBeforeReports {
                settle_ms: 1_999,
                lease_ms: 1_000,
                provider_timeout_ms: 800,
                report_delay_ms: 200,
                needed: 2_000
            }
        );
        assert!(early.to_string().contains("--unknown-settle-after-ms 1999"), "{early}");
        // The default lookup grace (30 s) with a two-second settle: never-sent messages charged.
        let before_lookups =
            EngineConfig { lease_ms: 1_000, unknown_settle_after_ms: 2_000, ..EngineConfig::default() };
        assert!(matches!(
            before_lookups.check_timing(800, 200).unwrap_err(),
            TimingProblem::SettleBeforeLookups { settle_ms: 2_000, lookup_grace_ms: 30_000, interval_ms: 1_000 }
        ));
        let lookups = |settle_ms| EngineConfig { lookup_grace_ms: 2_000, ..config(100, settle_ms) };
        lookups(2_200).check_timing(0, 0).unwrap();
        assert!(
            matches!(lookups(2_199).check_timing(0, 0), Err(TimingProblem::SettleBeforeLookups { .. })),
            "the grace and one maintenance pass"
        );
    }
}
