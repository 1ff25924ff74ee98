//! Does the message row's layout bound a claim and an acceptance? The two `UPDATE`s the
//! SQLite store makes of every accepted message (to `submitting` with a lease, then to
//! `accepted` with a provider id), on three layouts of the same columns under the same
//! seven partial indexes: the `WITHOUT ROWID` table keyed by (campaign, contact) of
//! schemas 1–5; a rowid table with that key as a unique index (the store's since schema 6,
//! whose ordered indexes also name the key); and the `WITHOUT ROWID` table without the
//! text a message is created with (body, destination, sender), kept in a table of its
//! own. Each layout runs in its own process, so count instructions with callgrind and
//! subtract the run that only fills the table:
//!
//! ```sh
//! cargo build --release -p smsim-benches --example row_layout
//! for layout in without-rowid rowid narrow; do for phase in fill update; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/row_layout $layout $phase 20000 2>&1 | grep refs
//! done; done
//! ```
#![allow(missing_docs)]
// Wall time is printed for reading; no outcome depends on it.
#![allow(clippy::disallowed_methods)]

use anyhow::{bail, Context};
use rusqlite::{params, Connection};
use std::time::Instant;

/// The columns of the store's message row (migrations 0001–0004), less the key.
const STATE: &str = "tenant_id INTEGER NOT NULL, traffic_account_id INTEGER NOT NULL, \
    encoding TEXT NOT NULL, segments INTEGER NOT NULL, cost INTEGER NOT NULL, status TEXT NOT NULL, \
    attempts INTEGER NOT NULL, next_attempt_at INTEGER NOT NULL, lease_worker TEXT, lease_expires_at INTEGER, \
    lease_token INTEGER, provider_message_id TEXT, bulk_id TEXT, error_code TEXT, error_retryable INTEGER, \
    error_detail TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, provider_id_assigned INTEGER";
const TEXT: &str = "destination TEXT NOT NULL, sender TEXT NOT NULL, body TEXT NOT NULL";

/// The store's message indexes after migration 0004.
const INDEXES: [&str; 7] = [
    "CREATE INDEX q ON messages (next_attempt_at) WHERE status = 'queued'",
    "CREATE INDEX qa ON messages (traffic_account_id, next_attempt_at) WHERE status = 'queued'",
    "CREATE INDEX qt ON messages (tenant_id, next_attempt_at) WHERE status = 'queued'",
    "CREATE INDEX st ON messages (lease_token, tenant_id) WHERE status = 'submitting'",
    "CREATE INDEX u ON messages (updated_at) WHERE status = 'unknown'",
    "CREATE INDEX ut ON messages (tenant_id) WHERE status = 'unknown'",
    "CREATE INDEX pid ON messages (traffic_account_id, provider_message_id, provider_id_assigned) \
     WHERE provider_message_id IS NOT NULL",
];

const BODY: &str = "Hello Maria, our spring sale starts today. Visit us for 20% off everything in store.";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    WithoutRowid,
    Rowid,
    Narrow,
}

fn create(connection: &Connection, layout: Layout) -> anyhow::Result<()> {
    let key = "campaign_id INTEGER NOT NULL, contact_id INTEGER NOT NULL";
    let table = match layout {
        Layout::WithoutRowid => {
            format!(
                "CREATE TABLE messages ({key}, {TEXT}, {STATE}, PRIMARY KEY (campaign_id, contact_id)) WITHOUT ROWID"
            )
        }
        Layout::Rowid => {
            format!("CREATE TABLE messages (id INTEGER PRIMARY KEY, {key}, {TEXT}, {STATE}, UNIQUE (campaign_id, contact_id))")
        }
        Layout::Narrow => format!(
            "CREATE TABLE texts ({key}, {TEXT}, PRIMARY KEY (campaign_id, contact_id)) WITHOUT ROWID;\
             CREATE TABLE messages ({key}, {STATE}, PRIMARY KEY (campaign_id, contact_id)) WITHOUT ROWID"
        ),
    };
    connection.execute_batch(&table)?;
    for index in INDEXES {
        connection.execute_batch(index)?;
    }
    Ok(())
}

