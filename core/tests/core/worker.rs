//! The worker and maintenance services against a scripted adapter.
//!
//! The adapter here plays a provider whose answer per message is chosen by the test, and
//! counts every submission it receives: the at-most-once argument is checked against
//! that count, not against what the engine believes.

use smsim_core::adapter::{
    AdapterConfigError, Capabilities, HttpClient, HttpError, HttpRequest, HttpResponse, LookupOutcome, OutboundMessage,
    ParsedReport, ProviderAdapter, ProviderFailure, SignatureScheme, SubmitOutcome, WebhookError, WebhookRequest,
};
use smsim_core::clock::{Clock, ManualClock};
use smsim_core::domain::{MessageStatus, ProviderKind, TrafficAccount, UNKNOWN_OUTCOME};
use smsim_core::service::maintenance::Maintenance;
use smsim_core::service::worker::{Step, Worker, AMBIGUOUS};
use smsim_core::service::{AdapterFactory, Adapters, EngineConfig};
use smsim_core::store::memory::MemoryStore;
use smsim_core::store::*;
use smsim_core::{Credits, MessageId, Timestamp};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

const T0: Timestamp = Timestamp(1_700_000_000_000);

/// What the scripted provider answers for a destination.
#[derive(Clone, Debug)]
enum Answer {
    Accept,
    Refuse { code: &'static str, retryable: bool },
    AcceptButLoseReply,
}

#[derive(Debug, Default)]
struct Script {
    answers: BTreeMap<String, Answer>,
    /// Submissions received per message, accepted or not.
    received: BTreeMap<MessageId, u32>,
    /// Messages the provider accepted (ground truth).
    accepted: BTreeMap<MessageId, String>,
    batches: Vec<usize>,
}

#[derive(Debug)]
struct ScriptedAdapter {
    script: Arc<Mutex<Script>>,
    capabilities: Capabilities,
}

#[async_trait::async_trait]
impl ProviderAdapter for ScriptedAdapter {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Mitto
    }
    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }
    async fn submit(&self, batch: &[OutboundMessage]) -> Vec<SubmitOutcome> {
        let mut script = self.script.lock().unwrap();
        script.batches.push(batch.len());
        batch
            .iter()
            .map(|message| {
                *script.received.entry(message.id).or_default() += 1;
                let answer = script.answers.get(&message.destination).cloned().unwrap_or(Answer::Accept);
                let provider_id = format!("p-{}", message.id);
                match answer {
                    Answer::Accept => {
                        script.accepted.insert(message.id, provider_id.clone());
                        SubmitOutcome::Accepted { provider_message_id: provider_id, bulk_id: None }
                    }
                    Answer::Refuse { code, retryable } => SubmitOutcome::Failed(ProviderFailure {
                        code: code.into(),
                        retryable,
                        retry_after_ms: None,
                        detail: code.into(),
                    }),
                    Answer::AcceptButLoseReply => {
                        script.accepted.insert(message.id, provider_id);
                        SubmitOutcome::Ambiguous { detail: "connection reset after the request was sent".into() }
                    }
                }
            })
            .collect()
    }
    async fn lookup(&self, message: &OutboundMessage) -> LookupOutcome {
        match self.script.lock().unwrap().accepted.get(&message.id) {
            Some(id) => LookupOutcome::Accepted { provider_message_id: id.clone(), status: None, error_code: None },
            None => LookupOutcome::NotFound,
        }
    }
    fn parse_webhook(&self, _request: &WebhookRequest) -> Result<Vec<ParsedReport>, WebhookError> {
        Err(WebhookError::MissingSignature)
    }
}

struct ScriptedFactory {
    script: Arc<Mutex<Script>>,
    capabilities: Capabilities,
}

impl AdapterFactory for ScriptedFactory {
    fn build(
        &self,
        _: &TrafficAccount,
        _: Arc<dyn HttpClient>,
        _: &str,
    ) -> Result<Arc<dyn ProviderAdapter>, AdapterConfigError> {
        Ok(Arc::new(ScriptedAdapter { script: self.script.clone(), capabilities: self.capabilities }))
    }
}

struct NoNetwork;

#[async_trait::async_trait]
impl HttpClient for NoNetwork {
    async fn send(&self, _: HttpRequest) -> Result<HttpResponse, HttpError> {
        Err(HttpError::Connect("no network in this test".into()))
    }
}

