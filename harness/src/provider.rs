//! The simulated provider: Mitto-style bulk and Twilio-style single on one host, speaking
//! the adapters' own wire types, keeping the ground truth, and misbehaving on command.
//!
//! The ground truth ([`Truth`]) lives outside the simulated host, so it survives a
//! provider crash and the oracle can read it between steps: every message the provider
//! received and accepted (and how many times), and every delivery report it sent. A
//! message is identified by its destination and body; the driver makes bodies unique per
//! campaign, so two acceptances under one key are two sends of one message.

use crate::clock::SimClock;
use crate::net::{SimConnector, SimListener};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use smsim_core::adapter::http::HyperClient;
use smsim_core::adapter::mitto::wire as mitto;
use smsim_core::adapter::twilio::{twilio_signature, wire as twilio};
use smsim_core::adapter::{HttpClient, HttpRequest};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Per-request and per-report fault probabilities, and behaviour.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Behaviour {
    /// Answer latency range in ms.
    pub latency_ms: [u64; 2],
    /// Per message: refused permanently.
    pub reject_rate: f64,
    /// Per accepted message: delivered (else undelivered).
    pub delivery_rate: f64,
    /// Delay between acceptance and the final report.
    pub report_delay_ms: [u64; 2],
    /// Send an intermediate report first.
    pub intermediate_reports: bool,
    /// Per request: 503.
    pub provider_5xx: f64,
    /// Per request: 429 with Retry-After.
    pub provider_429: f64,
    /// Per request: accept, never answer in time.
    pub timeout_after_accept: f64,
    /// Per bulk request: some messages refused.
    pub partial_bulk_failure: f64,
    /// Per request: accept, answer garbage.
    pub malformed_answer: f64,
    /// Per report: sent twice.
    pub duplicate_report: f64,
    /// Per accepted message: report sent before the submit answer.
    pub report_before_answer: f64,
    /// Per accepted message: an intermediate report after the final one.
    pub intermediate_after_final: f64,
    /// Per accepted message: also a report for an id nobody sent.
    pub unknown_id_report: f64,
    /// Per accepted message: also a forged report.
    pub forged_report: f64,
    /// Per request: ask the harness to crash the calling worker after accepting.
    pub crash_after_accept: f64,
}

/// The key of a message at the provider: destination and body.
pub type MessageKey = (String, String);

/// One acceptance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Acceptance {
    /// When (simulated ms since the start).
    pub at_ms: u64,
    /// The provider's id.
    pub provider_id: String,
    /// The engine account it came through (`ta_N`).
    pub account: String,
}

/// A report the provider sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SentReport {
    /// When it was first sent.
    pub at_ms: u64,
    /// The engine account.
    pub account: String,
    /// The provider id it names.
    pub provider_id: String,
    /// The status string sent.
    pub status: String,
    /// Whether the status is final.
    pub is_final: bool,
    /// Deliberately forged (wrong signature or token).
    pub forged: bool,
    /// The HTTP status the engine answered last, if any.
    pub answered: Option<u16>,
}

/// Something the provider saw, for the trace and coverage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ProviderEvent {
    /// A message was received in a submit request.
    Received {
        /// Engine account.
        account: String,
        /// Destination.
        destination: String,
    },
    /// A message was accepted.
    Accepted {
        /// Engine account.
        account: String,
        /// Provider id.
        provider_id: String,
        /// Destination.
        destination: String,
        /// Times this key has now been accepted.
        count: u32,
    },
    /// A request was answered with a fault.
    Fault {
        /// Which.
        kind: String,
    },
    /// A report was sent.
    Report {
        /// Provider id.
        provider_id: String,
        /// Status.
        status: String,
        /// Forged.
        forged: bool,
        /// The engine's answer.
        answered: Option<u16>,
    },
}

