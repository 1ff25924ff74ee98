//! Group commit of webhooks' delivery reports (serve mode's `ReportIngest::Grouped`) on
//! SQLite, through the HTTP API: groups form from the webhooks that wait while a
//! transaction commits, no webhook is answered 2xx before its transaction commits, a
//! failed group answers each member for itself, a store that is down answers 503, and
//! duplicates within one group come out as they do one webhook at a time.
//!
//! A wrapper store holds a transaction until the test lets it go, so that the groups
//! are decided by the test, not by timing.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use smsim_core::adapter::{HttpClient, HttpError, HttpRequest, HttpResponse};
use smsim_core::api::ingest::{GroupLimits, IngestCounts, ReportCommitter, ReportQueue};
use smsim_core::api::{router, ApiState, ReportIngest};
use smsim_core::clock::ManualClock;
use smsim_core::domain::records::{Audience, ProviderKind};
use smsim_core::domain::status::MessageStatus;
use smsim_core::money::Credits;
use smsim_core::service::Adapters;
use smsim_core::store::sqlite::SqliteStore;
use smsim_core::store::{
    ClaimOutcome, ClaimRequest, InboundReport, NewCampaign, NewContact, NewTenant, NewTrafficAccount, ReportOutcome,
    Store, StoreError, StoreResult, SubmissionResult,
};
use smsim_core::{CampaignId, TenantId, Timestamp, TrafficAccountId};
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tower::ServiceExt;

const T0: Timestamp = Timestamp(1_700_000_000_000);

struct NoNetwork;

#[async_trait::async_trait]
impl HttpClient for NoNetwork {
    async fn send(&self, _: HttpRequest) -> Result<HttpResponse, HttpError> {
        Err(HttpError::Connect("no network in this test".into()))
    }
}

/// What a held transaction does when the test lets it go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Release {
    /// Goes on and commits.
    Commit,
    /// Fails (as a commit can), applying nothing.
    Fail,
}

/// SQLite with switches on `apply_reports`: record each call's reports, hold the next
/// call until released, fail every call (the store is down), or fail any call that
/// carries one poisoned report (rolled back whole, as a real transaction is). Like the
/// SQLite store's own connection, one lock is held through every call, a held one too:
/// a webhook that read the store while a group commits would wait for it.
struct GatedStore {
    inner: SqliteStore,
    lock: Mutex<()>,
    calls: Mutex<Vec<Vec<String>>>,
    hold: Mutex<Option<(mpsc::Sender<()>, mpsc::Receiver<Release>)>>,
    down: Mutex<bool>,
    poisoned: Mutex<Option<String>>,
}

/// The test's end of a held transaction.
struct Held {
    entered: mpsc::Receiver<()>,
    release: mpsc::Sender<Release>,
}

impl Held {
    /// Waits until the held transaction has begun.
    async fn entered(self) -> mpsc::Sender<Release> {
        let Held { entered, release } = self;
        tokio::task::spawn_blocking(move || entered.recv()).await.unwrap().expect("the transaction began");
        release
    }
}

impl GatedStore {
    fn new() -> GatedStore {
        GatedStore {
            inner: SqliteStore::open_in_memory().unwrap(),
            lock: Mutex::default(),
            calls: Mutex::default(),
            hold: Mutex::default(),
            down: Mutex::default(),
            poisoned: Mutex::default(),
        }
    }

    /// Holds the next `apply_reports` call until released.
    fn hold_next(&self) -> Held {
        let (entered_sender, entered) = mpsc::channel();
        let (release, release_receiver) = mpsc::channel();
        *self.hold.lock().unwrap() = Some((entered_sender, release_receiver));
        Held { entered, release }
    }

    /// The provider ids of the reports of each `apply_reports` call so far.
    fn calls(&self) -> Vec<Vec<String>> {
        self.calls.lock().unwrap().clone()
    }
}

/// Every call holds the store's one lock; `apply_reports` is the committer's, recorded,
/// held, failed or poisoned on the test's command.
macro_rules! gated {
    ($($access:ident $name:ident($($arg:ident: $type:ty),*) -> $answer:ty;)*) => {
        impl Store for GatedStore {
            $(fn $name(&self, $($arg: $type),*) -> StoreResult<$answer> {
                let _lock = self.lock.lock().unwrap();
                self.inner.$name($($arg),*)
            })*

            fn apply_reports(&self, reports: Vec<InboundReport>, now: Timestamp) -> StoreResult<Vec<ReportOutcome>> {
                let _lock = self.lock.lock().unwrap();
                let ids: Vec<String> = reports.iter().map(|report| report.provider_message_id.clone()).collect();
                self.calls.lock().unwrap().push(ids.clone());
                let hold = self.hold.lock().unwrap().take();
                if let Some((entered, release)) = hold {
                    entered.send(()).unwrap();
                    if release.recv().unwrap() == Release::Fail {
                        return Err(StoreError::Transient("the commit failed".into()));
                    }
                }
                if *self.down.lock().unwrap() {
                    return Err(StoreError::Transient("database is locked".into()));
                }
                if self.poisoned.lock().unwrap().as_ref().is_some_and(|poisoned| ids.contains(poisoned)) {
                    return Err(StoreError::Backend("a report this store cannot apply".into()));
                }
                self.inner.apply_reports(reports, now)
            }
        }
    };
}

