//! `smsim bench`: the performance report, every figure beside its target, in one run.
//!
//! 1. Simulation speed: seeds per second and simulated ÷ wall time for the happy path and
//!    for swarm chaos, and the happy path's campaign run in real time on tokio sockets
//!    (the engine on SQLite against the simulated provider on loopback), side by side.
//! 2. Sweep scaling: happy-path seeds per second with one and with two jobs.
//! 3. Engine throughput in real mode: messages per second from enqueue to accepted and
//!    delivery reports per second ingested, on SQLite with the provider on loopback,
//!    beside the raw SQLite single-row update rate measured in the same run.
//! 4. Memory: the peak resident set of simulating a 1 000 000-contact campaign, measured
//!    in a child process of this binary so that the peak is that simulation's own.
//!
//! These are measurements, not tests: nothing here decides an outcome, so reading the
//! wall clock is the point (each such function says so in its `allow`).

use crate::outln;
use crate::serve::{Database, Engine, Role, ServeOptions};
use serde::Serialize;
use serde_json::json;
use smsim_core::adapter::http::HyperClient;
use smsim_core::adapter::{capabilities_of, HttpClient, HttpRequest};
use smsim_core::domain::{CampaignStatus, ProviderKind};
use smsim_core::service::EngineConfig;
use smsim_core::store::{sha256_hex, NewCampaign, NewContact, NewTenant, NewTrafficAccount};
use smsim_core::{CampaignId, Credits, TenantId, Timestamp};
use smsim_sim::clock::SimClock;
use smsim_sim::provider::{AccountBinding, Behaviour, Provider};
use smsim_sim::run::{run, RunOptions};
use smsim_sim::scenario::Scenario;
use smsim_sim::sweep::sweep;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Options of `smsim bench`.
#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    /// Also write every figure as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The directory holding happy-path.toml, swarm-chaos.toml and large/.
    #[arg(long, default_value = "scenarios")]
    pub scenarios: PathBuf,
    /// Happy-path seeds per speed measurement.
    #[arg(long, default_value_t = 400)]
    pub happy_seeds: u64,
    /// Swarm-chaos seeds.
    #[arg(long, default_value_t = 40)]
    pub swarm_seeds: u64,
    /// Messages in the real-mode throughput run.
    #[arg(long, default_value_t = 20_000)]
    pub real_messages: u32,
    /// The scenario whose peak memory is measured (relative to --scenarios).
    #[arg(long, default_value = "large/million-contacts.toml")]
    pub memory_scenario: PathBuf,
    /// Skip the memory section (its 1 000 000-contact simulation takes about a minute).
    #[arg(long)]
    pub skip_memory: bool,
    /// Exit 0 even when a target is missed (by default a missed target exits 1, so CI
    /// and scripts can rely on the exit code).
    #[arg(long)]
    pub no_fail: bool,
}

/// A figure and its target; `higher` says which side of the target passes.
#[derive(Clone, Debug, Serialize)]
pub struct Figure {
    /// What is measured.
    pub name: String,
    /// The measured value.
    pub value: f64,
    /// Its unit.
    pub unit: String,
    /// The target, if there is one.
    pub target: Option<f64>,
    /// Whether the value must be at least (true) or at most (false) the target.
    pub higher_is_better: bool,
    /// Whether the target is met (true without a target).
    pub met: bool,
    /// How it was measured.
    pub detail: String,
}

impl Figure {
    fn new(name: &str, value: f64, unit: &str, target: Option<f64>, higher_is_better: bool, detail: String) -> Figure {
        let met = target.is_none_or(|target| if higher_is_better { value >= target } else { value <= target });
        Figure { name: name.to_owned(), value, unit: unit.to_owned(), target, higher_is_better, met, detail }
    }
}

impl Figure {
    /// A figure without a target.
    pub(crate) fn new_public(name: &str, value: f64, unit: &str, detail: String) -> Figure {
        Figure::new(name, value, unit, None, true, detail)
    }
}