/// The provider's ground truth.
#[derive(Debug, Default)]
pub struct Truth {
    /// Acceptances by message key.
    pub accepted: BTreeMap<MessageKey, Vec<Acceptance>>,
    /// Every message received in a submit request: (time ms, engine account, destination).
    pub received: Vec<(u64, String, String)>,
    /// Every report sent.
    pub reports: Vec<SentReport>,
    /// Events not yet drained into the trace.
    pub events: Vec<(u64, ProviderEvent)>,
    /// Hosts the provider asked the harness to crash (peer host names).
    pub crash_requests: Vec<String>,
    /// Named rare paths taken.
    pub marks: BTreeMap<&'static str, u64>,
    /// Keys accepted a second (or later) time, in the order it happened.
    pub duplicated: Vec<MessageKey>,
    /// Reports scheduled and not yet done with (sent and answered, or given up on).
    pub reports_pending: u64,
}

impl Truth {
    fn event(&mut self, at_ms: u64, event: ProviderEvent) {
        self.events.push((at_ms, event));
    }

    fn mark(&mut self, name: &'static str) {
        *self.marks.entry(name).or_default() += 1;
    }
}

/// How the provider knows one engine account.
#[derive(Clone, Debug)]
pub struct AccountBinding {
    /// The engine's id (`ta_N`).
    pub engine_id: String,
    /// Mitto: the API key it must send; Twilio: the account SID.
    pub key: String,
    /// Mitto: the webhook token; Twilio: the auth token.
    pub secret: String,
}

/// The simulated provider, shared between its host and the harness.
pub struct Provider {
    /// Ground truth.
    pub truth: Mutex<Truth>,
    behaviour: Mutex<Behaviour>,
    outage: Mutex<Option<u16>>,
    rng: Mutex<ChaCha8Rng>,
    accounts: Vec<AccountBinding>,
    clock: SimClock,
    next_id: Mutex<u64>,
    reports_held: watch::Sender<bool>,
    report_slots: Mutex<Option<Arc<tokio::sync::Semaphore>>>,
}

impl Provider {
    /// A provider with `behaviour`, knowing `accounts`, drawing from `seed`.
    pub fn new(behaviour: Behaviour, accounts: Vec<AccountBinding>, seed: u64, clock: SimClock) -> Arc<Provider> {
        Arc::new(Provider {
            truth: Mutex::new(Truth::default()),
            behaviour: Mutex::new(behaviour),
            outage: Mutex::new(None),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            accounts,
            clock,
            next_id: Mutex::new(0),
            reports_held: watch::channel(false).0,
            report_slots: Mutex::new(None),
        })
    }

    /// Holds every delivery report that falls due until released, or releases them. A
    /// throughput measurement uses it to time submissions and reports apart; simulations
    /// never hold reports.
    pub fn hold_reports(&self, held: bool) {
        self.reports_held.send_replace(held);
    }

    /// Sends at most `slots` reports at once, as a real provider's webhook sender does
    /// (on real sockets, tens of thousands of reports falling due together would
    /// otherwise each open a connection). Simulations leave reports unlimited.
    pub fn limit_concurrent_reports(&self, slots: usize) {
        *self.report_slots.lock().expect("provider poisoned") = Some(Arc::new(tokio::sync::Semaphore::new(slots)));
    }

    /// Starts or ends an outage answering `status` to every request.
    pub fn set_outage(&self, status: Option<u16>) {
        *self.outage.lock().expect("provider poisoned") = status;
    }

    /// Turns every fault off (the heal phase).
    pub fn heal(&self) {
        self.set_outage(None);
        let mut behaviour = self.behaviour.lock().expect("provider poisoned");
        *behaviour = Behaviour {
            latency_ms: behaviour.latency_ms,
            reject_rate: behaviour.reject_rate,
            delivery_rate: behaviour.delivery_rate,
            report_delay_ms: behaviour.report_delay_ms,
            intermediate_reports: behaviour.intermediate_reports,
            ..Behaviour::default()
        };
    }

    fn now_ms(&self) -> u64 {
        self.clock.elapsed_ms()
    }

    fn chance(&self, p: f64) -> bool {
        p > 0.0 && self.rng.lock().expect("provider poisoned").random_bool(p.min(1.0))
    }

