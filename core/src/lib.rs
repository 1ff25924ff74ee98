//! smsim-core: the bulk-SMS campaign engine.
//!
//! The engine is correct by construction rather than by vigilance:
//!
//! * [`domain`] holds the rules as pure functions and types: the campaign status graph,
//!   the message status lattice, segment counting, rendering, pricing, retry policy and
//!   rate-limit arithmetic. Nothing in it performs I/O, reads a clock or draws entropy;
//!   time and a seeded random generator are passed in.
//! * [`store`] is the only shared state. Every operation of the [`store::Store`] trait is
//!   one transaction with conditional updates, so counters are derived from messages, a
//!   message is accepted by a provider at most once, credits are reserved before anything
//!   is sent and a campaign completes only when its messages say so.
//! * [`adapter`] turns batches of messages into provider requests and provider webhooks
//!   into delivery reports (Mitto-style bulk, Twilio-style single, Infobip-style bulk).
//! * [`api`] is the HTTP API (axum) and [`service`] the workers, reaper and scheduler.
//!   They receive their listener, HTTP connector, store and clock from outside, so the
//!   same code runs on tokio sockets and on a simulated network.

pub mod adapter;
pub mod api;
pub mod clock;
pub mod domain;
pub mod ids;
pub mod incidents;
pub mod money;
pub mod service;
pub mod store;

pub use clock::{Clock, Timestamp};
pub use ids::{CampaignId, ContactId, MessageId, TenantId, TrafficAccountId};
pub use money::Credits;
