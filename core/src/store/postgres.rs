//! The PostgreSQL store: several engine processes, on several machines, sharing one
//! database.
//!
//! # Transactions and concurrency
//!
//! Every trait method is one database transaction that commits only if the whole method
//! succeeded, as in the SQLite store. A method that writes first takes the store's writer
//! lock — a transaction-scoped advisory lock (`pg_advisory_xact_lock`) keyed by the
//! schema — and then runs at READ COMMITTED: each of its statements sees every transaction
//! that committed before the lock was granted, and no other writer runs until it commits
//! or rolls back. Writers are therefore serialized exactly as SQLite's `BEGIN IMMEDIATE`
//! serializes them, across every process that shares the database, and every conditional
//! update (a claim takes only `queued` messages, a submission outcome only lands under its
//! fencing token, the reaper only moves leases that are still expired) is decided on the
//! latest committed state. Two reapers in two processes cannot both move one lease, and
//! two workers cannot both claim one message.
//!
//! A store-wide lock costs little that the schema does not already cost: every status
//! change appends to one journal numbered in commit order, and every claim takes the next
//! fencing token, so writers would queue on those counter rows anyway — and with row
//! locks alone, the order in which rows are locked would decide deadlocks. Methods that
//! only read take no lock; they run in a REPEATABLE READ, READ ONLY transaction, so a read
//! of several tables sees one committed state.
//!
//! A passing failure — the connection dropped, a serialization failure or a deadlock
//! reported by the server — is retried up to [`MAX_ATTEMPTS`] times; the transaction
//! rolled back, so a retry starts from scratch. After that the caller gets
//! [`StoreError::Transient`].
//!
//! # Blocking and tokio
//!
//! The [`Store`] trait is synchronous and the services call it inline (that keeps the
//! simulator deterministic). This store uses the synchronous `postgres` client with an
//! `r2d2` pool, and runs each method through [`off_the_runtime`]: on a multi-thread tokio
//! runtime (serve mode) inside [`tokio::task::block_in_place`], which hands the worker
//! thread's other tasks to another thread while this one waits on the database; on a
//! current-thread runtime on a scoped thread of its own (the runtime waits, as it must
//! when a synchronous call is made from it); outside any runtime directly.
//!
//! # Round trips
//!
//! Every statement is a round trip to the server, so the store does per batch what it
//! can: a transaction's sums (`meta` counters, campaign counters, ledger deltas, journal
//! entries) are kept in memory and written once ([`Pending`]), before anything reads those
//! rows back and before the commit; a claim, a record of submissions, an enqueue and a
//! webhook's delivery reports read and write their messages with one statement per batch,
//! each column bound as an array and joined with `UNNEST`. The steps it takes exactly as
//! the SQLite store does live once in [`super::engine`].
//!
//! # Schema
//!
//! The migrations in `core/migrations/postgres/` are applied in order when the store
//! opens, under the same advisory lock, and the version is kept in `schema_version`. The
//! store works in one schema (`public` unless told otherwise), so several stores — the
//! tests make one per case — can share a database.

use super::engine::{self, Backend, ContactRow, DueVisit};
use super::journal_lines;
use super::pending::Pending;
use super::rules::{self, not_found};
use super::*;
use crate::domain::rate::TokenBucket;
use crate::domain::records::{Encoding, Lease};
use crate::ids::ContactId;
use ::postgres as pg;
use pg::error::SqlState;
use pg::types::ToSql;
use pg::{IsolationLevel, NoTls, Row, Statement};
use std::cell::{RefCell, RefMut};
use std::collections::BTreeSet;
use std::time::Duration;

/// The due time and account of the first due message of a sending campaign on account
/// `$1`, or on any account if `$1` is NULL ([`Tx::first_due`]).
const FIRST_DUE_SQL: &str = "SELECT f.next_attempt_at, a.traffic_account_id \
     FROM (SELECT DISTINCT traffic_account_id FROM campaigns \
           WHERE status = 'sending' AND ($1::BIGINT IS NULL OR traffic_account_id = $1)) a \
     CROSS JOIN LATERAL ( \
         SELECT m.next_attempt_at, m.campaign_id, m.contact_id \
         FROM messages m JOIN campaigns c ON c.id = m.campaign_id \
         WHERE m.status = 'queued' AND m.traffic_account_id = a.traffic_account_id AND c.status = 'sending' \
         ORDER BY m.next_attempt_at, m.campaign_id, m.contact_id LIMIT 1) f \
     ORDER BY f.next_attempt_at, f.campaign_id, f.contact_id LIMIT 1";

/// Queued messages of sending campaigns (of tenant `$2`, or of all if NULL), and how many
/// are due by `$1`: a count along the account index ([`Tx::queued_and_due`]).
const QUEUED_AND_DUE_SQL: &str = "SELECT COUNT(*), COUNT(*) FILTER (WHERE m.next_attempt_at <= $1) \
     FROM messages m JOIN campaigns c ON c.id = m.campaign_id \
     WHERE m.status = 'queued' AND ($2::BIGINT IS NULL OR m.tenant_id = $2) AND c.status = 'sending'";

/// The messages whose lease expired by `$1`, read along the lease-token index (a set
/// bounded by the claims out) ([`Store::reap_expired_leases`]).
const EXPIRED_LEASES: &str = "status = 'submitting' AND lease_expires_at <= $1 ORDER BY campaign_id, contact_id";

/// Tenant `$1`'s (or, if NULL, every tenant's) messages in flight and unknown, each counted
/// along the partial index of its status ([`Store::queue_stats`]); the status is written
/// into the statement, since a generic plan for a bound status could not use them.
const SUBMITTING_COUNT_SQL: &str =
    "SELECT COUNT(*) FROM messages WHERE status = 'submitting' AND ($1::BIGINT IS NULL OR tenant_id = $1)";
const UNKNOWN_COUNT_SQL: &str =
    "SELECT COUNT(*) FROM messages WHERE status = 'unknown' AND ($1::BIGINT IS NULL OR tenant_id = $1)";

/// Tenant `$1`'s messages summed by status and error code for its ledger recount: its
/// campaigns' messages, read by the primary key's campaign prefix (no index by tenant is
/// kept up to date on every move).
const LEDGER_RECOUNT_SQL: &str = "SELECT m.status, m.error_code, SUM(m.cost)::BIGINT FROM campaigns c JOIN messages m \
     ON m.campaign_id = c.id AND m.tenant_id = $1 WHERE c.tenant_id = $1 GROUP BY m.status, m.error_code";

/// The schema migrations, in order; migration `n` brings the schema to version `n + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_initial.sql"),
    include_str!("../../migrations/postgres/0002_journal_lines.sql"),
    include_str!("../../migrations/postgres/0003_fewer_message_indexes.sql"),
    include_str!("../../migrations/postgres/0004_parked_expiry.sql"),
    include_str!("../../migrations/postgres/0005_contacts_by_tenant.sql"),
];

/// How many times a method is tried when the database reports a passing failure.
pub const MAX_ATTEMPTS: u32 = 5;

/// How to reach the database and how many connections to keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresOptions {
    /// A libpq-style URL or key=value string (`postgres://user:password@host:port/db`; a
    /// Unix socket directory goes in the host, percent-encoded).
    pub url: String,
    /// The schema the store's tables live in; created if missing.
    pub schema: String,
    /// Most connections this process opens.
    pub max_connections: u32,
    /// How long a method waits for a free connection before it fails as transient.
    pub connection_timeout: Duration,
}

impl PostgresOptions {
    /// The defaults for `url`: schema `public`, 16 connections, 10 s connection timeout.
    pub fn new(url: impl Into<String>) -> PostgresOptions {
        PostgresOptions {
            url: url.into(),
            schema: "public".into(),
            max_connections: 16,
            connection_timeout: Duration::from_secs(10),
        }
    }
}

/// The PostgreSQL store.
pub struct PostgresStore {
    /// The connections; `None` only while the store is dropped. A connection's drop
    /// blocks (it says goodbye to the server), so the pool is dropped off the runtime.
    pool: Option<r2d2::Pool<Manager>>,
    /// The key of the writer lock (and of the migration lock): one per schema.
    lock_key: i64,
    schema: String,
    /// Drop the schema with the store (the tests' throwaway schemas).
    drop_schema: bool,
}

/// One pooled connection and the statements prepared on it.
struct Connection {
    client: pg::Client,
    statements: BTreeMap<String, Statement>,
}

/// Opens connections for the pool, each with its `search_path` set to the store's schema.
struct Manager {
    config: pg::Config,
    schema: String,
}

/// A connection's error in the server's words: the pool logs it and keeps its text, and
/// the client's own text for a server error is only "db error".
#[derive(Debug)]
struct ConnectError(pg::Error);

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&describe(&self.0))
    }
}

impl std::error::Error for ConnectError {}

impl r2d2::ManageConnection for Manager {
    type Connection = Connection;
    type Error = ConnectError;

    fn connect(&self) -> Result<Connection, ConnectError> {
        let mut client = self.config.connect(NoTls).map_err(ConnectError)?;
        client
            .batch_execute(&format!("SET search_path TO {}", quote_identifier(&self.schema)))
            .map_err(ConnectError)?;
        Ok(Connection { client, statements: BTreeMap::new() })
    }

    fn is_valid(&self, connection: &mut Connection) -> Result<(), ConnectError> {
        connection.client.batch_execute("").map_err(ConnectError)
    }

    fn has_broken(&self, connection: &mut Connection) -> bool {
        connection.client.is_closed()
    }
}