    fn between(&self, [low, high]: [u64; 2]) -> u64 {
        self.rng.lock().expect("provider poisoned").random_range(low..=high)
    }

    fn behaviour(&self) -> Behaviour {
        self.behaviour.lock().expect("provider poisoned").clone()
    }

    fn new_id(&self, prefix: &str) -> String {
        let mut next = self.next_id.lock().expect("provider poisoned");
        *next += 1;
        format!("{prefix}{:08}", *next)
    }

    fn account_by_key(&self, key: &str) -> Option<AccountBinding> {
        self.accounts.iter().find(|account| account.key == key).cloned()
    }

    /// Records an acceptance, returning its provider id.
    fn accept(&self, account: &AccountBinding, destination: &str, body: &str, prefix: &str) -> String {
        let provider_id = self.new_id(prefix);
        let at_ms = self.now_ms();
        let mut truth = self.truth.lock().expect("provider poisoned");
        let acceptances = truth.accepted.entry((destination.to_owned(), body.to_owned())).or_default();
        acceptances.push(Acceptance { at_ms, provider_id: provider_id.clone(), account: account.engine_id.clone() });
        let count = acceptances.len() as u32;
        if count > 1 {
            truth.duplicated.push((destination.to_owned(), body.to_owned()));
        }
        truth.event(
            at_ms,
            ProviderEvent::Accepted {
                account: account.engine_id.clone(),
                provider_id: provider_id.clone(),
                destination: destination.to_owned(),
                count,
            },
        );
        provider_id
    }

    fn received(&self, account: &AccountBinding, destination: &str) {
        let at_ms = self.now_ms();
        let mut truth = self.truth.lock().expect("provider poisoned");
        truth.received.push((at_ms, account.engine_id.clone(), destination.to_owned()));
        truth.event(
            at_ms,
            ProviderEvent::Received { account: account.engine_id.clone(), destination: destination.to_owned() },
        );
    }

    fn fault(&self, kind: &str, mark: &'static str) {
        let at_ms = self.now_ms();
        let mut truth = self.truth.lock().expect("provider poisoned");
        truth.mark(mark);
        truth.event(at_ms, ProviderEvent::Fault { kind: kind.to_owned() });
    }

    /// A request-level fault to answer instead of processing, if one is drawn.
    fn request_fault(&self, behaviour: &Behaviour) -> Option<Response> {
        if let Some(status) = *self.outage.lock().expect("provider poisoned") {
            self.fault(&format!("outage_{status}"), "provider_outage");
            return Some(outage_answer(status));
        }
        if self.chance(behaviour.provider_5xx) {
            self.fault("http_503", "provider_5xx");
            return Some(outage_answer(503));
        }
        if self.chance(behaviour.provider_429) {
            self.fault("http_429", "provider_429");
            return Some(outage_answer(429));
        }
        None
    }
}

fn outage_answer(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut response = (status, "try later").into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert("retry-after", "2".parse().expect("a valid header"));
    }
    response
}

/// How the submit answer should be spoiled after accepting, if at all.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Spoil {
    None,
    Timeout,
    Malformed,
}

fn spoil(provider: &Provider, behaviour: &Behaviour) -> Spoil {
    if provider.chance(behaviour.timeout_after_accept) {
        provider.fault("timeout_after_accept", "timeout_after_accept");
        Spoil::Timeout
    } else if provider.chance(behaviour.malformed_answer) {
        provider.fault("malformed_answer", "malformed_answer");
        Spoil::Malformed
    } else {
        Spoil::None
    }
}

/// The provider host's shared state: the provider, one pooled client for webhooks and
/// the engine's base URL Mitto-style reports are posted to.
#[derive(Clone)]
pub struct Host {
    provider: Arc<Provider>,
    webhooks: Arc<dyn HttpClient>,
    engine_url: Arc<str>,
}

/// The provider's router on the simulated network; webhooks are sent through one pooled
/// client per host start, to the `api` host.
pub fn router(provider: Arc<Provider>) -> Router {
    let webhooks = Arc::new(HyperClient::new(SimConnector, Duration::from_secs(5)));
    router_with(provider, webhooks, "http://api")
}

