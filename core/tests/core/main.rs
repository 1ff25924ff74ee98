//! Integration tests of smsim-core, linked once.

mod store_conformance;
mod worker;
