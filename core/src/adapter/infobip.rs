//! Infobip-style bulk adapter.
//!
//! One request carries up to [`CAPABILITIES`]`.max_batch` messages:
//! `POST {base}/sms/2/text/advanced` with header `Authorization: App {api_key}` and body
//! `{"messages":[{"destinations":[{"to","messageId"}],"from","text","notifyUrl","notifyContentType"}]}`,
//! one entry per message, each carrying *our* message id as the client `messageId`. The
//! answer `{"bulkId","messages":[{"to","messageId","status":{…}}]}` echoes those ids, and its
//! order is not guaranteed, so outcomes are mapped back by id, never by position: a message
//! the answer leaves out, or lists twice, is ambiguous, and an id we did not send is
//! ignored (and named in the details). A status of group `REJECTED` is a permanent refusal
//! of that message; group `PENDING` (or any group of a message the provider has taken) is
//! an acceptance.
//!
//! Because the provider keys everything by our id, a delivery report names our message
//! directly (`message_ref`), and a status lookup (`GET {base}/sms/1/logs?messageId=…`) is
//! exact — unlike a lookup that must search by destination and body. Reports arrive as
//! `{"results":[…]}` with one or several results; the provider does not sign them, so the
//! `notifyUrl` we send carries a per-account secret (`?token=`), checked as for Mitto.

use super::common::{check_token_json_webhook, http_failure, is_json, redact, transport_outcomes};
use super::{
    credential, AdapterConfigError, Capabilities, HttpClient, HttpRequest, HttpResponse, LookupOutcome,
    OutboundMessage, ParsedReport, ProviderAdapter, ProviderFailure, SignatureScheme, SubmitOutcome, WebhookError,
    WebhookRequest,
};
use crate::domain::records::{ProviderKind, TrafficAccount};
use crate::domain::report::ReportStatus;
use crate::domain::retry::ErrorClass;
use crate::ids::MessageId;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// What the Infobip-style adapter can do.
///
/// The provider takes far more messages per request than 100; 100 keeps a request small
/// and bounds what one lost answer makes ambiguous (each such message then costs one exact
/// status lookup). Resubmitting the same `messageId` is not deduplicated by the provider,
/// so it is no idempotency key.
pub const CAPABILITIES: Capabilities =
    Capabilities { max_batch: 100, idempotency_keys: false, status_lookup: true, signature: SignatureScheme::UrlToken };

/// The path of the send endpoint.
pub const SEND_PATH: &str = "/sms/2/text/advanced";

/// The path of the message log endpoint used for status lookups.
pub const LOGS_PATH: &str = "/sms/1/logs";

/// The scheme of the `Authorization` header: `App {api_key}`.
pub const AUTHORIZATION_SCHEME: &str = "App";

/// The wire format, shared with the simulated provider.
pub mod wire {
    use serde::{Deserialize, Serialize};

