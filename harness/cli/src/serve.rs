//! Serve mode: the engine for real — API, workers and maintenance on SQLite or
//! PostgreSQL and tokio sockets, sending through real provider accounts.
//!
//! One process may run every role (the default) or only some of them, so that several
//! processes on several machines share one PostgreSQL database: API processes behind a
//! load balancer, worker processes, and one or more maintenance processes. Leases,
//! fencing tokens and rate-limit buckets live in the store, so the services need not know
//! how many processes there are.
//!
//! The engine's tasks are supervised as one ([`Tasks`]): none of them should ever end,
//! so the first that ends or panics — a worker as much as the API — ends serve mode
//! (exit 1) instead of leaving a process that answers HTTP but sends nothing.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use smsim_core::adapter::http::HyperClient;
use smsim_core::api::ingest::{GroupLimits, ReportCommitter};
use smsim_core::api::{self, ApiState, ReportIngest};
use smsim_core::clock::{Clock, TokioClock};
use smsim_core::service::maintenance::Maintenance;
use smsim_core::service::worker::Worker;
use smsim_core::service::{Adapters, EngineConfig};
use smsim_core::store::postgres::PostgresStore;
use smsim_core::store::sqlite::SqliteStore;
use smsim_core::store::Store;
use smsim_core::Timestamp;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::{Id, JoinSet};

/// Where the engine keeps its state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Database {
    /// An SQLite database file (created if missing): one process.
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://…` or `postgresql://…`): any number of processes.
    Postgres(String),
}

impl Database {
    /// A PostgreSQL URL, else an SQLite file name.
    pub fn parse(text: &str) -> Database {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Database::Postgres(text.to_owned())
        } else {
            Database::Sqlite(PathBuf::from(text))
        }
    }

    /// Opens the store, applying any schema migrations it lacks.
    pub fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        Ok(match self {
            Database::Sqlite(path) => Arc::new(SqliteStore::open(path)?),
            Database::Postgres(url) => Arc::new(PostgresStore::connect(url)?),
        })
    }
}

impl std::fmt::Display for Database {
    /// The file, or the URL without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres(url) => match (url.find("://"), url.rfind('@')) {
                (Some(scheme), Some(at)) if url[scheme + 3..at].contains(':') => {
                    let user_end = scheme + 3 + url[scheme + 3..at].find(':').expect("checked");
                    write!(f, "{}:***{}", &url[..user_end], &url[at..])
                }
                _ => write!(f, "{url}"),
            },
        }
    }
}

/// What one serve process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// The HTTP API and the providers' webhooks.
    Api,
    /// Worker tasks: claim, submit, record.
    Worker,
    /// The maintenance loop: reaper, reconciler, scheduler.
    Maintenance,
}

impl Role {
    /// Every role: what a single process runs.
    pub const ALL: [Role; 3] = [Role::Api, Role::Worker, Role::Maintenance];
}

/// How to run the engine.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The database.
    pub db: Database,
    /// The roles this process runs (at least one).
    pub roles: Vec<Role>,
    /// Worker tasks.
    pub workers: u32,
    /// The admin bearer token; `None` disables the admin routes.
    pub admin_token: Option<String>,
    /// The URL providers use to reach this API (for webhook URLs and signatures).
    pub public_url: String,
    /// Timeout of one provider request.
    pub provider_timeout: Duration,
    /// Service tunables.
    pub engine: EngineConfig,
    /// How long maintenance keeps a report parked for a provider id never learned.
    pub parked_retention_ms: u64,
}

/// A running engine.
pub struct Engine {
    /// The address the API listens on, if this process serves it.
    pub address: Option<SocketAddr>,
    /// The store it runs on.
    pub store: Arc<dyn Store>,
    tasks: Tasks,
}

/// Long-running tasks by name, of which none should end.
#[derive(Default)]
pub struct Tasks {
    set: JoinSet<()>,
    names: Vec<(Id, String)>,
}

/// The first of [`Tasks`] to end, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskEnded {
    /// Its name (`worker-2`, `maintenance`, `api`).
    pub task: String,
    /// Whether it panicked (else it returned).
    pub panicked: bool,
}

impl fmt::Display for TaskEnded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = if self.panicked { "panicked" } else { "ended" };
        write!(f, "the engine's task `{}` {how}", self.task)
    }
}

