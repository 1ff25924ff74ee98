//! Every invariant of the oracle fires on a history or an engine that breaks it.
//!
//! The engine itself cannot be made to break these (that is its point); here the oracle
//! is fed fabricated journals, tampered store answers and a provider ground truth that a
//! broken engine would produce. The `incidents` scenarios do the same end to end.

use smsim_core::domain::{
    Audience, Campaign, CampaignStatus, MessageError, MessageStatus, ProviderKind, Tenant, TransitionCause,
};
use smsim_core::store::memory::MemoryStore;
use smsim_core::store::*;
use smsim_core::{Credits, MessageId, Timestamp};
use smsim_sim::driver::DriverLog;
use smsim_sim::faulty_store::TamperedStore;
use smsim_sim::oracle::{Invariant, Limits, Oracle};
use smsim_sim::provider::{Acceptance, MessageKey, SentReport, Truth};
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
        .claim(ClaimRequest { worker: "w".into(), traffic_account: None, max_messages: 2, lease_ms: 1_000 }, T0)
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
        truth.accepted.insert(
            (message.destination.into(), message.body.into()),
            vec![Acceptance { at_ms: 5, provider_id: format!("p-{id}").into(), account: "ta_1".into() }],
        );
    }
    truth
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
    let truth = truth_with_acceptances(&ids, &store);
    let mut oracle = Oracle::new(&[], Limits::default());
    oracle.check_step(10, &journal, store.as_ref(), &truth, &DriverLog::default()).unwrap();
    assert!(
        Invariant::ALL.iter().filter(|i| **i != Invariant::Liveness).all(|i| oracle
            .checks
            .get(i)
            .copied()
            .unwrap_or(0)
            > 0),
        "{:?}",
        oracle.checks
    );
}

#[test]
fn counters_fire_when_stored_numbers_differ_from_the_messages() {
    let (store, journal, ids) = fixture();
    // Incident 000: a counter bumped on every report — 139 sent for 100 contacts.
    let inflated = TamperedStore::new(store.clone(), |c: &mut Campaign| c.counts.accepted += 39, |_: &mut Tenant| {});
    fires(
        Oracle::new(&[], Limits::default()).check_step(
            10,
            &journal,
            &inflated,
            &truth_with_acceptances(&ids, &store),
            &DriverLog::default(),
        ),
        Invariant::Counters,
    );
}

#[test]
fn progress_fires_when_it_goes_backwards_without_an_operator() {
    let (store, journal, ids) = fixture();
    let truth = truth_with_acceptances(&ids, &store);
    let mut oracle = Oracle::new(&[Invariant::Progress], Limits::default());
    oracle.check_step(10, &journal, store.as_ref(), &truth, &DriverLog::default()).unwrap();
    let regressed = TamperedStore::new(store.clone(), |c: &mut Campaign| c.counts.accepted -= 1, |_: &mut Tenant| {});
    let touch = vec![JournalEntry::Campaign {
        seq: 99,
        at: T0,
        campaign: ids[0].campaign,
        from: CampaignStatus::Sending,
        to: CampaignStatus::Paused,
    }];
    fires(oracle.check_step(20, &touch, &regressed, &truth, &DriverLog::default()), Invariant::Progress);
}

#[test]
fn transitions_fire_on_a_move_against_the_lattice() {
    let (store, journal, ids) = fixture();
    let mut oracle = Oracle::new(&[], Limits::default());
    let truth = truth_with_acceptances(&ids, &store);
    oracle.check_step(10, &journal, store.as_ref(), &truth, &DriverLog::default()).unwrap();
    let backwards = vec![JournalEntry::Message {
        seq: 100,
        at: T0,
        message: ids[0],
        from: Some(MessageStatus::Accepted),
        to: MessageStatus::Queued,
        cause: TransitionCause::Engine,
    }];
    fires(oracle.check_step(20, &backwards, store.as_ref(), &truth, &DriverLog::default()), Invariant::Transitions);
}

#[test]
fn completion_fires_on_a_campaign_completed_with_messages_queued() {
    let (store, journal, ids) = fixture();
    // Incident 000: "Status: completed (with 26 messages still queued)".
    let early =
        TamperedStore::new(store.clone(), |c: &mut Campaign| c.status = CampaignStatus::Completed, |_: &mut Tenant| {});
    fires(
        Oracle::new(&[Invariant::Completion], Limits::default()).check_step(
            10,
            &journal,
            &early,
            &truth_with_acceptances(&ids, &store),
            &DriverLog::default(),
        ),
        Invariant::Completion,
    );
}

#[test]
fn halt_fires_on_a_claim_after_a_pause() {
    let (store, journal, ids) = fixture();
    let truth = truth_with_acceptances(&ids, &store);
    let mut oracle = Oracle::new(&[Invariant::Halt], Limits::default());
    oracle.check_step(10, &journal, store.as_ref(), &truth, &DriverLog::default()).unwrap();
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
    fires(oracle.check_step(20, &claim_after_pause, store.as_ref(), &truth, &DriverLog::default()), Invariant::Halt);
}

