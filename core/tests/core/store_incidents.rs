//! The store's incident switches act on every backend: each store-level bug of
//! `smsim_core::incidents`, switched on, does the same thing to the in-memory store and
//! to SQLite, because the bug lives in the shared rules (`store::rules`), not in a
//! backend. Each test runs one short script on both stores and checks that the bug's
//! signature shows on SQLite and that both stores end in the same state.
//!
//! Only built with `--features incidents`: without it no bug can be switched on.

#![cfg(feature = "incidents")]

use smsim_core::clock::Timestamp;
use smsim_core::domain::{Audience, PauseReason, ProviderKind, ReportStatus};
use smsim_core::incidents::{activate, Bug};
use smsim_core::money::Credits;
use smsim_core::store::memory::MemoryStore;
use smsim_core::store::sqlite::SqliteStore;
use smsim_core::store::*;
use std::collections::BTreeMap;

const T0: Timestamp = Timestamp(1_700_000_000_000);
const LEASE_MS: u64 = 1_000;

/// What a script leaves behind, for comparing the two stores.
#[derive(Debug, PartialEq)]
struct Outcome {
    tenant: smsim_core::domain::Tenant,
    campaign: smsim_core::domain::Campaign,
    recount: smsim_core::domain::StatusCounts,
    messages: Vec<smsim_core::domain::Message>,
}

/// A tenant with plenty of credit, a non-idempotent account, `contacts` contacts and an
/// enqueued campaign to all of them; returns (tenant, campaign).
fn sending(store: &dyn Store, contacts: u32) -> (smsim_core::ids::TenantId, smsim_core::ids::CampaignId) {
    let tenant = store
        .create_tenant(
            NewTenant {
                name: "acme".into(),
                api_key_hash: "h".into(),
                credits: Credits(10_000),
                rate_limit_per_s: None,
            },
            T0,
        )
        .expect("tenant");
    let account = store
        .create_traffic_account(NewTrafficAccount {
            owner: None,
            name: "main".into(),
            provider: ProviderKind::Mitto,
            base_url: "http://provider".into(),
            credentials: BTreeMap::from([("api_key".to_owned(), "secret".to_owned())]),
            sender: "SMSIM".into(),
            rate_limit_per_s: None,
            price_per_segment: Credits(10),
            idempotent_submissions: false,
        })
        .expect("account");
    let rows =
        (0..contacts).map(|n| NewContact { phone: format!("+3069123{n:05}"), ..NewContact::default() }).collect();
    store.import_contacts(tenant.id, rows, T0).expect("import");
    let new = NewCampaign {
        name: "spring".into(),
        body_template: "Hello".into(),
        sender: None,
        audience: Audience::All,
        traffic_account: account.id,
        schedule_at: None,
    };
    let campaign = store.create_campaign(tenant.id, new, T0).expect("campaign");
    store.enqueue(tenant.id, campaign.id, None, T0).expect("enqueue");
    (tenant.id, campaign.id)
}

fn claim(store: &dyn Store, max_messages: u32) -> Claim {
    let request = ClaimRequest {
        worker: "w".into(),
        traffic_account: None,
        max_messages,
        lease_ms: LEASE_MS,
        burst: Default::default(),
    };
    match store.claim(request, T0).expect("claim") {
        ClaimOutcome::Claimed(claim) => claim,
        idle => panic!("expected a claim, got {idle:?}"),
    }
}

fn accepted(id: smsim_core::ids::MessageId) -> (smsim_core::ids::MessageId, SubmissionResult) {
    (id, SubmissionResult::Accepted { provider_message_id: format!("p-{id}"), bulk_id: None })
}

/// Runs `script` on both stores with `bug` switched on; returns SQLite's outcome after
/// checking it equals the in-memory store's.
fn on_both(bug: Bug, script: impl Fn(&dyn Store)) -> Outcome {
    activate(Some(bug)).expect("built with incidents");
    let outcome = |store: &dyn Store| {
        script(store);
        let tenant = store.tenants().expect("tenants").remove(0);
        let campaign = store.all_campaigns().expect("campaigns").remove(0);
        let recount = store.recount(campaign.id).expect("recount");
        let messages = store.messages(campaign.id).expect("messages");
        Outcome { tenant, campaign, recount, messages }
    };
    let memory = outcome(&MemoryStore::new());
    let sqlite = outcome(&SqliteStore::open_in_memory().expect("open"));
    activate(None).expect("switch off");
    assert_eq!(sqlite, memory, "{bug}: SQLite and the in-memory store part ways");
    sqlite
}

#[test]
fn reaper_resends_acts_on_sqlite() {
    // Incident 000: an expired claim of a crashed worker is put back in the queue.
    let outcome = on_both(Bug::ReaperResends, |store| {
        sending(store, 1);
        claim(store, 1);
        let report = store.reap_expired_leases(T0.plus_ms(LEASE_MS)).expect("reap");
        assert_eq!(report.requeued.len(), 1, "the bug requeues on a non-idempotent account");
    });
    assert_eq!(outcome.campaign.counts.queued, 1);
}

#[test]
fn counter_per_report_acts_on_sqlite() {
    // Incidents 000 and 001: a duplicated report bumps the counter and charges again.
    let outcome = on_both(Bug::CounterPerReport, |store| {
        sending(store, 1);
        let claim = claim(store, 1);
        let id = claim.messages[0].id;
        store.record_submissions(claim.token, vec![accepted(id)], T0).expect("record");
        let report = InboundReport {
            traffic_account: claim.traffic_account,
            provider_message_id: format!("p-{id}"),
            message_ref: None,
            status: ReportStatus::Delivered,
            error_code: None,
        };
        store.apply_reports(vec![report.clone(), report], T0).expect("reports");
    });
    assert_eq!(outcome.campaign.counts.delivered, 2, "one message counted delivered twice");
    assert_eq!(outcome.recount.delivered, 1);
    assert_eq!(outcome.tenant.charged, Credits(20), "charged twice for one message");
}

#[test]
fn completion_from_counters_acts_on_sqlite() {
    // Incident 000: completed while a message is still with a worker.
    let outcome = on_both(Bug::CompletionFromCounters, |store| {
        sending(store, 2);
        let claim = claim(store, 2);
        store.record_submissions(claim.token, vec![accepted(claim.messages[0].id)], T0).expect("record");
    });
    assert_eq!(outcome.campaign.status, smsim_core::domain::CampaignStatus::Completed);
    assert_eq!(outcome.campaign.counts.submitting, 1);
}

#[test]
fn credits_not_reserved_acts_on_sqlite() {
    // Incident 002: credits checked at enqueue, never reserved.
    let outcome = on_both(Bug::CreditsNotReserved, |store| {
        sending(store, 3);
    });
    assert_eq!(outcome.tenant.reserved, Credits::ZERO);
}

#[test]
fn resume_requeues_in_flight_acts_on_sqlite() {
    // Issue 4: resume puts messages still with a worker back in the queue.
    let outcome = on_both(Bug::ResumeRequeuesInFlight, |store| {
        let (tenant, campaign) = sending(store, 1);
        claim(store, 1);
        store.pause(tenant, campaign, PauseReason::Operator, T0).expect("pause");
        store.resume(tenant, campaign, T0).expect("resume");
    });
    assert_eq!(outcome.campaign.counts.queued, 1);
    assert_eq!(outcome.campaign.counts.submitting, 0);
}