/// `name` quoted as an SQL identifier.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The advisory lock key of `schema`: FNV-1a of its name, so stores in different schemas
/// of one database do not wait for each other.
fn lock_key(schema: &str) -> i64 {
    let hash = format!("smsim:{schema}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3));
    hash as i64
}

/// A database error as a store error: passing failures are [`StoreError::Transient`].
fn backend(error: pg::Error) -> StoreError {
    let passing = error.is_closed()
        || matches!(
            error.code(),
            Some(&SqlState::T_R_SERIALIZATION_FAILURE)
                | Some(&SqlState::T_R_DEADLOCK_DETECTED)
                | Some(&SqlState::ADMIN_SHUTDOWN)
                | Some(&SqlState::CONNECTION_FAILURE)
                | Some(&SqlState::TOO_MANY_CONNECTIONS)
        )
        || error.as_db_error().is_none() && error.to_string().contains("connection");
    if passing {
        StoreError::Transient(describe(&error))
    } else {
        StoreError::Backend(describe(&error))
    }
}

/// What went wrong, in the server's words when the server said it (the client's own text
/// for those is only "db error").
fn describe(error: &pg::Error) -> String {
    let Some(db) = error.as_db_error() else { return error.to_string() };
    let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
    if let Some(detail) = db.detail() {
        text.push_str(": ");
        text.push_str(detail);
    }
    text
}

fn pool_error(error: r2d2::Error) -> StoreError {
    StoreError::Transient(format!("no database connection: {error}"))
}

/// Runs blocking `work` without stalling a tokio runtime the caller may be on (see the
/// module documentation).
pub fn off_the_runtime<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(work),
        Ok(_) => std::thread::scope(|scope| {
            scope.spawn(work).join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }),
        Err(_) => work(),
    }
}

/// Whether a transaction writes (and so takes the writer lock) or only reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    Write,
    Read,
}

impl PostgresStore {
    /// Connects to the database at `url` (schema `public`) and brings the schema up to date.
    pub fn connect(url: &str) -> StoreResult<PostgresStore> {
        PostgresStore::open(PostgresOptions::new(url))
    }

    /// Connects as `options` say, creates the schema if missing and applies the migrations
    /// it lacks. Several processes may open one database at once: the migrations run under
    /// the schema's advisory lock.
    pub fn open(options: PostgresOptions) -> StoreResult<PostgresStore> {
        let config: pg::Config =
            options.url.parse().map_err(|error| invalid("db", format!("not a PostgreSQL URL: {error}")))?;
        if options.schema.is_empty() || options.schema.len() > 63 {
            return Err(invalid("schema", "a schema name has 1 to 63 characters"));
        }
        let manager = Manager { config, schema: options.schema.clone() };
        let pool = off_the_runtime(|| {
            r2d2::Pool::builder()
                .max_size(options.max_connections.max(1))
                .min_idle(Some(1))
                .connection_timeout(options.connection_timeout)
                .build(manager)
        })
        .map_err(|error| StoreError::Backend(format!("cannot connect to PostgreSQL: {error}")))?;
        let store = PostgresStore {
            pool: Some(pool),
            lock_key: lock_key(&options.schema),
            schema: options.schema,
            drop_schema: false,
        };
        store.migrate()?;
        Ok(store)
    }

    fn pool(&self) -> &r2d2::Pool<Manager> {
        self.pool.as_ref().expect("the pool lives as long as the store")
    }

    /// The schema the store works in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The schema version of the database.
    pub fn schema_version(&self) -> StoreResult<usize> {
        self.read(|tx| {
            let rows = tx.query("SELECT version FROM schema_version", &[])?;
            Ok(rows.first().map_or(0, |row| row.get::<_, i64>(0) as usize))
        })
    }

    fn migrate(&self) -> StoreResult<()> {
        off_the_runtime(|| {
            let mut connection = self.pool().get().map_err(pool_error)?;
            let mut tx = connection.client.transaction().map_err(backend)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&self.lock_key]).map_err(backend)?;
            tx.batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {schema}; \
                 CREATE TABLE IF NOT EXISTS {schema}.schema_version (version BIGINT NOT NULL);",
                schema = quote_identifier(&self.schema)
            ))
            .map_err(backend)?;
            let version = match tx.query_opt("SELECT version FROM schema_version", &[]).map_err(backend)? {
                Some(row) => row.get::<_, i64>(0) as usize,
                None => {
                    tx.execute("INSERT INTO schema_version (version) VALUES (0)", &[]).map_err(backend)?;
                    0
                }
            };
            if version > MIGRATIONS.len() {
                return Err(StoreError::Backend(format!(
                    "database schema version {version} is newer than this build ({})",
                    MIGRATIONS.len()
                )));
            }
            for (index, migration) in MIGRATIONS.iter().enumerate().skip(version) {
                tx.batch_execute(migration).map_err(backend)?;
                tx.execute("UPDATE schema_version SET version = $1", &[&(index as i64 + 1)]).map_err(backend)?;
            }
            tx.commit().map_err(backend)
        })
    }

    /// Runs `work` in one transaction that takes the writer lock.
    fn write<T: Send>(&self, work: impl FnMut(&Tx<'_>) -> StoreResult<T> + Send) -> StoreResult<T> {
        self.transaction(Access::Write, work)
    }

    /// Runs `work` in one read-only transaction on one snapshot.
    fn read<T: Send>(&self, work: impl FnMut(&Tx<'_>) -> StoreResult<T> + Send) -> StoreResult<T> {
        self.transaction(Access::Read, work)
    }

    /// Runs `work` in a transaction committed only if it succeeds, again (from scratch)
    /// after a passing failure, at most [`MAX_ATTEMPTS`] times in all.
    fn transaction<T: Send>(
        &self,
        access: Access,
        mut work: impl FnMut(&Tx<'_>) -> StoreResult<T> + Send,
    ) -> StoreResult<T> {
        off_the_runtime(|| {
            let mut attempt = 1;
            loop {
                match self.attempt(access, &mut work) {
                    Err(StoreError::Transient(error)) if attempt < MAX_ATTEMPTS => {
                        tracing::debug!(%error, attempt, "retrying a PostgreSQL transaction");
                        attempt += 1;
                        std::thread::sleep(Duration::from_millis(5 << attempt));
                    }
                    outcome => return outcome,
                }
            }
        })
    }

    fn attempt<T>(&self, access: Access, work: &mut impl FnMut(&Tx<'_>) -> StoreResult<T>) -> StoreResult<T> {
        let mut connection = self.pool().get().map_err(pool_error)?;
        let Connection { client, statements } = &mut *connection;
        let transaction = match access {
            Access::Write => client.build_transaction().isolation_level(IsolationLevel::ReadCommitted),
            Access::Read => client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true),
        }
        .start()
        .map_err(backend)?;
        let tx = Tx {
            tx: RefCell::new(transaction),
            statements: RefCell::new(statements),
            pending: RefCell::default(),
            reports: RefCell::default(),
        };
        if access == Access::Write {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&self.lock_key])?;
        }
        let value = work(&tx)?;
        tx.write_pending()?;
        tx.tx.into_inner().commit().map_err(backend)?;
        Ok(value)
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if self.drop_schema {
            let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", quote_identifier(&self.schema));
            let dropped = off_the_runtime(|| -> StoreResult<()> {
                let mut connection = self.pool().get().map_err(pool_error)?;
                connection.client.batch_execute(&sql).map_err(backend)
            });
            if let Err(error) = dropped {
                tracing::warn!(%error, schema = %self.schema, "a test schema was left behind");
            }
        }
        let pool = self.pool.take();
        off_the_runtime(move || drop(pool));
    }
}

/// An open transaction with the store's helpers. The transaction and the connection's
/// prepared statements sit in cells so the helpers can take `&self`, as the SQLite store's
/// do, and call one another.
struct Tx<'a> {
    tx: RefCell<pg::Transaction<'a>>,
    statements: RefCell<&'a mut BTreeMap<String, Statement>>,
    /// Sums this transaction owes the database — `meta` counters, campaign counters,
    /// ledger deltas, journal entries — written by [`Tx::write_pending`] before anything
    /// reads those rows back and before the commit: one statement each per transaction
    /// instead of three round trips more per status change.
    pending: RefCell<Pending>,
    /// While a webhook's reports are applied ([`Tx::apply_reports`]), what they have
    /// written so far.
    reports: RefCell<Option<ReportBatch>>,
}

/// What a batch of delivery reports has changed, kept in memory until the batch ends: a
/// report's row is written with the others in one statement, not in one round trip each.
#[derive(Default)]
struct ReportBatch {
    /// The messages the batch's reports name by provider id, looked up together before
    /// the first is applied.
    ahead: BTreeMap<(TrafficAccountId, String), Option<Message>>,
    /// The rows the batch has moved, newer than the database's copies until written.
    unsaved: BTreeMap<MessageId, Message>,
    /// The provider ids the batch gave to messages: a later report for one of them is
    /// looked up again, since the lookup made before the batch could not see it.
    given: BTreeSet<(TrafficAccountId, String)>,
}

impl Tx<'_> {
    /// `sql` prepared on this connection, once per connection.
    fn statement(&self, sql: &str) -> StoreResult<Statement> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.tx.borrow_mut().prepare(sql).map_err(backend)?;
        self.statements.borrow_mut().insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    fn query(&self, sql: &str, parameters: &[&(dyn ToSql + Sync)]) -> StoreResult<Vec<Row>> {
        let statement = self.statement(sql)?;
        self.tx.borrow_mut().query(&statement, parameters).map_err(backend)
    }

    fn execute(&self, sql: &str, parameters: &[&(dyn ToSql + Sync)]) -> StoreResult<u64> {
        let statement = self.statement(sql)?;
        self.tx.borrow_mut().execute(&statement, parameters).map_err(backend)
    }
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> StoreError {
    StoreError::Invalid { field: field.into(), message: message.into() }
}

fn json_error(error: serde_json::Error) -> StoreError {
    StoreError::Backend(format!("stored JSON unreadable: {error}"))
}

fn unreadable(what: &str, text: &str) -> StoreError {
    StoreError::Backend(format!("unknown {what} `{text}` in the database"))
}

/// A `u64` as PostgreSQL's BIGINT (ids, times and tokens stay far below 2⁶³).
fn big(value: u64) -> i64 {
    value as i64
}

const MESSAGE_COLUMNS: &str = "campaign_id, contact_id, tenant_id, traffic_account_id, destination, sender, body, encoding, segments, \
     cost, status, attempts, next_attempt_at, lease_worker, lease_expires_at, lease_token, provider_message_id, bulk_id, \
     error_code, error_retryable, error_detail, created_at, updated_at";

