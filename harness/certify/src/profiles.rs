//! The profiles of the providers this crate has adapters for, written from their wire
//! documentation (DESIGN.md, "Provider adapters").

use super::profile::{
    json_response, query_param, with_query, Accepted, Auth, DocumentedCode, ProviderProfile, ReportShape, Verdict,
    WebhookTarget, WireMessage, WireReport,
};
use base64::Engine;
use smsim_core::adapter::infobip::{self, wire as infobip_wire};
// The Mitto-style stub speaks the simulated provider's own copy of the wire format, and a
// Twilio signature is computed by the simulator's own HMAC, not the engine's: a shared
// misreading of either would pass certification unseen.
use smsim_core::adapter::twilio::{self, wire as twilio_wire};
use smsim_core::adapter::{HttpRequest, HttpResponse, WebhookRequest};
use smsim_core::domain::report::ReportStatus;
use smsim_core::domain::ProviderKind;
use smsim_sim::provider::mitto;
use std::collections::BTreeMap;

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
        "mitto"
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
        format!("/2010-04-01/Accounts/{}/Messages.json", self.account_sid)
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
        "twilio"
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
        let form: twilio_wire::SendForm =
            serde_urlencoded::from_bytes(&request.body).map_err(|error| format!("unreadable send form: {error}"))?;
        if form.from.as_deref().unwrap_or("").is_empty() && form.messaging_service_sid.is_none() {
            return Err("neither From nor MessagingServiceSid".into());
        }
        Ok(vec![WireMessage {
            destination: form.to,
            sender: form.from,
            body: form.body,
            reference: form.status_callback.as_deref().and_then(|url| query_param(url, "message_id")),
            callback: form.status_callback,
            idempotency_key: None,
        }])
    }

    fn answer(&self, messages: &[WireMessage], verdicts: &[(usize, Verdict)]) -> HttpResponse {
        match verdicts.first() {
            None => json_response(201, &serde_json::json!({ "status": "queued" })),
            Some((index, Verdict::Accept { provider_id })) => {
                let message = &messages[*index];
                json_response(
                    201,
                    &twilio_wire::MessageResource {
                        sid: provider_id.clone(),
                        status: "queued".into(),
                        to: message.destination.clone(),
                        from: message.sender.clone(),
                        body: message.body.clone(),
                        error_code: None,
                        error_message: None,
                        num_segments: Some("1".into()),
                        price: None,
                        messaging_service_sid: None,
                    },
                )
            }
            Some((_, Verdict::Reject { code })) => {
                let status = if code == "20429" { 429 } else { 400 };
                let code = code.parse().unwrap_or(0);
                json_response(status, &twilio_wire::ErrorBody { code, message: format!("error {code}"), status })
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
        let callback = twilio_wire::StatusCallback {
            message_sid: report.provider_message_id.clone(),
            message_status: report.status.clone(),
            error_code: report.error_code.clone(),
            account_sid: Some(self.account_sid.clone()),
        };
        let body = serde_urlencoded::to_string(&callback).expect("callbacks serialise");
        let params: BTreeMap<String, String> =
            serde_urlencoded::from_str::<Vec<(String, String)>>(&body).expect("own form reads").into_iter().collect();
        let mut headers = BTreeMap::from([("content-type".to_owned(), "application/x-www-form-urlencoded".to_owned())]);
        match auth {
            Auth::Valid => {
                headers.insert(
                    twilio::SIGNATURE_HEADER.into(),
                    smsim_sim::provider::twilio::signature(&self.auth_token, &url, &params),
                );
            }
            Auth::Invalid => {
                headers.insert(
                    twilio::SIGNATURE_HEADER.into(),
                    smsim_sim::provider::twilio::signature("wrong-token", &url, &params),
                );
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
            return Some(json_response(401, &twilio_wire::ErrorBody { code: 20003, message: error, status: 401 }));
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
            .map(|known| twilio_wire::MessageResource {
                sid: known.provider_id.clone(),
                status: known.status.clone(),
                to: known.message.destination.clone(),
                from: known.message.sender.clone(),
                body: known.message.body.clone(),
                error_code: None,
                error_message: None,
                num_segments: Some("1".into()),
                price: None,
                messaging_service_sid: None,
            })
            .collect();
        let next_page_uri = (matching.len() > page + 1).then(|| {
            let mut query: Vec<(&str, String)> = Vec::new();
            query.extend(to.map(|to| ("To", to)));
            query.extend(from.map(|from| ("From", from)));
            query.push(("PageSize", "1".into()));
            query.push(("Page", (page + 1).to_string()));
            format!("{}?{}", self.messages_path(), serde_urlencoded::to_string(query).expect("query serialises"))
        });
        let list = twilio_wire::MessageList { messages, next_page_uri, page: page as u32, page_size: 1 };
        Some(json_response(200, &list))
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

    fn status(raw: &str) -> infobip_wire::Status {
        match infobip_wire::Group::ALL.into_iter().find(|group| group.name() == raw) {
            Some(group) => infobip_wire::Status::new(group, group.id() * 10, raw, "as documented"),
            None => infobip_wire::Status {
                group_id: 99,
                group_name: raw.to_owned(),
                id: 999,
                name: raw.to_owned(),
                description: "not documented".into(),
            },
        }
    }
}

impl ProviderProfile for InfobipProfile {
    fn name(&self) -> &str {
        "infobip"
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
        let send: infobip_wire::SendRequest =
            serde_json::from_slice(&request.body).map_err(|error| format!("unreadable send request: {error}"))?;
        let mut messages = Vec::new();
        for message in send.messages {
            if message.from.is_empty() {
                return Err("a message without `from`".into());
            }
            for destination in message.destinations {
                messages.push(WireMessage {
                    destination: destination.to,
                    sender: Some(message.from.clone()),
                    body: message.text.clone(),
                    reference: destination.message_id,
                    callback: message.notify_url.clone(),
                    idempotency_key: None,
                });
            }
        }
        Ok(messages)
    }

    fn answer(&self, messages: &[WireMessage], verdicts: &[(usize, Verdict)]) -> HttpResponse {
        let sent = verdicts
            .iter()
            .map(|(index, verdict)| {
                let message = &messages[*index];
                let (message_id, status) = match verdict {
                    Verdict::Accept { provider_id } => (
                        provider_id.clone(),
                        infobip_wire::Status::new(infobip_wire::Group::Pending, 26, "PENDING_ACCEPTED", "accepted"),
                    ),
                    Verdict::Reject { code } => (
                        message.reference.clone().unwrap_or_default(),
                        infobip_wire::Status::new(infobip_wire::Group::Rejected, 51, code, "refused"),
                    ),
                };
                infobip_wire::SentMessage { to: message.destination.clone(), message_id, status }
            })
            .collect();
        let bulk_id = format!("bulk-{}", messages.first().map_or("empty", |message| message.destination.as_str()));
        json_response(200, &infobip_wire::SendResponse { bulk_id: Some(bulk_id), messages: sent })
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
        let results = reports
            .iter()
            .map(|report| infobip_wire::DeliveryReport {
                bulk_id: None,
                message_id: report.provider_message_id.clone(),
                to: String::new(),
                sent_at: None,
                done_at: None,
                sms_count: Some(1),
                price: None,
                status: InfobipProfile::status(&report.status),
                error: report.error_code.as_ref().map(|code| infobip_wire::ReportError {
                    group_id: 1,
                    group_name: "HANDSET_ERRORS".into(),
                    id: 1,
                    name: code.clone(),
                    description: "as reported".into(),
                    permanent: true,
                }),
            })
            .collect();
        WebhookRequest {
            url,
            headers: BTreeMap::from([("content-type".to_owned(), "application/json".to_owned())]),
            body: serde_json::to_vec(&infobip_wire::DeliveryReports { results }).expect("reports serialise"),
        }
    }

    fn lookup_answer(&self, request: &HttpRequest, accepted: &[Accepted]) -> Option<HttpResponse> {
        if request.method != http::Method::GET || path_of(&request.url) != infobip::LOGS_PATH {
            return None;
        }
        if let Err(error) = self.authorised(request) {
            return Some(json_response(
                401,
                &serde_json::json!({ "requestError": { "serviceException": { "messageId": "UNAUTHORIZED", "text": error } } }),
            ));
        }
        let wanted = query_param(&request.url, "messageId");
        let results = accepted
            .iter()
            .filter(|known| known.provider_id.as_str() == wanted.as_deref().unwrap_or(""))
            .map(|known| infobip_wire::LogEntry {
                bulk_id: None,
                message_id: known.provider_id.clone(),
                to: known.message.destination.clone(),
                from: known.message.sender.clone(),
                text: Some(known.message.body.clone()),
                sent_at: None,
                done_at: None,
                sms_count: Some(1),
                price: None,
                status: infobip_wire::Status::new(infobip_wire::Group::Pending, 26, "PENDING_ACCEPTED", "accepted"),
                error: None,
            })
            .collect();
        Some(json_response(200, &infobip_wire::Logs { results }))
    }
}
