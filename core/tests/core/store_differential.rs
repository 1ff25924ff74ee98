//! Differential test: random operation sequences applied to the in-memory store (the
//! reference model) and the SQLite store must give equal answers at every step — Ok
//! values and errors alike — and leave equal state behind.

use proptest::prelude::*;
use smsim_core::domain::{Audience, MessageError, PauseReason, ProviderKind, ReportStatus};
use smsim_core::store::memory::MemoryStore;
use smsim_core::store::sqlite::SqliteStore;
use smsim_core::store::*;
use smsim_core::{CampaignId, Credits, MessageId, TenantId, Timestamp, TrafficAccountId};
use std::collections::BTreeMap;

const T0: u64 = 1_700_000_000_000;

/// One operation, with references resolved modulo what exists when it runs.
#[derive(Clone, Debug)]
enum Op {
    Tenant { credits: i64, rate: Option<u32> },
    Account { owner: Option<u8>, idempotent: bool, rate: Option<u32> },
    Import { tenant: u8, phones: Vec<u16>, opted_out: bool },
    Campaign { tenant: u8, account: u8, ucs2: bool, schedule_in_ms: Option<u64> },
    Enqueue { tenant: u8, campaign: u8, key: Option<(u8, u8)> },
    Claim { account: Option<u8>, max: u32, lease_ms: u64 },
    Record { stale: bool, outcome: u8 },
    Report { message: u16, by_provider_id: bool, status: u8 },
    Reap,
    Settle { older_than_ms: u64 },
    Resolve { message: u16, accepted: bool },
    Operator { tenant: u8, campaign: u8, action: u8 },
    Credits { tenant: u8, amount: i64, top_up: bool },
    Start,
    Advance { ms: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0i64..3_000, proptest::option::of(1u32..5)).prop_map(|(credits, rate)| Op::Tenant { credits, rate }),
        1 => (proptest::option::of(any::<u8>()), any::<bool>(), proptest::option::of(1u32..8)).prop_map(|(owner, idempotent, rate)| Op::Account { owner, idempotent, rate }),
        2 => (any::<u8>(), proptest::collection::vec(0u16..40, 0..6), any::<bool>()).prop_map(|(tenant, phones, opted_out)| Op::Import { tenant, phones, opted_out }),
        2 => (any::<u8>(), any::<u8>(), any::<bool>(), proptest::option::of(0u64..5_000)).prop_map(|(tenant, account, ucs2, schedule_in_ms)| Op::Campaign { tenant, account, ucs2, schedule_in_ms }),
        4 => (any::<u8>(), any::<u8>(), proptest::option::of((0u8..3, 0u8..2))).prop_map(|(tenant, campaign, key)| Op::Enqueue { tenant, campaign, key }),
        6 => (proptest::option::of(any::<u8>()), 1u32..6, 100u64..5_000).prop_map(|(account, max, lease_ms)| Op::Claim { account, max, lease_ms }),
        6 => (any::<bool>(), 0u8..4).prop_map(|(stale, outcome)| Op::Record { stale, outcome }),
        5 => (any::<u16>(), any::<bool>(), 0u8..6).prop_map(|(message, by_provider_id, status)| Op::Report { message, by_provider_id, status }),
        1 => Just(Op::Reap),
        1 => (0u64..5_000).prop_map(|older_than_ms| Op::Settle { older_than_ms }),
        1 => (any::<u16>(), any::<bool>()).prop_map(|(message, accepted)| Op::Resolve { message, accepted }),
        2 => (any::<u8>(), any::<u8>(), 0u8..4).prop_map(|(tenant, campaign, action)| Op::Operator { tenant, campaign, action }),
        1 => (any::<u8>(), -500i64..2_000, any::<bool>()).prop_map(|(tenant, amount, top_up)| Op::Credits { tenant, amount, top_up }),
        1 => Just(Op::Start),
        3 => (1u64..3_000).prop_map(|ms| Op::Advance { ms }),
    ]
}