/// The provider's router sending webhooks through `webhooks` to the engine at
/// `engine_url` (Twilio-style reports go to the callback each message names).
pub fn router_with(provider: Arc<Provider>, webhooks: Arc<dyn HttpClient>, engine_url: &str) -> Router {
    Router::new()
        .route("/api/v1.1/Messages/sendmessagesbulk", post(mitto_send))
        .route("/2010-04-01/Accounts/{sid}/Messages.json", post(twilio_send).get(twilio_list))
        .with_state(Host { provider, webhooks, engine_url: engine_url.into() })
}

/// The address of the host that made a request.
#[derive(Clone, Copy, Debug)]
struct Peer(SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, SimListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, SimListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Peer(*stream.remote_addr())
    }
}

/// Serves the provider on port 80 of the current simulated host.
pub async fn serve(provider: Arc<Provider>) -> std::io::Result<()> {
    let listener = SimListener::bind(80).await?;
    axum::serve(listener, router(provider).into_make_service_with_connect_info::<Peer>()).await
}

/// Serves the provider on real sockets (for timing the engine in real time): webhooks go
/// over TCP to the engine at `engine_url`.
pub async fn serve_tcp(
    provider: Arc<Provider>,
    listener: tokio::net::TcpListener,
    engine_url: &str,
) -> std::io::Result<()> {
    let webhooks = Arc::new(HyperClient::tcp(Duration::from_secs(10)));
    let router = router_with(provider, webhooks, engine_url);
    axum::serve(listener, router.into_make_service_with_connect_info::<Peer>()).await
}

async fn answer_after(provider: &Provider, behaviour: &Behaviour, spoiled: Spoil, response: Response) -> Response {
    let latency = provider.between(behaviour.latency_ms);
    let delay = if spoiled == Spoil::Timeout { 600_000 } else { latency };
    tokio::time::sleep(Duration::from_millis(delay)).await;
    response
}

fn caller_crash(provider: &Provider, behaviour: &Behaviour, peer: SocketAddr) {
    if provider.chance(behaviour.crash_after_accept) {
        if let Some(host) = turmoil::reverse_lookup(peer.ip()) {
            let mut truth = provider.truth.lock().expect("provider poisoned");
            truth.crash_requests.push(host);
            truth.mark("crash_after_accept_requested");
        }
    }
}

async fn mitto_send(
    State(Host { provider, webhooks, engine_url }): State<Host>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let behaviour = provider.behaviour();
    let Some(account) =
        headers.get("x-mitto-api-key").and_then(|key| key.to_str().ok()).and_then(|key| provider.account_by_key(key))
    else {
        return (StatusCode::UNAUTHORIZED, "unknown API key").into_response();
    };
    if let Some(fault) = provider.request_fault(&behaviour) {
        return answer_after(&provider, &behaviour, Spoil::None, fault).await;
    }
    let Ok(request) = serde_json::from_slice::<mitto::BulkRequest>(&body) else {
        return (StatusCode::BAD_REQUEST, "malformed bulk request").into_response();
    };
    let partial = provider.chance(behaviour.partial_bulk_failure);
    if partial {
        provider.fault("partial_bulk_failure", "partial_bulk_failure");
    }
    let spoiled = spoil(&provider, &behaviour);
    let mut results = Vec::with_capacity(request.messages.len());
    let mut accepted = Vec::new();
    for message in &request.messages {
        provider.received(&account, &message.destination);
        let refusal = if provider.chance(behaviour.reject_rate) {
            Some("INVALID_DESTINATION")
        } else if partial && provider.chance(0.3) {
            Some(if provider.chance(0.5) { "THROTTLED" } else { "BLOCKED" })
        } else {
            None
        };
        let result = match refusal {
            Some(code) => mitto::BulkResult {
                traffic_account_id: message.traffic_account_id.clone(),
                message_id: None,
                error: Some(mitto::BulkError { code: code.into(), message: code.to_lowercase() }),
            },
            None => {
                let id = provider.accept(&account, &message.destination, &message.sms.text, "M");
                accepted.push(id.clone());
                mitto::BulkResult {
                    traffic_account_id: message.traffic_account_id.clone(),
                    message_id: Some(id),
                    error: None,
                }
            }
        };
        results.push(result);
    }
    caller_crash(&provider, &behaviour, peer);
    for id in &accepted {
        schedule_reports(
            provider.clone(),
            webhooks.clone(),
            Channel::Mitto { account: account.clone(), engine_url: engine_url.clone() },
            id.clone(),
            &behaviour,
        );
    }
    let answer = mitto::BulkResponse { bulk_id: provider.new_id("B"), messages: results };
    let response = if spoiled == Spoil::Malformed {
        let text = serde_json::to_string(&answer).expect("answers serialise");
        ([("content-type", "application/json")], text[..text.len() / 2].to_owned()).into_response()
    } else {
        axum::Json(answer).into_response()
    };
    answer_after(&provider, &behaviour, spoiled, response).await
}

