//! smsim's independent judge: a reference model of a bulk-SMS campaign engine, written
//! from the design (DESIGN.md) and nothing else, that decides the invariants of a run
//! from what an outside observer sees.
//!
//! Elle knows nothing of the database it checks; VOPR's auditor keeps its own model of
//! what the replies must be. So here: this crate depends on no engine crate (its
//! `Cargo.toml` names serde alone, and a test holds it to that), keeps its own status
//! lattice ([`lattice`]), its own segment counter ([`segments`]), its own reading of the
//! providers' report statuses ([`reports`]) and its own ledger ([`judge`]). An engine
//! whose lattice has an edge too many, whose prices are wrong, or whose refunds follow a
//! wrong rule is judged by rules it did not write.
//!
//! The simulator and live mode feed the same [`Judge`] with [`Observation`]s; what an
//! observer was not shown is reported "not checked" ([`Verdict::NotChecked`]), never
//! "held".

pub mod input;
pub mod invariant;
pub mod judge;
pub mod lattice;
mod messages;
pub mod observation;
pub mod reports;
pub mod segments;
pub mod template;
pub mod violation;

pub use input::{ContactRow, ImportCounts};
pub use invariant::{Invariant, Kind};
pub use judge::Judge;
pub use lattice::{CampaignState, Mover, Status};
pub use observation::{
    AccountSetup, Act, CampaignReading, Input, InputAnswer, MessageRef, MessageRow, Observation, RetrySetup, Setup,
    TenantSetup, Wire,
};
pub use violation::{Verdict, Violation};

#[cfg(test)]
mod tests {
    /// The judge shares no code with the defendant: its manifest names no smsim crate.
    #[test]
    fn the_judge_depends_on_no_engine_crate() {
        let manifest = include_str!("../Cargo.toml");
        let dependencies: Vec<&str> = manifest
            .lines()
            .skip_while(|line| !line.starts_with("[dependencies]"))
            .skip(1)
            .take_while(|line| !line.starts_with('['))
            .filter(|line| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
            .collect();
        assert_eq!(dependencies, ["serde.workspace = true"], "the judge may depend on serde alone");
    }
}
