//! The world every hostile property runs in: an API over a store with tenants, accounts,
//! contacts and campaigns in every state a route cares about; a request sender that
//! never reads a server-sent event stream to its end; and the one oracle.

use axum::body::Body;
use axum::http::{HeaderValue, Request};
use http_body_util::BodyExt;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::{json, Value};
use smsim_core::adapter::{HttpClient, HttpError, HttpRequest, HttpResponse};
use smsim_core::api::{router, ApiState};
use smsim_core::clock::ManualClock;
use smsim_core::service::Adapters;
use smsim_core::store::memory::MemoryStore;
use smsim_core::store::sqlite::SqliteStore;
use smsim_core::store::{ClaimOutcome, ClaimRequest, Store, SubmissionResult};
use smsim_core::Timestamp;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

/// The admin bearer token of every fixture.
pub const ADMIN: &str = "admin-secret";
/// The fixture's (frozen) time.
pub const T0: Timestamp = Timestamp(1_700_000_000_000);
/// The URL providers are told to call back; Twilio signatures cover it.
pub const PUBLIC_URL: &str = "https://sms.example.com";
/// The webhook token of the Mitto and Infobip accounts.
pub const WEBHOOK_TOKEN: &str = "hook";
/// The Twilio account's auth token.
pub const TWILIO_AUTH_TOKEN: &str = "tok";

/// Every error the HTTP API's error table lists (`docs/src/reference/http-api.md`), with its
/// status. `UNAVAILABLE` (503) and `INTERNAL` (500) are left out on purpose: these stores
/// have no passing failures, so a 5xx here is a bug.
pub const ERROR_TABLE: &[(u16, &str)] = &[
    (400, "INVALID_JSON"),
    (400, "VALIDATION"),
    (400, "INVALID_WEBHOOK"),
    (400, "INVALID_BODY"),
    (401, "UNAUTHORIZED"),
    (401, "BAD_SIGNATURE"),
    (402, "INSUFFICIENT_CREDITS"),
    (403, "FORBIDDEN"),
    (403, "ADMIN_DISABLED"),
    (404, "NOT_FOUND"),
    (405, "METHOD_NOT_ALLOWED"),
    (409, "ILLEGAL_TRANSITION"),
    (409, "CONFLICT"),
    (413, "PAYLOAD_TOO_LARGE"),
    (415, "UNSUPPORTED_MEDIA_TYPE"),
    (422, "IDEMPOTENCY_KEY_REUSED"),
    (429, "RATE_LIMITED"),
];

struct NoNetwork;

#[async_trait::async_trait]
impl HttpClient for NoNetwork {
    async fn send(&self, _: HttpRequest) -> Result<HttpResponse, HttpError> {
        Err(HttpError::Connect("no network in hostile-input tests".into()))
    }
}

/// Which store an API runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// [`MemoryStore`].
    Memory,
    /// [`SqliteStore`], in memory.
    Sqlite,
}

/// Both backends, for tests that run over each.
pub const BACKENDS: [Backend; 2] = [Backend::Memory, Backend::Sqlite];

/// One tenant of the fixture and what it owns.
#[derive(Clone, Debug)]
pub struct TenantIds {
    /// `ten_N`.
    pub id: String,
    /// Its API key.
    pub key: String,
    /// A draft campaign.
    pub draft: String,
    /// A campaign that was enqueued (sending, its messages accepted by the provider).
    pub sending: String,
}

/// The traffic accounts of the fixture (platform accounts, usable by every tenant).
#[derive(Clone, Debug)]
pub struct AccountIds {
    /// A Mitto account (`?token=hook`).
    pub mitto: String,
    /// A Twilio account (auth token `tok`).
    pub twilio: String,
    /// An Infobip account (`?token=hook`).
    pub infobip: String,
}

/// An API in-process over one store, with its fixture records.
pub struct World {
    /// The store under the API.
    pub store: Arc<dyn Store>,
    /// The router, driven with `oneshot`.
    pub app: axum::Router,
    /// The tenants (at least three).
    pub tenants: Vec<TenantIds>,
    /// The accounts.
    pub accounts: AccountIds,
}