/// [`MESSAGE_COLUMNS`] as columns of the table aliased `m`, for statements that join
/// messages to other rows; a row of such a statement holds the message's columns first,
/// so [`message_from_row`] reads it, and what the join adds after them, from index
/// [`MESSAGE_COLUMN_COUNT`] on.
fn joined_message_columns() -> String {
    MESSAGE_COLUMNS.split(", ").map(|column| format!("m.{column}")).collect::<Vec<_>>().join(", ")
}

/// How many columns [`MESSAGE_COLUMNS`] names (counted once, at compile time).
const MESSAGE_COLUMN_COUNT: usize = {
    let bytes = MESSAGE_COLUMNS.as_bytes();
    let (mut count, mut at) = (1, 0);
    while at < bytes.len() {
        if bytes[at] == b',' {
            count += 1;
        }
        at += 1;
    }
    count
};

const CAMPAIGN_COLUMNS: &str = "id, tenant_id, name, body_template, sender, audience, traffic_account_id, status, pause_reason, \
     schedule_at, n_queued, n_submitting, n_accepted, n_delivered, n_undelivered, n_expired, n_rejected, n_failed, n_unknown, \
     n_skipped, n_cancelled, created_at, enqueued_at, completed_at";

const TENANT_COLUMNS: &str = "id, name, api_key_hash, balance, reserved, charged, funded, rate_limit_per_s";

const ACCOUNT_COLUMNS: &str = "id, owner, name, provider, base_url, credentials, sender, rate_limit_per_s, price_per_segment, idempotent_submissions";

fn encoding_text(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Gsm7 => "gsm7",
        Encoding::Ucs2 => "ucs2",
    }
}

fn u64_at(row: &Row, index: usize) -> u64 {
    row.get::<_, i64>(index) as u64
}

fn u32_at(row: &Row, index: usize) -> u32 {
    row.get::<_, i64>(index) as u32
}

fn time_at(row: &Row, index: usize) -> Option<Timestamp> {
    row.get::<_, Option<i64>>(index).map(|at| Timestamp(at as u64))
}

fn message_from_row(row: &Row) -> StoreResult<Message> {
    let status: &str = row.get(10);
    let encoding: &str = row.get(7);
    let lease = match (row.get::<_, Option<String>>(13), time_at(row, 14), row.get::<_, Option<i64>>(15)) {
        (Some(worker), Some(expires_at), Some(token)) => Some(Lease { worker, expires_at, token: token as u64 }),
        _ => None,
    };
    let last_error = row.get::<_, Option<String>>(18).map(|code| MessageError {
        code,
        retryable: row.get::<_, Option<bool>>(19).unwrap_or(false),
        detail: row.get::<_, Option<String>>(20).unwrap_or_default(),
    });
    Ok(Message {
        id: MessageId::new(CampaignId(u64_at(row, 0)), ContactId(u64_at(row, 1))),
        tenant: TenantId(u64_at(row, 2)),
        traffic_account: TrafficAccountId(u64_at(row, 3)),
        destination: row.get(4),
        sender: row.get(5),
        body: row.get(6),
        encoding: match encoding {
            "gsm7" => Encoding::Gsm7,
            "ucs2" => Encoding::Ucs2,
            other => return Err(unreadable("encoding", other)),
        },
        segments: u32_at(row, 8),
        cost: Credits(row.get(9)),
        status: MessageStatus::parse(status).ok_or_else(|| unreadable("message status", status))?,
        attempts: u32_at(row, 11),
        next_attempt_at: Timestamp(u64_at(row, 12)),
        lease,
        provider_message_id: row.get(16),
        bulk_id: row.get(17),
        last_error,
        created_at: Timestamp(u64_at(row, 21)),
        updated_at: Timestamp(u64_at(row, 22)),
    })
}

fn campaign_from_row(row: &Row) -> StoreResult<Campaign> {
    let status: &str = row.get(7);
    let pause_reason: Option<&str> = row.get(8);
    Ok(Campaign {
        id: CampaignId(u64_at(row, 0)),
        tenant: TenantId(u64_at(row, 1)),
        name: row.get(2),
        body_template: row.get(3),
        sender: row.get(4),
        audience: serde_json::from_str(row.get(5)).map_err(json_error)?,
        traffic_account: TrafficAccountId(u64_at(row, 6)),
        status: CampaignStatus::parse(status).ok_or_else(|| unreadable("campaign status", status))?,
        pause_reason: pause_reason.map(serde_json::from_str).transpose().map_err(json_error)?,
        schedule_at: time_at(row, 9),
        counts: StatusCounts {
            queued: u32_at(row, 10),
            submitting: u32_at(row, 11),
            accepted: u32_at(row, 12),
            delivered: u32_at(row, 13),
            undelivered: u32_at(row, 14),
            expired: u32_at(row, 15),
            rejected: u32_at(row, 16),
            failed: u32_at(row, 17),
            unknown: u32_at(row, 18),
            skipped: u32_at(row, 19),
            cancelled: u32_at(row, 20),
        },
        created_at: Timestamp(u64_at(row, 21)),
        enqueued_at: time_at(row, 22),
        completed_at: time_at(row, 23),
    })
}

fn tenant_from_row(row: &Row) -> StoreResult<Tenant> {
    Ok(Tenant {
        id: TenantId(u64_at(row, 0)),
        name: row.get(1),
        api_key_hash: row.get(2),
        balance: Credits(row.get(3)),
        reserved: Credits(row.get(4)),
        charged: Credits(row.get(5)),
        funded: Credits(row.get(6)),
        rate_limit_per_s: row.get::<_, Option<i64>>(7).map(|rate| rate as u32),
    })
}

fn account_from_row(row: &Row) -> StoreResult<TrafficAccount> {
    let provider: &str = row.get(3);
    Ok(TrafficAccount {
        id: TrafficAccountId(u64_at(row, 0)),
        owner: row.get::<_, Option<i64>>(1).map(|owner| TenantId(owner as u64)),
        name: row.get(2),
        provider: ProviderKind::parse(provider).ok_or_else(|| unreadable("provider", provider))?,
        base_url: row.get(4),
        credentials: serde_json::from_str(row.get(5)).map_err(json_error)?,
        sender: row.get(6),
        rate_limit_per_s: row.get::<_, Option<i64>>(7).map(|rate| rate as u32),
        price_per_segment: Credits(row.get(8)),
        idempotent_submissions: row.get(9),
    })
}

fn contact_from_row(row: &Row) -> StoreResult<Contact> {
    Ok(Contact {
        id: ContactId(u64_at(row, 0)),
        tenant: TenantId(u64_at(row, 1)),
        phone: row.get(2),
        attributes: serde_json::from_str(row.get(3)).map_err(json_error)?,
        opted_out: row.get(4),
    })
}

/// Rows of one page of a claim's walk through the due queue.
const WALK_PAGE: i64 = 256;

/// Most messages one `INSERT` of an enqueue carries.
const INSERT_ROWS: usize = 1_000;

/// The key and the state columns ([`Tx::save_states`]) of a batch of messages, one array
/// per column, in the batch's order.
struct StateColumns<'m> {
    campaigns: Vec<i64>,
    contacts: Vec<i64>,
    statuses: Vec<&'static str>,
    attempts: Vec<i64>,
    due: Vec<i64>,
    workers: Vec<Option<&'m str>>,
    expiries: Vec<Option<i64>>,
    tokens: Vec<Option<i64>>,
    codes: Vec<Option<&'m str>>,
    retryable: Vec<Option<bool>>,
    details: Vec<Option<&'m str>>,
    updated: Vec<i64>,
}

impl<'m> StateColumns<'m> {
    fn of(messages: &[&'m Message]) -> StateColumns<'m> {
        let lease = |message: &&'m Message| message.lease.as_ref();
        let error = |message: &&'m Message| message.last_error.as_ref();
        StateColumns {
            campaigns: messages.iter().map(|message| big(message.id.campaign.0)).collect(),
            contacts: messages.iter().map(|message| big(message.id.contact.0)).collect(),
            statuses: messages.iter().map(|message| message.status.as_str()).collect(),
            attempts: messages.iter().map(|message| i64::from(message.attempts)).collect(),
            due: messages.iter().map(|message| big(message.next_attempt_at.0)).collect(),
            workers: messages.iter().map(|message| lease(message).map(|lease| lease.worker.as_str())).collect(),
            expiries: messages.iter().map(|message| lease(message).map(|lease| big(lease.expires_at.0))).collect(),
            tokens: messages.iter().map(|message| lease(message).map(|lease| big(lease.token))).collect(),
            codes: messages.iter().map(|message| error(message).map(|error| error.code.as_str())).collect(),
            retryable: messages.iter().map(|message| error(message).map(|error| error.retryable)).collect(),
            details: messages.iter().map(|message| error(message).map(|error| error.detail.as_str())).collect(),
            updated: messages.iter().map(|message| big(message.updated_at.0)).collect(),
        }
    }

    /// The arrays as statement parameters `$1` to `$12`.
    fn parameters(&self) -> Vec<&(dyn ToSql + Sync)> {
        vec![
            &self.campaigns,
            &self.contacts,
            &self.statuses,
            &self.attempts,
            &self.due,
            &self.workers,
            &self.expiries,
            &self.tokens,
            &self.codes,
            &self.retryable,
            &self.details,
            &self.updated,
        ]
    }
}

impl Tx<'_> {
    // --- reads --------------------------------------------------------------------------------

    fn rows<T>(
        &self,
        sql: &str,
        parameters: &[&(dyn ToSql + Sync)],
        read: fn(&Row) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        self.query(sql, parameters)?.iter().map(read).collect()
    }

    /// The messages matching `condition` (an SQL tail: WHERE clause and order).
    fn messages_where(&self, condition: &str, parameters: &[&(dyn ToSql + Sync)]) -> StoreResult<Vec<Message>> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE {condition}");
        self.rows(&sql, parameters, message_from_row)
    }

    fn count(&self, sql: &str, parameters: &[&(dyn ToSql + Sync)]) -> StoreResult<u32> {
        Ok(self.query(sql, parameters)?.first().map_or(0, |row| u32_at(row, 0)))
    }

    // --- writes -------------------------------------------------------------------------------

