//! The simulated provider: Mitto-style bulk, Twilio-style single and Infobip-style bulk on
//! one host, speaking the adapters' own wire types, keeping the ground truth, and
//! misbehaving on command.
//!
//! The ground truth ([`Truth`]) lives outside the simulated host, so it survives a
//! provider crash and the oracle can read it between steps: every message the provider
//! received and accepted (and how many times), and every delivery report it sent. A
//! message is identified by its destination and body; the driver makes bodies unique per
//! campaign, so two acceptances under one key are two sends of one message.
//!
//! The Mitto-style endpoint posts the final reports of one bulk request that fall due
//! in the same window ([`Behaviour::report_window_ms`]) as one array webhook, as a bulk
//! provider's report sender flushes what it has; early, intermediate and faulty reports
//! travel alone, as single objects.
//!
//! The Infobip-style endpoint takes the client's message ids (the engine's own) as its
//! ids, answers in a seeded shuffled order — which a position-mapping adapter gets
//! wrong — and sends reports to each message's `notifyUrl`, batching several results in
//! one webhook for some requests.

use crate::clock::SimClock;
use crate::coverage::Mark;
use crate::exchange::Exchange;
use crate::fault::FaultRates;
use crate::net::{SimConnector, SimListener};
use crate::scenario::Scenario;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use smsim_core::adapter::http::HyperClient;
use smsim_core::adapter::{HttpClient, HttpRequest};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

pub mod infobip;
pub mod live;
pub mod mitto;
pub mod twilio;

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
    /// Mitto-style final reports fall due at the end of a window this long, and one bulk
    /// request's reports due at the same end share an array webhook; 0: one per webhook.
    pub report_window_ms: u64,
    /// Fault rates: per request, per message or per report, as each fault says
    /// (`store_transient` is the faulty store's, not the provider's).
    pub faults: FaultRates,
}

impl Behaviour {
    /// The behaviour of a scenario's `[provider]` section, with no fault rates (a
    /// simulation's fault plan or live mode adds them).
    pub fn from_scenario(scenario: &Scenario) -> Behaviour {
        let provider = &scenario.provider;
        Behaviour {
            latency_ms: provider.latency_ms,
            reject_rate: provider.reject_rate,
            delivery_rate: provider.delivery_rate,
            report_delay_ms: provider.report_delay_ms,
            intermediate_reports: provider.intermediate_reports,
            report_window_ms: provider.report_window_ms,
            ..Behaviour::default()
        }
    }
}

/// The key of a message at the provider: destination and body. The body is shared
/// between keys (see [`Truth::key`]): a campaign's bodies differ only by their
/// placeholders, and a million keys hold a handful of distinct ones.
pub type MessageKey = (Box<str>, Arc<str>);

/// One acceptance. A large campaign's truth holds one per message, so the strings carry
/// no spare capacity and the account's id is shared with the provider's binding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Acceptance {
    /// When (simulated ms since the start).
    pub at_ms: u64,
    /// The provider's id.
    pub provider_id: Box<str>,
    /// The engine account it came through (`ta_N`).
    #[serde(serialize_with = "shared_str")]
    pub account: Arc<str>,
}

/// Serialises a shared string as the string it is.
fn shared_str<S: serde::Serializer>(text: &Arc<str>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(text)
}

/// A report the provider sent. Held for every report of the run (a million in a large
/// campaign), so kept as compact as [`Acceptance`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SentReport {
    /// When it was first sent.
    pub at_ms: u64,
    /// The engine account.
    #[serde(serialize_with = "shared_str")]
    pub account: Arc<str>,
    /// The provider id it names.
    pub provider_id: Box<str>,
    /// The status string sent (one of the provider's fixed statuses).
    pub status: &'static str,
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
    pub received: Vec<(u64, Arc<str>, Box<str>)>,
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
    /// Every distinct body of [`Truth::accepted`]'s keys, held once.
    bodies: BTreeSet<Arc<str>>,
    /// Every engine account id the records name, held once.
    accounts: BTreeSet<Arc<str>>,
    /// Every request the provider answered, with the host that sent it; kept only when a
    /// timeline is asked for (`Some`), and never written into the trace.
    pub exchanges: Option<Vec<Exchange>>,
    /// What the judge has not yet been told, in the order it happened.
    pub feed: Vec<(u64, Seen)>,
    /// Twilio-style: who sent each accepted message, by SID — the `From` the request gave,
    /// or the number a messaging service picked from its pool — as its list filters on it.
    pub twilio_senders: BTreeMap<Box<str>, TwilioSender>,
    /// Infobip-style: what each accepted message's reports and log entries repeat (bulk,
    /// sender, callback data), and for one sent without `notifyUrl`, its report to pull.
    pub infobip: BTreeMap<Box<str>, infobip::Record>,
}

/// The sender of a Twilio-style message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TwilioSender {
    /// The number (or alphanumeric id) it went out from.
    pub from: Box<str>,
    /// The messaging service that picked it, if one did.
    pub messaging_service_sid: Option<Box<str>>,
    /// When it was accepted (ms since the start).
    pub at_ms: u64,
}

/// The numbers a simulated Twilio messaging service sends from: the service, not the
/// request, picks one per message.
pub const MESSAGING_SERVICE_POOL: [&str; 3] = ["+15005550101", "+15005550102", "+15005550103"];

/// Something the provider saw, as the judge is told it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// A message arrived in a submit request.
    Received {
        /// Engine account.
        account: Arc<str>,
        /// Its key: destination and the body received.
        key: MessageKey,
    },
    /// A message arrived in a submit request the provider refused as a whole.
    Refused {
        /// Engine account.
        account: Arc<str>,
        /// Its key: destination and the body the request carried.
        key: MessageKey,
        /// The HTTP status of the refusal.
        status: u16,
        /// The `Retry-After` it gave, ms.
        retry_after_ms: Option<u64>,
    },
    /// A message was accepted.
    Accepted {
        /// Engine account.
        account: Arc<str>,
        /// Its key: destination and the body received.
        key: MessageKey,
        /// The id given.
        provider_id: Box<str>,
    },
    /// The engine answered a report (one per attempt).
    ReportAnswered {
        /// Index into [`Truth::reports`].
        report: usize,
        /// The answer (`None`: none came).
        answered: Option<u16>,
    },
}

impl Truth {
    /// The key of the message to `destination` with `body`, its body shared with the keys
    /// already held.
    pub fn key(&mut self, destination: &str, body: &str) -> MessageKey {
        let body = match self.bodies.get(body) {
            Some(known) => known.clone(),
            None => {
                let body: Arc<str> = body.into();
                self.bodies.insert(body.clone());
                body
            }
        };
        (destination.into(), body)
    }

    /// The engine account id `engine_id`, shared with the records already naming it.
    fn account(&mut self, engine_id: &str) -> Arc<str> {
        match self.accounts.get(engine_id) {
            Some(known) => known.clone(),
            None => {
                let engine_id: Arc<str> = engine_id.into();
                self.accounts.insert(engine_id.clone());
                engine_id
            }
        }
    }

    fn event(&mut self, at_ms: u64, event: ProviderEvent) {
        self.events.push((at_ms, event));
    }