    /// A send request.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct SendRequest {
        /// The client's id for the whole request; the provider makes one up when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub bulk_id: Option<String>,
        /// The messages.
        pub messages: Vec<Message>,
    }

    /// One message of a send request.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Message {
        /// Its destinations (the adapter sends exactly one per message).
        pub destinations: Vec<Destination>,
        /// Sender id or number.
        pub from: String,
        /// Body.
        pub text: String,
        /// Where delivery reports for it go.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub notify_url: Option<String>,
        /// The content type of those reports (`application/json`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub notify_content_type: Option<String>,
    }

    /// One destination of a message.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Destination {
        /// E.164 destination.
        pub to: String,
        /// The client's id of the message; the provider makes one up when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub message_id: Option<String>,
    }

    /// The answer to a send request.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct SendResponse {
        /// The request's id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub bulk_id: Option<String>,
        /// One entry per message, in no guaranteed order.
        pub messages: Vec<SentMessage>,
    }

    /// The outcome of one message of a send request.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct SentMessage {
        /// Destination (the provider may normalise it).
        #[serde(default)]
        pub to: String,
        /// The message's id: the client's, echoed.
        pub message_id: String,
        /// Its status: group `PENDING` when taken, `REJECTED` when refused.
        pub status: Status,
    }

    /// A message status: a stable group and a detailed status within it.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Status {
        /// The group's number (see [`Group`]).
        #[serde(default)]
        pub group_id: u32,
        /// The group's name: what the engine maps.
        pub group_name: String,
        /// The detailed status's number.
        #[serde(default)]
        pub id: u32,
        /// The detailed status's name (`PENDING_ACCEPTED`, `REJECTED_DESTINATION`, …).
        #[serde(default)]
        pub name: String,
        /// A human-readable description.
        #[serde(default)]
        pub description: String,
    }

    impl Status {
        /// A status of `group` with detail `id` and `name`.
        pub fn new(group: Group, id: u32, name: &str, description: &str) -> Status {
            Status {
                group_id: group.id(),
                group_name: group.name().to_owned(),
                id,
                name: name.to_owned(),
                description: description.to_owned(),
            }
        }
    }

    /// The documented status groups.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    pub enum Group {
        /// Taken, not yet final.
        Pending,
        /// Final: could not be delivered.
        Undeliverable,
        /// Final: delivered.
        Delivered,
        /// Final: validity ran out.
        Expired,
        /// Refused by the provider or the operator.
        Rejected,
    }

    impl Group {
        /// Every group.
        pub const ALL: [Group; 5] =
            [Group::Pending, Group::Undeliverable, Group::Delivered, Group::Expired, Group::Rejected];

        /// Its number on the wire.
        pub fn id(self) -> u32 {
            match self {
                Group::Pending => 1,
                Group::Undeliverable => 2,
                Group::Delivered => 3,
                Group::Expired => 4,
                Group::Rejected => 5,
            }
        }

        /// Its name on the wire.
        pub fn name(self) -> &'static str {
            match self {
                Group::Pending => "PENDING",
                Group::Undeliverable => "UNDELIVERABLE",
                Group::Delivered => "DELIVERED",
                Group::Expired => "EXPIRED",
                Group::Rejected => "REJECTED",
            }
        }
    }

    /// An error answer: `{"requestError":{"serviceException":{"messageId","text"}}}`.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ErrorBody {
        /// The error.
        pub request_error: RequestError,
    }

    /// The error of an error answer.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct RequestError {
        /// What the service refused.
        pub service_exception: ServiceException,
    }

    /// A refused request.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ServiceException {
        /// A code (`BAD_REQUEST`, `UNAUTHORIZED`, `TOO_MANY_REQUESTS`, …), despite its name.
        pub message_id: String,
        /// A human-readable message.
        #[serde(default)]
        pub text: String,
    }

    /// A price.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Price {
        /// Per message (part), as the provider's decimal number; kept as written so no
        /// float ever touches money.
        pub price_per_message: serde_json::Number,
        /// ISO currency.
        pub currency: String,
    }

    /// Why a message was not delivered (or `NO_ERROR`).
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ReportError {
        /// The error group's number.
        #[serde(default)]
        pub group_id: u32,
        /// The error group's name (`HANDSET_ERRORS`, `OK`, …).
        #[serde(default)]
        pub group_name: String,
        /// The error's number.
        #[serde(default)]
        pub id: u32,
        /// The error's name (`EC_ABSENT_SUBSCRIBER`, `NO_ERROR`, …).
        pub name: String,
        /// A human-readable description.
        #[serde(default)]
        pub description: String,
        /// Whether the error is permanent.
        #[serde(default)]
        pub permanent: bool,
    }

    /// One delivery report.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct DeliveryReport {
        /// The request's id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub bulk_id: Option<String>,
        /// The message's id (ours, echoed).
        pub message_id: String,
        /// Destination.
        #[serde(default)]
        pub to: String,
        /// When it was sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub sent_at: Option<String>,
        /// When it reached this status.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub done_at: Option<String>,
        /// Parts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub sms_count: Option<u32>,
        /// Price.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub price: Option<Price>,
        /// Status.
        pub status: Status,
        /// Error, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub error: Option<ReportError>,
    }

    /// A webhook body: `{"results":[…]}`, one report or several.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct DeliveryReports {
        /// The reports.
        pub results: Vec<DeliveryReport>,
    }

    /// One entry of the message log.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct LogEntry {
        /// The request's id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub bulk_id: Option<String>,
        /// The message's id.
        pub message_id: String,
        /// Destination.
        #[serde(default)]
        pub to: String,
        /// Sender.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub from: Option<String>,
        /// Body.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub text: Option<String>,
        /// When it was sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub sent_at: Option<String>,
        /// When it reached this status.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub done_at: Option<String>,
        /// Parts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub sms_count: Option<u32>,
        /// Price.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub price: Option<Price>,
        /// Status.
        pub status: Status,
        /// Error, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub error: Option<ReportError>,
    }

    /// The message log's answer.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Logs {
        /// Matching messages.
        pub results: Vec<LogEntry>,
    }
}

