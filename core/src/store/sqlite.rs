//! The SQLite store: the embedded default for real use.
//!
//! One connection behind a mutex, WAL journal, every trait method one `BEGIN IMMEDIATE`
//! transaction that commits only if the whole method succeeded. The schema lives in
//! `core/migrations/` and is applied in order at open, tracked with `PRAGMA user_version`.
//!
//! Every decision is the shared rules' ([`super::rules`]): this file reads rows, asks
//! the rules and writes what they decide. The steps it takes exactly as the PostgreSQL
//! store does — a message's move with its counters, ledger and journal (the one place a
//! message changes status), an acceptance, a report on a message, the completion check, a
//! record of submissions — are written once in [`super::engine`], over the row operations
//! this file provides (`Backend`). The store conformance suite and a differential property
//! test hold it to the in-memory store's answers.
//!
//! A batch costs statements per chunk of messages, not per message *and* per shared row:
//! the sums a transaction adds to the same campaign, tenant and `meta` rows are kept in
//! memory and written once, before anything reads them back and before the commit
//! ([`Pending`]); a claim keeps the rows its walk read and writes them back with one
//! multi-row UPDATE per chunk; a record of submissions reads its messages with one SELECT
//! per chunk and writes each changed row once at the end; an enqueue inserts its messages
//! with multi-row INSERTs ([`MESSAGE_ROWS_PER_STATEMENT`]); the journal entries a
//! transaction writes go in as one row, a line each (migration 0005); each statement
//! text is built once ([`ChunkTexts`]). What is left per message is the B-tree work on its
//! row (a rowid table since migration 0006, so a change overwrites the row in place) and
//! its index entries.
//!
//! The hot paths read in proportion to their work, not to the store: each message index
//! is partial on the one status its readers ask for (see migrations 0002, 0003, 0006 and 0007),
//! so a move touches only the indexes of the statuses it leaves and enters; the queries
//! that must use one name it (`INDEXED BY`, so a plan change is an error, not a slow
//! scan), those read in (time, id) order take that order from the index, and a claim
//! streams the due queue only as far as it takes messages.

use super::engine::{self, Backend, ContactRow, DueVisit};
use super::journal_lines;
use super::pending::Pending;
use super::rules::{self, not_found};
use super::*;
use crate::domain::rate::TokenBucket;
use crate::domain::records::{Encoding, Lease};
use crate::ids::ContactId;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use std::cell::{RefCell, RefMut};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

/// The schema migrations, in order; migration `n` brings the schema to version `n + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_initial.sql"),
    include_str!("../../migrations/0002_message_indexes.sql"),
    include_str!("../../migrations/0003_tenant_indexes.sql"),
    include_str!("../../migrations/0004_lease_expiry_unindexed.sql"),
    include_str!("../../migrations/0005_journal_lines.sql"),
    include_str!("../../migrations/0006_messages_rowid.sql"),
    include_str!("../../migrations/0007_one_queue_index.sql"),
    include_str!("../../migrations/0008_parked_expiry.sql"),
    include_str!("../../migrations/0009_contacts_by_tenant.sql"),
];

/// Prepared statements kept per connection.
const STATEMENT_CACHE_CAPACITY: usize = 256;

/// Pages of cache per connection, in KiB when negative (SQLite's convention): enough to
/// keep the hot indexes and a 100 000-message campaign in memory.
const CACHE_SIZE_KIB: i64 = 64 * 1024;

/// The SQLite store.
pub struct SqliteStore {
    connection: Mutex<Connection>,
}

fn backend(error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            StoreError::Transient(error.to_string())
        }
        _ => StoreError::Backend(error.to_string()),
    }
}

fn json_error(error: serde_json::Error) -> StoreError {
    StoreError::Backend(format!("stored JSON unreadable: {error}"))
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let connection = Connection::open(path).map_err(backend)?;
        connection.pragma_update(None, "journal_mode", "WAL").map_err(backend)?;
        connection.pragma_update(None, "synchronous", "NORMAL").map_err(backend)?;
        SqliteStore::prepare(connection)
    }

    /// A private in-memory database (for tests).
    pub fn open_in_memory() -> StoreResult<Self> {
        SqliteStore::prepare(Connection::open_in_memory().map_err(backend)?)
    }

    fn prepare(mut connection: Connection) -> StoreResult<Self> {
        connection.pragma_update(None, "foreign_keys", "ON").map_err(backend)?;
        connection.busy_timeout(std::time::Duration::from_secs(5)).map_err(backend)?;
        connection.pragma_update(None, "cache_size", -CACHE_SIZE_KIB).map_err(backend)?;
        // Every statement the store runs stays prepared: about fifty texts, one counter
        // update per counter column, and up to eight chunk sizes of each multi-row
        // statement over messages (see `MESSAGE_ROWS_PER_STATEMENT`).
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        let version: usize = connection.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(backend)?;
        if version > MIGRATIONS.len() {
            return Err(StoreError::Backend(format!(
                "database schema version {version} is newer than this build ({})",
                MIGRATIONS.len()
            )));
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = connection.transaction().map_err(backend)?;
            tx.execute_batch(migration).map_err(backend)?;
            tx.pragma_update(None, "user_version", index + 1).map_err(backend)?;
            tx.commit().map_err(backend)?;
        }
        Ok(SqliteStore { connection: Mutex::new(connection) })
    }

    /// The connection. A panic inside a transaction is a store bug, but unlike the
    /// in-memory store's state the database is whole afterwards: the transaction was
    /// dropped, so rolled back, during the unwinding. Later calls may go on.
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> StoreResult<usize> {
        let connection = self.lock();
        connection.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(backend)
    }

    /// Runs `work` in one immediate transaction, committed only if it succeeds.
    fn transaction<T>(&self, work: impl FnOnce(&Tx<'_>) -> StoreResult<T>) -> StoreResult<T> {
        let mut connection = self.lock();
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
        let wrapped = Tx { tx, pending: RefCell::default() };
        let value = work(&wrapped)?;
        wrapped.write_pending()?;
        wrapped.tx.commit().map_err(backend)?;
        Ok(value)
    }
}

/// An open transaction with the store's helpers.
struct Tx<'a> {
    tx: rusqlite::Transaction<'a>,
    /// Sums this transaction owes the database, written by [`Tx::write_pending`] before
    /// anything reads them back and before the commit.
    pending: RefCell<Pending>,
}

/// Most message rows one multi-row statement reads or writes. A batch goes in chunks whose
/// lengths are powers of two up to this ([`power_of_two_chunks`]): a claim of 200 is three
/// statements (128 + 64 + 8), whatever the batch each kind of statement has at most eight
/// texts to keep prepared, and 128 rows of the widest statement (18 values) bind 2 304
/// variables, far under SQLite's limit (32 766).
const MESSAGE_ROWS_PER_STATEMENT: usize = 128;

/// `rows` cut into consecutive chunks, each as long as the largest power of two that fits
/// in what is left, at most [`MESSAGE_ROWS_PER_STATEMENT`].
fn power_of_two_chunks<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        let left = rows.len().checked_ilog2()?;
        let (chunk, rest) = rows.split_at(MESSAGE_ROWS_PER_STATEMENT.min(1 << left));
        rows = rest;
        Some(chunk)
    })
}

/// Lengths a chunk can have: the powers of two up to [`MESSAGE_ROWS_PER_STATEMENT`].
const CHUNK_LENGTHS: usize = MESSAGE_ROWS_PER_STATEMENT.ilog2() as usize + 1;

/// The texts of one kind of multi-row statement, one per chunk length, each built the
/// first time it is needed. Building a text (a `format!` per column) cost more than the
/// statement-cache lookup it is the key of — for a webhook of one report, a quarter of
/// the report's instructions — so no text is built twice.
struct ChunkTexts([OnceLock<String>; CHUNK_LENGTHS]);

impl ChunkTexts {
    const fn new() -> ChunkTexts {
        ChunkTexts([const { OnceLock::new() }; CHUNK_LENGTHS])
    }

    /// The text for chunks of `rows` rows (a length [`power_of_two_chunks`] gives), built
    /// by `build` the first time.
    fn get(&self, rows: usize, build: impl FnOnce(usize) -> String) -> &str {
        assert!(rows.is_power_of_two() && rows <= MESSAGE_ROWS_PER_STATEMENT, "not a chunk length: {rows}");
        self.0[rows.trailing_zeros() as usize].get_or_init(|| build(rows))
    }
}

/// `rows` rows of `width` placeholders each: `(?, ?), (?, ?)`.
fn placeholder_rows(rows: usize, width: usize) -> String {
    let row = format!("({})", vec!["?"; width].join(", "));
    vec![row; rows].join(", ")
}

/// The columns a message's move writes ([`Tx::save_states`]), bound after its key
/// (campaign id, contact id) by [`bind_state`].
const STATE_COLUMNS: [&str; 10] = [
    "status",
    "attempts",
    "next_attempt_at",
    "lease_worker",
    "lease_expires_at",
    "lease_token",
    "error_code",
    "error_retryable",
    "error_detail",
    "updated_at",
];

/// The columns a claim changes ([`Tx::save_claimed`]): it moves a message from queued to
/// submitting, counts the attempt and gives it the lease; its due time stays as it was.
const CLAIM_COLUMNS: [&str; 9] = [
    "status",
    "attempts",
    "lease_worker",
    "lease_expires_at",
    "lease_token",
    "error_code",
    "error_retryable",
    "error_detail",
    "updated_at",
];

/// The values of [`CLAIM_COLUMNS`] of one message, in that order.
type ClaimValues<'m> =
    (&'static str, u32, Option<&'m str>, Option<u64>, Option<u64>, Option<&'m str>, Option<bool>, Option<&'m str>, u64);

fn claim_values(message: &Message) -> ClaimValues<'_> {
    let lease = message.lease.as_ref();
    let error = message.last_error.as_ref();
    (
        message.status.as_str(),
        message.attempts,
        lease.map(|lease| lease.worker.as_str()),
        lease.map(|lease| lease.expires_at.0),
        lease.map(|lease| lease.token),
        error.map(|error| error.code.as_str()),
        error.map(|error| error.retryable),
        error.map(|error| error.detail.as_str()),
        message.updated_at.0,
    )
}

