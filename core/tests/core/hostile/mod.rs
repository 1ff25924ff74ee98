//! Hostile input: every route, header, path id, query string and webhook parser fed
//! arbitrary, malformed and extreme input, over the memory store and the SQLite store.
//!
//! Every property has the same oracle ([`fixture::check_refusal`]): the answer is a
//! success or a typed error from the HTTP API's error table
//! (`docs/src/reference/http-api.md`) with its status (never a 5xx, never a panic, never a
//! hang), and a refused request leaves the store's records, ledgers, parked reports and
//! journal exactly as they were.
//!
//! The case count is small by default so `cargo test` stays quick; the long run is
//! `PROPTEST_CASES=5000 cargo test -p smsim-core --test core hostile -- --nocapture`
//! (each property prints how many cases it tried). Cases are drawn from a fixed seed, so
//! a failure replays.

mod api;
mod fixture;
mod isolation;
mod webhooks;
