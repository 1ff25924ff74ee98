//! Twilio-style single adapter.
//!
//! One request per message: `POST {base}/2010-04-01/Accounts/{Sid}/Messages.json`, basic
//! auth with the account SID and auth token, form fields `To`, `From` (or
//! `MessagingServiceSid`), `Body`, `StatusCallback`. The status callback URL names our
//! message (`?message_id=msg_…`), so a callback resolves a submission whose answer was
//! lost. Callbacks are form-encoded and signed with `X-Twilio-Signature`; Twilio says they
//! may arrive out of order and more than once, which the store's report rule absorbs.
//!
//! Status lookup lists the account's messages to the destination from our sender and
//! picks the one whose body is ours — the only handle an ambiguous submission has, since
//! its SID never reached us.

use super::common::{constant_time_eq, http_failure, is_json, query_param, redact, transport_outcomes};
use super::{
    credential, AdapterConfigError, Capabilities, HttpClient, HttpRequest, HttpResponse, LookupOutcome,
    OutboundMessage, ParsedReport, ProviderAdapter, ProviderFailure, SignatureScheme, SubmitOutcome, WebhookError,
    WebhookRequest, MAX_WEBHOOK_BODY_BYTES,
};
use crate::domain::records::{ProviderKind, TrafficAccount};
use crate::domain::report::ReportStatus;
use crate::ids::MessageId;
use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// What the Twilio-style adapter can do.
pub const CAPABILITIES: Capabilities = Capabilities {
    max_batch: 1,
    idempotency_keys: false,
    status_lookup: true,
    signature: SignatureScheme::TwilioHmacSha1,
};

/// Pages a status lookup reads at most before it gives up undecided.
pub const LOOKUP_PAGES: usize = 20;

/// Messages per page a status lookup asks for (Twilio allows up to 1 000).
pub const LOOKUP_PAGE_SIZE: u32 = 100;

/// The header that carries a callback's signature.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// The wire format, shared with the simulated provider.
pub mod wire {
    use serde::{Deserialize, Serialize};

    /// The form fields of a send request.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct SendForm {
        /// E.164 destination.
        #[serde(rename = "To")]
        pub to: String,
        /// Sender number or id (absent when a messaging service is used).
        #[serde(rename = "From", default, skip_serializing_if = "Option::is_none")]
        pub from: Option<String>,
        /// Messaging service (instead of `From`).
        #[serde(rename = "MessagingServiceSid", default, skip_serializing_if = "Option::is_none")]
        pub messaging_service_sid: Option<String>,
        /// Body.
        #[serde(rename = "Body")]
        pub body: String,
        /// Where status callbacks go.
        #[serde(rename = "StatusCallback", default, skip_serializing_if = "Option::is_none")]
        pub status_callback: Option<String>,
    }

    /// A message resource, as the send answer and the list endpoint return it.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct MessageResource {
        /// The message SID (`SM…`).
        pub sid: String,
        /// `queued`, `sent`, `delivered`, …
        pub status: String,
        /// Destination.
        #[serde(default)]
        pub to: String,
        /// Sender.
        #[serde(default)]
        pub from: Option<String>,
        /// Body.
        #[serde(default)]
        pub body: String,
        /// Error code, if failed.
        #[serde(default)]
        pub error_code: Option<i64>,
        /// Error message, if failed.
        #[serde(default)]
        pub error_message: Option<String>,
        /// Segments, as a decimal string.
        #[serde(default)]
        pub num_segments: Option<String>,
        /// Price, as a decimal string (negative).
        #[serde(default)]
        pub price: Option<String>,
        /// The messaging service that sent it, if one did (its sender then comes from the
        /// service's pool, not from us).
        #[serde(default)]
        pub messaging_service_sid: Option<String>,
    }

    /// The list endpoint's answer: one page.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct MessageList {
        /// Matching messages on this page, newest first.
        pub messages: Vec<MessageResource>,
        /// The next page, as a path from the API's root (`/2010-04-01/…`); absent or null
        /// on the last page.
        #[serde(default)]
        pub next_page_uri: Option<String>,
        /// This page's number, from 0.
        #[serde(default)]
        pub page: u32,
        /// Messages per page.
        #[serde(default)]
        pub page_size: u32,
    }

    /// An error answer.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ErrorBody {
        /// Twilio error code (21211 invalid `To`, 21610 unsubscribed, …).
        pub code: i64,
        /// Message.
        pub message: String,
        /// HTTP status.
        pub status: u16,
    }

    /// The form fields of a status callback (those the engine reads).
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    pub struct StatusCallback {
        /// The message SID.
        #[serde(rename = "MessageSid")]
        pub message_sid: String,
        /// Its status.
        #[serde(rename = "MessageStatus")]
        pub message_status: String,
        /// Error code, for failures.
        #[serde(rename = "ErrorCode", default, skip_serializing_if = "Option::is_none")]
        pub error_code: Option<String>,
        /// The account.
        #[serde(rename = "AccountSid", default, skip_serializing_if = "Option::is_none")]
        pub account_sid: Option<String>,
    }
}

