//! Certifying an adapter that lives outside smsim.
//!
//! `AcmeBulk` is written the way a third party would write it, in its own crate: a reseller
//! whose API is Mitto-compatible (the same bulk endpoint and reports), reached through the
//! `HttpClient` the engine hands it. Its own test certifies it with one call:
//!
//! ```text
//! #[test]
//! fn certified() {
//!     smsim_certify::assert_certified(&subject());
//! }
//! ```
//!
//! Run the example for the clause table: `cargo run --example certify_third_party`.
//! `cargo test` runs the test at the bottom too (the example is built with `test = true`).

use bytes::Bytes;
use smsim_certify::profiles::MittoProfile;
use smsim_certify::{self as certify, Options, Subject};
use smsim_core::adapter::mitto::wire;
use smsim_core::adapter::{
    AdapterConfigError, Capabilities, HttpClient, HttpRequest, LookupOutcome, OutboundMessage, ParsedReport,
    ProviderAdapter, ProviderFailure, SignatureScheme, SubmitOutcome, WebhookError, WebhookRequest,
    MAX_WEBHOOK_BODY_BYTES,
};
use smsim_core::domain::report::ReportStatus;
use smsim_core::domain::{ProviderKind, TrafficAccount};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

/// A Mitto-compatible bulk adapter, 50 messages per request.
struct AcmeBulk {
    client: Arc<dyn HttpClient>,
    url: String,
    key: String,
    account: String,
    token: String,
}

impl std::fmt::Debug for AcmeBulk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcmeBulk").field("url", &self.url).field("account", &self.account).finish_non_exhaustive()
    }
}

impl AcmeBulk {
    fn new(account: &TrafficAccount, client: Arc<dyn HttpClient>) -> Result<Self, AdapterConfigError> {
        let credential = |name: &str| {
            account.credentials.get(name).cloned().ok_or_else(|| AdapterConfigError {
                account: account.id.to_string(),
                message: format!("credential `{name}` is missing"),
            })
        };
        Ok(AcmeBulk {
            client,
            url: format!("{}/api/v1.1/Messages/sendmessagesbulk", account.base_url.trim_end_matches('/')),
            key: credential("api_key")?,
            account: credential("traffic_account_id")?,
            token: credential("webhook_token")?,
        })
    }

    fn clean(&self, text: String) -> String {
        text.replace(&self.key, "<key>").replace(&self.token, "<token>")
    }