/// The lattice status of an Infobip status group.
///
/// | group | status |
/// |---|---|
/// | `PENDING` | accepted (intermediate) |
/// | `DELIVERED` | delivered |
/// | `UNDELIVERABLE` | undelivered |
/// | `EXPIRED` | expired |
/// | `REJECTED` | rejected |
/// | anything else | unrecognized: reported, never guessed |
pub fn report_status(group_name: &str) -> ReportStatus {
    match group_name {
        "PENDING" => ReportStatus::Accepted,
        "DELIVERED" => ReportStatus::Delivered,
        "UNDELIVERABLE" => ReportStatus::Undelivered,
        "EXPIRED" => ReportStatus::Expired,
        "REJECTED" => ReportStatus::Rejected,
        other => ReportStatus::Unrecognized(other.to_owned()),
    }
}

/// Whether the code of an error answer (`serviceException.messageId`) may go away by itself.
///
/// | code | class |
/// |---|---|
/// | `TOO_MANY_REQUESTS`, `GENERAL_ERROR`, `SERVICE_UNAVAILABLE`, `INTERNAL_SERVER_ERROR` | retryable |
/// | `BAD_REQUEST`, `UNAUTHORIZED`, `FORBIDDEN`, `NOT_FOUND`, anything else | permanent (never resend on a guess) |
///
/// The HTTP status decides as well: a 429 or 5xx is retryable whatever the code says.
pub fn classify_service_exception(code: &str) -> ErrorClass {
    match code {
        "TOO_MANY_REQUESTS" | "GENERAL_ERROR" | "SERVICE_UNAVAILABLE" | "INTERNAL_SERVER_ERROR" => {
            ErrorClass::Retryable
        }
        _ => ErrorClass::Permanent,
    }
}

/// The Infobip-style adapter for one traffic account.
pub struct InfobipAdapter {
    client: Arc<dyn HttpClient>,
    base_url: String,
    api_key: String,
    webhook_token: Option<String>,
    notify_url: Option<String>,
}

impl fmt::Debug for InfobipAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Credentials, and the notify URL that carries the webhook token, are left out.
        f.debug_struct("InfobipAdapter").field("base_url", &self.base_url).finish()
    }
}

impl InfobipAdapter {
    /// Builds the adapter for `account`: credential `api_key`, and `webhook_token` for
    /// authenticating delivery reports. Reports are requested at
    /// `{webhook_base_url}/v1/webhooks/infobip/{account id}?token={webhook_token}`; without
    /// a webhook token none are requested (and any that arrive are refused), so the
    /// account relies on status lookups alone.
    pub fn from_account(
        account: &TrafficAccount,
        client: Arc<dyn HttpClient>,
        webhook_base_url: &str,
    ) -> Result<Self, AdapterConfigError> {
        let webhook_token = account.credentials.get("webhook_token").filter(|token| !token.is_empty()).cloned();
        let notify_url = webhook_token.as_ref().map(|token| {
            let query = serde_urlencoded::to_string([("token", token.as_str())]).expect("a query serialises");
            format!("{}/v1/webhooks/infobip/{}?{query}", webhook_base_url.trim_end_matches('/'), account.id)
        });
        Ok(InfobipAdapter {
            client,
            base_url: account.base_url.trim_end_matches('/').to_owned(),
            api_key: credential(account, "api_key")?.to_owned(),
            webhook_token,
            notify_url,
        })
    }

    fn headers(&self, content_type: Option<&str>) -> BTreeMap<String, String> {
        let mut headers = BTreeMap::from([
            ("authorization".to_owned(), format!("{AUTHORIZATION_SCHEME} {}", self.api_key)),
            ("accept".to_owned(), "application/json".to_owned()),
        ]);
        if let Some(content_type) = content_type {
            headers.insert("content-type".to_owned(), content_type.to_owned());
        }
        headers
    }