/// What the API answered.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// The body as JSON (`Null` when it is not JSON or was not read).
    pub body: Value,
    /// The body as text (empty for an event stream, which is never read to its end).
    pub text: String,
}

impl Reply {
    /// `error.code`, or "".
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// A request as the properties build it: raw bytes wherever HTTP allows them.
#[derive(Clone, Debug)]
pub struct RawRequest {
    /// Method.
    pub method: String,
    /// Path and query, already percent-encoded.
    pub uri: String,
    /// Headers; values are raw bytes (those HTTP forbids are dropped by [`header_value`]).
    pub headers: Vec<(&'static str, Vec<u8>)>,
    /// Body.
    pub body: Vec<u8>,
}

/// A header value from raw bytes, with the bytes HTTP forbids in a field value
/// (control characters other than tab) replaced by `?`.
pub fn header_value(bytes: &[u8]) -> HeaderValue {
    let cleaned: Vec<u8> =
        bytes.iter().map(|&b| if (b < 0x20 && b != b'\t') || b == 0x7f { b'?' } else { b }).collect();
    HeaderValue::from_bytes(&cleaned).expect("control characters were replaced")
}

/// A current-thread runtime with tokio's clock paused: a request that waits forever
/// makes the runtime idle, the clock jumps, and the hang guard fires at once.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().expect("a tokio runtime")
}

/// How long (tokio time) one request may take before it counts as a hang.
const HANG_GUARD: Duration = Duration::from_secs(3_600);

impl World {
    /// A fresh world over `backend`, set up through the API itself.
    pub async fn new(backend: Backend) -> World {
        let store: Arc<dyn Store> = match backend {
            Backend::Memory => Arc::new(MemoryStore::new()),
            Backend::Sqlite => Arc::new(SqliteStore::open_in_memory().expect("an in-memory SQLite store")),
        };
        let clock = Arc::new(ManualClock::new(T0));
        let adapters = Arc::new(Adapters::builtin(Arc::new(NoNetwork), PUBLIC_URL));
        let rng = <rand_chacha::ChaCha20Rng as rand::SeedableRng>::seed_from_u64(16);
        let state = ApiState::new(store.clone(), clock, adapters, Some(ADMIN.into()), PUBLIC_URL, rng);
        let app = router(Arc::new(state));
        let mut world = World { store, app, tenants: Vec::new(), accounts: placeholder_accounts() };
        world.accounts = world.create_accounts().await;
        for name in ["alpha", "bravo", "charlie"] {
            let tenant = world.create_tenant(name).await;
            world.tenants.push(tenant);
        }
        world.accept_everything_claimable();
        world
    }

    /// Sends `request` and reads the answer (an event stream only up to its headers).
    pub async fn send(&self, request: &RawRequest) -> Result<Reply, TestCaseError> {
        let mut builder = Request::builder().method(request.method.as_str()).uri(request.uri.as_str());
        for (name, value) in &request.headers {
            builder = builder.header(*name, header_value(value));
        }
        let built = builder
            .body(Body::from(request.body.clone()))
            .map_err(|error| TestCaseError::fail(format!("the test built an invalid request {request:?}: {error}")))?;
        let answer = async {
            let response = self.app.clone().oneshot(built).await.expect("the router is infallible");
            let status = response.status().as_u16();
            let streaming = response
                .headers()
                .get("content-type")
                .is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"));
            if streaming {
                return Reply { status, body: Value::Null, text: String::new() };
            }
            let bytes = response.into_body().collect().await.expect("an in-memory body").to_bytes();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            Reply { status, body: serde_json::from_str(&text).unwrap_or(Value::Null), text }
        };
        tokio::time::timeout(HANG_GUARD, answer)
            .await
            .map_err(|_| TestCaseError::fail(format!("no answer (a hang) to {} {}", request.method, request.uri)))
    }

