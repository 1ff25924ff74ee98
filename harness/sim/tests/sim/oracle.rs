//! The oracle hands what it observes of a simulation to the judge: these tests feed it a
//! real store's journal, tampered store answers and a provider ground truth that a broken
//! engine would produce, and check the judge hears of each. The judge's own tests
//! (`harness/judge/tests`) show every invariant in both directions on recorded histories;
//! the `incidents` scenarios do the same end to end.

use smsim_core::domain::{Audience, Campaign, CampaignStatus, MessageStatus, ProviderKind, Tenant, TransitionCause};
use smsim_core::store::memory::MemoryStore;
use smsim_core::store::*;
use smsim_core::{Credits, MessageId, Timestamp};
use smsim_sim::driver::DriverLog;
use smsim_sim::driver::Told;
use smsim_sim::faulty_store::TamperedStore;
use smsim_sim::oracle::{Invariant, Limits, Oracle};
use smsim_sim::provider::Truth;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const T0: Timestamp = Timestamp(1_700_000_000_000);

/// A store with one campaign of three messages, two accepted and one still queued, and
/// the journal that led there.
fn fixture() -> (Arc<MemoryStore>, Vec<JournalEntry>, Vec<MessageId>) {
    let store = Arc::new(MemoryStore::new());
    let tenant = store
        .create_tenant(
            NewTenant {
                name: "acme".into(),
                api_key_hash: "k".into(),
                credits: Credits(1_000),
                rate_limit_per_s: None,
            },
            T0,
        )
        .unwrap();
    let account = store
        .create_traffic_account(NewTrafficAccount {
            owner: None,
            name: "a".into(),
            provider: ProviderKind::Mitto,
            base_url: "http://provider".into(),
            credentials: BTreeMap::new(),
            sender: "S".into(),
            rate_limit_per_s: None,
            price_per_segment: Credits(10),
            idempotent_submissions: false,
        })
        .unwrap();
    let rows = (1..=3).map(|n| NewContact { phone: format!("+3069123{n:05}"), ..NewContact::default() }).collect();
    store.import_contacts(tenant.id, rows, T0).unwrap();
    let campaign = store
        .create_campaign(
            tenant.id,
            NewCampaign {
                name: "c".into(),
                body_template: "hi".into(),
                sender: None,
                audience: Audience::All,
                traffic_account: account.id,
                schedule_at: None,
            },
            T0,
        )
        .unwrap();
    store.enqueue(tenant.id, campaign.id, None, T0).unwrap();
    let ClaimOutcome::Claimed(claim) = store
        .claim(
            ClaimRequest {
                worker: "w".into(),
                traffic_account: None,
                max_messages: 2,
                lease_ms: 1_000,
                burst: Default::default(),
            },
            T0,
        )
        .unwrap()
    else {
        panic!("nothing claimed")
    };
    let ids: Vec<MessageId> = claim.messages.iter().map(|m| m.id).collect();
    let results = ids
        .iter()
        .map(|id| (*id, SubmissionResult::Accepted { provider_message_id: format!("p-{id}"), bulk_id: None }))
        .collect();
    store.record_submissions(claim.token, results, T0).unwrap();
    let journal = store.take_journal().unwrap();
    (store, journal, ids)
}

fn truth_with_acceptances(ids: &[MessageId], store: &MemoryStore) -> Truth {
    let mut truth = Truth::default();
    for id in ids {
        let message = store.message(*id).unwrap();
        truth.record_acceptance(5, "ta_1", &message.destination, &message.body, &format!("p-{id}"));
    }
    truth
}

/// What the judge is told of the fixture's world before it starts.
fn setup() -> smsim_judge::Setup {
    smsim_judge::Setup {
        tenants: vec![smsim_judge::TenantSetup {
            tenant: "ten_1".into(),
            opening_credits: 1_000,
            rate_limit_per_s: None,
            numbers: BTreeSet::new(),
        }],
        accounts: vec![smsim_judge::AccountSetup {
            account: "ta_1".into(),
            wire: smsim_judge::Wire::Mitto,
            price_per_segment: 10,
            rate_limit_per_s: None,
        }],
        halt_grace_ms: 1_000,
        forbidden_destinations: BTreeSet::new(),
        contacts: Default::default(),
        retry: None,
        journal: true,
        rate_at_provider: None,
        rate_strict: false,
    }
}

fn fires(result: Result<(), smsim_sim::oracle::Violation>, invariant: Invariant) {
    match result {
        Err(violation) => assert_eq!(violation.invariant, invariant, "{violation}"),
        Ok(()) => panic!("`{invariant}` did not fire"),
    }
}