    /// Records that the provider accepted the message to `destination` with `body` under
    /// `provider_id` through `engine_id`'s account at `at_ms`; returns how many times that
    /// key has now been accepted.
    pub fn record_acceptance(
        &mut self,
        at_ms: u64,
        engine_id: &str,
        destination: &str,
        body: &str,
        provider_id: &str,
    ) -> u32 {
        // Room for one: a message is accepted once unless something is wrong (a default
        // `Vec` would make room for four, a million times over).
        let key = self.key(destination, body);
        let account = self.account(engine_id);
        let acceptances = self.accepted.entry(key.clone()).or_insert_with(|| Vec::with_capacity(1));
        acceptances.push(Acceptance { at_ms, provider_id: provider_id.into(), account: account.clone() });
        let count = acceptances.len() as u32;
        if count > 1 {
            self.duplicated.push(key.clone());
        }
        self.feed.push((at_ms, Seen::Accepted { account, key, provider_id: provider_id.into() }));
        count
    }

    fn mark(&mut self, mark: Mark) {
        *self.marks.entry(mark.name()).or_default() += 1;
    }
}

/// How the provider knows one engine account.
#[derive(Clone, Debug)]
pub struct AccountBinding {
    /// The engine's id (`ta_N`).
    pub engine_id: String,
    /// Mitto and Infobip: the API key it must send; Twilio: the account SID.
    pub key: String,
    /// Mitto and Infobip: the webhook token; Twilio: the auth token.
    pub secret: String,
}

/// Refusals by (engine account, message id): each one's destination and status name.
type Refusals = BTreeMap<(String, String), Vec<(String, &'static str)>>;

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
    /// Infobip-style messages refused in an answer: the message log lists them too.
    refused: Mutex<Refusals>,
    reports_held: watch::Sender<bool>,
    report_slots: Mutex<Option<Arc<tokio::sync::Semaphore>>>,
    /// Live mode only (see [`live`]): the real-time start that
    /// [`Provider::now_ms`] counts from instead of the simulated clock.
    real_start: std::sync::OnceLock<tokio::time::Instant>,
    /// Live mode only: awaited after a submit request accepted messages and before it is
    /// answered, so a runner can kill the engine between acceptance and commit.
    after_accept: std::sync::OnceLock<AfterAccept>,
    /// Live mode only: names the process behind a peer address, for the timeline's lanes
    /// (the simulator names hosts by their simulated address).
    peer_names: std::sync::OnceLock<PeerNames>,
}

/// Names the process a request came from by its address, when it can.
pub type PeerNames = Arc<dyn Fn(SocketAddr) -> Option<String> + Send + Sync>;

/// Called with the number of messages a submit request accepted and the address it came
/// from, before its answer is sent; the answer waits for the returned future.
pub type AfterAccept = Arc<dyn Fn(usize, SocketAddr) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

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
            refused: Mutex::new(BTreeMap::new()),
            reports_held: watch::channel(false).0,
            report_slots: Mutex::new(None),
            real_start: std::sync::OnceLock::new(),
            after_accept: std::sync::OnceLock::new(),
            peer_names: std::sync::OnceLock::new(),
        })
    }

    /// Counts time from now on tokio's real clock instead of the simulated one (live mode:
    /// outside a simulation the simulated clock reads 0). Takes effect once.
    pub fn use_real_time(&self) {
        let _ = self.real_start.set(tokio::time::Instant::now());
    }

    /// Real time from `start` (live mode: the run's one clock, shared with its trace, so
    /// the provider's record and the trace's events line up). Call before serving.
    pub fn use_real_time_from(&self, start: tokio::time::Instant) {
        let _ = self.real_start.set(start);
    }

    /// Installs `hook`, awaited between a request's acceptances and its answer (live mode:
    /// the runner kills the engine there). Takes effect once; simulations install none.
    pub fn hold_answers_with(&self, hook: AfterAccept) {
        let _ = self.after_accept.set(hook);
    }

    /// Keeps every exchange for a timeline, each request named by `names` (live mode; the
    /// simulator keeps them through [`Truth::exchanges`] and names hosts itself).
    pub fn keep_exchanges_named_by(&self, names: PeerNames) {
        self.truth.lock().expect("provider poisoned").exchanges = Some(Vec::new());
        let _ = self.peer_names.set(names);
    }

    /// Waits for the live-mode hook, if one is installed, after `accepted` acceptances of
    /// a request from `peer`.
    async fn after_accept(&self, accepted: usize, peer: SocketAddr) {
        if let Some(hook) = self.after_accept.get() {
            hook(accepted, peer).await;
        }
    }

    /// Holds every delivery report that falls due until released, or releases them. A
    /// throughput measurement uses it to time submissions and reports apart; simulations
    /// never hold reports.
    pub fn hold_reports(&self, held: bool) {
        self.reports_held.send_replace(held);
    }

    /// Sets [`Behaviour::report_window_ms`]: the throughput measurements time one array
    /// per bulk request (reports due at once, any window) against one report per webhook (0).
    pub fn set_report_window_ms(&self, window_ms: u64) {
        self.behaviour.lock().expect("provider poisoned").report_window_ms = window_ms;
    }

    /// Sends at most `slots` webhooks at once, as a real provider's webhook sender does
    /// (on real sockets, tens of thousands of reports falling due together would
    /// otherwise each open a connection). Simulations leave reports unlimited.
    pub fn limit_concurrent_reports(&self, slots: usize) {
        *self.report_slots.lock().expect("provider poisoned") = Some(Arc::new(tokio::sync::Semaphore::new(slots)));
    }

    /// Starts or ends an outage answering `status` to every request.
    pub fn set_outage(&self, status: Option<u16>) {
        *self.outage.lock().expect("provider poisoned") = status;
    }

    /// The fault rates in force.
    pub fn fault_rates(&self) -> FaultRates {
        self.behaviour.lock().expect("provider poisoned").faults.clone()
    }

    /// Puts `faults` in force (a standalone provider's control API).
    pub fn set_fault_rates(&self, faults: FaultRates) {
        self.behaviour.lock().expect("provider poisoned").faults = faults;
    }

    /// Forgets everything it was sent and did (a standalone provider's control API):
    /// acceptances, refusals, reports, marks; reports still scheduled are still sent.
    pub fn reset(&self) {
        *self.truth.lock().expect("provider poisoned") = Truth::default();
        self.refused.lock().expect("provider poisoned").clear();
    }

    /// Turns every fault off (the heal phase).
    pub fn heal(&self) {
        self.set_outage(None);
        let mut behaviour = self.behaviour.lock().expect("provider poisoned");
        behaviour.faults = FaultRates::default();
    }

    /// Milliseconds since the start: simulated, or real in live mode.
    pub fn now_ms(&self) -> u64 {
        match self.real_start.get() {
            Some(start) => start.elapsed().as_millis() as u64,
            None => self.clock.elapsed_ms(),
        }
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

    /// The next number of the provider's one counter (ids are drawn from it).
    fn next_number(&self) -> u64 {
        let mut next = self.next_id.lock().expect("provider poisoned");
        *next += 1;
        *next
    }

    fn new_id(&self, prefix: &str) -> String {
        let mut next = self.next_id.lock().expect("provider poisoned");
        *next += 1;
        format!("{prefix}{:08}", *next)
    }

    fn account_by_key(&self, key: &str) -> Option<AccountBinding> {
        self.accounts.iter().find(|account| account.key == key).cloned()
    }

    /// Records an acceptance under a new provider id, returning it.
    fn accept(&self, account: &AccountBinding, destination: &str, body: &str, prefix: &str) -> String {
        let provider_id = self.new_id(prefix);
        self.accept_as(account, destination, body, provider_id)
    }

    /// Records an acceptance under `provider_id` (the client's id, where the provider takes
    /// one), returning it.
    fn accept_as(&self, account: &AccountBinding, destination: &str, body: &str, provider_id: String) -> String {
        let at_ms = self.now_ms();
        let mut truth = self.truth.lock().expect("provider poisoned");
        let count = truth.record_acceptance(at_ms, &account.engine_id, destination, body, &provider_id);
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

    fn received(&self, account: &AccountBinding, destination: &str, body: &str) {
        let at_ms = self.now_ms();
        let mut truth = self.truth.lock().expect("provider poisoned");
        let engine_id = truth.account(&account.engine_id);
        truth.received.push((at_ms, engine_id.clone(), destination.into()));
        let key = truth.key(destination, body);
        truth.feed.push((at_ms, Seen::Received { account: engine_id, key }));
        truth.event(
            at_ms,
            ProviderEvent::Received { account: account.engine_id.clone(), destination: destination.to_owned() },
        );
    }

    fn fault(&self, kind: &str, mark: Mark) {
        let at_ms = self.now_ms();
        let mut truth = self.truth.lock().expect("provider poisoned");
        truth.mark(mark);
        truth.event(at_ms, ProviderEvent::Fault { kind: kind.to_owned() });
    }

    /// Tells the judge of every message (destination, body) of a submit request refused
    /// as a whole with `status`; nothing else changes (no trace event, no draw).
    fn refused_request<'m>(
        &self,
        account: &AccountBinding,
        messages: impl IntoIterator<Item = (&'m str, &'m str)>,
        status: StatusCode,
    ) {
        let at_ms = self.now_ms();
        let retry_after_ms = (status == StatusCode::TOO_MANY_REQUESTS).then_some(RETRY_AFTER_S * 1_000);
        let mut truth = self.truth.lock().expect("provider poisoned");
        let engine_id = truth.account(&account.engine_id);
        for (destination, body) in messages {
            let key = truth.key(destination, body);
            let refused = Seen::Refused { account: engine_id.clone(), key, status: status.as_u16(), retry_after_ms };
            truth.feed.push((at_ms, refused));
        }
    }

    /// A request-level fault to answer instead of processing, if one is drawn.
    /// The status a request is refused with by an outage or a drawn fault, if any; each
    /// wire writes it in its own error format.
    fn request_fault(&self, behaviour: &Behaviour) -> Option<StatusCode> {
        if let Some(status) = *self.outage.lock().expect("provider poisoned") {
            self.fault(&format!("outage_{status}"), Mark::ProviderOutage);
            return Some(StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE));
        }
        if self.chance(behaviour.faults.provider_5xx) {
            self.fault("http_503", Mark::Provider5xx);
            return Some(StatusCode::SERVICE_UNAVAILABLE);
        }
        if self.chance(behaviour.faults.provider_429) {
            self.fault("http_429", Mark::Provider429);
            return Some(StatusCode::TOO_MANY_REQUESTS);
        }
        None
    }
}

