//! The Mitto-style, Twilio-style and Infobip-style adapters against wiremock providers on loopback.

use smsim_core::adapter::http::HyperClient;
use smsim_core::adapter::infobip::{wire as infobip_wire, InfobipAdapter};
use smsim_core::adapter::mitto::{wire as mitto_wire, MittoAdapter};
use smsim_core::adapter::twilio::{twilio_signature, wire as twilio_wire, TwilioAdapter};
use smsim_core::adapter::{
    adapter_for, capabilities_of, HttpClient, LookupOutcome, OutboundMessage, ProviderAdapter, SubmitOutcome,
    WebhookError, WebhookRequest,
};
use smsim_core::domain::{ProviderKind, ReportStatus, TrafficAccount};
use smsim_core::{CampaignId, ContactId, Credits, MessageId, TrafficAccountId};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{body_string_contains, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const API_KEY: &str = "mitto-secret-key";
const AUTH_TOKEN: &str = "twilio-auth-token";
const INFOBIP_KEY: &str = "infobip-secret-key";
const INFOBIP_HOOK: &str = "infobip-hook";

fn client() -> Arc<dyn HttpClient> {
    Arc::new(HyperClient::tcp(Duration::from_millis(500)))
}

fn account(provider: ProviderKind, base_url: &str) -> TrafficAccount {
    let credentials = match provider {
        ProviderKind::Mitto => {
            [("api_key", API_KEY), ("traffic_account_id", "ta-77"), ("webhook_token", "hook-secret")]
        }
        ProviderKind::Twilio => [("account_sid", "AC123"), ("auth_token", AUTH_TOKEN), ("unused", "x")],
        ProviderKind::Infobip => [("api_key", INFOBIP_KEY), ("webhook_token", INFOBIP_HOOK), ("unused", "x")],
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
        messaging_service_sid: None,
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
        messages: vec![
            twilio_resource("SM9", "delivered", "hello 1"),
            twilio_resource("SM8", "sent", "other"),
            twilio_wire::MessageResource {
                error_code: Some(30003),
                ..twilio_resource("SM7", "undelivered", "hello 3")
            },
        ],
        next_page_uri: None,
        page: 0,
        page_size: 50,
    };
    Mock::given(method("GET"))
        .and(path("/2010-04-01/Accounts/AC123/Messages.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(list))
        .mount(&server)
        .await;
    let adapter =
        TwilioAdapter::from_account(&account(ProviderKind::Twilio, &server.uri()), client(), "https://e").unwrap();
    let mut wanted = messages(3);
    let found = adapter.lookup(&wanted[0]).await;
    assert_eq!(
        found,
        smsim_core::adapter::LookupOutcome::Accepted {
            provider_message_id: "SM9".into(),
            status: Some(ReportStatus::Delivered),
            error_code: None
        }
    );
    wanted[1].body = "never sent".into();
    assert_eq!(adapter.lookup(&wanted[1]).await, smsim_core::adapter::LookupOutcome::NotFound);
    // Not delivered: the resource's error code is what the lookup carries, as the status
    // callback would.
    assert_eq!(
        adapter.lookup(&wanted[2]).await,
        smsim_core::adapter::LookupOutcome::Accepted {
            provider_message_id: "SM7".into(),
            status: Some(ReportStatus::Undelivered),
            error_code: Some("30003".into())
        }
    );
}

/// A message sent through a messaging service went out from a number of the service's
/// pool, not from the account's sender: the lookup must not filter by `From` (real Twilio
/// would find nothing), and must follow the pages to find it.
#[tokio::test]
async fn twilio_lookup_of_a_messaging_service_send_asks_without_from_and_follows_pages() {
    use wiremock::matchers::{query_param, query_param_is_missing};
    let server = MockServer::start().await;
    let pooled = |sid: &str, body: &str| twilio_wire::MessageResource {
        from: Some("+15005550101".into()),
        messaging_service_sid: Some("MG1".into()),
        ..twilio_resource(sid, "delivered", body)
    };
    let page = |messages, next: Option<&str>, page| twilio_wire::MessageList {
        messages,
        next_page_uri: next.map(str::to_owned),
        page,
        page_size: 1,
    };
    let first = page(vec![pooled("SM2", "other")], Some("/2010-04-01/Accounts/AC123/Messages.json?To=x&Page=1"), 0);
    let second = page(vec![pooled("SM1", "hello 1")], None, 1);
    Mock::given(method("GET"))
        .and(path("/2010-04-01/Accounts/AC123/Messages.json"))
        .and(query_param_is_missing("From"))
        .and(query_param("Page", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(second))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/2010-04-01/Accounts/AC123/Messages.json"))
        .and(query_param_is_missing("From"))
        .and(query_param_is_missing("Page"))
        .respond_with(ResponseTemplate::new(200).set_body_json(first))
        .mount(&server)
        .await;
    let mut account = account(ProviderKind::Twilio, &server.uri());
    account.credentials.insert("messaging_service_sid".into(), "MG1".into());
    let adapter = TwilioAdapter::from_account(&account, client(), "https://e").unwrap();
    let wanted = messages(2);
    assert_eq!(
        adapter.lookup(&wanted[0]).await,
        LookupOutcome::Accepted {
            provider_message_id: "SM1".into(),
            status: Some(ReportStatus::Delivered),
            error_code: None
        },
        "found on the second page, by destination and body"
    );
    assert_eq!(adapter.lookup(&wanted[1]).await, LookupOutcome::NotFound, "both pages read, no such body");
}

/// A search that could not reach the last page never concludes "not accepted".
#[tokio::test]
async fn twilio_lookup_that_cannot_reach_the_end_is_undecided() {
    let server = MockServer::start().await;
    let endless = twilio_wire::MessageList {
        messages: vec![twilio_resource("SM2", "sent", "other")],
        next_page_uri: Some("/2010-04-01/Accounts/AC123/Messages.json?Page=again".into()),
        page: 0,
        page_size: 1,
    };
    Mock::given(method("GET"))
        .and(path("/2010-04-01/Accounts/AC123/Messages.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(endless))
        .mount(&server)
        .await;
    let adapter =
        TwilioAdapter::from_account(&account(ProviderKind::Twilio, &server.uri()), client(), "https://e").unwrap();
    assert!(matches!(adapter.lookup(&messages(1)[0]).await, LookupOutcome::Unavailable { .. }));
    let asked = server.received_requests().await.unwrap().len();
    assert_eq!(asked, smsim_core::adapter::twilio::LOOKUP_PAGES, "bounded");
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

#[test]
fn every_kind_is_named_built_and_declares_its_capabilities() {
    for kind in ProviderKind::ALL {
        assert_eq!(ProviderKind::parse(kind.as_str()), Some(kind));
        let adapter = adapter_for(&account(kind, "http://p"), client(), "https://engine").unwrap();
        assert_eq!((adapter.kind(), adapter.capabilities()), (kind, capabilities_of(kind)));
    }
    assert_eq!(ProviderKind::parse("sinch"), None);
}

/// An Infobip provider that takes every message, echoes its id, and answers in reverse
/// order (the order of an Infobip answer is not guaranteed), refusing `reject`ed ids.
struct InfobipTakes {
    reject: Vec<&'static str>,
}

impl Respond for InfobipTakes {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let send: infobip_wire::SendRequest = serde_json::from_slice(&request.body).expect("adapter sends a request");
        let mut messages: Vec<infobip_wire::SentMessage> = send
            .messages
            .iter()
            .flat_map(|message| &message.destinations)
            .map(|destination| {
                let id = destination.message_id.clone().expect("the adapter names every message");
                let status = if self.reject.contains(&id.as_str()) {
                    infobip_wire::Status::new(infobip_wire::Group::Rejected, 14, "REJECTED_DESTINATION", "refused")
                } else {
                    infobip_wire::Status::new(infobip_wire::Group::Pending, 26, "PENDING_ACCEPTED", "taken")
                };
                infobip_wire::SentMessage { to: destination.to.clone(), message_id: id, status }
            })
            .collect();
        messages.reverse();
        ResponseTemplate::new(200)
            .set_body_json(infobip_wire::SendResponse { bulk_id: Some(format!("bulk-{}", messages.len())), messages })
    }
}

async fn infobip_with(response: impl Respond + 'static) -> (MockServer, InfobipAdapter) {
    let server = MockServer::start().await;
    Mock::given(method("POST")).and(path("/sms/2/text/advanced")).respond_with(response).mount(&server).await;
    let adapter = InfobipAdapter::from_account(
        &account(ProviderKind::Infobip, &server.uri()),
        client(),
        "https://engine.example",
    )
    .unwrap();
    (server, adapter)
}

fn our_ids(n: u64) -> Vec<String> {
    messages(n).iter().map(|message| message.id.to_string()).collect()
}

#[tokio::test]
async fn infobip_sends_our_ids_and_maps_a_reversed_answer_back_by_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/sms/2/text/advanced"))
        .and(header("authorization", format!("App {INFOBIP_KEY}").as_str()))
        .and(header("content-type", "application/json"))
        .respond_with(InfobipTakes { reject: vec![] })
        .expect(1)
        .mount(&server)
        .await;
    let adapter = InfobipAdapter::from_account(
        &account(ProviderKind::Infobip, &server.uri()),
        client(),
        "https://engine.example",
    )
    .unwrap();
    let outcomes = adapter.submit(&messages(3)).await;
    assert_eq!(accepted_ids(&outcomes), our_ids(3), "each outcome is its own message's, whatever the answer's order");
    assert!(matches!(&outcomes[0], SubmitOutcome::Accepted { bulk_id: Some(bulk), .. } if bulk == "bulk-3"));
    let request = &server.received_requests().await.unwrap()[0];
    let sent: infobip_wire::SendRequest = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(sent.messages.len(), 3, "one entry per message");
    let first = &sent.messages[0];
    assert_eq!((first.from.as_str(), first.text.as_str(), first.destinations.len()), ("SMSIM", "hello 1", 1));
    assert_eq!(
        (first.destinations[0].to.as_str(), first.destinations[0].message_id.as_deref()),
        ("+306912300001", Some("msg_1_1"))
    );
    assert_eq!(
        first.notify_url.as_deref(),
        Some(format!("https://engine.example/v1/webhooks/infobip/ta_3?token={INFOBIP_HOOK}").as_str())
    );
    assert_eq!(first.notify_content_type.as_deref(), Some("application/json"));
}

#[tokio::test]
async fn infobip_splits_a_batch_larger_than_its_maximum_never_truncates() {
    let (server, adapter) = infobip_with(InfobipTakes { reject: vec![] }).await;
    let outcomes = adapter.submit(&messages(250)).await;
    assert_eq!(accepted_ids(&outcomes), our_ids(250));
    let sizes: Vec<usize> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice::<infobip_wire::SendRequest>(&r.body).unwrap().messages.len())
        .collect();
    assert_eq!(sizes, vec![100, 100, 50]);
}

#[tokio::test]
async fn infobip_partial_rejection_fails_exactly_the_rejected_ones_permanently() {
    let (_server, adapter) = infobip_with(InfobipTakes { reject: vec!["msg_1_2"] }).await;
    let outcomes = adapter.submit(&messages(3)).await;
    assert!(
        matches!(&outcomes[0], SubmitOutcome::Accepted { provider_message_id, .. } if provider_message_id == "msg_1_1")
    );
    assert!(
        matches!(&outcomes[1], SubmitOutcome::Failed(f) if f.code == "REJECTED_DESTINATION" && !f.retryable),
        "{outcomes:?}"
    );
    assert!(
        matches!(&outcomes[2], SubmitOutcome::Accepted { provider_message_id, .. } if provider_message_id == "msg_1_3")
    );
}

#[tokio::test]
async fn infobip_answer_leaving_a_message_out_makes_only_that_one_ambiguous() {
    let pending = |id: &str| infobip_wire::SentMessage {
        to: String::new(),
        message_id: id.into(),
        status: infobip_wire::Status::new(infobip_wire::Group::Pending, 26, "PENDING_ACCEPTED", ""),
    };
    let answer = infobip_wire::SendResponse {
        bulk_id: Some("b".into()),
        messages: vec![pending("msg_1_3"), pending("somebody-else"), pending("msg_1_1")],
    };
    let (_server, adapter) = infobip_with(ResponseTemplate::new(200).set_body_json(answer)).await;
    let outcomes = adapter.submit(&messages(3)).await;
    assert!(
        matches!(&outcomes[0], SubmitOutcome::Accepted { provider_message_id, .. } if provider_message_id == "msg_1_1")
    );
    assert!(
        matches!(&outcomes[1], SubmitOutcome::Ambiguous { detail } if detail.contains("msg_1_2") && detail.contains("somebody-else")),
        "{outcomes:?}"
    );
    assert!(
        matches!(&outcomes[2], SubmitOutcome::Accepted { provider_message_id, .. } if provider_message_id == "msg_1_3")
    );
}

#[tokio::test]
async fn infobip_http_errors_are_classified_and_named_by_the_error_body() {
    let error = |code: &str| serde_json::json!({"requestError": {"serviceException": {"messageId": code, "text": format!("key {INFOBIP_KEY} refused")}}});
    let cases = [
        (
            ResponseTemplate::new(429).insert_header("retry-after", "3").set_body_json(error("TOO_MANY_REQUESTS")),
            "TOO_MANY_REQUESTS",
            true,
            Some(3_000),
        ),
        (ResponseTemplate::new(503), "HTTP_503", true, None),
        (ResponseTemplate::new(500).set_body_json(error("GENERAL_ERROR")), "GENERAL_ERROR", true, None),
        (ResponseTemplate::new(400).set_body_json(error("BAD_REQUEST")), "BAD_REQUEST", false, None),
        (ResponseTemplate::new(401).set_body_json(error("UNAUTHORIZED")), "UNAUTHORIZED", false, None),
        (ResponseTemplate::new(403).set_body_string(format!("no, {INFOBIP_KEY}")), "HTTP_403", false, None),
    ];
    for (response, code, retryable, retry_after_ms) in cases {
        let (_server, adapter) = infobip_with(response).await;
        let outcomes = adapter.submit(&messages(2)).await;
        assert_no_secret(&outcomes, INFOBIP_KEY);
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
async fn infobip_unreadable_success_answers_are_ambiguous_never_failed() {
    let answers = [
        ResponseTemplate::new(200).set_body_raw("{\"bulkId\":\"b\",\"messages\":[{\"messageId\":", "application/json"),
        ResponseTemplate::new(200).set_body_raw(format!("not json {INFOBIP_KEY}"), "application/json"),
        ResponseTemplate::new(200).set_body_raw("", "application/json"),
        ResponseTemplate::new(200).set_body_raw("<html>ok</html>", "text/html"),
    ];
    for answer in answers {
        let (_server, adapter) = infobip_with(answer).await;
        let outcomes = adapter.submit(&messages(2)).await;
        assert_all_ambiguous(&outcomes);
        assert_no_secret(&outcomes, INFOBIP_KEY);
    }
}

#[tokio::test]
async fn infobip_lost_answer_is_ambiguous_and_a_refused_connection_is_retryable() {
    let late = ResponseTemplate::new(200)
        .set_body_json(infobip_wire::SendResponse { bulk_id: None, messages: vec![] })
        .set_delay(Duration::from_secs(2));
    let (_server, adapter) = infobip_with(late).await;
    assert_all_ambiguous(&adapter.submit(&messages(2)).await);
    let nowhere =
        InfobipAdapter::from_account(&account(ProviderKind::Infobip, "http://127.0.0.1:9"), client(), "https://e")
            .unwrap();
    let outcomes = nowhere.submit(&messages(2)).await;
    assert!(
        outcomes.iter().all(|o| matches!(o, SubmitOutcome::Failed(f) if f.code == "NETWORK" && f.retryable)),
        "{outcomes:?}"
    );
}

fn infobip_result(id: &str, group: infobip_wire::Group, name: &str, error: Option<&str>) -> serde_json::Value {
    let mut result = serde_json::json!({
        "bulkId": "bulk-1", "messageId": id, "to": "306912300001",
        "sentAt": "2024-05-01T10:00:00.000+0000", "doneAt": "2024-05-01T10:00:03.000+0000", "smsCount": 1,
        "price": {"pricePerMessage": 0.01, "currency": "EUR"},
        "status": {"groupId": group.id(), "groupName": group.name(), "id": 5, "name": name, "description": "d"},
    });
    if let Some(error) = error {
        result["error"] = serde_json::json!({
            "groupId": 1, "groupName": "HANDSET_ERRORS", "id": 27, "name": error, "description": "e", "permanent": false
        });
    }
    result
}

#[test]
fn infobip_reports_parse_one_or_many_name_our_message_and_require_the_token() {
    let adapter =
        InfobipAdapter::from_account(&account(ProviderKind::Infobip, "http://p"), client(), "https://engine").unwrap();
    let url = format!("https://engine/v1/webhooks/infobip/ta_3?token={INFOBIP_HOOK}");
    let one = serde_json::json!({"results": [infobip_result("msg_1_2", infobip_wire::Group::Delivered, "DELIVERED_TO_HANDSET", Some("NO_ERROR"))]});
    let reports = adapter.parse_webhook(&webhook(&url, "application/json", &one.to_string())).unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(
        (reports[0].provider_message_id.as_str(), &reports[0].status, reports[0].error_code.as_deref()),
        ("msg_1_2", &ReportStatus::Delivered, None)
    );
    assert_eq!(reports[0].message_ref, Some(MessageId::new(CampaignId(1), ContactId(2))));
    let many = serde_json::json!({"results": [
        infobip_result("msg_1_1", infobip_wire::Group::Pending, "PENDING_ENROUTE", None),
        infobip_result("msg_1_1", infobip_wire::Group::Pending, "PENDING_ENROUTE", None),
        infobip_result("msg_1_3", infobip_wire::Group::Undeliverable, "UNDELIVERABLE_NOT_DELIVERED", Some("EC_ABSENT_SUBSCRIBER")),
        infobip_result("msg_1_4", infobip_wire::Group::Expired, "EXPIRED_EXPIRED", None),
        infobip_result("msg_1_5", infobip_wire::Group::Rejected, "REJECTED_NETWORK", None),
        {"messageId": "msg_1_6", "status": {"groupId": 9, "groupName": "TELEPORTED", "id": 99, "name": "TELEPORTED_AWAY"}},
        infobip_result("3333333333", infobip_wire::Group::Delivered, "DELIVERED_TO_HANDSET", None),
    ]});
    let reports = adapter.parse_webhook(&webhook(&url, "application/json; charset=utf-8", &many.to_string())).unwrap();
    let statuses: Vec<ReportStatus> = reports.iter().map(|r| r.status.clone()).collect();
    assert_eq!(
        statuses,
        vec![
            ReportStatus::Accepted,
            ReportStatus::Accepted,
            ReportStatus::Undelivered,
            ReportStatus::Expired,
            ReportStatus::Rejected,
            ReportStatus::Unrecognized("TELEPORTED".into()),
            ReportStatus::Delivered,
        ]
    );
    assert_eq!(reports[2].error_code.as_deref(), Some("EC_ABSENT_SUBSCRIBER"));
    assert_eq!(reports[6].message_ref, None, "an id that is not ours names no message");
    let body = one.to_string();
    assert_eq!(
        adapter.parse_webhook(&webhook("https://engine/v1/webhooks/infobip/ta_3", "application/json", &body)),
        Err(WebhookError::MissingSignature)
    );
    assert_eq!(
        adapter.parse_webhook(&webhook(
            "https://engine/v1/webhooks/infobip/ta_3?token=guess",
            "application/json",
            &body
        )),
        Err(WebhookError::BadSignature)
    );
    assert!(matches!(adapter.parse_webhook(&webhook(&url, "text/plain", &body)), Err(WebhookError::ContentType(_))));
    for malformed in ["{\"results\":", "[]", "{\"results\":[{\"status\":{}}]}"] {
        assert!(
            matches!(
                adapter.parse_webhook(&webhook(&url, "application/json", malformed)),
                Err(WebhookError::Malformed(_))
            ),
            "{malformed}"
        );
    }
    let huge = format!(
        "{{\"results\":[{}]}}",
        vec![infobip_result("msg_1_1", infobip_wire::Group::Pending, "P", None).to_string(); 2_000].join(",")
    );
    assert!(matches!(
        adapter.parse_webhook(&webhook(&url, "application/json", &huge)),
        Err(WebhookError::TooLarge { .. })
    ));
    // Without a webhook token nothing is requested, and nothing is believed.
    let mut tokenless = account(ProviderKind::Infobip, "http://p");
    tokenless.credentials.remove("webhook_token");
    let tokenless = InfobipAdapter::from_account(&tokenless, client(), "https://engine").unwrap();
    assert_eq!(tokenless.parse_webhook(&webhook(&url, "application/json", &body)), Err(WebhookError::BadSignature));
}

#[tokio::test]
async fn infobip_lookup_asks_for_our_id_and_is_exact() {
    let server = MockServer::start().await;
    let log = |id: &str, group: infobip_wire::Group, name: &str| infobip_wire::LogEntry {
        bulk_id: Some("b".into()),
        message_id: id.into(),
        to: "306912300001".into(),
        from: Some("SMSIM".into()),
        text: Some("hello".into()),
        sent_at: None,
        done_at: None,
        sms_count: Some(1),
        price: None,
        status: infobip_wire::Status::new(group, 0, name, ""),
        error: None,
    };
    let logs = |results| ResponseTemplate::new(200).set_body_json(infobip_wire::Logs { results });
    let routes = [
        // A log that also lists another message: only ours counts.
        (
            "msg_1_1",
            logs(vec![
                log("msg_1_9", infobip_wire::Group::Rejected, "REJECTED_DESTINATION"),
                log("msg_1_1", infobip_wire::Group::Delivered, "DELIVERED_TO_HANDSET"),
            ]),
        ),
        ("msg_1_2", logs(vec![log("msg_1_9", infobip_wire::Group::Delivered, "DELIVERED_TO_HANDSET")])),
        ("msg_1_3", logs(vec![log("msg_1_3", infobip_wire::Group::Rejected, "REJECTED_DESTINATION")])),
        ("msg_1_4", ResponseTemplate::new(503)),
        ("msg_1_5", ResponseTemplate::new(200).set_body_raw("{\"results\":[", "application/json")),
        // Not delivered: its error's name is the code the lookup carries, as a report would.
        (
            "msg_1_6",
            logs(vec![infobip_wire::LogEntry {
                error: Some(infobip_wire::ReportError {
                    group_id: 1,
                    group_name: "HANDSET_ERRORS".into(),
                    id: 27,
                    name: "EC_ABSENT_SUBSCRIBER".into(),
                    description: "Absent subscriber".into(),
                    permanent: false,
                }),
                ..log("msg_1_6", infobip_wire::Group::Undeliverable, "UNDELIVERABLE_NOT_DELIVERED")
            }]),
        ),
    ];
    for (id, response) in routes {
        Mock::given(method("GET"))
            .and(path("/sms/1/logs"))
            .and(query_param("messageId", id))
            .and(header("authorization", format!("App {INFOBIP_KEY}").as_str()))
            .respond_with(response)
            .mount(&server)
            .await;
    }
    let adapter =
        InfobipAdapter::from_account(&account(ProviderKind::Infobip, &server.uri()), client(), "https://e").unwrap();
    let wanted = messages(6);
    assert_eq!(
        adapter.lookup(&wanted[0]).await,
        LookupOutcome::Accepted {
            provider_message_id: "msg_1_1".into(),
            status: Some(ReportStatus::Delivered),
            error_code: None
        }
    );
    assert_eq!(adapter.lookup(&wanted[1]).await, LookupOutcome::NotFound, "another message's entry is not ours");
    assert_eq!(adapter.lookup(&wanted[2]).await, LookupOutcome::NotFound, "a refused message was never sent");
    assert!(matches!(adapter.lookup(&wanted[3]).await, LookupOutcome::Unavailable { .. }));
    assert!(matches!(adapter.lookup(&wanted[4]).await, LookupOutcome::Unavailable { .. }));
    assert_eq!(
        adapter.lookup(&wanted[5]).await,
        LookupOutcome::Accepted {
            provider_message_id: "msg_1_6".into(),
            status: Some(ReportStatus::Undelivered),
            error_code: Some("EC_ABSENT_SUBSCRIBER".into())
        }
    );
}

#[test]
fn infobip_requires_an_api_key() {
    let mut broken = account(ProviderKind::Infobip, "http://p");
    broken.credentials.remove("api_key");
    let error = InfobipAdapter::from_account(&broken, client(), "https://e").unwrap_err();
    assert!(error.to_string().contains("api_key"), "{error}");
}
