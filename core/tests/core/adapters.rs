//! The Mitto-style and Twilio-style adapters against wiremock providers on loopback.

use smsim_core::adapter::http::HyperClient;
use smsim_core::adapter::mitto::{wire as mitto_wire, MittoAdapter};
use smsim_core::adapter::twilio::{twilio_signature, wire as twilio_wire, TwilioAdapter};
use smsim_core::adapter::{HttpClient, OutboundMessage, ProviderAdapter, SubmitOutcome, WebhookError, WebhookRequest};
use smsim_core::domain::{ProviderKind, ReportStatus, TrafficAccount};
use smsim_core::{CampaignId, ContactId, Credits, MessageId, TrafficAccountId};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const API_KEY: &str = "mitto-secret-key";
const AUTH_TOKEN: &str = "twilio-auth-token";

fn client() -> Arc<dyn HttpClient> {
    Arc::new(HyperClient::tcp(Duration::from_millis(500)))
}

fn account(provider: ProviderKind, base_url: &str) -> TrafficAccount {
    let credentials = match provider {
        ProviderKind::Mitto => {
            [("api_key", API_KEY), ("traffic_account_id", "ta-77"), ("webhook_token", "hook-secret")]
        }
        ProviderKind::Twilio => [("account_sid", "AC123"), ("auth_token", AUTH_TOKEN), ("unused", "x")],
    };
    TrafficAccount {
        id: TrafficAccountId(3),
        owner: None,
        name: "test".into(),
        provider,
        base_url: base_url.into(),
        credentials: credentials.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
        sender: "SMSIM".into(),
        rate_limit_per_s: None,
        price_per_segment: Credits(55),
        idempotent_submissions: false,
    }
}

fn messages(n: u64) -> Vec<OutboundMessage> {
    (1..=n)
        .map(|i| OutboundMessage {
            id: MessageId::new(CampaignId(1), ContactId(i)),
            destination: format!("+3069123{i:05}"),
            sender: "SMSIM".into(),
            body: format!("hello {i}"),
            status_callback_url: None,
        })
        .collect()
}

/// A Mitto provider that accepts every message of a request, numbering ids from the request.
struct AcceptAll;

impl Respond for AcceptAll {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let bulk: mitto_wire::BulkRequest =
            serde_json::from_slice(&request.body).expect("adapter sends a bulk request");
        let messages = bulk
            .messages
            .iter()
            .map(|message| mitto_wire::BulkResult {
                traffic_account_id: message.traffic_account_id.clone(),
                message_id: Some(format!("id-{}", message.destination)),
                error: None,
            })
            .collect();
        ResponseTemplate::new(200)
            .set_body_json(mitto_wire::BulkResponse { bulk_id: format!("bulk-{}", bulk.messages.len()), messages })
    }
}

async fn mitto_with(response: impl Respond + 'static) -> (MockServer, MittoAdapter) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1.1/Messages/sendmessagesbulk"))
        .respond_with(response)
        .mount(&server)
        .await;
    let adapter = MittoAdapter::from_account(&account(ProviderKind::Mitto, &server.uri()), client()).unwrap();
    (server, adapter)
}

fn accepted_ids(outcomes: &[SubmitOutcome]) -> Vec<String> {
    outcomes
        .iter()
        .map(|outcome| match outcome {
            SubmitOutcome::Accepted { provider_message_id, .. } => provider_message_id.clone(),
            other => panic!("not accepted: {other:?}"),
        })
        .collect()
}

fn assert_all_ambiguous(outcomes: &[SubmitOutcome]) {
    assert!(outcomes.iter().all(|o| matches!(o, SubmitOutcome::Ambiguous { .. })), "{outcomes:?}");
}

fn assert_no_secret(outcomes: &[SubmitOutcome], secret: &str) {
    let text = format!("{outcomes:?}");
    assert!(!text.contains(secret), "a credential leaked into an outcome: {text}");
}