smsim_core::store_methods!(gated);

/// A tenant whose campaign of `messages` messages was accepted by a Mitto-style
/// provider (ids `p-0`, `p-1`, …), behind the API with the given way of ingesting.
struct Fixture {
    store: Arc<GatedStore>,
    queue: Option<ReportQueue>,
    app: axum::Router,
    tenant: TenantId,
    campaign: CampaignId,
    account: TrafficAccountId,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ingest {
    Inline,
    Grouped,
}

fn fixture(messages: u32, ingest: Ingest) -> Fixture {
    let store = Arc::new(GatedStore::new());
    let tenant = store
        .create_tenant(
            NewTenant {
                name: "acme".into(),
                api_key_hash: "0".repeat(64),
                credits: Credits(10_000),
                rate_limit_per_s: None,
            },
            T0,
        )
        .unwrap();
    let credentials = [("api_key", "k"), ("traffic_account_id", "ta-1"), ("webhook_token", "hook")]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    let account = store
        .create_traffic_account(NewTrafficAccount {
            owner: None,
            name: "mitto".into(),
            provider: ProviderKind::Mitto,
            base_url: "http://provider".into(),
            credentials,
            sender: "SMSIM".into(),
            rate_limit_per_s: None,
            price_per_segment: Credits(55),
            idempotent_submissions: false,
        })
        .unwrap();
    let contacts = (0..messages)
        .map(|n| NewContact { phone: format!("+3069123{n:05}"), attributes: BTreeMap::new(), opted_out: false })
        .collect();
    store.import_contacts(tenant.id, contacts, T0).unwrap();
    let new = NewCampaign {
        name: "spring".into(),
        body_template: "Spring sale".into(),
        sender: None,
        audience: Audience::All,
        traffic_account: account.id,
        schedule_at: None,
    };
    let campaign = store.create_campaign(tenant.id, new, T0).unwrap();
    store.enqueue(tenant.id, campaign.id, None, T0).unwrap();
    let request = ClaimRequest {
        worker: "w".into(),
        traffic_account: None,
        max_messages: messages,
        lease_ms: 10_000,
        burst: Default::default(),
    };
    let ClaimOutcome::Claimed(claim) = store.claim(request, T0).unwrap() else { panic!("nothing to claim") };
    let results = claim
        .messages
        .iter()
        .map(|message| {
            let n: u32 = message.destination[8..].parse().unwrap();
            (message.id, SubmissionResult::Accepted { provider_message_id: format!("p-{n}"), bulk_id: None })
        })
        .collect();
    store.record_submissions(claim.token, results, T0).unwrap();

    let clock = Arc::new(ManualClock::new(T0));
    let adapters = Arc::new(Adapters::builtin(Arc::new(NoNetwork), "https://sms.example.com"));
    let mut state = ApiState::new(
        store.clone(),
        clock.clone(),
        adapters,
        None,
        "https://sms.example.com",
        rand::SeedableRng::seed_from_u64(1),
    );
    let queue = (ingest == Ingest::Grouped).then(|| {
        let (queue, committer) = ReportCommitter::new(store.clone(), clock, GroupLimits::default());
        tokio::spawn(committer.run());
        state.report_ingest = ReportIngest::Grouped(queue.clone());
        queue
    });
    Fixture {
        store,
        queue,
        app: router(Arc::new(state)),
        tenant: tenant.id,
        campaign: campaign.id,
        account: account.id,
    }
}

/// A Mitto report that message `n` was delivered.
fn delivered(n: u32) -> Value {
    json!({"messageId": format!("p-{n}"), "deliveryStatus": "Delivered"})
}

impl Fixture {
    /// Posts `reports` (one report object or an array) to the account's webhook, as a
    /// task of its own; the task's answer is the status and body.
    fn post(&self, reports: Value) -> JoinHandle<(StatusCode, Value)> {
        let request = Request::builder()
            .method("POST")
            .uri(format!("/v1/webhooks/mitto/{}?token=hook", self.account))
            .header("content-type", "application/json")
            .body(Body::from(reports.to_string()))
            .unwrap();
        let app = self.app.clone();
        tokio::spawn(async move {
            let response = app.oneshot(request).await.unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
        })
    }