    /// The secrets that must never appear in an outcome's detail.
    fn secrets(&self) -> Vec<&str> {
        let mut secrets = vec![self.api_key.as_str()];
        secrets.extend(self.webhook_token.as_deref());
        secrets
    }

    fn send_request(&self, batch: &[OutboundMessage]) -> wire::SendRequest {
        wire::SendRequest {
            bulk_id: None,
            messages: batch
                .iter()
                .map(|message| {
                    let notify_url = message.status_callback_url.clone().or_else(|| self.notify_url.clone());
                    wire::Message {
                        destinations: vec![wire::Destination {
                            to: message.destination.clone(),
                            message_id: Some(message.id.to_string()),
                        }],
                        from: message.sender.clone(),
                        text: message.body.clone(),
                        notify_content_type: notify_url.is_some().then(|| "application/json".to_owned()),
                        notify_url,
                    }
                })
                .collect(),
        }
    }

    async fn submit_one_request(&self, batch: &[OutboundMessage]) -> Vec<SubmitOutcome> {
        let body = serde_json::to_vec(&self.send_request(batch)).expect("send requests serialise");
        let request = HttpRequest {
            method: http::Method::POST,
            url: format!("{}{SEND_PATH}", self.base_url),
            headers: self.headers(Some("application/json")),
            body: Bytes::from(body),
        };
        let outcomes = match self.client.send(request).await {
            Ok(response) => read_answer(batch, &response),
            Err(error) => transport_outcomes(batch.len(), &error),
        };
        // A provider may echo the request, credentials included, in an error body.
        let secrets = self.secrets();
        outcomes.into_iter().map(|outcome| redact(outcome, &secrets)).collect()
    }
}

/// The failure every message of a refused request gets: the HTTP status classifies it, an
/// Infobip error body names it.
fn request_failure(response: &HttpResponse) -> ProviderFailure {
    let failure = http_failure(response);
    match serde_json::from_slice::<wire::ErrorBody>(&response.body) {
        Ok(error) => {
            let exception = error.request_error.service_exception;
            ProviderFailure {
                retryable: failure.retryable
                    || classify_service_exception(&exception.message_id) == ErrorClass::Retryable,
                detail: format!("provider answered {}: {}", response.status, exception.text),
                code: exception.message_id,
                retry_after_ms: failure.retry_after_ms,
            }
        }
        Err(_) => failure,
    }
}

/// The outcomes of `batch` from the provider's answer to it.
fn read_answer(batch: &[OutboundMessage], response: &HttpResponse) -> Vec<SubmitOutcome> {
    if !(200..300).contains(&response.status) {
        return vec![SubmitOutcome::Failed(request_failure(response)); batch.len()];
    }
    // From here on the provider said yes to the request: whatever we cannot read, it may
    // have accepted, so every doubt is ambiguity, not failure.
    let ambiguous = |detail: String| vec![SubmitOutcome::Ambiguous { detail }; batch.len()];
    if !is_json(response.header("content-type")) {
        return ambiguous(format!(
            "answer {} with content type {:?}, expected JSON",
            response.status,
            response.header("content-type")
        ));
    }
    match serde_json::from_slice::<wire::SendResponse>(&response.body) {
        Ok(answer) => outcomes_by_id(batch, answer),
        Err(error) => ambiguous(format!("unreadable send answer ({} bytes): {error}", response.body.len())),
    }
}

/// Maps an answer onto `batch` by message id. Order means nothing: the answer may list the
/// messages in any order, and mapping by position is how incident 003 put ids on the
/// wrong messages.
fn outcomes_by_id(batch: &[OutboundMessage], answer: wire::SendResponse) -> Vec<SubmitOutcome> {
    let bulk_id = answer.bulk_id.filter(|id| !id.is_empty());
    let ours: BTreeMap<String, usize> =
        batch.iter().enumerate().map(|(index, message)| (message.id.to_string(), index)).collect();
    let mut listed: BTreeMap<String, Vec<wire::SentMessage>> = BTreeMap::new();
    let mut strangers = Vec::new();
    for entry in answer.messages {
        if ours.contains_key(&entry.message_id) {
            listed.entry(entry.message_id.clone()).or_default().push(entry);
        } else {
            strangers.push(entry.message_id);
        }
    }
    let note = if strangers.is_empty() {
        String::new()
    } else {
        tracing::warn!(bulk_id = ?bulk_id, strangers = ?strangers, "send answer lists ids that were not sent");
        format!("; the answer also lists ids that were not sent: {}", strangers.join(", "))
    };
    let answer_name = bulk_id.as_deref().unwrap_or("without a bulk id");
    batch
        .iter()
        .map(|message| {
            let id = message.id.to_string();
            match listed.get(&id).map(Vec::as_slice) {
                Some([entry]) => outcome_of(entry, bulk_id.as_deref()),
                Some(entries) => SubmitOutcome::Ambiguous {
                    detail: format!("answer {answer_name} lists {id} {} times{note}", entries.len()),
                },
                None => SubmitOutcome::Ambiguous { detail: format!("answer {answer_name} does not list {id}{note}") },
            }
        })
        .collect()
}