/// The columns an acceptance writes besides [`STATE_COLUMNS`] ([`Tx::save_acceptances`]).
const PROVIDER_COLUMNS: [&str; 3] = ["provider_message_id", "bulk_id", "provider_id_assigned"];

/// An UPDATE of `columns` of `rows` messages, each row bound as its key and then its
/// values in `columns`' order. One row is a plain UPDATE by primary key; more join the
/// table to a `VALUES` list, which SQLite plans as a scan of the list and one primary-key
/// search per row (the rows' keys must be distinct: which of two rows with the same key
/// an `UPDATE … FROM` applies is undefined).
fn keyed_update_sql(columns: &[&str], rows: usize) -> String {
    let assignments = |value: &dyn Fn(usize) -> String| {
        columns.iter().enumerate().map(|(index, column)| format!("{column} = {}", value(index + 3))).collect::<Vec<_>>()
    };
    if rows == 1 {
        let set = assignments(&|number| format!("?{number}")).join(", ");
        format!("UPDATE messages SET {set} WHERE campaign_id = ?1 AND contact_id = ?2")
    } else {
        let set = assignments(&|number| format!("v.column{number}")).join(", ");
        let values = placeholder_rows(rows, columns.len() + 2);
        format!(
            "UPDATE messages SET {set} FROM (VALUES {values}) AS v \
             WHERE messages.campaign_id = v.column1 AND messages.contact_id = v.column2"
        )
    }
}

/// Binds `values` to `statement`'s parameters from number `first` on.
fn bind_values(
    statement: &mut rusqlite::Statement<'_>,
    first: usize,
    values: &[&dyn rusqlite::ToSql],
) -> rusqlite::Result<()> {
    for (offset, value) in values.iter().enumerate() {
        statement.raw_bind_parameter(first + offset, value)?;
    }
    Ok(())
}

/// Binds `message`'s key and [`STATE_COLUMNS`] from parameter `first` on.
fn bind_state(statement: &mut rusqlite::Statement<'_>, first: usize, message: &Message) -> rusqlite::Result<()> {
    let (worker, expires_at, token) = match &message.lease {
        Some(lease) => (Some(lease.worker.as_str()), Some(lease.expires_at.0), Some(lease.token)),
        None => (None, None, None),
    };
    let error = message.last_error.as_ref();
    bind_values(
        statement,
        first,
        params![
            message.id.campaign.0,
            message.id.contact.0,
            message.status.as_str(),
            message.attempts,
            message.next_attempt_at.0,
            worker,
            expires_at,
            token,
            error.map(|error| error.code.as_str()),
            error.map(|error| error.retryable),
            error.map(|error| error.detail.as_str()),
            message.updated_at.0,
        ],
    )
}

/// The columns [`message_from_row`] reads, in its order, each prefixed with `$p` (a table
/// alias and a dot, or nothing): a macro so that statement texts can be `concat!`ed
/// constants rather than formatted on every call.
macro_rules! message_columns {
    ($p:literal) => {
        message_columns!(@ $p; campaign_id contact_id tenant_id traffic_account_id destination sender body encoding
            segments cost status attempts next_attempt_at lease_worker lease_expires_at lease_token provider_message_id
            bulk_id error_code error_retryable error_detail created_at updated_at)
    };
    (@ $p:literal; $first:ident $($rest:ident)*) => {
        concat!($p, stringify!($first) $(, ", ", $p, stringify!($rest))*)
    };
}

/// The accounts that may have due messages: those of the sending campaigns.
const SENDING_ACCOUNTS_SQL: &str =
    "SELECT DISTINCT traffic_account_id FROM campaigns INDEXED BY campaigns_by_status WHERE status = 'sending' \
     ORDER BY traffic_account_id";

/// The first due message of a sending campaign on account `?1`: its due time and key
/// ([`Tx::first_due`]).
const FIRST_DUE_OF_ACCOUNT_SQL: &str =
    "SELECT m.next_attempt_at, m.campaign_id, m.contact_id FROM messages m INDEXED BY messages_queued_by_account \
     CROSS JOIN campaigns c WHERE m.status = 'queued' AND m.traffic_account_id = ?1 \
     AND c.id = m.campaign_id AND c.status = 'sending' \
     ORDER BY m.next_attempt_at, m.campaign_id, m.contact_id LIMIT 1";

/// Account `?1`'s messages due by `?2`, in (due time, id) order ([`Backend::visit_due`]).
const DUE_WALK_SQL: &str = concat!(
    "SELECT ",
    message_columns!("m."),
    ", t.rate_limit_per_s \
     FROM messages m INDEXED BY messages_queued_by_account CROSS JOIN campaigns c CROSS JOIN tenants t \
     WHERE m.status = 'queued' AND m.traffic_account_id = ?1 AND m.next_attempt_at <= ?2 \
     AND c.id = m.campaign_id AND c.status = 'sending' AND t.id = m.tenant_id \
     ORDER BY m.next_attempt_at, m.campaign_id, m.contact_id"
);

/// Queued messages of sending campaigns, of tenant `?2` unless it is NULL, and how many
/// are due by `?1` ([`Tx::queued_and_due`]): the tenant is the queue index's last column,
/// so only the entries counted reach the campaigns.
const QUEUED_AND_DUE_SQL: &str = "SELECT COUNT(*), COALESCE(SUM(m.next_attempt_at <= ?1), 0) \
     FROM messages m INDEXED BY messages_queued_by_account CROSS JOIN campaigns c \
     WHERE m.status = 'queued' AND (?2 IS NULL OR m.tenant_id = ?2) \
     AND c.id = m.campaign_id AND c.status = 'sending'";

/// The unknown messages, oldest first: the index and condition of
/// [`Store::unknown_messages`]' read.
const UNKNOWN_INDEX: &str = "INDEXED BY messages_unknown";
const UNKNOWN_OLDEST_FIRST: &str = "status = 'unknown' ORDER BY updated_at, campaign_id, contact_id LIMIT ?1";

const MESSAGE_COLUMNS: &str = message_columns!("");

const CAMPAIGN_COLUMNS: &str = "id, tenant_id, name, body_template, sender, audience, traffic_account_id, status, pause_reason, \
     schedule_at, n_queued, n_submitting, n_accepted, n_delivered, n_undelivered, n_expired, n_rejected, n_failed, n_unknown, \
     n_skipped, n_cancelled, created_at, enqueued_at, completed_at";

fn encoding_text(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Gsm7 => "gsm7",
        Encoding::Ucs2 => "ucs2",
    }
}

fn conversion(column: usize, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, format!("unknown {what}").into())
}

fn message_from_row(row: &Row<'_>) -> rusqlite::Result<Message> {
    let status: String = row.get(10)?;
    let encoding: String = row.get(7)?;
    let lease =
        match (row.get::<_, Option<String>>(13)?, row.get::<_, Option<u64>>(14)?, row.get::<_, Option<u64>>(15)?) {
            (Some(worker), Some(expires_at), Some(token)) => {
                Some(Lease { worker, expires_at: Timestamp(expires_at), token })
            }
            _ => None,
        };
    let last_error = match row.get::<_, Option<String>>(18)? {
        Some(code) => Some(MessageError {
            code,
            retryable: row.get::<_, Option<bool>>(19)?.unwrap_or(false),
            detail: row.get::<_, Option<String>>(20)?.unwrap_or_default(),
        }),
        None => None,
    };
    Ok(Message {
        id: MessageId::new(CampaignId(row.get(0)?), ContactId(row.get(1)?)),
        tenant: TenantId(row.get(2)?),
        traffic_account: TrafficAccountId(row.get(3)?),
        destination: row.get(4)?,
        sender: row.get(5)?,
        body: row.get(6)?,
        encoding: match encoding.as_str() {
            "gsm7" => Encoding::Gsm7,
            "ucs2" => Encoding::Ucs2,
            _ => return Err(conversion(7, "encoding")),
        },
        segments: row.get(8)?,
        cost: Credits(row.get(9)?),
        status: MessageStatus::parse(&status).ok_or_else(|| conversion(10, "message status"))?,
        attempts: row.get(11)?,
        next_attempt_at: Timestamp(row.get(12)?),
        lease,
        provider_message_id: row.get(16)?,
        bulk_id: row.get(17)?,
        last_error,
        created_at: Timestamp(row.get(21)?),
        updated_at: Timestamp(row.get(22)?),
    })
}

fn campaign_from_row(row: &Row<'_>) -> rusqlite::Result<Campaign> {
    let audience: String = row.get(5)?;
    let status: String = row.get(7)?;
    let pause_reason: Option<String> = row.get(8)?;
    let count = |index: usize| row.get::<_, u32>(index);
    Ok(Campaign {
        id: CampaignId(row.get(0)?),
        tenant: TenantId(row.get(1)?),
        name: row.get(2)?,
        body_template: row.get(3)?,
        sender: row.get(4)?,
        audience: serde_json::from_str(&audience).map_err(|_| conversion(5, "audience"))?,
        traffic_account: TrafficAccountId(row.get(6)?),
        status: CampaignStatus::parse(&status).ok_or_else(|| conversion(7, "campaign status"))?,
        pause_reason: match pause_reason {
            Some(text) => Some(serde_json::from_str(&text).map_err(|_| conversion(8, "pause reason"))?),
            None => None,
        },
        schedule_at: row.get::<_, Option<u64>>(9)?.map(Timestamp),
        counts: StatusCounts {
            queued: count(10)?,
            submitting: count(11)?,
            accepted: count(12)?,
            delivered: count(13)?,
            undelivered: count(14)?,
            expired: count(15)?,
            rejected: count(16)?,
            failed: count(17)?,
            unknown: count(18)?,
            skipped: count(19)?,
            cancelled: count(20)?,
        },
        created_at: Timestamp(row.get(21)?),
        enqueued_at: row.get::<_, Option<u64>>(22)?.map(Timestamp),
        completed_at: row.get::<_, Option<u64>>(23)?.map(Timestamp),
    })
}

fn tenant_from_row(row: &Row<'_>) -> rusqlite::Result<Tenant> {
    Ok(Tenant {
        id: TenantId(row.get(0)?),
        name: row.get(1)?,
        api_key_hash: row.get(2)?,
        balance: Credits(row.get(3)?),
        reserved: Credits(row.get(4)?),
        charged: Credits(row.get(5)?),
        funded: Credits(row.get(6)?),
        rate_limit_per_s: row.get(7)?,
    })
}

