//! The certification kit: one suite of clauses, generic over [`ProviderAdapter`], that
//! says clause by clause whether an adapter is safe to put in front of real money.
//!
//! A [`Subject`] is an adapter (how to build it for a traffic account) and the
//! [`ProviderProfile`] of its provider (what the provider documents). Each clause plays
//! one documented behaviour through a wiremock stub on loopback — or through the engine in
//! a box, or through the full simulator for the system arm — and judges what the adapter
//! made of it:
//!
//! ```no_run
//! use smsim_certify::{self as certify, Options, Subject};
//! let report = certify::certify(&Subject::builtin(smsim_core::domain::ProviderKind::Mitto), &Options::default());
//! assert!(report.passed(), "{}", report.table());
//! ```
//!
//! [`assert_certified`] is the one call a third-party adapter's own test makes.

pub mod clauses;
pub mod engine;
pub mod profile;
pub mod profiles;
pub mod stub;
pub mod system;

pub use self::clauses::CLAUSES;
pub use self::profile::ProviderProfile;

use serde::Serialize;
use smsim_core::adapter::http::HyperClient;
use smsim_core::adapter::{AdapterConfigError, Capabilities, HttpClient, ProviderAdapter};
use smsim_core::domain::{ProviderKind, TrafficAccount};
use smsim_core::{Credits, TrafficAccountId};
use std::fmt::{self, Write as _};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Builds an adapter for a traffic account, sending through the given client; the third
/// argument is where the engine's API is reachable (for callback URLs).
pub type BuildAdapter = dyn Fn(&TrafficAccount, Arc<dyn HttpClient>, &str) -> Result<Arc<dyn ProviderAdapter>, AdapterConfigError>
    + Send
    + Sync;

/// An adapter to certify, with its provider's profile.
#[derive(Clone)]
pub struct Subject {
    /// Its name, in reports.
    pub name: String,
    /// What its provider documents.
    pub profile: Arc<dyn ProviderProfile>,
    /// How to build it.
    pub build: Arc<BuildAdapter>,
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject").field("name", &self.name).field("provider", &self.profile.name()).finish()
    }
}

impl Subject {
    /// A subject named `name`.
    pub fn new(
        name: impl Into<String>,
        profile: impl ProviderProfile + 'static,
        build: impl Fn(&TrafficAccount, Arc<dyn HttpClient>, &str) -> Result<Arc<dyn ProviderAdapter>, AdapterConfigError>
            + Send
            + Sync
            + 'static,
    ) -> Subject {
        Subject { name: name.into(), profile: Arc::new(profile), build: Arc::new(build) }
    }

    /// This crate's adapter for `kind` (the engine's registry builds it), with its provider's
    /// profile ([`profiles::builtin`]), named as the kind is.
    pub fn builtin(kind: ProviderKind) -> Subject {
        let build = |account: &TrafficAccount, client: Arc<dyn HttpClient>, base: &str| {
            smsim_core::adapter::adapter_for(account, client, base)
        };
        Subject { name: kind.as_str().to_owned(), profile: profiles::builtin(kind), build: Arc::new(build) }
    }

    /// Every adapter this crate ships.
    pub fn builtins() -> Vec<Subject> {
        ProviderKind::ALL.into_iter().map(Subject::builtin).collect()
    }
}

/// How to run the suite.
#[derive(Clone, Debug)]
pub struct Options {
    /// Only the clauses whose id starts with one of these (all when empty).
    pub only: Vec<String>,
    /// The HTTP client's timeout; the timeout clauses wait four times this long.
    pub client_timeout: Duration,
    /// Seeds of the system arm's faulty sweep.
    pub system_seeds: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options { only: Vec::new(), client_timeout: Duration::from_millis(300), system_seeds: 4 }
    }
}

/// One clause of the suite: its id, its statement, when it applies and its body, in one
/// value ([`CLAUSES`] is the table of them).
#[derive(Clone, Copy, Serialize)]
pub struct Clause {
    /// Its id (`submit.partial`).
    pub id: &'static str,
    /// What it demands, in one line.
    pub statement: &'static str,
    /// Why it does not apply to the adapter in `Context`, if it does not.
    #[serde(skip)]
    pub unless: fn(&Context) -> Option<String>,
    /// What it runs.
    #[serde(skip)]
    pub body: Body,
}

