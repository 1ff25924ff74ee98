//! The world: a scenario and a seed turned into turmoil hosts, a store, a provider, a
//! driver and a fault plan.
//!
//! Hosts: `api` (the engine's HTTP API, webhooks and maintenance), `worker-1..N`,
//! `provider` (the simulated provider) and the `driver` client. The store lives outside
//! the hosts, as a database would, so it survives their crashes. Every random choice
//! comes from a stream derived from the seed by name ([`derive_seed`]), so adding a draw
//! in one place does not shift the draws of another.

use crate::clock::{SimClock, EPOCH};
use crate::driver::{BadInputPlan, ContactRow, DriverCampaign, DriverLog, DriverPlan, DriverTenant, PlannedAction};
use crate::fault::{Fault, FaultRates};
use crate::faulty_store::FaultyStore;
use crate::net::{SimConnector, SimListener};
use crate::oracle::Limits;
use crate::provider::{AccountBinding, Behaviour, Provider};
use crate::scenario::{FaultEvent, Scenario, StoreKind};
use rand::{Rng, SeedableRng};
use rand_chacha::{ChaCha20Rng, ChaCha8Rng};
use serde::Serialize;
use sha2::{Digest, Sha256};
use smsim_core::adapter::http::HyperClient;
use smsim_core::api::ApiState;
use smsim_core::domain::ProviderKind;
use smsim_core::service::maintenance::Maintenance;
use smsim_core::service::worker::Worker;
use smsim_core::service::{AdapterFactory, Adapters, BuiltinAdapters, EngineConfig};
use smsim_core::store::memory::MemoryStore;
use smsim_core::store::{sha256_hex, NewTenant, NewTrafficAccount, Store};
use smsim_core::{Credits, TenantId};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The admin token inside simulations.
pub const ADMIN_TOKEN: &str = "sim-admin";

/// A seed for the stream called `label`, derived from the run's seed.
pub fn derive_seed(seed: u64, label: &str) -> u64 {
    let digest = Sha256::new().chain_update(seed.to_le_bytes()).chain_update(label.as_bytes()).finalize();
    u64::from_le_bytes(digest[..8].try_into().expect("a SHA-256 digest has 8 bytes"))
}

/// A fault at a fixed time, as planned for this seed.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum TimedFault {
    /// Crash a host, restart it later.
    Crash {
        /// Host.
        host: String,
        /// When (ms).
        at_ms: u64,
        /// Restart (ms).
        restart_at_ms: u64,
    },
    /// Cut a link.
    Partition {
        /// One end.
        a: String,
        /// Other end.
        b: String,
        /// From (ms).
        at_ms: u64,
        /// Until (ms).
        until_ms: u64,
    },
    /// Hold a link.
    Hold {
        /// One end.
        a: String,
        /// Other end.
        b: String,
        /// From (ms).
        at_ms: u64,
        /// Until (ms).
        until_ms: u64,
    },
    /// A provider outage.
    Outage {
        /// Status answered.
        status: u16,
        /// From (ms).
        at_ms: u64,
        /// Until (ms).
        until_ms: u64,
    },
}

/// The faults of one run: rates that hold during the fault phase and timed events.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FaultPlan {
    /// Rates.
    pub rates: FaultRates,
    /// Timed faults.
    pub events: Vec<TimedFault>,
}

/// Everything a run needs, built but not started.
pub struct World {
    /// The simulation.
    pub sim: turmoil::Sim<'static>,
    /// The store (read by the oracle without injected failures).
    pub store: Arc<dyn Store>,
    /// The store as the engine sees it.
    pub faulty_store: Arc<FaultyStore<dyn Store>>,
    /// The simulated provider.
    pub provider: Arc<Provider>,
    /// What the driver saw.
    pub driver: Arc<Mutex<DriverLog>>,
    /// The fault plan.
    pub plan: FaultPlan,
    /// Limits for the oracle.
    pub limits: Limits,
    /// What the judge is told of the run before it starts: tenants, accounts, prices,
    /// limits and forbidden destinations, as the scenario configured them.
    pub judge_setup: smsim_judge::Setup,
    /// Phones that must never receive a message.
    pub forbidden_destinations: BTreeSet<String>,
    /// When the fault phase ends (ms).
    pub heal_at_ms: u64,
    /// When the run ends (ms).
    pub end_ms: u64,
    /// Every host of the simulation.
    pub hosts: Vec<String>,
}

