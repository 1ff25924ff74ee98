//! What a provider documents, written down so the kit can play it.
//!
//! A [`ProviderProfile`] is the provider side of an adapter: how a send request looks on
//! the wire, how the provider answers it, which error codes and status strings it
//! documents, and how its delivery-report webhooks look and are authenticated. The kit's
//! stubs answer the adapter under test through the profile, so one suite of clauses
//! serves every provider. An adapter author writes the profile from the provider's
//! documentation, not from the adapter: a profile copied from the adapter certifies the
//! adapter's mistakes.

use smsim_core::adapter::{HttpRequest, HttpResponse, WebhookRequest};
use smsim_core::domain::report::ReportStatus;
use smsim_core::domain::ProviderKind;
use std::collections::BTreeMap;

/// One message as the provider read it from a send request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireMessage {
    /// Destination.
    pub destination: String,
    /// Sender, as sent (`None` when none was: a sender profile such as Twilio's messaging
    /// service, or the account's default sender, stands in for it).
    pub sender: Option<String>,
    /// Body.
    pub body: String,
    /// Our message id, if the request carries it (client message id, callback URL).
    pub reference: Option<String>,
    /// The per-message status callback URL, if the request carries one.
    pub callback: Option<String>,
    /// The idempotency key, if the request carries one.
    pub idempotency_key: Option<String>,
}

/// The provider's verdict on one message of a send request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Taken, under this provider id.
    Accept {
        /// The provider's id.
        provider_id: String,
    },
    /// Refused with one of the provider's documented codes.
    Reject {
        /// The code, as the provider writes it.
        code: String,
    },
}

/// A per-message error code the provider documents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentedCode {
    /// The code, as it appears in `ProviderFailure::code`.
    pub code: String,
    /// Whether the documentation says another attempt may succeed.
    pub retryable: bool,
}

impl DocumentedCode {
    /// A code and its class.
    pub fn new(code: impl Into<String>, retryable: bool) -> Self {
        DocumentedCode { code: code.into(), retryable }
    }
}

/// One delivery report, before the provider puts it on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireReport {
    /// The provider's id of the message.
    pub provider_message_id: String,
    /// Our message id, for providers that echo it.
    pub reference: Option<String>,
    /// The status string, as the provider writes it.
    pub status: String,
    /// An error code, for failures.
    pub error_code: Option<String>,
}

/// How a webhook body carries its reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReportShape {
    /// One report per request.
    Single,
    /// Several reports in one request.
    Batch,
}

/// How a webhook is authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// As the provider does it.
    Valid,
    /// With a wrong secret.
    Invalid,
    /// Without a signature or token.
    Missing,
}

/// Where the provider sends reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookTarget {
    /// The engine's webhook URL for the account, as configured at the provider.
    pub account_url: String,
    /// The per-message callback URL the send request carried, if any.
    pub callback: Option<String>,
}

/// A message the provider has accepted, for status lookups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The message as it was sent.
    pub message: WireMessage,
    /// The provider's id.
    pub provider_id: String,
    /// Its current status string.
    pub status: String,
}

/// A provider's documented wire behaviour.
pub trait ProviderProfile: Send + Sync {
    /// The provider's name, in reports.
    fn name(&self) -> &str;
    /// The wire kind the engine routes this provider's webhooks by.
    fn kind(&self) -> ProviderKind;
    /// The credentials of the traffic account the adapter under test is built for.
    fn credentials(&self) -> BTreeMap<String, String>;
    /// The credential values that must never appear in an error, a detail or a log line.
    fn secrets(&self) -> Vec<String>;

    /// Whether `request` is a send request.
    fn is_submit(&self, request: &HttpRequest) -> bool;
    /// The messages of a send request, in order; an error says what the provider would
    /// refuse about it (missing credentials, no sender, a malformed body).
    fn read_submit(&self, request: &HttpRequest) -> Result<Vec<WireMessage>, String>;
    /// The provider's answer to a send request of `messages`, listing `verdicts` (index into
    /// `messages`, verdict) in the given order. An index left out is a message the answer
    /// does not mention.
    fn answer(&self, messages: &[WireMessage], verdicts: &[(usize, Verdict)]) -> HttpResponse;
    /// Whether the provider may list a send answer's messages in another order than the
    /// request's.
    fn answers_in_any_order(&self) -> bool;
    /// Whether a send answer carries a bulk id the adapter should keep.
    fn bulk_ids(&self) -> bool;
    /// The id the provider gives the message to `destination` whose request carried our
    /// id `reference`. By default the provider makes one up (`suggested`); a provider that
    /// keys messages by the client's id returns that instead.
    fn provider_id(&self, _reference: Option<&str>, suggested: String) -> String {
        suggested
    }
    /// Every per-message error code the provider documents, with its class.
    fn documented_codes(&self) -> Vec<DocumentedCode>;

    /// Every delivery status string the provider documents, with where it lands on the lattice.
    fn documented_statuses(&self) -> Vec<(String, ReportStatus)>;
    /// The body shapes the provider's webhooks come in.
    fn report_shapes(&self) -> Vec<ReportShape>;
    /// A webhook request carrying `reports` (one for [`ReportShape::Single`]).
    fn webhook(&self, target: &WebhookTarget, reports: &[WireReport], shape: ReportShape, auth: Auth)
        -> WebhookRequest;

    /// The answer to a status lookup, or `None` when `request` is not one. `accepted` is
    /// what the provider has taken so far.
    fn lookup_answer(&self, request: &HttpRequest, accepted: &[Accepted]) -> Option<HttpResponse>;
}

/// A JSON answer.
pub fn json_response(status: u16, body: &impl serde::Serialize) -> HttpResponse {
    HttpResponse {
        status,
        headers: BTreeMap::from([("content-type".to_owned(), "application/json".to_owned())]),
        body: serde_json::to_vec(body).expect("answers serialise").into(),
    }
}

/// The value of query parameter `name` in `url`.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    serde_urlencoded::from_str::<Vec<(String, String)>>(query.split('#').next().unwrap_or(""))
        .ok()?
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// `url` with `name=value` added to its query.
pub fn with_query(url: &str, name: &str, value: &str) -> String {
    let pair = serde_urlencoded::to_string([(name, value)]).expect("query pairs serialise");
    if url.contains('?') {
        format!("{url}&{pair}")
    } else {
        format!("{url}?{pair}")
    }
}
