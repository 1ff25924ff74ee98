//! Twilio-style single adapter.

use super::*;

/// What the Twilio-style adapter can do.
pub const CAPABILITIES: Capabilities = Capabilities {
    max_batch: 1,
    idempotency_keys: false,
    status_lookup: true,
    signature: SignatureScheme::TwilioHmacSha1,
};

/// The Twilio-style adapter.
pub struct TwilioAdapter;

impl TwilioAdapter {
    /// Builds the adapter for `account`.
    pub fn from_account(
        account: &TrafficAccount,
        client: Arc<dyn HttpClient>,
        webhook_base_url: &str,
    ) -> Result<Self, AdapterConfigError> {
        let _ = (account, client, webhook_base_url);
        todo!("adapter helper")
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
        let _ = batch;
        todo!("adapter helper")
    }
    async fn lookup(&self, message: &OutboundMessage) -> LookupOutcome {
        let _ = message;
        todo!("adapter helper")
    }
    fn parse_webhook(&self, request: &WebhookRequest) -> Result<Vec<ParsedReport>, WebhookError> {
        let _ = request;
        todo!("adapter helper")
    }
}
