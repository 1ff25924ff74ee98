//! The simulated Twilio, and the engine's Twilio adapter, held to Twilio's published
//! OpenAPI document (its Messages part, `harness/sim/spec/twilio/messages.json`, taken
//! verbatim by `extract.py`). Every answer of the simulated provider validates against the
//! document's schemas and carries every property they document; every request the adapter
//! sends uses only fields and query parameters the document defines.

use bytes::Bytes;
use serde_json::Value;
use smsim_core::adapter::http::{HttpClient, HttpError, HttpRequest, HttpResponse, HyperClient};
use smsim_core::adapter::twilio::TwilioAdapter;
use smsim_core::adapter::{OutboundMessage, ProviderAdapter};
use smsim_core::domain::{ProviderKind, TrafficAccount};
use smsim_core::{CampaignId, ContactId, Credits, MessageId, TrafficAccountId};
use smsim_sim::provider::live::serve_live;
use smsim_sim::provider::twilio::MESSAGING_SERVICE_POOL;
use smsim_sim::provider::{AccountBinding, Behaviour, Provider};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SPEC: &str = include_str!("../../spec/twilio/messages.json");
const ACCOUNT: &str = "AC00000000000000000000000000000001";
const TOKEN: &str = "token-main";
const MESSAGES: &str = "/2010-04-01/Accounts/{AccountSid}/Messages.json";

fn spec() -> Value {
    serde_json::from_str(SPEC).expect("the vendored specification is JSON")
}