/// The outcome of one answer entry.
fn outcome_of(entry: &wire::SentMessage, bulk_id: Option<&str>) -> SubmitOutcome {
    match report_status(&entry.status.group_name) {
        // The provider refused this message: it was never sent. Whatever detailed reason
        // (`REJECTED_DESTINATION`, `REJECTED_NOT_ENOUGH_CREDITS`, …) it will refuse again.
        ReportStatus::Rejected => SubmitOutcome::Failed(ProviderFailure {
            code: if entry.status.name.is_empty() { "REJECTED".to_owned() } else { entry.status.name.clone() },
            retryable: false,
            retry_after_ms: None,
            detail: entry.status.description.clone(),
        }),
        ReportStatus::Unrecognized(group) => SubmitOutcome::Ambiguous {
            detail: format!(
                "{}: status group `{group}` ({}) is not one the adapter knows",
                entry.message_id, entry.status.name
            ),
        },
        // Pending, or already final: either way the provider has taken it.
        _ => SubmitOutcome::Accepted {
            provider_message_id: entry.message_id.clone(),
            bulk_id: bulk_id.map(str::to_owned),
        },
    }
}

/// The parsed form of one delivery report.
fn parsed(report: wire::DeliveryReport) -> ParsedReport {
    ParsedReport {
        status: report_status(&report.status.group_name),
        message_ref: report.message_id.parse::<MessageId>().ok(),
        error_code: error_code(report.error),
        provider_message_id: report.message_id,
    }
}

/// The error code of a report's or a log entry's error: its name, unless it says none.
fn error_code(error: Option<wire::ReportError>) -> Option<String> {
    error.map(|error| error.name).filter(|name| !name.is_empty() && name != "NO_ERROR")
}

#[async_trait::async_trait]
impl ProviderAdapter for InfobipAdapter {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Infobip
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn submit(&self, batch: &[OutboundMessage]) -> Vec<SubmitOutcome> {
        let mut outcomes = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(CAPABILITIES.max_batch as usize) {
            outcomes.extend(self.submit_one_request(chunk).await);
        }
        outcomes
    }

    /// Asks the message log for our id. An entry of group `REJECTED` is a message the
    /// provider refused: it never sent it, so for the engine it is not there (and is
    /// settled as not accepted once the lookup grace has passed).
    async fn lookup(&self, message: &OutboundMessage) -> LookupOutcome {
        let id = message.id.to_string();
        let query = serde_urlencoded::to_string([("messageId", id.as_str())]).expect("a query serialises");
        let request = HttpRequest {
            method: http::Method::GET,
            url: format!("{}{LOGS_PATH}?{query}", self.base_url),
            headers: self.headers(None),
            body: Bytes::new(),
        };
        let response = match self.client.send(request).await {
            Ok(response) if (200..300).contains(&response.status) => response,
            Ok(response) => {
                return LookupOutcome::Unavailable { detail: format!("lookup answered {}", response.status) }
            }
            Err(error) => return LookupOutcome::Unavailable { detail: error.to_string() },
        };
        let logs = match serde_json::from_slice::<wire::Logs>(&response.body) {
            Ok(logs) => logs,
            Err(error) => return LookupOutcome::Unavailable { detail: format!("unreadable lookup answer: {error}") },
        };
        // A log that ignored the filter must not lend us another message's status.
        let found = logs
            .results
            .into_iter()
            .filter(|entry| entry.message_id == id)
            .map(|entry| (report_status(&entry.status.group_name), error_code(entry.error)))
            .find(|(status, _)| *status != ReportStatus::Rejected);
        match found {
            Some((status, error_code)) => {
                LookupOutcome::Accepted { provider_message_id: id, status: Some(status), error_code }
            }
            None => LookupOutcome::NotFound,
        }
    }

