//! Maintenance: the reaper, the reconciler and the scheduler, run on one timer.
//!
//! * The **reaper** returns expired leases — to `queued` when the provider deduplicates
//!   by idempotency key, otherwise to `unknown`. It never resends blindly: incident 000's
//!   139 sends for 100 contacts came from exactly that.
//! * The **reconciler** asks providers that support status lookup about `unknown`
//!   messages, and settles those no lookup or report resolves within
//!   [`EngineConfig::unknown_settle_after_ms`] as failed with `UNKNOWN_OUTCOME` (charged,
//!   because the provider may have sent them).
//! * The **scheduler** starts scheduled campaigns whose time has come.
//! * **Parked reports** whose provider id never became known (a bulk answer lost on the
//!   wire: the provider's ids for that batch are never learned, and a Mitto-style report
//!   names nothing else) are removed after a retention, [`DEFAULT_PARKED_RETENTION_MS`]
//!   unless set, and counted store-wide. The retention is checked every sixteenth of it.

use super::worker::outbound;
use super::{Adapters, EngineConfig};
use crate::adapter::LookupOutcome;
use crate::clock::Clock;
use crate::domain::records::MessageError;
use crate::store::{InboundReport, ReapReport, Resolution, Store, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// Most unknown messages looked up per pass.
pub const LOOKUPS_PER_PASS: u32 = 100;

/// How long a parked report is kept for its provider id to become known: a week, far
/// beyond any provider's report delay and any unknown's settlement.
pub const DEFAULT_PARKED_RETENTION_MS: u64 = 7 * 24 * 3_600_000;

/// What one maintenance pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// Leases returned.
    pub reaped: ReapReport,
    /// Unknown messages resolved by lookup.
    pub resolved: u32,
    /// Unknown messages settled as `UNKNOWN_OUTCOME`.
    pub settled: u32,
    /// Scheduled campaigns started.
    pub started: u32,
    /// Parked reports removed after the retention.
    pub expired_parked: u64,
}

/// The maintenance service.
pub struct Maintenance {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    adapters: Arc<Adapters>,
    config: EngineConfig,
    parked_retention_ms: u64,
    /// When parked reports were last checked for expiry (the first pass only notes it).
    last_expiry: std::sync::Mutex<Option<crate::Timestamp>>,
}

impl Maintenance {
    /// The service over `store`.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, adapters: Arc<Adapters>, config: EngineConfig) -> Self {
        Maintenance {
            store,
            clock,
            adapters,
            config,
            parked_retention_ms: DEFAULT_PARKED_RETENTION_MS,
            last_expiry: std::sync::Mutex::new(None),
        }
    }

    /// Keeps parked reports `ms` before removing them unmatched (at least one second).
    pub fn with_parked_retention_ms(mut self, ms: u64) -> Self {
        self.parked_retention_ms = ms.max(1_000);
        self
    }

    /// Removes the parked reports past the retention, when a sixteenth of it has passed
    /// since the last check (a week's retention is checked every ten and a half hours).
    fn expire_parked(&self) -> Result<u64, StoreError> {
        let now = self.clock.now();
        let due = {
            let mut last = self.last_expiry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match *last {
                Some(at) if now.0 < at.0.saturating_add(self.parked_retention_ms / 16) => false,
                Some(_) => {
                    *last = Some(now);
                    true
                }
                None => {
                    *last = Some(now);
                    false
                }
            }
        };
        if !due {
            return Ok(0);
        }
        let expired = self.store.expire_parked_reports(self.parked_retention_ms, now)?;
        if expired > 0 {
            tracing::info!(expired, retention_ms = self.parked_retention_ms, "parked reports expired unmatched");
        }
        Ok(expired)
    }

    /// Runs a pass every [`EngineConfig::maintenance_interval_ms`] until the task is dropped.
    pub async fn run(self) {
        loop {
            if let Err(error) = self.pass().await {
                tracing::warn!(%error, "maintenance pass failed; retrying next interval");
            }
            tokio::time::sleep(Duration::from_millis(self.config.maintenance_interval_ms.max(1))).await;
        }
    }

    /// One pass: start due campaigns, reap, reconcile, settle.
    pub async fn pass(&self) -> Result<Pass, StoreError> {
        let mut pass =
            Pass { started: self.store.start_due_campaigns(self.clock.now())?.len() as u32, ..Pass::default() };
        pass.reaped = self.store.reap_expired_leases(self.clock.now())?;
        pass.resolved = self.reconcile().await?;
        pass.settled =
            self.store.settle_stale_unknowns(self.config.unknown_settle_after_ms, self.clock.now())?.len() as u32;
        pass.expired_parked = self.expire_parked()?;
        Ok(pass)
    }

    async fn reconcile(&self) -> Result<u32, StoreError> {
        let mut resolved = 0;
        for message in self.store.unknown_messages(LOOKUPS_PER_PASS)? {
            let account = self.store.traffic_account(message.traffic_account)?;
            let Ok(adapter) = self.adapters.for_account(&account) else { continue };
            if !adapter.capabilities().status_lookup {
                continue;
            }
            let now = self.clock.now();
            let resolution = match adapter.lookup(&outbound(&message)).await {
                LookupOutcome::Accepted { provider_message_id, status, error_code } => {
                    let resolution = Resolution::Accepted { provider_message_id: provider_message_id.clone() };
                    if self.store.resolve_unknown(message.id, resolution, self.clock.now())? {
                        resolved += 1;
                    }
                    if let Some(status) = status {
                        let report = InboundReport {
                            traffic_account: account.id,
                            provider_message_id,
                            message_ref: Some(message.id),
                            status,
                            error_code,
                        };
                        self.store.apply_report(report, self.clock.now())?;
                    }
                    continue;
                }
                // A provider may not list a message it accepted a moment ago.
                LookupOutcome::NotFound if now.ms_since(message.updated_at) >= self.config.lookup_grace_ms => {
                    Resolution::NotAccepted {
                        error: MessageError {
                            code: "NOT_ACCEPTED".into(),
                            retryable: false,
                            detail: "status lookup: the provider has no such message".into(),
                        },
                    }
                }
                LookupOutcome::NotFound | LookupOutcome::Unavailable { .. } => continue,
            };
            if self.store.resolve_unknown(message.id, resolution, self.clock.now())? {
                resolved += 1;
            }
        }
        Ok(resolved)
    }
}