/// What the driver remembers between operations (identical for both stores, since it
/// is derived from answers that are asserted equal).
#[derive(Default)]
struct Driver {
    now: u64,
    tenants: u64,
    accounts: u64,
    campaigns: Vec<(TenantId, CampaignId)>,
    claims: Vec<(u64, Vec<MessageId>)>,
    messages: Vec<MessageId>,
    provider_ids: Vec<(TrafficAccountId, String)>,
}

fn pick<T: Clone>(items: &[T], index: impl Into<u64>) -> Option<T> {
    (!items.is_empty()).then(|| items[(index.into() % items.len() as u64) as usize].clone())
}

fn error(code: &str, retryable: bool) -> MessageError {
    MessageError { code: code.into(), retryable, detail: code.into() }
}

fn report_status(n: u8) -> ReportStatus {
    match n {
        0 => ReportStatus::Accepted,
        1 => ReportStatus::Delivered,
        2 => ReportStatus::Undelivered,
        3 => ReportStatus::Expired,
        4 => ReportStatus::Rejected,
        _ => ReportStatus::Unrecognized("WEIRD".into()),
    }
}

/// Applies `op` to `store`, returning a printable answer to compare and, for a
/// successful claim, its token and messages.
fn apply(store: &dyn Store, driver: &Driver, op: &Op) -> (String, Option<(u64, Vec<MessageId>)>) {
    if let Op::Claim { account, max, lease_ms } = op {
        let request = ClaimRequest {
            worker: "w".into(),
            traffic_account: account.map(|n| TrafficAccountId(1 + u64::from(n) % driver.accounts.max(1))),
            max_messages: *max,
            lease_ms: *lease_ms,
        };
        let outcome = store.claim(request, Timestamp(T0 + driver.now));
        let claim = match &outcome {
            Ok(ClaimOutcome::Claimed(claim)) => Some((claim.token, claim.messages.iter().map(|m| m.id).collect())),
            _ => None,
        };
        return (format!("{outcome:?}"), claim);
    }
    (answer(store, driver, op), None)
}

