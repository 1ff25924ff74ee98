//! Mitto-style bulk adapter.
//!
//! One request carries up to [`CAPABILITIES`]`.max_batch` messages:
//! `POST {base}/api/v1.1/Messages/sendmessagesbulk` with header `X-Mitto-API-Key` and
//! body `{"messages":[{"trafficAccountId","destination","sms":{"text","sender"}}]}`. The
//! answer `{"bulkId","messages":[{"trafficAccountId","messageId"}]}` lists one entry per
//! request message *in the same order*; ids are mapped back by position, so an answer of
//! another length makes the whole request ambiguous — incident 003's system had to map
//! bulk ids back and a wrong guess sends the wrong report to the wrong message.
//!
//! A per-message entry may carry `error` instead of `messageId` (partial bulk failure);
//! its code is classified by [`classify_message_error`]. Delivery reports arrive as one
//! `{"messageId","deliveryStatus"}` object or an array of them; the webhook URL carries a
//! per-account secret (`?token=`), since the provider does not sign.

use super::common::{check_token_json_webhook, http_failure, is_json, redact, transport_outcomes};
use super::{
    credential, AdapterConfigError, Capabilities, HttpClient, HttpRequest, HttpResponse, LookupOutcome,
    OutboundMessage, ParsedReport, ProviderAdapter, ProviderFailure, SignatureScheme, SubmitOutcome, WebhookError,
    WebhookRequest,
};
use crate::domain::records::{ProviderKind, TrafficAccount};
use crate::domain::report::ReportStatus;
use crate::domain::retry::ErrorClass;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// What the Mitto-style adapter can do.
pub const CAPABILITIES: Capabilities = Capabilities {
    max_batch: 200,
    idempotency_keys: false,
    status_lookup: false,
    signature: SignatureScheme::UrlToken,
};

/// The path of the bulk send endpoint.
pub const SEND_PATH: &str = "/api/v1.1/Messages/sendmessagesbulk";

/// The header that carries the API key.
pub const API_KEY_HEADER: &str = "x-mitto-api-key";

/// The wire format as this adapter reads and writes it (the simulated provider keeps its
/// own copy, `smsim_sim::provider::mitto`, so the two do not share a misreading).
pub mod wire {
    use serde::{Deserialize, Serialize};

    /// A bulk send request.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct BulkRequest {
        /// The messages, in order.
        pub messages: Vec<BulkMessage>,
    }

    /// One message of a bulk request.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct BulkMessage {
        /// The provider-side traffic account.
        pub traffic_account_id: String,
        /// E.164 destination.
        pub destination: String,
        /// The message.
        pub sms: Sms,
    }

    /// Text and sender.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Sms {
        /// Body.
        pub text: String,
        /// Sender id.
        pub sender: String,
    }

    /// The answer to a bulk request.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct BulkResponse {
        /// The request's id.
        pub bulk_id: String,
        /// One entry per request message, in request order.
        pub messages: Vec<BulkResult>,
    }

    /// The outcome of one message of a bulk request.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct BulkResult {
        /// The provider-side traffic account.
        pub traffic_account_id: String,
        /// The provider's id, when accepted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub message_id: Option<String>,
        /// Why it was refused, when refused (partial bulk failure).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub error: Option<BulkError>,
    }

    /// A per-message refusal.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct BulkError {
        /// A code from [`super::classify_message_error`]'s table.
        pub code: String,
        /// A human-readable message.
        #[serde(default)]
        pub message: String,
    }

    /// A delivery report.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct DeliveryReport {
        /// The provider's id of the message.
        pub message_id: String,
        /// `Sent`, `Delivered` or `Failure`.
        pub delivery_status: String,
        /// An error code for failures.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub error_code: Option<String>,
    }

    /// A webhook body: one report or an array.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(untagged)]
    pub enum DeliveryReports {
        /// One report.
        One(DeliveryReport),
        /// Several.
        Many(Vec<DeliveryReport>),
    }
}

/// Whether a per-message error code of a bulk answer may go away by itself.
///
/// | code | meaning | class |
/// |---|---|---|
/// | `INVALID_DESTINATION`, `INVALID_NUMBER` | not a number | permanent |
/// | `BLOCKED`, `BLACKLISTED`, `OPTED_OUT` | destination refuses | permanent |
/// | `INVALID_SENDER`, `INVALID_TEXT` | request content | permanent |
/// | `THROTTLED`, `TEMPORARY`, `INTERNAL` | provider-side | retryable |
/// | anything else | unknown | permanent (never resend on a guess) |
pub fn classify_message_error(code: &str) -> ErrorClass {
    match code {
        "THROTTLED" | "TEMPORARY" | "INTERNAL" => ErrorClass::Retryable,
        _ => ErrorClass::Permanent,
    }
}

/// The Mitto-style adapter for one traffic account.
pub struct MittoAdapter {
    client: Arc<dyn HttpClient>,
    send_url: String,
    api_key: String,
    traffic_account_id: String,
    webhook_token: Option<String>,
}

impl fmt::Debug for MittoAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Credentials are deliberately left out.
        f.debug_struct("MittoAdapter")
            .field("send_url", &self.send_url)
            .field("traffic_account_id", &self.traffic_account_id)
            .finish()
    }
}

