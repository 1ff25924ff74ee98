//! The HTTP API in-process: happy flow, every error class, isolation, double clicks,
//! webhooks. Every refusal is checked to leave the store exactly as it was.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use smsim_core::adapter::mitto::wire as mitto_wire;
use smsim_core::adapter::twilio::twilio_signature;
use smsim_core::adapter::{HttpClient, HttpError, HttpRequest, HttpResponse};
use smsim_core::api::{router, ApiState};
use smsim_core::clock::ManualClock;
use smsim_core::domain::records::MessageError;
use smsim_core::service::Adapters;
use smsim_core::store::memory::MemoryStore;
use smsim_core::store::{ClaimOutcome, ClaimRequest, Store, StoreError, StoreResult, SubmissionResult};
use smsim_core::Timestamp;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::ServiceExt;

const ADMIN: &str = "admin-secret";
const T0: Timestamp = Timestamp(1_700_000_000_000);

struct NoNetwork;

#[async_trait::async_trait]
impl HttpClient for NoNetwork {
    async fn send(&self, _: HttpRequest) -> Result<HttpResponse, HttpError> {
        Err(HttpError::Connect("no network in this test".into()))
    }
}

struct Api {
    store: Arc<SwitchableStore>,
    clock: Arc<ManualClock>,
    app: axum::Router,
}

struct Reply {
    status: StatusCode,
    content_type: String,
    body: Value,
    text: String,
}

impl Reply {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

fn api() -> Api {
    api_with(|_| {})
}

/// An API over a fresh memory store, with `configure` applied to its state.
fn api_with(configure: impl FnOnce(&mut ApiState)) -> Api {
    let store = Arc::new(SwitchableStore::default());
    let clock = Arc::new(ManualClock::new(T0));
    let adapters = Arc::new(Adapters::builtin(Arc::new(NoNetwork), "https://sms.example.com"));
    let mut state = ApiState::new(
        store.clone(),
        clock.clone(),
        adapters,
        Some(ADMIN.into()),
        "https://sms.example.com",
        rand_chacha_seeded(),
    );
    configure(&mut state);
    Api { store, clock, app: router(Arc::new(state)) }
}

/// The memory store, with a switch that makes every call fail with a given error (and
/// change nothing), to see how the API answers a store that is down.
#[derive(Default)]
struct SwitchableStore {
    inner: MemoryStore,
    failure: Mutex<Option<StoreError>>,
}

impl SwitchableStore {
    fn fail_with(&self, failure: Option<StoreError>) {
        *self.failure.lock().unwrap() = failure;
    }

    fn check(&self) -> StoreResult<()> {
        self.failure.lock().unwrap().clone().map_or(Ok(()), Err)
    }
}

/// Every call checks the switch first.
macro_rules! switchable {
    ($($access:ident $name:ident($($arg:ident: $type:ty),*) -> $answer:ty;)*) => {
        impl Store for SwitchableStore {
            $(fn $name(&self, $($arg: $type),*) -> StoreResult<$answer> {
                self.check()?;
                self.inner.$name($($arg),*)
            })*
        }
    };
}

smsim_core::store_methods!(switchable);

fn rand_chacha_seeded() -> rand_chacha::ChaCha20Rng {
    use rand::SeedableRng;
    rand_chacha::ChaCha20Rng::seed_from_u64(42)
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        if body.is_some() && !headers.iter().any(|(name, _)| *name == "content-type") {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body.map_or_else(Body::empty, |body| Body::from(body.to_owned()))).unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type =
            response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Reply { status, content_type, body: serde_json::from_str(&text).unwrap_or(Value::Null), text }
    }

    async fn json(&self, method: &str, path: &str, key: &str, body: Value) -> Reply {
        self.call(method, path, Some(key), Some(&body.to_string()), &[]).await
    }

    /// Everything the store holds, for "nothing changed" checks.
    fn snapshot(&self) -> String {
        let store: &dyn Store = self.store.as_ref();
        let mut text = format!(
            "{:?}{:?}{:?}",
            store.tenants().unwrap(),
            store.all_campaigns().unwrap(),
            store.traffic_accounts().unwrap()
        );
        for tenant in store.tenants().unwrap() {
            text += &format!("{:?}", store.contacts(tenant.id).unwrap());
        }
        for campaign in store.all_campaigns().unwrap() {
            text += &format!("{:?}", store.messages(campaign.id).unwrap());
        }
        text
    }

    async fn tenant(&self, name: &str, credits: i64) -> (String, String) {
        let reply = self.json("POST", "/v1/admin/tenants", ADMIN, json!({"name": name, "credits": credits})).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        (reply.body["tenant"]["id"].as_str().unwrap().to_owned(), reply.body["api_key"].as_str().unwrap().to_owned())
    }