fn rate_from_swarm(rng: &mut ChaCha8Rng, upper: f64) -> f64 {
    if rng.random_bool(0.5) {
        rng.random_range(0.0..upper)
    } else {
        0.0
    }
}

/// The fault plan for `seed`: the scenario's own faults, plus, in swarm mode, a subset
/// of faults and rates drawn from the seed.
pub fn fault_plan(scenario: &Scenario, seed: u64) -> FaultPlan {
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, "faults"));
    let mut rates = scenario.faults.rates.clone();
    let ms = |seconds: f64| (seconds * 1_000.0) as u64;
    let mut events: Vec<TimedFault> = scenario
        .faults
        .events
        .iter()
        .map(|event| match event {
            FaultEvent::Crash { host, at_s, restart_after_s } => {
                TimedFault::Crash { host: host.clone(), at_ms: ms(*at_s), restart_at_ms: ms(at_s + restart_after_s) }
            }
            FaultEvent::Partition { a, b, at_s, for_s } => {
                TimedFault::Partition { a: a.clone(), b: b.clone(), at_ms: ms(*at_s), until_ms: ms(at_s + for_s) }
            }
            FaultEvent::Hold { a, b, at_s, for_s } => {
                TimedFault::Hold { a: a.clone(), b: b.clone(), at_ms: ms(*at_s), until_ms: ms(at_s + for_s) }
            }
            FaultEvent::ProviderOutage { at_s, for_s, status } => {
                TimedFault::Outage { status: *status, at_ms: ms(*at_s), until_ms: ms(at_s + for_s) }
            }
        })
        .collect();
    if scenario.faults.swarm {
        // One draw per fault, in `Fault::ALL` order (the order every seed's outcome
        // depends on), whether or not the scenario sets that rate itself.
        let mut swarm = FaultRates::default();
        for &fault in Fault::ALL {
            *swarm.get_mut(fault) = rate_from_swarm(&mut rng, fault.swarm_upper());
        }
        rates = rates.or_else(&swarm);
        let phase_ms = scenario.duration_s * 1_000;
        let hosts: Vec<String> =
            (1..=scenario.engine.workers).map(|n| format!("worker-{n}")).chain(["api".to_owned()]).collect();
        for _ in 0..rng.random_range(0..=2u32) {
            let host = hosts[rng.random_range(0..hosts.len())].clone();
            let at_ms = rng.random_range(0..phase_ms);
            events.push(TimedFault::Crash { host, at_ms, restart_at_ms: at_ms + rng.random_range(500..5_000) });
        }
        if rng.random_bool(0.5) {
            let worker = format!("worker-{}", rng.random_range(1..=scenario.engine.workers));
            let at_ms = rng.random_range(0..phase_ms);
            events.push(TimedFault::Partition {
                a: worker,
                b: "provider".into(),
                at_ms,
                until_ms: at_ms + rng.random_range(1_000..10_000),
            });
        }
        if rng.random_bool(0.5) {
            let at_ms = rng.random_range(0..phase_ms);
            events.push(TimedFault::Hold {
                a: "provider".into(),
                b: "api".into(),
                at_ms,
                until_ms: at_ms + rng.random_range(1_000..8_000),
            });
        }
    }
    FaultPlan { rates, events }
}

/// A tenant's generated contacts: rows to import and the phones that must never be sent to.
fn contacts(
    tenant_index: usize,
    section: &crate::scenario::ContactsSection,
    rng: &mut ChaCha8Rng,
) -> (Vec<ContactRow>, BTreeSet<String>) {
    let mut rows = Vec::with_capacity(section.count as usize);
    let mut forbidden = BTreeSet::new();
    for n in 0..section.count {
        let valid = format!("+30691{:07}", tenant_index as u32 * 1_000_000 + n);
        let invalid = rng.random_bool(section.invalid_share);
        let phone = if invalid { format!("+3069{n}") } else { valid.clone() };
        let opted_out = rng.random_bool(section.opted_out_share);
        let name = if rng.random_bool(section.ucs2_name_share) { "Μαρία" } else { "Maria" };
        if invalid || opted_out {
            forbidden.insert(valid);
        }
        rows.push(ContactRow { phone, first_name: name, opted_out });
    }
    (rows, forbidden)
}

