//! A whole simulated run of the happy path (scenarios/happy-path.toml): 100 contacts,
//! one campaign, every invariant checked after every step. `smsim bench` reports the
//! same figure as seeds per second and simulated ÷ wall time.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use smsim_sim::run::{run, RunOptions};
use smsim_sim::scenario::Scenario;
use std::path::Path;
use std::time::Duration;

fn happy_path(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/happy-path.toml");
    let scenario = Scenario::load(&path).expect("the happy-path scenario");
    let mut group = c.benchmark_group("simulation");
    group.sample_size(10).sampling_mode(SamplingMode::Flat).measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));
    let mut seed = 0;
    group.bench_function("happy_path_one_seed", |b| {
        b.iter(|| {
            seed += 1;
            let report = run(&scenario, seed, &RunOptions::default()).expect("a run");
            assert!(report.passed(), "happy-path seed {seed} failed: {:?}", report.violation);
            report
        })
    });
    group.finish();
}

criterion_group!(benches, happy_path);
criterion_main!(benches);