    fn queue(&self) -> &ReportQueue {
        self.queue.as_ref().expect("a grouped fixture")
    }

    /// Posts `reports` and waits until the webhook is queued behind those before it, so
    /// that the queue's order is the order of the calls.
    async fn post_queued(&self, reports: Value) -> JoinHandle<(StatusCode, Value)> {
        let before = self.queue().queued_webhooks();
        let answer = self.post(reports);
        until("the webhook is queued", || self.queue().queued_webhooks() > before).await;
        answer
    }

    /// Message `n`'s status, read past the wrapper's lock (so also while it is held).
    fn status(&self, n: u32) -> MessageStatus {
        let messages = self.store.inner.messages(self.campaign).unwrap();
        let id = format!("p-{n}");
        messages.iter().find(|m| m.provider_message_id.as_deref() == Some(id.as_str())).unwrap().status
    }

    /// The campaign, the tenant and every message, for "same state" comparisons.
    fn state(&self) -> String {
        format!(
            "{:?}\n{:?}\n{:?}",
            self.store.inner.campaign(self.tenant, self.campaign).unwrap(),
            self.store.inner.tenant(self.tenant).unwrap(),
            self.store.inner.messages(self.campaign).unwrap()
        )
    }
}

/// Waits for `condition`, polling; a condition that never comes ends the test instead of
/// hanging it (this is not a timing assertion: the wait is orders of magnitude longer
/// than the condition takes).
async fn until(what: &str, condition: impl Fn() -> bool) {
    for _ in 0..30_000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("never happened: {what}");
}

async fn answers(handles: Vec<JoinHandle<(StatusCode, Value)>>) -> Vec<(StatusCode, Value)> {
    let mut answers = Vec::new();
    for handle in handles {
        answers.push(handle.await.unwrap());
    }
    answers
}

fn applied(n: u64) -> (StatusCode, Value) {
    (StatusCode::OK, json!({"applied": n, "duplicates": 0, "ignored": 0, "parked": 0, "unrecognized": 0}))
}

fn error(status: StatusCode, code: &str) -> impl Fn(&(StatusCode, Value)) -> bool + '_ {
    move |(answered, body)| *answered == status && body["error"]["code"] == code
}

fn ids(calls: &[&[u32]]) -> Vec<Vec<String>> {
    calls.iter().map(|call| call.iter().map(|n| format!("p-{n}")).collect()).collect()
}