    async fn mitto_account(&self) -> String {
        let body = json!({
            "name": "mitto", "provider": "mitto", "base_url": "http://provider", "sender": "SMSIM", "price_per_segment": 55,
            "credentials": {"api_key": "k", "traffic_account_id": "ta-1", "webhook_token": "hook"}
        });
        let reply = self.json("POST", "/v1/admin/traffic-accounts", ADMIN, body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        assert!(reply.body.get("credentials").is_none(), "credentials are never shown");
        reply.body["id"].as_str().unwrap().to_owned()
    }

    /// A tenant with three contacts and a draft campaign; returns (key, campaign id, account id).
    async fn draft(&self, credits: i64) -> (String, String, String) {
        let (_, key) = self.tenant("acme", credits).await;
        let account = self.mitto_account().await;
        let contacts = json!({"contacts": [
            {"phone": "+306912300001", "attributes": {"first_name": "Maria"}},
            {"phone": "+306912300002"},
            {"phone": "+306912300003", "opted_out": true},
        ]});
        let imported = self.json("POST", "/v1/contacts", &key, contacts).await;
        assert_eq!((imported.status, imported.body["created"].as_u64()), (StatusCode::OK, Some(3)));
        let campaign = self
            .json(
                "POST",
                "/v1/campaigns",
                &key,
                json!({"name": "spring", "body_template": "Hi {{first_name|there}}", "traffic_account": account}),
            )
            .await;
        assert_eq!(campaign.status, StatusCode::CREATED, "{}", campaign.text);
        (key, campaign.body["id"].as_str().unwrap().to_owned(), account)
    }
}

#[tokio::test]
async fn the_happy_flow() {
    let api = api();
    let (key, campaign, _) = api.draft(1_000).await;
    let me = api.call("GET", "/v1/me", Some(&key), None, &[]).await;
    assert_eq!((me.status, me.body["available"].as_i64()), (StatusCode::OK, Some(1_000)));
    assert!(me.body.get("api_key_hash").is_none());
    let preview = api.call("GET", &format!("/v1/campaigns/{campaign}/preview"), Some(&key), None, &[]).await;
    assert_eq!(
        (
            preview.body["recipients"].as_u64(),
            preview.body["skipped"].as_u64(),
            preview.body["estimated_cost"].as_i64()
        ),
        (Some(2), Some(1), Some(110))
    );
    let enqueued = api.call("POST", &format!("/v1/campaigns/{campaign}/enqueue"), Some(&key), None, &[]).await;
    assert_eq!(
        (enqueued.status, enqueued.body["messages"].as_u64(), enqueued.body["reserved"].as_i64()),
        (StatusCode::ACCEPTED, Some(3), Some(110))
    );
    let view = api.call("GET", &format!("/v1/campaigns/{campaign}"), Some(&key), None, &[]).await;
    assert_eq!(
        (view.body["status"].as_str(), view.body["total"].as_u64(), view.body["progress"].as_u64()),
        (Some("sending"), Some(3), Some(33))
    );
    let listed = api.call("GET", "/v1/campaigns", Some(&key), None, &[]).await;
    assert_eq!(listed.body.as_array().map(Vec::len), Some(1));
    let stats = api.call("GET", "/v1/queue/stats", Some(&key), None, &[]).await;
    assert_eq!(stats.body["queued"].as_u64(), Some(2));
    let paused = api.call("POST", &format!("/v1/campaigns/{campaign}/pause"), Some(&key), None, &[]).await;
    assert_eq!(paused.body["status"].as_str(), Some("paused"));
    let resumed = api.call("POST", &format!("/v1/campaigns/{campaign}/resume"), Some(&key), None, &[]).await;
    assert_eq!(resumed.body["status"].as_str(), Some("sending"));
    let cancelled = api.call("POST", &format!("/v1/campaigns/{campaign}/cancel"), Some(&key), None, &[]).await;
    assert_eq!(
        (cancelled.body["status"].as_str(), cancelled.body["progress"].as_u64()),
        (Some("cancelled"), Some(100))
    );
    let me = api.call("GET", "/v1/me", Some(&key), None, &[]).await;
    assert_eq!(me.body["reserved"].as_i64(), Some(0), "cancel released the reservation");
}

#[tokio::test]
async fn progress_streams_server_sent_events_until_the_campaign_ends() {
    let api = api();
    let (key, campaign, _) = api.draft(1_000).await;
    api.call("POST", &format!("/v1/campaigns/{campaign}/cancel"), Some(&key), None, &[]).await;
    let reply = api.call("GET", &format!("/v1/campaigns/{campaign}/progress"), Some(&key), None, &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.content_type.starts_with("text/event-stream"), "{}", reply.content_type);
    assert!(reply.text.contains("event: progress"), "{}", reply.text);
    assert!(reply.text.contains("\"status\":\"cancelled\""), "{}", reply.text);
}

#[tokio::test]
async fn authentication_errors() {
    let api = api();
    let (key, campaign, _) = api.draft(1_000).await;
    let before = api.snapshot();
    let path = format!("/v1/campaigns/{campaign}/enqueue");
    for key in [None, Some("sk_wrong"), Some("")] {
        let reply = api.call("POST", &path, key, None, &[]).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"), "{key:?}");
    }
    let reply = api.json("POST", "/v1/admin/tenants", &key, json!({"name": "evil"})).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::FORBIDDEN, "FORBIDDEN"));
    let reply = api.json("POST", "/v1/admin/tenants", "not-admin", json!({"name": "evil"})).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"));
    let reply = api.call("POST", "/v1/admin/tenants", None, Some("{\"name\":\"evil\"}"), &[]).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"), "no admin header");
    let reply = api.call("GET", "/v1/admin/traffic-accounts", None, None, &[("authorization", ADMIN)]).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"), "no Bearer scheme");
    let reply = api.call("GET", "/v1/me", None, None, &[("authorization", &format!("Basic {key}"))]).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"), "another scheme");
    let reply = api.call("GET", "/v1/me", None, None, &[("authorization", &format!("bearer {key}"))]).await;
    assert_eq!(reply.status, StatusCode::OK, "the scheme name is case-insensitive");
    assert_eq!(before, api.snapshot());
}

