//! Store operations at campaign scale, on both implementations: enqueue 100 000
//! recipients, claim and record them in batches of 200, apply 100 000 delivery reports.
//!
//! Each measured iteration starts from a fresh store at the same stage (prepared outside
//! the timing), so every sample does the same work. SQLite runs on a file in WAL mode, as serve mode
//! does, not in memory.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use smsim_benches::{accept, accept_everything, claim, delivered, draft_campaign, enqueued_campaign, Fixture, T0};
use smsim_core::store::memory::MemoryStore;
use smsim_core::store::sqlite::SqliteStore;
use smsim_core::store::Store;
use std::time::Duration;

const RECIPIENTS: u32 = 100_000;
const BATCH: u32 = 200;

/// A fresh store of one kind; the temporary directory (SQLite) lives as long as it.
struct Fresh {
    store: Box<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

/// How far a fixture store has been taken.
#[derive(Clone, Copy)]
enum Stage {
    /// Contacts and a draft campaign.
    Draft,
    /// The campaign enqueued.
    Enqueued,
    /// Every message claimed and accepted.
    Accepted,
}

fn build(store: &dyn Store, stage: Stage) -> Fixture {
    match stage {
        Stage::Draft => draft_campaign(store, RECIPIENTS),
        Stage::Enqueued => enqueued_campaign(store, RECIPIENTS),
        Stage::Accepted => {
            let fixture = enqueued_campaign(store, RECIPIENTS);
            accept_everything(store, BATCH);
            fixture
        }
    }
}

/// Fixture stores at a stage. An SQLite fixture is built once and copied for each
/// iteration (a file copy takes milliseconds; building it again takes seconds); the
/// in-memory store has no file to copy and is built every time.
struct Fixtures {
    template: tempfile::TempDir,
    built: std::collections::BTreeMap<u8, Fixture>,
}

impl Fixtures {
    fn new() -> Self {
        Fixtures { template: tempfile::tempdir().expect("a temporary directory"), built: Default::default() }
    }

    fn fresh(&mut self, kind: &str, stage: Stage) -> (Fresh, Fixture) {
        if kind == "memory" {
            let store = MemoryStore::new();
            let fixture = build(&store, stage);
            return (Fresh { store: Box::new(store), _dir: None }, fixture);
        }
        let template = self.template.path().join(format!("stage-{}.db", stage as u8));
        let fixture = *self.built.entry(stage as u8).or_insert_with(|| {
            // Dropping the store closes its connection, which checkpoints the WAL into
            // the database file, so the file alone is the whole database.
            let store = SqliteStore::open(&template).expect("an SQLite store");
            build(&store, stage)
        });
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("bench.db");
        std::fs::copy(&template, &path).expect("a copy of the fixture database");
        let store = SqliteStore::open(&path).expect("an SQLite store");
        (Fresh { store: Box::new(store), _dir: Some(dir) }, fixture)
    }
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group.sample_size(10).sampling_mode(SamplingMode::Flat).warm_up_time(Duration::from_millis(1));
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(u64::from(RECIPIENTS)));
    group
}

fn enqueue(c: &mut Criterion) {
    let mut fixtures = Fixtures::new();
    let mut group = group(c, "store/enqueue_100k");
    for kind in ["memory", "sqlite"] {
        group.bench_function(kind, |b| {
            b.iter_batched(
                || fixtures.fresh(kind, Stage::Draft),
                |(fresh, fixture): (Fresh, Fixture)| {
                    fresh.store.enqueue(fixture.tenant, fixture.campaign, None, T0).expect("an enqueue");
                    fresh
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

fn claim_and_record(c: &mut Criterion) {
    let mut fixtures = Fixtures::new();
    let mut group = group(c, "store/claim_and_record_100k_in_batches_of_200");
    for kind in ["memory", "sqlite"] {
        group.bench_function(kind, |b| {
            b.iter_batched(
                || fixtures.fresh(kind, Stage::Enqueued).0,
                |fresh| {
                    let store = fresh.store.as_ref();
                    let mut accepted = 0;
                    while let Some(claimed) = claim(store, BATCH, T0) {
                        accept(store, &claimed, accepted, T0);
                        accepted += claimed.messages.len();
                    }
                    assert_eq!(accepted, RECIPIENTS as usize);
                    fresh
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

fn apply_reports(c: &mut Criterion) {
    let mut fixtures = Fixtures::new();
    let mut group = group(c, "store/apply_100k_reports");
    for kind in ["memory", "sqlite"] {
        group.bench_function(kind, |b| {
            b.iter_batched(
                || fixtures.fresh(kind, Stage::Accepted),
                |(fresh, fixture): (Fresh, Fixture)| {
                    let later = T0.plus_ms(1_000);
                    for n in 0..RECIPIENTS as usize {
                        fresh.store.apply_report(delivered(&fixture, n), later).expect("a report");
                    }
                    fresh
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, enqueue, claim_and_record, apply_reports);
criterion_main!(benches);
