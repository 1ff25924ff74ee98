//! Domain hot paths: phone validation, segment counting, template rendering and the
//! status lattice.
//!
//! These run once per contact (phone validation, at import), once per message
//! (segments, rendering) or once per status change and report (transitions), so they
//! bound import, enqueue and report throughput from below.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use smsim_core::domain::phone::normalize_e164;
use smsim_core::domain::report::decide;
use smsim_core::domain::segments::count_segments;
use smsim_core::domain::template::render_with;
use smsim_core::domain::{CampaignStatus, MessageStatus, ReportStatus, TransitionCause};
use std::collections::BTreeMap;
use std::time::Duration;

fn phones(c: &mut Criterion) {
    c.bench_function("normalize_e164/canonical", |b| b.iter(|| normalize_e164(black_box("+306912345678"))));
    c.bench_function("normalize_e164/spaced", |b| b.iter(|| normalize_e164(black_box("+44 (7911) 123-456"))));
    c.bench_function("normalize_e164/invalid", |b| b.iter(|| normalize_e164(black_box("+999123456789"))));
}

fn segments(c: &mut Criterion) {
    let gsm = "Hello Maria, your appointment is confirmed for Tuesday at 10:00. Reply STOP to opt out.";
    let ucs2 = "Γειά σου Μαρία, το ραντεβού σας επιβεβαιώθηκε για την Τρίτη στις 10:00.";
    let long = gsm.repeat(4);
    c.bench_function("count_segments/gsm7", |b| b.iter(|| count_segments(black_box(gsm))));
    c.bench_function("count_segments/ucs2", |b| b.iter(|| count_segments(black_box(ucs2))));
    c.bench_function("count_segments/gsm7_multipart", |b| b.iter(|| count_segments(black_box(&long))));
}

fn rendering(c: &mut Criterion) {
    let template = "Hello {{first_name|there}}, {{city|your town}} has a sale today. Call {{phone}}.";
    let attributes = BTreeMap::from([("first_name".to_owned(), "Maria".to_owned())]);
    c.bench_function("render/two_placeholders_one_fallback", |b| {
        b.iter(|| {
            render_with(
                black_box(template),
                |name| attributes.get(name).map(String::as_str),
                black_box("+306912345678"),
            )
        })
    });
}

fn transitions(c: &mut Criterion) {
    use MessageStatus::*;
    let all =
        [Queued, Submitting, Accepted, Delivered, Undelivered, Expired, Rejected, Failed, Unknown, Skipped, Cancelled];
    let pairs: Vec<(MessageStatus, MessageStatus)> =
        all.iter().flat_map(|&from| all.iter().map(move |&to| (from, to))).collect();
    let mut group = c.benchmark_group("transitions");
    group.throughput(Throughput::Elements(pairs.len() as u64));
    group.bench_function("message_lattice/every_pair", |b| {
        b.iter(|| {
            pairs.iter().filter(|(from, to)| black_box(*from).allows(black_box(*to), TransitionCause::Engine)).count()
        })
    });
    let reports = [ReportStatus::Accepted, ReportStatus::Delivered, ReportStatus::Undelivered, ReportStatus::Expired];
    group.throughput(Throughput::Elements((all.len() * reports.len()) as u64));
    group.bench_function("report_decision/every_status", |b| {
        b.iter(|| {
            let mut decisions = 0;
            for &current in &all {
                for report in &reports {
                    black_box(decide(black_box(current), report));
                    decisions += 1;
                }
            }
            decisions
        })
    });
    use CampaignStatus as C;
    let campaigns = [C::Draft, C::Scheduled, C::Sending, C::Paused, C::Completed, C::Cancelled];
    group.throughput(Throughput::Elements((campaigns.len() * campaigns.len()) as u64));
    group.bench_function("campaign_lattice/every_pair", |b| {
        b.iter(|| {
            campaigns
                .iter()
                .flat_map(|&from| campaigns.iter().map(move |&to| (from, to)))
                .filter(|(from, to)| black_box(*from).allows(*to))
                .count()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = phones, segments, rendering, transitions
}
criterion_main!(benches);