/// Twilio's request signature: base64 HMAC-SHA1 over the URL followed by every POST
/// parameter's name and value, sorted by name.
pub fn twilio_signature(auth_token: &str, url: &str, params: &BTreeMap<String, String>) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(url.as_bytes());
    for (name, value) in params {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// `url` as written, with its scheme's default port added when it names none, and without
/// its port when it names one (any port: a proxy in front of the engine may listen on
/// another than Twilio called): Twilio's official validator (twilio-python's
/// `RequestValidator.validate`) accepts a signature computed over any of these.
pub fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else { return variants };
    let default_port = match scheme {
        "https" => "443",
        "http" => "80",
        _ => return variants,
    };
    let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => (format!("{userinfo}@"), host_port),
        None => (String::new(), authority),
    };
    let other = match host_port.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{scheme}://{userinfo}{host}{tail}")
        }
        Some(_) => return variants,
        None => format!("{scheme}://{userinfo}{host_port}:{default_port}{tail}"),
    };
    variants.push(other);
    variants
}

/// The lattice status of a Twilio message status.
///
/// `failed` (Twilio could not send) and `canceled` are final refusals: `rejected`.
pub fn report_status(raw: &str) -> ReportStatus {
    match raw {
        // `partially_delivered`: not every part has arrived yet; a final status follows.
        "accepted" | "scheduled" | "queued" | "sending" | "sent" | "partially_delivered" => ReportStatus::Accepted,
        "delivered" | "read" => ReportStatus::Delivered,
        "undelivered" => ReportStatus::Undelivered,
        "failed" | "canceled" => ReportStatus::Rejected,
        other => ReportStatus::Unrecognized(other.to_owned()),
    }
}

/// Whether a Twilio error code is worth another attempt.
///
/// 20429 (too many requests) and 30001 (queue overflow) are; invalid or unsubscribed
/// destinations (21211, 21610, 21614, 21408) and every other code are not.
pub fn is_retryable_code(code: i64) -> bool {
    matches!(code, 20429 | 30001)
}

/// The Twilio-style adapter for one traffic account.
pub struct TwilioAdapter {
    client: Arc<dyn HttpClient>,
    base_url: String,
    account_sid: String,
    auth_token: String,
    messaging_service_sid: Option<String>,
    callback_base: String,
}

impl fmt::Debug for TwilioAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The auth token is deliberately left out.
        f.debug_struct("TwilioAdapter")
            .field("base_url", &self.base_url)
            .field("account_sid", &self.account_sid)
            .finish()
    }
}

impl TwilioAdapter {
    /// Builds the adapter for `account`: credentials `account_sid`, `auth_token` and
    /// optionally `messaging_service_sid`; callbacks go to
    /// `{webhook_base_url}/v1/webhooks/twilio/{account id}`.
    pub fn from_account(
        account: &TrafficAccount,
        client: Arc<dyn HttpClient>,
        webhook_base_url: &str,
    ) -> Result<Self, AdapterConfigError> {
        Ok(TwilioAdapter {
            client,
            base_url: account.base_url.trim_end_matches('/').to_owned(),
            account_sid: credential(account, "account_sid")?.to_owned(),
            auth_token: credential(account, "auth_token")?.to_owned(),
            messaging_service_sid: account
                .credentials
                .get("messaging_service_sid")
                .filter(|sid| !sid.is_empty())
                .cloned(),
            callback_base: format!("{}/v1/webhooks/twilio/{}", webhook_base_url.trim_end_matches('/'), account.id),
        })
    }

    fn messages_url(&self) -> String {
        format!("{}/2010-04-01/Accounts/{}/Messages.json", self.base_url, self.account_sid)
    }

