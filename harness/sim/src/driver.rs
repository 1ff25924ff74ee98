//! The scenario driver: a simulated client doing what users do, over simulated HTTP.
//!
//! It imports contacts, creates campaigns, clicks "send" (twice, if the scenario says
//! so), pauses, resumes, cancels, retries, tops up, probes another tenant's campaign and
//! polls progress — each at the time the plan says. What it did and what it was answered
//! goes to the [`DriverLog`], which the oracle reads.

use crate::clock::{SimClock, EPOCH};
use crate::coverage::Mark;
use crate::net::SimConnector;
use crate::scenario::{DoubleClick, OperatorVerb};
use serde::Serialize;
use serde_json::{json, Value};
use smsim_core::adapter::http::HyperClient;
use smsim_core::adapter::{HttpClient, HttpError, HttpRequest};
use smsim_core::store::rules::MAX_IMPORT_ROWS;
use smsim_core::{CampaignId, TenantId};
use smsim_judge as judge;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A tenant as the driver knows it.
#[derive(Clone, Debug)]
pub struct DriverTenant {
    /// Scenario name.
    pub name: String,
    /// Store id.
    pub id: TenantId,
    /// API key.
    pub api_key: String,
    /// Contact rows to import.
    pub contacts: Vec<ContactRow>,
}

/// One contact row to import, kept compact (a campaign may have a million of them) and
/// turned into JSON only when its chunk is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactRow {
    /// The phone number as imported (possibly invalid, on purpose).
    pub phone: String,
    /// The `first_name` attribute.
    pub first_name: &'static str,
    /// Opted out.
    pub opted_out: bool,
}

/// An import request's body, written straight from the rows, with no JSON tree in
/// between (an import of a million contacts is 200 of these). Keys go in sorted order,
/// as `serde_json`'s maps write them, so the body's bytes are those of the same request
/// built with `json!`.
#[derive(Serialize)]
struct ImportBody<'a> {
    contacts: Vec<ImportRow<'a>>,
}

#[derive(Serialize)]
struct ImportRow<'a> {
    attributes: Attributes<'a>,
    opted_out: bool,
    phone: &'a str,
}

#[derive(Serialize)]
struct Attributes<'a> {
    first_name: &'a str,
}

/// The body of one import request for `rows`.
fn import_body(rows: &[ContactRow]) -> bytes::Bytes {
    let contacts = rows
        .iter()
        .map(|row| ImportRow {
            attributes: Attributes { first_name: row.first_name },
            opted_out: row.opted_out,
            phone: &row.phone,
        })
        .collect();
    json_bytes(&ImportBody { contacts })
}

/// `body` as JSON bytes.
fn json_bytes(body: &impl Serialize) -> bytes::Bytes {
    serde_json::to_vec(body).expect("request bodies serialise").into()
}

/// A campaign the driver creates.
#[derive(Clone, Debug)]
pub struct DriverCampaign {
    /// Scenario name.
    pub name: String,
    /// Index into the tenants.
    pub tenant: usize,
    /// Engine account id (`ta_N`).
    pub account: String,
    /// Body template (already tagged with the campaign's name).
    pub template: String,
    /// When to enqueue (ms).
    pub enqueue_at_ms: u64,
    /// Absolute start time, for scheduled campaigns.
    pub schedule_at: Option<u64>,
    /// Whether its account is its tenant's own (private): no other tenant may use it.
    pub private_account: bool,
    /// How to click "send".
    pub double_click: DoubleClick,
}

/// An operator action with its time fixed.
#[derive(Clone, Debug)]
pub struct PlannedAction {
    /// When (ms).
    pub at_ms: u64,
    /// What.
    pub verb: OperatorVerb,
    /// The campaign's name, for campaign actions.
    pub campaign: Option<String>,
    /// The tenant index, for credit actions.
    pub tenant: Option<usize>,
    /// Credits, for credit actions.
    pub amount: Option<i64>,
}

