//! The profiles of the providers this crate has adapters for, written from their wire
//! documentation (DESIGN.md, "Provider adapters"), one per [`ProviderKind`] ([`builtin`]).
//!
//! The stubs speak the simulated provider's own wire formats (`smsim_sim::provider::{mitto,
//! twilio, infobip}`), never the engine adapters' types: the judge shares no code with the
//! defendant, so a misreading of a format in an adapter is not repeated here.

use super::profile::{
    json_response, query_param, with_query, Accepted, Auth, DocumentedCode, ProviderProfile, ReportShape, Verdict,
    WebhookTarget, WireMessage, WireReport,
};
use base64::Engine;
use serde_json::{json, Value};
use smsim_core::adapter::{HttpRequest, HttpResponse, WebhookRequest};
use smsim_core::domain::report::ReportStatus;
use smsim_core::domain::ProviderKind;
use smsim_sim::provider::{infobip, mitto, twilio};
use smsim_sim::scenario::PriceTable;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The profile of the provider of `kind`: a new [`ProviderKind`] does not build until it
/// has one.
pub fn builtin(kind: ProviderKind) -> Arc<dyn ProviderProfile> {
    match kind {
        ProviderKind::Mitto => Arc::new(MittoProfile::default()),
        ProviderKind::Twilio => Arc::new(TwilioProfile::default()),
        ProviderKind::Infobip => Arc::new(InfobipProfile::default()),
    }
}

fn header<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request.headers.get(name).map(String::as_str)
}

fn path_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = rest.find('/').map_or("", |start| &rest[start..]);
    path.split(['?', '#']).next().unwrap_or("")
}

fn content_type_is(request: &HttpRequest, expected: &str) -> Result<(), String> {
    let given = header(request, "content-type").unwrap_or("");
    if given.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(format!("content type `{given}`, the provider takes `{expected}`"))
    }
}

/// The webhook URL of a provider that does not sign: `url` with the account's token, a
/// wrong one, or none.
fn token_url(url: &str, token: &str, auth: Auth) -> String {
    match auth {
        Auth::Valid => with_query(url, "token", token),
        Auth::Invalid => with_query(url, "token", "not-the-token"),
        Auth::Missing => url.to_owned(),
    }
}

/// Mitto-style bulk: `X-Mitto-API-Key`, JSON bulk requests, answers by position, unsigned
/// reports authenticated by a token in the webhook URL.
#[derive(Clone, Debug)]
pub struct MittoProfile {
    api_key: String,
    traffic_account_id: String,
    webhook_token: String,
}

impl Default for MittoProfile {
    fn default() -> Self {
        MittoProfile {
            api_key: "mitto-key-SECRET-7f3a90".into(),
            traffic_account_id: "ta-certify".into(),
            webhook_token: "mitto-hook-SECRET-91c2".into(),
        }
    }
}

impl ProviderProfile for MittoProfile {
    fn name(&self) -> &str {
        self.kind().as_str()
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Mitto
    }

