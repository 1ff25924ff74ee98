//! Infobip's SMS API as Infobip documents it — the send request and answer, message logs,
//! delivery reports pushed to `notifyUrl` and pulled from `GET /sms/1/reports`, statuses
//! and errors — read and written by the simulated provider with code of its own, not with
//! the engine's adapter's types, so a misreading in one is not repeated in the other.
//!
//! Below the documented shapes, the simulated provider's handling of them: the send
//! endpoint, the message log, pulled reports and the reports pushed to `notifyUrl`.

use super::{
    answer_after, caller_crash, json_answer, outage_answer, plan_reports, spawn_webhook, spoil, AccountBinding,
    Channel, FinalDelay, Host, Outgoing, Peer, Provider, ReportRules, Spoil, Truth, WireFormat,
};
use crate::coverage::Mark;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use rand::seq::SliceRandom;
use serde_json::{json, Value};
use smsim_core::adapter::HttpRequest;
use smsim_core::domain::ProviderKind;
use std::collections::BTreeMap;

/// The send endpoint (one or many messages, each to one or many destinations).
pub const SEND_PATH: &str = "/sms/2/text/advanced";

/// The message log.
pub const LOGS_PATH: &str = "/sms/1/logs";

/// Delivery reports to pull, of messages sent without `notifyUrl`.
pub const REPORTS_PATH: &str = "/sms/1/reports";

/// The scheme of the `Authorization` header that carries the API key.
pub const AUTHORIZATION_SCHEME: &str = "App";

/// Infobip's status table as the simulated provider uses it: name, group id, group name,
/// status id, description (Infobip's "Response status and error codes").
pub const STATUSES: [(&str, u32, &str, u32, &str); 7] = [
    ("PENDING_ACCEPTED", 1, "PENDING", 26, "Message sent to next instance"),
    ("PENDING_ENROUTE", 1, "PENDING", 7, "Message sent to next instance"),
    ("DELIVERED_TO_HANDSET", 3, "DELIVERED", 5, "Message delivered to handset"),
    ("UNDELIVERABLE_NOT_DELIVERED", 2, "UNDELIVERABLE", 9, "Message sent not delivered"),
    ("EXPIRED_EXPIRED", 4, "EXPIRED", 15, "Message expired"),
    ("REJECTED_DESTINATION", 5, "REJECTED", 14, "Invalid destination address"),
    ("REJECTED_NETWORK", 5, "REJECTED", 6, "Network is forbidden"),
];

/// Whether status `name` is final.
pub fn is_final(name: &str) -> bool {
    !name.starts_with("PENDING")
}

/// The status object of status `name` (one of [`STATUSES`]).
pub fn status(name: &str) -> Value {
    let (name, group_id, group_name, id, description) = STATUSES
        .iter()
        .copied()
        .find(|(known, ..)| *known == name)
        .expect("the simulated provider only uses statuses from its table");
    json!({ "groupId": group_id, "groupName": group_name, "id": id, "name": name, "description": description })
}

/// The error that goes with status `name`: group id, group name, id, name, description,
/// permanent.
fn error_of(name: &str) -> (u32, &'static str, u32, &'static str, &'static str, bool) {
    match name {
        "UNDELIVERABLE_NOT_DELIVERED" => (1, "HANDSET_ERRORS", 27, "EC_ABSENT_SUBSCRIBER", "Absent subscriber", false),
        "EXPIRED_EXPIRED" => (1, "HANDSET_ERRORS", 1, "EC_UNKNOWN_SUBSCRIBER", "Unknown subscriber", true),
        _ => (0, "OK", 0, "NO_ERROR", "No Error", false),
    }
}

/// The error code a report with status `name` carries: its error's name, unless that is
/// `NO_ERROR`.
pub fn report_error_code(name: &str) -> Option<&'static str> {
    let (.., error, _, _) = error_of(name);
    (error != "NO_ERROR").then_some(error)
}

/// The error object that goes with status `name`.
pub fn error(name: &str) -> Value {
    let (group_id, group_name, id, error, description, permanent) = error_of(name);
    json!({
        "groupId": group_id, "groupName": group_name, "id": id, "name": error,
        "description": description, "permanent": permanent,
    })
}