/// The webhooks that arrive while a group commits — holding the store's lock — are
/// parsed and queued meanwhile (none reads the store), and form the next group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_waiting_while_a_transaction_commits_are_committed_together() {
    let fixture = fixture(6, Ingest::Grouped);
    let held = fixture.store.hold_next();
    let first = fixture.post(delivered(0));
    let release = held.entered().await;
    let mut waiting = Vec::new();
    for n in 1..=4 {
        waiting.push(fixture.post_queued(delivered(n)).await);
    }
    assert!(!first.is_finished(), "a webhook was answered while its transaction was held");
    assert_eq!(fixture.status(0), MessageStatus::Accepted);
    release.send(Release::Commit).unwrap();

    assert_eq!(first.await.unwrap(), applied(1));
    assert_eq!(answers(waiting).await, vec![applied(1); 4]);
    assert_eq!(fixture.store.calls(), ids(&[&[0], &[1, 2, 3, 4]]), "the four waiting webhooks shared one transaction");
    assert_eq!(fixture.queue().counts(), IngestCounts { groups: 2, webhooks: 5, reports: 5, groups_split: 0 });
    assert_eq!((0..6).map(|n| fixture.status(n)).collect::<Vec<_>>(), {
        let mut expected = vec![MessageStatus::Delivered; 5];
        expected.push(MessageStatus::Accepted);
        expected
    });

    // One at a time, each webhook is a group of its own.
    assert_eq!(fixture.post(delivered(5)).await.unwrap(), applied(1));
    assert_eq!(fixture.store.calls().last(), Some(&vec!["p-5".to_owned()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_webhook_is_acknowledged_before_its_transaction_commits_and_a_bad_member_fails_alone() {
    let fixture = fixture(4, Ingest::Grouped);
    *fixture.store.poisoned.lock().unwrap() = Some("p-2".into());
    let held = fixture.store.hold_next();
    let first = fixture.post(delivered(0));
    let release = held.entered().await;
    let group = vec![
        fixture.post_queued(delivered(1)).await,
        fixture.post_queued(delivered(2)).await,
        fixture.post_queued(delivered(3)).await,
    ];
    assert!(!first.is_finished(), "a webhook was answered while its transaction was held");
    release.send(Release::Fail).unwrap();

    let answer = first.await.unwrap();
    assert!(error(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE")(&answer), "a failed commit is a 503: {answer:?}");
    let group = answers(group).await;
    assert_eq!(group[0], applied(1));
    assert!(error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL")(&group[1]), "{:?}", group[1]);
    assert_eq!(group[2], applied(1));
    assert_eq!(
        fixture.store.calls(),
        ids(&[&[0], &[1, 2, 3], &[1], &[2], &[3]]),
        "the failed group was applied again member by member"
    );
    assert_eq!(fixture.queue().counts().groups_split, 1);
    let statuses: Vec<MessageStatus> = (0..4).map(|n| fixture.status(n)).collect();
    use MessageStatus::{Accepted, Delivered};
    assert_eq!(statuses, [Accepted, Delivered, Accepted, Delivered], "only what was acknowledged was applied");
    let campaign = fixture.store.campaign(fixture.tenant, fixture.campaign).unwrap();
    assert_eq!(campaign.counts.delivered, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_is_down_answers_every_member_503_after_one_retry() {
    let fixture = fixture(4, Ingest::Grouped);
    let held = fixture.store.hold_next();
    let first = fixture.post(delivered(0));
    let release = held.entered().await;
    let group = vec![
        fixture.post_queued(delivered(1)).await,
        fixture.post_queued(delivered(2)).await,
        fixture.post_queued(delivered(3)).await,
    ];
    *fixture.store.down.lock().unwrap() = true;
    release.send(Release::Commit).unwrap();

    let unavailable = error(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE");
    let answer = first.await.unwrap();
    assert!(unavailable(&answer), "{answer:?}");
    for answer in answers(group).await {
        assert!(unavailable(&answer), "the provider must retry: {answer:?}");
    }
    assert_eq!(
        fixture.store.calls(),
        ids(&[&[0], &[1, 2, 3], &[1]]),
        "after the first member's retry failed too, the rest were not tried one by one"
    );
    assert!((0..4).all(|n| fixture.status(n) == MessageStatus::Accepted));

    *fixture.store.down.lock().unwrap() = false;
    assert_eq!(fixture.post(delivered(2)).await.unwrap(), applied(1), "a retry after the outage is applied");
}

/// Duplicates within one transaction see each other, as they do one transaction apart:
/// the same answers, counters and ledger as the same webhooks applied one by one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_within_a_group_are_duplicates_as_one_by_one() {
    let webhooks = [
        delivered(1),
        delivered(1),
        json!([delivered(2), delivered(2), {"messageId": "p-2", "deliveryStatus": "Sent"}]),
        delivered(0),
    ];
    let inline = fixture(3, Ingest::Inline);
    let mut one_by_one = vec![inline.post(delivered(0)).await.unwrap()];
    for webhook in &webhooks {
        one_by_one.push(inline.post(webhook.clone()).await.unwrap());
    }

    let grouped = fixture(3, Ingest::Grouped);
    let held = grouped.store.hold_next();
    let first = grouped.post(delivered(0));
    let release = held.entered().await;
    let mut waiting = vec![first];
    for webhook in &webhooks {
        waiting.push(grouped.post_queued(webhook.clone()).await);
    }
    release.send(Release::Commit).unwrap();
    let together = answers(waiting).await;

    assert_eq!(grouped.store.calls(), ids(&[&[0], &[1, 1, 2, 2, 2, 0]]), "the duplicates shared one transaction");
    assert_eq!(together, one_by_one);
    let summary = |applied: u64, duplicates: u64, ignored: u64| {
        (
            StatusCode::OK,
            json!({"applied": applied, "duplicates": duplicates, "ignored": ignored, "parked": 0, "unrecognized": 0}),
        )
    };
    assert_eq!(together, [summary(1, 0, 0), summary(1, 0, 0), summary(0, 1, 0), summary(1, 1, 1), summary(0, 1, 0)]);
    assert_eq!(grouped.state(), inline.state(), "counters, ledger and messages as one by one");
    let campaign = grouped.store.campaign(grouped.tenant, grouped.campaign).unwrap();
    let tenant = grouped.store.tenant(grouped.tenant).unwrap();
    assert_eq!((campaign.counts.delivered, tenant.charged), (3, Credits(3 * 55)));
}