const TENANT_COLUMNS: &str = "id, name, api_key_hash, balance, reserved, charged, funded, rate_limit_per_s";
const ACCOUNT_COLUMNS: &str = "id, owner, name, provider, base_url, credentials, sender, rate_limit_per_s, price_per_segment, idempotent_submissions";

fn account_from_row(row: &Row<'_>) -> rusqlite::Result<TrafficAccount> {
    let provider: String = row.get(3)?;
    let credentials: String = row.get(5)?;
    Ok(TrafficAccount {
        id: TrafficAccountId(row.get(0)?),
        owner: row.get::<_, Option<u64>>(1)?.map(TenantId),
        name: row.get(2)?,
        provider: ProviderKind::parse(&provider).ok_or_else(|| conversion(3, "provider"))?,
        base_url: row.get(4)?,
        credentials: serde_json::from_str(&credentials).map_err(|_| conversion(5, "credentials"))?,
        sender: row.get(6)?,
        rate_limit_per_s: row.get(7)?,
        price_per_segment: Credits(row.get(8)?),
        idempotent_submissions: row.get(9)?,
    })
}

fn contact_from_row(row: &Row<'_>) -> rusqlite::Result<Contact> {
    let attributes: String = row.get(3)?;
    Ok(Contact {
        id: ContactId(row.get(0)?),
        tenant: TenantId(row.get(1)?),
        phone: row.get(2)?,
        attributes: serde_json::from_str(&attributes).map_err(|_| conversion(3, "attributes"))?,
        opted_out: row.get(4)?,
    })
}

