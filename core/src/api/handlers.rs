//! The handlers, their request bodies and their answers.

use super::{AdminAuth, ApiError, ApiState, JsonBody, PathParams, RawBody, TenantAuth};
use crate::adapter::{capabilities_of, WebhookRequest};
use crate::domain::records::{Audience, Campaign, PauseReason, ProviderKind, Tenant, TrafficAccount};
use crate::ids::{CampaignId, TenantId, TrafficAccountId};
use crate::money::Credits;
use crate::store::rules::{check_import_size, MAX_IMPORT_ROWS};
use crate::store::{
    sha256_hex, CampaignPatch, CreditChange, IdempotencyKey, InboundReport, NewCampaign, NewContact, NewTenant,
    NewTrafficAccount, ReportOutcome, StoreError,
};
use crate::Timestamp;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

type Api = State<Arc<ApiState>>;
type Answer<T> = Result<T, ApiError>;

fn campaign_id(text: &str) -> Result<CampaignId, ApiError> {
    // A malformed id is "not found", like another tenant's: ids cannot be probed.
    text.parse().map_err(|_| ApiError::not_found("campaign", text))
}

// --- views ----------------------------------------------------------------------------------

/// A tenant as the API shows it (no key hash).
#[derive(Serialize)]
pub struct TenantView {
    id: TenantId,
    name: String,
    balance: Credits,
    reserved: Credits,
    charged: Credits,
    available: Credits,
    rate_limit_per_s: Option<u32>,
}

impl From<Tenant> for TenantView {
    fn from(tenant: Tenant) -> Self {
        TenantView {
            id: tenant.id,
            available: tenant.available(),
            name: tenant.name,
            balance: tenant.balance,
            reserved: tenant.reserved,
            charged: tenant.charged,
            rate_limit_per_s: tenant.rate_limit_per_s,
        }
    }
}

/// A traffic account as the API shows it (no credentials).
#[derive(Serialize)]
pub struct AccountView {
    id: TrafficAccountId,
    owner: Option<TenantId>,
    name: String,
    provider: ProviderKind,
    base_url: String,
    sender: String,
    rate_limit_per_s: Option<u32>,
    price_per_segment: Credits,
    idempotent_submissions: bool,
    webhook_path: String,
}

impl From<TrafficAccount> for AccountView {
    fn from(account: TrafficAccount) -> Self {
        AccountView {
            webhook_path: format!("/v1/webhooks/{}/{}", account.provider, account.id),
            id: account.id,
            owner: account.owner,
            name: account.name,
            provider: account.provider,
            base_url: account.base_url,
            sender: account.sender,
            rate_limit_per_s: account.rate_limit_per_s,
            price_per_segment: account.price_per_segment,
            idempotent_submissions: account.idempotent_submissions,
        }
    }
}

/// A campaign with its derived numbers.
#[derive(Serialize)]
pub struct CampaignView {
    #[serde(flatten)]
    campaign: Campaign,
    total: u32,
    sent: u32,
    delivered: u32,
    failed: u32,
    pending: u32,
    progress: u8,
}

impl From<Campaign> for CampaignView {
    fn from(campaign: Campaign) -> Self {
        let counts = campaign.counts;
        CampaignView {
            total: counts.total(),
            sent: counts.sent(),
            delivered: counts.delivered,
            failed: counts.failed,
            pending: counts.pending(),
            progress: counts.progress(),
            campaign,
        }
    }
}

// --- admin ----------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateTenant {
    name: String,
    #[serde(default)]
    credits: i64,
    #[serde(default)]
    rate_limit_per_s: Option<u32>,
}

#[derive(Serialize)]
pub(super) struct CreatedTenant {
    tenant: TenantView,
    api_key: String,
}

