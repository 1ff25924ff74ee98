//! Twilio's Messages API as Twilio documents it — the message resource, its list, its
//! errors and its status callbacks — rendered by the simulated provider with code of its
//! own. The reference is Twilio's published OpenAPI document (the Messages part is kept in
//! `harness/sim/spec/twilio/messages.json`, and a test holds every answer to it); nothing
//! here comes from the engine's Twilio adapter, so a misreading of the API in one is not
//! repeated in the other.
//!
//! Below the documented shapes, the simulated provider's handling of them: the Messages
//! endpoints (send, list, fetch), Twilio's progression of a message's status, and the
//! signed status callbacks.

use super::{
    answer_after, caller_crash, outage_answer, schedule_reports, spoil, Acceptance, AccountBinding, Channel, Host,
    Outgoing, Peer, Provider, ReportRules, Spoil, Truth, WireFormat,
};
use crate::clock::EPOCH;
use crate::scenario::PriceTable;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use smsim_core::adapter::HttpRequest;
use smsim_core::domain::ProviderKind;
use std::collections::BTreeMap;

/// The API version every path and resource names.
pub const API_VERSION: &str = "2010-04-01";

/// The message list and send endpoint of an account (`{sid}`).
pub const MESSAGES_PATH: &str = "/2010-04-01/Accounts/{sid}/Messages.json";

/// One message of an account (`{file}`: its SID and `.json`).
pub const MESSAGE_PATH: &str = "/2010-04-01/Accounts/{sid}/Messages/{file}";

/// The header that carries a status callback's signature.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// Twilio refuses longer bodies (error 21617).
pub const MAX_BODY_CHARS: usize = 1_600;

/// A message SID: `SM` and 32 hex digits, as the specification's pattern says.
pub fn message_sid(number: u64) -> String {
    format!("SM{number:032x}")
}