impl Tx<'_> {
    // --- reads --------------------------------------------------------------------------------

    /// The messages matching `condition`, read through `index` (an `INDEXED BY` clause,
    /// or empty to let the planner choose).
    fn messages_where(
        &self,
        index: &str,
        condition: &str,
        parameters: impl rusqlite::Params,
    ) -> StoreResult<Vec<Message>> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages {index} WHERE {condition}");
        let mut statement = self.tx.prepare_cached(&sql).map_err(backend)?;
        let rows = statement.query_map(parameters, message_from_row).map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)
    }

    // --- writes -------------------------------------------------------------------------------

    /// Inserts the journal entries `entries` as one row, a line each (schema 5).
    fn insert_journal(&self, entries: &[JournalEntry]) -> StoreResult<()> {
        let Some((first_seq, lines)) = journal_lines::encode(entries) else { return Ok(()) };
        self.tx
            .prepare_cached("INSERT INTO journal (first_seq, entries) VALUES (?1, ?2)")
            .map_err(backend)?
            .execute(params![first_seq, lines])
            .map_err(backend)?;
        Ok(())
    }

    /// Runs `sql(n)` for each chunk of `rows` ([`power_of_two_chunks`]), binding each
    /// row's `width` parameters with `bind` (given the number of its first); each text
    /// is built once and kept in `texts`.
    fn execute_chunked<R>(
        &self,
        texts: &ChunkTexts,
        rows: &[R],
        width: usize,
        sql: impl Fn(usize) -> String,
        bind: impl Fn(&mut rusqlite::Statement<'_>, usize, &R) -> rusqlite::Result<()>,
    ) -> StoreResult<()> {
        for chunk in power_of_two_chunks(rows) {
            let mut statement = self.tx.prepare_cached(texts.get(chunk.len(), &sql)).map_err(backend)?;
            for (index, row) in chunk.iter().enumerate() {
                bind(&mut statement, index * width + 1, row).map_err(backend)?;
            }
            statement.raw_execute().map_err(backend)?;
        }
        Ok(())
    }

    // --- acceptance and reports --------------------------------------------------------------

    // --- claims -------------------------------------------------------------------------------

    /// Queued messages of sending campaigns (of `tenant`, if given), and how many of them
    /// are due at `now`: a read of the whole queue index (its entries carry the tenant),
    /// for figures asked for by hand rather than on any hot path.
    fn queued_and_due(&self, tenant: Option<TenantId>, now: Timestamp) -> StoreResult<(u32, u32)> {
        self.tx
            .prepare_cached(QUEUED_AND_DUE_SQL)
            .map_err(backend)?
            .query_row(params![now.0, tenant.map(|tenant| tenant.0)], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(backend)
    }

    // --- rate limits --------------------------------------------------------------------------

    fn count(&self, sql: &str, parameters: impl rusqlite::Params) -> StoreResult<u32> {
        self.tx.prepare_cached(sql).map_err(backend)?.query_row(parameters, |row| row.get(0)).map_err(backend)
    }
}

impl Backend for Tx<'_> {
    /// The messages in flight, a set bounded by the claims out, read whole.
    fn expired_leases(&self, now: Timestamp) -> StoreResult<Vec<Message>> {
        self.messages_where(
            "INDEXED BY messages_submitting_by_token",
            "status = 'submitting' AND lease_expires_at <= ?1 ORDER BY campaign_id, contact_id",
            [now.0],
        )
    }

    fn contact_by_phone(&self, tenant: TenantId, phone: &str) -> StoreResult<Option<ContactRow>> {
        let found: Option<(u64, String, bool)> = self
            .tx
            .prepare_cached("SELECT id, attributes, opted_out FROM contacts WHERE tenant_id = ?1 AND phone = ?2")
            .map_err(backend)?
            .query_row(params![tenant.0, phone], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .optional()
            .map_err(backend)?;
        found
            .map(|(id, attributes, opted_out)| {
                let attributes: BTreeMap<String, String> = serde_json::from_str(&attributes).map_err(json_error)?;
                Ok((ContactId(id), attributes, opted_out))
            })
            .transpose()
    }

    fn update_contact(&self, id: ContactId, row: &NewContact) -> StoreResult<()> {
        let (attributes, opted_out) = (engine::attributes_json(&row.attributes)?, row.opted_out);
        self.tx
            .prepare_cached("UPDATE contacts SET attributes = ?1, opted_out = ?2 WHERE id = ?3")
            .map_err(backend)?
            .execute(params![attributes, opted_out, id.0])
            .map_err(backend)?;
        Ok(())
    }

    fn insert_contact(&self, tenant: TenantId, phone: &str, row: &NewContact) -> StoreResult<()> {
        let (attributes, opted_out) = (engine::attributes_json(&row.attributes)?, row.opted_out);
        self.tx
            .prepare_cached("INSERT INTO contacts (tenant_id, phone, attributes, opted_out) VALUES (?1, ?2, ?3, ?4)")
            .map_err(backend)?
            .execute(params![tenant.0, phone, attributes, opted_out])
            .map_err(backend)?;
        Ok(())
    }

    fn scheduled_due(&self, now: Timestamp) -> StoreResult<Vec<Campaign>> {
        self.write_pending()?;
        let sql = format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE status = 'scheduled' \
             AND (schedule_at IS NULL OR schedule_at <= ?1) ORDER BY id"
        );
        let mut statement = self.tx.prepare_cached(&sql).map_err(backend)?;
        let rows = statement.query_map([now.0], campaign_from_row).map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)
    }

    fn messages_in(&self, id: CampaignId, status: MessageStatus) -> StoreResult<Vec<Message>> {
        self.messages_where("", "campaign_id = ?1 AND status = ?2 ORDER BY contact_id", params![id.0, status.as_str()])
    }

    fn stale_unknowns(&self, cutoff: Timestamp) -> StoreResult<Vec<Message>> {
        self.messages_where(
            "INDEXED BY messages_unknown",
            "status = 'unknown' AND updated_at <= ?1 ORDER BY campaign_id, contact_id",
            [cutoff.0],
        )
    }

    fn tenant(&self, id: TenantId) -> StoreResult<Tenant> {
        self.write_pending()?;
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = ?1");
        self.tx
            .prepare_cached(&sql)
            .map_err(backend)?
            .query_row([id.0], tenant_from_row)
            .optional()
            .map_err(backend)?
            .ok_or_else(|| not_found("tenant", id))
    }
    fn message(&self, id: MessageId) -> StoreResult<Option<Message>> {
        const SQL: &str =
            concat!("SELECT ", message_columns!(""), " FROM messages WHERE campaign_id = ?1 AND contact_id = ?2");
        self.tx
            .prepare_cached(SQL)
            .map_err(backend)?
            .query_row([id.campaign.0, id.contact.0], message_from_row)
            .optional()
            .map_err(backend)
    }
    fn contacts_after(&self, tenant: TenantId, after: Option<ContactId>, limit: u32) -> StoreResult<Vec<Contact>> {
        let mut statement = self
            .tx
            .prepare_cached(
                "SELECT id, tenant_id, phone, attributes, opted_out FROM contacts \
                 WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
            )
            .map_err(backend)?;
        let after = after.map_or(-1, |id| id.0 as i64);
        let rows = statement.query_map(params![tenant.0, after, limit], contact_from_row).map_err(backend)?;
        rows.collect::<Result<_, _>>().map_err(backend)
    }
    /// Writes what [`Pending`] holds: the journal entries, the `meta` counters advanced, the campaign counter
    /// shifts and the ledger deltas (in id order, each tenant's net change checked by the
    /// table's constraints).
    fn write_pending(&self) -> StoreResult<()> {
        let (journal, writes) = {
            let mut pending = self.pending.borrow_mut();
            (pending.take_journal(), pending.take_writes())
        };
        self.insert_journal(&journal)?;
        for (key, value) in writes.meta {
            self.tx
                .prepare_cached("UPDATE meta SET value = ?2 WHERE key = ?1")
                .map_err(backend)?
                .execute(params![key, value])
                .map_err(backend)?;
        }
        for ((campaign, status), shift) in writes.counters {
            let column = engine::counter_column(status);
            let sql = format!("UPDATE campaigns SET {column} = {column} + ?1 WHERE id = ?2");
            self.tx.prepare_cached(&sql).map_err(backend)?.execute(params![shift, campaign.0]).map_err(backend)?;
        }
        for (tenant, delta) in writes.ledger {
            self.tx
                .prepare_cached("UPDATE tenants SET balance = balance + ?1, reserved = reserved + ?2, charged = charged + ?3 WHERE id = ?4")
                .map_err(backend)?
                .execute(params![delta.balance.0, delta.reserved.0, delta.charged.0, tenant.0])
                .map_err(backend)?;
        }
        Ok(())
    }
    /// Inserts `messages` (new rows: no lease, no provider ids), one statement per chunk.
    fn insert_messages(&self, messages: &[Message]) -> StoreResult<()> {
        const ROW: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, NULL, ?, ?, ?, ?, ?)";
        static TEXTS: ChunkTexts = ChunkTexts::new();
        self.execute_chunked(
            &TEXTS,
            messages,
            18,
            |rows| format!("INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES {}", vec![ROW; rows].join(", ")),
            |statement, first, message| {
                let error = message.last_error.as_ref();
                bind_values(
                    statement,
                    first,
                    params![
                        message.id.campaign.0,
                        message.id.contact.0,
                        message.tenant.0,
                        message.traffic_account.0,
                        message.destination,
                        message.sender,
                        message.body,
                        encoding_text(message.encoding),
                        message.segments,
                        message.cost.0,
                        message.status.as_str(),
                        message.attempts,
                        message.next_attempt_at.0,
                        error.map(|error| error.code.as_str()),
                        error.map(|error| error.retryable),
                        error.map(|error| error.detail.as_str()),
                        message.created_at.0,
                        message.updated_at.0,
                    ],
                )
            },
        )
    }
    fn stored_receipt(&self, tenant: TenantId, key: &str) -> StoreResult<Option<(String, EnqueueReceipt)>> {
        let stored: Option<(String, String)> = self
            .tx
            .prepare_cached("SELECT request_hash, receipt FROM idempotency_keys WHERE tenant_id = ?1 AND key = ?2")
            .map_err(backend)?
            .query_row(params![tenant.0, key], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()
            .map_err(backend)?;
        stored.map(|(hash, receipt)| Ok((hash, serde_json::from_str(&receipt).map_err(json_error)?))).transpose()
    }
    fn store_receipt(&self, tenant: TenantId, key: &IdempotencyKey, receipt: &EnqueueReceipt) -> StoreResult<()> {
        let text = serde_json::to_string(receipt).map_err(json_error)?;
        self.tx
            .prepare_cached(
                "INSERT INTO idempotency_keys (tenant_id, key, request_hash, receipt) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(backend)?
            .execute(params![tenant.0, key.key, key.request_hash, text])
            .map_err(backend)?;
        Ok(())
    }
    fn write_enqueued(&self, id: CampaignId, counts: StatusCounts, now: Timestamp) -> StoreResult<()> {
        self.tx
            .prepare_cached("UPDATE campaigns SET n_queued = ?1, n_skipped = ?2, enqueued_at = ?3 WHERE id = ?4")
            .map_err(backend)?
            .execute(params![counts.queued, counts.skipped, now.0, id.0])
            .map_err(backend)?;
        Ok(())
    }
    fn write_pause_reason(&self, id: CampaignId, reason: Option<&PauseReason>) -> StoreResult<()> {
        let text = reason.map(serde_json::to_string).transpose().map_err(json_error)?;
        self.tx
            .prepare_cached("UPDATE campaigns SET pause_reason = ?1 WHERE id = ?2")
            .map_err(backend)?
            .execute(params![text, id.0])
            .map_err(backend)?;
        Ok(())
    }
    fn contact_owner(&self, id: ContactId) -> StoreResult<Option<TenantId>> {
        let mut statement = self.tx.prepare_cached("SELECT tenant_id FROM contacts WHERE id = ?1").map_err(backend)?;
        let owner: Option<u64> = statement.query_row([id.0], |row| row.get(0)).optional().map_err(backend)?;
        Ok(owner.map(TenantId))
    }
    fn write_campaign_fields(&self, campaign: &Campaign) -> StoreResult<()> {
        let audience = serde_json::to_string(&campaign.audience).map_err(json_error)?;
        self.tx
            .prepare_cached(
                "UPDATE campaigns SET name = ?1, body_template = ?2, sender = ?3, audience = ?4, traffic_account_id = ?5, schedule_at = ?6 WHERE id = ?7",
            )
            .map_err(backend)?
            .execute(params![
                campaign.name,
                campaign.body_template,
                campaign.sender,
                audience,
                campaign.traffic_account.0,
                campaign.schedule_at.map(|at| at.0),
                campaign.id.0
            ])
            .map_err(backend)?;
        Ok(())
    }

    /// The due time and account of the oldest queued message of a sending campaign, of
    /// `account` if one is given; ties go to the smaller message id.
    ///
    /// The queue is indexed by account alone (migration 0007), so the oldest on any
    /// account is the earliest of each sending campaign's account's first. Each read names
    /// its index (`INDEXED BY`) and fixes its join order (`CROSS JOIN`), so that the plan
    /// reads the account's queue in due order and stops at the first row.
    fn first_due(&self, account: Option<TrafficAccountId>) -> StoreResult<Option<(Timestamp, TrafficAccountId)>> {
        let accounts = match account {
            Some(account) => vec![account.0],
            None => {
                let mut statement = self.tx.prepare_cached(SENDING_ACCOUNTS_SQL).map_err(backend)?;
                let ids = statement.query_map([], |row| row.get(0)).map_err(backend)?;
                ids.collect::<rusqlite::Result<Vec<u64>>>().map_err(backend)?
            }
        };
        let mut first: Option<((u64, u64, u64), TrafficAccountId)> = None;
        let mut statement = self.tx.prepare_cached(FIRST_DUE_OF_ACCOUNT_SQL).map_err(backend)?;
        for account in accounts {
            let due: Option<(u64, u64, u64)> = statement
                .query_row([account], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .optional()
                .map_err(backend)?;
            if let Some(due) = due.filter(|due| first.is_none_or(|(earliest, _)| *due < earliest)) {
                first = Some((due, TrafficAccountId(account)));
            }
        }
        Ok(first.map(|((due, _, _), account)| (Timestamp(due), account)))
    }

    fn account(&self, id: TrafficAccountId) -> StoreResult<TrafficAccount> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM traffic_accounts WHERE id = ?1");
        self.tx
            .prepare_cached(&sql)
            .map_err(backend)?
            .query_row([id.0], account_from_row)
            .optional()
            .map_err(backend)?
            .ok_or_else(|| not_found("traffic account", id))
    }

    /// Rows are read only as far as the walk goes, so a claim of 200 reads about 200 rows
    /// whatever the length of the queue.
    fn visit_due(&self, account: TrafficAccountId, now: Timestamp, visit: DueVisit<'_>) -> StoreResult<()> {
        let mut statement = self.tx.prepare_cached(DUE_WALK_SQL).map_err(backend)?;
        let mut rows = statement.query(params![account.0, now.0]).map_err(backend)?;
        while let Some(row) = rows.next().map_err(backend)? {
            let message = message_from_row(row).map_err(backend)?;
            let tenant_rate: Option<u32> = row.get(23).map_err(backend)?;
            if !visit(message, tenant_rate)? {
                break;
            }
        }
        Ok(())
    }
    fn stored_bucket(&self, kind: &str, id: u64) -> StoreResult<Option<TokenBucket>> {
        let stored: Option<(u64, u64)> = self
            .tx
            .prepare_cached("SELECT milli_tokens, updated_at FROM rate_buckets WHERE kind = ?1 AND id = ?2")
            .map_err(backend)?
            .query_row(params![kind, id], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()
            .map_err(backend)?;
        Ok(stored.map(|(milli_tokens, at)| TokenBucket { milli_tokens, updated_at: Timestamp(at) }))
    }

    fn save_bucket(&self, kind: &str, id: u64, bucket: TokenBucket) -> StoreResult<()> {
        self.tx
            .prepare_cached("INSERT INTO rate_buckets (kind, id, milli_tokens, updated_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (kind, id) DO UPDATE SET milli_tokens = ?3, updated_at = ?4")
            .map_err(backend)?
            .execute(params![kind, id, bucket.milli_tokens, bucket.updated_at.0])
            .map_err(backend)?;
        Ok(())
    }

    /// Writes the rows of messages just claimed ([`CLAIM_COLUMNS`]). The messages of one
    /// campaign that share those values — in a claim, all of a campaign's messages on the
    /// same attempt — are written by one `UPDATE … WHERE campaign_id = ? AND contact_id IN
    /// (…)` per chunk, which SQLite runs in one pass with one primary-key search per row:
    /// measured cheaper per row (by 15–30 % in a claim-shaped test) than the `UPDATE …
    /// FROM (VALUES …)` of [`Tx::save_states`], which materialises its list and the rows to
    /// change first.
    fn save_claimed(&self, messages: &[Message]) -> StoreResult<()> {
        let mut groups: BTreeMap<(CampaignId, ClaimValues<'_>), Vec<u64>> = BTreeMap::new();
        for message in messages {
            groups.entry((message.id.campaign, claim_values(message))).or_default().push(message.id.contact.0);
        }
        static TEXTS: ChunkTexts = ChunkTexts::new();
        let sql = |rows| {
            let set = CLAIM_COLUMNS.map(|column| format!("{column} = ?")).join(", ");
            let list = vec!["?"; rows].join(", ");
            format!("UPDATE messages SET {set} WHERE campaign_id = ? AND contact_id IN ({list})")
        };
        for ((campaign, values), contacts) in &groups {
            let (status, attempts, worker, expires_at, token, code, retryable, detail, updated_at) = values;
            for chunk in power_of_two_chunks(contacts) {
                let mut statement = self.tx.prepare_cached(TEXTS.get(chunk.len(), sql)).map_err(backend)?;
                let shared = params![
                    status, attempts, worker, expires_at, token, code, retryable, detail, updated_at, campaign.0
                ];
                bind_values(&mut statement, 1, shared).map_err(backend)?;
                for (index, contact) in chunk.iter().enumerate() {
                    statement.raw_bind_parameter(shared.len() + 1 + index, contact).map_err(backend)?;
                }
                statement.raw_execute().map_err(backend)?;
            }
        }
        Ok(())
    }

    /// Writes the parts of `message` that change with its status. The provider ids are
    /// written apart ([`Tx::save_provider_ids`], [`Tx::save_acceptances`]) because they
    /// change once per message: an UPDATE that names a column rewrites every index entry
    /// holding it.
    fn save_state(&self, message: &Message) -> StoreResult<()> {
        self.save_states(&[message])
    }

    /// Writes the provider ids `message` was just given, numbered in assignment order: a
    /// report for a provider id goes to the message that was given it last.
    fn save_provider_ids(&self, message: &Message) -> StoreResult<()> {
        let assigned = self.next_meta("provider_id_assigned")?;
        self.tx
            .prepare_cached(
                "UPDATE messages SET provider_message_id = ?1, bulk_id = ?2, provider_id_assigned = ?3 \
                 WHERE campaign_id = ?4 AND contact_id = ?5",
            )
            .map_err(backend)?
            .execute(params![
                message.provider_message_id,
                message.bulk_id,
                assigned,
                message.id.campaign.0,
                message.id.contact.0
            ])
            .map_err(backend)?;
        Ok(())
    }

    fn campaign(&self, id: CampaignId) -> StoreResult<Option<Campaign>> {
        self.write_pending()?;
        let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = ?1");
        self.tx.prepare_cached(&sql).map_err(backend)?.query_row([id.0], campaign_from_row).optional().map_err(backend)
    }

    /// Takes `count` consecutive values of the counter `key`; returns the first. The
    /// counter is read once per transaction and written back by [`Tx::write_pending`].
    fn take_meta(&self, key: &'static str, count: u64) -> StoreResult<u64> {
        self.pending.borrow_mut().take_meta(key, count, || {
            self.tx
                .prepare_cached("SELECT value FROM meta WHERE key = ?1")
                .map_err(backend)?
                .query_row([key], |row| row.get(0))
                .map_err(backend)
        })
    }

    fn write_campaign_status(&self, campaign: &Campaign) -> StoreResult<()> {
        self.tx
            .prepare_cached("UPDATE campaigns SET status = ?1, completed_at = ?2 WHERE id = ?3")
            .map_err(backend)?
            .execute(params![campaign.status.as_str(), campaign.completed_at.map(|at| at.0), campaign.id.0])
            .map_err(backend)?;
        Ok(())
    }

    fn pending(&self) -> RefMut<'_, Pending> {
        self.pending.borrow_mut()
    }

    fn any_parked_reports(&self, account: TrafficAccountId) -> StoreResult<bool> {
        self.tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM parked_reports WHERE traffic_account_id = ?1)")
            .map_err(backend)?
            .query_row([account.0], |row| row.get(0))
            .map_err(backend)
    }

    fn parked_reports(&self) -> StoreResult<Vec<(InboundReport, Timestamp)>> {
        let mut statement =
            self.tx.prepare_cached("SELECT report, received_at FROM parked_reports ORDER BY seq").map_err(backend)?;
        let rows = statement
            .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, u64>(1)?)))
            .map_err(backend)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        rows.into_iter()
            .map(|(text, at)| Ok((serde_json::from_str(&text).map_err(json_error)?, Timestamp(at))))
            .collect()
    }

    fn delete_parked_received_by(&self, cutoff: Timestamp) -> StoreResult<u64> {
        let deleted = self
            .tx
            .prepare_cached("DELETE FROM parked_reports WHERE received_at <= ?1")
            .map_err(backend)?
            .execute([cutoff.0])
            .map_err(backend)?;
        Ok(deleted as u64)
    }

    fn take_parked_reports(
        &self,
        account: TrafficAccountId,
        provider_message_id: &str,
    ) -> StoreResult<Vec<InboundReport>> {
        let parked: Vec<(u64, String)> = {
            let mut statement = self
                .tx
                .prepare_cached("SELECT seq, report FROM parked_reports WHERE traffic_account_id = ?1 AND provider_message_id = ?2 ORDER BY seq")
                .map_err(backend)?;
            let rows = statement
                .query_map(params![account.0, provider_message_id], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)?
        };
        let mut reports = Vec::with_capacity(parked.len());
        for (seq, text) in &parked {
            self.tx
                .prepare_cached("DELETE FROM parked_reports WHERE seq = ?1")
                .map_err(backend)?
                .execute([seq])
                .map_err(backend)?;
            reports.push(serde_json::from_str(text).map_err(json_error)?);
        }
        Ok(reports)
    }

    /// [`Tx::save_state`] for each of `messages` (distinct), one statement per chunk.
    fn extend_leases(&self, token: u64, expires_at: Timestamp) -> StoreResult<u32> {
        let renewed = self
            .tx
            .prepare_cached(
                "UPDATE messages SET lease_expires_at = ?1 WHERE status = 'submitting' AND lease_token = ?2",
            )
            .map_err(backend)?
            .execute(params![expires_at.0, token])
            .map_err(backend)?;
        Ok(renewed as u32)
    }
    fn message_for_report(&self, report: &InboundReport) -> StoreResult<Option<Message>> {
        Ok(self
            .messages_where(
                "INDEXED BY messages_by_provider_id",
                "traffic_account_id = ?1 AND provider_message_id = ?2 ORDER BY provider_id_assigned DESC LIMIT 1",
                params![report.traffic_account.0, report.provider_message_id],
            )?
            .pop())
    }
    fn park(&self, report: InboundReport, now: Timestamp) -> StoreResult<ReportOutcome> {
        self.pending.borrow_mut().set_parked(report.traffic_account, true);
        let seq = self.next_meta("parked_seq")?;
        let text = serde_json::to_string(&report).map_err(json_error)?;
        self.tx
            .prepare_cached("INSERT INTO parked_reports (seq, traffic_account_id, provider_message_id, report, received_at) VALUES (?1, ?2, ?3, ?4, ?5)")
            .map_err(backend)?
            .execute(params![seq, report.traffic_account.0, report.provider_message_id, text, now.0])
            .map_err(backend)?;
        Ok(ReportOutcome::Parked)
    }
    fn save_states(&self, messages: &[&Message]) -> StoreResult<()> {
        static TEXTS: ChunkTexts = ChunkTexts::new();
        self.execute_chunked(
            &TEXTS,
            messages,
            STATE_COLUMNS.len() + 2,
            |rows| keyed_update_sql(&STATE_COLUMNS, rows),
            |statement, first, message| bind_state(statement, first, message),
        )
    }

    /// Writes the state and the provider ids of messages just accepted, each with the
    /// number its provider id was given ([`Tx::accept`]); one statement per chunk, one
    /// B-tree search per row.
    fn save_acceptances(&self, accepted: &[(&Message, u64)]) -> StoreResult<()> {
        const COLUMNS: [&str; STATE_COLUMNS.len() + PROVIDER_COLUMNS.len()] = {
            let mut columns = [""; STATE_COLUMNS.len() + PROVIDER_COLUMNS.len()];
            let mut index = 0;
            while index < columns.len() {
                columns[index] = if index < STATE_COLUMNS.len() {
                    STATE_COLUMNS[index]
                } else {
                    PROVIDER_COLUMNS[index - STATE_COLUMNS.len()]
                };
                index += 1;
            }
            columns
        };
        static TEXTS: ChunkTexts = ChunkTexts::new();
        self.execute_chunked(
            &TEXTS,
            accepted,
            COLUMNS.len() + 2,
            |rows| keyed_update_sql(&COLUMNS, rows),
            |statement, first, (message, assigned)| {
                bind_state(statement, first, message)?;
                let after_state = first + STATE_COLUMNS.len() + 2;
                bind_values(statement, after_state, params![message.provider_message_id, message.bulk_id, assigned])
            },
        )
    }

    /// The messages among `ids` that exist, by id: one statement per chunk, which reads
    /// the rows by primary key in the order of the list.
    fn messages_by_id(&self, ids: &[MessageId]) -> StoreResult<BTreeMap<MessageId, Message>> {
        const ONE: &str =
            concat!("SELECT ", message_columns!(""), " FROM messages WHERE campaign_id = ? AND contact_id = ?");
        static TEXTS: ChunkTexts = ChunkTexts::new();
        let mut found = BTreeMap::new();
        for chunk in power_of_two_chunks(ids) {
            let sql = TEXTS.get(chunk.len(), |rows| match rows {
                1 => ONE.to_owned(),
                rows => format!(
                    concat!(
                        "SELECT ",
                        message_columns!("m."),
                        " FROM (VALUES {}) AS v CROSS JOIN messages m \
                         WHERE m.campaign_id = v.column1 AND m.contact_id = v.column2"
                    ),
                    placeholder_rows(rows, 2)
                ),
            });
            let mut statement = self.tx.prepare_cached(sql).map_err(backend)?;
            for (index, id) in chunk.iter().enumerate() {
                bind_values(&mut statement, 2 * index + 1, params![id.campaign.0, id.contact.0]).map_err(backend)?;
            }
            let mut rows = statement.raw_query();
            while let Some(row) = rows.next().map_err(backend)? {
                let message = message_from_row(row).map_err(backend)?;
                found.insert(message.id, message);
            }
        }
        Ok(found)
    }
}

