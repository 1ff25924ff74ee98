//! The engine in a box: the real worker, maintenance and webhook route over the in-memory
//! store, with the adapter under test talking to a stub. The clauses that are about what a
//! report *does* (duplicates, order, parking, lookups) run here, so they judge the adapter
//! together with the engine it will serve.

use super::profile::{ProviderProfile, WebhookTarget};
use super::stub::{Plan, Stub};
use super::Subject;
use axum::body::Body;
use http_body_util::BodyExt;
use rand::SeedableRng;
use smsim_core::adapter::http::HyperClient;
use smsim_core::adapter::{AdapterConfigError, HttpClient, ProviderAdapter, WebhookRequest};
use smsim_core::api::{self, ApiState};
use smsim_core::clock::ManualClock;
use smsim_core::domain::{Audience, Message, TrafficAccount};
use smsim_core::service::maintenance::Maintenance;
use smsim_core::service::worker::{Step, Worker};
use smsim_core::service::{AdapterFactory, Adapters, EngineConfig};
use smsim_core::store::memory::MemoryStore;
use smsim_core::store::{NewCampaign, NewContact, NewTenant, NewTrafficAccount, Store};
use smsim_core::{CampaignId, ContactId, Credits, MessageId, TenantId, Timestamp};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

/// Where the engine in a box says it is reachable.
pub const ENGINE_URL: &str = "http://engine.certify";

const T0: Timestamp = Timestamp(1_700_000_000_000);

/// The destination of contact `n` in every clause.
pub fn destination(n: u32) -> String {
    format!("+4179555{n:04}")
}

/// Builds the subject's adapter for every account.
pub struct SubjectFactory(pub Subject);

impl AdapterFactory for SubjectFactory {
    fn build(
        &self,
        account: &TrafficAccount,
        client: Arc<dyn HttpClient>,
        webhook_base_url: &str,
    ) -> Result<Arc<dyn ProviderAdapter>, AdapterConfigError> {
        (self.0.build)(account, client, webhook_base_url)
    }
}

/// A store, a clock, the services and the API, with one campaign to `contacts` contacts.
pub struct Engine {
    /// The provider.
    pub stub: Stub,
    /// The store.
    pub store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
    adapters: Arc<Adapters>,
    config: EngineConfig,
    api: axum::Router,
    account: TrafficAccount,
    tenant: TenantId,
    campaign: CampaignId,
    profile: Arc<dyn ProviderProfile>,
}