/// The `Retry-After` of a 429, in seconds.
const RETRY_AFTER_S: u64 = 2;

/// A refusal by an outage or a drawn fault, `body` in the wire's error format; a 429
/// says when to come back.
fn outage_answer(status: StatusCode, body: Response) -> Response {
    let mut response = (status, body).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert("retry-after", RETRY_AFTER_S.into());
    }
    response
}

/// Mitto-style: its documentation gives no error body, so plain text.
fn mitto_fault(status: StatusCode) -> Response {
    outage_answer(status, "try later".into_response())
}

/// Twilio's JSON error: 20429 for too many requests, 20500 otherwise.
fn twilio_fault(status: StatusCode) -> Response {
    let (code, message) = if status == StatusCode::TOO_MANY_REQUESTS {
        (20429, "Too Many Requests")
    } else {
        (20500, "Internal Server Error")
    };
    outage_answer(status, axum::Json(twilio::error(code, message, status.as_u16())).into_response())
}

/// Infobip's service exception.
fn infobip_fault(status: StatusCode) -> Response {
    let (code, text) = if status == StatusCode::TOO_MANY_REQUESTS {
        ("TOO_MANY_REQUESTS", "Too many requests")
    } else {
        ("GENERAL_ERROR", "Something went wrong. Please contact support.")
    };
    outage_answer(status, axum::Json(infobip::refusal(code, text)).into_response())
}

/// How the submit answer should be spoiled after accepting, if at all.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Spoil {
    None,
    Timeout,
    Malformed,
}