async fn twilio_send(
    State(Host { provider, webhooks, .. }): State<Host>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    Path(sid): Path<String>,
    body: Bytes,
) -> Response {
    let behaviour = provider.behaviour();
    let Some(account) = provider.account_by_key(&sid) else {
        return (StatusCode::UNAUTHORIZED, "unknown account").into_response();
    };
    if let Some(fault) = provider.request_fault(&behaviour) {
        return answer_after(&provider, &behaviour, Spoil::None, fault).await;
    }
    let Ok(form) = serde_urlencoded::from_bytes::<twilio::SendForm>(&body) else {
        return (StatusCode::BAD_REQUEST, "malformed form").into_response();
    };
    provider.received(&account, &form.to);
    if provider.chance(behaviour.reject_rate) {
        let error = twilio::ErrorBody {
            code: 21211,
            message: "The 'To' number is not a valid phone number.".into(),
            status: 400,
        };
        return answer_after(
            &provider,
            &behaviour,
            Spoil::None,
            (StatusCode::BAD_REQUEST, axum::Json(error)).into_response(),
        )
        .await;
    }
    let spoiled = spoil(&provider, &behaviour);
    let sid_of_message = provider.accept(&account, &form.to, &form.body, "SM");
    caller_crash(&provider, &behaviour, peer);
    if let Some(callback) = form.status_callback.clone() {
        schedule_reports(
            provider.clone(),
            webhooks.clone(),
            Channel::Twilio { account: account.clone(), callback },
            sid_of_message.clone(),
            &behaviour,
        );
    }
    let resource = twilio::MessageResource {
        sid: sid_of_message,
        status: "queued".into(),
        to: form.to,
        from: form.from,
        body: form.body,
        error_code: None,
        error_message: None,
        num_segments: Some("1".into()),
        price: None,
    };
    let response = if spoiled == Spoil::Malformed {
        ([("content-type", "application/json")], "{\"sid\": \"SM").into_response()
    } else {
        (StatusCode::CREATED, axum::Json(resource)).into_response()
    };
    answer_after(&provider, &behaviour, spoiled, response).await
}

async fn twilio_list(
    State(Host { provider, .. }): State<Host>,
    Path(sid): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let Some(account) = provider.account_by_key(&sid) else {
        return (StatusCode::UNAUTHORIZED, "unknown account").into_response();
    };
    let to = query.get("To").cloned().unwrap_or_default();
    let truth = provider.truth.lock().expect("provider poisoned");
    let messages = truth
        .accepted
        .iter()
        .filter(|((destination, _), _)| *destination == to)
        .flat_map(|((destination, body), acceptances)| {
            acceptances.iter().filter(|a| a.account == account.engine_id).map(|a| twilio::MessageResource {
                sid: a.provider_id.clone(),
                status: "sent".into(),
                to: destination.clone(),
                from: query.get("From").cloned(),
                body: body.clone(),
                error_code: None,
                error_message: None,
                num_segments: Some("1".into()),
                price: None,
            })
        })
        .collect();
    axum::Json(twilio::MessageList { messages }).into_response()
}

