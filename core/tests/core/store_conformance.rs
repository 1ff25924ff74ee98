//! The store conformance suite against every store implementation of this crate.

smsim_core::store_conformance_tests!(memory_store, smsim_core::store::memory::MemoryStore::new());

smsim_core::store_conformance_tests!(
    sqlite_store,
    smsim_core::store::sqlite::SqliteStore::open_in_memory().expect("open an in-memory SQLite store")
);

// Runs when SMSIM_TEST_POSTGRES names a database (each case in a schema of its own); says
// loudly that it skipped otherwise, and fails under CI=true.
// Built with the `postgres` feature (a workspace build turns it on for the `smsim` binary).
#[cfg(feature = "postgres")]
smsim_core::store_conformance_tests!(optional postgres_store, smsim_core::store::postgres::testing::test_store);