    fn headers(&self, content_type: Option<&str>) -> BTreeMap<String, String> {
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", self.account_sid, self.auth_token));
        let mut headers = BTreeMap::from([
            ("authorization".to_owned(), format!("Basic {credentials}")),
            ("accept".to_owned(), "application/json".to_owned()),
        ]);
        if let Some(content_type) = content_type {
            headers.insert("content-type".to_owned(), content_type.to_owned());
        }
        headers
    }

    async fn submit_one(&self, message: &OutboundMessage) -> SubmitOutcome {
        let callback = message
            .status_callback_url
            .clone()
            .unwrap_or_else(|| format!("{}?message_id={}", self.callback_base, message.id));
        let form = wire::SendForm {
            to: message.destination.clone(),
            from: self.messaging_service_sid.is_none().then(|| message.sender.clone()),
            messaging_service_sid: self.messaging_service_sid.clone(),
            body: message.body.clone(),
            status_callback: Some(callback),
        };
        let body = serde_urlencoded::to_string(&form).expect("send forms serialise");
        let request = HttpRequest {
            method: http::Method::POST,
            url: self.messages_url(),
            headers: self.headers(Some("application/x-www-form-urlencoded")),
            body: Bytes::from(body),
        };
        let outcome = match self.client.send(request).await {
            Ok(response) => read_answer(&response),
            Err(error) => transport_outcomes(1, &error).remove(0),
        };
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", self.account_sid, self.auth_token));
        redact(outcome, &[&self.auth_token, &basic])
    }
}

/// The outcome of one send answer.
fn read_answer(response: &HttpResponse) -> SubmitOutcome {
    if !(200..300).contains(&response.status) {
        let mut failure = http_failure(response);
        if let Ok(error) = serde_json::from_slice::<wire::ErrorBody>(&response.body) {
            failure = ProviderFailure {
                code: error.code.to_string(),
                retryable: failure.retryable || is_retryable_code(error.code),
                retry_after_ms: failure.retry_after_ms,
                detail: error.message,
            };
        }
        return SubmitOutcome::Failed(failure);
    }
    if !is_json(response.header("content-type")) {
        return SubmitOutcome::Ambiguous {
            detail: format!(
                "answer {} with content type {:?}, expected JSON",
                response.status,
                response.header("content-type")
            ),
        };
    }
    match serde_json::from_slice::<wire::MessageResource>(&response.body) {
        Ok(resource) if resource.sid.is_empty() => {
            SubmitOutcome::Ambiguous { detail: "answer without a message SID".into() }
        }
        Ok(resource) => SubmitOutcome::Accepted { provider_message_id: resource.sid, bulk_id: None },
        Err(error) => {
            SubmitOutcome::Ambiguous { detail: format!("unreadable answer ({} bytes): {error}", response.body.len()) }
        }
    }
}

