//! Integration tests of smsim-core, linked once.

mod adapters;
mod store_conformance;
mod worker;