struct World {
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
    script: Arc<Mutex<Script>>,
    adapters: Arc<Adapters>,
    config: EngineConfig,
    campaign: smsim_core::CampaignId,
    tenant: smsim_core::TenantId,
}

fn phone(n: u32) -> String {
    format!("+3069123{n:05}")
}

fn world(contacts: u32, capabilities: Capabilities, answers: &[(u32, Answer)]) -> World {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(T0));
    let tenant = store
        .create_tenant(
            NewTenant {
                name: "acme".into(),
                api_key_hash: "k".into(),
                credits: Credits(100_000),
                rate_limit_per_s: None,
            },
            T0,
        )
        .unwrap();
    let account = store
        .create_traffic_account(NewTrafficAccount {
            owner: None,
            name: "scripted".into(),
            provider: ProviderKind::Mitto,
            base_url: "http://provider".into(),
            credentials: BTreeMap::new(),
            sender: "SMSIM".into(),
            rate_limit_per_s: None,
            price_per_segment: Credits(10),
            idempotent_submissions: capabilities.idempotency_keys,
        })
        .unwrap();
    let rows = (0..contacts).map(|n| NewContact { phone: phone(n), ..NewContact::default() }).collect();
    store.import_contacts(tenant.id, rows, T0).unwrap();
    let campaign = store
        .create_campaign(
            tenant.id,
            NewCampaign {
                name: "c".into(),
                body_template: "hello".into(),
                sender: None,
                audience: smsim_core::domain::Audience::All,
                traffic_account: account.id,
                schedule_at: None,
            },
            T0,
        )
        .unwrap();
    store.enqueue(tenant.id, campaign.id, None, T0).unwrap();
    let script = Arc::new(Mutex::new(Script {
        answers: answers.iter().map(|(n, answer)| (phone(*n), answer.clone())).collect(),
        ..Script::default()
    }));
    let factory = Arc::new(ScriptedFactory { script: script.clone(), capabilities });
    let adapters = Arc::new(Adapters::new(factory, Arc::new(NoNetwork), "http://engine"));
    let config = EngineConfig {
        lease_ms: 10_000,
        unknown_settle_after_ms: 60_000,
        lookup_grace_ms: 0,
        ..EngineConfig::default()
    };
    World { store, clock, script, adapters, config, campaign: campaign.id, tenant: tenant.id }
}

impl World {
    fn worker(&self, name: &str) -> Worker {
        Worker::new(name, self.store.clone(), self.clock.clone(), self.adapters.clone(), self.config.clone(), 7)
    }
    fn maintenance(&self) -> Maintenance {
        Maintenance::new(self.store.clone(), self.clock.clone(), self.adapters.clone(), self.config.clone())
    }
    fn status(&self, contact: u64) -> MessageStatus {
        self.store.message(MessageId::new(self.campaign, smsim_core::ContactId(contact + 1))).unwrap().status
    }
    fn received(&self) -> Vec<u32> {
        self.script.lock().unwrap().received.values().copied().collect()
    }
}

const BULK: Capabilities = Capabilities {
    max_batch: 200,
    idempotency_keys: false,
    status_lookup: false,
    signature: SignatureScheme::UrlToken,
};

#[tokio::test]
async fn a_batch_is_claimed_submitted_and_recorded() {
    let w = world(5, BULK, &[]);
    let step = w.worker("worker-1").step().await;
    let Step::Worked { claimed, recorded, .. } = step else { panic!("no work done: {step:?}") };
    assert_eq!(claimed, 5);
    assert!(recorded.iter().all(|r| matches!(r, RecordOutcome::Recorded { status: MessageStatus::Accepted, .. })));
    let campaign = w.store.campaign(w.tenant, w.campaign).unwrap();
    assert_eq!((campaign.counts.sent(), campaign.status.as_str()), (5, "completed"));
    assert_eq!(w.store.tenant(w.tenant).unwrap().charged, Credits(50));
    assert_eq!(w.received(), vec![1; 5]);
    assert!(matches!(w.worker("worker-1").step().await, Step::Idle { .. }));
}

#[tokio::test]
async fn a_claim_larger_than_the_adapter_batch_is_submitted_in_chunks() {
    let w = world(5, Capabilities { max_batch: 2, ..BULK }, &[]);
    w.worker("worker-1").step().await;
    assert_eq!(w.script.lock().unwrap().batches, vec![2, 2, 1]);
    assert_eq!(w.store.campaign(w.tenant, w.campaign).unwrap().counts.sent(), 5);
}