    async fn send(&self, chunk: &[OutboundMessage]) -> Vec<SubmitOutcome> {
        let request = wire::BulkRequest {
            messages: chunk
                .iter()
                .map(|message| wire::BulkMessage {
                    traffic_account_id: self.account.clone(),
                    destination: message.destination.clone(),
                    sms: wire::Sms { text: message.body.clone(), sender: message.sender.clone() },
                })
                .collect(),
        };
        let headers = BTreeMap::from([
            ("x-mitto-api-key".to_owned(), self.key.clone()),
            ("content-type".to_owned(), "application/json".to_owned()),
        ]);
        let body = Bytes::from(serde_json::to_vec(&request).expect("requests serialise"));
        let http = HttpRequest { method: http::Method::POST, url: self.url.clone(), headers, body };
        let every = |outcome: SubmitOutcome| vec![outcome; chunk.len()];
        let response = match self.client.send(http).await {
            Ok(response) => response,
            // Never sent: safe to retry. Sent but unanswered: nobody knows.
            Err(error) if error.never_sent() => {
                return every(SubmitOutcome::Failed(ProviderFailure {
                    code: "NETWORK".into(),
                    retryable: true,
                    retry_after_ms: None,
                    detail: error.to_string(),
                }))
            }
            Err(error) => return every(SubmitOutcome::Ambiguous { detail: error.to_string() }),
        };
        if !(200..300).contains(&response.status) {
            return every(SubmitOutcome::Failed(ProviderFailure {
                code: format!("HTTP_{}", response.status),
                retryable: response.status == 429 || response.status >= 500,
                retry_after_ms: response.header("retry-after").and_then(|s| s.parse::<u64>().ok()).map(|s| s * 1000),
                detail: self.clean(String::from_utf8_lossy(&response.body).into_owned()),
            }));
        }
        let answer = match serde_json::from_slice::<wire::BulkResponse>(&response.body) {
            Ok(answer) if answer.messages.len() == chunk.len() => answer,
            Ok(_) => return every(SubmitOutcome::Ambiguous { detail: "answer of the wrong length".into() }),
            Err(error) => return every(SubmitOutcome::Ambiguous { detail: self.clean(error.to_string()) }),
        };
        answer
            .messages
            .into_iter()
            .map(|result| match (result.message_id, result.error) {
                (Some(id), None) => {
                    SubmitOutcome::Accepted { provider_message_id: id, bulk_id: Some(answer.bulk_id.clone()) }
                }
                (None, Some(error)) => SubmitOutcome::Failed(ProviderFailure {
                    retryable: matches!(error.code.as_str(), "THROTTLED" | "TEMPORARY" | "INTERNAL"),
                    code: error.code,
                    retry_after_ms: None,
                    detail: self.clean(error.message),
                }),
                _ => SubmitOutcome::Ambiguous { detail: "an entry with neither id nor error".into() },
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl ProviderAdapter for AcmeBulk {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Mitto
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_batch: 50,
            idempotency_keys: false,
            status_lookup: false,
            signature: SignatureScheme::UrlToken,
        }
    }

    async fn submit(&self, batch: &[OutboundMessage]) -> Vec<SubmitOutcome> {
        let mut outcomes = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(50) {
            outcomes.extend(self.send(chunk).await);
        }
        outcomes
    }

    async fn lookup(&self, _message: &OutboundMessage) -> LookupOutcome {
        LookupOutcome::Unavailable { detail: "no lookup".into() }
    }

    fn parse_webhook(&self, request: &WebhookRequest) -> Result<Vec<ParsedReport>, WebhookError> {
        let token = request
            .url
            .split_once('?')
            .and_then(|(_, query)| serde_urlencoded::from_str::<BTreeMap<String, String>>(query).ok())
            .and_then(|query| query.get("token").cloned())
            .ok_or(WebhookError::MissingSignature)?;
        if token != self.token {
            return Err(WebhookError::BadSignature);
        }
        if request.body.len() > MAX_WEBHOOK_BODY_BYTES {
            return Err(WebhookError::TooLarge { size: request.body.len(), limit: MAX_WEBHOOK_BODY_BYTES });
        }
        let content_type = request.headers.get("content-type").cloned().unwrap_or_default();
        if !content_type.starts_with("application/json") {
            return Err(WebhookError::ContentType(content_type));
        }
        let reports = match serde_json::from_slice(&request.body) {
            Ok(wire::DeliveryReports::One(report)) => vec![report],
            Ok(wire::DeliveryReports::Many(reports)) => reports,
            Err(error) => return Err(WebhookError::Malformed(error.to_string())),
        };
        Ok(reports
            .into_iter()
            .map(|report| ParsedReport {
                status: match report.delivery_status.as_str() {
                    "Sent" => ReportStatus::Accepted,
                    "Delivered" => ReportStatus::Delivered,
                    "Failure" => ReportStatus::Undelivered,
                    other => ReportStatus::Unrecognized(other.to_owned()),
                },
                provider_message_id: report.message_id,
                message_ref: None,
                error_code: report.error_code,
            })
            .collect())
    }
}

/// The adapter and the profile of the provider it speaks to.
fn subject() -> Subject {
    Subject::new("acme-bulk", MittoProfile::default(), |account, client, _webhook_base| {
        Ok(Arc::new(AcmeBulk::new(account, client)?) as Arc<dyn ProviderAdapter>)
    })
}

fn main() -> ExitCode {
    let report = certify::certify(&subject(), &Options::default());
    println!("{}", report.table());
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn certified() {
        smsim_certify::assert_certified(&super::subject());
    }
}