    fn credentials(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("api_key".to_owned(), self.api_key.clone()),
            ("traffic_account_id".to_owned(), self.traffic_account_id.clone()),
            ("webhook_token".to_owned(), self.webhook_token.clone()),
        ])
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.api_key.clone(), self.webhook_token.clone()]
    }

    fn is_submit(&self, request: &HttpRequest) -> bool {
        request.method == http::Method::POST && path_of(&request.url) == mitto::SEND_PATH
    }

    fn read_submit(&self, request: &HttpRequest) -> Result<Vec<WireMessage>, String> {
        if header(request, mitto::API_KEY_HEADER) != Some(self.api_key.as_str()) {
            return Err("the X-Mitto-API-Key header is missing or wrong".into());
        }
        content_type_is(request, "application/json")?;
        let bulk: mitto::BulkRequest =
            serde_json::from_slice(&request.body).map_err(|error| format!("unreadable bulk request: {error}"))?;
        bulk.messages
            .into_iter()
            .map(|message| {
                if message.traffic_account_id != self.traffic_account_id {
                    return Err(format!("trafficAccountId `{}` is not the account's", message.traffic_account_id));
                }
                if message.sms.sender.is_empty() {
                    return Err("a message without a sender".into());
                }
                Ok(WireMessage {
                    destination: message.destination,
                    sender: Some(message.sms.sender),
                    body: message.sms.text,
                    reference: None,
                    callback: None,
                    idempotency_key: None,
                })
            })
            .collect()
    }

    fn answer(&self, messages: &[WireMessage], verdicts: &[(usize, Verdict)]) -> HttpResponse {
        let results = verdicts
            .iter()
            .map(|(_, verdict)| match verdict {
                Verdict::Accept { provider_id } => mitto::BulkResult {
                    traffic_account_id: self.traffic_account_id.clone(),
                    message_id: Some(provider_id.clone()),
                    error: None,
                },
                Verdict::Reject { code } => mitto::BulkResult {
                    traffic_account_id: self.traffic_account_id.clone(),
                    message_id: None,
                    error: Some(mitto::BulkError { code: code.clone(), message: format!("refused: {code}") }),
                },
            })
            .collect();
        let bulk_id = format!("bulk-{}", messages.first().map_or("empty", |message| message.destination.as_str()));
        json_response(200, &mitto::BulkResponse { bulk_id, messages: results })
    }

    fn answers_in_any_order(&self) -> bool {
        false
    }

    fn bulk_ids(&self) -> bool {
        true
    }

    fn documented_codes(&self) -> Vec<DocumentedCode> {
        let permanent = [
            "INVALID_DESTINATION",
            "INVALID_NUMBER",
            "BLOCKED",
            "BLACKLISTED",
            "OPTED_OUT",
            "INVALID_SENDER",
            "INVALID_TEXT",
        ];
        let retryable = ["THROTTLED", "TEMPORARY", "INTERNAL"];
        permanent
            .into_iter()
            .map(|code| DocumentedCode::new(code, false))
            .chain(retryable.into_iter().map(|code| DocumentedCode::new(code, true)))
            .collect()
    }

    fn documented_statuses(&self) -> Vec<(String, ReportStatus)> {
        vec![
            ("Sent".into(), ReportStatus::Accepted),
            ("Delivered".into(), ReportStatus::Delivered),
            ("Failure".into(), ReportStatus::Undelivered),
        ]
    }

    fn report_shapes(&self) -> Vec<ReportShape> {
        vec![ReportShape::Single, ReportShape::Batch]
    }

    fn webhook(
        &self,
        target: &WebhookTarget,
        reports: &[WireReport],
        shape: ReportShape,
        auth: Auth,
    ) -> WebhookRequest {
        let url = token_url(&target.account_url, &self.webhook_token, auth);
        let wire = |report: &WireReport| mitto::DeliveryReport {
            message_id: report.provider_message_id.clone(),
            delivery_status: report.status.clone(),
            error_code: report.error_code.clone(),
        };
        let body = match shape {
            ReportShape::Single => mitto::DeliveryReports::One(wire(&reports[0])),
            ReportShape::Batch => mitto::DeliveryReports::Many(reports.iter().map(wire).collect()),
        };
        WebhookRequest {
            url,
            headers: BTreeMap::from([("content-type".to_owned(), "application/json".to_owned())]),
            body: serde_json::to_vec(&body).expect("reports serialise"),
        }
    }

    fn lookup_answer(&self, _request: &HttpRequest, _accepted: &[Accepted]) -> Option<HttpResponse> {
        None
    }
}

/// Twilio-style single: basic auth, one form-encoded request per message, signed
/// form-encoded status callbacks, and a list endpoint for lookups.
#[derive(Clone, Debug)]
pub struct TwilioProfile {
    account_sid: String,
    auth_token: String,
}

impl Default for TwilioProfile {
    fn default() -> Self {
        TwilioProfile {
            account_sid: "AC00000000000000000000000000certify".into(),
            auth_token: "twilio-SECRET-5d1e".into(),
        }
    }
}

impl TwilioProfile {
    fn messages_path(&self) -> String {
        twilio::MESSAGES_PATH.replace("{sid}", &self.account_sid)
    }

    /// A message resource as the simulated Twilio renders it.
    fn resource(&self, provider_id: &str, status: &str, message: &WireMessage) -> Value {
        twilio::resource(&twilio::Message {
            account_sid: &self.account_sid,
            sid: provider_id,
            to: &message.destination,
            from: message.sender.as_deref(),
            messaging_service_sid: None,
            body: &message.body,
            status,
            created_ms: 0,
            updated_ms: 0,
            price_per_segment_usd: PriceTable::default().twilio_usd_per_segment,
        })
    }

    fn basic(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", self.account_sid, self.auth_token))
    }

    fn authorised(&self, request: &HttpRequest) -> Result<(), String> {
        if header(request, "authorization") == Some(format!("Basic {}", self.basic()).as_str()) {
            Ok(())
        } else {
            Err("basic authentication with the account SID and auth token is missing or wrong".into())
        }
    }
}

