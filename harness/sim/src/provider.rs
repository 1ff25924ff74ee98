//! The simulated provider: Mitto-style bulk, Twilio-style single and Infobip-style bulk on
//! one host, keeping the ground truth and misbehaving on command.
//!
//! This file holds what every wire format shares: the ground truth, the faults drawn per
//! request and per report, the report planner and sender, and the router, which serves
//! every [`ProviderKind`] through [`wire_format`]. Each format's requests, answers and
//! report webhooks are written in its own file ([`mitto`], [`twilio`], [`infobip`]), from
//! the provider's documentation and not from the engine's adapter, so a misreading in the
//! adapter meets a provider that does not share it. [`live`] serves the same router on a
//! real socket.
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
use crate::scenario::{PriceTable, Scenario};
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use smsim_core::adapter::http::HyperClient;
use smsim_core::adapter::{HttpClient, HttpRequest};
use smsim_core::domain::ProviderKind;
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
    /// What each provider says a message cost.
    pub prices: PriceTable,
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
            prices: provider.prices,
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
    /// The error code it carried, as its wire format writes it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<&'static str>,
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
    pub twilio_senders: BTreeMap<Box<str>, twilio::Sender>,
    /// Infobip-style: what each accepted message's reports and log entries repeat (bulk,
    /// sender, callback data), and for one sent without `notifyUrl`, its report to pull.
    pub infobip: BTreeMap<Box<str>, infobip::Record>,
}

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
    ProviderKind::ALL
        .into_iter()
        .fold(Router::new(), |router, kind| (wire_format(kind).routes)(router))
        .layer(axum::middleware::from_fn_with_state(provider.clone(), log_exchange))
        .with_state(Host { provider, webhooks, engine_url: engine_url.into() })
}

/// One wire format the simulated provider speaks, written in the format's own file: where
/// its requests go, and what its delivery reports say and how they are retried.
pub struct WireFormat {
    /// The kind of engine account that speaks it.
    pub kind: ProviderKind,
    /// The path its send requests go to (`{sid}`: the account's SID, where the path names it).
    pub send_path: &'static str,
    /// Adds its endpoints (send and lookups) to the provider's router.
    routes: fn(Router<Host>) -> Router<Host>,
    /// Its delivery reports.
    reports: ReportRules,
}

/// The simulated wire format of `kind`: a new [`ProviderKind`] does not build until it
/// has one, and then the provider serves it.
pub fn wire_format(kind: ProviderKind) -> &'static WireFormat {
    match kind {
        ProviderKind::Mitto => &mitto::WIRE_FORMAT,
        ProviderKind::Twilio => &twilio::WIRE_FORMAT,
        ProviderKind::Infobip => &infobip::WIRE_FORMAT,
    }
}

/// What a wire format's delivery reports say, and how its report sender retries them.
struct ReportRules {
    /// The status of a message on its way (an intermediate report).
    intermediate: &'static str,
    /// The final status of a delivered message.
    delivered: &'static str,
    /// The final status of a message that did not arrive.
    undelivered: &'static str,
    /// Other final statuses of a message the provider took that did not arrive, drawn in
    /// turn (each with probability 0.3) once undelivered is drawn: the first drawn replaces it.
    other_failures: &'static [&'static str],
    /// Attempts at a webhook answered with no 2xx (a forged one is sent once).
    attempts: u32,
    /// Whether an answer other than 2xx is tried again (else only a missing answer is).
    retries_error_answers: bool,
    /// The error code a report of a status carries, as the format writes it, if any: what
    /// its webhooks send and what the ground truth records (`attribution` holds the
    /// message's last error to it).
    error_code: fn(&str) -> Option<&'static str>,
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

/// Where one message's reports go: an engine account of one wire format, and how that
/// format writes the webhook carrying some of them.
#[derive(Clone)]
struct Channel {
    kind: ProviderKind,
    account: AccountBinding,
    webhook: Arc<WebhookWriter>,
}

/// Writes the webhook request carrying some reports (one, or a batch the format allows)
/// for an account.
type WebhookWriter = dyn Fn(&Provider, &AccountBinding, &[Outgoing]) -> HttpRequest + Send + Sync;

impl Channel {
    /// Reports for `account` of `kind`, each webhook written by `webhook`.
    fn new(
        kind: ProviderKind,
        account: AccountBinding,
        webhook: impl Fn(&Provider, &AccountBinding, &[Outgoing]) -> HttpRequest + Send + Sync + 'static,
    ) -> Channel {
        Channel { kind, account, webhook: Arc::new(webhook) }
    }

    /// What its wire format's reports say and how they are retried.
    fn rules(&self) -> &'static ReportRules {
        &wire_format(self.kind).reports
    }
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
    let ReportRules { intermediate, delivered, undelivered, other_failures, .. } = *channel.rules();
    let mut final_status = if provider.chance(behaviour.delivery_rate) { delivered } else { undelivered };
    // Beside undelivered, a message the provider took may end otherwise (expired, or
    // rejected by the network), as its format documents.
    if final_status == undelivered {
        if let Some(other) = other_failures.iter().find(|_| provider.chance(0.3)) {
            final_status = other;
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

/// Posts one webhook, retrying as its wire format documents it ([`ReportRules`]) with a
/// doubling pause, and never a forged one.
async fn send_webhook(provider: Arc<Provider>, client: Arc<dyn HttpClient>, channel: Channel, reports: Vec<Outgoing>) {
    let Some(first) = reports.first() else { return };
    tokio::time::sleep(Duration::from_millis(first.delay_ms)).await;
    // Simulations never hold reports, and must not reach an await point here (a wait,
    // even on an open gate, spends cooperative budget).
    if *provider.reports_held.borrow() {
        let _ = provider.reports_held.subscribe().wait_for(|held| !held).await;
    }
    let request = (channel.webhook)(&provider, &channel.account, &reports);
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
                let account = truth.account(&channel.account.engine_id);
                truth.reports.push(SentReport {
                    at_ms,
                    account,
                    provider_id: report.provider_id.as_str().into(),
                    status: report.status,
                    error_code: (channel.rules().error_code)(report.status),
                    is_final: report.is_final,
                    forged: report.forged,
                    answered: None,
                });
                truth.reports.len() - 1
            })
            .collect()
    };
    let rules = channel.rules();
    let attempts = if forged { 1 } else { rules.attempts };
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
        if delivered || forged || (!rules.retries_error_answers && answered.is_some()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1_000 << attempt)).await;
    }
}

/// A send answer as JSON, or its first half when the answer is to be malformed.
fn json_answer(answer: &impl Serialize, spoiled: Spoil) -> Response {
    let text = serde_json::to_string(answer).expect("answers serialise");
    let text = if spoiled == Spoil::Malformed { text[..text.len() / 2].to_owned() } else { text };
    ([("content-type", "application/json")], text).into_response()
}