impl Engine {
    /// The engine with an enqueued campaign, its provider answering by `plan`.
    pub async fn start(subject: &Subject, contacts: u32, plan: Plan, timeout: Duration) -> Result<Engine, String> {
        let profile = subject.profile.clone();
        let stub = Stub::start(profile.clone(), plan).await;
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::new(T0));
        let fail = |what: &str, error: &dyn std::fmt::Display| format!("engine setup: {what}: {error}");
        let tenant = store
            .create_tenant(
                NewTenant {
                    name: "certify".into(),
                    api_key_hash: "certify".into(),
                    credits: Credits(1_000_000),
                    rate_limit_per_s: None,
                },
                T0,
            )
            .map_err(|e| fail("tenant", &e))?;
        let factory = Arc::new(SubjectFactory(subject.clone()));
        let client: Arc<dyn HttpClient> = Arc::new(HyperClient::tcp(timeout));
        let probe = super::probe_account(profile.as_ref(), &stub.url());
        let capabilities =
            (subject.build)(&probe, client.clone(), ENGINE_URL).map_err(|e| fail("adapter", &e))?.capabilities();
        let account = store
            .create_traffic_account(NewTrafficAccount {
                owner: None,
                name: "certify".into(),
                provider: profile.kind(),
                base_url: stub.url(),
                credentials: profile.credentials(),
                sender: "SMSIM".into(),
                rate_limit_per_s: None,
                price_per_segment: Credits(1),
                idempotent_submissions: capabilities.idempotency_keys,
            })
            .map_err(|e| fail("account", &e))?;
        let rows = (0..contacts).map(|n| NewContact { phone: destination(n), ..NewContact::default() }).collect();
        store.import_contacts(tenant.id, rows, T0).map_err(|e| fail("contacts", &e))?;
        let campaign = store
            .create_campaign(
                tenant.id,
                NewCampaign {
                    name: "certify".into(),
                    body_template: "certification".into(),
                    sender: None,
                    audience: Audience::All,
                    traffic_account: account.id,
                    schedule_at: None,
                },
                T0,
            )
            .map_err(|e| fail("campaign", &e))?;
        store.enqueue(tenant.id, campaign.id, None, T0).map_err(|e| fail("enqueue", &e))?;
        let adapters = Arc::new(Adapters::new(factory, client, ENGINE_URL));
        let config = EngineConfig {
            claim_batch: contacts.max(1),
            lease_ms: 60_000,
            lookup_grace_ms: 0,
            unknown_settle_after_ms: 3_600_000,
            webhook_base_url: ENGINE_URL.into(),
            ..EngineConfig::default()
        };
        let state = ApiState::new(
            store.clone(),
            clock.clone(),
            adapters.clone(),
            None,
            ENGINE_URL,
            rand_chacha::ChaCha20Rng::seed_from_u64(1),
        );
        let api = api::router(Arc::new(state));
        Ok(Engine {
            stub,
            store,
            clock,
            adapters,
            config,
            api,
            account,
            tenant: tenant.id,
            campaign: campaign.id,
            profile,
        })
    }

    /// One worker step: claims everything due, submits it, records the outcomes.
    pub async fn send(&self) -> Result<(), String> {
        let mut worker = Worker::new(
            "certify",
            self.store.clone(),
            self.clock.clone(),
            self.adapters.clone(),
            self.config.clone(),
            1,
        );
        match worker.step().await {
            Step::Worked { .. } => Ok(()),
            other => Err(format!("the worker did no work: {other:?}")),
        }
    }

    /// One maintenance pass, a minute later.
    pub async fn maintain(&self) -> Result<u32, String> {
        self.clock.advance_ms(60_000);
        let maintenance =
            Maintenance::new(self.store.clone(), self.clock.clone(), self.adapters.clone(), self.config.clone());
        maintenance.pass().await.map(|pass| pass.resolved).map_err(|error| error.to_string())
    }

    /// Message `n`.
    pub fn message(&self, n: u32) -> Message {
        self.store.message(MessageId::new(self.campaign, ContactId(u64::from(n) + 1))).expect("the message exists")
    }

    /// Where the provider sends reports for message `n`.
    pub fn target(&self, n: u32) -> WebhookTarget {
        let destination = destination(n);
        let callback = self
            .stub
            .seen()
            .submits
            .iter()
            .flatten()
            .find(|message| message.destination == destination)
            .and_then(|message| message.callback.clone());
        WebhookTarget { account_url: self.account_url(), callback }
    }

    /// The engine's webhook URL for the account.
    pub fn account_url(&self) -> String {
        format!("{ENGINE_URL}/v1/webhooks/{}/{}", self.profile.kind(), self.account.id)
    }

    /// Posts a webhook to the engine's API; its status and JSON answer.
    pub async fn post(&self, request: &WebhookRequest) -> (u16, serde_json::Value) {
        let path = request.url.strip_prefix(ENGINE_URL).unwrap_or(&request.url);
        let mut builder = http::Request::post(path);
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let http = builder.body(Body::from(request.body.clone())).expect("webhook requests build");
        let response = self.api.clone().oneshot(http).await.expect("the router is infallible");
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map(|body| body.to_bytes()).unwrap_or_default();
        (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
    }

    /// Checks that the campaign's counters equal a recount of its messages.
    pub fn counters_agree(&self) -> Result<(), String> {
        let campaign = self.store.campaign(self.tenant, self.campaign).map_err(|error| error.to_string())?;
        let recount = self.store.recount(self.campaign).map_err(|error| error.to_string())?;
        if campaign.counts == recount {
            Ok(())
        } else {
            Err(format!("campaign counters {:?} differ from a recount of its messages {:?}", campaign.counts, recount))
        }
    }
}
