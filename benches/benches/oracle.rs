//! The oracle's per-step check: a whole campaign drained one claim-and-accept batch of
//! 200 per step (the journal of each step fed in order), and an idle step with nothing
//! in the journal, on a small campaign (recounted after every step) and a 100 000-message
//! one (recounted once a simulated second).
//!
//! The journals are produced by the in-memory store beforehand; the timing covers only
//! the oracle. Throughput is in steps, so criterion prints steps per second.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use smsim_benches::{accept, claim, enqueued_campaign, provider_id, Fixture, T0};
use smsim_core::store::memory::MemoryStore;
use smsim_core::store::{JournalEntry, Store};
use smsim_sim::driver::DriverLog;
use smsim_sim::oracle::{Limits, Oracle};
use smsim_sim::provider::{Acceptance, SentReport, Truth};
use std::time::Duration;

const BATCH: u32 = 200;
const TICK_MS: u64 = 10;

/// A drained campaign: the store, each step's journal, and the provider's truth.
struct Drained {
    store: MemoryStore,
    journals: Vec<Vec<JournalEntry>>,
    truth: Truth,
}

fn drained(messages: u32) -> Drained {
    let store = MemoryStore::new();
    let fixture: Fixture = enqueued_campaign(&store, messages);
    let mut journals = vec![store.take_journal().expect("a journal")];
    let mut truth = Truth::default();
    let mut accepted = 0;
    while let Some(claimed) = claim(&store, BATCH, T0) {
        for (n, message) in claimed.messages.iter().enumerate() {
            let key = (message.destination.as_str().into(), message.body.as_str().into());
            let acceptance = Acceptance {
                at_ms: 0,
                provider_id: provider_id(accepted + n).into(),
                account: fixture.account.to_string().into(),
            };
            truth.accepted.insert(key, vec![acceptance]);
        }
        accept(&store, &claimed, accepted, T0);
        accepted += claimed.messages.len();
        journals.push(store.take_journal().expect("a journal"));
    }
    // Every accepted message has had its report sent and answered.
    truth.reports = (0..accepted)
        .map(|n| SentReport {
            at_ms: 0,
            account: fixture.account.to_string().into(),
            provider_id: provider_id(n).into(),
            status: "Delivered",
            is_final: true,
            forged: false,
            answered: Some(204),
        })
        .collect();
    Drained { store, journals, truth }
}

/// Feeds every step's journal to `oracle`, one step per tick.
fn feed(oracle: &mut Oracle, drained: &Drained, driver: &DriverLog) {
    for (step, journal) in drained.journals.iter().enumerate() {
        let at_ms = step as u64 * TICK_MS;
        oracle.check_step(at_ms, journal, &drained.store, &drained.truth, driver).expect("the invariants hold");
    }
}

fn oracle(c: &mut Criterion) {
    let driver = DriverLog::default();
    for messages in [2_000u32, 100_000] {
        let drained = drained(messages);
        let mut group = c.benchmark_group(format!("oracle/{messages}_messages"));
        group.sample_size(10).sampling_mode(SamplingMode::Flat).warm_up_time(Duration::from_millis(200));
        group.measurement_time(Duration::from_secs(3));
        group.throughput(Throughput::Elements(drained.journals.len() as u64));
        group.bench_function("claim_and_accept_200_per_step", |b| {
            b.iter_batched(
                || Oracle::new(&[], Limits::default()),
                |mut oracle| {
                    feed(&mut oracle, &drained, &driver);
                    oracle
                },
                BatchSize::PerIteration,
            )
        });
        let mut oracle = Oracle::new(&[], Limits::default());
        feed(&mut oracle, &drained, &driver);
        let mut at_ms = drained.journals.len() as u64 * TICK_MS;
        group.throughput(Throughput::Elements(1));
        group.sampling_mode(SamplingMode::Auto);
        group.bench_function("idle_step", |b| {
            b.iter(|| {
                at_ms += TICK_MS;
                oracle.check_step(at_ms, &[], &drained.store, &drained.truth, &driver).expect("the invariants hold")
            })
        });
        group.finish();
    }
}

criterion_group!(benches, oracle);
criterion_main!(benches);
