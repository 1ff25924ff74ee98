//! The simulated provider on a real loopback socket, for `smsim provider` and `smsim live`:
//! the same handlers and wire types as in the simulator, plus its ground truth served as
//! JSON at `GET /_smsim/truth`, real-time acceptance times, and the hook a live runner
//! uses to kill the engine between the provider's acceptance and the engine's commit.
//!
//! Nothing here runs in a simulation: the simulator's path through the provider is the
//! same with or without this module (the hook and the real-time clock are unset there).

use super::{router_with, AfterAccept, Behaviour, Peer, Provider, SentReport, Truth};
use crate::scenario::Scenario;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use smsim_core::adapter::http::HyperClient;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The path the ground truth is served at.
pub const TRUTH_PATH: &str = "/_smsim/truth";

/// One acceptance, as served by the truth endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptanceView {
    /// The destination number.
    pub destination: String,
    /// The message body.
    pub body: String,
    /// Milliseconds since the provider started.
    pub at_ms: u64,
    /// The provider's id.
    pub provider_id: String,
    /// The engine account it came through.
    pub account: String,
}

/// One report the provider sent, as served by the truth endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportView {
    /// When it was first sent (ms since the provider started).
    pub at_ms: u64,
    /// The provider id it names.
    pub provider_id: String,
    /// The status string sent.
    pub status: String,
    /// Whether the status is final.
    pub is_final: bool,
    /// Deliberately forged.
    pub forged: bool,
    /// The HTTP status the engine answered last (none: no answer yet, or the engine was down).
    pub answered: Option<u16>,
}

/// The provider's ground truth as JSON: what `GET /_smsim/truth` answers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruthView {
    /// Milliseconds since the provider started, when this was taken.
    pub now_ms: u64,
    /// Every acceptance, in key order (destination, body), then in time.
    pub acceptances: Vec<AcceptanceView>,
    /// Messages received in submit requests (accepted or not).
    pub received: u64,
    /// Every report sent, in order.
    pub reports: Vec<ReportView>,
    /// Reports scheduled and not yet done with.
    pub reports_pending: u64,
    /// Rare paths taken, by name.
    pub marks: BTreeMap<String, u64>,
}

impl TruthView {
    /// A snapshot of `truth` taken at `now_ms`.
    pub fn of(truth: &Truth, now_ms: u64) -> TruthView {
        let acceptances = truth
            .accepted
            .iter()
            .flat_map(|((destination, body), acceptances)| {
                acceptances.iter().map(|acceptance| AcceptanceView {
                    destination: destination.to_string(),
                    body: body.to_string(),
                    at_ms: acceptance.at_ms,
                    provider_id: acceptance.provider_id.to_string(),
                    account: acceptance.account.to_string(),
                })
            })
            .collect();
        let report = |sent: &SentReport| ReportView {
            at_ms: sent.at_ms,
            provider_id: sent.provider_id.to_string(),
            status: sent.status.to_owned(),
            is_final: sent.is_final,
            forged: sent.forged,
            answered: sent.answered,
        };
        TruthView {
            now_ms,
            acceptances,
            received: truth.received.len() as u64,
            reports: truth.reports.iter().map(report).collect(),
            reports_pending: truth.reports_pending,
            marks: truth.marks.iter().map(|(name, count)| ((*name).to_owned(), *count)).collect(),
        }
    }
}

/// The provider's behaviour for a live run of `scenario`: its `[provider]` section and
/// the provider-side rates of `[faults.rates]`. Crashing the caller is the live
/// runner's business (its nemesis), so `crash_after_accept` is left off here.
pub fn live_behaviour(scenario: &Scenario) -> Behaviour {
    use crate::fault::{Fault, FaultRates};
    let rates = &scenario.faults.rates;
    let mut faults = FaultRates::default();
    for fault in [
        Fault::Provider5xx,
        Fault::Provider429,
        Fault::TimeoutAfterAccept,
        Fault::PartialBulkFailure,
        Fault::MalformedAnswer,
        Fault::DuplicateReport,
        Fault::ReportBeforeAnswer,
        Fault::IntermediateAfterFinal,
        Fault::UnknownIdReport,
        Fault::ForgedReport,
    ] {
        *faults.get_mut(fault) = rates.get(fault);
    }
    Behaviour { faults, ..Behaviour::from_scenario(scenario) }
}