#[tokio::test]
async fn a_lost_answer_becomes_unknown_and_is_never_resent() {
    let w = world(2, BULK, &[(1, Answer::AcceptButLoseReply)]);
    w.worker("worker-1").step().await;
    assert_eq!((w.status(0), w.status(1)), (MessageStatus::Accepted, MessageStatus::Unknown));
    let message = w.store.message(MessageId::new(w.campaign, smsim_core::ContactId(2))).unwrap();
    assert_eq!(message.last_error.map(|e| e.code), Some(AMBIGUOUS.to_owned()));
    // Time passes; the worker finds nothing to resend; maintenance settles it, charged.
    w.clock.advance_ms(60_000);
    assert!(matches!(w.worker("worker-2").step().await, Step::Idle { .. }));
    let pass = w.maintenance().pass().await.unwrap();
    assert_eq!(pass.settled, 1);
    let message = w.store.message(MessageId::new(w.campaign, smsim_core::ContactId(2))).unwrap();
    assert_eq!(
        (message.status, message.last_error.map(|e| e.code)),
        (MessageStatus::Failed, Some(UNKNOWN_OUTCOME.to_owned()))
    );
    assert_eq!(
        w.store.tenant(w.tenant).unwrap().charged,
        Credits(20),
        "the provider may have sent it: it stays charged"
    );
    assert_eq!(w.received(), vec![1, 1], "at most one submission per message");
}

/// A report for a provider id the engine never learned (its bulk answer was lost) waits
/// parked for the retention, then maintenance removes it and counts it; until then a
/// pass leaves it. The first pass only notes the time; later ones check every sixteenth of
/// the retention.
#[tokio::test]
async fn maintenance_expires_parked_reports_after_the_retention_and_counts_them() {
    let w = world(1, BULK, &[]);
    let account = w.store.campaign(w.tenant, w.campaign).unwrap().traffic_account;
    let lost = InboundReport {
        traffic_account: account,
        provider_message_id: "never-learned".into(),
        message_ref: None,
        status: smsim_core::domain::ReportStatus::Delivered,
        error_code: None,
    };
    assert_eq!(w.store.apply_report(lost, w.clock.now()).unwrap(), ReportOutcome::Parked);
    let maintenance = w.maintenance().with_parked_retention_ms(16_000);
    let stats = || w.store.queue_stats(None, w.clock.now()).unwrap();
    assert_eq!(maintenance.pass().await.unwrap().expired_parked, 0, "the first pass notes the time");
    w.clock.advance_ms(15_999);
    assert_eq!(maintenance.pass().await.unwrap().expired_parked, 0, "younger than the retention");
    assert_eq!((stats().parked_reports, stats().parked_reports_expired), (1, Some(0)));
    // Checked every sixteenth of the retention: the next check, past the retention, takes it.
    w.clock.advance_ms(500);
    assert_eq!(maintenance.pass().await.unwrap().expired_parked, 0, "not yet time to check again");
    w.clock.advance_ms(500);
    assert_eq!(maintenance.pass().await.unwrap().expired_parked, 1);
    assert_eq!((stats().parked_reports, stats().parked_reports_expired), (0, Some(1)));
}

#[tokio::test]
async fn a_lost_answer_is_resubmitted_with_the_same_key_when_the_provider_deduplicates() {
    let w = world(1, Capabilities { idempotency_keys: true, ..BULK }, &[(0, Answer::AcceptButLoseReply)]);
    w.worker("worker-1").step().await;
    assert_eq!(w.status(0), MessageStatus::Queued);
    w.script.lock().unwrap().answers.clear();
    w.clock.advance_ms(10_000);
    w.worker("worker-1").step().await;
    assert_eq!(w.status(0), MessageStatus::Accepted);
}

#[tokio::test]
async fn retryable_failures_back_off_then_give_up() {
    let w = world(1, BULK, &[(0, Answer::Refuse { code: "HTTP_503", retryable: true })]);
    let mut worker = w.worker("worker-1");
    let mut attempts = 0;
    for _ in 0..20 {
        if let Step::Worked { .. } = worker.step().await {
            attempts += 1;
        }
        w.clock.advance_ms(400_000);
    }
    assert_eq!(attempts, 5, "the default policy makes five attempts");
    assert_eq!(w.status(0), MessageStatus::Failed);
    assert_eq!(w.store.tenant(w.tenant).unwrap().reserved, Credits(0));
    assert_eq!(w.store.tenant(w.tenant).unwrap().charged, Credits(0));
}