/// Where a message's reports go.
#[derive(Clone)]
enum Channel {
    Mitto { account: AccountBinding, engine_url: Arc<str> },
    Twilio { account: AccountBinding, callback: String },
}

/// A report to send.
struct Outgoing {
    delay_ms: u64,
    provider_id: String,
    status: &'static str,
    is_final: bool,
    forged: bool,
    /// A report for an id nobody sent: it must not carry a real message's reference
    /// (Twilio's per-message callback URL names the message it was given for).
    stray: bool,
}

fn schedule_reports(
    provider: Arc<Provider>,
    client: Arc<dyn HttpClient>,
    channel: Channel,
    provider_id: String,
    behaviour: &Behaviour,
) {
    let twilio = matches!(channel, Channel::Twilio { .. });
    let (intermediate, delivered, undelivered) =
        if twilio { ("sent", "delivered", "undelivered") } else { ("Sent", "Delivered", "Failure") };
    let final_status = if provider.chance(behaviour.delivery_rate) { delivered } else { undelivered };
    let early = provider.chance(behaviour.report_before_answer);
    let final_delay = if early { 0 } else { provider.between(behaviour.report_delay_ms) };
    let mut outgoing = Vec::new();
    if behaviour.intermediate_reports && !early {
        outgoing.push(Outgoing {
            delay_ms: final_delay / 2,
            provider_id: provider_id.clone(),
            status: intermediate,
            is_final: false,
            forged: false,
            stray: false,
        });
    }
    outgoing.push(Outgoing {
        delay_ms: final_delay,
        provider_id: provider_id.clone(),
        status: final_status,
        is_final: true,
        forged: false,
        stray: false,
    });
    if early {
        provider.truth.lock().expect("provider poisoned").mark("report_before_answer_sent");
    }
    if provider.chance(behaviour.duplicate_report) {
        provider.truth.lock().expect("provider poisoned").mark("duplicate_report_sent");
        outgoing.push(Outgoing {
            delay_ms: final_delay + 50,
            provider_id: provider_id.clone(),
            status: final_status,
            is_final: true,
            forged: false,
            stray: false,
        });
    }
    if provider.chance(behaviour.intermediate_after_final) {
        provider.truth.lock().expect("provider poisoned").mark("intermediate_after_final_sent");
        outgoing.push(Outgoing {
            delay_ms: final_delay + 100,
            provider_id: provider_id.clone(),
            status: intermediate,
            is_final: false,
            forged: false,
            stray: false,
        });
    }
    if provider.chance(behaviour.unknown_id_report) {
        provider.truth.lock().expect("provider poisoned").mark("unknown_id_report_sent");
        outgoing.push(Outgoing {
            delay_ms: final_delay,
            provider_id: format!("X{provider_id}"),
            status: delivered,
            is_final: true,
            forged: false,
            stray: true,
        });
    }
    if provider.chance(behaviour.forged_report) {
        provider.truth.lock().expect("provider poisoned").mark("forged_report_sent");
        outgoing.push(Outgoing {
            delay_ms: final_delay / 3,
            provider_id: provider_id.clone(),
            status: undelivered,
            is_final: true,
            forged: true,
            stray: false,
        });
    }
    for report in outgoing {
        let pending = PendingReport::new(&provider);
        let (provider, client, channel) = (provider.clone(), client.clone(), channel.clone());
        tokio::spawn(async move {
            send_report(provider, client, channel, report).await;
            drop(pending);
        });
    }
}

/// One report counted in [`Truth::reports_pending`] for as long as this lives (also when
/// its task is dropped with a crashed or finished simulation).
struct PendingReport(Arc<Provider>);

impl PendingReport {
    fn new(provider: &Arc<Provider>) -> PendingReport {
        provider.truth.lock().expect("provider poisoned").reports_pending += 1;
        PendingReport(provider.clone())
    }
}