#[test]
fn a_correct_history_passes_every_invariant() {
    let (store, journal, ids) = fixture();
    let mut truth = truth_with_acceptances(&ids, &store);
    let mut oracle = Oracle::new(&[], setup(), Limits::default());
    oracle.check_step(10, &journal, store.as_ref(), &mut truth, &mut DriverLog::default()).unwrap();
    assert!(
        // The rest need what this history lacks: probes or forgeries (isolation, forgery),
        // operator actions (operator), templates and contacts (content), refusals and a
        // retry policy (retries), bad input (input), or the end of the run (liveness).
        Invariant::ALL
            .iter()
            .filter(|i| !matches!(
                i,
                Invariant::Liveness
                    | Invariant::Isolation
                    | Invariant::Operator
                    | Invariant::Forgery
                    | Invariant::Content
                    | Invariant::Retries
                    | Invariant::Input
            ))
            .all(|i| oracle.checks().get(i).copied().unwrap_or(0) > 0),
        "{:?}",
        oracle.checks()
    );
}

#[test]
fn counters_fire_when_stored_numbers_differ_from_the_messages() {
    let (store, journal, ids) = fixture();
    // Incident 000: a counter bumped on every report — 139 sent for 100 contacts.
    let inflated = TamperedStore::new(store.clone(), |c: &mut Campaign| c.counts.accepted += 39, |_: &mut Tenant| {});
    fires(
        Oracle::new(&[], setup(), Limits::default()).check_step(
            10,
            &journal,
            &inflated,
            &mut truth_with_acceptances(&ids, &store),
            &mut DriverLog::default(),
        ),
        Invariant::Counters,
    );
}

#[test]
fn progress_fires_when_it_goes_backwards_without_an_operator() {
    let (store, journal, ids) = fixture();
    let mut truth = truth_with_acceptances(&ids, &store);
    let mut oracle = Oracle::new(&[Invariant::Progress], setup(), Limits::default());
    oracle.check_step(10, &journal, store.as_ref(), &mut truth, &mut DriverLog::default()).unwrap();
    let regressed = TamperedStore::new(store.clone(), |c: &mut Campaign| c.counts.accepted -= 1, |_: &mut Tenant| {});
    let touch = vec![JournalEntry::Campaign {
        seq: 99,
        at: T0,
        campaign: ids[0].campaign,
        from: CampaignStatus::Sending,
        to: CampaignStatus::Paused,
    }];
    fires(oracle.check_step(20, &touch, &regressed, &mut truth, &mut DriverLog::default()), Invariant::Progress);
}

#[test]
fn transitions_fire_on_a_move_against_the_lattice() {
    let (store, journal, ids) = fixture();
    let mut oracle = Oracle::new(&[], setup(), Limits::default());
    let mut truth = truth_with_acceptances(&ids, &store);
    oracle.check_step(10, &journal, store.as_ref(), &mut truth, &mut DriverLog::default()).unwrap();
    let backwards = vec![JournalEntry::Message {
        seq: 100,
        at: T0,
        message: ids[0],
        from: Some(MessageStatus::Accepted),
        to: MessageStatus::Queued,
        cause: TransitionCause::Engine,
    }];
    fires(
        oracle.check_step(20, &backwards, store.as_ref(), &mut truth, &mut DriverLog::default()),
        Invariant::Transitions,
    );
}

#[test]
fn completion_fires_on_a_campaign_completed_with_messages_queued() {
    let (store, journal, ids) = fixture();
    // Incident 000: "Status: completed (with 26 messages still queued)".
    let early =
        TamperedStore::new(store.clone(), |c: &mut Campaign| c.status = CampaignStatus::Completed, |_: &mut Tenant| {});
    fires(
        Oracle::new(&[Invariant::Completion], setup(), Limits::default()).check_step(
            10,
            &journal,
            &early,
            &mut truth_with_acceptances(&ids, &store),
            &mut DriverLog::default(),
        ),
        Invariant::Completion,
    );
}