#[tokio::test]
async fn a_retry_is_not_claimed_before_its_backoff() {
    let w = world(1, BULK, &[(0, Answer::Refuse { code: "HTTP_429", retryable: true })]);
    let mut worker = w.worker("worker-1");
    worker.step().await;
    let due = w.store.message(MessageId::new(w.campaign, smsim_core::ContactId(1))).unwrap().next_attempt_at;
    assert!(due.ms_since(T0) >= 2_400 && due.ms_since(T0) <= 3_600, "3 s ± 20% jitter, got {}", due.ms_since(T0));
    assert!(matches!(worker.step().await, Step::Idle { .. }));
    w.clock.set(due);
    assert!(matches!(worker.step().await, Step::Worked { .. }));
}

#[tokio::test]
async fn permanent_failures_fail_at_once_and_release_credits() {
    let w = world(2, BULK, &[(0, Answer::Refuse { code: "INVALID_NUMBER", retryable: false })]);
    w.worker("worker-1").step().await;
    assert_eq!(w.status(0), MessageStatus::Failed);
    let failures = w.store.failures_by_code(w.tenant, w.campaign).unwrap();
    assert_eq!(failures, BTreeMap::from([("INVALID_NUMBER".to_owned(), 1)]));
    let books = w.store.tenant(w.tenant).unwrap();
    assert_eq!((books.reserved, books.charged), (Credits(0), Credits(10)));
}

/// Incident 000/001: a worker crashed after the provider accepted a batch and before the
/// store commit. The reaper must not hand the batch to another worker to send again.
#[tokio::test]
async fn a_crash_between_accept_and_commit_does_not_resend() {
    let w = world(3, BULK, &[]);
    // The crashed worker: claims and submits, never records.
    let claim = match w.store.claim(
        ClaimRequest {
            worker: "worker-1".into(),
            traffic_account: None,
            max_messages: 10,
            lease_ms: w.config.lease_ms,
            burst: Default::default(),
        },
        w.clock.now(),
    ) {
        Ok(ClaimOutcome::Claimed(claim)) => claim,
        other => panic!("{other:?}"),
    };
    let adapter = w.adapters.for_account(&w.store.traffic_account(claim.traffic_account).unwrap()).unwrap();
    let outbound: Vec<_> = claim.messages.iter().map(smsim_core::service::worker::outbound).collect();
    adapter.submit(&outbound).await;
    // Lease expires; maintenance reaps; another worker runs.
    w.clock.advance_ms(w.config.lease_ms);
    let pass = w.maintenance().pass().await.unwrap();
    assert_eq!(pass.reaped.unknown.len(), 3);
    assert!(matches!(w.worker("worker-2").step().await, Step::Idle { .. }));
    assert_eq!(w.received(), vec![1, 1, 1], "never a blind resend");
    assert_eq!(w.status(0), MessageStatus::Unknown);
}

#[tokio::test]
async fn status_lookup_resolves_unknown_messages() {
    let w = world(2, Capabilities { status_lookup: true, ..BULK }, &[(0, Answer::AcceptButLoseReply)]);
    w.worker("worker-1").step().await;
    assert_eq!(w.status(0), MessageStatus::Unknown);
    let pass = w.maintenance().pass().await.unwrap();
    assert_eq!(pass.resolved, 1);
    assert_eq!(w.status(0), MessageStatus::Accepted);
    assert_eq!(w.store.campaign(w.tenant, w.campaign).unwrap().status.as_str(), "completed");
}

#[tokio::test]
async fn the_scheduler_starts_scheduled_campaigns() {
    let w = world(1, BULK, &[]);
    let account = w.store.traffic_accounts().unwrap()[0].id;
    let later = w
        .store
        .create_campaign(
            w.tenant,
            NewCampaign {
                name: "later".into(),
                body_template: "hi".into(),
                sender: None,
                audience: smsim_core::domain::Audience::All,
                traffic_account: account,
                schedule_at: Some(T0.plus_ms(5_000)),
            },
            T0,
        )
        .unwrap();
    w.store.enqueue(w.tenant, later.id, None, T0).unwrap();
    assert_eq!(w.maintenance().pass().await.unwrap().started, 0);
    w.clock.advance_ms(5_000);
    assert_eq!(w.maintenance().pass().await.unwrap().started, 1);
}