/// The engine settings a scenario runs with (the webhook base URL aside, which depends
/// on where the engine listens).
pub fn engine_config(scenario: &Scenario) -> EngineConfig {
    EngineConfig {
        lease_ms: scenario.engine.lease_ms,
        claim_batch: scenario.engine.claim_batch,
        idle_poll_ms: 250,
        maintenance_interval_ms: 1_000,
        unknown_settle_after_ms: scenario.engine.unknown_settle_after_ms,
        lookup_grace_ms: scenario.engine.lookup_grace_ms,
        rate_burst: scenario.engine.rate_burst,
        ..EngineConfig::default()
    }
}

/// Builds the world for `scenario` and `seed`, with this crate's adapters.
pub fn build(scenario: &Scenario, seed: u64) -> anyhow::Result<World> {
    build_with(scenario, seed, Arc::new(BuiltinAdapters))
}

/// Builds the world for `scenario` and `seed`, with the engine's adapters made by `factory`
/// (the certification kit's system arm puts the adapter under test here).
pub fn build_with(scenario: &Scenario, seed: u64, factory: Arc<dyn AdapterFactory>) -> anyhow::Result<World> {
    let plan = fault_plan(scenario, seed);
    let heal_at_ms = scenario.duration_s * 1_000;
    let end_ms = heal_at_ms + scenario.heal_s * 1_000;
    let store: Arc<dyn Store> = match scenario.engine.store {
        StoreKind::Memory => Arc::new(MemoryStore::new()),
        #[cfg(feature = "sqlite")]
        StoreKind::Sqlite => Arc::new(smsim_core::store::sqlite::SqliteStore::open_in_memory()?),
        #[cfg(not(feature = "sqlite"))]
        StoreKind::Sqlite => {
            anyhow::bail!("[engine] store = \"sqlite\": this build has no SQLite store (smsim-sim's `sqlite` feature)")
        }
    };
    let faulty_store =
        Arc::new(FaultyStore::new(store.clone(), plan.rates.store_transient, derive_seed(seed, "store")));

    // Tenants and accounts are configured before the simulation starts, as an operator would.
    let limits = Limits { lease_grace_ms: 5_000 };
    // A submission claimed just before a cancel or pause may take one lease, and its
    // request the reaper's slack on the wire.
    // The retry policy the engine is configured with: the operator's knowledge.
    let retry = engine_config(scenario).retry;
    let mut judge_setup = smsim_judge::Setup {
        halt_grace_ms: scenario.engine.lease_ms + limits.lease_grace_ms,
        journal: true,
        // Held links and partitions release bursts the engine did not send: the rate is
        // measured where the engine decides it, at its claims.
        rate_at_provider: None,
        rate_strict: scenario.engine.rate_burst == smsim_core::domain::rate::Burst::Strict,
        retry: Some(smsim_judge::RetrySetup {
            base_delay_ms: retry.base_delay_ms,
            multiplier: retry.multiplier,
            max_attempts: retry.max_attempts,
            max_delay_ms: retry.max_delay_ms,
            jitter_percent: retry.jitter_percent,
        }),
        ..Default::default()
    };
    let CreatedTenants { ids: tenant_ids, driver: driver_tenants, forbidden_destinations } =
        create_tenants(scenario, seed, store.as_ref(), &mut judge_setup)?;
    let (account_ids, bindings) = create_accounts(scenario, store.as_ref(), &tenant_ids, &mut judge_setup)?;
    judge_setup.forbidden_destinations = forbidden_destinations.clone();
    let behaviour = Behaviour { faults: plan.rates.clone(), ..Behaviour::from_scenario(scenario) };
    let provider = Provider::new(behaviour, bindings, derive_seed(seed, "provider"), SimClock);
    let driver_plan = driver_plan(scenario, seed, &tenant_ids, driver_tenants, &account_ids, end_ms);

    let mut sim = turmoil::Builder::new()
        .rng_seed(derive_seed(seed, "network"))
        .epoch(std::time::UNIX_EPOCH + Duration::from_millis(EPOCH.0))
        .tick_duration(Duration::from_millis(scenario.tick_ms))
        // A released hold delivers a burst of connection attempts at once; turmoil's
        // default backlog of 64 would turn that burst into a panic.
        .tcp_capacity(16_384)
        .simulation_duration(Duration::from_millis(end_ms + 60_000))
        .build();
    add_engine_hosts(&mut sim, scenario, seed, faulty_store.clone(), factory);
    {
        let provider = provider.clone();
        sim.host("provider", move || {
            let provider = provider.clone();
            async move {
                crate::provider::serve(provider).await?;
                Ok(())
            }
        });
    }
    let driver = Arc::new(Mutex::new(DriverLog::default()));
    {
        let driver = driver.clone();
        sim.client("driver", async move { crate::driver::run(driver_plan, driver).await });
    }
    let mut hosts: Vec<String> = ["api", "provider", "driver"].map(String::from).to_vec();
    hosts.extend((1..=scenario.engine.workers).map(|n| format!("worker-{n}")));
    Ok(World {
        sim,
        store,
        faulty_store,
        provider,
        driver,
        plan,
        limits,
        judge_setup,
        forbidden_destinations,
        heal_at_ms,
        end_ms,
        hosts,
    })
}