impl MittoAdapter {
    /// Builds the adapter for `account`: credentials `api_key` and `traffic_account_id`,
    /// and `webhook_token` for authenticating delivery reports.
    pub fn from_account(account: &TrafficAccount, client: Arc<dyn HttpClient>) -> Result<Self, AdapterConfigError> {
        Ok(MittoAdapter {
            client,
            send_url: format!("{}{SEND_PATH}", account.base_url.trim_end_matches('/')),
            api_key: credential(account, "api_key")?.to_owned(),
            traffic_account_id: credential(account, "traffic_account_id")?.to_owned(),
            webhook_token: account.credentials.get("webhook_token").filter(|token| !token.is_empty()).cloned(),
        })
    }

    async fn submit_one_request(&self, batch: &[OutboundMessage]) -> Vec<SubmitOutcome> {
        let request = wire::BulkRequest {
            messages: batch
                .iter()
                .map(|message| wire::BulkMessage {
                    traffic_account_id: self.traffic_account_id.clone(),
                    destination: message.destination.clone(),
                    sms: wire::Sms { text: message.body.clone(), sender: message.sender.clone() },
                })
                .collect(),
        };
        let body = serde_json::to_vec(&request).expect("bulk requests serialise");
        let headers = BTreeMap::from([
            (API_KEY_HEADER.to_owned(), self.api_key.clone()),
            ("content-type".to_owned(), "application/json".to_owned()),
            ("accept".to_owned(), "application/json".to_owned()),
        ]);
        let http =
            HttpRequest { method: http::Method::POST, url: self.send_url.clone(), headers, body: Bytes::from(body) };
        let outcomes = match self.client.send(http).await {
            Ok(response) => self.read_answer(batch.len(), &response),
            Err(error) => transport_outcomes(batch.len(), &error),
        };
        // A provider may echo the request, key included, in an error body.
        let webhook_token = self.webhook_token.as_deref().unwrap_or("");
        outcomes.into_iter().map(|outcome| redact(outcome, &[&self.api_key, webhook_token])).collect()
    }

    fn read_answer(&self, sent: usize, response: &HttpResponse) -> Vec<SubmitOutcome> {
        if !(200..300).contains(&response.status) {
            let failure = http_failure(response);
            return vec![SubmitOutcome::Failed(failure); sent];
        }
        // From here on the provider said yes to the request: whatever we cannot read, it
        // may have accepted, so every doubt is ambiguity, not failure.
        let ambiguous = |detail: String| vec![SubmitOutcome::Ambiguous { detail }; sent];
        if !is_json(response.header("content-type")) {
            return ambiguous(format!(
                "answer {} with content type {:?}, expected JSON",
                response.status,
                response.header("content-type")
            ));
        }
        let answer: wire::BulkResponse = match serde_json::from_slice(&response.body) {
            Ok(answer) => answer,
            Err(error) => return ambiguous(format!("unreadable bulk answer ({} bytes): {error}", response.body.len())),
        };
        if answer.messages.len() != sent {
            return ambiguous(format!(
                "bulk answer {} lists {} messages for {} sent; ids cannot be mapped by position",
                answer.bulk_id,
                answer.messages.len(),
                sent
            ));
        }
        let mut outcomes: Vec<SubmitOutcome> =
            answer.messages.into_iter().map(|result| self.outcome_of(result, &answer.bulk_id)).collect();
        if crate::incidents::active(crate::incidents::Bug::BulkIdsShifted) && outcomes.len() > 1 {
            // Incident 003: per-message ids mapped back to the wrong messages.
            outcomes.rotate_left(1);
        }
        outcomes
    }

    fn outcome_of(&self, result: wire::BulkResult, bulk_id: &str) -> SubmitOutcome {
        match (result.message_id, result.error) {
            (Some(id), None) if !id.is_empty() => {
                SubmitOutcome::Accepted { provider_message_id: id, bulk_id: Some(bulk_id.to_owned()) }
            }
            (None, Some(error)) => SubmitOutcome::Failed(ProviderFailure {
                retryable: classify_message_error(&error.code) == ErrorClass::Retryable,
                code: error.code,
                retry_after_ms: None,
                detail: error.message,
            }),
            _ => SubmitOutcome::Ambiguous {
                detail: format!("bulk answer {bulk_id} has an entry with neither or both of an id and an error"),
            },
        }
    }
}

/// The lattice status of a Mitto `deliveryStatus`.
pub fn report_status(raw: &str) -> ReportStatus {
    match raw {
        "Sent" => ReportStatus::Accepted,
        "Delivered" => ReportStatus::Delivered,
        "Failure" => ReportStatus::Undelivered,
        other => ReportStatus::Unrecognized(other.to_owned()),
    }
}

#[async_trait::async_trait]
impl ProviderAdapter for MittoAdapter {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Mitto
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

    async fn lookup(&self, _message: &OutboundMessage) -> LookupOutcome {
        LookupOutcome::Unavailable { detail: "status lookup not supported".into() }
    }

    fn parse_webhook(&self, request: &WebhookRequest) -> Result<Vec<ParsedReport>, WebhookError> {
        check_token_json_webhook(request, self.webhook_token.as_deref())?;
        let reports = match serde_json::from_slice::<wire::DeliveryReports>(&request.body) {
            Ok(wire::DeliveryReports::One(report)) => vec![report],
            Ok(wire::DeliveryReports::Many(reports)) => reports,
            Err(error) => return Err(WebhookError::Malformed(error.to_string())),
        };
        Ok(reports
            .into_iter()
            .map(|report| ParsedReport {
                status: report_status(&report.delivery_status),
                provider_message_id: report.message_id,
                message_ref: None,
                error_code: report.error_code,
            })
            .collect())
    }
}