    /// A JSON request with a bearer key, for setting the world up.
    pub async fn json(&self, method: &str, uri: &str, key: &str, body: Value) -> Reply {
        let request = RawRequest {
            method: method.into(),
            uri: uri.into(),
            headers: vec![
                ("authorization", format!("Bearer {key}").into_bytes()),
                ("content-type", b"application/json".to_vec()),
            ],
            body: body.to_string().into_bytes(),
        };
        self.send(&request).await.expect("set-up requests answer")
    }

    async fn create_accounts(&self) -> AccountIds {
        let account = |provider: &str, credentials: Value| {
            json!({"name": provider, "provider": provider, "base_url": "http://provider", "sender": "ACME",
                   "price_per_segment": 55, "credentials": credentials})
        };
        let token = WEBHOOK_TOKEN;
        let bodies = [
            account("mitto", json!({"api_key": "k", "traffic_account_id": "ta-1", "webhook_token": token})),
            account("twilio", json!({"account_sid": "AC1", "auth_token": TWILIO_AUTH_TOKEN})),
            account("infobip", json!({"api_key": "k", "webhook_token": token})),
        ];
        let mut ids = Vec::new();
        for body in bodies {
            let reply = self.json("POST", "/v1/admin/traffic-accounts", ADMIN, body).await;
            assert_eq!(reply.status, 201, "{}", reply.text);
            ids.push(reply.body["id"].as_str().expect("an account id").to_owned());
        }
        AccountIds { mitto: ids[0].clone(), twilio: ids[1].clone(), infobip: ids[2].clone() }
    }

    async fn create_tenant(&self, name: &str) -> TenantIds {
        let reply = self.json("POST", "/v1/admin/tenants", ADMIN, json!({"name": name, "credits": 10_000})).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        let id = reply.body["tenant"]["id"].as_str().expect("a tenant id").to_owned();
        let key = reply.body["api_key"].as_str().expect("an API key").to_owned();
        let contacts = json!({"contacts": [
            {"phone": "+306912300001", "attributes": {"first_name": "Maria"}},
            {"phone": "+306912300002"},
            {"phone": "+306912300003", "opted_out": true},
        ]});
        assert_eq!(self.json("POST", "/v1/contacts", &key, contacts).await.status, 200);
        let draft = self.create_campaign(&key, "draft").await;
        let sending = self.create_campaign(&key, "sending").await;
        let enqueued = self.json("POST", &format!("/v1/campaigns/{sending}/enqueue"), &key, json!({})).await;
        assert_eq!(enqueued.status, 202, "{}", enqueued.text);
        TenantIds { id, key, draft, sending }
    }

    async fn create_campaign(&self, key: &str, name: &str) -> String {
        let body =
            json!({"name": name, "body_template": "Hi {{first_name|there}}", "traffic_account": self.accounts.mitto});
        let reply = self.json("POST", "/v1/campaigns", key, body).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        reply.body["id"].as_str().expect("a campaign id").to_owned()
    }

    /// Every queued message accepted by the provider as `p-<message id>`, so that
    /// delivery reports in the webhook properties find real messages.
    fn accept_everything_claimable(&self) {
        let request = ClaimRequest {
            worker: "w".into(),
            traffic_account: None,
            max_messages: 100,
            lease_ms: 10_000,
            burst: Default::default(),
        };
        while let ClaimOutcome::Claimed(claim) = self.store.claim(request.clone(), T0).expect("claim") {
            let results = claim
                .messages
                .iter()
                .map(|m| {
                    (m.id, SubmissionResult::Accepted { provider_message_id: format!("p-{}", m.id), bulk_id: None })
                })
                .collect();
            self.store.record_submissions(claim.token, results, T0).expect("record");
        }
    }

    /// Everything the store holds that a request could change: records, ledger columns
    /// and their recount, messages, queue statistics (with parked reports).
    pub fn snapshot(&self) -> String {
        let store = self.store.as_ref();
        let tenants = store.tenants().expect("tenants");
        let campaigns = store.all_campaigns().expect("campaigns");
        let mut text = format!("{tenants:?}\n{campaigns:?}\n{:?}\n", store.traffic_accounts().expect("accounts"));
        for tenant in &tenants {
            let ledger = store.ledger_recount(tenant.id).expect("ledger");
            text += &format!("{ledger:?}\n{:?}\n", store.contacts(tenant.id).expect("contacts"));
        }
        for campaign in &campaigns {
            text += &format!("{:?}\n", store.messages(campaign.id).expect("messages"));
        }
        text + &format!("{:?}", store.queue_stats(None, T0).expect("stats"))
    }

