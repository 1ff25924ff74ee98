//! Integration tests of smsim-live: the simulated provider on a real loopback socket.

use smsim_core::adapter::http::HyperClient;
use smsim_core::adapter::{HttpClient, HttpRequest};
use smsim_sim::provider::live::{serve_live, TruthView, TRUTH_PATH};
use smsim_sim::provider::{AccountBinding, Behaviour, Provider};
use std::collections::BTreeMap;
use std::time::Duration;

fn request(method: http::Method, url: String, headers: &[(&str, &str)], body: &str) -> HttpRequest {
    let headers: BTreeMap<String, String> =
        headers.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect();
    HttpRequest { method, url, headers, body: bytes::Bytes::from(body.to_owned()) }
}

/// A provider of one Mitto-style account (key `k`) on a loopback socket: its base URL and
/// its task. Reports go to a port nobody listens on: they are retried, not lost.
async fn serve() -> (String, tokio::task::JoinHandle<std::io::Result<()>>) {
    let behaviour =
        Behaviour { latency_ms: [0, 0], delivery_rate: 1.0, report_delay_ms: [50, 50], ..Behaviour::default() };
    let binding = AccountBinding { engine_id: "ta_1".into(), key: "k".into(), secret: "s".into() };
    let provider = Provider::new(behaviour, vec![binding], 1, smsim_sim::clock::SimClock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (base, tokio::spawn(serve_live(provider, listener, "http://127.0.0.1:9", None)))
}

/// A Mitto-style send over TCP shows up in the truth served at /_smsim/truth, with its
/// time on the real clock; a request with an unknown key is refused and not accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provider_serves_its_ground_truth_over_tcp() {
    let (base, serving) = serve().await;
    let client = HyperClient::tcp(Duration::from_secs(5));
    let send = |key: &'static str| {
        let body = r#"{"messages":[{"trafficAccountId":"t","destination":"+306910000001","sms":{"text":"[a] hi","sender":"S"}}]}"#;
        let json = [("content-type", "application/json"), ("x-mitto-api-key", key)];
        request(http::Method::POST, format!("{base}/api/v1.1/Messages/sendmessagesbulk"), &json, body)
    };
    assert_eq!(client.send(send("wrong")).await.unwrap().status, 401);
    assert_eq!(client.send(send("k")).await.unwrap().status, 200);
    let answer = client.send(request(http::Method::GET, format!("{base}{TRUTH_PATH}"), &[], "")).await.unwrap();
    let truth: TruthView = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(truth.acceptances.len(), 1, "{truth:?}");
    assert_eq!(truth.acceptances[0].destination, "+306910000001");
    assert_eq!(truth.acceptances[0].account, "ta_1");
    assert_eq!(truth.received, 1);
    serving.abort();
}

/// The control API a team's own test suite drives the standalone provider with: faults
/// switched on and off at run time, an outage, a reset; bad input refused with what and
/// where.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_api_switches_faults_and_outages_and_resets() {
    let (base, serving) = serve().await;
    let client = HyperClient::tcp(Duration::from_secs(5));
    let json = [("content-type", "application/json")];
    let send = || {
        let body = r#"{"messages":[{"trafficAccountId":"t","destination":"+306910000001","sms":{"text":"[a] hi","sender":"S"}}]}"#;
        let headers = [("content-type", "application/json"), ("x-mitto-api-key", "k")];
        request(http::Method::POST, format!("{base}/api/v1.1/Messages/sendmessagesbulk"), &headers, body)
    };
    let control =
        |method: http::Method, path: &str, body: &str| request(method, format!("{base}/_smsim/{path}"), &json, body);
    let truth = || request(http::Method::GET, format!("{base}{TRUTH_PATH}"), &[], "");

    assert_eq!(client.send(send()).await.unwrap().status, 200);
    let all_5xx = client.send(control(http::Method::PUT, "faults", r#"{"provider_5xx": 1.0}"#)).await.unwrap();
    assert_eq!(all_5xx.status, 200, "{}", String::from_utf8_lossy(&all_5xx.body));
    assert_eq!(client.send(send()).await.unwrap().status, 503);
    let rates = client.send(control(http::Method::GET, "faults", "")).await.unwrap();
    let rates: serde_json::Value = serde_json::from_slice(&rates.body).unwrap();
    assert_eq!(rates["provider_5xx"], 1.0);
    assert_eq!(client.send(control(http::Method::PUT, "faults", "{}")).await.unwrap().status, 200);
    assert_eq!(client.send(send()).await.unwrap().status, 200, "faults off again");

    for (path, body, says) in [
        ("faults", r#"{"provider_5xx": 2}"#, "provider_5xx"),
        ("faults", r#"{"teleport": 0.5}"#, "teleport"),
        ("outage", r#"{"status": 200}"#, "200"),
        ("outage", "[", "outage"),
    ] {
        let answer = client.send(control(http::Method::PUT, path, body)).await.unwrap();
        let text = String::from_utf8_lossy(&answer.body);
        assert!(answer.status == 400 && text.contains(says), "{path} {body}: {} {text}", answer.status);
    }
    assert_eq!(client.send(control(http::Method::PUT, "outage", r#"{"status": 502}"#)).await.unwrap().status, 204);
    assert_eq!(client.send(send()).await.unwrap().status, 502);
    assert_eq!(client.send(control(http::Method::PUT, "outage", r#"{"status": null}"#)).await.unwrap().status, 204);

    let before: TruthView = serde_json::from_slice(&client.send(truth()).await.unwrap().body).unwrap();
    assert_eq!(before.acceptances.len(), 2, "{before:?}");
    assert_eq!(client.send(control(http::Method::POST, "reset", "")).await.unwrap().status, 204);
    let after: TruthView = serde_json::from_slice(&client.send(truth()).await.unwrap().body).unwrap();
    assert!(after.acceptances.is_empty() && after.received == 0, "{after:?}");
    assert_eq!(client.send(send()).await.unwrap().status, 200, "serving on after a reset");
    serving.abort();
}