impl ProviderProfile for TwilioProfile {
    fn name(&self) -> &str {
        self.kind().as_str()
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Twilio
    }

    fn credentials(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("account_sid".to_owned(), self.account_sid.clone()),
            ("auth_token".to_owned(), self.auth_token.clone()),
        ])
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.auth_token.clone(), self.basic()]
    }

    fn is_submit(&self, request: &HttpRequest) -> bool {
        request.method == http::Method::POST && path_of(&request.url) == self.messages_path()
    }

    fn read_submit(&self, request: &HttpRequest) -> Result<Vec<WireMessage>, String> {
        self.authorised(request)?;
        content_type_is(request, "application/x-www-form-urlencoded")?;
        let mut form: BTreeMap<String, String> =
            serde_urlencoded::from_bytes(&request.body).map_err(|error| format!("unreadable send form: {error}"))?;
        let (Some(to), Some(body)) = (form.remove("To"), form.remove("Body")) else {
            return Err("unreadable send form: `To` and `Body` are required".into());
        };
        let from = form.remove("From");
        if from.as_deref().unwrap_or("").is_empty() && !form.contains_key("MessagingServiceSid") {
            return Err("neither From nor MessagingServiceSid".into());
        }
        let callback = form.remove("StatusCallback");
        Ok(vec![WireMessage {
            destination: to,
            sender: from,
            body,
            reference: callback.as_deref().and_then(|url| query_param(url, "message_id")),
            callback,
            idempotency_key: None,
        }])
    }

    fn answer(&self, messages: &[WireMessage], verdicts: &[(usize, Verdict)]) -> HttpResponse {
        match verdicts.first() {
            None => json_response(201, &serde_json::json!({ "status": "queued" })),
            Some((index, Verdict::Accept { provider_id })) => {
                json_response(201, &self.resource(provider_id, "queued", &messages[*index]))
            }
            Some((_, Verdict::Reject { code })) => {
                let status = if code == "20429" { 429 } else { 400 };
                let code = code.parse().unwrap_or(0);
                json_response(status, &twilio::error(code, &format!("error {code}"), status))
            }
        }
    }

    fn answers_in_any_order(&self) -> bool {
        false
    }

    fn bulk_ids(&self) -> bool {
        false
    }

    fn documented_codes(&self) -> Vec<DocumentedCode> {
        vec![
            DocumentedCode::new("21211", false), // invalid To
            DocumentedCode::new("21408", false), // region not enabled
            DocumentedCode::new("21610", false), // unsubscribed recipient
            DocumentedCode::new("21614", false), // not a mobile number
            DocumentedCode::new("20429", true),  // too many requests
        ]
    }

    fn documented_statuses(&self) -> Vec<(String, ReportStatus)> {
        [
            ("accepted", ReportStatus::Accepted),
            ("scheduled", ReportStatus::Accepted),
            ("queued", ReportStatus::Accepted),
            ("sending", ReportStatus::Accepted),
            ("sent", ReportStatus::Accepted),
            ("delivered", ReportStatus::Delivered),
            ("read", ReportStatus::Delivered),
            ("undelivered", ReportStatus::Undelivered),
            ("failed", ReportStatus::Rejected),
            ("canceled", ReportStatus::Rejected),
        ]
        .into_iter()
        .map(|(raw, status)| (raw.to_owned(), status))
        .collect()
    }

    fn report_shapes(&self) -> Vec<ReportShape> {
        vec![ReportShape::Single]
    }

    fn webhook(
        &self,
        target: &WebhookTarget,
        reports: &[WireReport],
        _shape: ReportShape,
        auth: Auth,
    ) -> WebhookRequest {
        let report = &reports[0];
        let url = target.callback.clone().unwrap_or_else(|| target.account_url.clone());
        let mut params = BTreeMap::from([
            ("MessageSid".to_owned(), report.provider_message_id.clone()),
            ("MessageStatus".to_owned(), report.status.clone()),
            ("AccountSid".to_owned(), self.account_sid.clone()),
        ]);
        if let Some(code) = &report.error_code {
            params.insert("ErrorCode".to_owned(), code.clone());
        }
        let body = serde_urlencoded::to_string(&params).expect("callbacks serialise");
        let mut headers = BTreeMap::from([("content-type".to_owned(), "application/x-www-form-urlencoded".to_owned())]);
        match auth {
            Auth::Valid => {
                headers.insert(twilio::SIGNATURE_HEADER.into(), twilio::signature(&self.auth_token, &url, &params));
            }
            Auth::Invalid => {
                headers.insert(twilio::SIGNATURE_HEADER.into(), twilio::signature("wrong-token", &url, &params));
            }
            Auth::Missing => {}
        }
        WebhookRequest { url, headers, body: body.into_bytes() }
    }

    fn lookup_answer(&self, request: &HttpRequest, accepted: &[Accepted]) -> Option<HttpResponse> {
        if request.method != http::Method::GET || path_of(&request.url) != self.messages_path() {
            return None;
        }
        if let Err(error) = self.authorised(request) {
            return Some(json_response(401, &twilio::error(20003, &error, 401)));
        }
        let to = query_param(&request.url, "To");
        let from = query_param(&request.url, "From");
        // One message a page (a provider may cap pages below the PageSize asked for): a
        // lookup that does not follow `next_page_uri` sees only the newest.
        let page: usize = query_param(&request.url, "Page").and_then(|page| page.parse().ok()).unwrap_or(0);
        let matching: Vec<&Accepted> = accepted
            .iter()
            .rev()
            .filter(|known| Some(&known.message.destination) == to.as_ref())
            .filter(|known| from.is_none() || known.message.sender == from)
            .collect();
        let messages = matching
            .iter()
            .skip(page)
            .take(1)
            .map(|known| self.resource(&known.provider_id, &known.status, &known.message))
            .collect();
        let filters: Vec<(&str, String)> = [("To", to), ("From", from)]
            .into_iter()
            .filter_map(|(name, value)| value.map(|value| (name, value)))
            .collect();
        let filters = serde_urlencoded::to_string(filters).expect("query serialises");
        let more = matching.len() > page + 1;
        Some(json_response(200, &twilio::list_page(&self.account_sid, messages, &filters, page, 1, more)))
    }
}

