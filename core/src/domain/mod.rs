//! The rules of the engine as pure functions and types: no I/O, no clock, no entropy.
//!
//! Everything here can be model-checked, property-tested and benchmarked on its own;
//! the store and the services only sequence these rules inside transactions.

pub mod ledger;
pub mod phone;
pub mod plan;
pub mod rate;
pub mod records;
pub mod report;
pub mod retry;
pub mod segments;
pub mod status;
pub mod template;

pub use ledger::{LedgerDelta, UNKNOWN_OUTCOME};
pub use records::{
    progress, Audience, Campaign, Contact, ContactFields, Encoding, Lease, Message, MessageError, PauseReason,
    ProviderKind, StatusCounts, Tenant, TrafficAccount,
};
pub use report::{ReportDecision, ReportStatus};
pub use status::{CampaignStatus, IllegalTransition, MessageStatus, TransitionCause};