#[tokio::test]
async fn mitto_maps_ids_by_position_and_keeps_the_bulk_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1.1/Messages/sendmessagesbulk"))
        .and(header("x-mitto-api-key", API_KEY))
        .and(header("content-type", "application/json"))
        .and(body_string_contains(r#""trafficAccountId":"ta-77""#))
        .and(body_string_contains(r#""sms":{"text":"hello 1","sender":"SMSIM"}"#))
        .respond_with(AcceptAll)
        .expect(1)
        .mount(&server)
        .await;
    let adapter = MittoAdapter::from_account(&account(ProviderKind::Mitto, &server.uri()), client()).unwrap();
    let outcomes = adapter.submit(&messages(3)).await;
    assert_eq!(accepted_ids(&outcomes), vec!["id-+306912300001", "id-+306912300002", "id-+306912300003"]);
    assert!(matches!(&outcomes[0], SubmitOutcome::Accepted { bulk_id: Some(bulk), .. } if bulk == "bulk-3"));
}

#[tokio::test]
async fn mitto_splits_a_batch_larger_than_its_maximum_never_truncates() {
    let (server, adapter) = mitto_with(AcceptAll).await;
    let outcomes = adapter.submit(&messages(450)).await;
    assert_eq!(accepted_ids(&outcomes).len(), 450);
    let sizes: Vec<usize> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice::<mitto_wire::BulkRequest>(&r.body).unwrap().messages.len())
        .collect();
    assert_eq!(sizes, vec![200, 200, 50]);
}

#[tokio::test]
async fn mitto_answer_of_the_wrong_length_makes_the_whole_batch_ambiguous() {
    let short = mitto_wire::BulkResponse {
        bulk_id: "b".into(),
        messages: vec![mitto_wire::BulkResult {
            traffic_account_id: "ta-77".into(),
            message_id: Some("only-one".into()),
            error: None,
        }],
    };
    let (_server, adapter) = mitto_with(ResponseTemplate::new(200).set_body_json(short)).await;
    assert_all_ambiguous(&adapter.submit(&messages(2)).await);
}

#[tokio::test]
async fn mitto_partial_failure_marks_exactly_the_failed_ones() {
    let answer = mitto_wire::BulkResponse {
        bulk_id: "b".into(),
        messages: vec![
            mitto_wire::BulkResult { traffic_account_id: "ta-77".into(), message_id: Some("ok-1".into()), error: None },
            mitto_wire::BulkResult {
                traffic_account_id: "ta-77".into(),
                message_id: None,
                error: Some(mitto_wire::BulkError { code: "INVALID_DESTINATION".into(), message: "bad".into() }),
            },
            mitto_wire::BulkResult {
                traffic_account_id: "ta-77".into(),
                message_id: None,
                error: Some(mitto_wire::BulkError { code: "THROTTLED".into(), message: "slow down".into() }),
            },
        ],
    };
    let (_server, adapter) = mitto_with(ResponseTemplate::new(200).set_body_json(answer)).await;
    let outcomes = adapter.submit(&messages(3)).await;
    assert!(
        matches!(&outcomes[0], SubmitOutcome::Accepted { provider_message_id, .. } if provider_message_id == "ok-1")
    );
    assert!(matches!(&outcomes[1], SubmitOutcome::Failed(f) if f.code == "INVALID_DESTINATION" && !f.retryable));
    assert!(matches!(&outcomes[2], SubmitOutcome::Failed(f) if f.code == "THROTTLED" && f.retryable));
}

#[tokio::test]
async fn mitto_http_errors_are_classified() {
    let cases = [
        (ResponseTemplate::new(429).insert_header("retry-after", "7"), "HTTP_429", true, Some(7_000)),
        (ResponseTemplate::new(503), "HTTP_503", true, None),
        (
            ResponseTemplate::new(400).set_body_string(format!("bad request for key {API_KEY}?")),
            "HTTP_400",
            false,
            None,
        ),
        (ResponseTemplate::new(401), "HTTP_401", false, None),
    ];
    for (response, code, retryable, retry_after_ms) in cases {
        let (_server, adapter) = mitto_with(response).await;
        let outcomes = adapter.submit(&messages(2)).await;
        assert_no_secret(&outcomes, API_KEY);
        for outcome in &outcomes {
            let SubmitOutcome::Failed(failure) = outcome else { panic!("{code}: {outcome:?}") };
            assert_eq!(
                (failure.code.as_str(), failure.retryable, failure.retry_after_ms),
                (code, retryable, retry_after_ms)
            );
        }
    }
}

#[tokio::test]
async fn mitto_unreadable_success_answers_are_ambiguous_never_failed() {
    let answers = [
        ResponseTemplate::new(200).set_body_raw("{\"bulkId\":\"b\",\"messages\":[", "application/json"),
        ResponseTemplate::new(200).set_body_raw("not json", "application/json"),
        ResponseTemplate::new(200).set_body_raw("", "application/json"),
        ResponseTemplate::new(200).set_body_raw("<html>ok</html>", "text/html"),
    ];
    for answer in answers {
        let (_server, adapter) = mitto_with(answer).await;
        let outcomes = adapter.submit(&messages(2)).await;
        assert_all_ambiguous(&outcomes);
        assert_no_secret(&outcomes, API_KEY);
    }
}

#[tokio::test]
async fn a_lost_answer_is_ambiguous_and_a_refused_connection_is_retryable() {
    let (_server, adapter) = mitto_with(AcceptAll.delayed()).await;
    assert_all_ambiguous(&adapter.submit(&messages(1)).await);
    let nowhere = MittoAdapter::from_account(&account(ProviderKind::Mitto, "http://127.0.0.1:9"), client()).unwrap();
    let outcomes = nowhere.submit(&messages(2)).await;
    assert!(
        outcomes.iter().all(|o| matches!(o, SubmitOutcome::Failed(f) if f.code == "NETWORK" && f.retryable)),
        "{outcomes:?}"
    );
    assert_no_secret(&outcomes, API_KEY);
}

trait Delayed {
    fn delayed(self) -> ResponseTemplate;
}

impl Delayed for AcceptAll {
    fn delayed(self) -> ResponseTemplate {
        // Longer than the client's 500 ms timeout: the provider accepted, the answer is lost.
        ResponseTemplate::new(200)
            .set_body_json(mitto_wire::BulkResponse { bulk_id: "late".into(), messages: vec![] })
            .set_delay(Duration::from_secs(2))
    }
}

fn webhook(url: &str, content_type: &str, body: &str) -> WebhookRequest {
    WebhookRequest {
        url: url.into(),
        headers: BTreeMap::from([("content-type".to_owned(), content_type.to_owned())]),
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn mitto_webhooks_parse_one_or_many_and_require_the_token() {
    let adapter = MittoAdapter::from_account(&account(ProviderKind::Mitto, "http://p"), client()).unwrap();
    let url = "https://engine/v1/webhooks/mitto/ta_3?token=hook-secret";
    let one = adapter
        .parse_webhook(&webhook(url, "application/json", r#"{"messageId":"m1","deliveryStatus":"Delivered"}"#))
        .unwrap();
    assert_eq!((one.len(), one[0].provider_message_id.as_str(), &one[0].status), (1, "m1", &ReportStatus::Delivered));
    let many = adapter
        .parse_webhook(&webhook(
            url,
            "application/json; charset=utf-8",
            r#"[{"messageId":"m1","deliveryStatus":"Sent"},{"messageId":"m1","deliveryStatus":"Sent"},{"messageId":"m2","deliveryStatus":"Failure","errorCode":"E42"},{"messageId":"m3","deliveryStatus":"Lost"}]"#,
        ))
        .unwrap();
    let statuses: Vec<ReportStatus> = many.iter().map(|r| r.status.clone()).collect();
    assert_eq!(
        statuses,
        vec![
            ReportStatus::Accepted,
            ReportStatus::Accepted,
            ReportStatus::Undelivered,
            ReportStatus::Unrecognized("Lost".into())
        ]
    );
    assert_eq!(many[2].error_code.as_deref(), Some("E42"));
    let body = r#"{"messageId":"m1","deliveryStatus":"Delivered"}"#;
    assert_eq!(
        adapter.parse_webhook(&webhook("https://engine/x", "application/json", body)),
        Err(WebhookError::MissingSignature)
    );
    assert_eq!(
        adapter.parse_webhook(&webhook("https://engine/x?token=guess", "application/json", body)),
        Err(WebhookError::BadSignature)
    );
    assert!(matches!(adapter.parse_webhook(&webhook(url, "text/plain", body)), Err(WebhookError::ContentType(_))));
    assert!(matches!(
        adapter.parse_webhook(&webhook(url, "application/json", "{\"messageId\":")),
        Err(WebhookError::Malformed(_))
    ));
    let huge = format!("[{}]", vec![body; 10_000].join(","));
    assert!(matches!(
        adapter.parse_webhook(&webhook(url, "application/json", &huge)),
        Err(WebhookError::TooLarge { .. })
    ));
}

async fn twilio_with(response: ResponseTemplate) -> (MockServer, TwilioAdapter) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/2010-04-01/Accounts/AC123/Messages.json"))
        .respond_with(response)
        .mount(&server)
        .await;
    let adapter =
        TwilioAdapter::from_account(&account(ProviderKind::Twilio, &server.uri()), client(), "https://engine.example")
            .unwrap();
    (server, adapter)
}

fn twilio_resource(sid: &str, status: &str, body: &str) -> twilio_wire::MessageResource {
    twilio_wire::MessageResource {
        sid: sid.into(),
        status: status.into(),
        to: "+306912300001".into(),
        from: Some("SMSIM".into()),
        body: body.into(),
        error_code: None,
        error_message: None,
        num_segments: Some("1".into()),
        price: None,
    }
}

#[tokio::test]
async fn twilio_sends_one_form_request_per_message_with_basic_auth_and_callback() {
    let (server, adapter) =
        twilio_with(ResponseTemplate::new(201).set_body_json(twilio_resource("SM1", "queued", "hello 1"))).await;
    let outcomes = adapter.submit(&messages(2)).await;
    assert_eq!(accepted_ids(&outcomes), vec!["SM1", "SM1"]);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    let auth = requests[0].headers.get("authorization").unwrap().to_str().unwrap().to_owned();
    assert_eq!(auth, format!("Basic {}", base64_of("AC123:twilio-auth-token")));
    let form: twilio_wire::SendForm = serde_urlencoded::from_bytes(&requests[0].body).unwrap();
    assert_eq!(
        (form.to.as_str(), form.from.as_deref(), form.body.as_str()),
        ("+306912300001", Some("SMSIM"), "hello 1")
    );
    assert_eq!(
        form.status_callback.as_deref(),
        Some("https://engine.example/v1/webhooks/twilio/ta_3?message_id=msg_1_1")
    );
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn twilio_error_codes_are_classified() {
    let error = |code: i64, status: u16| twilio_wire::ErrorBody { code, message: format!("error {code}"), status };
    let cases = [
        (ResponseTemplate::new(400).set_body_json(error(21211, 400)), "21211", false),
        (ResponseTemplate::new(400).set_body_json(error(21610, 400)), "21610", false),
        (ResponseTemplate::new(429).set_body_json(error(20429, 429)).insert_header("retry-after", "2"), "20429", true),
        (ResponseTemplate::new(500), "HTTP_500", true),
        (ResponseTemplate::new(400).set_body_string(format!("bad token {AUTH_TOKEN}")), "HTTP_400", false),
    ];
    for (response, code, retryable) in cases {
        let (_server, adapter) = twilio_with(response).await;
        let outcomes = adapter.submit(&messages(1)).await;
        let SubmitOutcome::Failed(failure) = &outcomes[0] else { panic!("{code}: {outcomes:?}") };
        assert_eq!((failure.code.as_str(), failure.retryable), (code, retryable));
        assert_no_secret(&outcomes, AUTH_TOKEN);
    }
}

#[tokio::test]
async fn twilio_lookup_finds_an_ambiguous_submission_by_body() {
    let server = MockServer::start().await;
    let list = twilio_wire::MessageList {
        messages: vec![twilio_resource("SM9", "delivered", "hello 1"), twilio_resource("SM8", "sent", "other")],
    };
    Mock::given(method("GET"))
        .and(path("/2010-04-01/Accounts/AC123/Messages.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list))
        .mount(&server)
        .await;
    let adapter =
        TwilioAdapter::from_account(&account(ProviderKind::Twilio, &server.uri()), client(), "https://e").unwrap();
    let mut wanted = messages(2);
    let found = adapter.lookup(&wanted[0]).await;
    assert_eq!(
        found,
        smsim_core::adapter::LookupOutcome::Accepted {
            provider_message_id: "SM9".into(),
            status: Some(ReportStatus::Delivered)
        }
    );
    wanted[1].body = "never sent".into();
    assert_eq!(adapter.lookup(&wanted[1]).await, smsim_core::adapter::LookupOutcome::NotFound);
}

fn signed_callback(url: &str, params: &[(&str, &str)], token: &str) -> WebhookRequest {
    let params: BTreeMap<String, String> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let signature = twilio_signature(token, url, &params);
    let mut request = webhook(url, "application/x-www-form-urlencoded", &serde_urlencoded::to_string(&params).unwrap());
    request.headers.insert("x-twilio-signature".into(), signature);
    request
}

#[test]
fn twilio_callbacks_are_authenticated_and_name_our_message() {
    let adapter =
        TwilioAdapter::from_account(&account(ProviderKind::Twilio, "http://p"), client(), "https://engine").unwrap();
    let url = "https://engine/v1/webhooks/twilio/ta_3?message_id=msg_1_2";
    let params =
        [("MessageSid", "SM5"), ("MessageStatus", "undelivered"), ("ErrorCode", "30005"), ("AccountSid", "AC123")];
    let reports = adapter.parse_webhook(&signed_callback(url, &params, AUTH_TOKEN)).unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].provider_message_id, "SM5");
    assert_eq!(reports[0].status, ReportStatus::Undelivered);
    assert_eq!(reports[0].error_code.as_deref(), Some("30005"));
    assert_eq!(reports[0].message_ref, Some(MessageId::new(CampaignId(1), ContactId(2))));
    // Signed over the URL with the explicit default port: still accepted.
    let with_port =
        signed_callback("https://engine:443/v1/webhooks/twilio/ta_3?message_id=msg_1_2", &params, AUTH_TOKEN);
    let as_received = WebhookRequest { url: url.into(), ..with_port };
    assert!(adapter.parse_webhook(&as_received).is_ok());
    // Forged with another token, tampered with, or unsigned: refused.
    assert_eq!(adapter.parse_webhook(&signed_callback(url, &params, "wrong")), Err(WebhookError::BadSignature));
    let mut tampered = signed_callback(url, &params, AUTH_TOKEN);
    tampered.body = b"MessageSid=SM5&MessageStatus=delivered&ErrorCode=30005&AccountSid=AC123".to_vec();
    assert_eq!(adapter.parse_webhook(&tampered), Err(WebhookError::BadSignature));
    let mut unsigned = signed_callback(url, &params, AUTH_TOKEN);
    unsigned.headers.remove("x-twilio-signature");
    assert_eq!(adapter.parse_webhook(&unsigned), Err(WebhookError::MissingSignature));
    let mut json = signed_callback(url, &params, AUTH_TOKEN);
    json.headers.insert("content-type".into(), "application/json".into());
    assert!(matches!(adapter.parse_webhook(&json), Err(WebhookError::ContentType(_))));
}

#[test]
fn missing_credentials_are_a_configuration_error_naming_them() {
    let mut broken = account(ProviderKind::Mitto, "http://p");
    broken.credentials.remove("api_key");
    let error = MittoAdapter::from_account(&broken, client()).unwrap_err();
    assert!(error.to_string().contains("api_key"), "{error}");
}