impl Drop for PendingReport {
    fn drop(&mut self) {
        if let Ok(mut truth) = self.0.truth.lock() {
            truth.reports_pending -= 1;
        }
    }
}

/// Posts one report, retrying non-2xx answers like real providers do (not forged ones).
async fn send_report(provider: Arc<Provider>, client: Arc<dyn HttpClient>, channel: Channel, report: Outgoing) {
    tokio::time::sleep(Duration::from_millis(report.delay_ms)).await;
    // Simulations never hold reports, and must not reach an await point here (a wait,
    // even on an open gate, spends cooperative budget).
    if *provider.reports_held.borrow() {
        let _ = provider.reports_held.subscribe().wait_for(|held| !held).await;
    }
    let (account, request) = match &channel {
        Channel::Mitto { account, engine_url } => {
            let token = if report.forged { "forged".to_owned() } else { account.secret.clone() };
            let body = mitto::DeliveryReport {
                message_id: report.provider_id.clone(),
                delivery_status: report.status.into(),
                error_code: None,
            };
            let request = HttpRequest {
                method: http::Method::POST,
                url: format!("{engine_url}/v1/webhooks/mitto/{}?token={token}", account.engine_id),
                headers: BTreeMap::from([("content-type".to_owned(), "application/json".to_owned())]),
                body: Bytes::from(serde_json::to_vec(&body).expect("reports serialise")),
            };
            (account.clone(), request)
        }
        Channel::Twilio { account, callback } => {
            let callback =
                if report.stray { callback.split('?').next().unwrap_or(callback).to_owned() } else { callback.clone() };
            let callback = &callback;
            let params: BTreeMap<String, String> = [
                ("MessageSid", report.provider_id.as_str()),
                ("MessageStatus", report.status),
                ("AccountSid", account.key.as_str()),
            ]
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
            let token = if report.forged { "forged" } else { account.secret.as_str() };
            let signature = twilio_signature(token, callback, &params);
            let request = HttpRequest {
                method: http::Method::POST,
                url: callback.clone(),
                headers: BTreeMap::from([
                    ("content-type".to_owned(), "application/x-www-form-urlencoded".to_owned()),
                    ("x-twilio-signature".to_owned(), signature),
                ]),
                body: Bytes::from(serde_urlencoded::to_string(&params).expect("forms serialise")),
            };
            (account.clone(), request)
        }
    };
    let at_ms = provider.now_ms();
    let index = {
        let mut truth = provider.truth.lock().expect("provider poisoned");
        truth.reports.push(SentReport {
            at_ms,
            account: account.engine_id.clone(),
            provider_id: report.provider_id.clone(),
            status: report.status.into(),
            is_final: report.is_final,
            forged: report.forged,
            answered: None,
        });
        truth.reports.len() - 1
    };
    let attempts = if report.forged { 1 } else { 5 };
    for attempt in 0..attempts {
        let slots = provider.report_slots.lock().expect("provider poisoned").clone();
        let slot = match &slots {
            Some(slots) => slots.acquire().await.ok(),
            None => None,
        };
        let answered = client.send(request.clone()).await.ok().map(|response| response.status);
        drop(slot);
        let now = provider.now_ms();
        {
            let mut truth = provider.truth.lock().expect("provider poisoned");
            truth.reports[index].answered = answered;
            truth.event(
                now,
                ProviderEvent::Report {
                    provider_id: report.provider_id.clone(),
                    status: report.status.into(),
                    forged: report.forged,
                    answered,
                },
            );
        }
        if answered.is_some_and(|status| (200..300).contains(&status)) || report.forged {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1_000 << attempt)).await;
    }
}

/// Message keys the provider accepted more than once.
pub fn duplicates(truth: &Truth) -> Vec<(&MessageKey, &Vec<Acceptance>)> {
    truth.accepted.iter().filter(|(_, acceptances)| acceptances.len() > 1).collect()
}

/// Destinations the provider received messages for.
pub fn destinations(truth: &Truth) -> BTreeSet<String> {
    truth.received.iter().map(|(_, _, destination)| destination.clone()).collect()
}
