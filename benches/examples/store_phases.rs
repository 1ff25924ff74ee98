//! One campaign through the SQLite store, phase by phase, for profiling: import and
//! enqueue N recipients, claim and accept them in batches of 200, apply a delivery
//! report for each in webhooks of 200. Prints each phase's wall time; run it under
//! `valgrind --tool=callgrind` to count instructions per phase, which does not move with
//! the machine's load:
//!
//! ```sh
//! cargo build --release -p smsim-benches --example store_phases
//! valgrind --tool=callgrind --callgrind-out-file=store.cg target/release/examples/store_phases 5000
//! callgrind_annotate --inclusive=yes store.cg | grep 'SqliteStore as smsim_core::store::Store>::'
//! ```
#![allow(missing_docs)]
// Wall time is what is printed here; no outcome depends on it.
#![allow(clippy::disallowed_methods)]

use smsim_benches::{accept_everything, delivered, enqueued_campaign, T0};
use smsim_core::store::sqlite::SqliteStore;
use smsim_core::store::Store;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let recipients: u32 = match std::env::args().nth(1) {
        Some(text) => text.parse().map_err(|error| anyhow::anyhow!("recipients {text:?}: {error}"))?,
        None => 20_000,
    };
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(&dir.path().join("phases.db"))?;
    let started = Instant::now();
    let fixture = enqueued_campaign(&store, recipients);
    println!("import and enqueue {recipients}: {:?}", started.elapsed());
    let started = Instant::now();
    let accepted = accept_everything(&store, 200);
    println!("claim and accept {accepted}: {:?}", started.elapsed());
    let reports: Vec<_> = (0..recipients as usize).map(|n| delivered(&fixture, n)).collect();
    let started = Instant::now();
    for webhook in reports.chunks(200) {
        store.apply_reports(webhook.to_vec(), T0.plus_ms(1_000))?;
    }
    println!("apply {} reports: {:?}", reports.len(), started.elapsed());
    Ok(())
}