/// The scenario's tenants as created in the store.
struct CreatedTenants {
    /// Index in the scenario and id, by name.
    ids: BTreeMap<String, (usize, TenantId)>,
    /// What the driver needs of each: key and contact rows.
    driver: Vec<DriverTenant>,
    /// Phones that must never receive a message.
    forbidden_destinations: BTreeSet<String>,
}

/// Runs with at most this many contacts have every message held to its template; larger
/// ones leave `content` unchecked rather than hold every contact twice.
pub const CONTENT_CHECKED_UP_TO: u64 = 100_000;

/// Creates the scenario's tenants in `store` and draws their contacts; the judge is told
/// of each in `setup`.
fn create_tenants(
    scenario: &Scenario,
    seed: u64,
    store: &dyn Store,
    setup: &mut smsim_judge::Setup,
) -> anyhow::Result<CreatedTenants> {
    let mut created_tenants =
        CreatedTenants { ids: BTreeMap::new(), driver: Vec::new(), forbidden_destinations: BTreeSet::new() };
    let mut contact_rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, "contacts"));
    for (index, tenant) in scenario.tenants.iter().enumerate() {
        let api_key = format!("sk_sim_{index}_{:016x}", derive_seed(seed, &tenant.name));
        let created = store.create_tenant(
            NewTenant {
                name: tenant.name.clone(),
                api_key_hash: sha256_hex(api_key.as_bytes()),
                credits: Credits(tenant.credits),
                rate_limit_per_s: tenant.rate_limit_per_s,
            },
            EPOCH,
        )?;
        setup.tenants.push(smsim_judge::TenantSetup {
            tenant: created.id.to_string(),
            opening_credits: tenant.credits,
            rate_limit_per_s: tenant.rate_limit_per_s,
            numbers: BTreeSet::new(),
        });
        created_tenants.ids.insert(tenant.name.clone(), (index, created.id));
        let (rows, forbidden) = contacts(index, &tenant.contacts, &mut contact_rng);
        created_tenants.forbidden_destinations.extend(forbidden);
        setup.tenants[index].numbers = rows.iter().map(|row| row.phone.clone()).collect();
        // The judge renders templates itself for runs of a size it can hold (`content`).
        let all_contacts: u64 = scenario.tenants.iter().map(|t| u64::from(t.contacts.count)).sum();
        if all_contacts <= CONTENT_CHECKED_UP_TO {
            for row in rows.iter().filter(|row| !row.opted_out) {
                let attributes = [("first_name".to_owned(), row.first_name.to_owned())].into();
                setup.contacts.insert(row.phone.clone(), attributes);
            }
        }
        created_tenants.driver.push(DriverTenant {
            name: tenant.name.clone(),
            id: created.id,
            api_key,
            contacts: rows,
        });
    }
    Ok(created_tenants)
}

