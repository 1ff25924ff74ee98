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
//! # Schema
//!
//! The migrations in `core/migrations/postgres/` are applied in order when the store
//! opens, under the same advisory lock, and the version is kept in `schema_version`. The
//! store works in one schema (`public` unless told otherwise), so several stores — the
//! tests make one per case — can share a database.

use super::*;
use ::postgres as pg;
use pg::error::SqlState;
use pg::types::ToSql;
use pg::{IsolationLevel, NoTls, Row, Statement};
use std::cell::RefCell;
use std::time::Duration;

/// The schema migrations, in order; migration `n` brings the schema to version `n + 1`.
const MIGRATIONS: &[&str] = &[include_str!("../../migrations/postgres/0001_initial.sql")];

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
    pool: r2d2::Pool<Manager>,
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

impl r2d2::ManageConnection for Manager {
    type Connection = Connection;
    type Error = pg::Error;

    fn connect(&self) -> Result<Connection, pg::Error> {
        let mut client = self.config.connect(NoTls)?;
        client.batch_execute(&format!("SET search_path TO {}", quote_identifier(&self.schema)))?;
        Ok(Connection { client, statements: BTreeMap::new() })
    }

    fn is_valid(&self, connection: &mut Connection) -> Result<(), pg::Error> {
        connection.client.batch_execute("")
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
    let hash = format!("smsim:{schema}").bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
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
        StoreError::Transient(error.to_string())
    } else {
        StoreError::Backend(error.to_string())
    }
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
        let store =
            PostgresStore { pool, lock_key: lock_key(&options.schema), schema: options.schema, drop_schema: false };
        store.migrate()?;
        Ok(store)
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
            let mut connection = self.pool.get().map_err(pool_error)?;
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
        let mut connection = self.pool.get().map_err(pool_error)?;
        let Connection { client, statements } = &mut *connection;
        let transaction = match access {
            Access::Write => client.build_transaction().isolation_level(IsolationLevel::ReadCommitted),
            Access::Read => client.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true),
        }
        .start()
        .map_err(backend)?;
        let tx = Tx { tx: RefCell::new(transaction), statements: RefCell::new(statements) };
        if access == Access::Write {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&self.lock_key])?;
        }
        let value = work(&tx)?;
        tx.tx.into_inner().commit().map_err(backend)?;
        Ok(value)
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if !self.drop_schema {
            return;
        }
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", quote_identifier(&self.schema));
        let dropped = off_the_runtime(|| -> StoreResult<()> {
            let mut connection = self.pool.get().map_err(pool_error)?;
            connection.client.batch_execute(&sql).map_err(backend)
        });
        if let Err(error) = dropped {
            tracing::warn!(%error, schema = %self.schema, "a test schema was left behind");
        }
    }
}

/// An open transaction with the store's helpers. The transaction and the connection's
/// prepared statements sit in cells so the helpers can take `&self`, as the SQLite store's
/// do, and call one another.
struct Tx<'a> {
    tx: RefCell<pg::Transaction<'a>>,
    statements: RefCell<&'a mut BTreeMap<String, Statement>>,
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

    fn query_opt(&self, sql: &str, parameters: &[&(dyn ToSql + Sync)]) -> StoreResult<Option<Row>> {
        let statement = self.statement(sql)?;
        self.tx.borrow_mut().query_opt(&statement, parameters).map_err(backend)
    }

    fn execute(&self, sql: &str, parameters: &[&(dyn ToSql + Sync)]) -> StoreResult<u64> {
        let statement = self.statement(sql)?;
        self.tx.borrow_mut().execute(&statement, parameters).map_err(backend)
    }
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> StoreError {
    StoreError::Invalid { field: field.into(), message: message.into() }
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
            panic!("CI=true but {TEST_DATABASE_VARIABLE} is not set: the PostgreSQL tests must run in CI; {HOW_TO_RUN}");
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

    fn reopen(store: &PostgresStore) -> StoreResult<PostgresStore> {
        let url = testing::test_database_url("reopen").expect("the first store had a database");
        let mut options = PostgresOptions::new(url);
        options.schema = store.schema().to_owned();
        options.max_connections = 2;
        PostgresStore::open(options)
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
        let multi_thread =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().expect("runtime");
        let shared = store.clone();
        let version = multi_thread.block_on(async move {
            tokio::spawn(async move { shared.schema_version() }).await.expect("task")
        });
        assert_eq!(version, Ok(MIGRATIONS.len()));
    }
}