/// Method, path, body, extra headers, expected status and error code.
type RefusalCase =
    (&'static str, String, Option<String>, &'static [(&'static str, &'static str)], StatusCode, &'static str);

#[tokio::test]
async fn malformed_requests_get_typed_errors_and_change_nothing() {
    let api = api();
    let (key, campaign, account) = api.draft(1_000).await;
    let before = api.snapshot();
    let cases: Vec<RefusalCase> = vec![
        ("POST", "/v1/campaigns".into(), Some("{\"name\":".into()), &[], StatusCode::BAD_REQUEST, "INVALID_JSON"),
        ("POST", "/v1/campaigns".into(), Some(String::new()), &[], StatusCode::BAD_REQUEST, "INVALID_JSON"),
        (
            "POST",
            "/v1/campaigns".into(),
            Some(json!({"name": "x", "body_template": "hi", "traffic_account": account, "colour": "red"}).to_string()),
            &[],
            StatusCode::BAD_REQUEST,
            "INVALID_JSON",
        ),
        (
            "POST",
            "/v1/campaigns".into(),
            Some(json!({"name": 5}).to_string()),
            &[],
            StatusCode::BAD_REQUEST,
            "INVALID_JSON",
        ),
        (
            "POST",
            "/v1/campaigns".into(),
            Some("{}".into()),
            &[("content-type", "text/plain")],
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "POST",
            "/v1/campaigns".into(),
            Some(json!({"name": "x", "body_template": "hi {{oops", "traffic_account": account}).to_string()),
            &[],
            StatusCode::BAD_REQUEST,
            "VALIDATION",
        ),
        (
            "POST",
            "/v1/campaigns".into(),
            Some(json!({"name": "x", "body_template": "hi", "traffic_account": "ta_999"}).to_string()),
            &[],
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
        (
            "POST",
            "/v1/contacts".into(),
            Some(json!({"contacts": [{"phone": "+30", "nickname": "x"}]}).to_string()),
            &[],
            StatusCode::BAD_REQUEST,
            "INVALID_JSON",
        ),
        ("GET", "/v1/campaigns/cmp_999".into(), None, &[], StatusCode::NOT_FOUND, "NOT_FOUND"),
        ("GET", "/v1/campaigns/not-an-id".into(), None, &[], StatusCode::NOT_FOUND, "NOT_FOUND"),
        ("GET", "/v1/campaigns/cmp_x".into(), None, &[], StatusCode::NOT_FOUND, "NOT_FOUND"),
        ("POST", "/v1/campaigns/cmp_x/enqueue".into(), None, &[], StatusCode::NOT_FOUND, "NOT_FOUND"),
        ("GET", "/v1/campaigns/%FF%FE".into(), None, &[], StatusCode::NOT_FOUND, "NOT_FOUND"),
        (
            "POST",
            format!("/v1/campaigns/{campaign}/enqueue"),
            Some("{}".into()),
            &[("content-type", "text/plain")],
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "POST",
            "/v1/contacts".into(),
            Some(json!({"contacts": "+306912300001"}).to_string()),
            &[],
            StatusCode::BAD_REQUEST,
            "INVALID_JSON",
        ),
        (
            "PATCH",
            format!("/v1/campaigns/{campaign}"),
            Some(json!({"name": "   "}).to_string()),
            &[],
            StatusCode::BAD_REQUEST,
            "VALIDATION",
        ),
        ("POST", format!("/v1/campaigns/{campaign}/resume"), None, &[], StatusCode::CONFLICT, "CONFLICT"),
        ("POST", format!("/v1/campaigns/{campaign}/pause"), None, &[], StatusCode::CONFLICT, "ILLEGAL_TRANSITION"),
        ("POST", format!("/v1/campaigns/{campaign}/retry-failed"), None, &[], StatusCode::CONFLICT, "CONFLICT"),
        (
            "POST",
            format!("/v1/campaigns/{campaign}/enqueue"),
            Some("{\"now\":true}".into()),
            &[],
            StatusCode::BAD_REQUEST,
            "VALIDATION",
        ),
        ("GET", "/v1/nowhere".into(), None, &[], StatusCode::NOT_FOUND, "NOT_FOUND"),
        ("DELETE", "/v1/campaigns".into(), None, &[], StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED"),
    ];
    for (method, path, body, headers, status, code) in cases {
        let reply = api.call(method, &path, Some(&key), body.as_deref(), headers).await;
        assert_eq!((reply.status, reply.code()), (status, code), "{method} {path} {body:?}: {}", reply.text);
        assert!(!reply.body["error"]["message"].as_str().unwrap_or("").is_empty(), "errors say what: {}", reply.text);
    }
    assert_eq!(before, api.snapshot(), "a refused request changed the store");
    let syntax = api.call("POST", "/v1/campaigns", Some(&key), Some("{\n  \"name\": }"), &[]).await;
    let message = syntax.body["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("line 2 column"), "serde's position is shown: {message}");
    let unknown_field = api.call("POST", "/v1/contacts", Some(&key), Some("{\"rows\": []}"), &[]).await;
    let message = unknown_field.body["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("unknown field `rows`"), "{message}");
    let validation = api.json("PATCH", &format!("/v1/campaigns/{campaign}"), &key, json!({"name": ""})).await;
    assert_eq!(validation.body["error"]["field"].as_str(), Some("name"), "{}", validation.text);
    assert_eq!(before, api.snapshot());
}

#[tokio::test]
async fn oversized_bodies_and_imports_are_refused() {
    let api = api();
    let (key, _, _) = api.draft(1_000).await;
    let before = api.snapshot();
    let huge = format!("{{\"contacts\":[{{\"phone\":\"{}\"}}]}}", "1".repeat(2 * 1024 * 1024));
    let reply = api.call("POST", "/v1/contacts", Some(&key), Some(&huge), &[]).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"), "{}", reply.text);
    let campaign = api.store.all_campaigns().unwrap()[0].id;
    let reply = api.call("POST", &format!("/v1/campaigns/{campaign}/enqueue"), Some(&key), Some(&huge), &[]).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"), "{}", reply.text);
    let rows: Vec<Value> = (0..10_001).map(|n| json!({"phone": format!("+30691{n:07}")})).collect();
    let reply = api.json("POST", "/v1/contacts", &key, json!({ "contacts": rows })).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"));
    assert_eq!(before, api.snapshot());
}

#[tokio::test]
async fn invalid_numbers_are_reported_per_row_and_the_rest_imported() {
    let api = api();
    let (_, key) = api.tenant("acme", 0).await;
    let reply = api
        .json("POST", "/v1/contacts", &key, json!({"contacts": [{"phone": "+306912300001"}, {"phone": "12345"}]}))
        .await;
    assert_eq!((reply.status, reply.body["created"].as_u64()), (StatusCode::OK, Some(1)));
    assert_eq!(reply.body["errors"][0]["row"].as_u64(), Some(1));
    assert_eq!(reply.body["errors"][0]["field"].as_str(), Some("phone"));
    assert!(reply.body["errors"][0]["message"].as_str().unwrap().contains("E.164"));
}

#[tokio::test]
async fn insufficient_credits_is_402_and_reserves_nothing() {
    let api = api();
    let (key, campaign, _) = api.draft(100).await;
    let before = api.snapshot();
    let reply = api.call("POST", &format!("/v1/campaigns/{campaign}/enqueue"), Some(&key), None, &[]).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::PAYMENT_REQUIRED, "INSUFFICIENT_CREDITS"));
    assert!(reply.body["error"]["message"].as_str().unwrap().contains("110 needed, 100 available"));
    assert_eq!(before, api.snapshot());
}

#[tokio::test]
async fn double_clicks_create_one_set_of_messages() {
    let api = api();
    let (key, campaign, _) = api.draft(1_000).await;
    let path = format!("/v1/campaigns/{campaign}/enqueue");
    let first = api.call("POST", &path, Some(&key), None, &[("idempotency-key", "click-1")]).await;
    let second = api.call("POST", &path, Some(&key), None, &[("idempotency-key", "click-1")]).await;
    assert_eq!((first.status, second.status), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_eq!((first.body["replayed"].as_bool(), second.body["replayed"].as_bool()), (Some(false), Some(true)));
    let without_flag = |body: &Value| {
        let mut body = body.clone();
        body.as_object_mut().unwrap().remove("replayed");
        body
    };
    assert_eq!(without_flag(&first.body), without_flag(&second.body), "the replay is the first answer");
    let (third, fourth) = tokio::join!(
        api.call("POST", &path, Some(&key), None, &[("idempotency-key", "click-1")]),
        api.call("POST", &path, Some(&key), None, &[("idempotency-key", "click-1")]),
    );
    assert_eq!((third.status, fourth.status), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_eq!(without_flag(&third.body), without_flag(&first.body));
    let before = api.snapshot();
    let reused = api.call("POST", &path, Some(&key), Some("{}"), &[("idempotency-key", "click-1")]).await;
    assert_eq!((reused.status, reused.code()), (StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED"));
    let keyless = api.call("POST", &path, Some(&key), None, &[]).await;
    assert_eq!((keyless.status, keyless.code()), (StatusCode::CONFLICT, "CONFLICT"));
    assert_eq!(before, api.snapshot());
    let store: &dyn Store = api.store.as_ref();
    assert_eq!(store.messages(campaign.parse().unwrap()).unwrap().len(), 3);
}

#[tokio::test]
async fn tenants_cannot_see_or_touch_each_other() {
    let api = api();
    let (key_a, campaign, _) = api.draft(1_000).await;
    let enqueued = api.call("POST", &format!("/v1/campaigns/{campaign}/enqueue"), Some(&key_a), None, &[]).await;
    assert_eq!(enqueued.status, StatusCode::ACCEPTED);
    let (_, key_b) = api.tenant("other", 1_000).await;
    let before = api.snapshot();
    for (method, suffix) in [
        ("GET", ""),
        ("GET", "/preview"),
        ("POST", "/enqueue"),
        ("POST", "/pause"),
        ("POST", "/resume"),
        ("POST", "/cancel"),
        ("POST", "/retry-failed"),
        ("GET", "/failures"),
        ("GET", "/progress"),
    ] {
        let reply = api.call(method, &format!("/v1/campaigns/{campaign}{suffix}"), Some(&key_b), None, &[]).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::NOT_FOUND, "NOT_FOUND"), "{method} {suffix}");
    }
    let reply = api.json("PATCH", &format!("/v1/campaigns/{campaign}"), &key_b, json!({"name": "mine now"})).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let keyed = api
        .call("POST", &format!("/v1/campaigns/{campaign}/enqueue"), Some(&key_b), None, &[("idempotency-key", "k")])
        .await;
    assert_eq!(keyed.status, StatusCode::NOT_FOUND, "a key does not open another tenant's campaign");
    let contacts = api.call("GET", "/v1/contacts", Some(&key_b), None, &[]).await;
    assert_eq!(contacts.body.as_array().map(Vec::len), Some(0));
    let campaigns = api.call("GET", "/v1/campaigns", Some(&key_b), None, &[]).await;
    assert_eq!(campaigns.body.as_array().map(Vec::len), Some(0));
    let stats = api.call("GET", "/v1/queue/stats", Some(&key_b), None, &[]).await;
    assert_eq!(stats.body["queued"].as_u64(), Some(0), "another tenant's queue is not counted");
    assert_eq!(before, api.snapshot());
    let mine = api.call("GET", &format!("/v1/campaigns/{campaign}"), Some(&key_a), None, &[]).await;
    assert_eq!((mine.status, mine.body["status"].as_str()), (StatusCode::OK, Some("sending")));
}

#[tokio::test]
async fn a_draft_can_be_patched_and_null_clears_optional_fields() {
    let api = api();
    let (key, campaign, _) = api.draft(1_000).await;
    let path = format!("/v1/campaigns/{campaign}");
    let patched = api.json("PATCH", &path, &key, json!({"sender": "ACME", "name": "summer"})).await;
    assert_eq!((patched.body["sender"].as_str(), patched.body["name"].as_str()), (Some("ACME"), Some("summer")));
    let cleared = api.json("PATCH", &path, &key, json!({"sender": null})).await;
    assert_eq!((cleared.body["sender"].clone(), cleared.body["name"].as_str()), (Value::Null, Some("summer")));
}

/// Claims every due message (up to 10) as a worker would.
fn claim_due(store: &dyn Store) -> smsim_core::store::Claim {
    let request = ClaimRequest {
        worker: "w".into(),
        traffic_account: None,
        max_messages: 10,
        lease_ms: 10_000,
        burst: Default::default(),
    };
    match store.claim(request, T0).unwrap() {
        ClaimOutcome::Claimed(claim) => claim,
        ClaimOutcome::Idle(reason) => panic!("nothing to claim: {reason:?}"),
    }
}

/// Sends the campaign's two messages as if a worker did, so reports have something to find.
fn accept_all(store: &dyn Store) {
    let claim = claim_due(store);
    let results = claim
        .messages
        .iter()
        .map(|m| {
            (m.id, SubmissionResult::Accepted { provider_message_id: format!("p-{}", m.destination), bulk_id: None })
        })
        .collect();
    store.record_submissions(claim.token, results, T0).unwrap();
}

#[tokio::test]
async fn webhooks_apply_reports_and_forged_ones_change_nothing() {
    let api = api();
    let (key, campaign, account) = api.draft(1_000).await;
    api.call("POST", &format!("/v1/campaigns/{campaign}/enqueue"), Some(&key), None, &[]).await;
    accept_all(api.store.as_ref());
    let path = format!("/v1/webhooks/mitto/{account}");
    let reports = serde_json::to_string(&vec![
        mitto_wire::DeliveryReport {
            message_id: "p-+306912300001".into(),
            delivery_status: "Delivered".into(),
            error_code: None,
        },
        mitto_wire::DeliveryReport {
            message_id: "p-+306912300001".into(),
            delivery_status: "Delivered".into(),
            error_code: None,
        },
        mitto_wire::DeliveryReport {
            message_id: "p-+306912300001".into(),
            delivery_status: "Sent".into(),
            error_code: None,
        },
        mitto_wire::DeliveryReport {
            message_id: "p-unknown".into(),
            delivery_status: "Delivered".into(),
            error_code: None,
        },
        mitto_wire::DeliveryReport {
            message_id: "p-+306912300002".into(),
            delivery_status: "Exploded".into(),
            error_code: None,
        },
    ])
    .unwrap();
    let before = api.snapshot();
    for (query, status) in [("", StatusCode::UNAUTHORIZED), ("?token=forged", StatusCode::UNAUTHORIZED)] {
        let reply = api.call("POST", &format!("{path}{query}"), None, Some(&reports), &[]).await;
        assert_eq!((reply.status, reply.code()), (status, "BAD_SIGNATURE"));
    }
    let reply = api.call("POST", &format!("/v1/webhooks/twilio/{account}?token=hook"), None, Some(&reports), &[]).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "a webhook of the wrong provider kind");
    let reply = api.call("POST", &format!("{path}?token=hook"), None, Some("{\"messageId\":"), &[]).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, "INVALID_WEBHOOK"));
    assert_eq!(before, api.snapshot(), "refused webhooks changed the store");
    let reply = api.call("POST", &format!("{path}?token=hook"), None, Some(&reports), &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body, json!({"applied": 1, "duplicates": 1, "ignored": 1, "parked": 1, "unrecognized": 1}));
    let view = api.call("GET", &format!("/v1/campaigns/{campaign}"), Some(&key), None, &[]).await;
    assert_eq!((view.body["delivered"].as_u64(), view.body["sent"].as_u64()), (Some(1), Some(2)));
}

#[tokio::test]
async fn twilio_webhooks_check_the_signature_over_the_public_url() {
    let api = api();
    let (_, key) = api.tenant("acme", 1_000).await;
    let body = json!({
        "name": "twilio", "provider": "twilio", "base_url": "http://provider", "sender": "+15005550006", "price_per_segment": 79,
        "credentials": {"account_sid": "AC1", "auth_token": "tok"}
    });
    let account =
        api.json("POST", "/v1/admin/traffic-accounts", ADMIN, body).await.body["id"].as_str().unwrap().to_owned();
    let _ = key;
    let path = format!("/v1/webhooks/twilio/{account}?message_id=msg_9_9");
    let params: BTreeMap<String, String> = [("MessageSid", "SM1"), ("MessageStatus", "delivered")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let form = serde_urlencoded::to_string(&params).unwrap();
    let good = twilio_signature("tok", &format!("https://sms.example.com{path}"), &params);
    let forged = twilio_signature("tok", &format!("https://evil.example.com{path}"), &params);
    let content_type = ("content-type", "application/x-www-form-urlencoded");
    let reply = api.call("POST", &path, None, Some(&form), &[content_type, ("x-twilio-signature", &forged)]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = api.call("POST", &path, None, Some(&form), &[content_type, ("x-twilio-signature", &good)]).await;
    assert_eq!((reply.status, reply.body["parked"].as_u64()), (StatusCode::OK, Some(1)), "{}", reply.text);
}

/// Infobip echoes our message id in every report, so a report resolves even a message
/// whose submission answer was lost; one webhook may carry several results.
#[tokio::test]
async fn infobip_webhooks_carry_several_results_that_name_our_messages() {
    let api = api();
    let (_, key) = api.tenant("acme", 1_000).await;
    let body = json!({
        "name": "infobip", "provider": "infobip", "base_url": "http://provider", "sender": "ACME", "price_per_segment": 40,
        "credentials": {"api_key": "app-key", "webhook_token": "hook"}
    });
    let created = api.json("POST", "/v1/admin/traffic-accounts", ADMIN, body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let account = created.body["id"].as_str().unwrap().to_owned();
    let contacts = json!({"contacts": [{"phone": "+306912300001"}, {"phone": "+306912300002"}]});
    api.json("POST", "/v1/contacts", &key, contacts).await;
    let campaign = api
        .json(
            "POST",
            "/v1/campaigns",
            &key,
            json!({"name": "spring", "body_template": "Hi", "traffic_account": account}),
        )
        .await;
    let campaign = campaign.body["id"].as_str().unwrap().to_owned();
    let enqueued = api.call("POST", &format!("/v1/campaigns/{campaign}/enqueue"), Some(&key), None, &[]).await;
    assert_eq!(enqueued.status, StatusCode::ACCEPTED, "{}", enqueued.text);
    // The first message's answer arrived (Infobip's id is ours); the second's was lost.
    let store: &dyn Store = api.store.as_ref();
    let claim = claim_due(store);
    let (answered, lost) = (claim.messages[0].id, claim.messages[1].id);
    let lost_answer = MessageError { code: "AMBIGUOUS".into(), retryable: false, detail: "timed out".into() };
    let results = vec![
        (answered, SubmissionResult::Accepted { provider_message_id: answered.to_string(), bulk_id: Some("b".into()) }),
        (lost, SubmissionResult::Unknown { error: lost_answer }),
    ];
    store.record_submissions(claim.token, results, T0).unwrap();
    let result = |id: &str, group: &str, name: &str| {
        json!({"bulkId": "b", "messageId": id, "to": "306912300001", "smsCount": 1,
               "price": {"pricePerMessage": 0.01, "currency": "EUR"},
               "status": {"groupId": 3, "groupName": group, "id": 5, "name": name, "description": "d"},
               "error": {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR", "description": "", "permanent": false}})
    };
    let reports = json!({"results": [
        result(&answered.to_string(), "DELIVERED", "DELIVERED_TO_HANDSET"),
        result(&answered.to_string(), "DELIVERED", "DELIVERED_TO_HANDSET"),
        result(&lost.to_string(), "UNDELIVERABLE", "UNDELIVERABLE_NOT_DELIVERED"),
        result("msg_99_1", "DELIVERED", "DELIVERED_TO_HANDSET"),
        result(&answered.to_string(), "TELEPORTED", "TELEPORTED_AWAY"),
    ]})
    .to_string();
    let path = format!("/v1/webhooks/infobip/{account}");
    let before = api.snapshot();
    for query in ["", "?token=forged"] {
        let reply = api.call("POST", &format!("{path}{query}"), None, Some(&reports), &[]).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::UNAUTHORIZED, "BAD_SIGNATURE"), "{query}");
    }
    let reply = api.call("POST", &format!("/v1/webhooks/mitto/{account}?token=hook"), None, Some(&reports), &[]).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "a webhook of the wrong provider kind");
    assert_eq!(before, api.snapshot(), "refused webhooks changed the store");
    let reply = api.call("POST", &format!("{path}?token=hook"), None, Some(&reports), &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body, json!({"applied": 2, "duplicates": 1, "ignored": 0, "parked": 1, "unrecognized": 1}));
    let view = api.call("GET", &format!("/v1/campaigns/{campaign}"), Some(&key), None, &[]).await;
    assert_eq!(
        (view.body["delivered"].as_u64(), view.body["counts"]["undelivered"].as_u64(), view.body["status"].as_str()),
        (Some(1), Some(1), Some("completed")),
        "{}",
        view.text
    );
    let lost = store.message(lost).unwrap();
    assert_eq!(lost.provider_message_id.as_deref(), Some(lost.id.to_string().as_str()), "the report named it");
}

#[tokio::test]
async fn admin_credit_changes() {
    let api = api();
    let (tenant, key) = api.tenant("acme", 100).await;
    let path = format!("/v1/admin/tenants/{tenant}/credits");
    let topped = api.json("POST", &path, ADMIN, json!({"top_up": 50})).await;
    assert_eq!(topped.body["balance"].as_i64(), Some(150));
    let both = api.json("POST", &path, ADMIN, json!({"top_up": 1, "adjust": 1})).await;
    assert_eq!((both.status, both.code()), (StatusCode::BAD_REQUEST, "VALIDATION"));
    let negative = api.json("POST", &path, ADMIN, json!({"top_up": -5})).await;
    assert_eq!((negative.status, negative.code()), (StatusCode::BAD_REQUEST, "VALIDATION"));
    let too_far = api.json("POST", &path, ADMIN, json!({"adjust": -151})).await;
    assert_eq!((too_far.status, too_far.code()), (StatusCode::PAYMENT_REQUIRED, "INSUFFICIENT_CREDITS"));
    let unknown = api.json("POST", "/v1/admin/tenants/ten_99/credits", ADMIN, json!({"top_up": 5})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let by_tenant = api.json("POST", &path, &key, json!({"top_up": 1_000_000})).await;
    assert_eq!(by_tenant.status, StatusCode::FORBIDDEN, "a tenant cannot top itself up");
}

/// A report for an id nobody knows, on the platform's shared account: a tenant's stats
/// cannot count it (it may be anyone's), the operator's store-wide stats do, with the
/// count of those expired unmatched.
#[tokio::test]
async fn the_operator_sees_every_parked_report_a_tenant_only_its_own() {
    let api = api();
    let (_, key) = api.tenant("acme", 100).await;
    let platform = api.mitto_account().await;
    let webhook = format!("/v1/webhooks/mitto/{platform}?token=hook");
    let report = r#"{"messageId":"nobody-knows","deliveryStatus":"Delivered"}"#;
    let parked = api.call("POST", &webhook, None, Some(report), &[]).await;
    assert_eq!(parked.body["parked"].as_u64(), Some(1), "{:?}", parked.body);
    let mine = api.call("GET", "/v1/queue/stats", Some(&key), None, &[]).await;
    assert_eq!(mine.body["parked_reports"].as_u64(), Some(0));
    assert!(mine.body.get("parked_reports_expired").is_none(), "{:?}", mine.body);
    let all = api.call("GET", "/v1/admin/queue/stats", Some(ADMIN), None, &[]).await;
    assert_eq!((all.body["parked_reports"].as_u64(), all.body["parked_reports_expired"].as_u64()), (Some(1), Some(0)));
    let refused = api.call("GET", "/v1/admin/queue/stats", Some(&key), None, &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "a tenant is not the operator");
    // The reconciliation lists it by account and status, for the operator only.
    let evidence = api.call("GET", "/v1/admin/reconciliation", Some(ADMIN), None, &[]).await;
    assert_eq!(evidence.status, StatusCode::OK, "{}", evidence.text);
    let parked = &evidence.body["parked"][0];
    assert_eq!(
        (parked["traffic_account"].as_str(), parked["status"].as_str()),
        (Some(platform.as_str()), Some("delivered"))
    );
    assert_eq!(parked["reports"].as_u64(), Some(1));
    let refused = api.call("GET", "/v1/admin/reconciliation", Some(&key), None, &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn admin_routes_are_disabled_without_an_admin_token() {
    let api = api_with(|state| state.admin_token = None);
    let before = api.snapshot();
    for key in [Some(ADMIN), Some("anything"), None] {
        let reply = api.call("POST", "/v1/admin/tenants", key, Some("{\"name\":\"acme\",\"credits\":5}"), &[]).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::FORBIDDEN, "ADMIN_DISABLED"), "{key:?}");
        let reply = api.call("GET", "/v1/admin/traffic-accounts", key, None, &[]).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::FORBIDDEN, "ADMIN_DISABLED"), "{key:?}");
        let reply = api.call("GET", "/v1/admin/queue/stats", key, None, &[]).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::FORBIDDEN, "ADMIN_DISABLED"), "{key:?}");
    }
    assert_eq!(before, api.snapshot());
}

#[tokio::test]
async fn accounts_are_shown_without_credentials_and_only_to_tenants_who_may_use_them() {
    let api = api();
    let (tenant_a, key_a) = api.tenant("acme", 0).await;
    let (_, key_b) = api.tenant("other", 0).await;
    let platform = api.mitto_account().await;
    let owned = api
        .json(
            "POST",
            "/v1/admin/traffic-accounts",
            ADMIN,
            json!({
                "owner": tenant_a, "name": "acme twilio", "provider": "twilio", "base_url": "http://provider",
                "sender": "+15005550006", "price_per_segment": 79, "rate_limit_per_s": 5,
                "credentials": {"account_sid": "AC1", "auth_token": "secret-token"}
            }),
        )
        .await;
    assert_eq!(owned.status, StatusCode::CREATED, "{}", owned.text);
    assert_eq!(
        (owned.body["owner"].as_str(), owned.body["idempotent_submissions"].as_bool()),
        (Some(tenant_a.as_str()), Some(false))
    );
    let owned = owned.body["id"].as_str().unwrap().to_owned();
    let ids = |reply: &Reply| -> Vec<String> {
        assert!(!reply.text.contains("secret-token") && !reply.text.contains("credentials"), "{}", reply.text);
        reply.body.as_array().unwrap().iter().map(|account| account["id"].as_str().unwrap().to_owned()).collect()
    };
    let all = api.call("GET", "/v1/admin/traffic-accounts", Some(ADMIN), None, &[]).await;
    assert_eq!(ids(&all), vec![platform.clone(), owned.clone()]);
    let for_a = api.call("GET", "/v1/traffic-accounts", Some(&key_a), None, &[]).await;
    assert_eq!(ids(&for_a), vec![platform.clone(), owned.clone()]);
    let for_b = api.call("GET", "/v1/traffic-accounts", Some(&key_b), None, &[]).await;
    assert_eq!(ids(&for_b), vec![platform]);
    let reply = api
        .json("POST", "/v1/campaigns", &key_b, json!({"name": "x", "body_template": "hi", "traffic_account": owned}))
        .await;
    assert_eq!((reply.status, reply.code()), (StatusCode::NOT_FOUND, "NOT_FOUND"), "another tenant's account");
    let reply = api
        .json(
            "POST",
            "/v1/admin/traffic-accounts",
            ADMIN,
            json!({"name": "x", "provider": "sinch", "base_url": "http://p", "sender": "S", "price_per_segment": 1}),
        )
        .await;
    assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, "INVALID_JSON"), "an unknown provider kind");
}