#[test]
fn halt_fires_on_a_claim_after_a_pause() {
    let (store, journal, ids) = fixture();
    let mut truth = truth_with_acceptances(&ids, &store);
    let mut oracle = Oracle::new(&[Invariant::Halt], setup(), Limits::default());
    oracle.check_step(10, &journal, store.as_ref(), &mut truth, &mut DriverLog::default()).unwrap();
    let queued =
        store.messages(ids[0].campaign).unwrap().into_iter().find(|m| m.status == MessageStatus::Queued).unwrap().id;
    let claim_after_pause = vec![
        JournalEntry::Campaign {
            seq: 100,
            at: T0,
            campaign: queued.campaign,
            from: CampaignStatus::Sending,
            to: CampaignStatus::Paused,
        },
        JournalEntry::Message {
            seq: 101,
            at: T0,
            message: queued,
            from: Some(MessageStatus::Queued),
            to: MessageStatus::Submitting,
            cause: TransitionCause::Engine,
        },
    ];
    fires(
        oracle.check_step(20, &claim_after_pause, store.as_ref(), &mut truth, &mut DriverLog::default()),
        Invariant::Halt,
    );
}

#[test]
fn money_fires_when_charges_differ_from_acceptances() {
    let (store, journal, ids) = fixture();
    // Incident 000: $104.55 charged where $5.50 was due.
    let overcharged =
        TamperedStore::new(store.clone(), |_: &mut Campaign| {}, |t: &mut Tenant| t.charged += Credits(10));
    fires(
        Oracle::new(&[Invariant::Money], setup(), Limits::default()).check_step(
            10,
            &journal,
            &overcharged,
            &mut truth_with_acceptances(&ids, &store),
            &mut DriverLog::default(),
        ),
        Invariant::Money,
    );
    // A message charged as sent that the provider never accepted.
    let mut nothing_accepted = Truth::default();
    fires(
        Oracle::new(&[Invariant::Money], setup(), Limits::default()).check_step(
            10,
            &journal,
            store.as_ref(),
            &mut nothing_accepted,
            &mut DriverLog::default(),
        ),
        Invariant::Money,
    );
}

#[test]
fn at_most_once_fires_on_a_second_acceptance() {
    let (store, journal, ids) = fixture();
    let mut truth = truth_with_acceptances(&ids, &store);
    let first = store.message(ids[0]).unwrap();
    truth.record_acceptance(900, "ta_1", &first.destination, &first.body, "p-again");
    let violation = Oracle::new(&[], setup(), Limits::default())
        .check_step(10, &journal, store.as_ref(), &mut truth, &mut DriverLog::default())
        .unwrap_err();
    assert_eq!(violation.invariant, Invariant::AtMostOnce);
    assert_eq!(violation.evidence.len(), 2, "both acceptances are shown: {violation}");
}

#[test]
fn isolation_hears_of_the_drivers_probes_and_the_providers_deliveries() {
    let (store, journal, ids) = fixture();
    let mut breach = DriverLog::default();
    breach.feed.push((5, Told::CrossTenantProbe { request: "GET cmp_1 by globex".into(), status: 200 }));
    fires(
        Oracle::new(&[Invariant::Isolation], setup(), Limits::default()).check_step(
            10,
            &journal,
            store.as_ref(),
            &mut truth_with_acceptances(&ids, &store),
            &mut breach,
        ),
        Invariant::Isolation,
    );
}

#[test]
fn liveness_fires_on_a_campaign_still_sending_or_a_lease_outliving_its_expiry() {
    let (store, journal, ids) = fixture();
    let mut truth = truth_with_acceptances(&ids, &store);
    let mut oracle = Oracle::new(&[Invariant::Liveness], setup(), Limits { lease_grace_ms: 5_000 });
    oracle.check_step(10, &journal, store.as_ref(), &mut truth, &mut DriverLog::default()).unwrap();
    // The third message is still queued: its campaign is still sending.
    fires(oracle.check_final(10, store.as_ref(), &mut truth, &mut DriverLog::default()), Invariant::Liveness);
    // A claim whose lease expired long ago and was never reaped.
    let ClaimOutcome::Claimed(_) = store
        .claim(
            ClaimRequest {
                worker: "w".into(),
                traffic_account: None,
                max_messages: 1,
                lease_ms: 1_000,
                burst: Default::default(),
            },
            T0,
        )
        .unwrap()
    else {
        panic!("the third message was not claimed")
    };
    let mut oracle = Oracle::new(&[Invariant::Liveness], setup(), Limits { lease_grace_ms: 5_000 });
    let journal = [journal, store.take_journal().unwrap()].concat();
    oracle.check_step(10, &journal, store.as_ref(), &mut truth, &mut DriverLog::default()).unwrap();
    let violation = oracle.check_final(60_000, store.as_ref(), &mut truth, &mut DriverLog::default()).unwrap_err();
    assert!(violation.message.contains("lease"), "{violation}");
}
