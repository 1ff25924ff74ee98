//! The oracle's per-step check: a whole campaign drained one claim-and-accept batch of
//! 200 per step (the journal of each step fed in order), and an idle step with nothing
//! in the journal, on a small campaign (recounted after every step) and a 100 000-message
//! one (recounted once a simulated second).
//!
//! The journals are produced by the in-memory store beforehand; the timing covers only
//! the oracle and the judge it feeds. Throughput is in steps, so criterion prints steps per second.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use smsim_benches::{accept, claim, enqueued_campaign, provider_id, Fixture, T0};
use smsim_core::store::memory::MemoryStore;
use smsim_core::store::{JournalEntry, Store};
use smsim_sim::driver::DriverLog;
use smsim_sim::oracle::{Limits, Oracle};
use smsim_sim::provider::Truth;
use std::time::Duration;

const BATCH: u32 = 200;
const TICK_MS: u64 = 10;

/// One acceptance at the provider: destination, body, provider id.
type Acceptance = (String, String, String);

/// A drained campaign: the store, each step's journal with the acceptances the provider
/// made in it, and what the judge is told of the world.
struct Drained {
    store: MemoryStore,
    steps: Vec<(Vec<JournalEntry>, Vec<Acceptance>)>,
    account: String,
    setup: smsim_judge::Setup,
}

fn drained(messages: u32) -> Drained {
    let store = MemoryStore::new();
    let fixture: Fixture = enqueued_campaign(&store, messages);
    let mut steps = vec![(store.take_journal().expect("a journal"), Vec::new())];
    let mut accepted = 0;
    while let Some(claimed) = claim(&store, BATCH, T0) {
        let acceptances = claimed
            .messages
            .iter()
            .enumerate()
            .map(|(n, message)| (message.destination.clone(), message.body.clone(), provider_id(accepted + n)))
            .collect();
        accept(&store, &claimed, accepted, T0);
        accepted += claimed.messages.len();
        steps.push((store.take_journal().expect("a journal"), acceptances));
    }
    let account = store.traffic_account(fixture.account).expect("the account");
    let setup = smsim_judge::Setup {
        tenants: store
            .tenants()
            .expect("the tenants")
            .into_iter()
            .map(|t| smsim_judge::TenantSetup {
                tenant: t.id.to_string(),
                opening_credits: t.funded.get(),
                rate_limit_per_s: t.rate_limit_per_s,
                numbers: Default::default(),
            })
            .collect(),
        accounts: vec![smsim_judge::AccountSetup {
            account: account.id.to_string(),
            wire: smsim_judge::Wire::Mitto,
            price_per_segment: account.price_per_segment.get(),
            rate_limit_per_s: account.rate_limit_per_s,
        }],
        halt_grace_ms: 10_000,
        forbidden_destinations: Default::default(),
        contacts: Default::default(),
        retry: None,
        journal: true,
        rate_at_provider: None,
        rate_strict: false,
    };
    Drained { store, steps, account: fixture.account.to_string(), setup }
}

/// Feeds every step's journal, and the acceptances made in it, to `oracle`, one step per
/// tick.
fn feed(oracle: &mut Oracle, drained: &Drained, truth: &mut Truth, driver: &mut DriverLog) {
    for (step, (journal, acceptances)) in drained.steps.iter().enumerate() {
        let at_ms = step as u64 * TICK_MS;
        for (destination, body, provider_id) in acceptances {
            truth.record_acceptance(at_ms, &drained.account, destination, body, provider_id);
        }
        oracle.check_step(at_ms, journal, &drained.store, truth, driver).expect("the invariants hold");
    }
}

fn oracle(c: &mut Criterion) {
    for messages in [2_000u32, 100_000] {
        let drained = drained(messages);
        let mut group = c.benchmark_group(format!("oracle/{messages}_messages"));
        group.sample_size(10).sampling_mode(SamplingMode::Flat).warm_up_time(Duration::from_millis(200));
        group.measurement_time(Duration::from_secs(3));
        group.throughput(Throughput::Elements(drained.steps.len() as u64));
        group.bench_function("claim_and_accept_200_per_step", |b| {
            b.iter_batched(
                || (Oracle::new(&[], drained.setup.clone(), Limits::default()), Truth::default()),
                |(mut oracle, mut truth)| {
                    feed(&mut oracle, &drained, &mut truth, &mut DriverLog::default());
                    oracle
                },
                BatchSize::PerIteration,
            )
        });
        let mut oracle = Oracle::new(&[], drained.setup.clone(), Limits::default());
        let (mut truth, mut driver) = (Truth::default(), DriverLog::default());
        feed(&mut oracle, &drained, &mut truth, &mut driver);
        let mut at_ms = drained.steps.len() as u64 * TICK_MS;
        group.throughput(Throughput::Elements(1));
        group.sampling_mode(SamplingMode::Auto);
        group.bench_function("idle_step", |b| {
            b.iter(|| {
                at_ms += TICK_MS;
                oracle.check_step(at_ms, &[], &drained.store, &mut truth, &mut driver).expect("the invariants hold")
            })
        });
        group.finish();
    }
}

criterion_group!(benches, oracle);
criterion_main!(benches);
