//! Domain hot paths.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use smsim_core::domain::segments::count_segments;

fn segments(c: &mut Criterion) {
    let gsm = "Hello Maria, your appointment is confirmed for Tuesday at 10:00. Reply STOP to opt out.";
    let ucs2 = "Γειά σου Μαρία, το ραντεβού σας επιβεβαιώθηκε για την Τρίτη στις 10:00.";
    c.bench_function("count_segments/gsm7", |b| b.iter(|| count_segments(black_box(gsm))));
    c.bench_function("count_segments/ucs2", |b| b.iter(|| count_segments(black_box(ucs2))));
}

criterion_group!(benches, segments);
criterion_main!(benches);