/// The provider's router with the truth endpoint, webhooks going over TCP to
/// `engine_url` with a `webhook_timeout` per attempt.
pub fn live_router(provider: Arc<Provider>, engine_url: &str, webhook_timeout: Duration) -> Router {
    let webhooks = Arc::new(HyperClient::tcp(webhook_timeout));
    let truth_of = provider.clone();
    let truth = get(move || {
        let provider = truth_of.clone();
        async move {
            let now_ms = provider.now_ms();
            let truth = provider.truth.lock().expect("provider poisoned");
            axum::Json(TruthView::of(&truth, now_ms))
        }
    });
    router_with(provider.clone(), webhooks, engine_url).route(TRUTH_PATH, truth).merge(control_router(provider))
}

/// The control API's root: a test suite in any language drives the standalone provider
/// with it (see `docs/src/guide/provider.md`).
pub const CONTROL_PATH: &str = "/_smsim";

/// `POST /_smsim/reset`, `GET`/`PUT /_smsim/faults` (fault rates as `[faults.rates]` names
/// them, JSON; unknown names and rates outside 0..=1 are refused with 400), and
/// `PUT /_smsim/outage` (`{"status": 503}` answers every send with that status until
/// `{"status": null}`).
fn control_router(provider: Arc<Provider>) -> Router {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let reset = {
        let provider = provider.clone();
        axum::routing::post(move || {
            let provider = provider.clone();
            async move {
                provider.reset();
                StatusCode::NO_CONTENT
            }
        })
    };
    let faults = {
        let (reader, writer) = (provider.clone(), provider.clone());
        get(move || {
            let provider = reader.clone();
            async move { axum::Json(provider.fault_rates()) }
        })
        .put(move |body: axum::body::Bytes| {
            let provider = writer.clone();
            async move {
                let rates: crate::fault::FaultRates = match serde_json::from_slice(&body) {
                    Ok(rates) => rates,
                    Err(error) => return refuse(&format!("fault rates: {error}")),
                };
                if let Some((fault, rate)) = rates.iter().find(|(_, rate)| !(0.0..=1.0).contains(rate)) {
                    return refuse(&format!("fault rates: {} = {rate} is not a probability in 0..=1", fault.name()));
                }
                provider.set_fault_rates(rates.clone());
                axum::Json(rates).into_response()
            }
        })
    };
    let outage = axum::routing::put(move |body: axum::body::Bytes| {
        let provider = provider.clone();
        async move {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Outage {
                status: Option<u16>,
            }
            match serde_json::from_slice::<Outage>(&body) {
                Ok(Outage { status: Some(status) }) if !(400..600).contains(&status) => {
                    refuse(&format!("outage: status {status} is not an error status (400..=599)"))
                }
                Ok(Outage { status }) => {
                    provider.set_outage(status);
                    StatusCode::NO_CONTENT.into_response()
                }
                Err(error) => {
                    refuse(&format!("outage: {error} (expected {{\"status\": 503}} or {{\"status\": null}})"))
                }
            }
        }
    });
    Router::new()
        .route(&format!("{CONTROL_PATH}/reset"), reset)
        .route(&format!("{CONTROL_PATH}/faults"), faults)
        .route(&format!("{CONTROL_PATH}/outage"), outage)
}

/// A control request refused: 400 with `{"error": …}` saying what and where.
fn refuse(error: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    (axum::http::StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({ "error": error }))).into_response()
}

/// Serves `provider` on `listener` in real time until the task is dropped; `hold`, when
/// given, is awaited between each request's acceptances and its answer.
pub async fn serve_live(
    provider: Arc<Provider>,
    listener: tokio::net::TcpListener,
    engine_url: &str,
    hold: Option<AfterAccept>,
) -> std::io::Result<()> {
    provider.use_real_time();
    if let Some(hold) = hold {
        provider.hold_answers_with(hold);
    }
    let router = live_router(provider, engine_url, Duration::from_secs(5));
    axum::serve(listener, router.into_make_service_with_connect_info::<Peer>()).await
}