    /// Sends `request` and checks the oracle; returns the answer for further checks.
    pub async fn send_checked(&self, request: &RawRequest) -> Result<Reply, TestCaseError> {
        self.store.take_journal().expect("journal");
        let before = self.snapshot();
        let reply = self.send(request).await?;
        check_refusal(self, request, &reply, &before)?;
        Ok(reply)
    }
}

fn placeholder_accounts() -> AccountIds {
    AccountIds { mitto: String::new(), twilio: String::new(), infobip: String::new() }
}

/// The oracle: a success, or a typed error of the table with its status that changed
/// nothing (records, ledgers, journal). A 5xx or an untyped answer fails the case.
pub fn check_refusal(world: &World, request: &RawRequest, reply: &Reply, before: &str) -> Result<(), TestCaseError> {
    let what = || format!("{} {} → {} {}", request.method, request.uri, reply.status, truncate(&reply.text));
    if (200..300).contains(&reply.status) {
        return Ok(());
    }
    let code = reply.code();
    if !ERROR_TABLE.contains(&(reply.status, code)) {
        return Err(TestCaseError::fail(format!("an answer outside the error table: {}", what())));
    }
    if reply.body["error"]["message"].as_str().is_none_or(str::is_empty) {
        return Err(TestCaseError::fail(format!("an error without a message: {}", what())));
    }
    if code == "VALIDATION" && reply.body["error"]["field"].as_str().is_none_or(str::is_empty) {
        return Err(TestCaseError::fail(format!("a VALIDATION error that names no field: {}", what())));
    }
    if world.snapshot() != before {
        return Err(TestCaseError::fail(format!("a refused request changed the store: {}", what())));
    }
    let journal = world.store.take_journal().expect("journal");
    if !journal.is_empty() {
        return Err(TestCaseError::fail(format!("a refused request wrote the journal {journal:?}: {}", what())));
    }
    Ok(())
}

fn truncate(text: &str) -> String {
    text.chars().take(300).collect()
}

/// Cases per property: `PROPTEST_CASES`, or `default` (small, for `cargo test`).
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(default)
}

/// A runner with `cases` cases drawn from a fixed seed, no failure files.
pub fn runner(cases: u32) -> TestRunner {
    let config = Config { cases, failure_persistence: None, max_shrink_iters: 256, ..Config::default() };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[16; 32]))
}

/// Counts cases and their answers by status, and prints both when dropped (the long
/// run's numbers in `docs/src/design/testing.md` come from it).
pub struct CaseCount {
    name: &'static str,
    count: AtomicU64,
    statuses: Mutex<BTreeMap<u16, u64>>,
}

impl CaseCount {
    /// A counter for the property `name`.
    pub fn new(name: &'static str) -> Self {
        CaseCount { name, count: AtomicU64::new(0), statuses: Mutex::new(BTreeMap::new()) }
    }

    /// One more case.
    pub fn tick(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// One more answer with `status`.
    pub fn answered(&self, status: u16) {
        *self.statuses.lock().expect("status counts").entry(status).or_default() += 1;
    }
}

impl Drop for CaseCount {
    fn drop(&mut self) {
        let statuses = self.statuses.lock().map(|statuses| format!("{statuses:?}")).unwrap_or_default();
        eprintln!("hostile {}: {} cases; answers by status {statuses}", self.name, self.count.load(Ordering::Relaxed));
    }
}

/// `text` percent-encoded for a path segment or a query string: every byte outside
/// the unreserved set becomes `%XX`, so any string makes a valid URI.
pub fn percent_encode(text: &[u8]) -> String {
    text.iter()
        .map(|&b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