fn fill(connection: &mut Connection, layout: Layout, messages: u32) -> anyhow::Result<()> {
    let tx = connection.transaction()?;
    {
        let state =
            "INSERT INTO messages (campaign_id, contact_id, tenant_id, traffic_account_id, encoding, segments, \
                     cost, status, attempts, next_attempt_at, created_at, updated_at{text}) \
                     VALUES (1, ?1, 1, 1, 'gsm7', 1, 55, 'queued', 0, 0, 0, 0{values})";
        let (mut insert, mut texts) = if layout == Layout::Narrow {
            let insert = tx.prepare(&state.replace("{text}", "").replace("{values}", ""))?;
            let texts = tx.prepare("INSERT INTO texts VALUES (1, ?1, ?2, 'SMSIM', ?3)")?;
            (insert, Some(texts))
        } else {
            let sql = state.replace("{text}", ", destination, sender, body").replace("{values}", ", ?2, 'SMSIM', ?3");
            (tx.prepare(&sql)?, None)
        };
        for contact in 0..messages {
            let destination = format!("+30691{contact:07}");
            match &mut texts {
                Some(texts) => {
                    insert.execute([contact])?;
                    texts.execute(params![contact, destination, BODY])?;
                }
                None => {
                    insert.execute(params![contact, destination, BODY])?;
                }
            }
        }
    }
    tx.commit()?;
    Ok(())
}

/// Claims and accepts every message in batches of 200, one transaction per step.
fn claim_and_accept(connection: &mut Connection, messages: u32) -> anyhow::Result<()> {
    let contacts: Vec<u32> = (0..messages).collect();
    for (token, batch) in contacts.chunks(200).enumerate() {
        let tx = connection.transaction()?;
        {
            let mut claim = tx.prepare_cached(
                "UPDATE messages SET status = 'submitting', attempts = 1, lease_worker = 'worker-1', \
                 lease_expires_at = 100, lease_token = ?1, updated_at = 1 WHERE campaign_id = 1 AND contact_id = ?2",
            )?;
            for contact in batch {
                claim.execute(params![token, contact])?;
            }
        }
        tx.commit()?;
        let tx = connection.transaction()?;
        {
            let mut accept = tx.prepare_cached(
                "UPDATE messages SET status = 'accepted', lease_worker = NULL, lease_expires_at = NULL, \
                 lease_token = NULL, provider_message_id = ?1, bulk_id = 'bulk', provider_id_assigned = ?2, \
                 updated_at = 2 WHERE campaign_id = 1 AND contact_id = ?2",
            )?;
            for contact in batch {
                accept.execute(params![format!("p-{contact}"), contact])?;
            }
        }
        tx.commit()?;
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [layout, phase, messages] = args.as_slice() else {
        bail!("usage: row_layout without-rowid|rowid|narrow fill|update MESSAGES");
    };
    let layout = match layout.as_str() {
        "without-rowid" => Layout::WithoutRowid,
        "rowid" => Layout::Rowid,
        "narrow" => Layout::Narrow,
        other => bail!("layout {other:?}: expected without-rowid, rowid or narrow"),
    };
    let messages: u32 = messages.parse().with_context(|| format!("MESSAGES {messages:?}"))?;
    let dir = tempfile::tempdir()?;
    let mut connection = Connection::open(dir.path().join("layout.db"))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    create(&connection, layout)?;
    fill(&mut connection, layout, messages)?;
    match phase.as_str() {
        "fill" => {}
        "update" => {
            let started = Instant::now();
            claim_and_accept(&mut connection, messages)?;
            println!("claim and accept {messages}: {:?}", started.elapsed());
        }
        other => bail!("phase {other:?}: expected fill or update"),
    }
    Ok(())
}