    fn parse_webhook(&self, request: &WebhookRequest) -> Result<Vec<ParsedReport>, WebhookError> {
        check_token_json_webhook(request, self.webhook_token.as_deref())?;
        let reports = serde_json::from_slice::<wire::DeliveryReports>(&request.body)
            .map_err(|error| WebhookError::Malformed(error.to_string()))?;
        Ok(reports.results.into_iter().map(parsed).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CampaignId, ContactId};

    fn message(contact: u64) -> OutboundMessage {
        OutboundMessage {
            id: MessageId::new(CampaignId(1), ContactId(contact)),
            destination: format!("+4179300{contact:04}"),
            sender: "SMSIM".into(),
            body: format!("hello {contact}"),
            status_callback_url: None,
        }
    }

    fn entry(id: &str, group: wire::Group, name: &str) -> wire::SentMessage {
        wire::SentMessage {
            to: "+41793000001".into(),
            message_id: id.into(),
            status: wire::Status::new(group, 0, name, ""),
        }
    }

    fn answer(entries: Vec<wire::SentMessage>) -> wire::SendResponse {
        wire::SendResponse { bulk_id: Some("bulk-1".into()), messages: entries }
    }

    #[test]
    fn every_documented_group_maps_onto_the_lattice() {
        for (group, status) in [
            (wire::Group::Pending, ReportStatus::Accepted),
            (wire::Group::Delivered, ReportStatus::Delivered),
            (wire::Group::Undeliverable, ReportStatus::Undelivered),
            (wire::Group::Expired, ReportStatus::Expired),
            (wire::Group::Rejected, ReportStatus::Rejected),
        ] {
            assert_eq!(report_status(group.name()), status, "{group:?}");
        }
        assert_eq!(wire::Group::ALL.map(wire::Group::id), [1, 2, 3, 4, 5]);
        // Detailed status names and unknown groups are reported as they are, never guessed.
        for raw in ["DELIVERED_TO_HANDSET", "delivered", "TELEPORTED", ""] {
            assert_eq!(report_status(raw), ReportStatus::Unrecognized(raw.into()), "{raw}");
        }
    }

    #[test]
    fn service_exceptions_are_classified() {
        for code in ["TOO_MANY_REQUESTS", "GENERAL_ERROR", "SERVICE_UNAVAILABLE", "INTERNAL_SERVER_ERROR"] {
            assert_eq!(classify_service_exception(code), ErrorClass::Retryable, "{code}");
        }
        for code in ["BAD_REQUEST", "UNAUTHORIZED", "FORBIDDEN", "NOT_FOUND", "SOMETHING_NEW"] {
            assert_eq!(classify_service_exception(code), ErrorClass::Permanent, "{code}");
        }
    }

    #[test]
    fn answers_are_mapped_by_id_whatever_their_order() {
        let batch = [message(1), message(2), message(3)];
        let reversed = answer(vec![
            entry("msg_1_3", wire::Group::Pending, "PENDING_ACCEPTED"),
            entry("msg_1_2", wire::Group::Rejected, "REJECTED_DESTINATION"),
            entry("msg_1_1", wire::Group::Pending, "PENDING_ACCEPTED"),
        ]);
        let outcomes = outcomes_by_id(&batch, reversed);
        assert_eq!(
            outcomes[0],
            SubmitOutcome::Accepted { provider_message_id: "msg_1_1".into(), bulk_id: Some("bulk-1".into()) }
        );
        assert!(
            matches!(&outcomes[1], SubmitOutcome::Failed(f) if f.code == "REJECTED_DESTINATION" && !f.retryable),
            "{outcomes:?}"
        );
        assert_eq!(
            outcomes[2],
            SubmitOutcome::Accepted { provider_message_id: "msg_1_3".into(), bulk_id: Some("bulk-1".into()) }
        );
    }

    #[test]
    fn missing_twice_listed_and_strange_entries_are_never_guessed() {
        let batch = [message(1), message(2), message(3)];
        let odd = answer(vec![
            entry("msg_1_2", wire::Group::Pending, "PENDING_ACCEPTED"),
            entry("msg_9_9", wire::Group::Pending, "PENDING_ACCEPTED"),
            entry("msg_1_2", wire::Group::Pending, "PENDING_ACCEPTED"),
            entry("msg_1_3", wire::Group::Pending, "PENDING_ACCEPTED"),
        ]);
        let outcomes = outcomes_by_id(&batch, odd);
        let SubmitOutcome::Ambiguous { detail } = &outcomes[0] else { panic!("{outcomes:?}") };
        assert!(detail.contains("does not list msg_1_1") && detail.contains("msg_9_9"), "{detail}");
        let SubmitOutcome::Ambiguous { detail } = &outcomes[1] else { panic!("{outcomes:?}") };
        assert!(detail.contains("lists msg_1_2 2 times"), "{detail}");
        assert!(
            matches!(&outcomes[2], SubmitOutcome::Accepted { provider_message_id, .. } if provider_message_id == "msg_1_3")
        );
    }

    #[test]
    fn an_unknown_status_group_in_the_answer_is_ambiguous() {
        let outcomes =
            outcomes_by_id(&[message(1)], answer(vec![entry("msg_1_1", wire::Group::Pending, "PENDING_ACCEPTED")]));
        assert!(matches!(outcomes[0], SubmitOutcome::Accepted { .. }));
        let mut strange = entry("msg_1_1", wire::Group::Pending, "QUEUED_SOMEWHERE");
        strange.status.group_name = "LIMBO".into();
        let outcomes = outcomes_by_id(&[message(1)], answer(vec![strange]));
        assert!(
            matches!(&outcomes[0], SubmitOutcome::Ambiguous { detail } if detail.contains("LIMBO")),
            "{outcomes:?}"
        );
    }

    #[test]
    fn error_bodies_name_the_failure_and_status_decides_retry() {
        let body = |code: &str| {
            Bytes::from(format!(r#"{{"requestError":{{"serviceException":{{"messageId":"{code}","text":"no"}}}}}}"#))
        };
        let response = |status: u16, body: Bytes| HttpResponse { status, headers: BTreeMap::new(), body };
        let failure = request_failure(&response(400, body("BAD_REQUEST")));
        assert_eq!((failure.code.as_str(), failure.retryable), ("BAD_REQUEST", false));
        let failure = request_failure(&response(401, body("UNAUTHORIZED")));
        assert_eq!((failure.code.as_str(), failure.retryable), ("UNAUTHORIZED", false));
        let failure = request_failure(&response(503, body("BAD_REQUEST")));
        assert_eq!((failure.code.as_str(), failure.retryable), ("BAD_REQUEST", true));
        let failure = request_failure(&response(500, Bytes::from_static(b"oops")));
        assert_eq!((failure.code.as_str(), failure.retryable), ("HTTP_500", true));
    }

    #[test]
    fn reports_name_our_message_and_skip_no_error() {
        let report = |status: wire::Status, error: Option<&str>| wire::DeliveryReport {
            bulk_id: None,
            message_id: "msg_1_7".into(),
            to: "+41793000007".into(),
            sent_at: None,
            done_at: None,
            sms_count: Some(1),
            price: None,
            status,
            error: error.map(|name| wire::ReportError {
                group_id: 0,
                group_name: "OK".into(),
                id: 0,
                name: name.into(),
                description: String::new(),
                permanent: false,
            }),
        };
        let delivered =
            parsed(report(wire::Status::new(wire::Group::Delivered, 5, "DELIVERED_TO_HANDSET", ""), Some("NO_ERROR")));
        assert_eq!(delivered.message_ref, Some(MessageId::new(CampaignId(1), ContactId(7))));
        assert_eq!((delivered.provider_message_id.as_str(), delivered.error_code), ("msg_1_7", None));
        let failed = parsed(report(
            wire::Status::new(wire::Group::Undeliverable, 9, "UNDELIVERABLE_NOT_DELIVERED", ""),
            Some("EC_ABSENT_SUBSCRIBER"),
        ));
        assert_eq!(
            (failed.status, failed.error_code.as_deref()),
            (ReportStatus::Undelivered, Some("EC_ABSENT_SUBSCRIBER"))
        );
        let mut foreign = report(wire::Status::new(wire::Group::Delivered, 5, "DELIVERED_TO_HANDSET", ""), None);
        foreign.message_id = "2033247207850523791".into();
        assert_eq!(parsed(foreign).message_ref, None, "an id that is not ours names no message of ours");
    }
}
