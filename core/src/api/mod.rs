//! The HTTP API (axum): tenants' bearer keys, typed JSON errors, provider webhooks.
//!
//! Every handler is a thin typed layer over one store operation: it authenticates the
//! caller, parses the request into a `deny_unknown_fields` struct, calls the store with
//! the time from the injected clock, and renders the answer or an [`ApiError`]. Nothing
//! here decides anything the store does not check again, so a bad request can never
//! change state. The server takes its listener from outside ([`serve`]), so it runs the
//! same on tokio sockets and on a simulated network.
//!
//! Routes (all under `/v1`):
//!
//! | method | path | who | what |
//! |---|---|---|---|
//! | POST | `/admin/tenants` | admin | create a tenant; its API key is shown once |
//! | POST | `/admin/tenants/{id}/credits` | admin | `{"top_up": n}` or `{"adjust": n}` |
//! | POST, GET | `/admin/traffic-accounts` | admin | create, list provider accounts |
//! | GET | `/admin/queue/stats` | admin | the store-wide queue: every account's parked reports, and those expired |
//! | GET | `/admin/reconciliation` | admin | unknown outcomes per campaign and account; parked reports per account and status |
//! | GET | `/me` | tenant | balance, reserved, charged, available |
//! | POST, GET | `/contacts` | tenant | import (per-row errors), list |
//! | GET | `/traffic-accounts` | tenant | accounts the tenant may use |
//! | POST, GET | `/campaigns` | tenant | create (draft), list |
//! | GET, PATCH | `/campaigns/{id}` | tenant | read with counters and progress; edit a draft |
//! | GET | `/campaigns/{id}/preview` | tenant | recipients, segments, cost, available credit |
//! | POST | `/campaigns/{id}/enqueue` | tenant | create messages, reserve credits (`Idempotency-Key`) |
//! | POST | `/campaigns/{id}/pause`, `/resume`, `/cancel`, `/retry-failed` | tenant | operator actions |
//! | GET | `/campaigns/{id}/failures` | tenant | failed messages by error code |
//! | GET | `/campaigns/{id}/progress` | tenant | server-sent events until the campaign ends |
//! | GET | `/queue/stats` | tenant | queued, due, submitting, unknown, parked reports |
//! | POST | `/webhooks/{provider}/{account}` | provider | delivery reports, authenticated by the adapter |
//!
//! A webhook's reports reach the store as [`ApiState::report_ingest`] says: inline (the
//! simulator) or through serve mode's group commit ([`ingest`]).

mod error;
mod handlers;
pub mod ingest;

pub use error::ApiError;
pub use ingest::ReportIngest;

use crate::clock::Clock;
use crate::domain::rate::TokenBucket;
use crate::domain::records::Tenant;
use crate::ids::TenantId;
use crate::service::Adapters;
use crate::store::{sha256_hex, Store};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use rand::RngCore;
use rand_chacha::ChaCha20Rng;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The largest request body the API reads.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Everything the API needs, passed in.
pub struct ApiState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Adapters, for authenticating and parsing webhooks.
    pub adapters: Arc<Adapters>,
    /// The admin bearer token; `None` disables the admin routes.
    pub admin_token: Option<String>,
    /// The URL providers use to reach this API (webhook signatures cover it).
    pub public_base_url: String,
    /// How often the progress stream reports.
    pub progress_interval: Duration,
    /// Requests per second one tenant may make, if limited.
    pub requests_per_s: Option<u32>,
    /// How webhooks' reports are applied: inline unless serve mode sets up group commit.
    pub report_ingest: ReportIngest,
    key_rng: Mutex<ChaCha20Rng>,
    request_buckets: Mutex<BTreeMap<TenantId, TokenBucket>>,
}

impl ApiState {
    /// The API over `store`; API keys are drawn from `key_rng` (seeded by the caller: from
    /// OS entropy in serve mode, from the run's seed in a simulation).
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        adapters: Arc<Adapters>,
        admin_token: Option<String>,
        public_base_url: impl Into<String>,
        key_rng: ChaCha20Rng,
    ) -> Self {
        ApiState {
            store,
            clock,
            adapters,
            admin_token,
            public_base_url: public_base_url.into().trim_end_matches('/').to_owned(),
            progress_interval: Duration::from_secs(1),
            requests_per_s: None,
            report_ingest: ReportIngest::Inline,
            key_rng: Mutex::new(key_rng),
            request_buckets: Mutex::new(BTreeMap::new()),
        }
    }

    /// A fresh API key: `sk_` and 32 hex digits.
    pub fn new_api_key(&self) -> String {
        let mut bytes = [0u8; 16];
        self.key_rng.lock().expect("key generator poisoned").fill_bytes(&mut bytes);
        format!("sk_{}", hex::encode(bytes))
    }

    fn admit(&self, tenant: TenantId) -> Result<(), ApiError> {
        let Some(rate) = self.requests_per_s else { return Ok(()) };
        let now = self.clock.now();
        let mut buckets = self.request_buckets.lock().expect("request buckets poisoned");
        let bucket = buckets.get(&tenant).copied().unwrap_or_else(|| TokenBucket::full(rate, now));
        let (granted, after) = bucket.take(1, rate, now);
        buckets.insert(tenant, after);
        if granted == 0 {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                format!("more than {rate} requests per second"),
            ));
        }
        Ok(())
    }
}