/// The printable answer of every operation but a claim.
fn answer(store: &dyn Store, driver: &Driver, op: &Op) -> String {
    let now = Timestamp(T0 + driver.now);
    let tenant_ref = |n: u8| TenantId(1 + u64::from(n) % driver.tenants.max(1));
    let answer = match op {
        Op::Tenant { credits, rate } => {
            format!(
                "{:?}",
                store.create_tenant(
                    NewTenant {
                        name: "t".into(),
                        api_key_hash: format!("k{}", driver.tenants),
                        credits: Credits(*credits),
                        rate_limit_per_s: *rate
                    },
                    now
                )
            )
        }
        Op::Account { owner, idempotent, rate } => format!(
            "{:?}",
            store.create_traffic_account(NewTrafficAccount {
                owner: owner.map(tenant_ref),
                name: "a".into(),
                provider: ProviderKind::Mitto,
                base_url: "http://p".into(),
                credentials: BTreeMap::new(),
                sender: "S".into(),
                rate_limit_per_s: *rate,
                price_per_segment: Credits(7),
                idempotent_submissions: *idempotent,
            })
        ),
        Op::Import { tenant, phones, opted_out } => {
            let rows = phones
                .iter()
                .map(|n| NewContact {
                    phone: if *n == 39 { "garbage".into() } else { format!("+3069123{n:05}") },
                    attributes: BTreeMap::from([(
                        "name".to_owned(),
                        if n % 3 == 0 { "Μαρία".to_owned() } else { "Maria".to_owned() },
                    )]),
                    opted_out: *opted_out && n % 2 == 0,
                })
                .collect();
            format!("{:?}", store.import_contacts(tenant_ref(*tenant), rows, now))
        }
        Op::Campaign { tenant, account, ucs2, schedule_in_ms } => format!(
            "{:?}",
            store.create_campaign(
                tenant_ref(*tenant),
                NewCampaign {
                    name: "c".into(),
                    body_template: if *ucs2 {
                        format!("{{{{name}}}} {}", "x".repeat(65))
                    } else {
                        "Hi {{name}}".into()
                    },
                    sender: None,
                    audience: Audience::All,
                    traffic_account: TrafficAccountId(1 + u64::from(*account) % driver.accounts.max(1)),
                    schedule_at: schedule_in_ms.map(|ms| now.plus_ms(ms)),
                },
                now,
            )
        ),
        Op::Enqueue { tenant, campaign, key } => {
            let (owner, id) = pick(&driver.campaigns, *campaign).unwrap_or((tenant_ref(*tenant), CampaignId(1)));
            let owner = if *tenant % 5 == 0 { tenant_ref(*tenant) } else { owner };
            let key = key
                .map(|(key, hash)| IdempotencyKey { key: format!("key-{key}"), request_hash: format!("hash-{hash}") });
            format!("{:?}", store.enqueue(owner, id, key, now))
        }
        Op::Claim { .. } => unreachable!("claims are applied by `apply`"),
        Op::Record { stale, outcome } => {
            let Some((token, ids)) = driver.claims.last().cloned() else { return "no claim".into() };
            let token = if *stale { token.saturating_sub(1) } else { token };
            let results = ids
                .iter()
                .enumerate()
                .map(|(n, id)| {
                    let result = match (*outcome as usize + n) % 4 {
                        0 => SubmissionResult::Accepted {
                            provider_message_id: format!("p-{id}"),
                            bulk_id: Some("b".into()),
                        },
                        1 => SubmissionResult::Retry {
                            error: error("HTTP_503", true),
                            next_attempt_at: now.plus_ms(700),
                        },
                        2 => SubmissionResult::Failed { error: error("HTTP_400", false) },
                        _ => SubmissionResult::Unknown { error: error("AMBIGUOUS", false) },
                    };
                    (*id, result)
                })
                .collect();
            format!("{:?}", store.record_submissions(token, results, now))
        }
        Op::Report { message, by_provider_id, status } => {
            let Some(id) = pick(&driver.messages, *message) else { return "no message".into() };
            let known = pick(&driver.provider_ids, *message);
            let (account, provider_message_id) = match (by_provider_id, known) {
                (true, Some(known)) => known,
                _ => (TrafficAccountId(1 + u64::from(*message) % driver.accounts.max(1)), format!("p-{id}")),
            };
            let report = InboundReport {
                traffic_account: account,
                provider_message_id,
                message_ref: (!by_provider_id).then_some(id),
                status: report_status(*status),
                error_code: (*status == 2).then(|| "E1".to_owned()),
            };
            format!("{:?}", store.apply_report(report, now))
        }
        Op::Reap => format!("{:?}", store.reap_expired_leases(now)),
        Op::Settle { older_than_ms } => format!("{:?}", store.settle_stale_unknowns(*older_than_ms, now)),
        Op::Resolve { message, accepted } => {
            let Some(id) = pick(&driver.messages, *message) else { return "no message".into() };
            let resolution = if *accepted {
                Resolution::Accepted { provider_message_id: format!("r-{id}") }
            } else {
                Resolution::NotAccepted { error: error("NOT_FOUND", false) }
            };
            format!("{:?}", store.resolve_unknown(id, resolution, now))
        }
        Op::Operator { tenant, campaign, action } => {
            let (owner, id) = pick(&driver.campaigns, *campaign).unwrap_or((tenant_ref(*tenant), CampaignId(1)));
            match action {
                0 => format!("{:?}", store.pause(owner, id, PauseReason::Operator, now)),
                1 => format!("{:?}", store.resume(owner, id, now)),
                2 => format!("{:?}", store.cancel(owner, id, now)),
                _ => format!("{:?}", store.retry_failed(owner, id, now)),
            }
        }
        Op::Credits { tenant, amount, top_up } => {
            let change =
                if *top_up { CreditChange::TopUp(Credits(*amount)) } else { CreditChange::Adjust(Credits(*amount)) };
            format!("{:?}", store.change_credits(tenant_ref(*tenant), change, now))
        }
        Op::Start => format!("{:?}", store.start_due_campaigns(now)),
        Op::Advance { .. } => "advance".into(),
    };
    answer
}

