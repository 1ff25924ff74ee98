//! Provider adapters: batches of messages out, per-message outcomes and delivery reports in.
//!
//! An adapter knows one provider's wire format and nothing else: it builds requests,
//! sends them through the [`HttpClient`] it was given (a real socket or a simulated
//! one), and maps the answers to a [`SubmitOutcome`] per message, *in request order* —
//! the outcome list always has exactly one entry per message submitted. How an answer is
//! mapped back depends on what the provider echoes: a Mitto-style bulk answer by position
//! (so its length must match the request), an Infobip-style answer by our message id (its
//! order is not guaranteed). When an answer cannot be mapped with certainty (a bulk answer
//! of the wrong length, one that leaves a message out, a connection that dropped after
//! the request left) the outcome is [`SubmitOutcome::Ambiguous`], never a guess: a guess
//! is how incident 003's bulk ids ended up on the wrong messages.
//!
//! The wire types are public serde structs in [`mitto::wire`], [`twilio::wire`] and
//! [`infobip::wire`] so the simulated provider speaks exactly what the adapters parse.

pub(crate) mod common;
pub mod http;
pub mod infobip;
pub mod mitto;
pub mod twilio;

pub use self::http::{HttpClient, HttpError, HttpRequest, HttpResponse};

use crate::domain::records::{ProviderKind, TrafficAccount};
use crate::domain::report::ReportStatus;
use crate::ids::MessageId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How a provider authenticates its webhooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureScheme {
    /// No signature; the webhook URL carries a per-account secret token (`?token=`).
    UrlToken,
    /// Twilio's `X-Twilio-Signature`: base64 HMAC-SHA1 of the URL and sorted parameters.
    TwilioHmacSha1,
}

/// What an adapter can do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Most messages in one submit call.
    pub max_batch: u32,
    /// The provider deduplicates resubmissions carrying the same idempotency key.
    pub idempotency_keys: bool,
    /// [`ProviderAdapter::lookup`] is supported.
    pub status_lookup: bool,
    /// How webhooks are authenticated.
    pub signature: SignatureScheme,
}

/// One message to submit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// Our id (also the idempotency key, where the provider takes one).
    pub id: MessageId,
    /// E.164 destination.
    pub destination: String,
    /// Sender.
    pub sender: String,
    /// Body.
    pub body: String,
    /// Where the provider should send delivery reports for this message.
    pub status_callback_url: Option<String>,
}

/// A provider error on one message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderFailure {
    /// A stable code: `HTTP_<status>`, `NETWORK`, or the provider's own code.
    pub code: String,
    /// Whether another attempt may succeed.
    pub retryable: bool,
    /// The provider's `Retry-After`, in milliseconds.
    pub retry_after_ms: Option<u64>,
    /// A human-readable detail, without credentials.
    pub detail: String,
}

/// What happened to one submitted message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum SubmitOutcome {
    /// The provider took it.
    Accepted {
        /// The provider's id.
        provider_message_id: String,
        /// The bulk request's id, for bulk providers.
        bulk_id: Option<String>,
    },
    /// The provider refused it, or the request never left.
    Failed(ProviderFailure),
    /// The request may have reached the provider; its answer was lost or unreadable.
    Ambiguous {
        /// What happened.
        detail: String,
    },
}

/// What a status lookup found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "found")]
pub enum LookupOutcome {
    /// The provider has the message.
    Accepted {
        /// The provider's id.
        provider_message_id: String,
        /// Its current status, if the provider says.
        status: Option<ReportStatus>,
        /// The error code the provider gives it, if it failed and the provider says (as
        /// its reports would carry it).
        error_code: Option<String>,
    },
    /// The provider has no such message.
    NotFound,
    /// The lookup itself failed; try later.
    Unavailable {
        /// What happened.
        detail: String,
    },
}

/// An inbound webhook request, as the HTTP layer received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookRequest {
    /// The full URL the provider called, as the provider saw it (scheme, host, path, query).
    pub url: String,
    /// Headers, names lower-cased.
    pub headers: BTreeMap<String, String>,
    /// The raw body.
    pub body: Vec<u8>,
}

/// One delivery report parsed from a webhook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedReport {
    /// The provider's message id.
    pub provider_message_id: String,
    /// Our message id, if the provider echoes it.
    pub message_ref: Option<MessageId>,
    /// The status mapped onto the lattice.
    pub status: ReportStatus,
    /// The provider's error code.
    pub error_code: Option<String>,
}

/// Why a webhook was refused. The HTTP layer answers 401 for authentication failures and
/// 400/413/415 for the rest, and changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The signature or token is missing.
    #[error("webhook signature missing")]
    MissingSignature,
    /// The signature or token does not match.
    #[error("webhook signature invalid")]
    BadSignature,
    /// The body cannot be parsed.
    #[error("malformed webhook body: {0}")]
    Malformed(String),
    /// The body exceeds the limit.
    #[error("webhook body of {size} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The content type is not one the provider sends.
    #[error("unsupported content type `{0}`")]
    ContentType(String),
}

