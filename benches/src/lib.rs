//! Criterion benchmarks for smsim live in `benches/benches/`; this library holds the
//! fixtures they share: a store with a tenant, an account, contacts and a campaign, and
//! the worker's and provider's side of a batch, driven straight through the [`Store`]
//! trait so the same fixture runs on both implementations.

use smsim_core::domain::{Audience, ProviderKind, ReportStatus};
use smsim_core::store::{
    sha256_hex, Claim, ClaimOutcome, ClaimRequest, InboundReport, NewCampaign, NewContact, NewTenant,
    NewTrafficAccount, Store, SubmissionResult,
};
use smsim_core::{CampaignId, Credits, TenantId, Timestamp, TrafficAccountId};
use std::collections::BTreeMap;

/// The time every fixture starts at.
pub const T0: Timestamp = Timestamp(1_700_000_000_000);

/// Most rows one contact import takes (the store's limit).
const IMPORT_CHUNK: usize = 10_000;

/// Lease of a benchmark claim: long enough never to expire during a run.
const LEASE_MS: u64 = 3_600_000;

/// A tenant, its account and a draft campaign addressed to all its contacts.
#[derive(Clone, Copy, Debug)]
pub struct Fixture {
    /// The tenant.
    pub tenant: TenantId,
    /// The (unlimited) Mitto-style account.
    pub account: TrafficAccountId,
    /// The campaign.
    pub campaign: CampaignId,
}

/// A valid, distinct Greek mobile number for each `n` below 10 000 000.
pub fn phone(n: u32) -> String {
    format!("+30691{n:07}")
}

/// Creates a tenant with `contacts` contacts, an account and a draft campaign in `store`.
pub fn draft_campaign(store: &dyn Store, contacts: u32) -> Fixture {
    let tenant = store
        .create_tenant(
            NewTenant {
                name: "acme".into(),
                api_key_hash: sha256_hex(b"bench"),
                credits: Credits(i64::from(contacts) * 1_000 + 1_000),
                rate_limit_per_s: None,
            },
            T0,
        )
        .expect("a tenant");
    let account = store
        .create_traffic_account(NewTrafficAccount {
            owner: None,
            name: "main".into(),
            provider: ProviderKind::Mitto,
            base_url: "http://provider".into(),
            credentials: BTreeMap::from([("api_key".to_owned(), "secret".to_owned())]),
            sender: "SMSIM".into(),
            rate_limit_per_s: None,
            price_per_segment: Credits(55),
            idempotent_submissions: false,
        })
        .expect("an account");
    let rows: Vec<NewContact> = (0..contacts)
        .map(|n| NewContact {
            phone: phone(n),
            attributes: BTreeMap::from([("first_name".to_owned(), "Maria".to_owned())]),
            opted_out: false,
        })
        .collect();
    for chunk in rows.chunks(IMPORT_CHUNK) {
        let report = store.import_contacts(tenant.id, chunk.to_vec(), T0).expect("an import");
        assert!(report.errors.is_empty(), "fixture contacts refused: {:?}", report.errors);
    }
    let campaign = store
        .create_campaign(
            tenant.id,
            NewCampaign {
                name: "spring".into(),
                body_template: "Hello {{first_name|there}}, our spring sale starts today.".into(),
                sender: None,
                audience: Audience::All,
                traffic_account: account.id,
                schedule_at: None,
            },
            T0,
        )
        .expect("a campaign");
    Fixture { tenant: tenant.id, account: account.id, campaign: campaign.id }
}

/// A campaign of `contacts` messages, enqueued (all queued, due at [`T0`]).
pub fn enqueued_campaign(store: &dyn Store, contacts: u32) -> Fixture {
    let fixture = draft_campaign(store, contacts);
    store.enqueue(fixture.tenant, fixture.campaign, None, T0).expect("an enqueue");
    fixture
}

/// Claims up to `max` due messages at `now`; `None` when nothing is due.
pub fn claim(store: &dyn Store, max: u32, now: Timestamp) -> Option<Claim> {
    let request = ClaimRequest {
        worker: "worker-1".into(),
        traffic_account: None,
        max_messages: max,
        lease_ms: LEASE_MS,
        burst: Default::default(),
    };
    match store.claim(request, now).expect("a claim") {
        ClaimOutcome::Claimed(claim) => Some(claim),
        ClaimOutcome::Idle(_) => None,
    }
}

/// The provider id the fixture's provider gives a message: its position in the campaign.
pub fn provider_id(n: usize) -> String {
    format!("M{n:08}")
}

/// Records every message of `claim` as accepted, numbering provider ids from `first`.
pub fn accept(store: &dyn Store, claim: &Claim, first: usize, now: Timestamp) {
    let results = claim
        .messages
        .iter()
        .enumerate()
        .map(|(n, message)| {
            let accepted =
                SubmissionResult::Accepted { provider_message_id: provider_id(first + n), bulk_id: Some("B1".into()) };
            (message.id, accepted)
        })
        .collect();
    store.record_submissions(claim.token, results, now).expect("a record");
}

/// Claims and accepts every queued message in batches of `batch`; returns how many.
pub fn accept_everything(store: &dyn Store, batch: u32) -> usize {
    let mut accepted = 0;
    while let Some(claim) = claim(store, batch, T0) {
        accept(store, &claim, accepted, T0);
        accepted += claim.messages.len();
    }
    accepted
}

/// The final delivery report for the `n`-th accepted message of `fixture`.
pub fn delivered(fixture: &Fixture, n: usize) -> InboundReport {
    InboundReport {
        traffic_account: fixture.account,
        provider_message_id: provider_id(n),
        message_ref: None,
        status: ReportStatus::Delivered,
        error_code: None,
    }
}
