//! Integration tests of smsim-core, linked once.

mod adapters;
mod api;
mod hostile;
mod report_ingest;
mod store_conformance;
mod store_differential;
mod store_incidents;
mod worker;