/// The largest webhook body any adapter accepts.
pub const MAX_WEBHOOK_BODY_BYTES: usize = 256 * 1024;

/// A provider adapter. One instance serves one traffic account.
///
/// Its `Debug` output is what ends up in logs: it must leave credentials out.
#[async_trait::async_trait]
pub trait ProviderAdapter: Send + Sync + std::fmt::Debug {
    /// The wire format.
    fn kind(&self) -> ProviderKind;
    /// What it can do.
    fn capabilities(&self) -> Capabilities;
    /// Submits up to [`Capabilities::max_batch`] messages; one outcome per message, in order.
    /// A longer batch is submitted in several requests, never truncated.
    async fn submit(&self, batch: &[OutboundMessage]) -> Vec<SubmitOutcome>;
    /// Asks the provider about a message whose submission was ambiguous.
    async fn lookup(&self, message: &OutboundMessage) -> LookupOutcome;
    /// Authenticates and parses a delivery-report webhook.
    fn parse_webhook(&self, request: &WebhookRequest) -> Result<Vec<ParsedReport>, WebhookError>;
}

/// Why an adapter could not be built for an account.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("traffic account {account}: {message}")]
pub struct AdapterConfigError {
    /// The account.
    pub account: String,
    /// What is missing or wrong.
    pub message: String,
}

/// Builds a provider's adapter for an account: the account, the HTTP client to send
/// through, and where this engine's API is reachable from the provider.
pub type BuildAdapter =
    fn(&TrafficAccount, Arc<dyn HttpClient>, &str) -> Result<Arc<dyn ProviderAdapter>, AdapterConfigError>;

/// One provider kind's adapter: what it can do and how to build it.
#[derive(Clone, Copy)]
pub struct ProviderEntry {
    /// The kind.
    pub kind: ProviderKind,
    /// What its adapter can do.
    pub capabilities: Capabilities,
    /// Builds its adapter for an account.
    pub build: BuildAdapter,
}

/// The provider registry: every kind with its adapter. Adding a provider is a
/// [`ProviderKind`] variant, its adapter module, and a row here; everything that builds
/// adapters or asks for capabilities goes through [`provider`].
pub const PROVIDERS: [ProviderEntry; 3] = [
    ProviderEntry {
        kind: ProviderKind::Mitto,
        capabilities: mitto::CAPABILITIES,
        build: |account, client, _| Ok(Arc::new(mitto::MittoAdapter::from_account(account, client)?)),
    },
    ProviderEntry {
        kind: ProviderKind::Twilio,
        capabilities: twilio::CAPABILITIES,
        build: |account, client, webhook_base_url| {
            Ok(Arc::new(twilio::TwilioAdapter::from_account(account, client, webhook_base_url)?))
        },
    },
    ProviderEntry {
        kind: ProviderKind::Infobip,
        capabilities: infobip::CAPABILITIES,
        build: |account, client, webhook_base_url| {
            Ok(Arc::new(infobip::InfobipAdapter::from_account(account, client, webhook_base_url)?))
        },
    },
];

/// The registry entry of `kind`.
pub fn provider(kind: ProviderKind) -> &'static ProviderEntry {
    PROVIDERS.iter().find(|entry| entry.kind == kind).expect("every provider kind has a registry entry")
}

/// Builds the adapter for `account`, sending through `client`.
///
/// `webhook_base_url` is where this engine's API is reachable from the provider; the
/// adapter derives per-message status callback URLs from it when the provider takes one.
pub fn adapter_for(
    account: &TrafficAccount,
    client: Arc<dyn HttpClient>,
    webhook_base_url: &str,
) -> Result<Arc<dyn ProviderAdapter>, AdapterConfigError> {
    (provider(account.provider).build)(account, client, webhook_base_url)
}

/// The capabilities of the adapter for `kind`, without building one.
pub fn capabilities_of(kind: ProviderKind) -> Capabilities {
    provider(kind).capabilities
}

/// A credential of `account`, or a config error naming it.
pub fn credential<'a>(account: &'a TrafficAccount, name: &str) -> Result<&'a str, AdapterConfigError> {
    account.credentials.get(name).map(String::as_str).filter(|value| !value.is_empty()).ok_or_else(|| {
        AdapterConfigError { account: account.id.to_string(), message: format!("credential `{name}` is missing") }
    })
}

#[cfg(test)]
mod registry_tests {
    use super::*;

    /// A kind without a row would panic in [`provider`]; a kind with two would hide one.
    #[test]
    fn every_provider_kind_has_exactly_one_registry_entry() {
        for kind in ProviderKind::ALL {
            assert_eq!(PROVIDERS.iter().filter(|entry| entry.kind == kind).count(), 1, "{kind}");
        }
        assert_eq!(PROVIDERS.len(), ProviderKind::ALL.len());
    }
}
