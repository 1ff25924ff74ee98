//! `smsim provider`: the simulated provider alone on a loopback socket, for a team that
//! drives its own engine by hand or from its own tests, with its ground truth at
//! `GET /_smsim/truth`.

use crate::LiveError;
use smsim_sim::provider::live::{live_behaviour, serve_live};
use smsim_sim::provider::{AccountBinding, Behaviour, Provider};
use smsim_sim::scenario::Scenario;
use std::net::SocketAddr;
use std::path::PathBuf;

/// How to serve the provider.
#[derive(Clone, Debug)]
pub struct ProviderOptions {
    /// A loopback address to listen on.
    pub bind: SocketAddr,
    /// A scenario file whose `[provider]` and `[faults.rates]` set the behaviour (none:
    /// the defaults, no faults).
    pub behaviour: Option<PathBuf>,
    /// The engine's base URL (Mitto-style reports go to `{engine_url}/v1/webhooks/mitto/{account_id}`).
    pub engine_url: String,
    /// The engine's id of its account.
    pub account_id: String,
    /// The API key (or account SID) the engine sends.
    pub key: String,
    /// The webhook token (or auth token).
    pub secret: String,
    /// The seed of the provider's draws.
    pub seed: u64,
}

/// Refuses anything but a loopback address: live mode never leaves the machine.
pub fn loopback(bind: &str) -> Result<SocketAddr, String> {
    let address: SocketAddr = bind.parse().map_err(|_| format!("`{bind}` is not an address like 127.0.0.1:8091"))?;
    if address.ip().is_loopback() {
        Ok(address)
    } else {
        Err(format!("`{bind}` is not a loopback address; smsim provider serves on 127.0.0.1 or ::1 only"))
    }
}

/// The behaviour `options` asks for.
pub fn behaviour(options: &ProviderOptions) -> Result<Behaviour, LiveError> {
    match &options.behaviour {
        Some(path) => {
            let scenario = Scenario::load(path)
                .map_err(|e| LiveError::Scenario { path: path.display().to_string(), message: e.to_string() })?;
            Ok(live_behaviour(&scenario))
        }
        None => {
            let defaults: Scenario = toml::from_str("").expect("every scenario field has a default");
            Ok(live_behaviour(&defaults))
        }
    }
}

/// Binds and serves until the future is dropped (the caller stops it on Ctrl-C).
pub async fn serve(options: ProviderOptions) -> Result<(), LiveError> {
    let behaviour = behaviour(&options)?;
    let listener = tokio::net::TcpListener::bind(options.bind)
        .await
        .map_err(|source| LiveError::Io { what: format!("binding {}", options.bind), source })?;
    let binding = AccountBinding { engine_id: options.account_id, key: options.key, secret: options.secret };
    let provider = Provider::new(behaviour, vec![binding], options.seed, smsim_sim::clock::SimClock);
    provider.limit_concurrent_reports(64);
    serve_live(provider, listener, &options.engine_url, None)
        .await
        .map_err(|source| LiveError::Io { what: "serving the provider".into(), source })
}