    /// The id the next row of `table` gets: the largest plus one, as SQLite gives out
    /// rowids (safe under the writer lock).
    fn next_id(&self, table: &str) -> StoreResult<i64> {
        let sql = format!("SELECT COALESCE(MAX(id), 0) + 1 FROM {table}");
        Ok(self.query(&sql, &[])?[0].get(0))
    }

    // --- acceptance and reports --------------------------------------------------------------

    /// The open report batch's copy of message `id`, if the batch moved it.
    fn batch_row(&self, id: MessageId) -> Option<Message> {
        self.reports.borrow().as_ref().and_then(|batch| batch.unsaved.get(&id).cloned())
    }

    /// The message `report`'s provider id names, read from the database: the one given
    /// that id last.
    fn read_message_for_report(&self, report: &InboundReport) -> StoreResult<Option<Message>> {
        Ok(self
            .messages_where(
                "traffic_account_id = $1 AND provider_message_id = $2 \
                 ORDER BY provider_id_assigned DESC NULLS LAST LIMIT 1",
                &[&big(report.traffic_account.0), &report.provider_message_id],
            )?
            .pop())
    }

    /// [`Tx::read_message_for_report`] for each of `reports`, with one statement.
    fn read_messages_for_reports(&self, reports: &[InboundReport]) -> StoreResult<Vec<Option<Message>>> {
        if let [report] = reports {
            return Ok(vec![self.read_message_for_report(report)?]);
        }
        let accounts: Vec<i64> = reports.iter().map(|report| big(report.traffic_account.0)).collect();
        let provider_ids: Vec<&str> = reports.iter().map(|report| report.provider_message_id.as_str()).collect();
        static LOOKUP_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "SELECT DISTINCT ON (r.n) {}, r.n FROM UNNEST($1::BIGINT[], $2::TEXT[]) WITH ORDINALITY \
                 AS r (account, provider_id, n) \
                 JOIN messages m ON m.traffic_account_id = r.account AND m.provider_message_id = r.provider_id \
                 ORDER BY r.n, m.provider_id_assigned DESC NULLS LAST",
                joined_message_columns()
            )
        });
        let mut found = vec![None; reports.len()];
        for row in self.query(&LOOKUP_SQL, &[&accounts, &provider_ids])? {
            let n: i64 = row.get(MESSAGE_COLUMN_COUNT);
            found[usize::try_from(n - 1).expect("ordinals start at 1")] = Some(message_from_row(&row)?);
        }
        Ok(found)
    }

    // --- claims -------------------------------------------------------------------------------

    /// Queued messages of sending campaigns (of `tenant`, if given), and how many of them
    /// are due at `now`.
    fn queued_and_due(&self, tenant: Option<TenantId>, now: Timestamp) -> StoreResult<(u32, u32)> {
        let rows = self.query(QUEUED_AND_DUE_SQL, &[&big(now.0), &tenant.map(|tenant| big(tenant.0))])?;
        Ok((u32_at(&rows[0], 0), u32_at(&rows[0], 1)))
    }

    // --- rate limits --------------------------------------------------------------------------
}

