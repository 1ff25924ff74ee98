//! Serve mode: the engine for real — API, workers and maintenance on SQLite and tokio
//! sockets, sending through real provider accounts.

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
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

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
    tasks: Vec<JoinHandle<()>>,
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
        let mut tasks = Vec::new();
        for n in 1..=options.workers {
            let worker = Worker::new(
                format!("worker-{n}"),
                store.clone(),
                clock.clone(),
                adapters.clone(),
                engine.clone(),
                entropy.next_u64(),
            );
            tasks.push(tokio::spawn(worker.run()));
        }
        tasks.push(tokio::spawn(Maintenance::new(store.clone(), clock.clone(), adapters, engine).run()));
        tasks.push(tokio::spawn(async move {
            if let Err(error) = api::serve(listener, Arc::new(state)).await {
                tracing::error!(%error, "the API server stopped");
            }
        }));
        Ok(Engine { address, store, tasks })
    }

    /// Stops every task.
    pub fn stop(self) {
        for task in self.tasks {
            task.abort();
        }
    }

    /// Waits until a task ends (in normal operation: never).
    pub async fn wait(mut self) {
        if let Some(task) = self.tasks.pop() {
            let _ = task.await;
        }
    }
}