/// Infobip-style bulk: `Authorization: App KEY`, one entry per message keyed by the
/// client's own message id, answers in any order, `{"results":[…]}` reports to the
/// `notifyUrl` (unsigned: a token in the URL), and a message log keyed by our id.
#[derive(Clone, Debug)]
pub struct InfobipProfile {
    api_key: String,
    webhook_token: String,
}

impl Default for InfobipProfile {
    fn default() -> Self {
        InfobipProfile { api_key: "infobip-key-SECRET-3b8e".into(), webhook_token: "infobip-hook-SECRET-77aa".into() }
    }
}

impl InfobipProfile {
    fn authorised(&self, request: &HttpRequest) -> Result<(), String> {
        let expected = format!("{} {}", infobip::AUTHORIZATION_SCHEME, self.api_key);
        if header(request, "authorization") == Some(expected.as_str()) {
            Ok(())
        } else {
            Err("the `Authorization: App KEY` header is missing or wrong".into())
        }
    }

    /// The status object of a report whose status is the group `raw` (an undocumented
    /// name stands for a group of its own).
    fn status(raw: &str) -> Value {
        match infobip::STATUSES.iter().find(|(_, _, group, ..)| *group == raw) {
            Some((_, group_id, ..)) => InfobipProfile::status_of(*group_id, raw, group_id * 10, raw, "as documented"),
            None => InfobipProfile::status_of(99, raw, 999, raw, "not documented"),
        }
    }

    /// A status object: its group, its id and name, and what it means.
    fn status_of(group_id: u32, group_name: &str, id: u32, name: &str, description: &str) -> Value {
        json!({ "groupId": group_id, "groupName": group_name, "id": id, "name": name, "description": description })
    }
}

impl ProviderProfile for InfobipProfile {
    fn name(&self) -> &str {
        self.kind().as_str()
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Infobip
    }