/// The whole report: sections of figures, in order.
#[derive(Debug, Default, Serialize)]
pub struct BenchReport {
    /// Logical CPUs on this machine.
    pub cpus: usize,
    /// Sections by title, each a list of figures.
    pub sections: Vec<(String, Vec<Figure>)>,
}

impl BenchReport {
    /// The names of the figures whose target was missed.
    pub fn missed(&self) -> Vec<&str> {
        self.sections.iter().flat_map(|(_, figures)| figures).filter(|f| !f.met).map(|f| f.name.as_str()).collect()
    }
}

/// Seeds per second and simulated ÷ wall time of one sweep.
#[derive(Clone, Copy, Debug)]
struct Speed {
    seeds: u64,
    wall_s: f64,
    simulated_s: f64,
}

impl Speed {
    fn seeds_per_s(&self) -> f64 {
        self.seeds as f64 / self.wall_s.max(1e-9)
    }

    fn sim_per_wall(&self) -> f64 {
        self.simulated_s / self.wall_s.max(1e-9)
    }

    fn detail(&self, jobs: usize) -> String {
        format!(
            "{} seeds in {:.2} s with --jobs {jobs}, {:.0} simulated s in all",
            self.seeds, self.wall_s, self.simulated_s
        )
    }
}

// Wall time is what is measured here; no outcome depends on it.
#[allow(clippy::disallowed_methods)]
fn sweep_speed(scenario: &Scenario, path: &Path, seeds: u64, jobs: usize) -> anyhow::Result<Speed> {
    let seeds: Vec<u64> = (1..=seeds).collect();
    let started = std::time::Instant::now();
    let report = sweep(scenario, &path.display().to_string(), &seeds, jobs, true, &|_| {})?;
    let wall_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(report.failures.is_empty(), "{} failed while being timed", scenario.name);
    Ok(Speed { seeds: report.runs, wall_s, simulated_s: report.simulated_ms as f64 / 1_000.0 })
}

/// Runs every section and prints each as it completes; [`BenchReport::missed`] says
/// which targets were missed.
pub fn bench(args: &BenchArgs) -> anyhow::Result<BenchReport> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let mut report = BenchReport { cpus, sections: Vec::new() };
    outln!("smsim bench ({cpus} CPUs; release build expected)\n");
    let happy_path = args.scenarios.join("happy-path.toml");
    let happy = Scenario::load(&happy_path)?;
    let swarm_path = args.scenarios.join("swarm-chaos.toml");
    let swarm = Scenario::load(&swarm_path)?;
    // One seed first: process-wide one-time costs (the phone-number metadata) are not
    // per-seed costs.
    run(&happy, 1, &RunOptions::default())?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;

    let happy_one = sweep_speed(&happy, &happy_path, args.happy_seeds, 1)?;
    let swarm_one = sweep_speed(&swarm, &swarm_path, args.swarm_seeds, 1)?;
    let section = simulation_speed(&happy, happy_one, swarm_one, &runtime)?;
    print_section("1. Simulation speed", &section);
    report.sections.push(("simulation speed".into(), section));

    let happy_two = sweep_speed(&happy, &happy_path, args.happy_seeds, 2)?;
    let section = sweep_scaling(happy_one, happy_two, cpus);
    print_section("2. Sweep scaling", &section);
    report.sections.push(("sweep scaling".into(), section));

    let section = real_mode(args.real_messages, &runtime)?;
    print_section("3. Engine throughput in real mode (SQLite, loopback)", &section);
    report.sections.push(("real mode throughput".into(), section));

    if !args.skip_memory {
        let section = memory(&args.scenarios.join(&args.memory_scenario))?;
        print_section("4. Memory", &section);
        report.sections.push(("memory".into(), section));
    }
    let missed = report.missed();
    outln!(
        "{} of the targets missed{}",
        missed.len(),
        if missed.is_empty() { String::new() } else { format!(": {}", missed.join("; ")) }
    );
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        outln!("figures written to {}", path.display());
    }
    Ok(report)
}