#[tokio::test]
async fn store_failures_are_503_or_500_and_a_webhook_during_one_is_not_called_misaddressed() {
    let api = api();
    let (key, campaign, account) = api.draft(1_000).await;
    let before = api.snapshot();
    let webhook = format!("/v1/webhooks/mitto/{account}?token=hook");
    let report = "{\"messageId\":\"p-1\",\"deliveryStatus\":\"Delivered\"}";

    api.store.fail_with(Some(StoreError::Transient("database is locked".into())));
    let reply = api.call("POST", &format!("/v1/campaigns/{campaign}/enqueue"), Some(&key), None, &[]).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"), "{}", reply.text);
    let reply = api.call("POST", &webhook, None, Some(report), &[]).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
        "the provider must retry, not drop the report: {}",
        reply.text
    );

    api.store.fail_with(Some(StoreError::Backend("disk I/O error in /var/lib/smsim/smsim.db".into())));
    let reply = api.call("GET", "/v1/me", Some(&key), None, &[]).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"));
    assert!(!reply.text.contains("/var/lib") && !reply.text.contains("disk"), "{}", reply.text);

    api.store.fail_with(None);
    assert_eq!(before, api.snapshot());
    let reply = api.call("POST", &webhook, None, Some(report), &[]).await;
    assert_eq!((reply.status, reply.body["parked"].as_u64()), (StatusCode::OK, Some(1)), "{}", reply.text);
}