/// The driver's whole plan.
#[derive(Clone, Debug)]
pub struct DriverPlan {
    /// Tenants with their keys and contact rows.
    pub tenants: Vec<DriverTenant>,
    /// Campaigns.
    pub campaigns: Vec<DriverCampaign>,
    /// Operator actions, by time.
    pub actions: Vec<PlannedAction>,
    /// The admin token.
    pub admin_token: String,
    /// When the driver stops (ms).
    pub end_ms: u64,
    /// Bad input to send, if the scenario asks for it.
    pub bad_input: Option<BadInputPlan>,
}

/// Bad input with its time fixed.
#[derive(Clone, Debug)]
pub struct BadInputPlan {
    /// When (ms).
    pub at_ms: u64,
    /// Index into the tenants.
    pub tenant: usize,
    /// A shared account (`ta_N`) its campaigns name.
    pub account: String,
    /// The tenant's opening credits (it has nothing reserved: no campaigns).
    pub credits: i64,
}

/// Credit changes of the bad input's tenant, opening with `credits`: a top-up of nothing,
/// an overdraft by one, a top-up of one that makes the same adjustment fit exactly, and a
/// top-up over the bound.
fn bad_credit_changes(credits: i64) -> [(OperatorVerb, i64); 5] {
    [
        (OperatorVerb::TopUp, 0),
        (OperatorVerb::Adjust, -(credits + 1)),
        (OperatorVerb::TopUp, 1),
        (OperatorVerb::Adjust, -(credits + 1)),
        (OperatorVerb::TopUp, smsim_core::Credits::MAX.0 + 1),
    ]
}

/// Templates at fault, one per rule of the documented syntax: an unclosed `{{`, an empty
/// name, a name with a space, a bad name after good ones (the byte offset adds up), a
/// name empty before its fallback, and a template whose own text is eleven segments.
fn bad_templates() -> Vec<String> {
    vec![
        "Hi {{first_name".into(),
        "Hi {{}} there".into(),
        "Hi {{first name}}".into(),
        "A {{a}} B {{b-c.d|x y}} C {{bad!}}".into(),
        "{{ | fallback}}".into(),
        "x".repeat(1531),
    ]
}

/// Two imports of rows at fault beside valid ones: refused numbers (no `+`, nothing after
/// it, too short for any plan), attribute names too long or of bad characters, a value one
/// byte too long, each bound met exactly, a number written with spaces, and rows that
/// repeat a number unchanged, changed, and in the next import. Then the bound on an
/// import's rows, from both sides: one row more than it, and exactly as many.
fn bad_imports() -> Vec<Vec<judge::ContactRow>> {
    let row = |phone: &str, attributes: &[(&str, &str)], opted_out| judge::ContactRow {
        phone: phone.into(),
        attributes: attributes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        opted_out,
    };
    let (name_64, name_65) = ("n".repeat(64), "n".repeat(65));
    let (value_1024, value_1025) = ("v".repeat(1024), "v".repeat(1025));
    vec![
        vec![
            row("+306912390001", &[("first_name", "Maria")], false),
            row("555-1234", &[], false),
            row("+30 691 239 0002", &[("first_name", "Nikos")], false),
            row("+306912390001", &[("first_name", "Maria")], false),
            row("+306912390001", &[("first_name", "Maria")], true),
            row("+306912390003", &[(&name_65, "x")], false),
            row("+306912390003", &[("a", "ok"), ("b!", "x")], false),
            row("+306912390004", &[("note", &value_1025)], false),
            row("+306912390005", &[("note", &value_1024), (&name_64, "x")], false),
            row("+", &[], false),
            row("+3069", &[], false),
        ],
        vec![
            row("+306912390002", &[("first_name", "Nikos")], false),
            row("+306912390003", &[("first_name", "Eleni")], false),
        ],
        // One row more than an import may carry, refused whole; then exactly as many, taken.
        (0..=MAX_IMPORT_ROWS).map(|n| row(&format!("+3069124{n:05}"), &[], false)).collect(),
        (0..MAX_IMPORT_ROWS).map(|n| row(&format!("+3069124{n:05}"), &[], false)).collect(),
    ]
}