/// A future a clause's body returns.
pub type ClauseFuture<'a> = Pin<Box<dyn Future<Output = clauses::Verdict> + Send + 'a>>;

/// How a clause runs.
#[derive(Clone, Copy)]
pub enum Body {
    /// On the suite's runtime, against stubbed providers.
    Async(for<'a> fn(&'a Context) -> ClauseFuture<'a>),
    /// On a thread of its own: it drives the simulator, which runs runtimes of its own.
    Simulator(fn(&Context) -> clauses::Verdict),
}

impl Clause {
    /// A clause that applies to every adapter.
    pub const fn new(id: &'static str, statement: &'static str, body: Body) -> Clause {
        Clause { id, statement, unless: |_| None, body }
    }

    /// The clause, not applying when `unless` gives a reason.
    pub const fn unless(self, unless: fn(&Context) -> Option<String>) -> Clause {
        Clause { unless, ..self }
    }
}

impl fmt::Debug for Clause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clause").field("id", &self.id).field("statement", &self.statement).finish_non_exhaustive()
    }
}

/// Clauses are the same when their id and statement are (the functions are not compared).
impl PartialEq for Clause {
    fn eq(&self, other: &Clause) -> bool {
        (self.id, self.statement) == (other.id, other.statement)
    }
}

impl Eq for Clause {}

/// Everything a clause needs.
#[derive(Clone, Debug)]
pub struct Context {
    /// The adapter under test.
    pub subject: Subject,
    /// The run's options.
    pub options: Options,
    /// What the adapter declares.
    pub capabilities: Capabilities,
}

impl Context {
    /// The adapter under test, built for an account on `base_url`.
    pub fn adapter(&self, base_url: &str) -> Result<Arc<dyn ProviderAdapter>, String> {
        let client: Arc<dyn HttpClient> = Arc::new(HyperClient::tcp(self.options.client_timeout));
        let account = probe_account(self.subject.profile.as_ref(), base_url);
        (self.subject.build)(&account, client, engine::ENGINE_URL).map_err(|error| error.to_string())
    }

    /// The size of a full batch in the batch clauses (the declared maximum, up to 200).
    pub fn full_batch(&self) -> u32 {
        self.capabilities.max_batch.clamp(1, 200)
    }
}

/// The traffic account adapters are built for outside the engine.
pub fn probe_account(profile: &dyn ProviderProfile, base_url: &str) -> TrafficAccount {
    TrafficAccount {
        id: TrafficAccountId(1),
        owner: None,
        name: "certify".into(),
        provider: profile.kind(),
        base_url: base_url.to_owned(),
        credentials: profile.credentials(),
        sender: "SMSIM".into(),
        rate_limit_per_s: None,
        price_per_segment: Credits(1),
        idempotent_submissions: false,
    }
}

/// A clause's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result", content = "detail")]
pub enum Outcome {
    /// It holds.
    Pass,
    /// It does not; the evidence.
    Fail(String),
    /// It does not apply to this adapter's declared capabilities; why.
    NotApplicable(String),
}

/// One clause's line in the report.
#[derive(Clone, Debug, Serialize)]
pub struct ClauseReport {
    /// The clause.
    #[serde(flatten)]
    pub clause: Clause,
    /// Its result.
    pub outcome: Outcome,
    /// Wall time it took, in milliseconds.
    pub millis: u64,
}

/// The suite's verdict on one adapter.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The adapter.
    pub adapter: String,
    /// The provider profile it was judged against.
    pub provider: String,
    /// What it declares.
    pub capabilities: Option<Capabilities>,
    /// Every clause run, in order.
    pub clauses: Vec<ClauseReport>,
}

impl Report {
    /// Whether no clause failed.
    pub fn passed(&self) -> bool {
        !self.clauses.iter().any(|clause| matches!(clause.outcome, Outcome::Fail(_)))
    }