#[tokio::test]
async fn webhooks_are_refused_by_size_content_type_and_address() {
    let api = api();
    let (key, campaign, account) = api.draft(1_000).await;
    api.call("POST", &format!("/v1/campaigns/{campaign}/enqueue"), Some(&key), None, &[]).await;
    accept_all(api.store.as_ref());
    let report = "{\"messageId\":\"p-+306912300001\",\"deliveryStatus\":\"Delivered\"}";
    let before = api.snapshot();
    let oversized = format!("[{}]", vec![report; 6_000].join(","));
    assert!(oversized.len() > smsim_core::adapter::MAX_WEBHOOK_BODY_BYTES);
    let cases: Vec<(String, &str, &str, StatusCode, &str)> = vec![
        (
            format!("/v1/webhooks/mitto/{account}?token=hook"),
            &oversized,
            "application/json",
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            format!("/v1/webhooks/mitto/{account}?token=hook"),
            report,
            "text/plain",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        ("/v1/webhooks/mitto/ta_999?token=hook".into(), report, "application/json", StatusCode::NOT_FOUND, "NOT_FOUND"),
        ("/v1/webhooks/mitto/ta_x?token=hook".into(), report, "application/json", StatusCode::NOT_FOUND, "NOT_FOUND"),
        (
            format!("/v1/webhooks/sinch/{account}?token=hook"),
            report,
            "application/json",
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
    ];
    for (path, body, content_type, status, code) in cases {
        let reply = api.call("POST", &path, None, Some(body), &[("content-type", content_type)]).await;
        assert_eq!((reply.status, reply.code()), (status, code), "{path} {content_type}: {}", reply.text);
    }
    assert_eq!(before, api.snapshot(), "refused webhooks changed the store");
    let reply = api.call("POST", &format!("/v1/webhooks/mitto/{account}?token=hook"), None, Some(report), &[]).await;
    assert_eq!((reply.status, reply.body["applied"].as_u64()), (StatusCode::OK, Some(1)), "{}", reply.text);
}

#[tokio::test]
async fn failures_are_grouped_by_code_and_retry_failed_requeues_them() {
    let api = api();
    let (key, campaign, _) = api.draft(1_000).await;
    api.call("POST", &format!("/v1/campaigns/{campaign}/enqueue"), Some(&key), None, &[]).await;
    let store: &dyn Store = api.store.as_ref();
    let ClaimOutcome::Claimed(claim) = store
        .claim(
            ClaimRequest {
                worker: "w".into(),
                traffic_account: None,
                max_messages: 1,
                lease_ms: 10_000,
                burst: Default::default(),
            },
            T0,
        )
        .unwrap()
    else {
        panic!("nothing to claim")
    };
    let error = MessageError { code: "HTTP_400".into(), retryable: false, detail: "bad request".into() };
    store
        .record_submissions(claim.token, vec![(claim.messages[0].id, SubmissionResult::Failed { error })], T0)
        .unwrap();
    let failures = api.call("GET", &format!("/v1/campaigns/{campaign}/failures"), Some(&key), None, &[]).await;
    assert_eq!((failures.status, failures.body.clone()), (StatusCode::OK, json!({"HTTP_400": 1})));
    let me = api.call("GET", "/v1/me", Some(&key), None, &[]).await;
    assert_eq!(me.body["reserved"].as_i64(), Some(55), "the failure released its reservation");
    let retried = api.call("POST", &format!("/v1/campaigns/{campaign}/retry-failed"), Some(&key), None, &[]).await;
    assert_eq!((retried.status, retried.body.clone()), (StatusCode::OK, json!({"requeued": 1, "reserved": 55})));
    let view = api.call("GET", &format!("/v1/campaigns/{campaign}"), Some(&key), None, &[]).await;
    assert_eq!(
        (view.body["counts"]["queued"].as_u64(), view.body["failed"].as_u64(), view.body["pending"].as_u64()),
        (Some(2), Some(0), Some(2))
    );
    let again = api.call("GET", &format!("/v1/campaigns/{campaign}/failures"), Some(&key), None, &[]).await;
    assert_eq!(again.body, json!({}));
}

#[tokio::test]
async fn a_tenant_over_its_request_rate_gets_429_until_a_token_returns() {
    let api = api_with(|state| state.requests_per_s = Some(2));
    let (_, key) = api.tenant("acme", 0).await;
    let (_, other) = api.tenant("other", 0).await;
    let before = api.snapshot();
    for _ in 0..2 {
        assert_eq!(api.call("GET", "/v1/me", Some(&key), None, &[]).await.status, StatusCode::OK);
    }
    let limited = api.json("POST", "/v1/contacts", &key, json!({"contacts": [{"phone": "+306912300001"}]})).await;
    assert_eq!((limited.status, limited.code()), (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED"));
    assert_eq!(before, api.snapshot(), "a limited request changed nothing");
    assert_eq!(
        api.call("GET", "/v1/me", Some(&other), None, &[]).await.status,
        StatusCode::OK,
        "limits are per tenant"
    );
    api.clock.advance_ms(1_000);
    assert_eq!(api.call("GET", "/v1/me", Some(&key), None, &[]).await.status, StatusCode::OK);
}

/// The next server-sent event of `body`, as (event name, JSON data), or `None` at the end.
async fn next_event(body: &mut Body) -> Option<(String, Value)> {
    let mut text = String::new();
    loop {
        let frame = body.frame().await?.expect("the stream does not fail");
        let Ok(data) = frame.into_data() else { continue };
        text.push_str(std::str::from_utf8(&data).unwrap());
        if !text.ends_with("\n\n") {
            continue;
        }
        let field = |name: &str| text.lines().find_map(|line| line.strip_prefix(name)).map(str::to_owned);
        // Keep-alive comments carry neither an event name nor data.
        if let (Some(event), Some(data)) = (field("event: "), field("data: ")) {
            return Some((event, serde_json::from_str(&data).unwrap()));
        }
        text.clear();
    }
}

#[tokio::test(start_paused = true)]
async fn progress_events_follow_the_campaign_until_it_ends() {
    let api = api_with(|state| state.progress_interval = Duration::from_millis(500));
    let (key, campaign, _) = api.draft(1_000).await;
    api.call("POST", &format!("/v1/campaigns/{campaign}/enqueue"), Some(&key), None, &[]).await;
    let request = Request::get(format!("/v1/campaigns/{campaign}/progress"))
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    let response = api.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let started = tokio::time::Instant::now();
    let (event, first) = next_event(&mut body).await.expect("an event at once");
    assert_eq!((event.as_str(), first["status"].as_str()), ("progress", Some("sending")));
    assert_eq!((first["total"].as_u64(), first["progress"].as_u64()), (Some(3), Some(33)));
    assert_eq!(started.elapsed(), Duration::ZERO, "the first event does not wait");

    api.call("POST", &format!("/v1/campaigns/{campaign}/pause"), Some(&key), None, &[]).await;
    let (_, paused) = next_event(&mut body).await.expect("an event per interval");
    assert_eq!(paused["status"].as_str(), Some("paused"));
    assert_eq!(started.elapsed(), Duration::from_millis(500), "one interval of tokio time later");

    let (_, still) = next_event(&mut body).await.expect("events go on while nothing changes");
    assert_eq!(still["status"].as_str(), Some("paused"));
    api.call("POST", &format!("/v1/campaigns/{campaign}/cancel"), Some(&key), None, &[]).await;
    let (_, cancelled) = next_event(&mut body).await.expect("the final event");
    assert_eq!((cancelled["status"].as_str(), cancelled["progress"].as_u64()), (Some("cancelled"), Some(100)));
    assert!(next_event(&mut body).await.is_none(), "the stream ends with the campaign");
}

/// An account whose adapter cannot be built (a credential missing) is refused when it is
/// created, naming the credential, instead of answering 503 to its first webhook.
#[tokio::test]
async fn an_account_without_its_credentials_is_refused_at_creation() {
    let api = api();
    let before = api.store.traffic_accounts().unwrap().len();
    let body = json!({
        "name": "twilio", "provider": "twilio", "base_url": "http://provider", "sender": "ACME", "price_per_segment": 40,
        "credentials": {"account_sid": "AC123"}
    });
    let reply = api.json("POST", "/v1/admin/traffic-accounts", ADMIN, body).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(reply.body["error"]["field"], "credentials", "{}", reply.text);
    assert!(reply.text.contains("auth_token"), "{}", reply.text);
    assert_eq!(api.store.traffic_accounts().unwrap().len(), before);
}