/// Section 1: seeds/s and simulated ÷ wall of the happy path and swarm chaos, and the
/// happy path in real time against its simulation.
fn simulation_speed(
    happy: &Scenario,
    happy_one: Speed,
    swarm_one: Speed,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Vec<Figure>> {
    let real = runtime.block_on(real_time_campaign(happy))?;
    let simulated = run(happy, 1, &RunOptions::default())?;
    let per_seed_s = happy_one.wall_s / happy_one.seeds as f64;
    Ok(vec![
        Figure::new("happy path, seeds/s (one core)", happy_one.seeds_per_s(), "seeds/s", Some(100.0), true, happy_one.detail(1)),
        Figure::new("happy path, simulated ÷ wall", happy_one.sim_per_wall(), "×", Some(1_000.0), true, happy_one.detail(1)),
        Figure::new("swarm chaos, seeds/s (one core)", swarm_one.seeds_per_s(), "seeds/s", None, true, swarm_one.detail(1)),
        Figure::new("swarm chaos, simulated ÷ wall", swarm_one.sim_per_wall(), "×", Some(100.0), true, swarm_one.detail(1)),
        Figure::new(
            "happy path in real time (tokio sockets, SQLite), wall s",
            real.wall_s,
            "s",
            None,
            false,
            format!(
                "{} messages from enqueue until every report was applied; the simulation covers {:.1} simulated s of the same scenario",
                real.messages,
                simulated.simulated_ms as f64 / 1_000.0
            ),
        ),
        Figure::new(
            "happy path, real-time wall ÷ simulated wall",
            real.wall_s / per_seed_s.max(1e-9),
            "×",
            None,
            true,
            format!("{:.2} s in real time against {:.1} ms per simulated seed", real.wall_s, per_seed_s * 1_000.0),
        ),
    ])
}

/// Section 2: how sweeps scale from one job to two.
fn sweep_scaling(happy_one: Speed, happy_two: Speed, cpus: usize) -> Vec<Figure> {
    vec![
        Figure::new("happy path, --jobs 1", happy_one.seeds_per_s(), "seeds/s", None, true, happy_one.detail(1)),
        Figure::new("happy path, --jobs 2", happy_two.seeds_per_s(), "seeds/s", None, true, happy_two.detail(2)),
        Figure::new(
            "--jobs 2 ÷ --jobs 1",
            happy_two.seeds_per_s() / happy_one.seeds_per_s().max(1e-9),
            "×",
            Some(1.8),
            true,
            format!("{cpus} CPUs, shared with whatever else the machine runs"),
        ),
    ]
}

/// Section 3: the engine's throughput on SQLite and loopback, against raw SQLite.
fn real_mode(messages: u32, runtime: &tokio::runtime::Runtime) -> anyhow::Result<Vec<Figure>> {
    let throughput = runtime.block_on(real_mode_throughput(messages, Reports::OneArrayPerRequest))?;
    let singles = runtime.block_on(real_mode_throughput(messages / 4, Reports::OnePerWebhook))?;
    let raw = raw_sqlite_update_rate(messages)?;
    Ok(vec![
        Figure::new(
            "messages/s, enqueue to accepted",
            throughput.accepted_per_s,
            "msgs/s",
            Some(20_000.0),
            true,
            format!("{} messages, {} workers, provider on loopback", throughput.messages, throughput.workers),
        ),
        Figure::new(
            "delivery reports/s ingested",
            throughput.reports_per_s,
            "reports/s",
            Some(20_000.0),
            true,
            format!("{} reports released at once, at most {REPORT_SLOTS} in flight", throughput.messages),
        ),
        Figure::new(
            "delivery reports/s, one report per webhook",
            singles.reports_per_s,
            "reports/s",
            None,
            true,
            format!(
                "{} reports, each its own webhook and store transaction (Twilio-style callbacks)",
                singles.messages
            ),
        ),
        Figure::new(
            "raw SQLite single-row updates/s",
            raw,
            "updates/s",
            None,
            true,
            format!("{} autocommitted UPDATEs by primary key, WAL, synchronous=NORMAL", messages),
        ),
        Figure::new(
            "accepted ÷ raw update rate",
            throughput.accepted_per_s / raw.max(1e-9),
            "",
            Some(0.25),
            true,
            "each acceptance is a share of one batch transaction".into(),
        ),
        Figure::new(
            "reports ÷ raw update rate",
            throughput.reports_per_s / raw.max(1e-9),
            "",
            Some(0.25),
            true,
            "each bulk request's reports arrive as one array webhook, applied in one store transaction".into(),
        ),
    ])
}

/// Section 4: the peak memory of simulating the memory scenario, in a child process.
fn memory(path: &Path) -> anyhow::Result<Vec<Figure>> {
    let peak = peak_rss_of_child(path)?;
    Ok(vec![Figure::new(
        "peak RSS, simulating a 1 000 000-contact campaign",
        peak.peak_rss_kib as f64 / (1024.0 * 1024.0),
        "GiB",
        Some(2.0),
        false,
        format!(
            "{}: {} messages, {} in {:.0} s wall ({:.0} simulated s)",
            path.display(),
            peak.messages,
            if peak.passed { "passed" } else { "FAILED" },
            peak.wall_s,
            peak.simulated_ms as f64 / 1_000.0
        ),
    )])
}

fn print_section(title: &str, figures: &[Figure]) {
    outln!("{title}");
    for figure in figures {
        let target = match figure.target {
            Some(target) => format!(
                "target {} {}  {}",
                if figure.higher_is_better { "≥" } else { "≤" },
                number(target),
                if figure.met { "met" } else { "MISSED" }
            ),
            None => String::new(),
        };
        outln!("  {:<58} {:>12} {:<9} {target}", figure.name, number(figure.value), figure.unit);
        outln!("      {}", figure.detail);
    }
    outln!();
}

fn number(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// Reports in flight at once from the provider on real sockets.
pub const REPORT_SLOTS: usize = 64;

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> anyhow::Result<Scratch> {
        let path = std::env::temp_dir().join(format!("smsim-bench-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The engine in serve mode on SQLite and the simulated provider, both on loopback, with
/// one tenant and one Mitto-style account wired between them.
struct Loopback {
    engine: Engine,
    provider: Arc<Provider>,
    provider_task: tokio::task::JoinHandle<()>,
    api_url: String,
    api_key: String,
    tenant: TenantId,
    account: String,
    _scratch: Scratch,
}

impl Loopback {
    async fn start(
        label: &str,
        engine: EngineConfig,
        workers: u32,
        behaviour: Behaviour,
        credits: i64,
    ) -> anyhow::Result<Loopback> {
        let scratch = Scratch::new(label)?;
        let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let api_url = format!("http://{}", api_listener.local_addr()?);
        let provider_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let provider_url = format!("http://{}", provider_listener.local_addr()?);
        let options = ServeOptions {
            db: Database::Sqlite(scratch.0.join("smsim.db")),
            roles: Role::ALL.to_vec(),
            workers,
            admin_token: None,
            public_url: api_url.clone(),
            provider_timeout: Duration::from_secs(10),
            engine,
        };
        let engine = Engine::start(options, Some(api_listener)).await?;
        let api_key = "sk_bench".to_owned();
        let tenant = engine.store.create_tenant(
            NewTenant {
                name: "acme".into(),
                api_key_hash: sha256_hex(api_key.as_bytes()),
                credits: Credits(credits),
                rate_limit_per_s: None,
            },
            Timestamp(0),
        )?;
        let (key, secret) = ("key-bench".to_owned(), "hook-bench".to_owned());
        let credentials = BTreeMap::from([
            ("api_key".to_owned(), key.clone()),
            ("traffic_account_id".to_owned(), "mitto-bench".to_owned()),
            ("webhook_token".to_owned(), secret.clone()),
        ]);
        let account = engine.store.create_traffic_account(NewTrafficAccount {
            owner: None,
            name: "mitto-bench".into(),
            provider: ProviderKind::Mitto,
            base_url: provider_url,
            credentials,
            sender: "SMSIM".into(),
            rate_limit_per_s: None,
            price_per_segment: Credits(55),
            idempotent_submissions: capabilities_of(ProviderKind::Mitto).idempotency_keys,
        })?;
        let binding = AccountBinding { engine_id: account.id.to_string(), key, secret };
        let provider = Provider::new(behaviour, vec![binding], 1, SimClock);
        provider.limit_concurrent_reports(REPORT_SLOTS);
        let provider_task = {
            let (provider, engine_url) = (provider.clone(), api_url.clone());
            tokio::spawn(async move {
                if let Err(error) = smsim_sim::provider::serve_tcp(provider, provider_listener, &engine_url).await {
                    tracing::error!(%error, "the loopback provider stopped");
                }
            })
        };
        Ok(Loopback {
            engine,
            provider,
            provider_task,
            api_url,
            api_key,
            tenant: tenant.id,
            account: account.id.to_string(),
            _scratch: scratch,
        })
    }

    fn stop(self) {
        self.provider_task.abort();
        self.engine.stop();
    }

    async fn call(
        &self,
        client: &dyn HttpClient,
        path: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let request = HttpRequest {
            method: http::Method::POST,
            url: format!("{}{path}", self.api_url),
            headers: BTreeMap::from([
                ("authorization".to_owned(), format!("Bearer {}", self.api_key)),
                ("content-type".to_owned(), "application/json".to_owned()),
            ]),
            body: bytes::Bytes::from(body.to_string()),
        };
        let response = client.send(request).await?;
        anyhow::ensure!(
            (200..300).contains(&response.status),
            "POST {path} answered {}: {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        );
        Ok(serde_json::from_slice(&response.body)?)
    }

    fn campaign_draft(&self, template: &str) -> anyhow::Result<CampaignId> {
        let campaign = self.engine.store.create_campaign(
            self.tenant,
            NewCampaign {
                name: "bench".into(),
                body_template: template.into(),
                sender: None,
                audience: smsim_core::domain::Audience::All,
                traffic_account: self.account.parse()?,
                schedule_at: None,
            },
            Timestamp(0),
        )?;
        Ok(campaign.id)
    }
}

fn contact_rows(count: u32) -> Vec<NewContact> {
    (0..count)
        .map(|n| NewContact {
            phone: format!("+30691{n:07}"),
            attributes: BTreeMap::from([("first_name".to_owned(), "Maria".to_owned())]),
            opted_out: false,
        })
        .collect()
}

/// What the real-time happy path took.
struct RealTime {
    wall_s: f64,
    messages: u32,
}

/// The scenario's campaign on real sockets and SQLite, in real time: contacts imported
/// and the campaign created and enqueued over HTTP, then timed from the enqueue until the
/// campaign completed and the provider had no report left to send.
// Wall time is what is measured here; no outcome depends on it.
#[allow(clippy::disallowed_methods)]
async fn real_time_campaign(scenario: &Scenario) -> anyhow::Result<RealTime> {
    let tenant = scenario.tenants.first().ok_or_else(|| anyhow::anyhow!("{} has no tenant", scenario.name))?;
    let campaign = scenario.campaigns.first().ok_or_else(|| anyhow::anyhow!("{} has no campaign", scenario.name))?;
    let (engine, behaviour) =
        (smsim_sim::world::engine_config(scenario), smsim_sim::world::provider_behaviour(scenario));
    let loopback = Loopback::start("real-time", engine, scenario.engine.workers, behaviour, tenant.credits).await?;
    let client = HyperClient::tcp(Duration::from_secs(10));
    let rows: Vec<serde_json::Value> = contact_rows(tenant.contacts.count)
        .into_iter()
        .map(|row| json!({"phone": row.phone, "attributes": row.attributes, "opted_out": row.opted_out}))
        .collect();
    for chunk in rows.chunks(5_000) {
        loopback.call(&client, "/v1/contacts", json!({ "contacts": chunk })).await?;
    }
    let template = format!("[{}] {}", campaign.name, campaign.template);
    let body = json!({"name": campaign.name, "body_template": template, "traffic_account": loopback.account});
    let created = loopback.call(&client, "/v1/campaigns", body).await?;
    let id: CampaignId =
        created["id"].as_str().ok_or_else(|| anyhow::anyhow!("no campaign id in {created}"))?.parse()?;
    let started = std::time::Instant::now();
    loopback.call(&client, &format!("/v1/campaigns/{id}/enqueue"), json!({})).await?;
    let deadline = Duration::from_secs(120);
    let messages = loop {
        let state = loopback.engine.store.campaign(loopback.tenant, id)?;
        let pending_reports = loopback.provider.truth.lock().expect("provider poisoned").reports_pending;
        if state.status == CampaignStatus::Completed && pending_reports == 0 {
            break state.counts.total();
        }
        anyhow::ensure!(started.elapsed() < deadline, "the real-time campaign did not finish in {deadline:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let wall_s = started.elapsed().as_secs_f64();
    loopback.stop();
    Ok(RealTime { wall_s, messages })
}

/// Real-mode throughput figures.
struct Throughput {
    messages: u32,
    workers: u32,
    accepted_per_s: f64,
    reports_per_s: f64,
}

/// How the provider sends delivery reports in the real-mode measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reports {
    /// Each bulk request's reports as one array webhook, as Mitto may send them.
    OneArrayPerRequest,
    /// Each report as its own webhook.
    OnePerWebhook,
}

/// Serve mode's defaults (two workers, batches of 200) on SQLite against a provider
/// that answers at once: `messages` messages timed from the enqueue request until every
/// one is accepted, with the reports held; then the reports released and timed until
/// every one is applied.
// Wall time is what is measured here; no outcome depends on it.
#[allow(clippy::disallowed_methods)]
async fn real_mode_throughput(messages: u32, reports: Reports) -> anyhow::Result<Throughput> {
    let behaviour =
        Behaviour { latency_ms: [0, 0], delivery_rate: 1.0, report_delay_ms: [0, 0], ..Behaviour::default() };
    // A short idle poll, so that a worker asleep when the enqueue lands is not what is timed.
    let engine = EngineConfig { idle_poll_ms: 20, ..EngineConfig::default() };
    let workers = 2;
    let loopback = Loopback::start("throughput", engine, workers, behaviour, i64::from(messages) * 100).await?;
    loopback.provider.hold_reports(true);
    loopback.provider.batch_mitto_reports(reports == Reports::OneArrayPerRequest);
    for chunk in contact_rows(messages).chunks(10_000) {
        loopback.engine.store.import_contacts(loopback.tenant, chunk.to_vec(), Timestamp(0))?;
    }
    let id = loopback.campaign_draft("Hello {{first_name|there}}, our spring sale starts today.")?;
    let client = HyperClient::tcp(Duration::from_secs(60));
    let deadline = Duration::from_secs(600);
    let started = std::time::Instant::now();
    loopback.call(&client, &format!("/v1/campaigns/{id}/enqueue"), json!({})).await?;
    loop {
        if loopback.engine.store.campaign(loopback.tenant, id)?.counts.sent() >= messages {
            break;
        }
        anyhow::ensure!(started.elapsed() < deadline, "{messages} messages were not accepted in {deadline:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let accepted_s = started.elapsed().as_secs_f64();
    let released = std::time::Instant::now();
    loopback.provider.hold_reports(false);
    loop {
        if loopback.engine.store.campaign(loopback.tenant, id)?.counts.delivered >= messages {
            break;
        }
        anyhow::ensure!(released.elapsed() < deadline, "{messages} reports were not applied in {deadline:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let reports_s = released.elapsed().as_secs_f64();
    loopback.stop();
    Ok(Throughput {
        messages,
        workers,
        accepted_per_s: f64::from(messages) / accepted_s.max(1e-9),
        reports_per_s: f64::from(messages) / reports_s.max(1e-9),
    })
}

/// Single-row updates per second on an SQLite file opened as the store opens its own
/// (WAL, synchronous=NORMAL), each update its own transaction, as each report is.
// Wall time is what is measured here; no outcome depends on it.
#[allow(clippy::disallowed_methods)]
fn raw_sqlite_update_rate(rows: u32) -> anyhow::Result<f64> {
    let scratch = Scratch::new("raw-sqlite")?;
    let mut connection = rusqlite::Connection::open(scratch.0.join("raw.db"))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.execute_batch(
        "CREATE TABLE message (id INTEGER PRIMARY KEY, status TEXT NOT NULL, updated_at INTEGER NOT NULL)",
    )?;
    let tx = connection.transaction()?;
    for id in 0..rows {
        tx.execute("INSERT INTO message (id, status, updated_at) VALUES (?1, 'accepted', 0)", [id])?;
    }
    tx.commit()?;
    let started = std::time::Instant::now();
    let mut update = connection.prepare("UPDATE message SET status = 'delivered', updated_at = ?2 WHERE id = ?1")?;
    for id in 0..rows {
        update.execute([u64::from(id), u64::from(id) + 1])?;
    }
    Ok(f64::from(rows) / started.elapsed().as_secs_f64().max(1e-9))
}

/// What the memory child reports.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct PeakRss {
    /// VmHWM of the child, in KiB.
    pub peak_rss_kib: u64,
    /// Whether the run kept every invariant.
    pub passed: bool,
    /// Messages created.
    pub messages: u64,
    /// Simulated time covered.
    pub simulated_ms: u64,
    /// Wall time of the run.
    pub wall_s: f64,
}

fn peak_rss_of_child(scenario: &Path) -> anyhow::Result<PeakRss> {
    let output = std::process::Command::new(std::env::current_exe()?)
        .arg("bench-peak-rss")
        .arg(scenario)
        .stderr(std::process::Stdio::inherit())
        .output()?;
    anyhow::ensure!(output.status.success(), "the memory child failed: {}", String::from_utf8_lossy(&output.stdout));
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// The hidden `smsim bench-peak-rss SCENARIO`: simulates seed 1 of the scenario and prints
/// its own peak resident set (VmHWM) with the outcome, as JSON.
// Wall time is what is measured here; no outcome depends on it.
#[allow(clippy::disallowed_methods)]
pub fn peak_rss_child(scenario: &Path) -> anyhow::Result<PeakRss> {
    let loaded = Scenario::load(scenario)?;
    let started = std::time::Instant::now();
    let report = run(&loaded, 1, &RunOptions::default())?;
    let wall_s = started.elapsed().as_secs_f64();
    let status = std::fs::read_to_string("/proc/self/status")?;
    let peak_rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmHWM in /proc/self/status"))?;
    Ok(PeakRss {
        peak_rss_kib,
        passed: report.passed(),
        messages: report.campaigns.iter().map(|c| u64::from(c.total)).sum(),
        simulated_ms: report.simulated_ms,
        wall_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `smsim bench` exits 1 when this is not empty: a figure below (or, for memory, above)
    /// its target is listed, one without a target never is.
    #[test]
    fn a_missed_target_is_listed_and_a_figure_without_one_never_is() {
        let report = BenchReport {
            cpus: 1,
            sections: vec![(
                "speed".into(),
                vec![
                    Figure::new("fast enough", 120.0, "seeds/s", Some(100.0), true, String::new()),
                    Figure::new("too slow", 80.0, "seeds/s", Some(100.0), true, String::new()),
                    Figure::new("too big", 2.5, "GiB", Some(2.0), false, String::new()),
                    Figure::new("just a figure", 0.0, "s", None, true, String::new()),
                ],
            )],
        };
        assert_eq!(report.missed(), ["too slow", "too big"]);
    }
}