/// Whether `sid` has the shape of a message SID.
pub fn is_message_sid(sid: &str) -> bool {
    sid.len() == 34 && sid.starts_with("SM") && sid[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// An RFC 2822 date, as Twilio writes its `date_*` fields: `Tue, 14 Nov 2023 22:13:20 +0000`.
pub fn rfc2822(at_ms: u64) -> String {
    let millis = i64::try_from(EPOCH.plus_ms(at_ms).0).expect("simulated time fits");
    let time = chrono::DateTime::from_timestamp_millis(millis).expect("simulated time is a date");
    time.format("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

/// A `DateSent` filter of the message list, as Twilio's OpenAPI document names them:
/// `DateSent` (sent that UTC day), `DateSent<` (on or before), `DateSent>` (on or after). A
/// value is a date (`2023-11-14`: the whole day) or a UTC date-time (`2023-11-14T22:13:20Z`,
/// as twilio-python writes even a date; for `DateSent`, its day).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateSent {
    /// Earliest send time kept, ms since the Unix epoch.
    pub from_ms: Option<i64>,
    /// Latest send time kept, ms since the Unix epoch.
    pub until_ms: Option<i64>,
}

impl DateSent {
    /// The filters of `query`; an unreadable value is Twilio's 20001, naming it.
    pub fn of(query: &BTreeMap<String, String>) -> Result<DateSent, String> {
        let mut filter = DateSent { from_ms: None, until_ms: None };
        for (name, value) in query {
            let (first, last) = match name.as_str() {
                "DateSent" | "DateSent<" | "DateSent>" => day_or_instant(value)
                    .ok_or_else(|| format!("{name} must be a date (YYYY-MM-DD) or a date-time, not `{value}`"))?,
                _ => continue,
            };
            match name.as_str() {
                "DateSent" => {
                    let start = first - first.rem_euclid(86_400_000);
                    (filter.from_ms, filter.until_ms) = (Some(start), Some(start + 86_400_000 - 1));
                }
                "DateSent<" => filter.until_ms = Some(last),
                _ => filter.from_ms = Some(first),
            }
        }
        Ok(filter)
    }

    /// Whether a message sent at `at_ms` (simulated ms) passes.
    pub fn keeps(&self, at_ms: u64) -> bool {
        let sent = i64::try_from(EPOCH.plus_ms(at_ms).0).unwrap_or(i64::MAX);
        self.from_ms.is_none_or(|from| sent >= from) && self.until_ms.is_none_or(|until| sent <= until)
    }
}

/// The first and last millisecond `value` names: a whole UTC day, or one instant.
fn day_or_instant(value: &str) -> Option<(i64, i64)> {
    if let Ok(day) = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        let start = day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis();
        return Some((start, start + 86_400_000 - 1));
    }
    let instant = chrono::DateTime::parse_from_rfc3339(value).ok()?.timestamp_millis();
    Some((instant, instant))
}

/// Whether `number` is in E.164 form (`+` and 8 to 15 digits, no leading zero): Twilio
/// refuses anything else with error 21211.
pub fn is_e164(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else { return false };
    (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
}

/// A message as the simulated Twilio holds it.
#[derive(Clone, Debug)]
pub struct Message<'a> {
    /// The account.
    pub account_sid: &'a str,
    /// Its SID.
    pub sid: &'a str,
    /// Destination.
    pub to: &'a str,
    /// The number it went out from (none yet for a messaging service's fresh message).
    pub from: Option<&'a str>,
    /// The messaging service that sent it.
    pub messaging_service_sid: Option<&'a str>,
    /// Body.
    pub body: &'a str,
    /// Twilio's status (`queued`, `accepted`, `sent`, `delivered`, `undelivered`, …).
    pub status: &'a str,
    /// When it was created (ms since the start).
    pub created_ms: u64,
    /// When it last changed.
    pub updated_ms: u64,
    /// What one segment costs, USD (the scenario's price table).
    pub price_per_segment_usd: f64,
}

/// Error code and message of an `undelivered` or `failed` message (30003: unreachable).
pub const UNDELIVERED: (i64, &str) = (30003, "Unreachable destination handset");

/// The `ErrorCode` a status callback with `status` carries: [`UNDELIVERED`]'s, written as
/// the form parameter writes it, for a message that did not arrive.
pub fn callback_error_code(status: &str) -> Option<&'static str> {
    matches!(status, "undelivered" | "failed").then_some("30003")
}

/// The message resource, every documented field present (null where Twilio has none).
pub fn resource(message: &Message<'_>) -> Value {
    let segments = smsim_judge::segments::count(message.body);
    // A messaging service has not picked a sender yet: no segments, no price (as the
    // specification says of `num_segments`).
    let picked = message.from.is_some();
    let settled = matches!(message.status, "sent" | "delivered" | "undelivered");
    let price = (picked && settled).then(|| format!("{:.5}", -message.price_per_segment_usd * f64::from(segments)));
    let failed = matches!(message.status, "undelivered" | "failed");
    let uri = format!("/{API_VERSION}/Accounts/{}/Messages/{}.json", message.account_sid, message.sid);
    let sent = settled.then(|| rfc2822(message.updated_ms));
    json!({
        "account_sid": message.account_sid,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": rfc2822(message.created_ms),
        "date_sent": sent,
        "date_updated": rfc2822(message.updated_ms),
        "direction": "outbound-api",
        "error_code": failed.then_some(UNDELIVERED.0),
        "error_message": failed.then_some(UNDELIVERED.1),
        "from": message.from,
        "messaging_service_sid": message.messaging_service_sid,
        "num_media": "0",
        "num_segments": if picked { segments.to_string() } else { "0".to_owned() },
        "price": price,
        "price_unit": "USD",
        "sid": message.sid,
        "status": message.status,
        "subresource_uris": {
            "media": format!("/{API_VERSION}/Accounts/{}/Messages/{}/Media.json", message.account_sid, message.sid),
        },
        "to": message.to,
        "uri": uri,
    })
}

/// One page of the message list, with Twilio's paging fields. `query` is the request's
/// filters (without `Page`), repeated in the page URIs.
pub fn list_page(
    account_sid: &str,
    messages: Vec<Value>,
    query: &str,
    page: usize,
    page_size: usize,
    more: bool,
) -> Value {
    let path = format!("/{API_VERSION}/Accounts/{account_sid}/Messages.json");
    // Twilio's page links carry a `PageToken` beside the page number; here it names the
    // page it leads to (`PA1`, …), and a client that follows the link lands there.
    let at = |page: usize| {
        let separator = if query.is_empty() { "" } else { "&" };
        format!("{path}?{query}{separator}PageSize={page_size}&Page={page}&PageToken=PA{page}")
    };
    let start = page * page_size;
    let end = (start + messages.len()).saturating_sub(1);
    json!({
        "end": end,
        "first_page_uri": at(0),
        "messages": messages,
        "next_page_uri": more.then(|| at(page + 1)),
        "page": page,
        "page_size": page_size,
        "previous_page_uri": (page > 0).then(|| at(page - 1)),
        "start": start,
        "uri": at(page),
    })
}

/// Twilio's error answer: `{code, message, more_info, status}`.
pub fn error(code: i64, message: &str, status: u16) -> Value {
    json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    })
}

