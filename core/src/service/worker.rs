//! The worker: claim a batch, submit it through the account's adapter, record the outcomes.
//!
//! The order of the three steps is the at-most-once argument. A message is submitted
//! only while this worker holds its lease (claimed from `queued`, fencing token in hand).
//! Every outcome is written back with that token, so if the lease was taken over the
//! write is refused. A submission whose answer was lost is recorded as `unknown` — never
//! requeued — unless the provider deduplicates by idempotency key, in which case the
//! resubmission carries the same key (the message id). A crash anywhere leaves messages
//! `submitting` under a lease that the reaper turns into `unknown` (or `queued`, for
//! idempotent providers): never a blind resend.
//!
//! A claimed batch is submitted in chunks of the adapter's maximum batch; each chunk's
//! outcomes are recorded as soon as they are known (shrinking the window in which a crash
//! loses an acceptance) and the lease is renewed before the next chunk. A renewal that no
//! longer holds every unsent message (the chunks before outlived the lease, and the reaper
//! took some back) ends the claim: the rest is handed back unsent, never submitted by a
//! worker that no longer holds it.

use super::{Adapters, EngineConfig};
use crate::adapter::{OutboundMessage, ProviderFailure, SubmitOutcome};
use crate::clock::Clock;
use crate::domain::records::{Message, MessageError};
use crate::domain::retry::RetryDecision;
use crate::store::{Claim, ClaimOutcome, ClaimRequest, IdleReason, RecordOutcome, Store, StoreError, SubmissionResult};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;
use std::time::Duration;

/// The error code of a submission whose answer was lost.
pub const AMBIGUOUS: &str = "AMBIGUOUS";
/// The error code of a batch whose account has no usable adapter configuration.
pub const ADAPTER_CONFIG: &str = "ADAPTER_CONFIG";
/// The error code of messages a worker handed back unsent, its lease on them lost.
pub const LEASE_LOST: &str = "LEASE_LOST";

/// What one [`Worker::step`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Submitted a claimed batch.
    Worked {
        /// The claim's fencing token.
        token: u64,
        /// Messages claimed.
        claimed: usize,
        /// What recording each outcome did, in claim order.
        recorded: Vec<RecordOutcome>,
    },
    /// Nothing to do; the worker should wait this long before asking again.
    Idle {
        /// Suggested wait.
        wait_ms: u64,
    },
    /// The store refused or failed; the worker should back off.
    StoreTrouble {
        /// What happened.
        error: StoreError,
    },
}

/// A worker.
pub struct Worker {
    name: String,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    adapters: Arc<Adapters>,
    config: EngineConfig,
    rng: ChaCha8Rng,
}

impl Worker {
    /// A worker called `name` whose retry jitter is drawn from a generator seeded with `seed`.
    pub fn new(
        name: impl Into<String>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        adapters: Arc<Adapters>,
        config: EngineConfig,
        seed: u64,
    ) -> Self {
        Worker { name: name.into(), store, clock, adapters, config, rng: ChaCha8Rng::seed_from_u64(seed) }
    }

    /// Runs until the task is dropped.
    pub async fn run(mut self) {
        loop {
            match self.step().await {
                Step::Worked { .. } => tokio::task::yield_now().await,
                Step::Idle { wait_ms } => tokio::time::sleep(Duration::from_millis(wait_ms.max(1))).await,
                Step::StoreTrouble { error } => {
                    tracing::warn!(worker = %self.name, %error, "store trouble; backing off");
                    tokio::time::sleep(Duration::from_millis(self.config.idle_poll_ms.max(1))).await;
                }
            }
        }
    }

    /// Claims, submits and records one batch, or says how long to wait.
    pub async fn step(&mut self) -> Step {
        let now = self.clock.now();
        let request = ClaimRequest {
            worker: self.name.clone(),
            traffic_account: None,
            max_messages: self.config.claim_batch,
            lease_ms: self.config.lease_ms,
            burst: self.config.rate_burst,
        };
        let claim = match self.store.claim(request, now) {
            Ok(ClaimOutcome::Claimed(claim)) => claim,
            Ok(ClaimOutcome::Idle(reason)) => return Step::Idle { wait_ms: self.wait_ms(reason, now.0) },
            Err(error) => return Step::StoreTrouble { error },
        };
        let token = claim.token;
        let claimed = claim.messages.len();
        match self.submit_claim(claim).await {
            Ok(recorded) => Step::Worked { token, claimed, recorded },
            Err(error) => Step::StoreTrouble { error },
        }
    }

    fn wait_ms(&self, reason: IdleReason, now_ms: u64) -> u64 {
        let until = match reason {
            IdleReason::NothingDue { next_due_at } => next_due_at.map(|at| at.0),
            IdleReason::RateLimited { retry_at } => Some(retry_at.0),
        };
        until.map_or(self.config.idle_poll_ms, |at| at.saturating_sub(now_ms)).clamp(1, self.config.idle_poll_ms.max(1))
    }