/// OpenAPI 3.0's `nullable: true` as JSON Schema says it (`type: [T, "null"]`); the
/// document's own words otherwise. Formats are Twilio's own names (`phone-number`,
/// `date-time-rfc-2822`) and are checked separately.
fn json_schema(node: &Value) -> Value {
    match node {
        Value::Object(map) => {
            let mut out: serde_json::Map<String, Value> =
                map.iter().filter(|(k, _)| *k != "nullable").map(|(k, v)| (k.clone(), json_schema(v))).collect();
            if map.get("nullable") == Some(&Value::Bool(true)) {
                if let Some(Value::String(kind)) = map.get("type") {
                    out.insert("type".into(), serde_json::json!([kind, "null"]));
                } else if let Some(reference) = map.get("$ref") {
                    out.remove("$ref");
                    out.insert("anyOf".into(), serde_json::json!([{ "$ref": reference }, { "type": "null" }]));
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(json_schema).collect()),
        other => other.clone(),
    }
}

/// A validator for `schema` (a node of the document), its `$ref`s resolved in the document.
fn validator(schema: &Value) -> jsonschema::Validator {
    let mut root = json_schema(schema);
    root["components"] = json_schema(&spec()["components"]);
    jsonschema::options().should_validate_formats(false).build(&root).expect("the document's schemas compile")
}

fn message_schema() -> Value {
    spec()["components"]["schemas"]["api.v2010.account.message"].clone()
}

fn list_schema() -> Value {
    spec()["paths"][MESSAGES]["get"]["responses"]["200"]["content"]["application/json"]["schema"].clone()
}

/// `value` validates against `schema` and has every property the schema documents.
#[track_caller]
fn conforms(schema: &Value, value: &Value, what: &str) {
    let validator = validator(schema);
    let errors: Vec<String> = validator.iter_errors(value).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{what}: {errors:?}\n{value:#}");
    let documented = schema["properties"].as_object().expect("an object schema");
    let missing: Vec<&String> = documented.keys().filter(|name| value.get(name.as_str()).is_none()).collect();
    assert!(missing.is_empty(), "{what} lacks documented properties {missing:?}\n{value:#}");
    for name in ["date_created", "date_updated", "date_sent"] {
        if let Some(date) = value.get(name).and_then(Value::as_str) {
            assert!(chrono::DateTime::parse_from_rfc2822(date).is_ok(), "{what}: {name} `{date}` is not RFC 2822");
        }
    }
}

fn request(method: http::Method, url: String, headers: &[(&str, &str)], body: String) -> HttpRequest {
    let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    HttpRequest { method, url, headers, body: Bytes::from(body) }
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// The simulated Twilio on a loopback socket: its base URL.
async fn twilio() -> String {
    let behaviour =
        Behaviour { latency_ms: [0, 0], delivery_rate: 1.0, report_delay_ms: [20, 20], ..Behaviour::default() };
    let binding = AccountBinding { engine_id: "ta_1".into(), key: ACCOUNT.into(), secret: TOKEN.into() };
    let provider = Provider::new(behaviour, vec![binding], 1, smsim_sim::clock::SimClock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve_live(provider, listener, "http://127.0.0.1:9", None));
    base
}

struct Twilio {
    base: String,
    client: HyperClient<hyper_util::client::legacy::connect::HttpConnector>,
}

impl Twilio {
    async fn call(
        &self,
        method: http::Method,
        path_and_query: &str,
        form: &[(&str, &str)],
        auth: &str,
    ) -> (u16, Value) {
        let body = serde_urlencoded::to_string(form).unwrap();
        let headers = [("authorization", auth), ("content-type", "application/x-www-form-urlencoded")];
        let url = format!("{}{path_and_query}", self.base);
        let answer = self.client.send(request(method, url, &headers, body)).await.unwrap();
        let json = serde_json::from_slice(&answer.body).unwrap_or_else(|_| {
            panic!("{path_and_query}: answer {} is not JSON: {}", answer.status, String::from_utf8_lossy(&answer.body))
        });
        (answer.status, json)
    }

    async fn send(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let path = format!("/2010-04-01/Accounts/{ACCOUNT}/Messages.json");
        self.call(http::Method::POST, &path, form, &basic(ACCOUNT, TOKEN)).await
    }

    async fn get(&self, path_and_query: &str) -> (u16, Value) {
        self.call(http::Method::GET, path_and_query, &[], &basic(ACCOUNT, TOKEN)).await
    }
}

async fn connect() -> Twilio {
    Twilio { base: twilio().await, client: HyperClient::tcp(Duration::from_secs(5)) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_of_the_simulated_twilio_is_a_documented_resource() {
    let twilio = connect().await;
    let (status, sent) = twilio.send(&[("To", "+306910000001"), ("From", "+15005550006"), ("Body", "hello")]).await;
    assert_eq!(status, 201, "{sent}");
    conforms(&message_schema(), &sent, "the send answer");
    assert_eq!((sent["status"].as_str(), sent["from"].as_str()), (Some("queued"), Some("+15005550006")));
    assert_eq!(sent["num_segments"], "1");

    let (status, pooled) = twilio
        .send(&[
            ("To", "+306910000001"),
            ("MessagingServiceSid", "MG00000000000000000000000000000001"),
            ("Body", "via service"),
        ])
        .await;
    assert_eq!(status, 201, "{pooled}");
    conforms(&message_schema(), &pooled, "a messaging service's send answer");
    assert_eq!((pooled["status"].as_str(), pooled["from"].as_str()), (Some("accepted"), None));

    let sid = sent["sid"].as_str().unwrap();
    let (status, fetched) = twilio.get(&format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json")).await;
    assert_eq!(status, 200);
    conforms(&message_schema(), &fetched, "a fetched message");

    let (status, list) = twilio.get(&format!("/2010-04-01/Accounts/{ACCOUNT}/Messages.json?To=%2B306910000001")).await;
    assert_eq!(status, 200);
    conforms(&list_schema(), &list, "the message list");
    for message in list["messages"].as_array().unwrap() {
        conforms(&message_schema(), message, "a listed message");
    }
    assert_eq!(list["messages"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_filters_by_the_real_sender_and_pages_to_the_end() {
    let twilio = connect().await;
    let service = [("To", "+306910000002"), ("MessagingServiceSid", "MG00000000000000000000000000000001")];
    for n in 0..5 {
        let body = format!("pooled {n}");
        let (status, _) = twilio.send(&[service[0], service[1], ("Body", &body)]).await;
        assert_eq!(status, 201);
    }
    // Five messages, two to a page: three pages, each naming the next, the last none.
    let mut next = Some(format!("/2010-04-01/Accounts/{ACCOUNT}/Messages.json?To=%2B306910000002&PageSize=2"));
    let mut seen = Vec::new();
    for _ in 0..10 {
        let Some(path) = next.take() else { break };
        let (status, page) = twilio.get(&path).await;
        assert_eq!(status, 200, "{page}");
        conforms(&list_schema(), &page, "a page");
        seen.extend(page["messages"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap().to_owned()));
        next = page["next_page_uri"].as_str().map(str::to_owned);
    }
    seen.sort();
    assert_eq!(seen, (0..5).map(|n| format!("pooled {n}")).collect::<Vec<_>>());
    // The service picked the senders: filtering by the account's own number finds none.
    let (_, own) =
        twilio.get(&format!("/2010-04-01/Accounts/{ACCOUNT}/Messages.json?To=%2B306910000002&From=SMSIM")).await;
    assert_eq!(own["messages"].as_array().unwrap().len(), 0);
    let mut pooled = 0;
    for from in MESSAGING_SERVICE_POOL {
        let query = serde_urlencoded::to_string([("To", "+306910000002"), ("From", from)]).unwrap();
        let (_, page) = twilio.get(&format!("/2010-04-01/Accounts/{ACCOUNT}/Messages.json?{query}")).await;
        pooled += page["messages"].as_array().unwrap().len();
    }
    assert_eq!(pooled, 5, "every message listed under the pool number it went out from");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_twilios_json_errors_with_its_codes() {
    let twilio = connect().await;
    let long = "x".repeat(1_601);
    type Form<'a> = &'a [(&'a str, &'a str)];
    let cases: [(Form, u16, i64); 4] = [
        (&[("To", "6910000001"), ("From", "+15005550006"), ("Body", "hi")], 400, 21211),
        (&[("To", "+306910000001"), ("Body", "hi")], 400, 21603),
        (&[("To", "+306910000001"), ("From", "+15005550006")], 400, 21602),
        (&[("To", "+306910000001"), ("From", "+15005550006"), ("Body", &long)], 400, 21617),
    ];
    for (form, status, code) in cases {
        let (answered, error) = twilio.send(form).await;
        assert_eq!((answered, error["code"].as_i64()), (status, Some(code)), "{form:?}: {error}");
        assert_eq!(error["status"].as_u64(), Some(u64::from(status)));
        assert!(error["message"].is_string() && error["more_info"].as_str().unwrap().ends_with(&code.to_string()));
    }
    let path = format!("/2010-04-01/Accounts/{ACCOUNT}/Messages.json");
    let form = [("To", "+306910000001"), ("From", "+15005550006"), ("Body", "hi")];
    let (status, error) = twilio.call(http::Method::POST, &path, &form, &basic(ACCOUNT, "wrong")).await;
    assert_eq!((status, error["code"].as_i64()), (401, Some(20003)), "a wrong auth token is refused");
    let (status, error) =
        twilio.get(&format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/SM{}.json", "0".repeat(32))).await;
    assert_eq!((status, error["code"].as_i64()), (404, Some(20404)));
}

/// Records every request the adapter sends (and passes it on).
struct Recording {
    inner: HyperClient<hyper_util::client::legacy::connect::HttpConnector>,
    seen: Mutex<Vec<HttpRequest>>,
}

#[async_trait::async_trait]
impl HttpClient for Recording {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        self.seen.lock().unwrap().push(request.clone());
        self.inner.send(request).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adapter_sends_only_what_the_specification_defines() {
    let base = twilio().await;
    let recording = Arc::new(Recording { inner: HyperClient::tcp(Duration::from_secs(5)), seen: Mutex::new(vec![]) });
    let spec = spec();
    for service in [None, Some("MG00000000000000000000000000000001")] {
        let mut credentials: BTreeMap<String, String> =
            [("account_sid", ACCOUNT), ("auth_token", TOKEN)].into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        if let Some(service) = service {
            credentials.insert("messaging_service_sid".into(), service.into());
        }
        let account = TrafficAccount {
            id: TrafficAccountId(1),
            owner: None,
            name: "main".into(),
            provider: ProviderKind::Twilio,
            base_url: base.clone(),
            credentials,
            sender: "+15005550006".into(),
            rate_limit_per_s: None,
            price_per_segment: Credits(79),
            idempotent_submissions: false,
        };
        let adapter = TwilioAdapter::from_account(&account, recording.clone(), "http://127.0.0.1:9").unwrap();
        let message = OutboundMessage {
            id: MessageId::new(CampaignId(1), ContactId(1)),
            destination: "+306910000003".into(),
            sender: "+15005550006".into(),
            body: format!("spec {service:?}"),
            status_callback_url: None,
        };
        let outcomes = adapter.submit(std::slice::from_ref(&message)).await;
        assert!(matches!(outcomes[0], smsim_core::adapter::SubmitOutcome::Accepted { .. }), "{outcomes:?}");
        let found = adapter.lookup(&message).await;
        assert!(matches!(found, smsim_core::adapter::LookupOutcome::Accepted { .. }), "{service:?}: {found:?}");
    }
    let create =
        &spec["paths"][MESSAGES]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"];
    let parameters: Vec<&str> = spec["paths"][MESSAGES]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["in"] == "query")
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let create_validator = validator(create);
    let seen = recording.seen.lock().unwrap().clone();
    assert!(seen.len() >= 4, "two sends and two lookups: {}", seen.len());
    for request in seen {
        if request.method == http::Method::POST {
            let form: BTreeMap<String, String> = serde_urlencoded::from_bytes(&request.body).unwrap();
            for name in form.keys() {
                assert!(
                    create["properties"].get(name).is_some(),
                    "the adapter sends `{name}`, which Twilio does not define"
                );
            }
            let value = serde_json::to_value(&form).unwrap();
            let errors: Vec<String> = create_validator.iter_errors(&value).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{errors:?}");
            assert!(form.contains_key("From") != form.contains_key("MessagingServiceSid"), "{form:?}");
        } else {
            let query = request.url.split_once('?').map_or("", |(_, query)| query);
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
            for (name, value) in pairs {
                assert!(
                    parameters.contains(&name.as_str()),
                    "the lookup asks for `{name}`, which Twilio does not define"
                );
                if name == "PageSize" {
                    assert!((1..=1_000).contains(&value.parse::<u32>().unwrap()), "PageSize {value}");
                }
            }
        }
    }
}

/// The check fires: the resource the simulated Twilio used to answer (a 10-character SID,
/// most documented fields missing) and a status Twilio does not have are refused.
#[test]
fn the_specification_check_refuses_what_twilio_would_not_send() {
    let old = serde_json::json!({
        "sid": "SM00000001", "status": "queued", "to": "+306910000001", "from": "SMSIM", "body": "hi",
        "error_code": null, "error_message": null, "num_segments": "1", "price": null,
    });
    let refused = std::panic::catch_unwind(|| conforms(&message_schema(), &old, "the old answer"));
    let message = *refused.expect_err("the old answer passed").downcast::<String>().unwrap();
    assert!(message.contains("sid"), "{message}");
    let mut invented = message_schema_example();
    conforms(&message_schema(), &invented, "the document's own example");
    invented["status"] = "in_flight".into();
    assert!(std::panic::catch_unwind(|| conforms(&message_schema(), &invented, "an invented status")).is_err());
}

/// The document's own example of a message (its fetch example).
fn message_schema_example() -> Value {
    let examples = &spec()["paths"]["/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json"]["get"]["responses"]["200"]
        ["content"]["application/json"]["examples"];
    examples.as_object().unwrap().values().next().unwrap()["value"].clone()
}

/// Every message status the specification lists is read by the adapter deliberately: the
/// outbound ones onto the lattice, the inbound ones (`receiving`, `received`) left
/// unrecognised on purpose — an outbound message never has them.
#[test]
fn every_status_twilio_documents_is_handled_deliberately() {
    use smsim_core::adapter::twilio::report_status;
    use smsim_core::domain::ReportStatus;
    let statuses = spec()["components"]["schemas"]["message_enum_status"]["enum"].clone();
    let statuses: Vec<String> = serde_json::from_value(statuses).unwrap();
    assert!(statuses.len() >= 13, "{statuses:?}");
    for status in statuses {
        let read = report_status(&status);
        match status.as_str() {
            "receiving" | "received" => assert!(matches!(read, ReportStatus::Unrecognized(_)), "{status}: {read:?}"),
            _ => assert!(!matches!(read, ReportStatus::Unrecognized(_)), "`{status}` is documented but unread"),
        }
    }
}

/// Throttling and outages are Twilio's JSON errors too (20429 with `Retry-After`, 20500).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_outages_answer_in_twilios_error_format() {
    for (rates, status, code) in [
        (smsim_sim::fault::FaultRates { provider_429: 1.0, ..Default::default() }, 429, 20429),
        (smsim_sim::fault::FaultRates { provider_5xx: 1.0, ..Default::default() }, 503, 20500),
    ] {
        let behaviour = Behaviour { latency_ms: [0, 0], faults: rates, ..Behaviour::default() };
        let binding = AccountBinding { engine_id: "ta_1".into(), key: ACCOUNT.into(), secret: TOKEN.into() };
        let provider = Provider::new(behaviour, vec![binding], 1, smsim_sim::clock::SimClock);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let serving = tokio::spawn(serve_live(provider, listener, "http://127.0.0.1:9", None));
        let twilio = Twilio { base, client: HyperClient::tcp(Duration::from_secs(5)) };
        let (answered, error) = twilio.send(&[("To", "+306910000001"), ("From", "+15005550006"), ("Body", "hi")]).await;
        assert_eq!((answered, error["code"].as_i64()), (status, Some(code)), "{error}");
        serving.abort();
    }
}