impl Backend for Tx<'_> {
    fn expired_leases(&self, now: Timestamp) -> StoreResult<Vec<Message>> {
        self.messages_where(EXPIRED_LEASES, &[&big(now.0)])
    }

    fn contact_by_phone(&self, tenant: TenantId, phone: &str) -> StoreResult<Option<ContactRow>> {
        let rows = self.query(
            "SELECT id, attributes, opted_out FROM contacts WHERE tenant_id = $1 AND phone = $2",
            &[&big(tenant.0), &phone],
        )?;
        rows.first()
            .map(|row| {
                let attributes: BTreeMap<String, String> = serde_json::from_str(row.get(1)).map_err(json_error)?;
                Ok((ContactId(u64_at(row, 0)), attributes, row.get(2)))
            })
            .transpose()
    }

    fn update_contact(&self, id: ContactId, row: &NewContact) -> StoreResult<()> {
        let (attributes, opted_out) = (engine::attributes_json(&row.attributes)?, row.opted_out);
        self.execute(
            "UPDATE contacts SET attributes = $1, opted_out = $2 WHERE id = $3",
            &[&attributes, &opted_out, &big(id.0)],
        )?;
        Ok(())
    }

    fn insert_contact(&self, tenant: TenantId, phone: &str, row: &NewContact) -> StoreResult<()> {
        let (attributes, opted_out) = (engine::attributes_json(&row.attributes)?, row.opted_out);
        let id = self.next_id("contacts")?;
        self.execute(
            "INSERT INTO contacts (id, tenant_id, phone, attributes, opted_out) VALUES ($1, $2, $3, $4, $5)",
            &[&id, &big(tenant.0), &phone, &attributes, &opted_out],
        )?;
        Ok(())
    }

    fn scheduled_due(&self, now: Timestamp) -> StoreResult<Vec<Campaign>> {
        self.write_pending()?;
        let sql = format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE status = 'scheduled' \
             AND (schedule_at IS NULL OR schedule_at <= $1) ORDER BY id"
        );
        self.rows(&sql, &[&big(now.0)], campaign_from_row)
    }

    fn messages_in(&self, id: CampaignId, status: MessageStatus) -> StoreResult<Vec<Message>> {
        self.messages_where("campaign_id = $1 AND status = $2 ORDER BY contact_id", &[&big(id.0), &status.as_str()])
    }

    fn stale_unknowns(&self, cutoff: Timestamp) -> StoreResult<Vec<Message>> {
        self.messages_where(
            "status = 'unknown' AND updated_at <= $1 ORDER BY campaign_id, contact_id",
            &[&big(cutoff.0)],
        )
    }

    fn tenant(&self, id: TenantId) -> StoreResult<Tenant> {
        self.write_pending()?;
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1");
        self.rows(&sql, &[&big(id.0)], tenant_from_row)?.pop().ok_or_else(|| not_found("tenant", id))
    }
    fn message(&self, id: MessageId) -> StoreResult<Option<Message>> {
        if let Some(row) = self.batch_row(id) {
            return Ok(Some(row));
        }
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE campaign_id = $1 AND contact_id = $2");
        Ok(self.rows(&sql, &[&big(id.campaign.0), &big(id.contact.0)], message_from_row)?.pop())
    }
    /// Looks the reports' messages up with one statement, and holds the rows they move
    /// until [`Backend::end_reports`] writes them with one more: a webhook's reports cost a
    /// few round trips however many they are.
    fn begin_reports(&self, reports: &[InboundReport]) -> StoreResult<()> {
        let looked_up = self.read_messages_for_reports(reports)?;
        let ahead = reports
            .iter()
            .map(|report| (report.traffic_account, report.provider_message_id.clone()))
            .zip(looked_up)
            .collect();
        *self.reports.borrow_mut() = Some(ReportBatch { ahead, ..ReportBatch::default() });
        Ok(())
    }
    fn end_reports(&self) -> StoreResult<()> {
        let batch = self.reports.borrow_mut().take().expect("the batch is open");
        match batch.unsaved.len() {
            0 => Ok(()),
            1 => self.save_state(batch.unsaved.values().next().expect("one row")),
            _ => self.save_states(&batch.unsaved.values().collect::<Vec<_>>()),
        }
    }
    /// From the batch's lookup, unless the batch gave the id since (the lookup could not
    /// see that); the batch's copy of the row if it moved it.
    fn message_for_report(&self, report: &InboundReport) -> StoreResult<Option<Message>> {
        let key = (report.traffic_account, report.provider_message_id.clone());
        let ahead = match self.reports.borrow().as_ref() {
            Some(batch) if !batch.given.contains(&key) => batch.ahead.get(&key).cloned(),
            _ => None,
        };
        let found = match ahead {
            Some(found) => found,
            None => self.read_message_for_report(report)?,
        };
        Ok(found.map(|message| self.batch_row(message.id).unwrap_or(message)))
    }
    fn extend_leases(&self, token: u64, expires_at: Timestamp) -> StoreResult<u32> {
        let renewed = self.execute(
            "UPDATE messages SET lease_expires_at = $1 WHERE status = 'submitting' AND lease_token = $2",
            &[&big(expires_at.0), &big(token)],
        )?;
        Ok(renewed as u32)
    }
    fn park(&self, report: InboundReport, now: Timestamp) -> StoreResult<ReportOutcome> {
        self.pending.borrow_mut().set_parked(report.traffic_account, true);
        let seq = self.next_meta("parked_seq")?;
        let text = serde_json::to_string(&report).map_err(json_error)?;
        self.execute(
            "INSERT INTO parked_reports (seq, traffic_account_id, provider_message_id, report, received_at) \
             VALUES ($1, $2, $3, $4, $5)",
            &[&big(seq), &big(report.traffic_account.0), &report.provider_message_id, &text, &big(now.0)],
        )?;
        Ok(ReportOutcome::Parked)
    }
    fn contacts_after(&self, tenant: TenantId, after: Option<ContactId>, limit: u32) -> StoreResult<Vec<Contact>> {
        self.rows(
            "SELECT id, tenant_id, phone, attributes, opted_out FROM contacts \
             WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            &[&big(tenant.0), &after.map_or(-1, |id| big(id.0)), &i64::from(limit)],
            contact_from_row,
        )
    }
    /// Writes what [`Pending`] holds: the journal entries as one row, the `meta` counters
    /// advanced, the campaign counter shifts and the ledger deltas (in id order, each
    /// tenant's net change checked by the table's constraints).
    fn write_pending(&self) -> StoreResult<()> {
        let (journal, writes) = {
            let mut pending = self.pending.borrow_mut();
            (pending.take_journal(), pending.take_writes())
        };
        if let Some((first_seq, lines)) = journal_lines::encode(&journal) {
            self.execute("INSERT INTO journal (first_seq, entries) VALUES ($1, $2)", &[&big(first_seq), &lines])?;
        }
        for (key, value) in writes.meta {
            self.execute("UPDATE meta SET value = $2 WHERE key = $1", &[&key, &big(value)])?;
        }
        for ((campaign, status), shift) in writes.counters {
            let column = engine::counter_column(status);
            let sql = format!("UPDATE campaigns SET {column} = {column} + $1 WHERE id = $2");
            self.execute(&sql, &[&shift, &big(campaign.0)])?;
        }
        for (tenant, delta) in writes.ledger {
            self.execute(
                "UPDATE tenants SET balance = balance + $1, reserved = reserved + $2, charged = charged + $3 WHERE id = $4",
                &[&delta.balance.0, &delta.reserved.0, &delta.charged.0, &big(tenant.0)],
            )?;
        }
        Ok(())
    }
    /// Inserts new `messages` (never leased, never given a provider id), with one
    /// statement per [`INSERT_ROWS`] messages.
    fn insert_messages(&self, messages: &[Message]) -> StoreResult<()> {
        for chunk in messages.chunks(INSERT_ROWS) {
            let column = |value: fn(&Message) -> i64| chunk.iter().map(value).collect::<Vec<i64>>();
            let text = |value: fn(&Message) -> &str| chunk.iter().map(value).collect::<Vec<&str>>();
            let (campaigns, contacts) = (column(|m| big(m.id.campaign.0)), column(|m| big(m.id.contact.0)));
            let (tenants, accounts) = (column(|m| big(m.tenant.0)), column(|m| big(m.traffic_account.0)));
            let (destinations, senders, bodies) = (text(|m| &m.destination), text(|m| &m.sender), text(|m| &m.body));
            let encodings = text(|m| encoding_text(m.encoding));
            let (segments, costs) = (column(|m| i64::from(m.segments)), column(|m| m.cost.0));
            let statuses = text(|m| m.status.as_str());
            let (attempts, due) = (column(|m| i64::from(m.attempts)), column(|m| big(m.next_attempt_at.0)));
            let error = |value: fn(&MessageError) -> Option<&str>| {
                chunk.iter().map(|m| m.last_error.as_ref().and_then(value)).collect::<Vec<Option<&str>>>()
            };
            let (codes, details) = (error(|e| Some(e.code.as_str())), error(|e| Some(e.detail.as_str())));
            let retryable: Vec<Option<bool>> =
                chunk.iter().map(|m| m.last_error.as_ref().map(|error| error.retryable)).collect();
            let (created, updated) = (column(|m| big(m.created_at.0)), column(|m| big(m.updated_at.0)));
            self.execute(
                "INSERT INTO messages (campaign_id, contact_id, tenant_id, traffic_account_id, destination, sender, body, \
                 encoding, segments, cost, status, attempts, next_attempt_at, error_code, error_retryable, error_detail, \
                 created_at, updated_at) \
                 SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::BIGINT[], $5::TEXT[], $6::TEXT[], \
                 $7::TEXT[], $8::TEXT[], $9::BIGINT[], $10::BIGINT[], $11::TEXT[], $12::BIGINT[], $13::BIGINT[], \
                 $14::TEXT[], $15::BOOLEAN[], $16::TEXT[], $17::BIGINT[], $18::BIGINT[])",
                &[
                    &campaigns,
                    &contacts,
                    &tenants,
                    &accounts,
                    &destinations,
                    &senders,
                    &bodies,
                    &encodings,
                    &segments,
                    &costs,
                    &statuses,
                    &attempts,
                    &due,
                    &codes,
                    &retryable,
                    &details,
                    &created,
                    &updated,
                ],
            )?;
        }
        Ok(())
    }
    fn stored_receipt(&self, tenant: TenantId, key: &str) -> StoreResult<Option<(String, EnqueueReceipt)>> {
        let rows = self.query(
            "SELECT request_hash, receipt FROM idempotency_keys WHERE tenant_id = $1 AND key = $2",
            &[&big(tenant.0), &key],
        )?;
        rows.first().map(|row| Ok((row.get(0), serde_json::from_str(row.get(1)).map_err(json_error)?))).transpose()
    }
    fn store_receipt(&self, tenant: TenantId, key: &IdempotencyKey, receipt: &EnqueueReceipt) -> StoreResult<()> {
        let text = serde_json::to_string(receipt).map_err(json_error)?;
        self.execute(
            "INSERT INTO idempotency_keys (tenant_id, key, request_hash, receipt) VALUES ($1, $2, $3, $4)",
            &[&big(tenant.0), &key.key, &key.request_hash, &text],
        )?;
        Ok(())
    }
    fn write_enqueued(&self, id: CampaignId, counts: StatusCounts, now: Timestamp) -> StoreResult<()> {
        self.execute(
            "UPDATE campaigns SET n_queued = $1, n_skipped = $2, enqueued_at = $3 WHERE id = $4",
            &[&i64::from(counts.queued), &i64::from(counts.skipped), &big(now.0), &big(id.0)],
        )?;
        Ok(())
    }
    fn write_pause_reason(&self, id: CampaignId, reason: Option<&PauseReason>) -> StoreResult<()> {
        let text = reason.map(serde_json::to_string).transpose().map_err(json_error)?;
        self.execute("UPDATE campaigns SET pause_reason = $1 WHERE id = $2", &[&text, &big(id.0)])?;
        Ok(())
    }
    fn contact_owner(&self, id: ContactId) -> StoreResult<Option<TenantId>> {
        let rows = self.query("SELECT tenant_id FROM contacts WHERE id = $1", &[&big(id.0)])?;
        Ok(rows.first().map(|row| TenantId(u64_at(row, 0))))
    }
    fn write_campaign_fields(&self, campaign: &Campaign) -> StoreResult<()> {
        let audience = serde_json::to_string(&campaign.audience).map_err(json_error)?;
        self.execute(
            "UPDATE campaigns SET name = $1, body_template = $2, sender = $3, audience = $4, traffic_account_id = $5, \
             schedule_at = $6 WHERE id = $7",
            &[
                &campaign.name,
                &campaign.body_template,
                &campaign.sender,
                &audience,
                &big(campaign.traffic_account.0),
                &campaign.schedule_at.map(|at| big(at.0)),
                &big(campaign.id.0),
            ],
        )?;
        Ok(())
    }

    /// The due time and account of the oldest queued message of a sending campaign, of
    /// `account` if one is given; ties go to the smaller message id. The queue is indexed
    /// by account only, so this is the earliest of each sending campaign's account's first
    /// (a short list of accounts, each a walk along its index that stops at once).
    fn first_due(&self, account: Option<TrafficAccountId>) -> StoreResult<Option<(Timestamp, TrafficAccountId)>> {
        let rows = self.query(FIRST_DUE_SQL, &[&account.map(|account| big(account.0))])?;
        Ok(rows.first().map(|row| (Timestamp(u64_at(row, 0)), TrafficAccountId(u64_at(row, 1)))))
    }

    fn account(&self, id: TrafficAccountId) -> StoreResult<TrafficAccount> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM traffic_accounts WHERE id = $1");
        self.rows(&sql, &[&big(id.0)], account_from_row)?.pop().ok_or_else(|| not_found("traffic account", id))
    }

    /// The queue read a page of [`WALK_PAGE`] rows at a time, each page after the last row
    /// read, only as far as the walk goes.
    fn visit_due(&self, account: TrafficAccountId, now: Timestamp, visit: DueVisit<'_>) -> StoreResult<()> {
        static WALK_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "SELECT {}, t.rate_limit_per_s \
                 FROM messages m JOIN campaigns c ON c.id = m.campaign_id JOIN tenants t ON t.id = m.tenant_id \
                 WHERE m.status = 'queued' AND m.traffic_account_id = $1 AND m.next_attempt_at <= $2 \
                 AND c.status = 'sending' AND (m.next_attempt_at, m.campaign_id, m.contact_id) > ($3, $4, $5) \
                 ORDER BY m.next_attempt_at, m.campaign_id, m.contact_id LIMIT $6",
                joined_message_columns()
            )
        });
        // The position after the last row read: (due time, campaign, contact).
        let mut after = (i64::MIN, i64::MIN, i64::MIN);
        loop {
            let page =
                self.query(&WALK_SQL, &[&big(account.0), &big(now.0), &after.0, &after.1, &after.2, &WALK_PAGE])?;
            for row in &page {
                let message = message_from_row(row)?;
                after = (big(message.next_attempt_at.0), big(message.id.campaign.0), big(message.id.contact.0));
                let tenant_rate = row.get::<_, Option<i64>>(MESSAGE_COLUMN_COUNT).map(|rate| rate as u32);
                if !visit(message, tenant_rate)? {
                    return Ok(());
                }
            }
            if (page.len() as i64) < WALK_PAGE {
                return Ok(());
            }
        }
    }
    fn stored_bucket(&self, kind: &str, id: u64) -> StoreResult<Option<TokenBucket>> {
        let rows = self.query(
            "SELECT milli_tokens, updated_at FROM rate_buckets WHERE kind = $1 AND id = $2",
            &[&kind, &big(id)],
        )?;
        Ok(rows.first().map(|row| TokenBucket { milli_tokens: u64_at(row, 0), updated_at: Timestamp(u64_at(row, 1)) }))
    }

    fn save_bucket(&self, kind: &str, id: u64, bucket: TokenBucket) -> StoreResult<()> {
        self.execute(
            "INSERT INTO rate_buckets (kind, id, milli_tokens, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (kind, id) DO UPDATE SET milli_tokens = $3, updated_at = $4",
            &[&kind, &big(id), &big(bucket.milli_tokens), &big(bucket.updated_at.0)],
        )?;
        Ok(())
    }

    fn save_claimed(&self, messages: &[Message]) -> StoreResult<()> {
        self.save_states(&messages.iter().collect::<Vec<_>>())
    }

    /// Writes the parts of `message` that change with its status: a plain `UPDATE` by
    /// primary key, cheaper for the server to plan than [`Tx::save_states`]' join. In a
    /// batch of reports the row waits for the batch's end, with the others.
    fn save_state(&self, message: &Message) -> StoreResult<()> {
        if let Some(batch) = self.reports.borrow_mut().as_mut() {
            batch.unsaved.insert(message.id, message.clone());
            return Ok(());
        }
        let (worker, expires_at, token) = match &message.lease {
            Some(lease) => (Some(lease.worker.as_str()), Some(big(lease.expires_at.0)), Some(big(lease.token))),
            None => (None, None, None),
        };
        let error = message.last_error.as_ref();
        self.execute(
            "UPDATE messages SET status = $1, attempts = $2, next_attempt_at = $3, lease_worker = $4, lease_expires_at = $5, \
             lease_token = $6, error_code = $7, error_retryable = $8, error_detail = $9, updated_at = $10 \
             WHERE campaign_id = $11 AND contact_id = $12",
            &[
                &message.status.as_str(),
                &i64::from(message.attempts),
                &big(message.next_attempt_at.0),
                &worker,
                &expires_at,
                &token,
                &error.map(|error| error.code.as_str()),
                &error.map(|error| error.retryable),
                &error.map(|error| error.detail.as_str()),
                &big(message.updated_at.0),
                &big(message.id.campaign.0),
                &big(message.id.contact.0),
            ],
        )?;
        Ok(())
    }

    /// Writes the provider ids `message` was just given, numbered in assignment order: a
    /// report for a provider id goes to the message that was given it last. In a batch of
    /// reports the batch notes the id (a later report for it is looked up afresh) and
    /// keeps the row as it now is.
    fn save_provider_ids(&self, message: &Message) -> StoreResult<()> {
        let assigned = self.next_meta("provider_id_assigned")?;
        if let Some(batch) = self.reports.borrow_mut().as_mut() {
            if let Some(id) = &message.provider_message_id {
                batch.given.insert((message.traffic_account, id.clone()));
            }
            batch.unsaved.insert(message.id, message.clone());
        }
        self.execute(
            "UPDATE messages SET provider_message_id = $1, bulk_id = $2, provider_id_assigned = $3 \
             WHERE campaign_id = $4 AND contact_id = $5",
            &[
                &message.provider_message_id,
                &message.bulk_id,
                &big(assigned),
                &big(message.id.campaign.0),
                &big(message.id.contact.0),
            ],
        )?;
        Ok(())
    }

    fn campaign(&self, id: CampaignId) -> StoreResult<Option<Campaign>> {
        self.write_pending()?;
        let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1");
        Ok(self.rows(&sql, &[&big(id.0)], campaign_from_row)?.pop())
    }

    /// Takes `count` consecutive values of the counter `key`; returns the first. The
    /// counter is read once per transaction and written back by [`Tx::write_pending`].
    fn take_meta(&self, key: &'static str, count: u64) -> StoreResult<u64> {
        self.pending.borrow_mut().take_meta(key, count, || {
            let rows = self.query("SELECT value FROM meta WHERE key = $1", &[&key])?;
            rows.first().map(|row| u64_at(row, 0)).ok_or_else(|| unreadable("meta counter", key))
        })
    }

    fn write_campaign_status(&self, campaign: &Campaign) -> StoreResult<()> {
        self.execute(
            "UPDATE campaigns SET status = $1, completed_at = $2 WHERE id = $3",
            &[&campaign.status.as_str(), &campaign.completed_at.map(|at| big(at.0)), &big(campaign.id.0)],
        )?;
        Ok(())
    }

    fn pending(&self) -> RefMut<'_, Pending> {
        self.pending.borrow_mut()
    }

    fn any_parked_reports(&self, account: TrafficAccountId) -> StoreResult<bool> {
        let rows = self
            .query("SELECT EXISTS (SELECT 1 FROM parked_reports WHERE traffic_account_id = $1)", &[&big(account.0)])?;
        Ok(rows.first().is_some_and(|row| row.get(0)))
    }

    fn parked_reports(&self) -> StoreResult<Vec<(InboundReport, Timestamp)>> {
        let rows = self.query("SELECT report, received_at FROM parked_reports ORDER BY seq", &[])?;
        rows.iter()
            .map(|row| {
                let report = serde_json::from_str(row.get::<_, &str>(0)).map_err(json_error)?;
                Ok((report, Timestamp(u64_at(row, 1))))
            })
            .collect()
    }

    fn delete_parked_received_by(&self, cutoff: Timestamp) -> StoreResult<u64> {
        self.execute("DELETE FROM parked_reports WHERE received_at <= $1", &[&big(cutoff.0)])
    }

    fn take_parked_reports(
        &self,
        account: TrafficAccountId,
        provider_message_id: &str,
    ) -> StoreResult<Vec<InboundReport>> {
        let parked: Vec<(i64, String)> = self
            .query(
                "SELECT seq, report FROM parked_reports WHERE traffic_account_id = $1 AND provider_message_id = $2 \
                 ORDER BY seq",
                &[&big(account.0), &provider_message_id],
            )?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        let mut reports = Vec::with_capacity(parked.len());
        for (seq, text) in &parked {
            self.execute("DELETE FROM parked_reports WHERE seq = $1", &[seq])?;
            reports.push(serde_json::from_str(text).map_err(json_error)?);
        }
        Ok(reports)
    }

    /// The messages `ids` name that exist, read with one statement.
    fn messages_by_id(&self, ids: &[MessageId]) -> StoreResult<BTreeMap<MessageId, Message>> {
        let campaigns: Vec<i64> = ids.iter().map(|id| big(id.campaign.0)).collect();
        let contacts: Vec<i64> = ids.iter().map(|id| big(id.contact.0)).collect();
        let found = self.messages_where(
            "(campaign_id, contact_id) IN (SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[]))",
            &[&campaigns, &contacts],
        )?;
        Ok(found.into_iter().map(|message| (message.id, message)).collect())
    }

    /// Writes the parts of each of `messages` that change with its status, with one
    /// statement: the rows' values go as one array per column (`UNNEST`), so a batch is
    /// one round trip, not one per message.
    fn save_states(&self, messages: &[&Message]) -> StoreResult<()> {
        if messages.is_empty() {
            return Ok(());
        }
        let state = StateColumns::of(messages);
        self.execute(
            "UPDATE messages m SET status = v.status, attempts = v.attempts, next_attempt_at = v.next_attempt_at, \
             lease_worker = v.lease_worker, lease_expires_at = v.lease_expires_at, lease_token = v.lease_token, \
             error_code = v.error_code, error_retryable = v.error_retryable, error_detail = v.error_detail, \
             updated_at = v.updated_at \
             FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[], $6::TEXT[], $7::BIGINT[], \
             $8::BIGINT[], $9::TEXT[], $10::BOOLEAN[], $11::TEXT[], $12::BIGINT[]) \
             AS v (campaign_id, contact_id, status, attempts, next_attempt_at, lease_worker, lease_expires_at, \
             lease_token, error_code, error_retryable, error_detail, updated_at) \
             WHERE m.campaign_id = v.campaign_id AND m.contact_id = v.contact_id",
            &state.parameters(),
        )?;
        Ok(())
    }

    /// Writes each accepted message's state with its provider ids and the number they
    /// were given (a report for a provider id goes to the message that was given it
    /// last), with one statement.
    fn save_acceptances(&self, accepted: &[(&Message, u64)]) -> StoreResult<()> {
        if accepted.is_empty() {
            return Ok(());
        }
        let messages: Vec<&Message> = accepted.iter().map(|(message, _)| *message).collect();
        let state = StateColumns::of(&messages);
        let provider_ids: Vec<Option<&str>> =
            messages.iter().map(|message| message.provider_message_id.as_deref()).collect();
        let bulk_ids: Vec<Option<&str>> = messages.iter().map(|message| message.bulk_id.as_deref()).collect();
        let assigned: Vec<i64> = accepted.iter().map(|(_, assigned)| big(*assigned)).collect();
        let mut parameters = state.parameters();
        parameters.extend([&provider_ids as &(dyn ToSql + Sync), &bulk_ids, &assigned]);
        self.execute(
            "UPDATE messages m SET status = v.status, attempts = v.attempts, next_attempt_at = v.next_attempt_at, \
             lease_worker = v.lease_worker, lease_expires_at = v.lease_expires_at, lease_token = v.lease_token, \
             error_code = v.error_code, error_retryable = v.error_retryable, error_detail = v.error_detail, \
             updated_at = v.updated_at, provider_message_id = v.provider_message_id, bulk_id = v.bulk_id, \
             provider_id_assigned = v.provider_id_assigned \
             FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[], $6::TEXT[], $7::BIGINT[], \
             $8::BIGINT[], $9::TEXT[], $10::BOOLEAN[], $11::TEXT[], $12::BIGINT[], $13::TEXT[], $14::TEXT[], \
             $15::BIGINT[]) \
             AS v (campaign_id, contact_id, status, attempts, next_attempt_at, lease_worker, lease_expires_at, \
             lease_token, error_code, error_retryable, error_detail, updated_at, provider_message_id, bulk_id, \
             provider_id_assigned) \
             WHERE m.campaign_id = v.campaign_id AND m.contact_id = v.contact_id",
            &parameters,
        )?;
        Ok(())
    }
}

