//! Mitto-style bulk adapter.

use super::*;

/// What the Mitto-style adapter can do.
pub const CAPABILITIES: Capabilities = Capabilities {
    max_batch: 200,
    idempotency_keys: false,
    status_lookup: false,
    signature: SignatureScheme::UrlToken,
};

/// The Mitto-style adapter.
pub struct MittoAdapter;

impl MittoAdapter {
    /// Builds the adapter for `account`.
    pub fn from_account(account: &TrafficAccount, client: Arc<dyn HttpClient>) -> Result<Self, AdapterConfigError> {
        let _ = (account, client);
        todo!("adapter helper")
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