impl Store for SqliteStore {
    engine::engine_steps!(write = transaction, read = transaction);

    fn create_tenant(&self, new: NewTenant, _now: Timestamp) -> StoreResult<Tenant> {
        new.check()?;
        self.transaction(|tx| {
            tx.tx
                .prepare_cached("INSERT INTO tenants (name, api_key_hash, balance, reserved, charged, funded, rate_limit_per_s) VALUES (?1, ?2, ?3, 0, 0, ?3, ?4)")
                .map_err(backend)?
                .execute(params![new.name, new.api_key_hash, new.credits.0, new.rate_limit_per_s])
                .map_err(backend)?;
            tx.tenant(TenantId(tx.tx.last_insert_rowid() as u64))
        })
    }

    fn tenant(&self, id: TenantId) -> StoreResult<Tenant> {
        self.transaction(|tx| tx.tenant(id))
    }

    fn tenant_by_api_key_hash(&self, api_key_hash: &str) -> StoreResult<Option<Tenant>> {
        self.transaction(|tx| {
            tx.write_pending()?;
            let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE api_key_hash = ?1 ORDER BY id LIMIT 1");
            tx.tx
                .prepare_cached(&sql)
                .map_err(backend)?
                .query_row([api_key_hash], tenant_from_row)
                .optional()
                .map_err(backend)
        })
    }