/// Something the driver did, for the trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum DriverEvent {
    /// A request and its answer (status 0: no answer).
    Request {
        /// Method and path.
        call: String,
        /// HTTP status, 0 if none arrived.
        status: u16,
        /// The error code or a short answer.
        answer: String,
    },
}

/// What the driver observed, read by the oracle.
#[derive(Debug, Default)]
pub struct DriverLog {
    /// Events not yet drained into the trace.
    pub events: Vec<(u64, DriverEvent)>,
    /// Campaign ids by scenario name, once created.
    pub campaigns: BTreeMap<String, (TenantId, CampaignId)>,
    /// Times of operator actions that were answered (ms), per campaign.
    pub operator_actions: Vec<(u64, Option<CampaignId>)>,
    /// Operator actions sent and not yet answered (the store may already have applied them).
    pub actions_in_flight: u32,
    /// Named rare paths taken.
    pub marks: BTreeMap<&'static str, u64>,
    /// Campaigns of the scenario the API would not create or enqueue, and why: a run in
    /// which a campaign never started has tested nothing about it.
    pub not_started: Vec<String>,
    /// Every planned enqueue and operator action has been done (only polling is left).
    pub plan_done: bool,
    /// What the judge has not yet been told, in the order it happened.
    pub feed: Vec<(u64, Told)>,
    /// Actions sent so far (each action's id in the feed).
    pub actions_sent: u64,
}

/// What the driver tells the judge: what it asked and what the engine answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Told {
    /// A campaign was created, of a tenant on an account (`ta_N`).
    CampaignCreated {
        /// The engine's id.
        campaign: CampaignId,
        /// Its tenant.
        tenant: TenantId,
        /// Its account.
        account: String,
        /// The body template it was created with.
        template: String,
        /// When it is scheduled to start (ms on the run's clock).
        starts_at: Option<u64>,
    },
    /// An operator action or credit change went out.
    ActionSent {
        /// Its id in this run.
        id: u64,
        /// The campaign, for campaign actions.
        campaign: Option<CampaignId>,
        /// The tenant, for credit changes.
        tenant: Option<TenantId>,
        /// What.
        verb: OperatorVerb,
        /// Credits, for credit changes.
        amount: i64,
    },
    /// Bad input went out, and what the engine answered (its JSON, or null).
    InputSent {
        /// The tenant it went as.
        tenant: TenantId,
        /// What.
        input: SentInput,
        /// The HTTP status (0: none came).
        status: u16,
        /// The answer's body.
        body: Value,
    },
    /// The bad input's tenant was listed: its contacts and how many campaigns.
    InputTenantRead {
        /// The tenant.
        tenant: TenantId,
        /// Its contacts as listed.
        contacts: Vec<judge::ContactRow>,
        /// Its campaigns, counted.
        campaigns: u32,
    },
    /// Another tenant's key asked for a campaign, and what the engine answered.
    CrossTenantProbe {
        /// Method, path and whose key.
        request: String,
        /// The HTTP status (0: none came).
        status: u16,
    },
    /// Another tenant's key tried to create a campaign on a private account, and what the
    /// engine answered.
    ForeignAccountProbe {
        /// Method, path, account and whose key.
        request: String,
        /// The HTTP status (0: none came).
        status: u16,
    },
    /// Its answer (0: none came).
    ActionAnswered {
        /// The action.
        id: u64,
        /// The HTTP status.
        status: u16,
    },
}

/// Input the driver sent as bad input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SentInput {
    /// A campaign with this template.
    Campaign(String),
    /// A contact import of these rows.
    Import(Vec<judge::ContactRow>),
    /// A credit change: `top_up` or `adjust`, and the amount.
    Credits(&'static str, i64),
}