#[async_trait::async_trait]
impl ProviderAdapter for TwilioAdapter {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Twilio
    }

    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn submit(&self, batch: &[OutboundMessage]) -> Vec<SubmitOutcome> {
        let mut outcomes = Vec::with_capacity(batch.len());
        for message in batch {
            outcomes.push(self.submit_one(message).await);
        }
        outcomes
    }

    /// Finds `message` in the account's message list by destination and body. A message
    /// sent through a messaging service has a sender the service picked from its pool, so
    /// the list is not filtered by sender then; pages are followed to the end, and a search
    /// that could not reach the end never concludes "not found".
    async fn lookup(&self, message: &OutboundMessage) -> LookupOutcome {
        let page_size = LOOKUP_PAGE_SIZE.to_string();
        let mut filters = vec![("To", message.destination.as_str()), ("PageSize", page_size.as_str())];
        let own_sender = crate::incidents::active(crate::incidents::Bug::LookupByOwnSender);
        if self.messaging_service_sid.is_none() || own_sender {
            filters.push(("From", message.sender.as_str()));
        }
        let query = serde_urlencoded::to_string(filters).expect("query serialises");
        let mut url = format!("{}?{query}", self.messages_url());
        for _ in 0..LOOKUP_PAGES {
            let request =
                HttpRequest { method: http::Method::GET, url, headers: self.headers(None), body: Bytes::new() };
            let response = match self.client.send(request).await {
                Ok(response) if (200..300).contains(&response.status) => response,
                Ok(response) => {
                    return LookupOutcome::Unavailable { detail: format!("lookup answered {}", response.status) }
                }
                Err(error) => return LookupOutcome::Unavailable { detail: error.to_string() },
            };
            let page = match serde_json::from_slice::<wire::MessageList>(&response.body) {
                Ok(page) => page,
                Err(error) => {
                    return LookupOutcome::Unavailable { detail: format!("unreadable lookup answer: {error}") }
                }
            };
            let next = page.next_page_uri.filter(|next| !next.is_empty());
            if let Some(resource) = page.messages.into_iter().find(|resource| resource.body == message.body) {
                return LookupOutcome::Accepted {
                    status: Some(report_status(&resource.status)),
                    error_code: resource.error_code.map(|code| code.to_string()),
                    provider_message_id: resource.sid,
                };
            }
            match next {
                Some(next) if next.starts_with('/') => url = format!("{}{next}", self.base_url),
                Some(next) => {
                    return LookupOutcome::Unavailable { detail: format!("lookup's next page `{next}` is not a path") }
                }
                None => return LookupOutcome::NotFound,
            }
        }
        LookupOutcome::Unavailable { detail: format!("lookup read {LOOKUP_PAGES} pages without reaching the end") }
    }

    fn parse_webhook(&self, request: &WebhookRequest) -> Result<Vec<ParsedReport>, WebhookError> {
        if request.body.len() > MAX_WEBHOOK_BODY_BYTES {
            return Err(WebhookError::TooLarge { size: request.body.len(), limit: MAX_WEBHOOK_BODY_BYTES });
        }
        let content_type = request.headers.get("content-type").map(String::as_str).unwrap_or("");
        if content_type.split(';').next().unwrap_or("").trim() != "application/x-www-form-urlencoded" {
            return Err(WebhookError::ContentType(content_type.to_owned()));
        }
        let signature = request.headers.get(SIGNATURE_HEADER).ok_or(WebhookError::MissingSignature)?;
        let params: BTreeMap<String, String> = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&request.body)
            .map_err(|error| WebhookError::Malformed(error.to_string()))?
            .into_iter()
            .collect();
        let authentic = url_variants(&request.url).iter().any(|url| {
            constant_time_eq(twilio_signature(&self.auth_token, url, &params).as_bytes(), signature.as_bytes())
        });
        if !authentic {
            return Err(WebhookError::BadSignature);
        }
        let callback: wire::StatusCallback =
            serde_urlencoded::from_bytes(&request.body).map_err(|error| WebhookError::Malformed(error.to_string()))?;
        let message_ref = query_param(&request.url, "message_id").and_then(|id| id.parse::<MessageId>().ok());
        Ok(vec![ParsedReport {
            status: report_status(&callback.message_status),
            provider_message_id: callback.message_sid,
            message_ref,
            error_code: callback.error_code.filter(|code| !code.is_empty()),
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn twilio_example_params() -> BTreeMap<String, String> {
        [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
    }

    /// Twilio's published example for request validation.
    #[test]
    fn signature_matches_twilios_published_vector() {
        let signature =
            twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", &twilio_example_params());
        assert_eq!(signature, "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
    }

    #[test]
    fn url_variants_add_the_default_port_or_drop_any_port() {
        assert_eq!(
            url_variants("https://mycompany.com/myapp.php?foo=1&bar=2"),
            vec![
                "https://mycompany.com/myapp.php?foo=1&bar=2".to_owned(),
                "https://mycompany.com:443/myapp.php?foo=1&bar=2".to_owned()
            ]
        );
        assert_eq!(url_variants("http://h:80/x"), vec!["http://h:80/x".to_owned(), "http://h/x".to_owned()]);
        // As twilio-python's validator: any port may be dropped.
        assert_eq!(url_variants("http://h:8080/x"), vec!["http://h:8080/x".to_owned(), "http://h/x".to_owned()]);
        let with_port =
            twilio_signature("12345", "https://mycompany.com:443/myapp.php?foo=1&bar=2", &twilio_example_params());
        assert!(url_variants("https://mycompany.com/myapp.php?foo=1&bar=2").iter().any(|url| twilio_signature(
            "12345",
            url,
            &twilio_example_params()
        ) == with_port));
    }

    #[test]
    fn every_documented_status_maps_onto_the_lattice() {
        for (raw, status) in [
            ("queued", ReportStatus::Accepted),
            ("sending", ReportStatus::Accepted),
            ("sent", ReportStatus::Accepted),
            ("delivered", ReportStatus::Delivered),
            ("read", ReportStatus::Delivered),
            ("undelivered", ReportStatus::Undelivered),
            ("failed", ReportStatus::Rejected),
        ] {
            assert_eq!(report_status(raw), status, "{raw}");
        }
        assert_eq!(report_status("teleported"), ReportStatus::Unrecognized("teleported".into()));
    }
}