    fn credentials(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("api_key".to_owned(), self.api_key.clone()),
            ("webhook_token".to_owned(), self.webhook_token.clone()),
        ])
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.api_key.clone(), self.webhook_token.clone()]
    }

    fn is_submit(&self, request: &HttpRequest) -> bool {
        request.method == http::Method::POST && path_of(&request.url) == infobip::SEND_PATH
    }

    fn read_submit(&self, request: &HttpRequest) -> Result<Vec<WireMessage>, String> {
        self.authorised(request)?;
        content_type_is(request, "application/json")?;
        let (_, destinations) =
            infobip::parse_send(&request.body).map_err(|problem| format!("unreadable send request: {problem}"))?;
        // `from` is optional in Infobip's schema (`SmsTextualMessage`): without it Infobip
        // sends from the account's default sender, so the provider takes the message, and
        // `submit.request` holds the sender to the one given.
        let messages = destinations.into_iter().map(|destination| WireMessage {
            destination: destination.to,
            sender: destination.from.filter(|from| !from.is_empty()),
            body: destination.text,
            reference: destination.message_id,
            callback: destination.notify_url,
            idempotency_key: None,
        });
        Ok(messages.collect())
    }

    fn answer(&self, messages: &[WireMessage], verdicts: &[(usize, Verdict)]) -> HttpResponse {
        let sent = verdicts
            .iter()
            .map(|(index, verdict)| {
                let message = &messages[*index];
                let (message_id, status) = match verdict {
                    Verdict::Accept { provider_id } => (provider_id.clone(), infobip::status("PENDING_ACCEPTED")),
                    Verdict::Reject { code } => (
                        message.reference.clone().unwrap_or_default(),
                        InfobipProfile::status_of(5, "REJECTED", 51, code, "refused"),
                    ),
                };
                json!({ "to": message.destination, "messageId": message_id, "status": status })
            })
            .collect::<Vec<Value>>();
        let bulk_id = format!("bulk-{}", messages.first().map_or("empty", |message| message.destination.as_str()));
        json_response(200, &json!({ "bulkId": bulk_id, "messages": sent }))
    }

    fn answers_in_any_order(&self) -> bool {
        true
    }

    fn bulk_ids(&self) -> bool {
        true
    }

    fn provider_id(&self, reference: Option<&str>, suggested: String) -> String {
        reference.map_or(suggested, str::to_owned)
    }

    fn documented_codes(&self) -> Vec<DocumentedCode> {
        [
            "REJECTED_NETWORK",
            "REJECTED_PREFIX_MISSING",
            "REJECTED_DND",
            "REJECTED_SOURCE",
            "REJECTED_NOT_ENOUGH_CREDITS",
            "REJECTED_SENDER",
            "REJECTED_DESTINATION",
            "REJECTED_DESTINATION_NOT_REGISTERED",
        ]
        .into_iter()
        .map(|code| DocumentedCode::new(code, false))
        .collect()
    }

    fn documented_statuses(&self) -> Vec<(String, ReportStatus)> {
        [
            ("PENDING", ReportStatus::Accepted),
            ("DELIVERED", ReportStatus::Delivered),
            ("UNDELIVERABLE", ReportStatus::Undelivered),
            ("EXPIRED", ReportStatus::Expired),
            ("REJECTED", ReportStatus::Rejected),
        ]
        .into_iter()
        .map(|(raw, status)| (raw.to_owned(), status))
        .collect()
    }

    fn report_shapes(&self) -> Vec<ReportShape> {
        vec![ReportShape::Single, ReportShape::Batch]
    }

    fn webhook(
        &self,
        target: &WebhookTarget,
        reports: &[WireReport],
        _shape: ReportShape,
        auth: Auth,
    ) -> WebhookRequest {
        let url = token_url(&target.account_url, &self.webhook_token, auth);
        let results: Vec<Value> = reports
            .iter()
            .map(|report| {
                let mut result = json!({
                    "messageId": report.provider_message_id,
                    "to": "",
                    "smsCount": 1,
                    "status": InfobipProfile::status(&report.status),
                });
                if let Some(code) = &report.error_code {
                    result["error"] = json!({
                        "groupId": 1, "groupName": "HANDSET_ERRORS", "id": 1, "name": code,
                        "description": "as reported", "permanent": true,
                    });
                }
                result
            })
            .collect();
        WebhookRequest {
            url,
            headers: BTreeMap::from([("content-type".to_owned(), "application/json".to_owned())]),
            body: serde_json::to_vec(&json!({ "results": results })).expect("reports serialise"),
        }
    }

    fn lookup_answer(&self, request: &HttpRequest, accepted: &[Accepted]) -> Option<HttpResponse> {
        if request.method != http::Method::GET || path_of(&request.url) != infobip::LOGS_PATH {
            return None;
        }
        if let Err(error) = self.authorised(request) {
            return Some(json_response(401, &infobip::refusal("UNAUTHORIZED", &error)));
        }
        let wanted = query_param(&request.url, "messageId");
        let results = accepted
            .iter()
            .filter(|known| known.provider_id.as_str() == wanted.as_deref().unwrap_or(""))
            .map(|known| {
                json!({
                    "messageId": known.provider_id,
                    "to": known.message.destination,
                    "from": known.message.sender,
                    "text": known.message.body,
                    "smsCount": 1,
                    "status": infobip::status("PENDING_ACCEPTED"),
                })
            })
            .collect::<Vec<Value>>();
        Some(json_response(200, &json!({ "results": results })))
    }
}