impl Tasks {
    /// Starts `task` under `name`.
    pub fn spawn(&mut self, name: impl Into<String>, task: impl Future<Output = ()> + Send + 'static) {
        let id = self.set.spawn(task).id();
        self.names.push((id, name.into()));
    }

    /// Waits for the first task to end or panic, and stops the others. With no task to
    /// wait on, that is reported as a task `none` that ended.
    pub async fn first_to_end(&mut self) -> TaskEnded {
        let (id, panicked) = match self.set.join_next_with_id().await {
            Some(Ok((id, ()))) => (Some(id), false),
            Some(Err(error)) => (Some(error.id()), error.is_panic()),
            None => (None, false),
        };
        self.set.abort_all();
        let task = id
            .and_then(|id| self.names.iter().find(|(known, _)| *known == id))
            .map_or_else(|| "none".to_owned(), |(_, name)| name.clone());
        TaskEnded { task, panicked }
    }
}

/// The wall-clock time, read once at start-up to anchor tokio's clock.
#[allow(clippy::disallowed_methods)] // The one place the wall clock is read: serve mode's epoch.
fn wall_clock_now() -> Timestamp {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Timestamp(since_epoch.as_millis() as u64)
}

impl Engine {
    /// Opens the store and starts the roles of `options`: the API on `listener` (which
    /// the API role needs, and no other uses), the workers, maintenance.
    pub async fn start(options: ServeOptions, listener: Option<tokio::net::TcpListener>) -> anyhow::Result<Engine> {
        anyhow::ensure!(!options.roles.is_empty(), "a serve process needs at least one role");
        let listener = match (options.roles.contains(&Role::Api), listener) {
            (true, None) => anyhow::bail!("the API role needs a listener"),
            (true, listener) => listener,
            (false, _) => None,
        };
        let address = listener.as_ref().map(tokio::net::TcpListener::local_addr).transpose()?;
        let store = options.db.open()?;
        let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(wall_clock_now()));
        let client = Arc::new(HyperClient::tcp(options.provider_timeout));
        let adapters = Arc::new(Adapters::builtin(client, options.public_url.clone()));
        let engine = EngineConfig { webhook_base_url: options.public_url.clone(), ..options.engine.clone() };
        // API keys and retry jitter need no replay in real use: seed them from the OS.
        let mut entropy = ChaCha20Rng::from_os_rng();
        let mut state = ApiState::new(
            store.clone(),
            clock.clone(),
            adapters.clone(),
            options.admin_token.clone(),
            options.public_url.clone(),
            ChaCha20Rng::from_os_rng(),
        );
        let mut tasks = Tasks::default();
        let workers = if options.roles.contains(&Role::Worker) { options.workers } else { 0 };
        for n in 1..=workers {
            // The process id tells apart the workers of several processes on one store.
            let name = format!("worker-{}-{n}", std::process::id());
            let worker = Worker::new(
                name.clone(),
                store.clone(),
                clock.clone(),
                adapters.clone(),
                engine.clone(),
                entropy.next_u64(),
            );
            tasks.spawn(name, worker.run());
        }
        if options.roles.contains(&Role::Maintenance) {
            let maintenance = Maintenance::new(store.clone(), clock.clone(), adapters, engine)
                .with_parked_retention_ms(options.parked_retention_ms);
            tasks.spawn("maintenance", maintenance.run());
        }
        if let Some(listener) = listener {
            // Concurrent webhooks share transactions (group commit); the simulator, which
            // builds its own API state, applies each webhook inline.
            let (queue, committer) = ReportCommitter::new(store.clone(), clock.clone(), GroupLimits::default());
            state.report_ingest = ReportIngest::Grouped(queue);
            tasks.spawn("report-committer", committer.run());
            tasks.spawn("api", async move {
                if let Err(error) = api::serve(listener, Arc::new(state)).await {
                    tracing::error!(%error, "the API server stopped");
                }
            });
        }
        Ok(Engine { address, store, tasks })
    }

    /// Stops every task.
    pub fn stop(mut self) {
        self.tasks.set.abort_all();
    }

    /// Waits until any task — a worker, maintenance or the API — ends or panics (in
    /// normal operation: never), stops the others and says which.
    pub async fn wait(mut self) -> TaskEnded {
        self.tasks.first_to_end().await
    }
}