impl DriverLog {
    /// Notes an action sent at `at_ms`; returns its id.
    fn action_sent(
        &mut self,
        at_ms: u64,
        verb: OperatorVerb,
        campaign: Option<CampaignId>,
        tenant: Option<TenantId>,
        amount: i64,
    ) -> u64 {
        self.actions_sent += 1;
        let id = self.actions_sent;
        self.actions_in_flight += 1;
        self.feed.push((at_ms, Told::ActionSent { id, campaign, tenant, verb, amount }));
        id
    }

    /// Notes action `id`'s answer at `at_ms`.
    fn action_answered(&mut self, at_ms: u64, id: u64, status: u16) {
        self.actions_in_flight -= 1;
        self.feed.push((at_ms, Told::ActionAnswered { id, status }));
    }
}

struct Driver {
    client: HyperClient<SimConnector>,
    log: Arc<Mutex<DriverLog>>,
    clock: SimClock,
}

impl Driver {
    fn note(&self, call: String, status: u16, answer: String) {
        let at = self.clock.elapsed_ms();
        self.log.lock().expect("driver log poisoned").events.push((at, DriverEvent::Request { call, status, answer }));
    }

    fn mark(&self, mark: Mark) {
        *self.log.lock().expect("driver log poisoned").marks.entry(mark.name()).or_default() += 1;
    }

    /// One request, sent again (up to ten times, a second apart) while it gets no answer
    /// or a 5xx, as a client script would. Each attempt sends the same `body`.
    async fn call_retrying(&self, method: http::Method, path: &str, key: &str, body: bytes::Bytes) -> (u16, Value) {
        let mut answer = self.call(method.clone(), path, key, Some(body.clone()), &[]).await;
        for _ in 0..10 {
            if answer.0 != 0 && answer.0 < 500 {
                break;
            }
            self.mark(Mark::RequestRetried);
            tokio::time::sleep(Duration::from_secs(1)).await;
            answer = self.call(method.clone(), path, key, Some(body.clone()), &[]).await;
        }
        answer
    }

    /// One request with a JSON `body`; connection failures (the request never left) are
    /// retried a few times.
    async fn call(
        &self,
        method: http::Method,
        path: &str,
        key: &str,
        body: Option<bytes::Bytes>,
        headers: &[(&str, String)],
    ) -> (u16, Value) {
        let mut request_headers = BTreeMap::from([("authorization".to_owned(), format!("Bearer {key}"))]);
        if body.is_some() {
            request_headers.insert("content-type".into(), "application/json".into());
        }
        for (name, value) in headers {
            request_headers.insert((*name).to_owned(), value.clone());
        }
        let request = HttpRequest {
            method: method.clone(),
            url: format!("http://api{path}"),
            headers: request_headers,
            body: body.unwrap_or_default(),
        };
        for attempt in 0..5 {
            match self.client.send(request.clone()).await {
                Ok(response) => {
                    let value: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
                    let answer = value["error"]["code"].as_str().map(str::to_owned).unwrap_or_else(|| "ok".into());
                    self.note(format!("{method} {path}"), response.status, answer);
                    return (response.status, value);
                }
                Err(HttpError::Connect(_)) if attempt < 4 => tokio::time::sleep(Duration::from_millis(1_000)).await,
                Err(error) => {
                    self.note(format!("{method} {path}"), 0, error.to_string());
                    return (0, Value::Null);
                }
            }
        }
        (0, Value::Null)
    }

    async fn sleep_until(&self, at_ms: u64) {
        let now = self.clock.elapsed_ms();
        if at_ms > now {
            tokio::time::sleep(Duration::from_millis(at_ms - now)).await;
        }
    }
}

