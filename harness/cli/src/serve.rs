//! Serve mode: the engine for real — API, workers and maintenance on SQLite and tokio
//! sockets, sending through real provider accounts.
//!
//! The engine's tasks are supervised as one ([`Tasks`]): none of them should ever end,
//! so the first that ends or panics — a worker as much as the API — ends serve mode
//! (exit 1) instead of leaving a process that answers HTTP but sends nothing.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use smsim_core::adapter::http::HyperClient;
use smsim_core::api::{self, ApiState};
use smsim_core::clock::{Clock, TokioClock};
use smsim_core::service::maintenance::Maintenance;
use smsim_core::service::worker::Worker;
use smsim_core::service::{Adapters, EngineConfig};
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

/// How to run the engine.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The SQLite database file (created if missing).
    pub db: PathBuf,
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
}

/// A running engine.
pub struct Engine {
    /// The address the API listens on.
    pub address: SocketAddr,
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
    /// Opens the store and starts the API on `listener`, the workers and maintenance.
    pub async fn start(options: ServeOptions, listener: tokio::net::TcpListener) -> anyhow::Result<Engine> {
        let address = listener.local_addr()?;
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&options.db)?);
        let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(wall_clock_now()));
        let client = Arc::new(HyperClient::tcp(options.provider_timeout));
        let adapters = Arc::new(Adapters::builtin(client, options.public_url.clone()));
        let engine = EngineConfig { webhook_base_url: options.public_url.clone(), ..options.engine.clone() };
        // API keys and retry jitter need no replay in real use: seed them from the OS.
        let mut entropy = ChaCha20Rng::from_os_rng();
        let state = ApiState::new(
            store.clone(),
            clock.clone(),
            adapters.clone(),
            options.admin_token.clone(),
            options.public_url.clone(),
            ChaCha20Rng::from_os_rng(),
        );
        let mut tasks = Tasks::default();
        for n in 1..=options.workers {
            let name = format!("worker-{n}");
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
        tasks.spawn("maintenance", Maintenance::new(store.clone(), clock.clone(), adapters, engine).run());
        tasks.spawn("api", async move {
            if let Err(error) = api::serve(listener, Arc::new(state)).await {
                tracing::error!(%error, "the API server stopped");
            }
        });
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
