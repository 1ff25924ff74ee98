//! The engine's HTTP seams work on turmoil's network exactly as on sockets.

use axum::routing::post;
use axum::Router;
use smsim_core::adapter::http::HyperClient;
use smsim_core::adapter::{HttpClient, HttpError, HttpRequest};
use smsim_sim::net::{SimConnector, SimListener};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn request(url: &str, body: &'static str) -> HttpRequest {
    HttpRequest {
        method: http::Method::POST,
        url: url.into(),
        headers: BTreeMap::new(),
        body: bytes::Bytes::from_static(body.as_bytes()),
    }
}

#[test]
fn hyper_client_reaches_an_axum_server_over_the_simulated_network() {
    let mut sim = turmoil::Builder::new().rng_seed(1).build();
    sim.host("provider", || async {
        let app = Router::new().route("/echo", post(|body: String| async move { format!("echo: {body}") }));
        axum::serve(SimListener::bind(80).await?, app).await?;
        Ok(())
    });
    let answers = Arc::new(Mutex::new(Vec::new()));
    let seen = answers.clone();
    sim.client("worker", async move {
        let client = HyperClient::new(SimConnector, Duration::from_secs(5));
        let answer = client.send(request("http://provider/echo", "hello")).await.expect("answer");
        seen.lock().unwrap().push((answer.status, String::from_utf8(answer.body.to_vec()).unwrap()));
        Ok(())
    });
    sim.run().unwrap();
    assert_eq!(*answers.lock().unwrap(), vec![(200, "echo: hello".to_owned())]);
}

#[test]
fn a_refused_connection_is_reported_as_never_sent() {
    let mut sim = turmoil::Builder::new().rng_seed(2).build();
    sim.host("provider", || async {
        let app = Router::new().route("/echo", post(|body: String| async move { body }));
        axum::serve(SimListener::bind(80).await?, app).await?;
        Ok(())
    });
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let seen = outcomes.clone();
    sim.client("worker", async move {
        let client = HyperClient::new(SimConnector, Duration::from_millis(500));
        let refused = client.send(request("http://provider:81/echo", "x")).await;
        seen.lock().unwrap().push(refused.err());
        Ok(())
    });
    sim.run().unwrap();
    let outcomes = outcomes.lock().unwrap();
    assert!(matches!(outcomes[0], Some(HttpError::Connect(_))), "{outcomes:?}");
    assert!(outcomes[0].as_ref().unwrap().never_sent());
}