/// Whether `authorization` is HTTP basic auth with `account_sid` and `auth_token`.
pub fn authorised(authorization: Option<&str>, account_sid: &str, auth_token: &str) -> bool {
    let Some(encoded) = authorization.and_then(|value| value.strip_prefix("Basic ")) else { return false };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else { return false };
    decoded == format!("{account_sid}:{auth_token}").as_bytes()
}

/// The form fields of a status callback: every field Twilio documents for an SMS one.
pub fn callback_params(
    account_sid: &str,
    sid: &str,
    status: &str,
    from: Option<&str>,
    to: &str,
    messaging_service_sid: Option<&str>,
) -> BTreeMap<String, String> {
    let mut params: BTreeMap<String, String> = [
        ("AccountSid", account_sid),
        ("ApiVersion", API_VERSION),
        ("MessageSid", sid),
        ("MessageStatus", status),
        ("SmsSid", sid),
        ("SmsStatus", status),
        ("To", to),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    if let Some(from) = from {
        params.insert("From".into(), from.to_owned());
    }
    if let Some(service) = messaging_service_sid {
        params.insert("MessagingServiceSid".into(), service.to_owned());
    }
    if let Some(code) = callback_error_code(status) {
        params.insert("ErrorCode".into(), code.to_owned());
    }
    params
}

/// `X-Twilio-Signature`: base64 of HMAC-SHA1, keyed with the auth token, over the URL
/// followed by each POST parameter's name and value, sorted by name (Twilio's "Webhooks
/// security").
pub fn signature(auth_token: &str, url: &str, params: &BTreeMap<String, String>) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key");
    mac.update(url.as_bytes());
    for (name, value) in params {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

// The simulated provider's side: the Messages endpoints and the status callbacks.

/// The Twilio-style wire as the simulated provider serves it. Status callbacks follow
/// Twilio's default connection overrides (`rc=1`, `rp=ct`): one more attempt when no
/// answer came, none after an HTTP error.
pub(super) static WIRE_FORMAT: WireFormat = WireFormat {
    kind: ProviderKind::Twilio,
    send_path: MESSAGES_PATH,
    routes: |router| router.route(MESSAGES_PATH, post(send).get(list)).route(MESSAGE_PATH, get(fetch)),
    reports: ReportRules {
        intermediate: "sent",
        delivered: "delivered",
        undelivered: "undelivered",
        // Rejected by the network.
        other_failures: &["failed"],
        attempts: 2,
        retries_error_answers: false,
        error_code: callback_error_code,
    },
};

/// The numbers a simulated Twilio messaging service sends from: the service, not the
/// request, picks one per message.
pub const MESSAGING_SERVICE_POOL: [&str; 3] = ["+15005550101", "+15005550102", "+15005550103"];

/// Who sent an accepted message: the simulated provider keeps it, as its list filters on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sender {
    /// The number (or alphanumeric id) it went out from.
    pub from: Box<str>,
    /// The messaging service that picked it, if one did.
    pub messaging_service_sid: Option<Box<str>>,
    /// When it was accepted (ms since the start).
    pub at_ms: u64,
}

/// A refusal of a whole request (outage, drawn fault): Twilio's JSON error, 20429 for too
/// many requests, 20500 otherwise.
fn fault_answer(status: StatusCode) -> Response {
    let (code, message) = if status == StatusCode::TOO_MANY_REQUESTS {
        (20429, "Too Many Requests")
    } else {
        (20500, "Internal Server Error")
    };
    outage_answer(status, axum::Json(error(code, message, status.as_u16())).into_response())
}

/// Twilio's answer for an error `code` (its documented JSON body).
fn error_answer(code: i64, message: &str, status: StatusCode) -> Response {
    (status, axum::Json(error(code, message, status.as_u16()))).into_response()
}

/// The account a Twilio request is for, if its basic auth names it.
fn account_of(provider: &Provider, sid: &str, headers: &http::HeaderMap) -> Option<AccountBinding> {
    let authorization = headers.get(http::header::AUTHORIZATION).and_then(|value| value.to_str().ok());
    provider.account_by_key(sid).filter(|account| authorised(authorization, &account.key, &account.secret))
}

/// Twilio's answer to a request whose credentials do not name the account.
fn unauthenticated() -> Response {
    error_answer(20003, "Authenticate", StatusCode::UNAUTHORIZED)
}

/// How long a message stays in each of Twilio's statuses before its first report, ms:
/// a messaging service's `accepted` (until it picks a sender), then `queued`, then
/// `sending` until the carrier's answer (the first report).
const ACCEPTED_MS: u64 = 100;
const QUEUED_MS: u64 = 200;

/// A message as the simulated Twilio shows it at `now_ms`: before any report, along
/// Twilio's progression (`accepted` for a messaging service, `queued`, `sending`); after
/// one, the last genuine report's status and time.
fn view(
    truth: &Truth,
    prices: &PriceTable,
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
    let queued_at = if service { ACCEPTED_MS } else { 0 };
    let (status, updated_ms) = match last {
        Some(report) => (report.status, report.at_ms),
        None if elapsed < queued_at => ("accepted", acceptance.at_ms),
        None if elapsed < queued_at + QUEUED_MS => ("queued", acceptance.at_ms + queued_at),
        None => ("sending", acceptance.at_ms + queued_at + QUEUED_MS),
    };
    resource(&Message {
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
        price_per_segment_usd: prices.twilio_usd_per_segment,
    })
}

/// `POST` [`MESSAGES_PATH`]: one message, refused with Twilio's error codes or accepted as a
/// resource, its status callbacks planned when the request names a `StatusCallback`.
async fn send(
    State(Host { provider, webhooks, .. }): State<Host>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    Path(sid): Path<String>,
    headers: http::HeaderMap,
    body: Bytes,
) -> Response {
    let behaviour = provider.behaviour();
    let Some(account) = account_of(&provider, &sid, &headers) else { return unauthenticated() };
    if let Some(fault) = provider.request_fault(&behaviour) {
        if let Ok(form) = serde_urlencoded::from_bytes::<BTreeMap<String, String>>(&body) {
            if let (Some(to), Some(text)) = (form.get("To"), form.get("Body")) {
                provider.refused_request(&account, [(to.as_str(), text.as_str())], fault);
            }
        }
        return answer_after(&provider, &behaviour, Spoil::None, fault_answer(fault)).await;
    }
    let Ok(form) = serde_urlencoded::from_bytes::<BTreeMap<String, String>>(&body) else {
        return error_answer(21100, "The request could not be read as a form", StatusCode::BAD_REQUEST);
    };
    let field = |name: &str| form.get(name).filter(|value| !value.is_empty()).cloned();
    let (to, from, service) = (field("To"), field("From"), field("MessagingServiceSid"));
    let Some(to) = to else {
        return error_answer(21604, "A 'To' phone number is required.", StatusCode::BAD_REQUEST);
    };
    let Some(text) = field("Body") else {
        return error_answer(21602, "Message body is required.", StatusCode::BAD_REQUEST);
    };
    if from.is_none() && service.is_none() {
        return error_answer(21603, "A 'From' phone number is required.", StatusCode::BAD_REQUEST);
    }
    if text.chars().count() > MAX_BODY_CHARS {
        return error_answer(
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
            StatusCode::BAD_REQUEST,
        );
    }
    provider.received(&account, &to, &text);
    if !is_e164(&to) || provider.chance(behaviour.reject_rate) {
        let message = format!("The 'To' number {to} is not a valid phone number.");
        let refused = error_answer(21211, &message, StatusCode::BAD_REQUEST);
        return answer_after(&provider, &behaviour, Spoil::None, refused).await;
    }
    let spoiled = spoil(&provider, &behaviour);
    let sid_of_message = provider.accept_as(&account, &to, &text, message_sid(provider.next_number()));
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
            Sender { from: sent_from.into(), messaging_service_sid: service.as_deref().map(Into::into), at_ms };
        truth.twilio_senders.insert(sid_of_message.as_str().into(), sender);
        let acceptance = Acceptance {
            at_ms,
            provider_id: sid_of_message.as_str().into(),
            account: account.engine_id.as_str().into(),
        };
        view(&truth, &behaviour.prices, at_ms, &account.key, &acceptance, &to, &text)
    };
    caller_crash(&provider, &behaviour, peer);
    if provider.after_accept.get().is_some() {
        provider.after_accept(1, peer).await;
    }
    if let Some(callback) = field("StatusCallback") {
        let channel = Channel::new(ProviderKind::Twilio, account.clone(), move |provider, account, reports| {
            callback_request(provider, account, &callback, reports)
        });
        schedule_reports(provider.clone(), webhooks.clone(), channel, sid_of_message.clone(), &to, &behaviour);
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
async fn list(
    State(Host { provider, .. }): State<Host>,
    Path(sid): Path<String>,
    headers: http::HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let Some(account) = account_of(&provider, &sid, &headers) else { return unauthenticated() };
    let to = query.get("To").cloned();
    let from = query.get("From").cloned();
    let page_size = match query.get("PageSize").map(|n| n.parse::<usize>()) {
        None => 50,
        Some(Ok(n)) if (1..=1_000).contains(&n) => n,
        Some(_) => return error_answer(20001, "PageSize must be from 1 to 1000", StatusCode::BAD_REQUEST),
    };
    let token_page = query.get("PageToken").and_then(|token| token.strip_prefix("PA")?.parse().ok());
    let page: usize = token_page.or_else(|| query.get("Page").and_then(|n| n.parse().ok())).unwrap_or(0);
    let date_sent = match DateSent::of(&query) {
        Ok(filter) => filter,
        Err(problem) => return error_answer(20001, &problem, StatusCode::BAD_REQUEST),
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
    let prices = provider.behaviour().prices;
    let messages = matching
        .iter()
        .skip(page * page_size)
        .take(page_size)
        .map(|(_, acceptance, to, body)| view(&truth, &prices, now_ms, &account.key, acceptance, to, body))
        .collect();
    let filters: Vec<(&str, &String)> = [("To", to.as_ref()), ("From", from.as_ref())]
        .into_iter()
        .chain(["DateSent", "DateSent<", "DateSent>"].map(|name| (name, query.get(name))))
        .filter_map(|(name, value)| value.map(|value| (name, value)))
        .collect();
    let filters = serde_urlencoded::to_string(filters).expect("query serialises");
    axum::Json(list_page(&account.key, messages, &filters, page, page_size, more)).into_response()
}

/// `GET …/Messages/{Sid}.json`: one message, or Twilio's 20404.
async fn fetch(
    State(Host { provider, .. }): State<Host>,
    Path((sid, file)): Path<(String, String)>,
    headers: http::HeaderMap,
) -> Response {
    let Some(account) = account_of(&provider, &sid, &headers) else { return unauthenticated() };
    let message_sid = file.strip_suffix(".json").unwrap_or(&file);
    let now_ms = provider.now_ms();
    let prices = provider.behaviour().prices;
    let truth = provider.truth.lock().expect("provider poisoned");
    let found = truth.accepted.iter().find_map(|((to, body), acceptances)| {
        let acceptance =
            acceptances.iter().find(|a| *a.provider_id == *message_sid && *a.account == *account.engine_id)?;
        Some(view(&truth, &prices, now_ms, &account.key, acceptance, to, body))
    });
    match found {
        Some(resource) => axum::Json(resource).into_response(),
        None => {
            error_answer(20404, &format!("The requested resource {message_sid} was not found"), StatusCode::NOT_FOUND)
        }
    }
}

/// The status callback carrying `reports[0]` to `callback`, signed with the account's auth
/// token (a forged one with another); a stray report goes to the callback without its
/// query, which names the message it was given for.
fn callback_request(
    provider: &Provider,
    account: &AccountBinding,
    callback: &str,
    reports: &[Outgoing],
) -> HttpRequest {
    let report = &reports[0];
    let callback = if report.stray { callback.split('?').next().unwrap_or(callback) } else { callback }.to_owned();
    let sender =
        provider.truth.lock().expect("provider poisoned").twilio_senders.get(report.provider_id.as_str()).cloned();
    let params = callback_params(
        &account.key,
        &report.provider_id,
        report.status,
        sender.as_ref().map(|sender| &*sender.from),
        &report.destination,
        sender.as_ref().and_then(|sender| sender.messaging_service_sid.as_deref()),
    );
    let token = if report.forged { "forged" } else { account.secret.as_str() };
    let signed = signature(token, &callback, &params);
    HttpRequest {
        method: http::Method::POST,
        url: callback,
        headers: BTreeMap::from([
            ("content-type".to_owned(), "application/x-www-form-urlencoded".to_owned()),
            (SIGNATURE_HEADER.to_owned(), signed),
        ]),
        body: Bytes::from(serde_urlencoded::to_string(&params).expect("forms serialise")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A callback's `ErrorCode` is the resource's `error_code`, for the statuses that have one.
    #[test]
    fn a_callback_carries_the_resources_error_code() {
        let code = UNDELIVERED.0.to_string();
        assert_eq!(callback_error_code("undelivered"), Some(code.as_str()));
        assert_eq!(callback_error_code("failed"), Some(code.as_str()));
        assert_eq!(callback_error_code("delivered"), None);
        let params = callback_params("AC1", "SM1", "failed", None, "+306910000001", None);
        assert_eq!(params.get("ErrorCode"), Some(&code));
    }

    /// A sent message's `price` is minus the scenario's price per segment times its
    /// segments; a fresh one has none.
    #[test]
    fn a_message_is_priced_from_the_price_table_by_its_segments() {
        let body = "x".repeat(161);
        let message = |status, price_per_segment_usd| Message {
            account_sid: "AC1",
            sid: "SM1",
            to: "+306910000001",
            from: Some("+15005550006"),
            messaging_service_sid: None,
            body: &body,
            status,
            created_ms: 0,
            updated_ms: 0,
            price_per_segment_usd,
        };
        assert_eq!(resource(&message("delivered", 0.05))["price"], "-0.10000");
        assert_eq!(resource(&message("delivered", 0.0079))["price"], "-0.01580");
        assert!(resource(&message("queued", 0.05))["price"].is_null());
    }

    #[test]
    fn the_signature_matches_twilios_published_example() {
        // The example of Twilio's "Webhooks security" page and of twilio-python's tests:
        // auth token 12345, this URL and these parameters sign to RSOYDt4T…8B8=.
        let params: BTreeMap<String, String> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(signature("12345", url, &params), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
    }

    #[test]
    fn sids_dates_and_numbers_have_twilios_shapes() {
        assert!(is_message_sid(&message_sid(1)));
        assert!(!is_message_sid("SM00000001"));
        assert_eq!(rfc2822(0), "Tue, 14 Nov 2023 22:13:20 +0000");
        assert!(is_e164("+306912345678"));
        for bad in ["306912345678", "+0691234567", "+12", "+1 415 555", "+1234567890123456"] {
            assert!(!is_e164(bad), "{bad}");
        }
    }

    /// Before its first report a message moves along Twilio's progression — a messaging
    /// service's `accepted` (no sender yet), `queued`, `sending` — and then shows its last
    /// report's status.
    #[test]
    fn a_twilio_message_moves_along_twilios_progression_until_its_first_report() {
        use crate::provider::SentReport;
        let mut truth = Truth::default();
        let sid: Box<str> = "SM0001".into();
        let sender = Sender { from: "+15005550006".into(), messaging_service_sid: Some("MG1".into()), at_ms: 1_000 };
        truth.twilio_senders.insert(sid.clone(), sender);
        let acceptance = Acceptance { at_ms: 1_000, provider_id: sid.clone(), account: "ta_1".into() };
        let shown = |truth: &Truth, now_ms| {
            let view = view(truth, &PriceTable::default(), now_ms, "AC1", &acceptance, "+306910000001", "hi");
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
            error_code: None,
            is_final: false,
            forged: false,
            answered: Some(200),
        });
        assert_eq!(shown(&truth, 1_500), ("sent".to_owned(), false));
    }
}