/// The API's routes over `state`.
pub fn router(state: Arc<ApiState>) -> Router {
    use handlers::*;
    Router::new()
        .route("/v1/admin/tenants", post(create_tenant))
        .route("/v1/admin/tenants/{id}/credits", post(change_credits))
        .route("/v1/admin/traffic-accounts", post(create_account).get(list_all_accounts))
        .route("/v1/admin/queue/stats", get(all_queue_stats))
        .route("/v1/admin/reconciliation", get(reconciliation))
        .route("/v1/me", get(me))
        .route("/v1/contacts", post(import_contacts).get(list_contacts))
        .route("/v1/traffic-accounts", get(list_usable_accounts))
        .route("/v1/campaigns", post(create_campaign).get(list_campaigns))
        .route("/v1/campaigns/{id}", get(read_campaign).patch(update_campaign))
        .route("/v1/campaigns/{id}/preview", get(preview))
        .route("/v1/campaigns/{id}/enqueue", post(enqueue))
        .route("/v1/campaigns/{id}/pause", post(pause))
        .route("/v1/campaigns/{id}/resume", post(resume))
        .route("/v1/campaigns/{id}/cancel", post(cancel))
        .route("/v1/campaigns/{id}/retry-failed", post(retry_failed))
        .route("/v1/campaigns/{id}/failures", get(failures))
        .route("/v1/campaigns/{id}/progress", get(progress))
        .route("/v1/queue/stats", get(queue_stats))
        // A provider's report batch is small; refuse anything larger than any adapter
        // would parse before reading it into memory (the route's limit overrides the
        // router-wide one below).
        .route(
            "/v1/webhooks/{provider}/{account}",
            post(webhook).layer(DefaultBodyLimit::max(crate::adapter::MAX_WEBHOOK_BODY_BYTES)),
        )
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", "method not allowed on this route")
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Serves the API on `listener` until the task is dropped or the listener fails.
pub async fn serve<L: axum::serve::Listener>(listener: L, state: Arc<ApiState>) -> std::io::Result<()>
where
    L::Addr: std::fmt::Debug,
{
    axum::serve(listener, router(state)).await
}

/// The tenant whose bearer key the request carries.
pub struct TenantAuth(pub Tenant);

/// The credential of an `Authorization: Bearer <token>` header. The scheme name is
/// case-insensitive (RFC 9110 §11.1); anything else is no credential at all.
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl FromRequestParts<Arc<ApiState>> for TenantAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<ApiState>) -> Result<Self, ApiError> {
        let key = bearer(parts).ok_or_else(|| ApiError::unauthorized("expected `Authorization: Bearer <api key>`"))?;
        let tenant = state
            .store
            .tenant_by_api_key_hash(&sha256_hex(key.as_bytes()))?
            .ok_or_else(|| ApiError::unauthorized("unknown API key"))?;
        state.admit(tenant.id)?;
        Ok(TenantAuth(tenant))
    }
}

/// Proof that the request carries the admin token.
pub struct AdminAuth;

impl FromRequestParts<Arc<ApiState>> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<ApiState>) -> Result<Self, ApiError> {
        let Some(expected) = state.admin_token.as_deref() else {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "ADMIN_DISABLED", "no admin token is configured"));
        };
        let given =
            bearer(parts).ok_or_else(|| ApiError::unauthorized("expected `Authorization: Bearer <admin token>`"))?;
        if crate::adapter::common::constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            return Ok(AdminAuth);
        }
        if state.store.tenant_by_api_key_hash(&sha256_hex(given.as_bytes()))?.is_some() {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", "a tenant key cannot use admin routes"));
        }
        Err(ApiError::unauthorized("wrong admin token"))
    }
}

/// A raw request body (within the route's size limit) whose rejection is a typed
/// [`ApiError`]: `413 PAYLOAD_TOO_LARGE` rather than axum's plain-text answer.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Ok(RawBody(Bytes::from_request(request, state).await?))
    }
}

/// Path parameters whose rejection is a typed `404 NOT_FOUND`: a path segment that is
/// not even valid text names nothing, and saying so the same way as for an unknown id
/// keeps ids from being probed.
pub struct PathParams<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(params)) => Ok(PathParams(params)),
            Err(_) => Err(ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such resource")),
        }
    }
}

/// A JSON body whose every rejection is a typed [`ApiError`].
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<T>::from_request(request, state).await?;
        Ok(JsonBody(value))
    }
}