/// Runs the driver's plan.
pub async fn run(plan: DriverPlan, log: Arc<Mutex<DriverLog>>) -> Result<(), Box<dyn std::error::Error>> {
    let driver =
        Driver { client: HyperClient::new(SimConnector, Duration::from_secs(5)), log: log.clone(), clock: SimClock };
    use http::Method;
    for tenant in &plan.tenants {
        for chunk in tenant.contacts.chunks(5_000) {
            driver.call_retrying(Method::POST, "/v1/contacts", &tenant.api_key, import_body(chunk)).await;
        }
    }
    for campaign in &plan.campaigns {
        let tenant = &plan.tenants[campaign.tenant];
        let body = json!({
            "name": campaign.name,
            "body_template": campaign.template,
            "traffic_account": campaign.account,
            "schedule_at": campaign.schedule_at,
        });
        // A lost answer may leave an extra draft behind, which sends nothing.
        let (status, created) =
            driver.call_retrying(Method::POST, "/v1/campaigns", &tenant.api_key, json_bytes(&body)).await;
        let mut log = log.lock().expect("driver log poisoned");
        if status == 201 {
            let id: CampaignId =
                created["id"].as_str().and_then(|id| id.parse().ok()).expect("a created campaign has an id");
            log.campaigns.insert(campaign.name.clone(), (tenant.id, id));
            let at = driver.clock.elapsed_ms();
            log.feed.push((
                at,
                Told::CampaignCreated {
                    campaign: id,
                    tenant: tenant.id,
                    account: campaign.account.clone(),
                    template: campaign.template.clone(),
                    starts_at: campaign.schedule_at.map(|at| at.saturating_sub(EPOCH.0)),
                },
            ));
        } else {
            log.not_started.push(format!("creating campaign `{}` was answered {status}: {created}", campaign.name));
        }
    }
    enum Step<'a> {
        Enqueue(&'a DriverCampaign),
        Action(&'a PlannedAction),
        BadInput(&'a BadInputPlan),
    }
    let mut steps: Vec<(u64, usize, Step)> =
        plan.campaigns.iter().enumerate().map(|(n, c)| (c.enqueue_at_ms, n, Step::Enqueue(c))).collect();
    steps.extend(plan.actions.iter().enumerate().map(|(n, a)| (a.at_ms, plan.campaigns.len() + n, Step::Action(a))));
    let last = plan.campaigns.len() + plan.actions.len();
    steps.extend(plan.bad_input.iter().map(|bad| (bad.at_ms, last, Step::BadInput(bad))));
    steps.sort_by_key(|(at, order, _)| (*at, *order));
    for (at_ms, _, step) in steps {
        driver.sleep_until(at_ms).await;
        match step {
            Step::Enqueue(campaign) => enqueue(&driver, &plan, campaign).await,
            Step::Action(action) => act(&driver, &plan, action).await,
            Step::BadInput(bad) => bad_input(&driver, &plan, bad).await,
        }
    }
    log.lock().expect("driver log poisoned").plan_done = true;
    // Poll progress like a dashboard would, until the end.
    while driver.clock.elapsed_ms() + 5_000 < plan.end_ms {
        tokio::time::sleep(Duration::from_millis(5_000)).await;
        for campaign in &plan.campaigns {
            let known = log.lock().expect("driver log poisoned").campaigns.get(&campaign.name).copied();
            if let Some((_, id)) = known {
                driver
                    .call(
                        Method::GET,
                        &format!("/v1/campaigns/{id}"),
                        &plan.tenants[campaign.tenant].api_key,
                        None,
                        &[],
                    )
                    .await;
            }
        }
    }
    driver.sleep_until(plan.end_ms).await;
    Ok(())
}

async fn enqueue(driver: &Driver, plan: &DriverPlan, campaign: &DriverCampaign) {
    let Some((_, id)) = driver.log.lock().expect("driver log poisoned").campaigns.get(&campaign.name).copied() else {
        return;
    };
    let key = &plan.tenants[campaign.tenant].api_key;
    let path = format!("/v1/campaigns/{id}/enqueue");
    let click = |idempotency: Option<String>| {
        let headers: Vec<(&str, String)> = idempotency.into_iter().map(|key| ("idempotency-key", key)).collect();
        let path = path.clone();
        async move { driver.call(http::Method::POST, &path, key, None, &headers).await }
    };
    let answers = match campaign.double_click {
        DoubleClick::None => {
            // A client that got no answer, or a 5xx, clicks again with the same key: the
            // key makes that safe, and the replay is what the idempotency path is for.
            let mut answer = click(Some(format!("send-{}", campaign.name))).await;
            for _ in 0..10 {
                if answer.0 != 0 && answer.0 < 500 {
                    break;
                }
                driver.mark(Mark::EnqueueRetried);
                tokio::time::sleep(Duration::from_secs(2)).await;
                answer = click(Some(format!("send-{}", campaign.name))).await;
            }
            vec![answer]
        }
        DoubleClick::SameKey => {
            driver.mark(Mark::DoubleClickSameKey);
            let (a, b) = futures::join!(
                click(Some(format!("send-{}", campaign.name))),
                click(Some(format!("send-{}", campaign.name)))
            );
            vec![a, b]
        }
        DoubleClick::DifferentKeys => {
            driver.mark(Mark::DoubleClickDifferentKeys);
            let (a, b) = futures::join!(
                click(Some(format!("send-{}-a", campaign.name))),
                click(Some(format!("send-{}-b", campaign.name)))
            );
            vec![a, b]
        }
        DoubleClick::NoKey => {
            driver.mark(Mark::DoubleClickNoKey);
            let (a, b) = futures::join!(click(None), click(None));
            vec![a, b]
        }
    };
    {
        let mut log = driver.log.lock().expect("driver log poisoned");
        // A refusal the engine owes the tenant — 402 (not enough credits), or 409 when an
        // operator cancel of the campaign went out first — is the behaviour under test;
        // anything else but a 2xx (no answer, a 5xx, a 409 with no cancel before it, a 4xx
        // about the request) leaves it untested.
        let cancelled_first = plan.actions.iter().any(|action| {
            action.verb == OperatorVerb::Cancel
                && action.campaign.as_ref() == Some(&campaign.name)
                && action.at_ms <= campaign.enqueue_at_ms
        });
        let owed = |status: u16| status == 402 || (status == 409 && cancelled_first);
        if !answers.iter().any(|&(status, _)| (200..300).contains(&status) || owed(status)) {
            let (status, body) = &answers[0];
            log.not_started.push(format!("enqueueing campaign `{}` was answered {status}: {body}", campaign.name));
        }
        for (_, body) in answers {
            if body["replayed"].as_bool().unwrap_or(false) {
                *log.marks.entry(Mark::EnqueueReplayed.name()).or_default() += 1;
            }
        }
    }
    // An isolation probe: another tenant tries to read and cancel this campaign.
    if plan.tenants.len() > 1 {
        let intruder = if campaign.tenant == 0 { 1 } else { 0 };
        let intruder_key = &plan.tenants[intruder].api_key;
        for (method, suffix) in [(http::Method::GET, ""), (http::Method::POST, "/cancel")] {
            let (status, _) =
                driver.call(method.clone(), &format!("/v1/campaigns/{id}{suffix}"), intruder_key, None, &[]).await;
            // The judge decides whether the answer is a breach.
            let at = driver.clock.elapsed_ms();
            let request = format!("{method} {id}{suffix} by {}", plan.tenants[intruder].name);
            driver.log.lock().expect("driver log poisoned").feed.push((at, Told::CrossTenantProbe { request, status }));
        }
        if campaign.private_account {
            let body = json!({ "name": "probe", "body_template": "hi", "traffic_account": campaign.account });
            let (status, _) =
                driver.call(http::Method::POST, "/v1/campaigns", intruder_key, Some(json_bytes(&body)), &[]).await;
            let at = driver.clock.elapsed_ms();
            let request = format!("POST /v1/campaigns on {} by {}", campaign.account, plan.tenants[intruder].name);
            driver
                .log
                .lock()
                .expect("driver log poisoned")
                .feed
                .push((at, Told::ForeignAccountProbe { request, status }));
        }
        driver.mark(Mark::IsolationProbe);
    }
}

/// Sends the bad input as its tenant, then lists the tenant's contacts and campaigns.
async fn bad_input(driver: &Driver, plan: &DriverPlan, bad: &BadInputPlan) {
    use http::Method;
    let tenant = &plan.tenants[bad.tenant];
    let sent = |input: SentInput, (status, body): (u16, Value)| {
        let at = driver.clock.elapsed_ms();
        let told = Told::InputSent { tenant: tenant.id, input, status, body };
        driver.log.lock().expect("driver log poisoned").feed.push((at, told));
    };
    for template in bad_templates() {
        let body = json!({ "name": "bad input", "body_template": template, "traffic_account": bad.account });
        let answer = driver.call(Method::POST, "/v1/campaigns", &tenant.api_key, Some(json_bytes(&body)), &[]).await;
        sent(SentInput::Campaign(template), answer);
    }
    for rows in bad_imports() {
        let contacts: Vec<Value> = rows
            .iter()
            .map(|row| json!({ "phone": row.phone, "attributes": row.attributes, "opted_out": row.opted_out }))
            .collect();
        let body = json_bytes(&json!({ "contacts": contacts }));
        let answer = driver.call(Method::POST, "/v1/contacts", &tenant.api_key, Some(body), &[]).await;
        sent(SentInput::Import(rows), answer);
    }
    // Sent as the operator's credit actions are, so the money model hears of them too.
    let path = format!("/v1/admin/tenants/{}/credits", tenant.id);
    for (verb, amount) in bad_credit_changes(bad.credits) {
        let field = if verb == OperatorVerb::TopUp { "top_up" } else { "adjust" };
        let at = driver.clock.elapsed_ms();
        let id = driver.log.lock().expect("driver log poisoned").action_sent(at, verb, None, Some(tenant.id), amount);
        let body = json_bytes(&json!({ field: amount }));
        let (status, answer) = driver.call(Method::POST, &path, &plan.admin_token, Some(body), &[]).await;
        driver.log.lock().expect("driver log poisoned").action_answered(driver.clock.elapsed_ms(), id, status);
        sent(SentInput::Credits(field, amount), (status, answer));
    }
    // A campaign whose audience is another tenant's contact: not found, as any of its
    // objects is (`isolation`).
    if let Some(other) = plan.tenants.iter().find(|other| other.id != tenant.id && !other.contacts.is_empty()) {
        let (_, listed) = driver.call(Method::GET, "/v1/contacts", &other.api_key, None, &[]).await;
        if let Some(contact) = listed.as_array().and_then(|list| list.first()).and_then(|c| c["id"].as_str()) {
            let body = json!({
                "name": "bad input",
                "body_template": "hi",
                "traffic_account": bad.account,
                "audience": { "kind": "contacts", "ids": [contact] },
            });
            let (status, _) =
                driver.call(Method::POST, "/v1/campaigns", &tenant.api_key, Some(json_bytes(&body)), &[]).await;
            let request = format!("POST /v1/campaigns to {}'s contact {contact} by {}", other.name, tenant.name);
            let at = driver.clock.elapsed_ms();
            driver.log.lock().expect("driver log poisoned").feed.push((at, Told::CrossTenantProbe { request, status }));
        }
    }
    let (contacts_status, listed) = driver.call(Method::GET, "/v1/contacts", &tenant.api_key, None, &[]).await;
    let (campaigns_status, campaigns) = driver.call(Method::GET, "/v1/campaigns", &tenant.api_key, None, &[]).await;
    let (Some(listed), Some(campaigns)) = (listed.as_array(), campaigns.as_array()) else {
        let mut log = driver.log.lock().expect("driver log poisoned");
        log.not_started
            .push(format!("listing the bad input's tenant was answered {contacts_status} and {campaigns_status}"));
        return;
    };
    let contacts = listed
        .iter()
        .map(|contact| judge::ContactRow {
            phone: contact["phone"].as_str().unwrap_or_default().to_owned(),
            attributes: contact["attributes"]
                .as_object()
                .map(|map| map.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
                .unwrap_or_default(),
            opted_out: contact["opted_out"].as_bool().unwrap_or_default(),
        })
        .collect();
    let at = driver.clock.elapsed_ms();
    let told = Told::InputTenantRead { tenant: tenant.id, contacts, campaigns: campaigns.len() as u32 };
    driver.log.lock().expect("driver log poisoned").feed.push((at, told));
}

async fn act(driver: &Driver, plan: &DriverPlan, action: &PlannedAction) {
    use http::Method;
    let at = driver.clock.elapsed_ms();
    match action.verb {
        OperatorVerb::Pause | OperatorVerb::Resume | OperatorVerb::Cancel | OperatorVerb::RetryFailed => {
            let Some(name) = &action.campaign else { return };
            let Some((_, id)) = driver.log.lock().expect("driver log poisoned").campaigns.get(name).copied() else {
                return;
            };
            let tenant = plan.campaigns.iter().find(|c| &c.name == name).map_or(0, |c| c.tenant);
            let verb = match action.verb {
                OperatorVerb::Pause => "pause",
                OperatorVerb::Resume => "resume",
                OperatorVerb::Cancel => "cancel",
                _ => "retry-failed",
            };
            // The store applies an action before its answer travels back: the judge hears
            // of it when it is sent, and of its acknowledgement when that comes.
            let tenant_id = plan.tenants[tenant].id;
            let sent = driver.log.lock().expect("driver log poisoned").action_sent(
                at,
                action.verb,
                Some(id),
                Some(tenant_id),
                0,
            );
            let (status, _) = driver
                .call(Method::POST, &format!("/v1/campaigns/{id}/{verb}"), &plan.tenants[tenant].api_key, None, &[])
                .await;
            {
                let mut log = driver.log.lock().expect("driver log poisoned");
                log.action_answered(driver.clock.elapsed_ms(), sent, status);
                log.operator_actions.push((at, Some(id)));
            }
            if status == 200 {
                driver.mark(match action.verb {
                    OperatorVerb::Pause => Mark::OperatorPause,
                    OperatorVerb::Resume => Mark::OperatorResume,
                    OperatorVerb::Cancel => Mark::OperatorCancel,
                    _ => Mark::OperatorRetryFailed,
                });
            }
        }
        OperatorVerb::TopUp | OperatorVerb::Adjust => {
            let (Some(tenant), Some(amount)) = (action.tenant, action.amount) else { return };
            let field = if action.verb == OperatorVerb::TopUp { "top_up" } else { "adjust" };
            let tenant_id = plan.tenants[tenant].id;
            let path = format!("/v1/admin/tenants/{tenant_id}/credits");
            let id = driver.log.lock().expect("driver log poisoned").action_sent(
                at,
                action.verb,
                None,
                Some(tenant_id),
                amount,
            );
            let (status, _) = driver
                .call(Method::POST, &path, &plan.admin_token, Some(json_bytes(&json!({ field: amount }))), &[])
                .await;
            let mut log = driver.log.lock().expect("driver log poisoned");
            log.action_answered(driver.clock.elapsed_ms(), id, status);
            log.operator_actions.push((at, None));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded traces hash the requests' bytes; the import body must stay the one the
    /// driver sent when it built the same rows with `json!`.
    #[test]
    fn an_import_body_is_the_json_of_its_rows() {
        let rows = [
            ContactRow { phone: "+306912345678".into(), first_name: "Maria", opted_out: false },
            ContactRow { phone: "not a \"number\"".into(), first_name: "Νίκος", opted_out: true },
        ];
        let built: Vec<Value> = rows
            .iter()
            .map(|row| {
                json!({"phone": row.phone, "attributes": {"first_name": row.first_name}, "opted_out": row.opted_out})
            })
            .collect();
        let expected = json!({ "contacts": built }).to_string();
        assert_eq!(String::from_utf8(import_body(&rows).to_vec()).unwrap(), expected);
    }
}