/// A time as Infobip writes it: `2023-11-14T22:13:20.000+0000`.
pub fn time(at_ms: u64) -> String {
    let millis = i64::try_from(crate::clock::EPOCH.plus_ms(at_ms).0).expect("simulated time fits");
    let time = chrono::DateTime::from_timestamp_millis(millis).expect("simulated time is a date");
    time.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// Infobip's error answer.
pub fn refusal(code: &str, text: &str) -> Value {
    json!({ "requestError": { "serviceException": { "messageId": code, "text": text } } })
}

/// The mobile network every simulated destination is on (Greece, Cosmote).
pub const MCC_MNC: &str = "20201";

/// One destination of a send request, with its message's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outbound {
    /// The destination.
    pub to: String,
    /// The client's id for it, if it gave one.
    pub message_id: Option<String>,
    /// The sender (optional at Infobip: the account's default is used).
    pub from: Option<String>,
    /// The text.
    pub text: String,
    /// Where its reports go (none: they wait at `GET /sms/1/reports`).
    pub notify_url: Option<String>,
    /// Echoed in its reports.
    pub callback_data: Option<String>,
}

/// A send request, read: its bulk id and every destination, or what is wrong with it.
pub fn parse_send(body: &[u8]) -> Result<(Option<String>, Vec<Outbound>), String> {
    let request: Value = serde_json::from_slice(body).map_err(|error| format!("not JSON: {error}"))?;
    let text_of = |value: &Value, field: &str| value.get(field).and_then(Value::as_str).map(str::to_owned);
    let messages = request.get("messages").and_then(Value::as_array).ok_or("`messages` is missing")?;
    let mut out = Vec::new();
    for (index, message) in messages.iter().enumerate() {
        let text = text_of(message, "text").ok_or(format!("messages[{index}].text is missing"))?;
        let destinations = message
            .get("destinations")
            .and_then(Value::as_array)
            .ok_or(format!("messages[{index}].destinations is missing"))?;
        for (number, destination) in destinations.iter().enumerate() {
            let to =
                text_of(destination, "to").ok_or(format!("messages[{index}].destinations[{number}].to is missing"))?;
            out.push(Outbound {
                to,
                message_id: text_of(destination, "messageId"),
                from: text_of(message, "from"),
                text: text.clone(),
                notify_url: text_of(message, "notifyUrl"),
                callback_data: text_of(message, "callbackData"),
            });
        }
    }
    if out.is_empty() {
        return Err("no destinations".into());
    }
    Ok((text_of(&request, "bulkId"), out))
}