    /// The failed clauses' ids.
    pub fn failures(&self) -> Vec<&'static str> {
        self.clauses
            .iter()
            .filter(|clause| matches!(clause.outcome, Outcome::Fail(_)))
            .map(|clause| clause.clause.id)
            .collect()
    }

    /// The clause table: clause, result, evidence on failure.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "adapter {} (provider profile {})", self.adapter, self.provider);
        let width = self.clauses.iter().map(|clause| clause.clause.id.len()).max().unwrap_or(6).max(6);
        let _ = writeln!(out, "{:<width$}  {:<6}  evidence", "clause", "result");
        for clause in &self.clauses {
            let (result, detail) = match &clause.outcome {
                Outcome::Pass => ("pass", ""),
                Outcome::Fail(evidence) => ("FAIL", evidence.as_str()),
                Outcome::NotApplicable(reason) => ("n/a", reason.as_str()),
            };
            let _ = writeln!(out, "{:<width$}  {result:<6}  {detail}", clause.clause.id);
        }
        let count = |wanted: fn(&Outcome) -> bool| self.clauses.iter().filter(|c| wanted(&c.outcome)).count();
        let _ = writeln!(
            out,
            "{} passed, {} failed, {} not applicable",
            count(|o| matches!(o, Outcome::Pass)),
            count(|o| matches!(o, Outcome::Fail(_))),
            count(|o| matches!(o, Outcome::NotApplicable(_)))
        );
        out
    }
}

/// Runs the suite on `subject` (on a runtime of its own; see [`certify_async`] inside one).
pub fn certify(subject: &Subject, options: &Options) -> Report {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
        .block_on(certify_async(subject, options))
}

/// Runs the suite on `subject` and panics with the clause table unless every clause that
/// applies passes: the one call a third-party adapter's test makes.
pub fn assert_certified(subject: &Subject) {
    let report = certify(subject, &Options::default());
    assert!(report.passed(), "adapter `{}` failed certification:\n{}", subject.name, report.table());
}

/// Runs the suite on `subject`.
pub async fn certify_async(subject: &Subject, options: &Options) -> Report {
    let mut report = Report {
        adapter: subject.name.clone(),
        provider: subject.profile.name().to_owned(),
        capabilities: None,
        clauses: Vec::new(),
    };
    let probe = probe_account(subject.profile.as_ref(), "http://127.0.0.1:9");
    let client: Arc<dyn HttpClient> = Arc::new(HyperClient::tcp(options.client_timeout));
    let capabilities = match (subject.build)(&probe, client, engine::ENGINE_URL) {
        Ok(adapter) => adapter.capabilities(),
        Err(error) => {
            report.clauses.push(ClauseReport {
                clause: clauses::BUILD,
                outcome: Outcome::Fail(error.to_string()),
                millis: 0,
            });
            return report;
        }
    };
    report.capabilities = Some(capabilities);
    let context = Context { subject: subject.clone(), options: options.clone(), capabilities };
    for clause in selected(options) {
        #[allow(clippy::disallowed_methods)] // the report says how long each clause took
        let started = std::time::Instant::now();
        let outcome = match (clause.unless)(&context) {
            Some(reason) => Outcome::NotApplicable(reason),
            None => match run_one(clause, &context).await {
                Ok(()) => Outcome::Pass,
                Err(evidence) => Outcome::Fail(evidence),
            },
        };
        report.clauses.push(ClauseReport { clause: *clause, outcome, millis: started.elapsed().as_millis() as u64 });
    }
    report
}

/// The clauses `options` selects.
pub fn selected(options: &Options) -> Vec<&'static Clause> {
    CLAUSES
        .iter()
        .filter(|clause| {
            options.only.is_empty()
                || options.only.iter().any(|prefix| {
                    clause.id == prefix || clause.id.starts_with(&format!("{}.", prefix.trim_end_matches('.')))
                })
        })
        .collect()
}

async fn run_one(clause: &Clause, context: &Context) -> clauses::Verdict {
    match clause.body {
        Body::Async(body) => body(context).await,
        Body::Simulator(body) => {
            // The simulator runs runtimes of its own; it cannot run inside this one.
            let context = context.clone();
            tokio::task::spawn_blocking(move || body(&context))
                .await
                .unwrap_or_else(|panic| Err(format!("the simulation panicked: {panic}")))
        }
    }
}

/// Runs `future` with every tracing event it emits captured; its output and the log text.
pub async fn capture_logs<T>(future: impl Future<Output = T>) -> (T, String) {
    use tracing::instrument::WithSubscriber;
    let buffer = Arc::new(Mutex::new(Vec::<u8>::new()));
    let writer = {
        let buffer = buffer.clone();
        move || LogWriter(buffer.clone())
    };
    let subscriber =
        tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_ansi(false).with_writer(writer).finish();
    let output = future.with_subscriber(subscriber).await;
    let logs = String::from_utf8_lossy(&buffer.lock().expect("log buffer poisoned")).into_owned();
    (output, logs)
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer poisoned").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