pub(super) async fn create_tenant(
    State(api): Api,
    _: AdminAuth,
    JsonBody(body): JsonBody<CreateTenant>,
) -> Answer<impl IntoResponse> {
    let api_key = api.new_api_key();
    let new = NewTenant {
        name: body.name,
        api_key_hash: sha256_hex(api_key.as_bytes()),
        credits: Credits(body.credits),
        rate_limit_per_s: body.rate_limit_per_s,
    };
    let tenant = api.store.create_tenant(new, api.clock.now())?;
    Ok((StatusCode::CREATED, Json(CreatedTenant { tenant: tenant.into(), api_key })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChangeCredits {
    #[serde(default)]
    top_up: Option<i64>,
    #[serde(default)]
    adjust: Option<i64>,
}

pub(super) async fn change_credits(
    State(api): Api,
    _: AdminAuth,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<ChangeCredits>,
) -> Answer<Json<TenantView>> {
    let tenant: TenantId = id.parse().map_err(|_| ApiError::not_found("tenant", &id))?;
    let change = match (body.top_up, body.adjust) {
        (Some(amount), None) => CreditChange::TopUp(Credits(amount)),
        (None, Some(delta)) => CreditChange::Adjust(Credits(delta)),
        _ => return Err(ApiError::validation("top_up", "give exactly one of `top_up` and `adjust`")),
    };
    change.check()?;
    Ok(Json(api.store.change_credits(tenant, change, api.clock.now())?.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateAccount {
    #[serde(default)]
    owner: Option<TenantId>,
    name: String,
    provider: ProviderKind,
    base_url: String,
    #[serde(default)]
    credentials: BTreeMap<String, String>,
    sender: String,
    #[serde(default)]
    rate_limit_per_s: Option<u32>,
    price_per_segment: i64,
}

pub(super) async fn create_account(
    State(api): Api,
    _: AdminAuth,
    JsonBody(body): JsonBody<CreateAccount>,
) -> Answer<impl IntoResponse> {
    let new = NewTrafficAccount {
        owner: body.owner,
        name: body.name,
        provider: body.provider,
        base_url: body.base_url,
        credentials: body.credentials,
        sender: body.sender,
        rate_limit_per_s: body.rate_limit_per_s,
        price_per_segment: Credits(body.price_per_segment),
        idempotent_submissions: capabilities_of(body.provider).idempotency_keys,
    };
    api.adapters.check(&new.preview()).map_err(|error| ApiError::validation("credentials", error.message))?;
    let account = api.store.create_traffic_account(new)?;
    Ok((StatusCode::CREATED, Json(AccountView::from(account))))
}

pub(super) async fn list_all_accounts(State(api): Api, _: AdminAuth) -> Answer<Json<Vec<AccountView>>> {
    Ok(Json(api.store.traffic_accounts()?.into_iter().map(AccountView::from).collect()))
}

// --- tenant ---------------------------------------------------------------------------------

pub(super) async fn me(TenantAuth(tenant): TenantAuth) -> Json<TenantView> {
    Json(tenant.into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ImportContacts {
    contacts: Vec<NewContact>,
}

pub(super) async fn import_contacts(
    State(api): Api,
    TenantAuth(tenant): TenantAuth,
    JsonBody(body): JsonBody<ImportContacts>,
) -> Answer<impl IntoResponse> {
    // The store's own rule, answered as a body too large rather than a field at fault: one
    // bound, kept in one place, whichever door an import comes through.
    if check_import_size(body.contacts.len()).is_err() {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("at most {MAX_IMPORT_ROWS} contacts per import, got {}", body.contacts.len()),
        ));
    }
    Ok(Json(api.store.import_contacts(tenant.id, body.contacts, api.clock.now())?))
}

pub(super) async fn list_contacts(State(api): Api, TenantAuth(tenant): TenantAuth) -> Answer<impl IntoResponse> {
    Ok(Json(api.store.contacts(tenant.id)?))
}

pub(super) async fn list_usable_accounts(
    State(api): Api,
    TenantAuth(tenant): TenantAuth,
) -> Answer<Json<Vec<AccountView>>> {
    let usable = api.store.traffic_accounts()?.into_iter().filter(|account| account.usable_by(tenant.id));
    Ok(Json(usable.map(AccountView::from).collect()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateCampaign {
    name: String,
    body_template: String,
    #[serde(default)]
    sender: Option<String>,
    #[serde(default = "all_contacts")]
    audience: Audience,
    traffic_account: TrafficAccountId,
    #[serde(default)]
    schedule_at: Option<Timestamp>,
}

fn all_contacts() -> Audience {
    Audience::All
}

pub(super) async fn create_campaign(
    State(api): Api,
    TenantAuth(tenant): TenantAuth,
    JsonBody(body): JsonBody<CreateCampaign>,
) -> Answer<impl IntoResponse> {
    let new = NewCampaign {
        name: body.name,
        body_template: body.body_template,
        sender: body.sender,
        audience: body.audience,
        traffic_account: body.traffic_account,
        schedule_at: body.schedule_at,
    };
    let campaign = api.store.create_campaign(tenant.id, new, api.clock.now())?;
    Ok((StatusCode::CREATED, Json(CampaignView::from(campaign))))
}

pub(super) async fn list_campaigns(State(api): Api, TenantAuth(tenant): TenantAuth) -> Answer<Json<Vec<CampaignView>>> {
    Ok(Json(api.store.campaigns(tenant.id)?.into_iter().map(CampaignView::from).collect()))
}

pub(super) async fn read_campaign(
    State(api): Api,
    TenantAuth(tenant): TenantAuth,
    PathParams(id): PathParams<String>,
) -> Answer<Json<CampaignView>> {
    Ok(Json(api.store.campaign(tenant.id, campaign_id(&id)?)?.into()))
}

/// A patch: absent fields stay; `null` clears the optional ones.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateCampaign {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    body_template: Option<String>,
    #[serde(default, deserialize_with = "present")]
    sender: Option<Option<String>>,
    #[serde(default)]
    audience: Option<Audience>,
    #[serde(default)]
    traffic_account: Option<TrafficAccountId>,
    #[serde(default, deserialize_with = "present")]
    schedule_at: Option<Option<Timestamp>>,
}

/// Tells a field given as `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

pub(super) async fn update_campaign(
    State(api): Api,
    TenantAuth(tenant): TenantAuth,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<UpdateCampaign>,
) -> Answer<Json<CampaignView>> {
    let patch = CampaignPatch {
        name: body.name,
        body_template: body.body_template,
        sender: body.sender,
        audience: body.audience,
        traffic_account: body.traffic_account,
        schedule_at: body.schedule_at,
    };
    Ok(Json(api.store.update_campaign(tenant.id, campaign_id(&id)?, patch, api.clock.now())?.into()))
}

pub(super) async fn preview(
    State(api): Api,
    TenantAuth(tenant): TenantAuth,
    PathParams(id): PathParams<String>,
) -> Answer<impl IntoResponse> {
    Ok(Json(api.store.preview(tenant.id, campaign_id(&id)?)?))
}

pub(super) async fn enqueue(
    State(api): Api,
    TenantAuth(tenant): TenantAuth,
    PathParams(id): PathParams<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Answer<impl IntoResponse> {
    let campaign = campaign_id(&id)?;
    if !body.is_empty() && !is_json(&headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "expected a request body with content-type application/json",
        ));
    }
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(value) => {
            let key =
                value.to_str().ok().filter(|key| !key.is_empty() && key.len() <= 255).ok_or_else(|| {
                    ApiError::validation("Idempotency-Key", "expected 1 to 255 visible ASCII characters")
                })?;
            let mut fingerprint = format!("{method} {}\n", uri.path()).into_bytes();
            fingerprint.extend_from_slice(&body);
            Some(IdempotencyKey { key: key.to_owned(), request_hash: sha256_hex(&fingerprint) })
        }
    };
    if !body.is_empty() {
        // Enqueue takes no options today; a body is accepted (and fingerprinted) only if
        // it is an empty JSON object, so a typo is not silently ignored.
        let options: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|error| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_JSON", error.to_string()))?;
        if options.as_object().is_none_or(|object| !object.is_empty()) {
            return Err(ApiError::validation("body", "enqueue takes no options; send no body or `{}`"));
        }
    }
    let receipt = api.store.enqueue(tenant.id, campaign, key, api.clock.now())?;
    Ok((StatusCode::ACCEPTED, Json(receipt)))
}

/// Whether the request says its body is JSON (`application/json` or `application/*+json`,
/// parameters allowed), as axum's `Json` extractor requires.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(axum::http::header::CONTENT_TYPE).and_then(|value| value.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

pub(super) async fn pause(
    State(api): Api,
    TenantAuth(tenant): TenantAuth,
    PathParams(id): PathParams<String>,
) -> Answer<Json<CampaignView>> {
    Ok(Json(api.store.pause(tenant.id, campaign_id(&id)?, PauseReason::Operator, api.clock.now())?.into()))
}

pub(super) async fn resume(
    State(api): Api,
    TenantAuth(tenant): TenantAuth,
    PathParams(id): PathParams<String>,
) -> Answer<Json<CampaignView>> {
    Ok(Json(api.store.resume(tenant.id, campaign_id(&id)?, api.clock.now())?.into()))
}

pub(super) async fn cancel(
    State(api): Api,
    TenantAuth(tenant): TenantAuth,
    PathParams(id): PathParams<String>,
) -> Answer<Json<CampaignView>> {
    Ok(Json(api.store.cancel(tenant.id, campaign_id(&id)?, api.clock.now())?.into()))
}

pub(super) async fn retry_failed(
    State(api): Api,
    TenantAuth(tenant): TenantAuth,
    PathParams(id): PathParams<String>,
) -> Answer<impl IntoResponse> {
    Ok(Json(api.store.retry_failed(tenant.id, campaign_id(&id)?, api.clock.now())?))
}

pub(super) async fn failures(
    State(api): Api,
    TenantAuth(tenant): TenantAuth,
    PathParams(id): PathParams<String>,
) -> Answer<impl IntoResponse> {
    Ok(Json(api.store.failures_by_code(tenant.id, campaign_id(&id)?)?))
}

/// How many progress readings in a row may fail with a passing store error before the
/// stream gives up (the client reconnects and starts again).
const PROGRESS_READ_ATTEMPTS: u32 = 10;

pub(super) async fn progress(
    State(api): Api,
    TenantAuth(tenant): TenantAuth,
    PathParams(id): PathParams<String>,
) -> Answer<impl IntoResponse> {
    let first = api.store.campaign(tenant.id, campaign_id(&id)?)?;
    // One event at once with the campaign as it stands, then one per interval of tokio
    // time (so every change shows within an interval), ending with the event that
    // shows the campaign completed or cancelled.
    let stream = futures::stream::unfold(Some((first, false)), move |state| {
        let api = api.clone();
        async move {
            let (campaign, wait) = state?;
            let campaign = if wait { next_reading(&api, tenant.id, campaign.id).await? } else { campaign };
            let event = Event::default().event("progress").json_data(CampaignView::from(campaign.clone())).ok()?;
            let next = (!campaign.status.is_terminal()).then_some((campaign, true));
            Some((Ok::<_, Infallible>(event), next))
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// The campaign one interval from now. A passing store failure waits another interval,
/// a bounded number of times; a campaign that is gone ends the stream.
async fn next_reading(api: &ApiState, tenant: TenantId, id: CampaignId) -> Option<Campaign> {
    for _ in 0..PROGRESS_READ_ATTEMPTS {
        tokio::time::sleep(api.progress_interval).await;
        match api.store.campaign(tenant, id) {
            Ok(campaign) => return Some(campaign),
            Err(StoreError::Transient(_)) => continue,
            Err(_) => return None,
        }
    }
    None
}

pub(super) async fn queue_stats(State(api): Api, TenantAuth(tenant): TenantAuth) -> Answer<impl IntoResponse> {
    Ok(Json(api.store.queue_stats(Some(tenant.id), api.clock.now())?))
}

/// The evidence for unknown outcomes that no report could name
/// ([`crate::service::reconcile`]).
pub(super) async fn reconciliation(State(api): Api, _: AdminAuth) -> Answer<impl IntoResponse> {
    Ok(Json(crate::service::reconcile::reconciliation(api.store.as_ref())?))
}

/// The store-wide queue: a shared account's parked reports belong to no one tenant, so
/// only the operator sees them all, with the count of those expired unmatched.
pub(super) async fn all_queue_stats(State(api): Api, _: AdminAuth) -> Answer<impl IntoResponse> {
    Ok(Json(api.store.queue_stats(None, api.clock.now())?))
}

// --- webhooks -------------------------------------------------------------------------------

/// What a webhook call did.
#[derive(Default, Serialize)]
pub(super) struct WebhookSummary {
    applied: u32,
    duplicates: u32,
    ignored: u32,
    parked: u32,
    unrecognized: u32,
}

/// A webhook request's URI, headers and body, taken out of the request rather than
/// copied (axum's `Uri` and `HeaderMap` extractors clone them, on the hottest route),
/// with the body read within the route's limit as [`RawBody`] reads it.
pub(super) struct WebhookCall {
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for WebhookCall {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let (mut parts, body) = request.into_parts();
        let uri = std::mem::take(&mut parts.uri);
        let headers = std::mem::take(&mut parts.headers);
        // The parts keep their extensions, which carry the route's body limit.
        let RawBody(body) = RawBody::from_request(Request::from_parts(parts, body), state).await?;
        Ok(WebhookCall { uri, headers, body })
    }
}

pub(super) async fn webhook(
    State(api): Api,
    PathParams((provider, account)): PathParams<(String, String)>,
    WebhookCall { uri, headers, body }: WebhookCall,
) -> Answer<Json<WebhookSummary>> {
    let not_found = || ApiError::not_found("webhook", &format!("{provider}/{account}"));
    let kind = ProviderKind::parse(&provider).ok_or_else(not_found)?;
    let account_id: TrafficAccountId = account.parse().map_err(|_| not_found())?;
    // Only a missing account is a 404. A passing store failure must stay a 503, so the
    // provider retries the callback instead of dropping the report as misaddressed.
    let account = match api.report_ingest.account(api.store.as_ref(), account_id) {
        Ok(account) => account,
        Err(StoreError::NotFound { .. }) => return Err(not_found()),
        Err(error) => return Err(error.into()),
    };
    if account.provider != kind {
        return Err(not_found());
    }
    let adapter = api.adapters.for_account(&account).map_err(|error| {
        tracing::error!(%error, "webhook for a misconfigured account");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", "the account's adapter is not configured")
    })?;
    let path_and_query = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    let request = WebhookRequest {
        url: format!("{}{path_and_query}", api.public_base_url),
        // Header names are lower-case already (the `http` crate normalises them).
        headers: headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
            .collect(),
        // The body read whole is the only handle on its buffer, which becomes the
        // vector without a copy.
        body: Vec::from(body),
    };
    let inbound = adapter
        .parse_webhook(&request)?
        .into_iter()
        .map(|report| InboundReport {
            traffic_account: account.id,
            provider_message_id: report.provider_message_id,
            message_ref: report.message_ref,
            status: report.status,
            error_code: report.error_code,
        })
        .collect();
    let mut summary = WebhookSummary::default();
    for outcome in api.report_ingest.apply(api.store.as_ref(), api.clock.as_ref(), inbound).await? {
        match outcome {
            ReportOutcome::Applied { .. } => summary.applied += 1,
            ReportOutcome::Duplicate { .. } => summary.duplicates += 1,
            ReportOutcome::IgnoredBackwards { .. } => summary.ignored += 1,
            ReportOutcome::Parked => summary.parked += 1,
            ReportOutcome::Unrecognized => summary.unrecognized += 1,
        }
    }
    Ok(Json(summary))
}