impl Store for PostgresStore {
    engine::engine_steps!(write = write, read = read);

    fn create_tenant(&self, new: NewTenant, _now: Timestamp) -> StoreResult<Tenant> {
        new.check()?;
        self.write(|tx| {
            let id = tx.next_id("tenants")?;
            tx.execute(
                "INSERT INTO tenants (id, name, api_key_hash, balance, reserved, charged, funded, rate_limit_per_s) \
                 VALUES ($1, $2, $3, $4, 0, 0, $4, $5)",
                &[&id, &new.name, &new.api_key_hash, &new.credits.0, &new.rate_limit_per_s.map(i64::from)],
            )?;
            tx.tenant(TenantId(id as u64))
        })
    }

    fn tenant(&self, id: TenantId) -> StoreResult<Tenant> {
        self.read(|tx| tx.tenant(id))
    }

    fn tenant_by_api_key_hash(&self, api_key_hash: &str) -> StoreResult<Option<Tenant>> {
        self.read(|tx| {
            let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE api_key_hash = $1 ORDER BY id LIMIT 1");
            Ok(tx.rows(&sql, &[&api_key_hash], tenant_from_row)?.pop())
        })
    }

    fn tenants(&self) -> StoreResult<Vec<Tenant>> {
        self.read(|tx| tx.rows(&format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY id"), &[], tenant_from_row))
    }

    fn change_credits(&self, tenant: TenantId, change: CreditChange, _now: Timestamp) -> StoreResult<Tenant> {
        self.write(|tx| {
            let delta = rules::credit_change(&tx.tenant(tenant)?, change)?;
            tx.execute(
                "UPDATE tenants SET balance = balance + $1, funded = funded + $1 WHERE id = $2",
                &[&delta.0, &big(tenant.0)],
            )?;
            tx.tenant(tenant)
        })
    }

    fn create_traffic_account(&self, new: NewTrafficAccount) -> StoreResult<TrafficAccount> {
        new.check()?;
        let credentials = serde_json::to_string(&new.credentials).map_err(json_error)?;
        self.write(|tx| {
            if let Some(owner) = new.owner {
                tx.tenant(owner)?;
            }
            let id = tx.next_id("traffic_accounts")?;
            tx.execute(
                "INSERT INTO traffic_accounts (id, owner, name, provider, base_url, credentials, sender, rate_limit_per_s, \
                 price_per_segment, idempotent_submissions) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &id,
                    &new.owner.map(|owner| big(owner.0)),
                    &new.name,
                    &new.provider.as_str(),
                    &new.base_url,
                    &credentials,
                    &new.sender,
                    &new.rate_limit_per_s.map(i64::from),
                    &new.price_per_segment.0,
                    &new.idempotent_submissions,
                ],
            )?;
            tx.account(TrafficAccountId(id as u64))
        })
    }

    fn traffic_account(&self, id: TrafficAccountId) -> StoreResult<TrafficAccount> {
        self.read(|tx| tx.account(id))
    }

    fn traffic_accounts(&self) -> StoreResult<Vec<TrafficAccount>> {
        self.read(|tx| {
            tx.rows(&format!("SELECT {ACCOUNT_COLUMNS} FROM traffic_accounts ORDER BY id"), &[], account_from_row)
        })
    }

    fn contacts(&self, tenant: TenantId) -> StoreResult<Vec<Contact>> {
        self.read(|tx| {
            tx.tenant(tenant)?;
            tx.contacts_after(tenant, None, u32::MAX)
        })
    }

    fn create_campaign(&self, tenant: TenantId, new: NewCampaign, now: Timestamp) -> StoreResult<Campaign> {
        let audience = serde_json::to_string(&new.audience).map_err(json_error)?;
        self.write(|tx| {
            tx.tenant(tenant)?;
            tx.check_new_campaign(tenant, &new)?;
            let id = tx.next_id("campaigns")?;
            tx.execute(
                "INSERT INTO campaigns (id, tenant_id, name, body_template, sender, audience, traffic_account_id, status, \
                 schedule_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'draft', $8, $9)",
                &[
                    &id,
                    &big(tenant.0),
                    &new.name,
                    &new.body_template,
                    &new.sender,
                    &audience,
                    &big(new.traffic_account.0),
                    &new.schedule_at.map(|at| big(at.0)),
                    &big(now.0),
                ],
            )?;
            Ok(tx.campaign(CampaignId(id as u64))?.expect("just inserted"))
        })
    }

    fn campaigns(&self, tenant: TenantId) -> StoreResult<Vec<Campaign>> {
        self.read(|tx| {
            tx.tenant(tenant)?;
            let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE tenant_id = $1 ORDER BY id");
            tx.rows(&sql, &[&big(tenant.0)], campaign_from_row)
        })
    }

    fn all_campaigns(&self) -> StoreResult<Vec<Campaign>> {
        self.read(|tx| {
            tx.rows(&format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns ORDER BY id"), &[], campaign_from_row)
        })
    }

    fn failures_by_code(&self, tenant: TenantId, id: CampaignId) -> StoreResult<BTreeMap<String, u32>> {
        self.read(|tx| {
            tx.campaign_of(tenant, id)?;
            let rows = tx.query(
                "SELECT COALESCE(error_code, 'UNKNOWN'), COUNT(*) FROM messages \
                 WHERE campaign_id = $1 AND status = 'failed' GROUP BY 1",
                &[&big(id.0)],
            )?;
            Ok(rows.iter().map(|row| (row.get(0), u32_at(row, 1))).collect())
        })
    }

    fn messages(&self, campaign: CampaignId) -> StoreResult<Vec<Message>> {
        self.read(|tx| {
            tx.campaign(campaign)?.ok_or_else(|| not_found("campaign", campaign))?;
            tx.messages_where("campaign_id = $1 ORDER BY contact_id", &[&big(campaign.0)])
        })
    }

    fn unknown_messages(&self, limit: u32) -> StoreResult<Vec<Message>> {
        self.read(|tx| {
            tx.messages_where(
                "status = 'unknown' ORDER BY updated_at, campaign_id, contact_id LIMIT $1",
                &[&i64::from(limit)],
            )
        })
    }

    fn queue_stats(&self, tenant: Option<TenantId>, now: Timestamp) -> StoreResult<QueueStats> {
        self.read(|tx| {
            if let Some(tenant) = tenant {
                tx.tenant(tenant)?;
            }
            let owner = tenant.map(|tenant| big(tenant.0));
            let (queued, due) = tx.queued_and_due(tenant, now)?;
            Ok(QueueStats {
                queued,
                due,
                submitting: tx.count(SUBMITTING_COUNT_SQL, &[&owner])?,
                unknown: tx.count(UNKNOWN_COUNT_SQL, &[&owner])?,
                parked_reports: tx.count(
                    "SELECT COUNT(*) FROM parked_reports p LEFT JOIN traffic_accounts a ON a.id = p.traffic_account_id \
                     WHERE $1::BIGINT IS NULL OR a.owner = $1",
                    &[&owner],
                )?,
                parked_reports_expired: match tenant {
                    None => {
                        let rows = tx.query("SELECT value FROM meta WHERE key = $1", &[&engine::PARKED_EXPIRED])?;
                        rows.first().map(|row| row.get::<_, i64>(0) as u64)
                    }
                    Some(_) => None,
                },
            })
        })
    }

    fn recount(&self, campaign: CampaignId) -> StoreResult<StatusCounts> {
        self.read(|tx| {
            tx.campaign(campaign)?.ok_or_else(|| not_found("campaign", campaign))?;
            let rows = tx.query(
                "SELECT status, COUNT(*) FROM messages WHERE campaign_id = $1 GROUP BY status",
                &[&big(campaign.0)],
            )?;
            let mut counts = StatusCounts::default();
            for row in &rows {
                let status: &str = row.get(0);
                *counts.get_mut(MessageStatus::parse(status).ok_or_else(|| unreadable("message status", status))?) +=
                    u32_at(row, 1);
            }
            Ok(counts)
        })
    }

    fn ledger_recount(&self, tenant: TenantId) -> StoreResult<LedgerRecount> {
        self.read(|tx| {
            tx.tenant(tenant)?;
            let rows = tx.query(LEDGER_RECOUNT_SQL, &[&big(tenant.0)])?;
            let mut recount = LedgerRecount::default();
            for row in &rows {
                let status: &str = row.get(0);
                let status = MessageStatus::parse(status).ok_or_else(|| unreadable("message status", status))?;
                rules::recount_message(&mut recount, status, row.get(1), Credits(row.get(2)));
            }
            Ok(recount)
        })
    }

    fn take_journal(&self) -> StoreResult<Vec<JournalEntry>> {
        self.write(|tx| {
            let rows = tx.query("DELETE FROM journal RETURNING first_seq, entries", &[])?;
            journal_lines::decode(rows.iter().map(|row| (u64_at(row, 0), row.get::<_, &str>(1))))
        })
    }
}

/// Throwaway stores for tests, on the database named by [`TEST_DATABASE_VARIABLE`].
pub mod testing {
    use super::*;
    use std::io::Write;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// The environment variable naming the database the PostgreSQL tests run on.
    pub const TEST_DATABASE_VARIABLE: &str = "SMSIM_TEST_POSTGRES";

    /// How to get a database for the tests, printed when they are skipped.
    pub const HOW_TO_RUN: &str = "start a throwaway cluster with `source .ci/postgres && postgres_start` (it exports \
         SMSIM_TEST_POSTGRES), or point SMSIM_TEST_POSTGRES at a database you may create schemas in \
         (postgres://user:password@localhost:5432/db); `bash .ci/run` does it all";

    static SCHEMAS: AtomicU32 = AtomicU32::new(0);

    /// The test database's URL. `None` (after saying so on stderr, past the test
    /// harness's capture) when none is configured; under `CI=true` a missing database is
    /// a failure, not a skip.
    pub fn test_database_url(test: &str) -> Option<String> {
        if let Some(url) = std::env::var(TEST_DATABASE_VARIABLE).ok().filter(|url| !url.is_empty()) {
            return Some(url);
        }
        if std::env::var("CI").is_ok_and(|ci| ci == "true") {
            panic!(
                "CI=true but {TEST_DATABASE_VARIABLE} is not set: the PostgreSQL tests must run in CI; {HOW_TO_RUN}"
            );
        }
        // Written to the process's stderr, not through `eprintln!`, which the test harness
        // captures and shows only for a failing test.
        let _ = writeln!(
            std::io::stderr(),
            "\n!!! SKIPPED {test}: no PostgreSQL ({TEST_DATABASE_VARIABLE} is not set). To run it: {HOW_TO_RUN}\n"
        );
        None
    }

    /// A fresh store in a schema of its own (dropped with the store), or `None` when no
    /// test database is configured (see [`test_database_url`]).
    pub fn test_store(test: &str) -> Option<PostgresStore> {
        let url = test_database_url(test)?;
        let mut options = PostgresOptions::new(url);
        options.schema = unique_schema(test);
        options.max_connections = 4;
        let mut store = PostgresStore::open(options).unwrap_or_else(|error| {
            panic!("{TEST_DATABASE_VARIABLE} is set but the test database cannot be used: {error}")
        });
        store.drop_schema = true;
        Some(store)
    }

    /// A schema name no other test of this or another process uses at the same time.
    pub fn unique_schema(test: &str) -> String {
        let n = SCHEMAS.fetch_add(1, Ordering::Relaxed);
        let name: String = test
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
            .take(36)
            .collect();
        format!("t_{name}_{}_{n}", std::process::id())
    }
}

#[cfg(test)]
mod tests {
    use super::testing::test_store;
    use super::*;
    use std::collections::BTreeSet;

    fn reopen(store: &PostgresStore) -> StoreResult<PostgresStore> {
        let url = testing::test_database_url("reopen").expect("the first store had a database");
        let mut options = PostgresOptions::new(url);
        options.schema = store.schema().to_owned();
        options.max_connections = 2;
        PostgresStore::open(options)
    }

    /// A connection the server refuses is logged and reported in the server's words with
    /// its SQLSTATE (the client's own text for it is only "db error"), by the pool too.
    #[test]
    fn a_refused_connection_is_described_in_the_servers_words() {
        let Some(url) = testing::test_database_url("a_refused_connection_is_described") else { return };
        let mut config: pg::Config = url.parse().expect("the test database's URL parses");
        config.dbname("smsim_no_such_database");
        let manager = Manager { config, schema: "public".into() };
        let refused = r2d2::ManageConnection::connect(&manager).err().expect("no such database");
        let text = refused.to_string();
        assert!(text.contains("does not exist") && text.contains("SQLSTATE 3D000"), "{text}");
        let pool = off_the_runtime(|| {
            r2d2::Pool::builder().max_size(1).connection_timeout(Duration::from_millis(300)).build(manager)
        });
        let text = pool.err().expect("the pool cannot connect").to_string();
        assert!(text.contains("SQLSTATE 3D000"), "{text}");
    }

    #[test]
    fn migrations_apply_once_and_concurrent_opens_agree() {
        let Some(store) = test_store("migrations_apply_once") else { return };
        assert_eq!(store.schema_version().expect("version"), MIGRATIONS.len());
        // Three processes starting at once on a migrated schema apply nothing twice.
        let reopened: Vec<usize> = std::thread::scope(|scope| {
            let opens: Vec<_> = (0..3)
                .map(|_| scope.spawn(|| reopen(&store).expect("reopen").schema_version().expect("version")))
                .collect();
            opens.into_iter().map(|open| open.join().expect("open")).collect()
        });
        assert_eq!(reopened, vec![MIGRATIONS.len(); 3]);
    }

    /// Schema 3 keeps no message index that only reads off the hot path used, and each of
    /// those reads still has an index to go by: planned with sequential scans priced out,
    /// none of them scans the messages table.
    #[test]
    fn the_message_reads_off_the_hot_path_have_an_index_to_go_by() {
        let Some(store) = test_store("message_indexes") else { return };
        store
            .transaction(Access::Read, |tx| {
                let indexes: Vec<String> = tx
                    .query(
                        "SELECT indexname::TEXT FROM pg_indexes WHERE schemaname = current_schema() \
                         AND tablename = 'messages' ORDER BY indexname",
                        &[],
                    )?
                    .iter()
                    .map(|row| row.get(0))
                    .collect();
                assert_eq!(
                    indexes,
                    [
                        "messages_by_provider_id",
                        "messages_pkey",
                        "messages_queued_by_account",
                        "messages_submitting_by_token",
                        "messages_unknown"
                    ]
                );
                tx.execute("SET LOCAL enable_seqscan = off", &[])?;
                let expired = format!("SELECT campaign_id FROM messages WHERE {EXPIRED_LEASES}");
                let (none, one, now) = (None::<i64>, Some(1_i64), 0_i64);
                let reads: [(&str, &[&(dyn ToSql + Sync)]); 7] = [
                    (FIRST_DUE_SQL, &[&none]),
                    (FIRST_DUE_SQL, &[&one]),
                    (&expired, &[&now]),
                    (SUBMITTING_COUNT_SQL, &[&one]),
                    (UNKNOWN_COUNT_SQL, &[&none]),
                    (QUEUED_AND_DUE_SQL, &[&now, &one]),
                    (LEDGER_RECOUNT_SQL, &[&now]),
                ];
                for (sql, parameters) in reads {
                    let plan: Vec<String> =
                        tx.query(&format!("EXPLAIN {sql}"), parameters)?.iter().map(|row| row.get(0)).collect();
                    assert!(!plan.iter().any(|step| step.contains("Seq Scan on messages")), "{sql}: {plan:#?}");
                }
                Ok(())
            })
            .expect("the plans");
    }

    #[test]
    fn version_2_carries_the_json_journal_over_into_lines() {
        let Some(store) = test_store("journal_lines_migration") else { return };
        let entries = journal_lines::sample_entries();
        // Back to version 1's journal table, holding entries as version 1 wrote them.
        store
            .transaction(Access::Write, |tx| {
                tx.execute("DROP TABLE journal", &[])?;
                tx.execute("CREATE TABLE journal (seq BIGINT PRIMARY KEY, entry TEXT NOT NULL)", &[])?;
                for entry in &entries {
                    let text = serde_json::to_string(entry).map_err(json_error)?;
                    tx.execute("INSERT INTO journal (seq, entry) VALUES ($1, $2)", &[&big(entry.seq()), &text])?;
                }
                tx.execute("UPDATE schema_version SET version = 1", &[])
            })
            .expect("a version 1 journal");
        let reopened = reopen(&store).expect("open and migrate");
        assert_eq!(reopened.schema_version().expect("version"), MIGRATIONS.len());
        assert_eq!(reopened.take_journal().expect("the carried journal"), entries);
    }

    #[test]
    fn a_schema_newer_than_the_build_is_refused() {
        let Some(store) = test_store("newer_schema_refused") else { return };
        store
            .transaction(Access::Write, |tx| tx.execute("UPDATE schema_version SET version = 99", &[]))
            .expect("set version");
        let refused = reopen(&store).err().expect("a newer schema is refused");
        assert!(matches!(refused, StoreError::Backend(ref message) if message.contains("99")), "{refused:?}");
    }

    #[test]
    fn a_failed_write_rolls_back_everything() {
        let Some(store) = test_store("failed_write_rolls_back") else { return };
        let refused: StoreResult<()> = store.write(|tx| {
            tx.execute("UPDATE meta SET value = value + 1 WHERE key = 'journal_seq'", &[])?;
            Err(StoreError::Conflict("refused".into()))
        });
        assert!(refused.is_err());
        let seq = store
            .read(|tx| Ok(tx.query("SELECT value FROM meta WHERE key = 'journal_seq'", &[])?[0].get::<_, i64>(0)))
            .expect("read");
        assert_eq!(seq, 0);
    }

    #[test]
    fn the_store_answers_from_inside_either_kind_of_tokio_runtime() {
        let Some(store) = test_store("inside_tokio") else { return };
        let store = std::sync::Arc::new(store);
        let current_thread = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        assert_eq!(current_thread.block_on(async { store.schema_version() }), Ok(MIGRATIONS.len()));
        let multi_thread = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().expect("runtime");
        let shared = store.clone();
        let version = multi_thread
            .block_on(async move { tokio::spawn(async move { shared.schema_version() }).await.expect("task") });
        assert_eq!(version, Ok(MIGRATIONS.len()));
    }

    /// A sending campaign of `contacts` messages through a non-idempotent account.
    fn sending(store: &PostgresStore, contacts: u32) -> CampaignId {
        let now = crate::store::conformance::T0;
        let tenant = store
            .create_tenant(
                NewTenant {
                    name: "acme".into(),
                    api_key_hash: "h".into(),
                    credits: Credits(1_000_000),
                    rate_limit_per_s: None,
                },
                now,
            )
            .expect("tenant");
        let account = store
            .create_traffic_account(NewTrafficAccount {
                owner: None,
                name: "main".into(),
                provider: ProviderKind::Mitto,
                base_url: "http://provider".into(),
                credentials: BTreeMap::new(),
                sender: "SMSIM".into(),
                rate_limit_per_s: None,
                price_per_segment: Credits(1),
                idempotent_submissions: false,
            })
            .expect("account");
        let rows = (0..contacts)
            .map(|n| NewContact { phone: crate::store::conformance::phone(n), ..NewContact::default() })
            .collect();
        store.import_contacts(tenant.id, rows, now).expect("import");
        let new = NewCampaign {
            name: "c".into(),
            body_template: "hi".into(),
            sender: None,
            audience: Audience::All,
            traffic_account: account.id,
            schedule_at: None,
        };
        let campaign = store.create_campaign(tenant.id, new, now).expect("campaign");
        store.enqueue(tenant.id, campaign.id, None, now).expect("enqueue");
        campaign.id
    }

    #[test]
    fn concurrent_claimers_and_reapers_never_take_one_message_twice() {
        let Some(store) = test_store("concurrent_claims_and_reaps") else { return };
        let now = crate::store::conformance::T0;
        let campaign = sending(&store, 120);
        // Four workers (as four processes would, each on its own connections) claim until
        // the queue is empty: every message is claimed exactly once.
        let claimed: Vec<MessageId> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|n| {
                    let store = &store;
                    scope.spawn(move || {
                        let mut mine = Vec::new();
                        let request = ClaimRequest {
                            worker: format!("w{n}"),
                            traffic_account: None,
                            max_messages: 7,
                            lease_ms: 1_000,
                            burst: Default::default(),
                        };
                        for _ in 0..1_000 {
                            match store.claim(request.clone(), now).expect("claim") {
                                ClaimOutcome::Claimed(claim) => mine.extend(claim.messages.iter().map(|m| m.id)),
                                ClaimOutcome::Idle(_) => break,
                            }
                        }
                        mine
                    })
                })
                .collect();
            workers.into_iter().flat_map(|worker| worker.join().expect("worker")).collect()
        });
        let distinct: BTreeSet<MessageId> = claimed.iter().copied().collect();
        assert_eq!((claimed.len(), distinct.len()), (120, 120), "each message claimed once");
        // Three maintenance processes reap the expired leases at once: each lease is reaped
        // by exactly one of them.
        let later = now.plus_ms(5_000);
        let reaped: Vec<MessageId> = std::thread::scope(|scope| {
            let reapers: Vec<_> =
                (0..3).map(|_| scope.spawn(|| store.reap_expired_leases(later).expect("reap").unknown)).collect();
            reapers.into_iter().flat_map(|reaper| reaper.join().expect("reaper")).collect()
        });
        let distinct: BTreeSet<MessageId> = reaped.iter().copied().collect();
        assert_eq!((reaped.len(), distinct.len()), (120, 120), "each lease reaped once");
        let counts = store.recount(campaign).expect("recount");
        assert_eq!(counts.unknown, 120);
        assert_eq!(store.all_campaigns().expect("campaigns")[0].counts, counts);
    }
}
