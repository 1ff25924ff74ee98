//! The store conformance suite against every store implementation of this crate.

smsim_core::store_conformance_tests!(memory_store, smsim_core::store::memory::MemoryStore::new());

smsim_core::store_conformance_tests!(
    sqlite_store,
    smsim_core::store::sqlite::SqliteStore::open_in_memory().expect("open an in-memory SQLite store")
);
