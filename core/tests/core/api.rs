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
use smsim_core::service::Adapters;
use smsim_core::store::memory::MemoryStore;
use smsim_core::store::{ClaimOutcome, ClaimRequest, Store, SubmissionResult};
use smsim_core::Timestamp;
use std::collections::BTreeMap;
use std::sync::Arc;
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
    store: Arc<MemoryStore>,
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
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock::new(T0));
    let adapters = Arc::new(Adapters::builtin(Arc::new(NoNetwork), "https://sms.example.com"));
    let state = ApiState::new(
        store.clone(),
        clock,
        adapters,
        Some(ADMIN.into()),
        "https://sms.example.com",
        rand_chacha_seeded(),
    );
    Api { store, app: router(Arc::new(state)) }
}

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
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
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
}

#[tokio::test]
async fn oversized_bodies_and_imports_are_refused() {
    let api = api();
    let (key, _, _) = api.draft(1_000).await;
    let before = api.snapshot();
    let huge = format!("{{\"contacts\":[{{\"phone\":\"{}\"}}]}}", "1".repeat(2 * 1024 * 1024));
    let reply = api.call("POST", "/v1/contacts", Some(&key), Some(&huge), &[]).await;
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
    assert_eq!(first.body["messages"], second.body["messages"]);
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
    let (_, key_b) = api.tenant("other", 1_000).await;
    let before = api.snapshot();
    for (method, suffix) in [
        ("GET", ""),
        ("GET", "/preview"),
        ("POST", "/enqueue"),
        ("POST", "/pause"),
        ("POST", "/cancel"),
        ("GET", "/failures"),
    ] {
        let reply = api.call(method, &format!("/v1/campaigns/{campaign}{suffix}"), Some(&key_b), None, &[]).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::NOT_FOUND, "NOT_FOUND"), "{method} {suffix}");
    }
    let reply = api.json("PATCH", &format!("/v1/campaigns/{campaign}"), &key_b, json!({"name": "mine now"})).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let contacts = api.call("GET", "/v1/contacts", Some(&key_b), None, &[]).await;
    assert_eq!(contacts.body.as_array().map(Vec::len), Some(0));
    assert_eq!(before, api.snapshot());
    let mine = api.call("GET", &format!("/v1/campaigns/{campaign}"), Some(&key_a), None, &[]).await;
    assert_eq!(mine.status, StatusCode::OK);
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

/// Sends the campaign's two messages as if a worker did, so reports have something to find.
fn accept_all(store: &MemoryStore) {
    let ClaimOutcome::Claimed(claim) = store
        .claim(ClaimRequest { worker: "w".into(), traffic_account: None, max_messages: 10, lease_ms: 10_000 }, T0)
        .unwrap()
    else {
        panic!("nothing to claim")
    };
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
    accept_all(&api.store);
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