/// Updates what the driver remembers from the (already compared) answer and state.
fn observe(store: &dyn Store, driver: &mut Driver, op: &Op, answer: &str, claim: Option<(u64, Vec<MessageId>)>) {
    match op {
        Op::Advance { ms } => driver.now += ms,
        Op::Tenant { .. } if answer.starts_with("Ok") => driver.tenants += 1,
        Op::Account { .. } if answer.starts_with("Ok") => driver.accounts += 1,
        _ => {}
    }
    driver.claims.extend(claim);
    driver.campaigns = store.all_campaigns().unwrap().iter().map(|c| (c.tenant, c.id)).collect();
    let messages: Vec<_> = driver.campaigns.iter().flat_map(|(_, id)| store.messages(*id).unwrap()).collect();
    driver.messages = messages.iter().map(|m| m.id).collect();
    driver.provider_ids =
        messages.iter().filter_map(|m| m.provider_message_id.clone().map(|p| (m.traffic_account, p))).collect();
}

fn state(store: &dyn Store) -> String {
    let mut text = format!(
        "{:?}\n{:?}\n{:?}\n",
        store.tenants().unwrap(),
        store.traffic_accounts().unwrap(),
        store.all_campaigns().unwrap()
    );
    for campaign in store.all_campaigns().unwrap() {
        text += &format!("{:?}\n{:?}\n", store.messages(campaign.id).unwrap(), store.recount(campaign.id).unwrap());
        assert_eq!(
            campaign.counts,
            store.recount(campaign.id).unwrap(),
            "counters of {} differ from a recount",
            campaign.id
        );
    }
    for tenant in store.tenants().unwrap() {
        let ledger = store.ledger_recount(tenant.id).unwrap();
        assert_eq!((tenant.reserved, tenant.charged), (ledger.reserved, ledger.charged), "ledger of {}", tenant.id);
        text += &format!(
            "{:?}\n{:?}\n",
            store.contacts(tenant.id).unwrap(),
            store.queue_stats(Some(tenant.id), Timestamp(T0)).unwrap()
        );
    }
    text += &format!(
        "{:?}\n{:?}\n",
        store.queue_stats(None, Timestamp(T0)).unwrap(),
        store.unknown_messages(1_000).unwrap()
    );
    text
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn memory_and_sqlite_stores_agree(ops in proptest::collection::vec(op(), 1..70)) {
        let memory = MemoryStore::new();
        let sqlite = SqliteStore::open_in_memory().unwrap();
        let mut driver = Driver::default();
        // Every sequence starts from a tenant, an account and contacts, so the
        // interesting operations have something to act on.
        let prelude = [
            Op::Tenant { credits: 2_000, rate: None },
            Op::Account { owner: None, idempotent: false, rate: None },
            Op::Import { tenant: 0, phones: vec![1, 2, 3, 4, 5, 6], opted_out: true },
            Op::Campaign { tenant: 0, account: 0, ucs2: false, schedule_in_ms: None },
            Op::Enqueue { tenant: 1, campaign: 0, key: None },
            Op::Campaign { tenant: 0, account: 0, ucs2: true, schedule_in_ms: Some(1_000) },
        ];
        for (step, op) in prelude.iter().chain(ops.iter()).enumerate() {
            let (expected, claim) = apply(&memory, &driver, op);
            let (actual, _) = apply(&sqlite, &driver, op);
            prop_assert_eq!(&expected, &actual, "step {} {:?}", step, op);
            observe(&memory, &mut driver, op, &expected, claim);
        }
        prop_assert_eq!(state(&memory), state(&sqlite));
        prop_assert_eq!(memory.take_journal().unwrap(), sqlite.take_journal().unwrap());
    }
}