/// Creates the scenario's traffic accounts in `store`, with credentials the simulated
/// provider checks; returns the engine ids by name and the provider's bindings. The judge
/// is told of each in `setup`.
fn create_accounts(
    scenario: &Scenario,
    store: &dyn Store,
    tenant_ids: &BTreeMap<String, (usize, TenantId)>,
    setup: &mut smsim_judge::Setup,
) -> anyhow::Result<(BTreeMap<String, String>, Vec<AccountBinding>)> {
    let mut bindings = Vec::new();
    let mut account_ids = BTreeMap::new();
    for (index, account) in scenario.traffic_accounts.iter().enumerate() {
        let provider = account.provider;
        let SimulatedCredentials { key, secret, credentials } =
            simulated_credentials(provider, index, &account.name, account.messaging_service);
        let owner: Option<TenantId> = account.owner.as_ref().map(|owner| tenant_ids[owner].1);
        let created = store.create_traffic_account(NewTrafficAccount {
            owner,
            name: account.name.clone(),
            provider,
            base_url: "http://provider".into(),
            credentials,
            sender: "SMSIM".into(),
            rate_limit_per_s: account.rate_limit_per_s,
            price_per_segment: Credits(account.price_per_segment),
            idempotent_submissions: smsim_core::adapter::capabilities_of(provider).idempotency_keys,
        })?;
        setup.accounts.push(smsim_judge::AccountSetup {
            account: created.id.to_string(),
            wire: wire_of(provider),
            price_per_segment: account.price_per_segment,
            rate_limit_per_s: account.rate_limit_per_s,
        });
        account_ids.insert(account.name.clone(), created.id.to_string());
        bindings.push(AccountBinding { engine_id: created.id.to_string(), key, secret });
    }
    Ok((account_ids, bindings))
}

/// The wire format the judge reads a provider kind's reports in.
pub fn wire_of(kind: ProviderKind) -> smsim_judge::Wire {
    match kind {
        ProviderKind::Mitto => smsim_judge::Wire::Mitto,
        ProviderKind::Twilio => smsim_judge::Wire::Twilio,
        ProviderKind::Infobip => smsim_judge::Wire::Infobip,
    }
}

/// An account's credentials in a simulation: the key the simulated provider expects on
/// submissions, the secret that authenticates its webhooks, and the credentials the
/// engine's adapter is configured with. The one place the simulator knows each provider
/// kind's credential names.
struct SimulatedCredentials {
    key: String,
    secret: String,
    credentials: BTreeMap<String, String>,
}

fn simulated_credentials(
    kind: ProviderKind,
    index: usize,
    name: &str,
    messaging_service: bool,
) -> SimulatedCredentials {
    let (key, secret, named) = match kind {
        ProviderKind::Mitto => {
            let (key, secret) = (format!("key-{name}"), format!("hook-{name}"));
            let traffic_account_id = format!("mitto-{name}");
            let named = vec![
                ("api_key", key.clone()),
                ("traffic_account_id", traffic_account_id),
                ("webhook_token", secret.clone()),
            ];
            (key, secret, named)
        }
        ProviderKind::Twilio => {
            let (key, secret) = (format!("AC{index:032}"), format!("token-{name}"));
            let mut named = vec![("account_sid", key.clone()), ("auth_token", secret.clone())];
            if messaging_service {
                named.push(("messaging_service_sid", format!("MG{index:032}")));
            }
            (key, secret, named)
        }
        ProviderKind::Infobip => {
            let (key, secret) = (format!("app-{name}"), format!("hook-{name}"));
            let named = vec![("api_key", key.clone()), ("webhook_token", secret.clone())];
            (key, secret, named)
        }
    };
    let credentials = named.into_iter().map(|(name, value)| (name.to_owned(), value)).collect();
    SimulatedCredentials { key, secret, credentials }
}