    fn tenants(&self) -> StoreResult<Vec<Tenant>> {
        self.transaction(|tx| {
            tx.write_pending()?;
            let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY id");
            let mut statement = tx.tx.prepare_cached(&sql).map_err(backend)?;
            let rows = statement.query_map([], tenant_from_row).map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
    }

    fn change_credits(&self, tenant: TenantId, change: CreditChange, _now: Timestamp) -> StoreResult<Tenant> {
        self.transaction(|tx| {
            let delta = rules::credit_change(&tx.tenant(tenant)?, change)?;
            tx.tx
                .prepare_cached("UPDATE tenants SET balance = balance + ?1, funded = funded + ?1 WHERE id = ?2")
                .map_err(backend)?
                .execute(params![delta.0, tenant.0])
                .map_err(backend)?;
            tx.tenant(tenant)
        })
    }

    fn create_traffic_account(&self, new: NewTrafficAccount) -> StoreResult<TrafficAccount> {
        new.check()?;
        self.transaction(|tx| {
            if let Some(owner) = new.owner {
                tx.tenant(owner)?;
            }
            let credentials = serde_json::to_string(&new.credentials).map_err(json_error)?;
            tx.tx
                .prepare_cached(
                    "INSERT INTO traffic_accounts (owner, name, provider, base_url, credentials, sender, rate_limit_per_s, price_per_segment, idempotent_submissions) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )
                .map_err(backend)?
                .execute(params![
                    new.owner.map(|owner| owner.0),
                    new.name,
                    new.provider.as_str(),
                    new.base_url,
                    credentials,
                    new.sender,
                    new.rate_limit_per_s,
                    new.price_per_segment.0,
                    new.idempotent_submissions
                ])
                .map_err(backend)?;
            tx.account(TrafficAccountId(tx.tx.last_insert_rowid() as u64))
        })
    }

    fn traffic_account(&self, id: TrafficAccountId) -> StoreResult<TrafficAccount> {
        self.transaction(|tx| tx.account(id))
    }

    fn traffic_accounts(&self) -> StoreResult<Vec<TrafficAccount>> {
        self.transaction(|tx| {
            let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM traffic_accounts ORDER BY id");
            let mut statement = tx.tx.prepare_cached(&sql).map_err(backend)?;
            let rows = statement.query_map([], account_from_row).map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
    }

    fn contacts(&self, tenant: TenantId) -> StoreResult<Vec<Contact>> {
        self.transaction(|tx| {
            tx.tenant(tenant)?;
            tx.contacts_after(tenant, None, u32::MAX)
        })
    }

    fn create_campaign(&self, tenant: TenantId, new: NewCampaign, now: Timestamp) -> StoreResult<Campaign> {
        self.transaction(|tx| {
            tx.tenant(tenant)?;
            tx.check_new_campaign(tenant, &new)?;
            let audience = serde_json::to_string(&new.audience).map_err(json_error)?;
            tx.tx
                .prepare_cached(
                    "INSERT INTO campaigns (tenant_id, name, body_template, sender, audience, traffic_account_id, status, schedule_at, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'draft', ?7, ?8)",
                )
                .map_err(backend)?
                .execute(params![tenant.0, new.name, new.body_template, new.sender, audience, new.traffic_account.0, new.schedule_at.map(|at| at.0), now.0])
                .map_err(backend)?;
            Ok(tx.campaign(CampaignId(tx.tx.last_insert_rowid() as u64))?.expect("just inserted"))
        })
    }

    fn campaigns(&self, tenant: TenantId) -> StoreResult<Vec<Campaign>> {
        self.transaction(|tx| {
            tx.tenant(tenant)?;
            tx.write_pending()?;
            let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE tenant_id = ?1 ORDER BY id");
            let mut statement = tx.tx.prepare_cached(&sql).map_err(backend)?;
            let rows = statement.query_map([tenant.0], campaign_from_row).map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
    }

    fn all_campaigns(&self) -> StoreResult<Vec<Campaign>> {
        self.transaction(|tx| {
            tx.write_pending()?;
            let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns ORDER BY id");
            let mut statement = tx.tx.prepare_cached(&sql).map_err(backend)?;
            let rows = statement.query_map([], campaign_from_row).map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
    }

    fn failures_by_code(&self, tenant: TenantId, id: CampaignId) -> StoreResult<BTreeMap<String, u32>> {
        self.transaction(|tx| {
            tx.campaign_of(tenant, id)?;
            let mut statement = tx
                .tx
                .prepare_cached("SELECT COALESCE(error_code, 'UNKNOWN'), COUNT(*) FROM messages WHERE campaign_id = ?1 AND status = 'failed' GROUP BY 1 ORDER BY 1")
                .map_err(backend)?;
            let rows = statement.query_map([id.0], |row| Ok((row.get(0)?, row.get(1)?))).map_err(backend)?;
            rows.collect::<Result<_, _>>().map_err(backend)
        })
    }

    fn messages(&self, campaign: CampaignId) -> StoreResult<Vec<Message>> {
        self.transaction(|tx| {
            tx.campaign(campaign)?.ok_or_else(|| not_found("campaign", campaign))?;
            tx.messages_where("", "campaign_id = ?1 ORDER BY contact_id", [campaign.0])
        })
    }

    fn unknown_messages(&self, limit: u32) -> StoreResult<Vec<Message>> {
        self.transaction(|tx| tx.messages_where(UNKNOWN_INDEX, UNKNOWN_OLDEST_FIRST, [limit]))
    }

    fn queue_stats(&self, tenant: Option<TenantId>, now: Timestamp) -> StoreResult<QueueStats> {
        self.transaction(|tx| {
            let parked = "SELECT COUNT(*) FROM parked_reports p LEFT JOIN traffic_accounts a ON a.id = p.traffic_account_id \
                          WHERE ?1 IS NULL OR a.owner = ?1";
            if let Some(tenant) = tenant {
                tx.tenant(tenant)?;
            }
            let (queued, due) = tx.queued_and_due(tenant, now)?;
            let stats = match tenant {
                // Store-wide: each count reads only the partial index of its status.
                None => QueueStats {
                    queued,
                    due,
                    submitting: tx.count(
                        "SELECT COUNT(*) FROM messages INDEXED BY messages_submitting_by_token WHERE status = 'submitting'",
                        [],
                    )?,
                    unknown: tx
                        .count("SELECT COUNT(*) FROM messages INDEXED BY messages_unknown WHERE status = 'unknown'", [])?,
                    parked_reports: tx.count(parked, [None::<u64>])?,
                    parked_reports_expired: Some(
                        tx.tx
                            .prepare_cached("SELECT value FROM meta WHERE key = ?1")
                            .map_err(backend)?
                            .query_row([engine::PARKED_EXPIRED], |row| row.get(0))
                            .map_err(backend)?,
                    ),
                },
                // One tenant: the unknown by their tenant index; those in flight (a set
                // bounded by the claims out) by the tenant each lease-token entry carries.
                Some(tenant) => QueueStats {
                    queued,
                    due,
                    submitting: tx.count(
                        "SELECT COUNT(*) FROM messages INDEXED BY messages_submitting_by_token \
                         WHERE status = 'submitting' AND tenant_id = ?1",
                        [tenant.0],
                    )?,
                    unknown: tx.count(
                        "SELECT COUNT(*) FROM messages INDEXED BY messages_unknown_by_tenant \
                         WHERE tenant_id = ?1 AND status = 'unknown'",
                        [tenant.0],
                    )?,
                    parked_reports: tx.count(parked, [tenant.0])?,
                    parked_reports_expired: None,
                },
            };
            Ok(stats)
        })
    }

    fn recount(&self, campaign: CampaignId) -> StoreResult<StatusCounts> {
        self.transaction(|tx| {
            tx.campaign(campaign)?.ok_or_else(|| not_found("campaign", campaign))?;
            let mut statement = tx
                .tx
                .prepare_cached("SELECT status, COUNT(*) FROM messages WHERE campaign_id = ?1 GROUP BY status")
                .map_err(backend)?;
            let rows = statement
                .query_map([campaign.0], |row| Ok((row.get::<_, String>(0)?, row.get::<_, u32>(1)?)))
                .map_err(backend)?;
            let mut counts = StatusCounts::default();
            for row in rows {
                let (status, count) = row.map_err(backend)?;
                *counts.get_mut(
                    MessageStatus::parse(&status)
                        .ok_or_else(|| StoreError::Backend(format!("unknown status {status}")))?,
                ) += count;
            }
            Ok(counts)
        })
    }

    fn ledger_recount(&self, tenant: TenantId) -> StoreResult<LedgerRecount> {
        self.transaction(|tx| {
            tx.tenant(tenant)?;
            // A tenant's messages are its campaigns' messages, read by the primary key's
            // campaign prefix (no index by tenant is kept up to date on every move).
            let mut statement = tx
                .tx
                .prepare_cached(
                    "SELECT m.status, m.error_code, SUM(m.cost) FROM campaigns c CROSS JOIN messages m \
                     WHERE c.tenant_id = ?1 AND m.campaign_id = c.id AND m.tenant_id = ?1 GROUP BY m.status, m.error_code",
                )
                .map_err(backend)?;
            let rows = statement
                .query_map([tenant.0], |row| Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?, row.get::<_, i64>(2)?)))
                .map_err(backend)?;
            let mut recount = LedgerRecount::default();
            for row in rows {
                let (status, code, cost) = row.map_err(backend)?;
                let status = MessageStatus::parse(&status).ok_or_else(|| StoreError::Backend(format!("unknown status {status}")))?;
                rules::recount_message(&mut recount, status, code.as_deref(), Credits(cost));
            }
            Ok(recount)
        })
    }

    fn take_journal(&self) -> StoreResult<Vec<JournalEntry>> {
        self.transaction(|tx| {
            let rows: Vec<(u64, String)> = {
                let mut statement = tx
                    .tx
                    .prepare_cached("SELECT first_seq, entries FROM journal ORDER BY first_seq")
                    .map_err(backend)?;
                let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).map_err(backend)?;
                rows.collect::<Result<_, _>>().map_err(backend)?
            };
            tx.tx.execute("DELETE FROM journal", []).map_err(backend)?;
            journal_lines::decode(rows.iter().map(|(first_seq, lines)| (*first_seq, lines.as_str())))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ledger::LedgerDelta;
    use crate::store::conformance::phone;

    const NOW: Timestamp = Timestamp(1_700_000_000_000);

    fn tenant(store: &dyn Store, credits: i64) -> Tenant {
        let new = NewTenant {
            name: "acme".into(),
            api_key_hash: "h".into(),
            credits: Credits(credits),
            rate_limit_per_s: None,
        };
        store.create_tenant(new, NOW).expect("create tenant")
    }

    /// A tenant with `contacts` contacts and a draft campaign to all of them through a
    /// platform account at 10 credits a segment.
    fn draft(store: &dyn Store, credits: i64, contacts: u32, schedule_at: Option<Timestamp>) -> (Tenant, Campaign) {
        let tenant = tenant(store, credits);
        let account = store
            .create_traffic_account(NewTrafficAccount {
                owner: None,
                name: "main".into(),
                provider: ProviderKind::Mitto,
                base_url: "http://provider".into(),
                credentials: BTreeMap::from([("api_key".to_owned(), "secret".to_owned())]),
                sender: "SMSIM".into(),
                rate_limit_per_s: None,
                price_per_segment: Credits(10),
                idempotent_submissions: false,
            })
            .expect("create account");
        let rows = (0..contacts).map(|n| NewContact { phone: phone(n), ..NewContact::default() }).collect();
        store.import_contacts(tenant.id, rows, NOW).expect("import");
        let campaign = store
            .create_campaign(
                tenant.id,
                NewCampaign {
                    name: "spring".into(),
                    body_template: "Hello {{name|friend}}".into(),
                    sender: None,
                    audience: Audience::All,
                    traffic_account: account.id,
                    schedule_at,
                },
                NOW,
            )
            .expect("create campaign");
        (tenant, campaign)
    }

    fn pragma<T: rusqlite::types::FromSql>(store: &SqliteStore, name: &str) -> T {
        let connection = store.connection.lock().expect("connection");
        connection.pragma_query_value(None, name, |row| row.get(0)).expect("pragma")
    }

    fn message_rows(store: &SqliteStore) -> u32 {
        let connection = store.connection.lock().expect("connection");
        connection.query_row("SELECT COUNT(*) FROM messages", [], |row| row.get(0)).expect("count")
    }

    #[test]
    fn migrations_apply_on_a_fresh_file_and_reopening_is_idempotent() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("smsim.db");
        let store = SqliteStore::open(&path).expect("open");
        assert_eq!(store.schema_version().expect("version"), MIGRATIONS.len());
        tenant(&store, 5);
        drop(store);
        let reopened = SqliteStore::open(&path).expect("reopen");
        assert_eq!(reopened.schema_version().expect("version"), MIGRATIONS.len());
        assert_eq!(reopened.tenants().expect("tenants").len(), 1, "a reopen applies nothing twice");
    }

    #[test]
    fn a_version_1_database_is_brought_up_to_date() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("smsim.db");
        {
            let connection = Connection::open(&path).expect("open");
            connection.execute_batch(MIGRATIONS[0]).expect("version 1");
            connection.pragma_update(None, "user_version", 1).expect("set version");
            connection
                .execute(
                    "INSERT INTO tenants (name, api_key_hash, balance, reserved, charged, funded) VALUES ('old', 'h', 7, 0, 0, 7)",
                    [],
                )
                .expect("a row written by version 1");
        }
        let store = SqliteStore::open(&path).expect("open and migrate");
        assert_eq!(store.schema_version().expect("version"), MIGRATIONS.len());
        assert_eq!(store.tenants().expect("tenants")[0].balance, Credits(7));
        let indexes: Vec<String> = {
            let connection = store.connection.lock().expect("connection");
            let mut statement = connection
                .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages' ORDER BY name")
                .expect("prepare");
            let names = statement.query_map([], |row| row.get(0)).expect("query");
            names.collect::<Result<_, _>>().expect("names")
        };
        assert!(!indexes.contains(&"messages_queued".to_owned()), "version 7 drops it: {indexes:?}");
        assert!(indexes.contains(&"messages_queued_by_account".to_owned()), "{indexes:?}");
        assert!(!indexes.contains(&"messages_claimable".to_owned()), "{indexes:?}");
        assert!(!indexes.contains(&"messages_queued_by_tenant".to_owned()), "version 7 drops it: {indexes:?}");
        assert!(!indexes.contains(&"messages_by_tenant".to_owned()), "version 3 drops it: {indexes:?}");
        assert!(!indexes.contains(&"messages_submitting_by_expiry".to_owned()), "version 4 drops it: {indexes:?}");
        assert!(indexes.contains(&"messages_submitting_by_token".to_owned()), "{indexes:?}");
    }

    #[test]
    fn version_5_carries_the_json_journal_over_into_lines() {
        let entries = journal_lines::sample_entries();
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("smsim.db");
        {
            let connection = Connection::open(&path).expect("open");
            for migration in &MIGRATIONS[..4] {
                connection.execute_batch(migration).expect("versions 1 to 4");
            }
            connection.pragma_update(None, "user_version", 4).expect("set version");
            for entry in &entries {
                let text = serde_json::to_string(entry).expect("an entry as version 4 wrote it");
                connection
                    .execute("INSERT INTO journal (seq, entry) VALUES (?1, ?2)", params![entry.seq(), text])
                    .expect("a version 4 journal row");
            }
        }
        let store = SqliteStore::open(&path).expect("open and migrate");
        assert_eq!(store.schema_version().expect("version"), MIGRATIONS.len());
        assert_eq!(store.take_journal().expect("the carried journal"), entries);
    }

    #[test]
    fn an_unreadable_journal_row_is_an_error_naming_it() {
        let store = SqliteStore::open_in_memory().expect("store");
        {
            let connection = store.connection.lock().expect("connection");
            connection
                .execute(
                    "INSERT INTO journal (first_seq, entries) \
                     VALUES (8, '8 0 1 2 - queued engine' || char(10) || '9 0 1 2 queued sent-ish engine')",
                    [],
                )
                .expect("a row with a status no version writes");
        }
        let refused = store.take_journal().expect_err("an unknown status is not skipped");
        assert!(
            matches!(refused, StoreError::Backend(ref message) if message.contains("journal row 8, line 2") && message.contains("sent-ish")),
            "{refused:?}"
        );
    }

    #[test]
    fn version_6_moves_the_messages_into_a_rowid_table_unchanged() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("smsim.db");
        let rows = |connection: &Connection| -> Vec<Vec<rusqlite::types::Value>> {
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS}, provider_id_assigned FROM messages ORDER BY campaign_id, contact_id"
            );
            let mut statement = connection.prepare(&sql).expect("prepare");
            let width = statement.column_count();
            let rows = statement
                .query_map([], |row| (0..width).map(|index| row.get(index)).collect::<rusqlite::Result<Vec<_>>>())
                .expect("query");
            rows.collect::<Result<_, _>>().expect("rows")
        };
        let before = {
            let connection = Connection::open(&path).expect("open");
            for migration in &MIGRATIONS[..5] {
                connection.execute_batch(migration).expect("versions 1 to 5");
            }
            connection.pragma_update(None, "user_version", 5).expect("set version");
            connection
                .execute_batch(
                    "INSERT INTO tenants (id, name, api_key_hash, balance, reserved, charged, funded) \
                     VALUES (1, 'acme', 'h', 1000, 0, 0, 1000);
                     INSERT INTO traffic_accounts (id, name, provider, base_url, credentials, sender, \
                     price_per_segment, idempotent_submissions) VALUES (1, 'm', 'mitto', 'http://p', '{}', 'S', 55, 0);
                     INSERT INTO campaigns (id, tenant_id, name, body_template, audience, traffic_account_id, status, \
                     created_at) VALUES (1, 1, 'a', 'Hi', 'all', 1, 'sending', 0), (2, 1, 'b', 'Hi', 'all', 1, 'sending', 0);",
                )
                .expect("the rows a message refers to");
            for (campaign, contact, status, provider_id) in
                [(2, 9, "accepted", Some("p2_9")), (1, 5, "queued", None), (1, 3, "submitting", None)]
            {
                connection
                    .execute(
                        "INSERT INTO messages (campaign_id, contact_id, tenant_id, traffic_account_id, destination, \
                         sender, body, encoding, segments, cost, status, attempts, next_attempt_at, lease_token, \
                         provider_message_id, provider_id_assigned, created_at, updated_at) \
                         VALUES (?1, ?2, 1, 1, '+306910000000', 'SMSIM', 'Hi', 'gsm7', 1, 55, ?3, 1, 100, \
                         CASE WHEN ?3 = 'submitting' THEN 7 END, ?4, CASE WHEN ?4 IS NOT NULL THEN 1 END, 10, 20)",
                        params![campaign, contact, status, provider_id],
                    )
                    .expect("a version 5 message row");
            }
            rows(&connection)
        };
        let store = SqliteStore::open(&path).expect("open and migrate");
        let connection = store.connection.lock().expect("connection");
        assert_eq!(rows(&connection), before, "every column of every row carried over");
        let table: String = connection
            .query_row("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'messages'", [], |row| row.get(0))
            .expect("the table's definition");
        assert!(!table.contains("WITHOUT ROWID"), "{table}");
        let duplicate = connection
            .execute("INSERT INTO messages SELECT * FROM messages WHERE campaign_id = 1 AND contact_id = 5", []);
        assert!(duplicate.is_err(), "(campaign, contact) stays unique");
    }

    /// The queries that read messages in (time, id) order take it from their index: a
    /// plan that sorts reads the whole queue to return its first rows, which made each
    /// claim read every queued message when the indexes of schema 6 lacked the key.
    #[test]
    fn the_ordered_queue_reads_sort_nothing() {
        let store = SqliteStore::open_in_memory().expect("store");
        let connection = store.connection.lock().expect("connection");
        let unknown = format!("SELECT {MESSAGE_COLUMNS} FROM messages {UNKNOWN_INDEX} WHERE {UNKNOWN_OLDEST_FIRST}");
        for sql in [FIRST_DUE_OF_ACCOUNT_SQL, DUE_WALK_SQL, unknown.as_str()] {
            let mut statement = connection.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("a plan");
            // Parameters left unbound are NULL, which does not change the plan.
            let mut rows = statement.raw_query();
            let mut steps: Vec<String> = Vec::new();
            while let Some(row) = rows.next().expect("a plan step") {
                steps.push(row.get(3).expect("the step's text"));
            }
            assert!(steps.iter().any(|step| step.contains(" INDEX messages_")), "{sql}: {steps:?}");
            assert!(!steps.iter().any(|step| step.contains("TEMP B-TREE")), "{sql} sorts: {steps:?}");
        }
    }

    /// The one queue index answers what the two it replaced did (migration 0007): the
    /// accounts to look at come from the campaigns' status index, and a tenant's queue
    /// figures are counted from the index entries alone, reading no message row.
    #[test]
    fn the_queue_figures_read_the_queue_index_alone() {
        let store = SqliteStore::open_in_memory().expect("store");
        let connection = store.connection.lock().expect("connection");
        let plan = |sql: &str| -> Vec<String> {
            let mut statement = connection.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("a plan");
            let mut rows = statement.raw_query();
            let mut steps = Vec::new();
            while let Some(row) = rows.next().expect("a plan step") {
                steps.push(row.get(3).expect("the step's text"));
            }
            steps
        };
        let accounts = plan(SENDING_ACCOUNTS_SQL);
        assert!(accounts.iter().any(|step| step.contains("INDEX campaigns_by_status")), "{accounts:?}");
        let counts = plan(QUEUED_AND_DUE_SQL);
        assert!(
            counts.iter().any(|step| step.contains("COVERING INDEX messages_queued_by_account")),
            "the count reads message rows: {counts:?}"
        );
    }

    #[test]
    fn a_batch_is_cut_in_power_of_two_chunks() {
        let lengths = |rows: usize| power_of_two_chunks(&vec![(); rows]).map(<[()]>::len).collect::<Vec<_>>();
        assert_eq!(lengths(200), [128, 64, 8]);
        assert_eq!(lengths(300), [128, 128, 32, 8, 4]);
        assert_eq!(lengths(1), [1]);
        assert!(lengths(0).is_empty());
    }

    #[test]
    fn a_schema_newer_than_the_build_is_refused() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("smsim.db");
        Connection::open(&path).expect("open").pragma_update(None, "user_version", 99).expect("set version");
        let refused = SqliteStore::open(&path).err().expect("a newer schema is refused");
        assert!(matches!(refused, StoreError::Backend(ref message) if message.contains("99")), "{refused:?}");
    }

    #[test]
    fn a_file_database_uses_wal_normal_sync_and_foreign_keys() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = SqliteStore::open(&dir.path().join("smsim.db")).expect("open");
        assert_eq!(pragma::<String>(&store, "journal_mode"), "wal");
        assert_eq!(pragma::<i64>(&store, "synchronous"), 1, "NORMAL");
        assert_eq!(pragma::<i64>(&store, "foreign_keys"), 1);
        assert!(pragma::<i64>(&store, "busy_timeout") > 0);
    }

    #[test]
    fn state_survives_close_and_reopen_and_counters_move_on() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("smsim.db");
        let store = SqliteStore::open(&path).expect("open");
        let (tenant, campaign) = draft(&store, 1_000, 3, None);
        store.enqueue(tenant.id, campaign.id, None, NOW).expect("enqueue");
        let request = ClaimRequest {
            worker: "w".into(),
            traffic_account: None,
            max_messages: 1,
            lease_ms: 1_000,
            burst: Default::default(),
        };
        let Ok(ClaimOutcome::Claimed(first)) = store.claim(request.clone(), NOW) else { panic!("a claim") };
        let journal = store.take_journal().expect("journal");
        let last_seq = journal.last().expect("entries").seq();
        let messages = store.messages(campaign.id).expect("messages");
        let tenant = store.tenant(tenant.id).expect("tenant");
        drop(store);

        let store = SqliteStore::open(&path).expect("reopen");
        assert_eq!(store.messages(campaign.id).expect("messages"), messages);
        assert_eq!(store.tenant(tenant.id).expect("tenant"), tenant);
        assert!(store.take_journal().expect("journal").is_empty(), "taken entries stay taken");
        let Ok(ClaimOutcome::Claimed(second)) = store.claim(request, NOW) else { panic!("a claim") };
        assert_eq!(second.token, first.token + 1, "fencing tokens are never reused");
        let next = store.take_journal().expect("journal");
        assert_eq!(next.first().expect("the claim's entry").seq(), last_seq + 1, "journal numbers are never reused");
    }

    #[test]
    fn an_enqueue_refused_for_credit_leaves_no_trace() {
        let store = SqliteStore::open_in_memory().expect("open");
        let (tenant, campaign) = draft(&store, 25, 3, None);
        store.take_journal().expect("journal");
        let key = IdempotencyKey { key: "k".into(), request_hash: "h".into() };
        let refused = store.enqueue(tenant.id, campaign.id, Some(key.clone()), NOW);
        assert_eq!(refused, Err(StoreError::InsufficientCredits { needed: Credits(30), available: Credits(25) }));
        assert_eq!(message_rows(&store), 0);
        assert_eq!(store.tenant(tenant.id).expect("tenant"), tenant);
        assert_eq!(store.campaign(tenant.id, campaign.id).expect("campaign"), campaign);
        assert!(store.take_journal().expect("journal").is_empty());
        // The refused request was not remembered under its key: after a top-up the same
        // key enqueues for real.
        store.change_credits(tenant.id, CreditChange::TopUp(Credits(5)), NOW).expect("top up");
        let receipt = store.enqueue(tenant.id, campaign.id, Some(key), NOW).expect("enqueue");
        assert!(!receipt.replayed);
        assert_eq!(message_rows(&store), 3);
    }

    #[test]
    fn a_failed_call_rolls_back_everything_it_wrote() {
        let store = SqliteStore::open_in_memory().expect("open");
        let tenant = tenant(&store, 0);
        // The journal sequence is bumped inside the refused transaction; it must roll back.
        let result: StoreResult<()> = store.transaction(|tx| {
            tx.journal(|seq| JournalEntry::Campaign {
                seq,
                at: NOW,
                campaign: CampaignId(1),
                from: CampaignStatus::Draft,
                to: CampaignStatus::Sending,
            })?;
            Err(StoreError::Conflict("refused".into()))
        });
        assert!(result.is_err());
        assert!(store.take_journal().expect("journal").is_empty());
        assert_eq!(store.tenant(tenant.id).expect("tenant"), tenant);
    }

    #[test]
    fn a_panic_inside_a_transaction_rolls_back_and_the_store_goes_on() {
        let store = SqliteStore::open_in_memory().expect("open");
        let tenant = tenant(&store, 0);
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.transaction(|tx| -> StoreResult<()> {
                tx.apply_ledger(tenant.id, LedgerDelta { balance: Credits(9), ..LedgerDelta::NONE })?;
                panic!("a store bug");
            })
        }));
        assert!(unwound.is_err());
        assert_eq!(store.tenant(tenant.id).expect("the store still answers"), tenant);
    }

    #[test]
    fn only_a_draft_is_enqueued() {
        // The status graph allows paused → sending and scheduled → sending; enqueue must
        // not plan a started campaign's messages a second time.
        let store = SqliteStore::open_in_memory().expect("open");
        let (tenant, campaign) = draft(&store, 1_000, 2, None);
        store.enqueue(tenant.id, campaign.id, None, NOW).expect("enqueue");
        store.pause(tenant.id, campaign.id, PauseReason::Operator, NOW).expect("pause");
        let before = store.messages(campaign.id).expect("messages");
        let refused = store.enqueue(tenant.id, campaign.id, None, NOW);
        assert!(matches!(refused, Err(StoreError::Conflict(_))), "{refused:?}");
        assert_eq!(store.messages(campaign.id).expect("messages"), before);

        let later = NOW.plus_ms(60_000);
        let (tenant, scheduled) = draft(&store, 1_000, 2, Some(later));
        store.enqueue(tenant.id, scheduled.id, None, NOW).expect("enqueue");
        let refused = store.enqueue(tenant.id, scheduled.id, None, later);
        assert!(matches!(refused, Err(StoreError::Conflict(_))), "{refused:?}");
        assert_eq!(store.campaign(tenant.id, scheduled.id).expect("campaign").counts.queued, 2);
    }

    #[test]
    fn a_report_for_a_reused_provider_id_goes_to_the_message_given_it_last() {
        // As in the reference model, whatever the order of the message ids.
        let store = SqliteStore::open_in_memory().expect("open");
        let (tenant, campaign) = draft(&store, 1_000, 2, None);
        store.enqueue(tenant.id, campaign.id, None, NOW).expect("enqueue");
        let request = ClaimRequest {
            worker: "w".into(),
            traffic_account: None,
            max_messages: 2,
            lease_ms: 1_000,
            burst: Default::default(),
        };
        let Ok(ClaimOutcome::Claimed(claim)) = store.claim(request, NOW) else { panic!("a claim") };
        let accepted =
            |id: MessageId| (id, SubmissionResult::Accepted { provider_message_id: "reused".into(), bulk_id: None });
        let (first, second) = (claim.messages[0].id, claim.messages[1].id);
        store.record_submissions(claim.token, vec![accepted(first), accepted(second)], NOW).expect("record");
        let report = InboundReport {
            traffic_account: claim.traffic_account,
            provider_message_id: "reused".into(),
            message_ref: None,
            status: crate::domain::ReportStatus::Delivered,
            error_code: None,
        };
        let outcome = store.apply_report(report, NOW).expect("report");
        assert_eq!(
            outcome,
            ReportOutcome::Applied { message: second, from: MessageStatus::Accepted, to: MessageStatus::Delivered }
        );
    }

    #[test]
    fn a_locked_database_is_a_transient_error() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("smsim.db");
        let store = SqliteStore::open(&path).expect("open");
        store
            .connection
            .lock()
            .expect("connection")
            .busy_timeout(std::time::Duration::from_millis(10))
            .expect("timeout");
        let other = Connection::open(&path).expect("a second connection");
        other.execute_batch("BEGIN IMMEDIATE").expect("hold the write lock");
        let refused = store.tenants();
        assert!(matches!(refused, Err(StoreError::Transient(_))), "{refused:?}");
        other.execute_batch("ROLLBACK").expect("release");
        assert_eq!(store.tenants(), Ok(Vec::new()));
    }
}