fn spoil(provider: &Provider, behaviour: &Behaviour) -> Spoil {
    if provider.chance(behaviour.faults.timeout_after_accept) {
        provider.fault("timeout_after_accept", Mark::TimeoutAfterAccept);
        Spoil::Timeout
    } else if provider.chance(behaviour.faults.malformed_answer) {
        provider.fault("malformed_answer", Mark::MalformedAnswer);
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
/// `engine_url` (Twilio- and Infobip-style reports go to the callback each message names).
pub fn router_with(provider: Arc<Provider>, webhooks: Arc<dyn HttpClient>, engine_url: &str) -> Router {
    Router::new()
        .route("/api/v1.1/Messages/sendmessagesbulk", post(mitto_send))
        .route("/2010-04-01/Accounts/{sid}/Messages.json", post(twilio_send).get(twilio_list))
        .route("/2010-04-01/Accounts/{sid}/Messages/{file}", get(twilio_fetch))
        .route("/sms/2/text/advanced", post(infobip_send))
        .route("/sms/1/logs", get(infobip_logs))
        .route("/sms/1/reports", get(infobip_reports))
        .layer(axum::middleware::from_fn_with_state(provider.clone(), log_exchange))
        .with_state(Host { provider, webhooks, engine_url: engine_url.into() })
}

/// Notes a request and its answer in [`Truth::exchanges`] when a timeline is kept: noted
/// when it arrives (status 0, so one still unanswered when the run ends shows), completed
/// when answered. It only reads the clock and the peer's name, so a run takes the same
/// path either way.
async fn log_exchange(
    State(provider): State<Arc<Provider>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let peer = request.extensions().get::<ConnectInfo<Peer>>().map(|ConnectInfo(Peer(peer))| *peer);
    // Named before the truth is locked: a live naming reads the operating system's tables.
    let named = provider.peer_names.get().map(|names| peer.and_then(|peer| names(peer)).unwrap_or_else(|| "?".into()));
    let index = {
        let at_ms = provider.now_ms();
        let mut truth = provider.truth.lock().expect("provider poisoned");
        truth.exchanges.as_mut().map(|exchanges| {
            let from = named.unwrap_or_else(|| {
                peer.and_then(|peer| turmoil::reverse_lookup(peer.ip())).unwrap_or_else(|| "?".to_owned())
            });
            let what = format!("{} {}", request.method(), request.uri().path());
            let to = "provider".to_owned();
            exchanges.push(Exchange { from, to, at_ms, until_ms: at_ms, what, status: 0, count: 1 });
            exchanges.len() - 1
        })
    };
    let response = next.run(request).await;
    if let Some(index) = index {
        let until_ms = provider.now_ms();
        let mut truth = provider.truth.lock().expect("provider poisoned");
        if let Some(exchange) = truth.exchanges.as_mut().and_then(|exchanges| exchanges.get_mut(index)) {
            exchange.until_ms = until_ms;
            exchange.status = response.status().as_u16();
        }
    }
    response
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
    if provider.chance(behaviour.faults.crash_after_accept) {
        if let Some(host) = turmoil::reverse_lookup(peer.ip()) {
            let mut truth = provider.truth.lock().expect("provider poisoned");
            truth.crash_requests.push(host);
            truth.mark(Mark::CrashAfterAcceptRequested);
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
        if let Ok(request) = serde_json::from_slice::<mitto::BulkRequest>(&body) {
            let messages = request.messages.iter().map(|m| (m.destination.as_str(), m.sms.text.as_str()));
            provider.refused_request(&account, messages, fault);
        }
        return answer_after(&provider, &behaviour, Spoil::None, mitto_fault(fault)).await;
    }
    let Ok(request) = serde_json::from_slice::<mitto::BulkRequest>(&body) else {
        return (StatusCode::BAD_REQUEST, "malformed bulk request").into_response();
    };
    let partial = provider.chance(behaviour.faults.partial_bulk_failure);
    if partial {
        provider.fault("partial_bulk_failure", Mark::PartialBulkFailure);
    }
    let spoiled = spoil(&provider, &behaviour);
    let mut results = Vec::with_capacity(request.messages.len());
    let mut accepted = Vec::new();
    for message in &request.messages {
        provider.received(&account, &message.destination, &message.sms.text);
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
                accepted.push((id.clone(), message.destination.clone()));
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
    if provider.after_accept.get().is_some() {
        provider.after_accept(accepted.len(), peer).await;
    }
    let channel = Channel::Mitto { account: account.clone(), engine_url: engine_url.clone() };
    // Final reports falling due at the same window's end share a webhook, in the order
    // of the request; every other report (early, intermediate, duplicated, stray,
    // forged) travels alone.
    let final_delay = match behaviour.report_window_ms {
        0 => FinalDelay::Drawn,
        window_ms => FinalDelay::Windowed(window_ms),
    };
    let mut windows: BTreeMap<u64, Vec<Outgoing>> = BTreeMap::new();
    for (id, destination) in &accepted {
        for report in plan_reports(&provider, &channel, id, destination, &behaviour, final_delay) {
            if report.batchable && matches!(final_delay, FinalDelay::Windowed(_)) {
                windows.entry(report.delay_ms).or_default().push(report);
            } else {
                spawn_webhook(provider.clone(), webhooks.clone(), channel.clone(), vec![report]);
            }
        }
    }
    for reports in windows.into_values() {
        spawn_webhook(provider.clone(), webhooks.clone(), channel.clone(), reports);
    }
    let answer = mitto::BulkResponse { bulk_id: provider.new_id("B"), messages: results };
    answer_after(&provider, &behaviour, spoiled, json_answer(&answer, spoiled)).await
}

/// Twilio's answer for an error `code` (its documented JSON body).
fn twilio_error(code: i64, message: &str, status: StatusCode) -> Response {
    (status, axum::Json(twilio::error(code, message, status.as_u16()))).into_response()
}

/// The account a Twilio request is for, if its basic auth names it.
fn twilio_account(provider: &Provider, sid: &str, headers: &http::HeaderMap) -> Option<AccountBinding> {
    let authorization = headers.get(http::header::AUTHORIZATION).and_then(|value| value.to_str().ok());
    provider.account_by_key(sid).filter(|account| twilio::authorised(authorization, &account.key, &account.secret))
}

/// Twilio's answer to a request whose credentials do not name the account.
fn twilio_unauthenticated() -> Response {
    twilio_error(20003, "Authenticate", StatusCode::UNAUTHORIZED)
}

/// How long a message stays in each of Twilio's statuses before its first report, ms:
/// a messaging service's `accepted` (until it picks a sender), then `queued`, then
/// `sending` until the carrier's answer (the first report).
const TWILIO_ACCEPTED_MS: u64 = 100;
const TWILIO_QUEUED_MS: u64 = 200;

/// A message as the simulated Twilio shows it at `now_ms`: before any report, along
/// Twilio's progression (`accepted` for a messaging service, `queued`, `sending`); after
/// one, the last genuine report's status and time.
fn twilio_view(
    truth: &Truth,
    now_ms: u64,
    account_sid: &str,
    acceptance: &Acceptance,
    to: &str,
    body: &str,
) -> serde_json::Value {
    let sender = truth.twilio_senders.get(&acceptance.provider_id);
    let service = sender.is_some_and(|s| s.messaging_service_sid.is_some());
    let last = truth.reports.iter().rev().find(|r| !r.forged && *r.provider_id == *acceptance.provider_id);
    let elapsed = now_ms.saturating_sub(acceptance.at_ms);
    let queued_at = if service { TWILIO_ACCEPTED_MS } else { 0 };
    let (status, updated_ms) = match last {
        Some(report) => (report.status, report.at_ms),
        None if elapsed < queued_at => ("accepted", acceptance.at_ms),
        None if elapsed < queued_at + TWILIO_QUEUED_MS => ("queued", acceptance.at_ms + queued_at),
        None => ("sending", acceptance.at_ms + queued_at + TWILIO_QUEUED_MS),
    };
    twilio::resource(&twilio::Message {
        account_sid,
        sid: &acceptance.provider_id,
        to,
        // A messaging service's pick shows once the message has moved on.
        from: if status == "accepted" { None } else { sender.map(|sender| &*sender.from) },
        messaging_service_sid: sender.and_then(|s| s.messaging_service_sid.as_deref()),
        body,
        status,
        created_ms: acceptance.at_ms,
        updated_ms,
    })
}

async fn twilio_send(
    State(Host { provider, webhooks, .. }): State<Host>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    Path(sid): Path<String>,
    headers: http::HeaderMap,
    body: Bytes,
) -> Response {
    let behaviour = provider.behaviour();
    let Some(account) = twilio_account(&provider, &sid, &headers) else { return twilio_unauthenticated() };
    if let Some(fault) = provider.request_fault(&behaviour) {
        if let Ok(form) = serde_urlencoded::from_bytes::<BTreeMap<String, String>>(&body) {
            if let (Some(to), Some(text)) = (form.get("To"), form.get("Body")) {
                provider.refused_request(&account, [(to.as_str(), text.as_str())], fault);
            }
        }
        return answer_after(&provider, &behaviour, Spoil::None, twilio_fault(fault)).await;
    }
    let Ok(form) = serde_urlencoded::from_bytes::<BTreeMap<String, String>>(&body) else {
        return twilio_error(21100, "The request could not be read as a form", StatusCode::BAD_REQUEST);
    };
    let field = |name: &str| form.get(name).filter(|value| !value.is_empty()).cloned();
    let (to, from, service) = (field("To"), field("From"), field("MessagingServiceSid"));
    let Some(to) = to else {
        return twilio_error(21604, "A 'To' phone number is required.", StatusCode::BAD_REQUEST);
    };
    let Some(text) = field("Body") else {
        return twilio_error(21602, "Message body is required.", StatusCode::BAD_REQUEST);
    };
    if from.is_none() && service.is_none() {
        return twilio_error(21603, "A 'From' phone number is required.", StatusCode::BAD_REQUEST);
    }
    if text.chars().count() > twilio::MAX_BODY_CHARS {
        return twilio_error(
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
            StatusCode::BAD_REQUEST,
        );
    }
    provider.received(&account, &to, &text);
    if !twilio::is_e164(&to) || provider.chance(behaviour.reject_rate) {
        let message = format!("The 'To' number {to} is not a valid phone number.");
        let refused = twilio_error(21211, &message, StatusCode::BAD_REQUEST);
        return answer_after(&provider, &behaviour, Spoil::None, refused).await;
    }
    let spoiled = spoil(&provider, &behaviour);
    let sid_of_message = provider.accept_as(&account, &to, &text, twilio::message_sid(provider.next_number()));
    let sent_from = match &from {
        Some(from) if service.is_none() => from.clone(),
        _ => {
            let pick = sid_of_message.bytes().map(usize::from).sum::<usize>() % MESSAGING_SERVICE_POOL.len();
            MESSAGING_SERVICE_POOL[pick].to_owned()
        }
    };
    let resource = {
        let mut truth = provider.truth.lock().expect("provider poisoned");
        let at_ms = provider.now_ms();
        let sender =
            TwilioSender { from: sent_from.into(), messaging_service_sid: service.as_deref().map(Into::into), at_ms };
        truth.twilio_senders.insert(sid_of_message.as_str().into(), sender);
        let acceptance = Acceptance {
            at_ms,
            provider_id: sid_of_message.as_str().into(),
            account: account.engine_id.as_str().into(),
        };
        twilio_view(&truth, at_ms, &account.key, &acceptance, &to, &text)
    };
    caller_crash(&provider, &behaviour, peer);
    if provider.after_accept.get().is_some() {
        provider.after_accept(1, peer).await;
    }
    if let Some(callback) = field("StatusCallback") {
        schedule_reports(
            provider.clone(),
            webhooks.clone(),
            Channel::Twilio { account: account.clone(), callback },
            sid_of_message.clone(),
            &to,
            &behaviour,
        );
    }
    let response = if spoiled == Spoil::Malformed {
        ([("content-type", "application/json")], "{\"sid\": \"SM").into_response()
    } else {
        (StatusCode::CREATED, axum::Json(resource)).into_response()
    };
    answer_after(&provider, &behaviour, spoiled, response).await
}

/// Twilio's message list: filtered by `To` and `From` (the sender each message really went
/// out from), newest first, `PageSize` (default 50, 1 to 1 000) to a page, the next page
/// named by `next_page_uri` until the last.
async fn twilio_list(
    State(Host { provider, .. }): State<Host>,
    Path(sid): Path<String>,
    headers: http::HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let Some(account) = twilio_account(&provider, &sid, &headers) else { return twilio_unauthenticated() };
    let to = query.get("To").cloned();
    let from = query.get("From").cloned();
    let page_size = match query.get("PageSize").map(|n| n.parse::<usize>()) {
        None => 50,
        Some(Ok(n)) if (1..=1_000).contains(&n) => n,
        Some(_) => return twilio_error(20001, "PageSize must be from 1 to 1000", StatusCode::BAD_REQUEST),
    };
    let token_page = query.get("PageToken").and_then(|token| token.strip_prefix("PA")?.parse().ok());
    let page: usize = token_page.or_else(|| query.get("Page").and_then(|n| n.parse().ok())).unwrap_or(0);
    let date_sent = match twilio::DateSent::of(&query) {
        Ok(filter) => filter,
        Err(problem) => return twilio_error(20001, &problem, StatusCode::BAD_REQUEST),
    };
    let now_ms = provider.now_ms();
    let truth = provider.truth.lock().expect("provider poisoned");
    let mut matching: Vec<(u64, &Acceptance, &str, &str)> = truth
        .accepted
        .iter()
        .filter(|((destination, _), _)| to.as_deref().is_none_or(|to| **destination == *to))
        .flat_map(|((destination, body), acceptances)| {
            acceptances
                .iter()
                .filter(|a| *a.account == *account.engine_id)
                .map(move |a| (a.at_ms, a, &**destination, &**body))
        })
        .filter(|(_, acceptance, _, _)| {
            let sent_from = truth.twilio_senders.get(&acceptance.provider_id).map(|sender| &*sender.from);
            from.as_deref().is_none_or(|from| sent_from == Some(from)) && date_sent.keeps(acceptance.at_ms)
        })
        .collect();
    matching.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.provider_id.cmp(&a.1.provider_id)));
    let more = matching.len() > (page + 1) * page_size;
    let messages = matching
        .iter()
        .skip(page * page_size)
        .take(page_size)
        .map(|(_, acceptance, to, body)| twilio_view(&truth, now_ms, &account.key, acceptance, to, body))
        .collect();
    let filters: Vec<(&str, &String)> = [("To", to.as_ref()), ("From", from.as_ref())]
        .into_iter()
        .chain(["DateSent", "DateSent<", "DateSent>"].map(|name| (name, query.get(name))))
        .filter_map(|(name, value)| value.map(|value| (name, value)))
        .collect();
    let filters = serde_urlencoded::to_string(filters).expect("query serialises");
    axum::Json(twilio::list_page(&account.key, messages, &filters, page, page_size, more)).into_response()
}

/// `GET …/Messages/{Sid}.json`: one message, or Twilio's 20404.
async fn twilio_fetch(
    State(Host { provider, .. }): State<Host>,
    Path((sid, file)): Path<(String, String)>,
    headers: http::HeaderMap,
) -> Response {
    let Some(account) = twilio_account(&provider, &sid, &headers) else { return twilio_unauthenticated() };
    let message_sid = file.strip_suffix(".json").unwrap_or(&file);
    let now_ms = provider.now_ms();
    let truth = provider.truth.lock().expect("provider poisoned");
    let found = truth.accepted.iter().find_map(|((to, body), acceptances)| {
        let acceptance =
            acceptances.iter().find(|a| *a.provider_id == *message_sid && *a.account == *account.engine_id)?;
        Some(twilio_view(&truth, now_ms, &account.key, acceptance, to, body))
    });
    match found {
        Some(resource) => axum::Json(resource).into_response(),
        None => {
            twilio_error(20404, &format!("The requested resource {message_sid} was not found"), StatusCode::NOT_FOUND)
        }
    }
}

/// Where a message's reports go.
#[derive(Clone)]
enum Channel {
    Mitto { account: AccountBinding, engine_url: Arc<str> },
    Twilio { account: AccountBinding, callback: String },
    Infobip { account: AccountBinding, notify_url: String, bulk_id: String },
}

impl Channel {
    /// The engine account the reports are for.
    fn account(&self) -> &AccountBinding {
        match self {
            Channel::Mitto { account, .. } | Channel::Twilio { account, .. } | Channel::Infobip { account, .. } => {
                account
            }
        }
    }

    /// The intermediate, delivered and undelivered status strings of its wire format.
    fn statuses(&self) -> (&'static str, &'static str, &'static str) {
        match self {
            Channel::Mitto { .. } => ("Sent", "Delivered", "Failure"),
            Channel::Twilio { .. } => ("sent", "delivered", "undelivered"),
            Channel::Infobip { .. } => ("PENDING_ENROUTE", "DELIVERED_TO_HANDSET", "UNDELIVERABLE_NOT_DELIVERED"),
        }
    }
}

/// A report to send.
struct Outgoing {
    delay_ms: u64,
    provider_id: String,
    /// The message's destination (Infobip's reports repeat it).
    destination: String,
    status: &'static str,
    is_final: bool,
    forged: bool,
    /// A report for an id nobody sent: it must not carry a real message's reference
    /// (Twilio's per-message callback URL names the message it was given for).
    stray: bool,
    /// The message's own final report, which may share a webhook with others' (Infobip).
    batchable: bool,
}

/// When a message's final report falls due.
#[derive(Clone, Copy)]
enum FinalDelay {
    /// Drawn from [`Behaviour::report_delay_ms`] for this message alone.
    Drawn,
    /// Drawn for this message, then moved to the end of its window of this many ms (not
    /// 0), so reports of one request due at the same end can travel in one webhook.
    Windowed(u64),
    /// Shared by every message of its request, so those reports travel in one webhook.
    Common(u64),
}

/// Plans one accepted message's reports.
fn plan_reports(
    provider: &Provider,
    channel: &Channel,
    provider_id: &str,
    destination: &str,
    behaviour: &Behaviour,
    final_delay: FinalDelay,
) -> Vec<Outgoing> {
    let (intermediate, delivered, undelivered) = channel.statuses();
    let mut final_status = if provider.chance(behaviour.delivery_rate) { delivered } else { undelivered };
    // Beside undelivered, a message the provider took may end expired (Infobip) or
    // rejected by the network (Infobip's group REJECTED, Twilio's `failed`).
    if final_status == undelivered {
        match channel {
            Channel::Infobip { .. } if provider.chance(0.3) => final_status = "EXPIRED_EXPIRED",
            Channel::Infobip { .. } if provider.chance(0.3) => final_status = "REJECTED_NETWORK",
            Channel::Twilio { .. } if provider.chance(0.3) => final_status = "failed",
            _ => {}
        }
    }
    let early = provider.chance(behaviour.faults.report_before_answer);
    let final_delay = match final_delay {
        _ if early => 0,
        FinalDelay::Common(delay_ms) => delay_ms,
        FinalDelay::Drawn => provider.between(behaviour.report_delay_ms),
        FinalDelay::Windowed(window_ms) => provider.between(behaviour.report_delay_ms).div_ceil(window_ms) * window_ms,
    };
    let report = |delay_ms: u64, provider_id: String, status: &'static str, is_final: bool| Outgoing {
        delay_ms,
        provider_id,
        destination: destination.to_owned(),
        status,
        is_final,
        forged: false,
        stray: false,
        batchable: false,
    };
    let mut outgoing = Vec::new();
    if behaviour.intermediate_reports && !early {
        outgoing.push(report(final_delay / 2, provider_id.to_owned(), intermediate, false));
    }
    outgoing.push(Outgoing { batchable: !early, ..report(final_delay, provider_id.to_owned(), final_status, true) });
    if early {
        provider.truth.lock().expect("provider poisoned").mark(Mark::ReportBeforeAnswerSent);
    }
    if provider.chance(behaviour.faults.duplicate_report) {
        provider.truth.lock().expect("provider poisoned").mark(Mark::DuplicateReportSent);
        outgoing.push(report(final_delay + 50, provider_id.to_owned(), final_status, true));
    }
    if provider.chance(behaviour.faults.intermediate_after_final) {
        provider.truth.lock().expect("provider poisoned").mark(Mark::IntermediateAfterFinalSent);
        outgoing.push(report(final_delay + 100, provider_id.to_owned(), intermediate, false));
    }
    if provider.chance(behaviour.faults.unknown_id_report) {
        provider.truth.lock().expect("provider poisoned").mark(Mark::UnknownIdReportSent);
        outgoing.push(Outgoing { stray: true, ..report(final_delay, format!("X{provider_id}"), delivered, true) });
    }
    if provider.chance(behaviour.faults.forged_report) {
        provider.truth.lock().expect("provider poisoned").mark(Mark::ForgedReportSent);
        outgoing.push(Outgoing { forged: true, ..report(final_delay / 3, provider_id.to_owned(), undelivered, true) });
    }
    outgoing
}

/// Plans one accepted message's reports and sends each in its own webhook.
fn schedule_reports(
    provider: Arc<Provider>,
    client: Arc<dyn HttpClient>,
    channel: Channel,
    provider_id: String,
    destination: &str,
    behaviour: &Behaviour,
) {
    for report in plan_reports(&provider, &channel, &provider_id, destination, behaviour, FinalDelay::Drawn) {
        spawn_webhook(provider.clone(), client.clone(), channel.clone(), vec![report]);
    }
}

fn spawn_webhook(provider: Arc<Provider>, client: Arc<dyn HttpClient>, channel: Channel, reports: Vec<Outgoing>) {
    let pending = PendingReports::new(&provider, reports.len());
    tokio::spawn(async move {
        send_webhook(provider, client, channel, reports).await;
        drop(pending);
    });
}

/// Reports counted in [`Truth::reports_pending`] for as long as this lives (also when
/// its task is dropped with a crashed or finished simulation).
struct PendingReports(Arc<Provider>, u64);

impl PendingReports {
    fn new(provider: &Arc<Provider>, count: usize) -> PendingReports {
        provider.truth.lock().expect("provider poisoned").reports_pending += count as u64;
        PendingReports(provider.clone(), count as u64)
    }
}

impl Drop for PendingReports {
    fn drop(&mut self) {
        if let Ok(mut truth) = self.0.truth.lock() {
            // A reset (`POST /_smsim/reset`) may have zeroed the count meanwhile.
            truth.reports_pending = truth.reports_pending.saturating_sub(self.1);
        }
    }
}

/// The webhook request carrying `reports` (one, except for an Infobip batch).
fn webhook_request(provider: &Provider, channel: &Channel, reports: &[Outgoing]) -> HttpRequest {
    let forged = reports.iter().any(|report| report.forged);
    let json = BTreeMap::from([("content-type".to_owned(), "application/json".to_owned())]);
    match channel {
        Channel::Mitto { account, engine_url } => {
            let token = if forged { "forged".to_owned() } else { account.secret.clone() };
            let wire = |report: &Outgoing| mitto::DeliveryReport {
                message_id: report.provider_id.clone(),
                delivery_status: report.status.into(),
                error_code: None,
            };
            let body = match reports {
                [report] => mitto::DeliveryReports::One(wire(report)),
                many => mitto::DeliveryReports::Many(many.iter().map(wire).collect()),
            };
            HttpRequest {
                method: http::Method::POST,
                url: format!("{engine_url}/v1/webhooks/mitto/{}?token={token}", account.engine_id),
                headers: json,
                body: Bytes::from(serde_json::to_vec(&body).expect("reports serialise")),
            }
        }
        Channel::Twilio { account, callback } => {
            let report = &reports[0];
            let callback =
                if report.stray { callback.split('?').next().unwrap_or(callback).to_owned() } else { callback.clone() };
            let sender = provider
                .truth
                .lock()
                .expect("provider poisoned")
                .twilio_senders
                .get(report.provider_id.as_str())
                .cloned();
            let params = twilio::callback_params(
                &account.key,
                &report.provider_id,
                report.status,
                sender.as_ref().map(|sender| &*sender.from),
                &report.destination,
                sender.as_ref().and_then(|sender| sender.messaging_service_sid.as_deref()),
            );
            let token = if forged { "forged" } else { account.secret.as_str() };
            let signature = twilio::signature(token, &callback, &params);
            HttpRequest {
                method: http::Method::POST,
                url: callback,
                headers: BTreeMap::from([
                    ("content-type".to_owned(), "application/x-www-form-urlencoded".to_owned()),
                    ("x-twilio-signature".to_owned(), signature),
                ]),
                body: Bytes::from(serde_urlencoded::to_string(&params).expect("forms serialise")),
            }
        }
        Channel::Infobip { notify_url, bulk_id, .. } => {
            let url = if forged {
                format!("{}?token=forged", notify_url.split('?').next().unwrap_or(notify_url))
            } else {
                notify_url.clone()
            };
            let now = provider.now_ms();
            let truth = provider.truth.lock().expect("provider poisoned");
            let results: Vec<serde_json::Value> = reports
                .iter()
                .map(|report| {
                    let fallback = infobip::Record::untracked(bulk_id.clone(), now);
                    let record = truth.infobip.get(report.provider_id.as_str()).unwrap_or(&fallback);
                    let done = infobip::is_final(report.status).then_some(now);
                    infobip::entry(record, &report.provider_id, &report.destination, report.status, done, 1)
                })
                .collect();
            drop(truth);
            HttpRequest {
                method: http::Method::POST,
                url,
                headers: json,
                body: Bytes::from(
                    serde_json::to_vec(&serde_json::json!({ "results": results })).expect("reports serialise"),
                ),
            }
        }
    }
}

/// Posts one webhook, retrying as the provider documents it (never a forged one). Twilio's
/// status callbacks follow its default connection overrides (`rc=1`, `rp=ct`): one more
/// attempt when no answer came, none after an HTTP error. Mitto and Infobip report again
/// after a non-2xx answer or none, up to five attempts with a doubling pause.
async fn send_webhook(provider: Arc<Provider>, client: Arc<dyn HttpClient>, channel: Channel, reports: Vec<Outgoing>) {
    let Some(first) = reports.first() else { return };
    tokio::time::sleep(Duration::from_millis(first.delay_ms)).await;
    // Simulations never hold reports, and must not reach an await point here (a wait,
    // even on an open gate, spends cooperative budget).
    if *provider.reports_held.borrow() {
        let _ = provider.reports_held.subscribe().wait_for(|held| !held).await;
    }
    let request = webhook_request(&provider, &channel, &reports);
    let forged = reports.iter().any(|report| report.forged);
    let at_ms = provider.now_ms();
    let indexes: Vec<usize> = {
        let mut truth = provider.truth.lock().expect("provider poisoned");
        if reports.len() > 1 {
            truth.mark(Mark::ReportsBatchedInOneWebhook);
        }
        reports
            .iter()
            .map(|report| {
                let account = truth.account(&channel.account().engine_id);
                truth.reports.push(SentReport {
                    at_ms,
                    account,
                    provider_id: report.provider_id.as_str().into(),
                    status: report.status,
                    is_final: report.is_final,
                    forged: report.forged,
                    answered: None,
                });
                truth.reports.len() - 1
            })
            .collect()
    };
    let twilio = matches!(channel, Channel::Twilio { .. });
    let attempts = match (forged, twilio) {
        (true, _) => 1,
        (false, true) => 2,
        (false, false) => 5,
    };
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
            for (report, &index) in reports.iter().zip(&indexes) {
                truth.reports[index].answered = answered;
                truth.feed.push((now, Seen::ReportAnswered { report: index, answered }));
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
        }
        let delivered = answered.is_some_and(|status| (200..300).contains(&status));
        // Twilio retries a connection that failed, not an answer it did not like.
        if delivered || forged || (twilio && answered.is_some()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1_000 << attempt)).await;
    }
}