/// What the driver does: the tenants' imports, the campaigns, the operator's actions in
/// time order.
fn driver_plan(
    scenario: &Scenario,
    seed: u64,
    tenant_ids: &BTreeMap<String, (usize, TenantId)>,
    tenants: Vec<DriverTenant>,
    account_ids: &BTreeMap<String, String>,
    end_ms: u64,
) -> DriverPlan {
    let mut action_rng = ChaCha8Rng::seed_from_u64(derive_seed(seed, "operator"));
    let ms = |seconds: f64| (seconds * 1_000.0) as u64;
    let campaigns = scenario
        .campaigns
        .iter()
        .map(|campaign| DriverCampaign {
            name: campaign.name.clone(),
            tenant: tenant_ids[&campaign.tenant].0,
            account: account_ids[&campaign.traffic_account].clone(),
            // The tag makes bodies unique per campaign, so the provider's ground truth can
            // tell one campaign's message to a contact from another's.
            template: format!("[{}] {}", campaign.name, campaign.template),
            enqueue_at_ms: ms(campaign.enqueue_at_s),
            schedule_at: campaign.schedule_in_s.map(|delay| EPOCH.plus_ms(ms(campaign.enqueue_at_s + delay)).0),
            private_account: scenario.traffic_accounts.iter().any(|account| {
                account.name == campaign.traffic_account && account.owner.as_ref() == Some(&campaign.tenant)
            }),
            double_click: campaign.double_click,
        })
        .collect();
    let mut actions: Vec<PlannedAction> = scenario
        .operator
        .iter()
        .map(|action| PlannedAction {
            at_ms: if action.random { action_rng.random_range(0..=ms(action.at_s)) } else { ms(action.at_s) },
            verb: action.action,
            campaign: action.campaign.clone(),
            tenant: action.tenant.as_ref().map(|name| tenant_ids[name].0),
            amount: action.amount,
        })
        .collect();
    actions.sort_by_key(|action| action.at_ms);
    let bad_input = scenario.bad_input.as_ref().map(|bad| BadInputPlan {
        at_ms: ms(bad.at_s),
        tenant: tenant_ids[&bad.tenant].0,
        account: scenario
            .traffic_accounts
            .iter()
            .find(|account| account.owner.is_none())
            .map(|account| account_ids[&account.name].clone())
            .expect("a scenario with bad input has a shared account"),
        credits: scenario.tenants.iter().find(|tenant| tenant.name == bad.tenant).map_or(0, |tenant| tenant.credits),
    });
    DriverPlan { tenants, campaigns, actions, admin_token: ADMIN_TOKEN.into(), end_ms, bad_input }
}

/// The engine's hosts: `api` (API, webhooks and maintenance) and `worker-1..N`, all on
/// `engine_store`.
fn add_engine_hosts(
    sim: &mut turmoil::Sim<'static>,
    scenario: &Scenario,
    seed: u64,
    engine_store: Arc<FaultyStore<dyn Store>>,
    factory: Arc<dyn AdapterFactory>,
) {
    let engine_store: Arc<dyn Store> = engine_store;
    let engine = EngineConfig { webhook_base_url: "http://api".into(), ..engine_config(scenario) };
    let adapters = {
        let factory = factory.clone();
        move || {
            let client = Arc::new(HyperClient::new(SimConnector, Duration::from_secs(5)));
            Arc::new(Adapters::new(factory.clone(), client, "http://api"))
        }
    };
    {
        let (store, engine) = (engine_store.clone(), engine.clone());
        let key_seed = derive_seed(seed, "api-keys");
        let adapters = adapters.clone();
        sim.host("api", move || {
            let (store, engine) = (store.clone(), engine.clone());
            let adapters = adapters();
            async move {
                tokio::spawn(Maintenance::new(store.clone(), Arc::new(SimClock), adapters.clone(), engine).run());
                let state = ApiState::new(
                    store,
                    Arc::new(SimClock),
                    adapters,
                    Some(ADMIN_TOKEN.into()),
                    "http://api",
                    ChaCha20Rng::seed_from_u64(key_seed),
                );
                smsim_core::api::serve(SimListener::bind(80).await?, Arc::new(state)).await?;
                Ok(())
            }
        });
    }
    for n in 1..=scenario.engine.workers {
        let (store, engine) = (engine_store.clone(), engine.clone());
        let name = format!("worker-{n}");
        let host = name.clone();
        let worker_seed = derive_seed(seed, &name);
        let adapters = adapters.clone();
        sim.host(host, move || {
            let worker =
                Worker::new(name.clone(), store.clone(), Arc::new(SimClock), adapters(), engine.clone(), worker_seed);
            async move {
                worker.run().await;
                Ok(())
            }
        });
    }
}
