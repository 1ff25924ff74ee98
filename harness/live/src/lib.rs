//! smsim-live: the simulator's provider, a seeded fault plan and the simulator's judge,
//! carried out of the simulation and onto real processes.
//!
//! * [`profile`] reads an engine profile: how to start the engine and how the driver's
//!   actions map onto its HTTP API.
//! * [`template`] fills the profile's `${name}` placeholders.
//! * [`process`] starts, signals and always ends the engine's child processes.
//! * [`plan`] draws the fault plan (the nemesis) from the seed.
//! * [`api`] calls the engine over loopback HTTP as the profile says; [`driver`] does
//!   what a user does with it (tenants, contacts, campaigns, clicks, operator actions).
//! * [`check`] feeds the independent judge ([`smsim_judge`], the simulator's too) the
//!   provider's ground truth, the driver's actions and the engine's answers.
//! * [`run`] puts them together: `smsim live`; [`report`] prints its outcome and
//!   [`trace`] writes its JSON-lines trace.
//! * [`provider_server`] serves the simulated provider alone: `smsim provider`.
//!
//! Real time is not replayable; the fault plan is: the same seed gives the same plan.

pub mod api;
pub mod check;
pub mod driver;
pub mod plan;
pub mod process;
pub mod profile;
pub mod provider_server;
pub mod report;
pub mod run;
pub mod sockets;
pub mod template;
pub mod timeline;
pub mod trace;

/// Why a live run could not be carried out (bad input or an engine that would not run):
/// `smsim live` exits 2 on these, never 1.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    /// The engine profile is unreadable or invalid.
    #[error("engine profile {path}: {message}")]
    Profile {
        /// The file.
        path: String,
        /// What is wrong and where (line, column, field).
        message: String,
    },
    /// The scenario cannot run live.
    #[error("scenario {path}: {message}")]
    Scenario {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A template names a value nobody set.
    #[error("{place}: unknown placeholder `${{{name}}}` (known: {known})")]
    Placeholder {
        /// Which template (`actions.enqueue.path`).
        place: String,
        /// The placeholder.
        name: String,
        /// The placeholders that were set.
        known: String,
    },
    /// A child process could not be started or signalled.
    #[error("engine process `{command}`: {message}")]
    Process {
        /// The command line.
        command: String,
        /// What went wrong.
        message: String,
    },
    /// A process or service of the engine was not ready in time.
    #[error("engine never became ready: {what} within {timeout_ms} ms{detail}")]
    NotReady {
        /// The program and what its readiness check waited for.
        what: String,
        /// The bound.
        timeout_ms: u64,
        /// The last answer or error, and whether the process had exited.
        detail: String,
    },
    /// The engine answered an action with something the profile's pointers cannot read.
    #[error("engine answered `{action}` ({method} {url}) with {problem}; answer: {answer}")]
    Garbage {
        /// The action (`create_campaign`).
        action: String,
        /// HTTP method.
        method: String,
        /// URL.
        url: String,
        /// What is wrong (status, missing pointer).
        problem: String,
        /// The first bytes of the answer.
        answer: String,
    },
    /// Ctrl-C: the run was interrupted (every child process was ended).
    #[error("interrupted")]
    Interrupted,
    /// Local I/O (sockets, files).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}