/// Whether Infobip would take `to` as a destination: an international number, with or
/// without `+`, 8 to 15 digits.
pub fn is_destination(to: &str) -> bool {
    let digits = to.strip_prefix('+').unwrap_or(to);
    (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
}

/// What the simulated provider keeps of each Infobip message beyond its acceptance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Its bulk.
    pub bulk_id: String,
    /// Its sender, as given.
    pub from: Option<String>,
    /// Echoed in its reports.
    pub callback_data: Option<String>,
    /// When it was accepted.
    pub sent_ms: u64,
    /// No `notifyUrl`: its final report waits to be pulled, due then, with this status.
    pub pull: Option<(u64, &'static str)>,
    /// Pulled already (a report is pulled once).
    pub pulled: bool,
    /// Its parts, as its reports count them (`smsCount`).
    pub sms_count: u32,
}

impl Record {
    /// A message the provider kept nothing extra of (a stray report's id, or an acceptance
    /// recorded before this record existed): its bulk and when it was sent.
    pub fn untracked(bulk_id: String, sent_ms: u64) -> Record {
        Record { bulk_id, from: None, callback_data: None, sent_ms, pull: None, pulled: false, sms_count: 1 }
    }
}

/// A message's report or log entry: everything Infobip documents for it. `done_ms` is
/// when its status became final, if it has; `price_eur` what one message costs (the
/// scenario's price table).
pub fn entry(
    record: &Record,
    message_id: &str,
    to: &str,
    (status_name, done_ms): (&str, Option<u64>),
    sms_count: u32,
    price_eur: f64,
) -> Value {
    json!({
        "bulkId": record.bulk_id,
        "messageId": message_id,
        "to": to,
        "from": record.from,
        "sentAt": time(record.sent_ms),
        "doneAt": done_ms.map(time),
        "smsCount": sms_count,
        "mccMnc": MCC_MNC,
        "callbackData": record.callback_data,
        "price": { "pricePerMessage": price_eur, "currency": "EUR" },
        "status": status(status_name),
        "error": error(status_name),
    })
}

// The simulated provider's side: the send, log and report endpoints and the pushed reports.

/// The Infobip-style wire as the simulated provider serves it: reports are retried up to
/// five times after a non-2xx answer or none.
pub(super) static WIRE_FORMAT: WireFormat = WireFormat {
    kind: ProviderKind::Infobip,
    send_path: SEND_PATH,
    routes: |router| {
        router.route(SEND_PATH, post(send)).route(LOGS_PATH, get(logs)).route(REPORTS_PATH, get(pull_reports))
    },
    reports: ReportRules {
        intermediate: "PENDING_ENROUTE",
        delivered: "DELIVERED_TO_HANDSET",
        undelivered: "UNDELIVERABLE_NOT_DELIVERED",
        // Expired, or rejected by the network (the group REJECTED).
        other_failures: &["EXPIRED_EXPIRED", "REJECTED_NETWORK"],
        attempts: 5,
        retries_error_answers: true,
        error_code: report_error_code,
    },
};

/// A refusal of a whole request (outage, drawn fault): Infobip's service exception.
fn fault_answer(status: StatusCode) -> Response {
    let (code, text) = if status == StatusCode::TOO_MANY_REQUESTS {
        ("TOO_MANY_REQUESTS", "Too many requests")
    } else {
        ("GENERAL_ERROR", "Something went wrong. Please contact support.")
    };
    outage_answer(status, axum::Json(refusal(code, text)).into_response())
}

/// An Infobip error answer.
fn refusal_answer(status: StatusCode, code: &str, text: &str) -> Response {
    (status, axum::Json(refusal(code, text))).into_response()
}

/// The account whose `Authorization: App {api key}` a request carries.
fn account_of(provider: &Provider, headers: &HeaderMap) -> Option<AccountBinding> {
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

/// `POST` [`SEND_PATH`]: each destination accepted under the client's message id (or one of
/// its own) or refused, answered in a shuffled order, its reports pushed to its
/// `notifyUrl` (some requests' in one webhook) or kept to be pulled.
async fn send(
    State(Host { provider, webhooks, .. }): State<Host>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let behaviour = provider.behaviour();
    let Some(account) = account_of(&provider, &headers) else {
        return refusal_answer(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "Invalid login details");
    };
    if let Some(fault) = provider.request_fault(&behaviour) {
        if let Ok((_, messages)) = parse_send(&body) {
            provider.refused_request(&account, messages.iter().map(|m| (m.to.as_str(), m.text.as_str())), fault);
        }
        return answer_after(&provider, &behaviour, Spoil::None, fault_answer(fault)).await;
    }
    let (bulk_id, messages) = match parse_send(&body) {
        Ok(request) => request,
        Err(problem) => return refusal_answer(StatusCode::BAD_REQUEST, "BAD_REQUEST", &problem),
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
        let fate = if !is_destination(&message.to) || provider.chance(behaviour.reject_rate) {
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
        let answer = |name: &str| json!({ "to": message.to, "messageId": id, "status": status(name) });
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
                let record = Record {
                    bulk_id: bulk_id.clone(),
                    from: message.from.clone(),
                    callback_data: message.callback_data.clone(),
                    sent_ms: provider.now_ms(),
                    pull,
                    pulled: false,
                    sms_count: smsim_judge::segments::count(&message.text),
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
        let channel = notify_channel(&account, notify_url.clone(), bulk_id.clone());
        for report in plan_reports(&provider, &channel, &id, &destination, &behaviour, final_delay) {
            if batched && report.batchable {
                batches.entry(notify_url.clone()).or_default().push(report);
            } else {
                spawn_webhook(provider.clone(), webhooks.clone(), channel.clone(), vec![report]);
            }
        }
    }
    for (notify_url, reports) in batches {
        let channel = notify_channel(&account, notify_url, bulk_id.clone());
        spawn_webhook(provider.clone(), webhooks.clone(), channel, reports);
    }
    let answer = json!({ "bulkId": bulk_id, "messages": results });
    answer_after(&provider, &behaviour, spoiled, json_answer(&answer, spoiled)).await
}

/// Where the reports of a message sent with `notify_url` in bulk `bulk_id` go.
fn notify_channel(account: &AccountBinding, notify_url: String, bulk_id: String) -> Channel {
    Channel::new(ProviderKind::Infobip, account.clone(), move |provider, _, reports| {
        notify_request(provider, &notify_url, &bulk_id, reports)
    })
}

/// The webhook carrying `reports` (`{"results": [...]}`, one or a batch) to `notify_url`,
/// which carries the account's token; a forged one carries another.
fn notify_request(provider: &Provider, notify_url: &str, bulk_id: &str, reports: &[Outgoing]) -> HttpRequest {
    let forged = reports.iter().any(|report| report.forged);
    let url = if forged {
        format!("{}?token=forged", notify_url.split('?').next().unwrap_or(notify_url))
    } else {
        notify_url.to_owned()
    };
    let now = provider.now_ms();
    let price = provider.behaviour().prices.infobip_eur_per_message;
    let truth = provider.truth.lock().expect("provider poisoned");
    let results: Vec<Value> = reports
        .iter()
        .map(|report| {
            let fallback = Record::untracked(bulk_id.to_owned(), now);
            let record = truth.infobip.get(report.provider_id.as_str()).unwrap_or(&fallback);
            let done = is_final(report.status).then_some(now);
            entry(record, &report.provider_id, &report.destination, (report.status, done), record.sms_count, price)
        })
        .collect();
    drop(truth);
    HttpRequest {
        method: http::Method::POST,
        url,
        headers: BTreeMap::from([("content-type".to_owned(), "application/json".to_owned())]),
        body: Bytes::from(serde_json::to_vec(&json!({ "results": results })).expect("reports serialise")),
    }
}

/// Where an Infobip message stands now: its last genuine report's status and when it
/// came (a pulled-report message: its drawn fate once due), else pending.
fn standing(truth: &Truth, id: &str, now_ms: u64) -> (&'static str, Option<u64>) {
    if let Some(report) = truth.reports.iter().rev().find(|r| !r.forged && *r.provider_id == *id) {
        return (report.status, is_final(report.status).then_some(report.at_ms));
    }
    match truth.infobip.get(id).and_then(|record| record.pull) {
        Some((due_ms, status)) if due_ms <= now_ms => (status, Some(due_ms)),
        _ => ("PENDING_ENROUTE", None),
    }
}

/// Matches Infobip's filters `bulkId`, `messageId` and `to`.
fn wanted(query: &BTreeMap<String, String>, record: Option<&Record>, id: &str, to: &str) -> bool {
    query.get("messageId").is_none_or(|wanted| wanted == id)
        && query.get("to").is_none_or(|wanted| wanted == to)
        && query.get("bulkId").is_none_or(|wanted| record.is_some_and(|record| record.bulk_id == *wanted))
}

/// At most `limit` (default 50, at most 1 000) results.
fn limit_of(query: &BTreeMap<String, String>) -> usize {
    query.get("limit").and_then(|limit| limit.parse().ok()).unwrap_or(50).clamp(1, 1_000)
}

/// The message log: the account's messages the filters ask for, accepted (with where
/// each stands now) or refused.
async fn logs(
    State(Host { provider, .. }): State<Host>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let behaviour = provider.behaviour();
    let Some(account) = account_of(&provider, &headers) else {
        return refusal_answer(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "Invalid login details");
    };
    if let Some(fault) = provider.request_fault(&behaviour) {
        return answer_after(&provider, &behaviour, Spoil::None, fault_answer(fault)).await;
    }
    let price = behaviour.prices.infobip_eur_per_message;
    let now = provider.now_ms();
    let mut results: Vec<Value> = {
        let truth = provider.truth.lock().expect("provider poisoned");
        truth
            .accepted
            .iter()
            .flat_map(|((destination, body), acceptances)| acceptances.iter().map(move |a| (destination, body, a)))
            .filter(|(_, _, a)| *a.account == *account.engine_id)
            .filter_map(|(destination, body, a)| {
                let record = truth.infobip.get(&a.provider_id);
                if !wanted(&query, record, &a.provider_id, destination) {
                    return None;
                }
                let (status, done) = standing(&truth, &a.provider_id, now);
                let fallback = Record::untracked(String::new(), a.at_ms);
                let mut entry = entry(
                    record.unwrap_or(&fallback),
                    &a.provider_id,
                    destination,
                    (status, done),
                    smsim_judge::segments::count(body),
                    price,
                );
                entry["text"] = Value::from(body.to_string());
                // A log entry has no `callbackData` (Infobip's `SmsLog`): reports echo it.
                entry.as_object_mut().expect("an entry is an object").remove("callbackData");
                Some(entry)
            })
            .collect()
    };
    let refused = provider.refused.lock().expect("provider poisoned");
    for ((engine_id, id), refusals) in refused.iter() {
        if *engine_id == account.engine_id && query.get("messageId").is_none_or(|wanted| wanted == id) {
            for (to, name) in refusals {
                if query.get("to").is_none_or(|wanted| wanted == to) && !query.contains_key("bulkId") {
                    results.push(json!({ "messageId": id, "to": to, "status": status(name) }));
                }
            }
        }
    }
    results.truncate(limit_of(&query));
    axum::Json(json!({ "results": results })).into_response()
}

/// `GET /sms/1/reports`: final reports of messages sent without `notifyUrl`, each given
/// once, as Infobip documents pulled reports.
async fn pull_reports(
    State(Host { provider, .. }): State<Host>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let Some(account) = account_of(&provider, &headers) else {
        return refusal_answer(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "Invalid login details");
    };
    let now = provider.now_ms();
    let price = provider.behaviour().prices.infobip_eur_per_message;
    let limit = limit_of(&query);
    let mut truth = provider.truth.lock().expect("provider poisoned");
    let due: Vec<(Box<str>, String, String)> = truth
        .accepted
        .iter()
        .flat_map(|((destination, body), acceptances)| acceptances.iter().map(move |a| (destination, body, a)))
        .filter(|(_, _, a)| *a.account == *account.engine_id)
        .filter(|(destination, _, a)| {
            let record = truth.infobip.get(&a.provider_id);
            let pullable = record.is_some_and(|r| !r.pulled && r.pull.is_some_and(|(due_ms, _)| due_ms <= now));
            pullable && wanted(&query, record, &a.provider_id, destination)
        })
        .map(|(destination, body, a)| (a.provider_id.clone(), destination.to_string(), body.to_string()))
        .take(limit)
        .collect();
    let mut results = Vec::new();
    for (id, to, body) in due {
        let record = truth.infobip.get_mut(&id).expect("filtered above");
        record.pulled = true;
        let (due_ms, status) = record.pull.expect("filtered above");
        results.push(entry(record, &id, &to, (status, Some(due_ms)), smsim_judge::segments::count(&body), price));
    }
    drop(truth);
    axum::Json(json!({ "results": results })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report's error code is its error object's name, and none for `NO_ERROR`.
    #[test]
    fn a_reports_error_code_is_its_errors_name() {
        for (status, ..) in STATUSES {
            let name = error(status)["name"].as_str().unwrap().to_owned();
            assert_eq!(report_error_code(status), (name != "NO_ERROR").then_some(name.as_str()), "{status}");
        }
        assert_eq!(report_error_code("EXPIRED_EXPIRED"), Some("EC_UNKNOWN_SUBSCRIBER"));
    }

    /// Reports and logs state the scenario's price per message.
    #[test]
    fn an_entry_carries_the_price_table_s_price() {
        let record = Record::untracked("b1".into(), 0);
        let entry = entry(&record, "m1", "+306910000001", ("DELIVERED_TO_HANDSET", Some(5)), 2, 0.042);
        assert_eq!(entry["price"], json!({ "pricePerMessage": 0.042, "currency": "EUR" }));
        assert_eq!(entry["smsCount"], 2);
    }

    #[test]
    fn requests_are_read_as_infobip_documents_them() {
        let body = br#"{"bulkId":"B1","messages":[{"destinations":[{"to":"41793026727"},{"to":"+41793026834","messageId":"m2"}],"text":"hi","notifyUrl":"http://x","callbackData":"c"}]}"#;
        let (bulk, messages) = parse_send(body).unwrap();
        assert_eq!(bulk.as_deref(), Some("B1"));
        assert_eq!(messages.len(), 2);
        assert_eq!((messages[0].from.as_deref(), messages[1].message_id.as_deref()), (None, Some("m2")));
        assert!(parse_send(br#"{"messages":[{"destinations":[{"to":"1"}]}]}"#).unwrap_err().contains("text"));
        assert!(is_destination("41793026727") && is_destination("+41793026727"));
        assert!(!is_destination("abc") && !is_destination("123") && !is_destination("041793026727"));
        assert_eq!(time(0), "2023-11-14T22:13:20.000+0000");
    }
}
