//! Serve mode end to end on loopback: the real API, workers and maintenance on SQLite
//! send a campaign through a wiremock Mitto-style provider, and delivery reports come
//! back through the webhook.

use serde_json::{json, Value};
use smsim_cli::serve::{Database, Engine, Role, ServeOptions};
use smsim_core::adapter::http::HyperClient;
use smsim_core::adapter::mitto::wire as mitto;
use smsim_core::adapter::{HttpClient, HttpRequest};
use smsim_core::service::EngineConfig;
use std::collections::BTreeMap;
use std::time::Duration;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

struct AcceptAll;

impl Respond for AcceptAll {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let bulk: mitto::BulkRequest = serde_json::from_slice(&request.body).expect("a bulk request");
        let messages = bulk
            .messages
            .iter()
            .map(|m| mitto::BulkResult {
                traffic_account_id: m.traffic_account_id.clone(),
                message_id: Some(format!("id-{}", m.destination)),
                error: None,
            })
            .collect();
        ResponseTemplate::new(200).set_body_json(mitto::BulkResponse { bulk_id: "bulk".into(), messages })
    }
}

struct Client {
    http: HyperClient<hyper_util::client::legacy::connect::HttpConnector>,
    base: String,
}

impl Client {
    async fn call(&self, method: http::Method, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
        let mut headers = BTreeMap::from([("authorization".to_owned(), format!("Bearer {key}"))]);
        if body.is_some() {
            headers.insert("content-type".into(), "application/json".into());
        }
        let request = HttpRequest {
            method,
            url: format!("{}{path}", self.base),
            headers,
            body: body.map(|b| bytes::Bytes::from(b.to_string())).unwrap_or_default(),
        };
        let response = self.http.send(request).await.expect("the API answers");
        (response.status, serde_json::from_slice(&response.body).unwrap_or(Value::Null))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_is_sent_and_reported_through_the_real_stack() {
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1.1/Messages/sendmessagesbulk"))
        .respond_with(AcceptAll)
        .mount(&provider)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let options = ServeOptions {
        db: Database::Sqlite(dir.path().join("smsim.db")),
        roles: Role::ALL.to_vec(),
        workers: 2,
        admin_token: Some("admin".into()),
        public_url: base.clone(),
        provider_timeout: Duration::from_secs(5),
        engine: EngineConfig {
            idle_poll_ms: 20,
            maintenance_interval_ms: 50,
            claim_batch: 7,
            ..EngineConfig::default()
        },
        parked_retention_ms: smsim_core::service::maintenance::DEFAULT_PARKED_RETENTION_MS,
    };
    let engine = Engine::start(options, Some(listener)).await.unwrap();
    let client = Client { http: HyperClient::tcp(Duration::from_secs(5)), base };
    use http::Method;

    let (status, created) =
        client.call(Method::POST, "/v1/admin/tenants", "admin", Some(json!({"name": "acme", "credits": 10_000}))).await;
    assert_eq!(status, 201);
    let key = created["api_key"].as_str().unwrap().to_owned();
    let account = json!({
        "name": "mitto", "provider": "mitto", "base_url": provider.uri(), "sender": "ACME", "price_per_segment": 55,
        "credentials": {"api_key": "k", "traffic_account_id": "ta-1", "webhook_token": "hook"}
    });
    let (status, account) = client.call(Method::POST, "/v1/admin/traffic-accounts", "admin", Some(account)).await;
    assert_eq!(status, 201);
    let account = account["id"].as_str().unwrap().to_owned();
    let contacts: Vec<Value> = (0..20).map(|n| json!({"phone": format!("+3069123{n:05}")})).collect();
    let (status, _) = client.call(Method::POST, "/v1/contacts", &key, Some(json!({ "contacts": contacts }))).await;
    assert_eq!(status, 200);
    let campaign = json!({"name": "spring", "body_template": "Spring sale today", "traffic_account": account});
    let (_, campaign) = client.call(Method::POST, "/v1/campaigns", &key, Some(campaign)).await;
    let id = campaign["id"].as_str().unwrap().to_owned();
    let (status, _) = client.call(Method::POST, &format!("/v1/campaigns/{id}/enqueue"), &key, None).await;
    assert_eq!(status, 202);

    let mut view = Value::Null;
    for _ in 0..200 {
        view = client.call(Method::GET, &format!("/v1/campaigns/{id}"), &key, None).await.1;
        if view["status"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        (view["status"].as_str(), view["sent"].as_u64(), view["progress"].as_u64()),
        (Some("completed"), Some(20), Some(100)),
        "{view}"
    );
    let sent: usize = provider
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice::<mitto::BulkRequest>(&r.body).unwrap().messages.len())
        .sum();
    assert_eq!(sent, 20, "each message reached the provider exactly once");

    let reports: Vec<mitto::DeliveryReport> = (0..20)
        .map(|n| mitto::DeliveryReport {
            message_id: format!("id-+3069123{n:05}"),
            delivery_status: "Delivered".into(),
            error_code: None,
        })
        .collect();
    let webhook = HttpRequest {
        method: Method::POST,
        url: format!("{}/v1/webhooks/mitto/{account}?token=hook", client.base),
        headers: BTreeMap::from([("content-type".to_owned(), "application/json".to_owned())]),
        body: bytes::Bytes::from(serde_json::to_vec(&reports).unwrap()),
    };
    let answer = client.http.send(webhook).await.unwrap();
    assert_eq!(answer.status, 200);
    let summary: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(summary["applied"].as_u64(), Some(20), "{summary}");
    let (_, view) = client.call(Method::GET, &format!("/v1/campaigns/{id}"), &key, None).await;
    assert_eq!(view["delivered"].as_u64(), Some(20));
    let (_, me) = client.call(Method::GET, "/v1/me", &key, None).await;
    assert_eq!(
        (me["charged"].as_i64(), me["reserved"].as_i64(), me["balance"].as_i64()),
        (Some(1_100), Some(0), Some(8_900))
    );

    // The same reports again, each its own webhook and all at once, as Twilio-style
    // providers call back: they share transactions (group commit), yet each webhook is
    // answered for its own report — a duplicate now — and nothing is charged twice.
    let http = std::sync::Arc::new(HyperClient::tcp(Duration::from_secs(5)));
    let singles: Vec<_> = reports
        .iter()
        .map(|report| {
            let request = HttpRequest {
                method: Method::POST,
                url: format!("{}/v1/webhooks/mitto/{account}?token=hook", client.base),
                headers: BTreeMap::from([("content-type".to_owned(), "application/json".to_owned())]),
                body: bytes::Bytes::from(serde_json::to_vec(report).unwrap()),
            };
            let http = http.clone();
            tokio::spawn(async move { http.send(request).await.unwrap() })
        })
        .collect();
    for single in singles {
        let answer = single.await.unwrap();
        let summary: Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!((answer.status, summary["duplicates"].as_u64()), (200, Some(1)), "{summary}");
    }
    let (_, me) = client.call(Method::GET, "/v1/me", &key, None).await;
    assert_eq!((me["charged"].as_i64(), me["balance"].as_i64()), (Some(1_100), Some(8_900)));
    engine.stop();
}

/// Serve mode ends when any task ends: a panicking worker is reported by name while the
/// API (here: a task that would run for ever) is still up, and the rest are stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_mode_ends_when_a_worker_panics_or_returns() {
    use smsim_cli::serve::{TaskEnded, Tasks};
    let mut tasks = Tasks::default();
    tasks.spawn("api", std::future::pending());
    tasks.spawn("worker-1", async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        panic!("a worker bug");
    });
    let ended = tokio::time::timeout(Duration::from_secs(10), tasks.first_to_end()).await.expect("serve mode ended");
    assert_eq!(ended, TaskEnded { task: "worker-1".into(), panicked: true });

    let mut tasks = Tasks::default();
    tasks.spawn("api", std::future::pending());
    tasks.spawn("maintenance", async {});
    let ended = tokio::time::timeout(Duration::from_secs(10), tasks.first_to_end()).await.expect("serve mode ended");
    assert_eq!(ended, TaskEnded { task: "maintenance".into(), panicked: false });
}