#[test]
fn money_fires_when_charges_differ_from_acceptances() {
    let (store, journal, ids) = fixture();
    // Incident 000: $104.55 charged where $5.50 was due.
    let overcharged =
        TamperedStore::new(store.clone(), |_: &mut Campaign| {}, |t: &mut Tenant| t.charged += Credits(10));
    fires(
        Oracle::new(&[Invariant::Money], Limits::default()).check_step(
            10,
            &journal,
            &overcharged,
            &truth_with_acceptances(&ids, &store),
            &DriverLog::default(),
        ),
        Invariant::Money,
    );
    // A message charged as sent that the provider never accepted.
    let nothing_accepted = Truth::default();
    fires(
        Oracle::new(&[Invariant::Money], Limits::default()).check_step(
            10,
            &journal,
            store.as_ref(),
            &nothing_accepted,
            &DriverLog::default(),
        ),
        Invariant::Money,
    );
}

#[test]
fn at_most_once_fires_on_a_second_acceptance() {
    let (store, journal, ids) = fixture();
    let mut truth = truth_with_acceptances(&ids, &store);
    let (key, first) = truth.accepted.iter_mut().next().unwrap();
    first.push(Acceptance { at_ms: 900, provider_id: "p-again".into(), account: "ta_1".into() });
    truth.duplicated.push(key.clone());
    let violation = Oracle::new(&[], Limits::default())
        .check_step(10, &journal, store.as_ref(), &truth, &DriverLog::default())
        .unwrap_err();
    assert_eq!(violation.invariant, Invariant::AtMostOnce);
    assert_eq!(violation.evidence.len(), 2, "both acceptances are shown: {violation}");
}

#[test]
fn rate_fires_when_an_account_exceeds_its_limit() {
    let (store, journal, ids) = fixture();
    let truth = truth_with_acceptances(&ids, &store);
    // The fixture claimed two messages in the same second; a limit of 0.5/s is broken.
    let limits = Limits { accounts: BTreeMap::from([("ta_1".to_owned(), 0)]), ..Limits::default() };
    fires(
        Oracle::new(&[Invariant::Rate], limits).check_step(10, &journal, store.as_ref(), &truth, &DriverLog::default()),
        Invariant::Rate,
    );
    let generous = Limits { accounts: BTreeMap::from([("ta_1".to_owned(), 1)]), ..Limits::default() };
    Oracle::new(&[Invariant::Rate], generous)
        .check_step(10, &journal, store.as_ref(), &truth, &DriverLog::default())
        .unwrap();
}

#[test]
fn isolation_fires_on_a_breach_an_accepted_forgery_or_a_forbidden_number() {
    let (store, journal, ids) = fixture();
    let truth = truth_with_acceptances(&ids, &store);
    let breach =
        DriverLog { isolation_breaches: vec!["GET cmp_1 by globex answered 200".into()], ..DriverLog::default() };
    fires(
        Oracle::new(&[Invariant::Isolation], Limits::default()).check_step(
            10,
            &journal,
            store.as_ref(),
            &truth,
            &breach,
        ),
        Invariant::Isolation,
    );
    let mut forged = truth_with_acceptances(&ids, &store);
    forged.reports.push(SentReport {
        at_ms: 5,
        account: "ta_1".into(),
        provider_id: "p-x".into(),
        status: "Delivered",
        is_final: true,
        forged: true,
        answered: Some(200),
    });
    fires(
        Oracle::new(&[Invariant::Isolation], Limits::default()).check_step(
            10,
            &journal,
            store.as_ref(),
            &forged,
            &DriverLog::default(),
        ),
        Invariant::Isolation,
    );
    let mut to_opted_out = truth_with_acceptances(&ids, &store);
    to_opted_out.received.push((5, "ta_1".into(), "+306912300001".into()));
    let forbidden = BTreeSet::from(["+306912300001".to_owned()]);
    fires(
        Oracle::new(&[Invariant::Isolation], Limits::default()).check_final(
            10,
            store.as_ref(),
            &to_opted_out,
            &forbidden,
        ),
        Invariant::Isolation,
    );
}

#[test]
fn liveness_fires_on_a_campaign_still_sending_at_the_end() {
    let (store, _, ids) = fixture();
    let truth = truth_with_acceptances(&ids, &store);
    fires(
        Oracle::new(&[Invariant::Liveness], Limits::default()).check_final(
            10,
            store.as_ref(),
            &truth,
            &BTreeSet::new(),
        ),
        Invariant::Liveness,
    );
}