/// An Infobip error answer.
fn infobip_refusal(status: StatusCode, code: &str, text: &str) -> Response {
    (status, axum::Json(infobip::refusal(code, text))).into_response()
}

/// The account whose `Authorization: App {api key}` a request carries.
fn infobip_account(provider: &Provider, headers: &HeaderMap) -> Option<AccountBinding> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let key = value.strip_prefix("App ")?;
    provider.account_by_key(key.trim())
}

/// What becomes of one message of an Infobip-style request.
enum Fate {
    /// Refused, with this status name, in the answer.
    Refused(&'static str),
    /// Accepted and listed in the answer.
    Accepted,
    /// Accepted, but left out of the answer (a partial answer): the adapter must call it
    /// ambiguous and a lookup must find it.
    Unlisted,
}

async fn infobip_send(
    State(Host { provider, webhooks, .. }): State<Host>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let behaviour = provider.behaviour();
    let Some(account) = infobip_account(&provider, &headers) else {
        return infobip_refusal(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "Invalid login details");
    };
    if let Some(fault) = provider.request_fault(&behaviour) {
        if let Ok((_, messages)) = infobip::parse_send(&body) {
            provider.refused_request(&account, messages.iter().map(|m| (m.to.as_str(), m.text.as_str())), fault);
        }
        return answer_after(&provider, &behaviour, Spoil::None, infobip_fault(fault)).await;
    }
    let (bulk_id, messages) = match infobip::parse_send(&body) {
        Ok(request) => request,
        Err(problem) => return infobip_refusal(StatusCode::BAD_REQUEST, "BAD_REQUEST", &problem),
    };
    let partial = provider.chance(behaviour.faults.partial_bulk_failure);
    if partial {
        provider.fault("partial_bulk_failure", Mark::PartialBulkFailure);
    }
    let spoiled = spoil(&provider, &behaviour);
    let bulk_id = bulk_id.unwrap_or_else(|| provider.new_id("IB"));
    let mut results = Vec::new();
    // (message id, destination, notify URL) of every accepted message.
    let mut accepted: Vec<(String, String, Option<String>)> = Vec::new();
    for message in &messages {
        provider.received(&account, &message.to, &message.text);
        let id = message.message_id.clone().unwrap_or_else(|| provider.new_id("IBM"));
        let fate = if !infobip::is_destination(&message.to) || provider.chance(behaviour.reject_rate) {
            Fate::Refused("REJECTED_DESTINATION")
        } else if partial && provider.chance(0.3) {
            if provider.chance(0.5) {
                Fate::Refused("REJECTED_NETWORK")
            } else {
                Fate::Unlisted
            }
        } else {
            Fate::Accepted
        };
        let answer =
            |status: &str| serde_json::json!({ "to": message.to, "messageId": id, "status": infobip::status(status) });
        match fate {
            Fate::Refused(name) => {
                provider
                    .refused
                    .lock()
                    .expect("provider poisoned")
                    .entry((account.engine_id.clone(), id.clone()))
                    .or_default()
                    .push((message.to.clone(), name));
                results.push(answer(name));
            }
            Fate::Accepted | Fate::Unlisted => {
                let id = provider.accept_as(&account, &message.to, &message.text, id.clone());
                if matches!(fate, Fate::Unlisted) {
                    provider.truth.lock().expect("provider poisoned").mark(Mark::AcceptedButLeftOutOfTheAnswer);
                } else {
                    results.push(answer("PENDING_ACCEPTED"));
                }
                // Without a notify URL the final report waits to be pulled: its fate is
                // drawn now (only then, so runs with notify URLs draw as they always did).
                let pull = message.notify_url.is_none().then(|| {
                    let status = if provider.chance(behaviour.delivery_rate) {
                        "DELIVERED_TO_HANDSET"
                    } else {
                        "UNDELIVERABLE_NOT_DELIVERED"
                    };
                    (provider.now_ms() + provider.between(behaviour.report_delay_ms), status)
                });
                let record = infobip::Record {
                    bulk_id: bulk_id.clone(),
                    from: message.from.clone(),
                    callback_data: message.callback_data.clone(),
                    sent_ms: provider.now_ms(),
                    pull,
                    pulled: false,
                };
                provider.truth.lock().expect("provider poisoned").infobip.insert(id.as_str().into(), record);
                accepted.push((id, message.to.clone(), message.notify_url.clone()));
            }
        }
    }
    // The answer's order is not guaranteed; a seeded shuffle makes sure it is not the
    // request's.
    if results.len() > 1 {
        results.shuffle(&mut *provider.rng.lock().expect("provider poisoned"));
        provider.truth.lock().expect("provider poisoned").mark(Mark::AnswerShuffled);
    }
    caller_crash(&provider, &behaviour, peer);
    if provider.after_accept.get().is_some() {
        provider.after_accept(accepted.len(), peer).await;
    }
    // Some requests' final reports share one webhook, as Infobip batches results.
    let batched = accepted.len() > 1 && provider.chance(0.5);
    let final_delay =
        if batched { FinalDelay::Common(provider.between(behaviour.report_delay_ms)) } else { FinalDelay::Drawn };
    let mut batches: BTreeMap<String, Vec<Outgoing>> = BTreeMap::new();
    for (id, destination, notify_url) in accepted {
        let Some(notify_url) = notify_url else { continue };
        let channel =
            Channel::Infobip { account: account.clone(), notify_url: notify_url.clone(), bulk_id: bulk_id.clone() };
        for report in plan_reports(&provider, &channel, &id, &destination, &behaviour, final_delay) {
            if batched && report.batchable {
                batches.entry(notify_url.clone()).or_default().push(report);
            } else {
                spawn_webhook(provider.clone(), webhooks.clone(), channel.clone(), vec![report]);
            }
        }
    }
    for (notify_url, reports) in batches {
        let channel = Channel::Infobip { account: account.clone(), notify_url, bulk_id: bulk_id.clone() };
        spawn_webhook(provider.clone(), webhooks.clone(), channel, reports);
    }
    let answer = serde_json::json!({ "bulkId": bulk_id, "messages": results });
    answer_after(&provider, &behaviour, spoiled, json_answer(&answer, spoiled)).await
}

/// A send answer as JSON, or its first half when the answer is to be malformed.
fn json_answer(answer: &impl Serialize, spoiled: Spoil) -> Response {
    let text = serde_json::to_string(answer).expect("answers serialise");
    let text = if spoiled == Spoil::Malformed { text[..text.len() / 2].to_owned() } else { text };
    ([("content-type", "application/json")], text).into_response()
}

/// Where an Infobip message stands now: its last genuine report's status and when it
/// came (a pulled-report message: its drawn fate once due), else pending.
fn infobip_now(truth: &Truth, id: &str, now_ms: u64) -> (&'static str, Option<u64>) {
    if let Some(report) = truth.reports.iter().rev().find(|r| !r.forged && *r.provider_id == *id) {
        return (report.status, infobip::is_final(report.status).then_some(report.at_ms));
    }
    match truth.infobip.get(id).and_then(|record| record.pull) {
        Some((due_ms, status)) if due_ms <= now_ms => (status, Some(due_ms)),
        _ => ("PENDING_ENROUTE", None),
    }
}

/// Matches Infobip's filters `bulkId`, `messageId` and `to`.
fn infobip_wanted(query: &BTreeMap<String, String>, record: Option<&infobip::Record>, id: &str, to: &str) -> bool {
    query.get("messageId").is_none_or(|wanted| wanted == id)
        && query.get("to").is_none_or(|wanted| wanted == to)
        && query.get("bulkId").is_none_or(|wanted| record.is_some_and(|record| record.bulk_id == *wanted))
}

/// At most `limit` (default 50, at most 1 000) results.
fn infobip_limit(query: &BTreeMap<String, String>) -> usize {
    query.get("limit").and_then(|limit| limit.parse().ok()).unwrap_or(50).clamp(1, 1_000)
}

/// The message log: the account's messages the filters ask for, accepted (with where
/// each stands now) or refused.
async fn infobip_logs(
    State(Host { provider, .. }): State<Host>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let behaviour = provider.behaviour();
    let Some(account) = infobip_account(&provider, &headers) else {
        return infobip_refusal(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "Invalid login details");
    };
    if let Some(fault) = provider.request_fault(&behaviour) {
        return answer_after(&provider, &behaviour, Spoil::None, infobip_fault(fault)).await;
    }
    let now = provider.now_ms();
    let mut results: Vec<serde_json::Value> = {
        let truth = provider.truth.lock().expect("provider poisoned");
        truth
            .accepted
            .iter()
            .flat_map(|((destination, body), acceptances)| acceptances.iter().map(move |a| (destination, body, a)))
            .filter(|(_, _, a)| *a.account == *account.engine_id)
            .filter_map(|(destination, body, a)| {
                let record = truth.infobip.get(&a.provider_id);
                if !infobip_wanted(&query, record, &a.provider_id, destination) {
                    return None;
                }
                let (status, done) = infobip_now(&truth, &a.provider_id, now);
                let fallback = infobip::Record::untracked(String::new(), a.at_ms);
                let mut entry = infobip::entry(
                    record.unwrap_or(&fallback),
                    &a.provider_id,
                    destination,
                    status,
                    done,
                    smsim_judge::segments::count(body),
                );
                entry["text"] = serde_json::Value::from(body.to_string());
                Some(entry)
            })
            .collect()
    };
    let refused = provider.refused.lock().expect("provider poisoned");
    for ((engine_id, id), refusals) in refused.iter() {
        if *engine_id == account.engine_id && query.get("messageId").is_none_or(|wanted| wanted == id) {
            for (to, status) in refusals {
                if query.get("to").is_none_or(|wanted| wanted == to) && !query.contains_key("bulkId") {
                    results.push(serde_json::json!({ "messageId": id, "to": to, "status": infobip::status(status) }));
                }
            }
        }
    }
    results.truncate(infobip_limit(&query));
    axum::Json(serde_json::json!({ "results": results })).into_response()
}

/// `GET /sms/1/reports`: final reports of messages sent without `notifyUrl`, each given
/// once, as Infobip documents pulled reports.
async fn infobip_reports(
    State(Host { provider, .. }): State<Host>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let Some(account) = infobip_account(&provider, &headers) else {
        return infobip_refusal(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "Invalid login details");
    };
    let now = provider.now_ms();
    let limit = infobip_limit(&query);
    let mut truth = provider.truth.lock().expect("provider poisoned");
    let due: Vec<(Box<str>, String, String)> = truth
        .accepted
        .iter()
        .flat_map(|((destination, body), acceptances)| acceptances.iter().map(move |a| (destination, body, a)))
        .filter(|(_, _, a)| *a.account == *account.engine_id)
        .filter(|(destination, _, a)| {
            let record = truth.infobip.get(&a.provider_id);
            let pullable = record.is_some_and(|r| !r.pulled && r.pull.is_some_and(|(due_ms, _)| due_ms <= now));
            pullable && infobip_wanted(&query, record, &a.provider_id, destination)
        })
        .map(|(destination, body, a)| (a.provider_id.clone(), destination.to_string(), body.to_string()))
        .take(limit)
        .collect();
    let mut results = Vec::new();
    for (id, to, body) in due {
        let record = truth.infobip.get_mut(&id).expect("filtered above");
        record.pulled = true;
        let (due_ms, status) = record.pull.expect("filtered above");
        results.push(infobip::entry(record, &id, &to, status, Some(due_ms), smsim_judge::segments::count(&body)));
    }
    drop(truth);
    axum::Json(serde_json::json!({ "results": results })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Before its first report a message moves along Twilio's progression — a messaging
    /// service's `accepted` (no sender yet), `queued`, `sending` — and then shows its last
    /// report's status.
    #[test]
    fn a_twilio_message_moves_along_twilios_progression_until_its_first_report() {
        let mut truth = Truth::default();
        let sid: Box<str> = "SM0001".into();
        let sender =
            TwilioSender { from: "+15005550006".into(), messaging_service_sid: Some("MG1".into()), at_ms: 1_000 };
        truth.twilio_senders.insert(sid.clone(), sender);
        let acceptance = Acceptance { at_ms: 1_000, provider_id: sid.clone(), account: "ta_1".into() };
        let shown = |truth: &Truth, now_ms| {
            let view = twilio_view(truth, now_ms, "AC1", &acceptance, "+306910000001", "hi");
            (view["status"].as_str().unwrap().to_owned(), view["from"].is_null())
        };
        assert_eq!(shown(&truth, 1_000), ("accepted".to_owned(), true));
        assert_eq!(shown(&truth, 1_150), ("queued".to_owned(), false));
        assert_eq!(shown(&truth, 1_350), ("sending".to_owned(), false));
        truth.reports.push(SentReport {
            at_ms: 1_400,
            account: "ta_1".into(),
            provider_id: sid,
            status: "sent",
            is_final: false,
            forged: false,
            answered: Some(200),
        });
        assert_eq!(shown(&truth, 1_500), ("sent".to_owned(), false));
    }
}