    async fn submit_claim(&mut self, claim: Claim) -> Result<Vec<RecordOutcome>, StoreError> {
        let account = self.store.traffic_account(claim.traffic_account)?;
        let adapter = match self.adapters.for_account(&account) {
            Ok(adapter) => adapter,
            Err(error) => {
                // A misconfigured account is an operator's problem that may be fixed: retry
                // with backoff rather than burning the messages as permanent failures.
                let failure = ProviderFailure {
                    code: ADAPTER_CONFIG.into(),
                    retryable: true,
                    retry_after_ms: None,
                    detail: error.to_string(),
                };
                let results =
                    claim.messages.iter().map(|message| (message.id, self.failure_result(message, &failure))).collect();
                return self.store.record_submissions(claim.token, results, self.clock.now());
            }
        };
        let capabilities = adapter.capabilities();
        let chunk_size = capabilities.max_batch.max(1) as usize;
        let mut recorded = Vec::with_capacity(claim.messages.len());
        for (index, chunk) in claim.messages.chunks(chunk_size).enumerate() {
            if index > 0 {
                // The earlier chunks may have outlived the lease, and the reaper may have
                // taken messages of this claim back (to `unknown`, where a lookup may
                // settle them as never accepted): sending one now could be an acceptance
                // nobody records. Only a renewal that still holds every unsent message
                // lets the claim go on; otherwise the rest is handed back unsent.
                let unsent = claim.messages.len() - index * chunk_size;
                let held = self.store.renew_lease(claim.token, self.config.lease_ms, self.clock.now())?;
                let lease_ignored = crate::incidents::active(crate::incidents::Bug::SendsAfterLeaseLost);
                if (held as usize) < unsent && !lease_ignored {
                    let failure = ProviderFailure {
                        code: LEASE_LOST.into(),
                        retryable: true,
                        retry_after_ms: None,
                        detail: format!("the lease held {held} of {unsent} unsent messages; not sent"),
                    };
                    let rest = &claim.messages[index * chunk_size..];
                    let results =
                        rest.iter().map(|message| (message.id, self.failure_result(message, &failure))).collect();
                    recorded.extend(self.store.record_submissions(claim.token, results, self.clock.now())?);
                    break;
                }
            }
            let outbound: Vec<OutboundMessage> = chunk.iter().map(outbound).collect();
            let outcomes = adapter.submit(&outbound).await;
            assert_eq!(
                outcomes.len(),
                chunk.len(),
                "adapter {} broke its contract: one outcome per message",
                adapter.kind()
            );
            let results = chunk
                .iter()
                .zip(outcomes)
                .map(|(message, outcome)| (message.id, self.result_of(message, outcome, capabilities.idempotency_keys)))
                .collect();
            recorded.extend(self.store.record_submissions(claim.token, results, self.clock.now())?);
        }
        Ok(recorded)
    }

    /// What to record for one adapter outcome.
    fn result_of(&mut self, message: &Message, outcome: SubmitOutcome, idempotent: bool) -> SubmissionResult {
        match outcome {
            SubmitOutcome::Accepted { provider_message_id, bulk_id } => {
                SubmissionResult::Accepted { provider_message_id, bulk_id }
            }
            SubmitOutcome::Failed(failure) => self.failure_result(message, &failure),
            SubmitOutcome::Ambiguous { detail } => {
                let error = MessageError { code: AMBIGUOUS.into(), retryable: idempotent, detail };
                if idempotent {
                    // The provider deduplicates by the message id we send as the key, so a
                    // resubmission cannot produce a second acceptance.
                    let failure = ProviderFailure {
                        code: AMBIGUOUS.into(),
                        retryable: true,
                        retry_after_ms: None,
                        detail: error.detail,
                    };
                    self.failure_result(message, &failure)
                } else {
                    SubmissionResult::Unknown { error }
                }
            }
        }
    }

    fn failure_result(&mut self, message: &Message, failure: &ProviderFailure) -> SubmissionResult {
        let error =
            MessageError { code: failure.code.clone(), retryable: failure.retryable, detail: failure.detail.clone() };
        if !failure.retryable {
            return SubmissionResult::Failed { error };
        }
        match self.config.retry.decide(message.attempts, failure.retry_after_ms, self.clock.now(), &mut self.rng) {
            RetryDecision::RetryAt(next_attempt_at) => SubmissionResult::Retry { error, next_attempt_at },
            RetryDecision::GiveUp => SubmissionResult::Failed { error },
        }
    }
}

/// The adapter's view of a claimed message.
pub fn outbound(message: &Message) -> OutboundMessage {
    OutboundMessage {
        id: message.id,
        destination: message.destination.clone(),
        sender: message.sender.clone(),
        body: message.body.clone(),
        status_callback_url: None,
    }
}