#[test]
fn liveness_fires_on_an_accepted_report_never_reflected() {
    let (store, _, ids) = fixture();
    let first = store.message(ids[0]).unwrap();
    store.cancel(first.tenant, ids[0].campaign, T0).unwrap();
    let mut truth = truth_with_acceptances(&ids, &store);
    // The provider accepted the message a second time and reported that id, which the
    // engine never learned: the report can be reflected nowhere.
    let key: MessageKey = (first.destination.as_str().into(), first.body.as_str().into());
    truth.accepted.get_mut(&key).unwrap().push(Acceptance {
        at_ms: 6,
        provider_id: "p-again".into(),
        account: "ta_1".into(),
    });
    let report = |provider_id: &str| SentReport {
        at_ms: 7,
        account: "ta_1".into(),
        provider_id: provider_id.into(),
        status: "Delivered",
        is_final: true,
        forged: false,
        answered: Some(204),
    };
    truth.reports = vec![report(&format!("p-{}", ids[0])), report(&format!("p-{}", ids[1]))];
    let oracle = || Oracle::new(&[Invariant::Liveness], Limits::default());
    oracle().check_final(10, store.as_ref(), &truth, &BTreeSet::new()).unwrap();
    truth.reports.push(report("p-again"));
    fires(oracle().check_final(10, store.as_ref(), &truth, &BTreeSet::new()), Invariant::Liveness);
}

#[test]
fn isolation_fires_on_a_forgery_answered_steps_after_it_was_sent() {
    let (store, journal, ids) = fixture();
    let mut truth = truth_with_acceptances(&ids, &store);
    truth.reports.push(SentReport {
        at_ms: 5,
        account: "ta_1".into(),
        provider_id: "p-x".into(),
        status: "Delivered",
        is_final: true,
        forged: true,
        answered: None,
    });
    let mut oracle = Oracle::new(&[Invariant::Isolation], Limits::default());
    oracle.check_step(10, &journal, store.as_ref(), &truth, &DriverLog::default()).unwrap();
    oracle.check_step(20, &[], store.as_ref(), &truth, &DriverLog::default()).unwrap();
    truth.reports[0].answered = Some(200);
    fires(oracle.check_step(30, &[], store.as_ref(), &truth, &DriverLog::default()), Invariant::Isolation);
}

/// The fixture with its third message claimed and ended by `outcome` (after `settle_ms`,
/// stale unknowns settle as `UNKNOWN_OUTCOME`), its campaign no longer sending, an oracle
/// that saw the whole journal, and a ground truth in which the provider accepted and
/// reported all three messages.
fn third_message_ended(outcome: SubmissionResult) -> (Arc<MemoryStore>, Oracle, Truth) {
    let (store, mut journal, mut ids) = fixture();
    let ClaimOutcome::Claimed(claim) = store
        .claim(ClaimRequest { worker: "w".into(), traffic_account: None, max_messages: 1, lease_ms: 1_000 }, T0)
        .unwrap()
    else {
        panic!("the third message was not claimed")
    };
    let third = claim.messages[0].id;
    store.record_submissions(claim.token, vec![(third, outcome)], T0).unwrap();
    store.settle_stale_unknowns(0, T0.plus_ms(1)).unwrap();
    let campaign = store.all_campaigns().unwrap().remove(0);
    if campaign.status == CampaignStatus::Sending {
        store.cancel(campaign.tenant, campaign.id, T0.plus_ms(2)).unwrap();
    }
    journal.extend(store.take_journal().unwrap());
    ids.push(third);
    let mut truth = truth_with_acceptances(&ids, &store);
    truth.reports = ids
        .iter()
        .map(|id| SentReport {
            at_ms: 7,
            account: "ta_1".into(),
            provider_id: format!("p-{id}").into(),
            status: "Delivered",
            is_final: true,
            forged: false,
            answered: Some(204),
        })
        .collect();
    let mut oracle = Oracle::new(&[Invariant::Liveness], Limits::default());
    oracle.check_step(10, &journal, store.as_ref(), &truth, &DriverLog::default()).unwrap();
    (store, oracle, truth)
}

/// A report the engine could not reflect is excused only for a message settled as
/// failed `UNKNOWN_OUTCOME`; any other failure must have taken the report in.
#[test]
fn liveness_excuses_an_unreflected_report_only_for_an_unknown_outcome() {
    let unknown = SubmissionResult::Unknown {
        error: MessageError { code: "TIMEOUT".into(), retryable: false, detail: "no answer".into() },
    };
    let (store, mut oracle, truth) = third_message_ended(unknown);
    let failed = store.messages(truth_campaign(&store)).unwrap();
    assert!(failed.iter().any(|m| m.last_error.as_ref().is_some_and(|e| e.code == "UNKNOWN_OUTCOME")), "{failed:?}");
    oracle.check_final(20, store.as_ref(), &truth, &BTreeSet::new()).unwrap();

    let rejected = SubmissionResult::Failed {
        error: MessageError { code: "REJECTED".into(), retryable: false, detail: "refused".into() },
    };
    let (store, mut oracle, truth) = third_message_ended(rejected);
    fires(oracle.check_final(20, store.as_ref(), &truth, &BTreeSet::new()), Invariant::Liveness);
}

fn truth_campaign(store: &MemoryStore) -> smsim_core::CampaignId {
    store.all_campaigns().unwrap()[0].id
}
