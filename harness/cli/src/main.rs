//! The `smsim` command: a thin layer of argument parsing over the harness library.

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use rand::{RngCore, SeedableRng};
use smsim_cli::serve::{Database, Engine, Role, ServeOptions};
use smsim_cli::{out, outln};
use smsim_core::adapter::capabilities_of;
use smsim_core::domain::ProviderKind;
use smsim_core::service::EngineConfig;
use smsim_core::store::{sha256_hex, NewTenant, NewTrafficAccount, Store};
use smsim_core::{Credits, TenantId, Timestamp};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// smsim: a bulk-SMS campaign engine and the deterministic simulator that checks it.
#[derive(Parser)]
#[command(name = "smsim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the engine for real: HTTP API, workers and maintenance on SQLite or PostgreSQL.
    Serve(ServeArgs),
    /// Manage tenants in the database.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage provider (traffic) accounts in the database.
    #[command(subcommand)]
    Account(AccountCommand),
    /// List the evidence for unknown outcomes: per campaign and account the messages
    /// unknown or settled UNKNOWN_OUTCOME, and per account and status the reports parked
    /// for provider ids the engine never learned (as GET /v1/admin/reconciliation).
    Reconcile {
        #[command(flatten)]
        db: DbArg,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Simulate one scenario with one seed and check every invariant.
    Run(RunArgs),
    /// Rerun one seed byte for byte and print its trace hash; with `--expect-hash`, fail
    /// when the hash differs.
    Replay(ReplayArgs),
    /// Simulate many seeds of a scenario, or of every scenario in a directory.
    Sweep(SweepArgs),
    /// Shrink a failing seed's fault plan and write it to scenarios/regressions/.
    Shrink(ShrinkArgs),
    /// Certify a provider adapter clause by clause against stubbed providers.
    Certify(CertifyArgs),
    /// Serve the simulated provider on a loopback socket, its ground truth at /_smsim/truth.
    Provider(ProviderArgs),
    /// Run a scenario in real time against an engine's processes, with a seeded fault plan.
    Live(LiveArgs),
    /// Measure simulation speed, sweep scaling, real-mode throughput and memory against
    /// their targets.
    Bench(smsim_cli::bench::BenchArgs),
    /// Measure serve mode's throughput on PostgreSQL with one and three processes.
    BenchPostgres(smsim_cli::bench_postgres::BenchPostgresArgs),
    /// Write the book's reference tables (docs/src/reference/generated/) from the code's
    /// registries; with `--check`, fail naming each table that is stale.
    Reference(smsim_cli::reference::ReferenceArgs),
    /// Simulate seed 1 of a scenario and print this process's peak memory as JSON (the
    /// memory section of `bench` runs it as a child process).
    #[command(hide = true)]
    BenchPeakRss {
        /// The scenario file.
        scenario: PathBuf,
    },
}

#[derive(Args)]
struct CertifyArgs {
    /// The adapter: a provider kind (`mitto`, `twilio`, `infobip`) or `all`.
    #[arg(required_unless_present = "list")]
    adapter: Option<String>,
    /// Run only this clause, or every clause under a prefix (`submit`); repeatable.
    #[arg(long = "clause", value_name = "ID")]
    clauses: Vec<String>,
    /// Write the reports as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the reports as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// List the clauses and exit.
    #[arg(long)]
    list: bool,
    /// Seeds of the system arm's faulty sweep.
    #[arg(long, default_value_t = 4)]
    system_seeds: u64,
}

#[derive(Args)]
struct ProviderArgs {
    /// Loopback address to listen on.
    #[arg(long, default_value = "127.0.0.1:8091")]
    bind: String,
    /// The wire format the engine speaks (all three are served; this picks the hint printed).
    #[arg(long, default_value = "mitto", value_parser = parse_provider)]
    kind: ProviderKind,
    /// A scenario file whose [provider] and [faults.rates] set the behaviour.
    #[arg(long, value_name = "FILE")]
    behaviour: Option<PathBuf>,
    /// The engine's base URL, where Mitto-style reports go.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    engine_url: String,
    /// The engine's id of its provider account (in Mitto-style report URLs).
    #[arg(long, default_value = "ta_1")]
    account_id: String,
    /// The API key (Mitto, Infobip) or account SID (Twilio) the engine sends.
    #[arg(long, default_value = "live-mitto-key")]
    key: String,
    /// The webhook token (Mitto, Infobip) or auth token (Twilio).
    #[arg(long, default_value = "live-mitto-token")]
    secret: String,
    /// The seed of the provider's draws.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Args)]
struct LiveArgs {
    /// The scenario file.
    scenario: PathBuf,
    /// The engine profile (TOML; see harness/live/engines/).
    #[arg(long, value_name = "PROFILE")]
    engine: PathBuf,
    /// The seed of the fault plan (default: the SMSIM_SEED environment variable, else 1).
    #[arg(long, env = "SMSIM_SEED", default_value_t = 1)]
    seed: u64,
    /// SIGKILLs at seeded moments.
    #[arg(long, default_value_t = 2)]
    kills: u32,
    /// SIGKILLs while the provider holds an answer it accepted.
    #[arg(long, default_value_t = 1)]
    kills_on_accept: u32,
    /// SIGSTOP/SIGCONT pauses.
    #[arg(long, default_value_t = 1)]
    pauses: u32,
    /// How long a pause lasts, in milliseconds (longer than the engine's lease).
    #[arg(long, default_value_t = 1_500)]
    pause_ms: u64,
    /// Which of the engine's processes the faults hit: `all` (every one at once), `random`
    /// (one drawn per fault; a kill on acceptance hits the process that sent the accepted
    /// request), or a process's name from the profile.
    #[arg(long, default_value = "all")]
    target: String,
    /// SIGKILLs of the profile's services (restarted after the restart delay).
    #[arg(long, default_value_t = 0)]
    service_kills: u32,
    /// Where the engine's files, its log and the trace go (default: a new directory under
    /// the system's temporary directory).
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the report as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Overrides one value of the engine profile, as `dotted.key=value` (TOML, or else a
    /// string): `--set process.env.ENGINE_FIXED=0`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Write the run's timeline (a lane per process and service: kills, pauses, the
    /// provider's exchanges; the campaigns as the engine showed them; every accepted
    /// message's reports) as one self-contained HTML page.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

#[derive(Args)]
struct SweepArgs {
    /// A scenario file or a directory of them.
    target: PathBuf,
    /// Seeds per scenario.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    start: u64,
    /// Seeds run in parallel.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Run only shard I of N (`--shard 2/4`), for CI matrices.
    #[arg(long, value_parser = parse_shard, default_value = "1/1")]
    shard: (u64, u64),
    /// Collect every failure instead of stopping at the first.
    #[arg(long)]
    keep_going: bool,
    /// Write the results as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// JUnit test cases: one per scenario × seed, or one per scenario listing its failing
    /// seeds (for very large sweeps).
    #[arg(long, value_enum, default_value = "seed")]
    junit_cases: JunitCases,
    /// Write the results (failures, per-mark coverage) as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write an HTML timeline of every failing seed into this directory.
    #[arg(long, value_name = "DIR")]
    html_dir: Option<PathBuf>,
    /// Print, per coverage mark, in how many seeds it fired.
    #[arg(long)]
    coverage_report: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum JunitCases {
    /// One test case per scenario × seed.
    Seed,
    /// One test case per scenario, its failing seeds listed.
    Scenario,
}

fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let (index, count) = text.split_once('/').ok_or_else(|| format!("expected I/N, got `{text}`"))?;
    let index: u64 = index.parse().map_err(|_| format!("`{index}` is not a number"))?;
    let count: u64 = count.parse().map_err(|_| format!("`{count}` is not a number"))?;
    if count == 0 || index == 0 || index > count {
        return Err(format!("expected 1 ≤ I ≤ N, got {index}/{count}"));
    }
    Ok((index, count))
}

#[derive(Args)]
struct ShrinkArgs {
    /// The scenario file.
    scenario: PathBuf,
    /// The failing seed.
    #[arg(long)]
    seed: u64,
    /// Most simulations to spend shrinking.
    #[arg(long, default_value_t = 200)]
    max_runs: usize,
    /// Where to write the regression case.
    #[arg(long, default_value = "scenarios/regressions")]
    out: PathBuf,
}

#[derive(Args)]
struct RunArgs {
    /// The scenario file.
    scenario: PathBuf,
    /// The seed (default: the SMSIM_SEED environment variable, else 1).
    #[arg(long, env = "SMSIM_SEED", default_value_t = 1)]
    seed: u64,
    /// Write every trace event as JSON lines to this file.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Print the whole report as JSON instead of a summary.
    #[arg(long)]
    json: bool,
    /// Run an incident scenario on the normal engine, its bug off.
    #[arg(long)]
    without_bug: bool,
    /// Write the run's timeline as one self-contained HTML page to this file.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

#[derive(Args)]
struct ReplayArgs {
    #[command(flatten)]
    run: RunArgs,
    /// The trace hash the run must reproduce (a failure report prints it in the command
    /// to paste); a different hash exits 1 and prints both.
    #[arg(long, value_name = "HASH")]
    expect_hash: Option<String>,
}

#[derive(Args)]
struct DbArg {
    /// The database: an SQLite file, or a PostgreSQL URL (postgres://user:password@host:port/db).
    #[arg(long, env = "SMSIM_DB", default_value = "smsim.db", hide_env_values = true)]
    db: String,
}

/// A role of a serve process.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RoleArg {
    /// The HTTP API and webhooks.
    Api,
    /// Workers.
    Worker,
    /// Reaper, reconciler and scheduler.
    Maintenance,
    /// All three.
    All,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SMSIM_BIND", default_value = "127.0.0.1:8080")]
    bind: String,
    #[command(flatten)]
    db: DbArg,
    /// What this process runs; several processes with different roles can share one
    /// PostgreSQL database (comma-separated: `--role api,maintenance`).
    #[arg(long, env = "SMSIM_ROLE", value_enum, value_delimiter = ',', default_value = "all")]
    role: Vec<RoleArg>,
    /// Worker tasks.
    #[arg(long, env = "SMSIM_WORKERS", default_value_t = 2)]
    workers: u32,
    /// Bearer token for the /v1/admin routes (disabled when absent).
    #[arg(long, env = "SMSIM_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// The URL providers use to reach this server (webhooks); defaults to http://BIND.
    #[arg(long, env = "SMSIM_PUBLIC_URL")]
    public_url: Option<String>,
    /// Timeout of one provider request, in milliseconds.
    #[arg(long, env = "SMSIM_PROVIDER_TIMEOUT_MS", default_value_t = 10_000)]
    provider_timeout_ms: u64,
    /// Lease of a claimed batch, in milliseconds (at most a day: the store refuses longer
    /// leases, so a longer one would fail every claim instead of failing here).
    #[arg(long, env = "SMSIM_LEASE_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(1..=smsim_core::store::rules::MAX_LEASE_MS))]
    lease_ms: u64,
    // Live-mode tunables (issue #11): shortened by `smsim live`'s profile so a run with
    // kills settles in seconds; the defaults are EngineConfig's.
    /// How long an ambiguous submission may stay unknown before it settles as failed
    /// UNKNOWN_OUTCOME (charged), in milliseconds.
    #[arg(long, env = "SMSIM_UNKNOWN_SETTLE_AFTER_MS", default_value_t = EngineConfig::default().unknown_settle_after_ms)]
    unknown_settle_after_ms: u64,
    /// How long after a message became unknown a status lookup's "not found" is trusted
    /// (a provider may not list a message it accepted a moment ago), in milliseconds; serve
    /// refuses a --unknown-settle-after-ms shorter than this + --maintenance-interval-ms.
    #[arg(long, env = "SMSIM_LOOKUP_GRACE_MS", default_value_t = EngineConfig::default().lookup_grace_ms)]
    lookup_grace_ms: u64,
    /// The longest a provider takes to send a delivery report after accepting a message,
    /// as the operator knows it, in milliseconds: an unknown outcome is not settled before
    /// lease + provider timeout + this (serve refuses a shorter --unknown-settle-after-ms).
    #[arg(long, env = "SMSIM_REPORT_DELAY_MS", default_value_t = 0)]
    report_delay_ms: u64,
    /// The capacity of the rate-limit buckets: `one-second` (a quiet account may send a
    /// second's worth at once: up to twice the limit in a second) or `strict` (one token:
    /// never more than the limit + 1 in any second, for a provider with a hard cap).
    #[arg(long, env = "SMSIM_RATE_BURST", default_value = "one-second")]
    rate_burst: smsim_core::domain::rate::Burst,
    /// How long a delivery report for a provider id the engine never learned is kept
    /// parked before maintenance removes it, counted (`parked_reports_expired` in the admin
    /// queue stats), in milliseconds; at least 1000.
    #[arg(long, env = "SMSIM_PARKED_REPORT_RETENTION_MS",
          default_value_t = smsim_core::service::maintenance::DEFAULT_PARKED_RETENTION_MS,
          value_parser = clap::value_parser!(u64).range(1_000..))]
    parked_report_retention_ms: u64,
    /// How often the reaper, reconciler and scheduler run, in milliseconds.
    #[arg(long, env = "SMSIM_MAINTENANCE_INTERVAL_MS", default_value_t = EngineConfig::default().maintenance_interval_ms)]
    maintenance_interval_ms: u64,
    /// Longest a worker sleeps when there is nothing to do, in milliseconds.
    #[arg(long, env = "SMSIM_IDLE_POLL_MS", default_value_t = EngineConfig::default().idle_poll_ms)]
    idle_poll_ms: u64,
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant and print its API key (shown only once).
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// Opening credits.
        #[arg(long, default_value_t = 0)]
        credits: i64,
        /// Submissions per second across the tenant's campaigns.
        #[arg(long)]
        rate_limit: Option<u32>,
        #[command(flatten)]
        db: DbArg,
    },
    /// List tenants.
    List {
        #[command(flatten)]
        db: DbArg,
    },
}

/// A provider kind by its name; the names come from the engine's registry.
fn parse_provider(text: &str) -> Result<ProviderKind, String> {
    ProviderKind::parse(text).ok_or_else(|| format!("expected one of {}", provider_names().join(", ")))
}

/// The names of every provider kind.
fn provider_names() -> Vec<&'static str> {
    ProviderKind::ALL.into_iter().map(ProviderKind::as_str).collect()
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Create a traffic account.
    Create {
        /// Wire format.
        #[arg(long, value_parser = parse_provider)]
        provider: ProviderKind,
        /// Display name.
        #[arg(long)]
        name: String,
        /// The provider's base URL.
        #[arg(long)]
        base_url: String,
        /// Default sender.
        #[arg(long)]
        sender: String,
        /// Price of one segment, in credits.
        #[arg(long)]
        price: i64,
        /// Owning tenant (`ten_1`); a platform account shared by all tenants when absent.
        #[arg(long)]
        owner: Option<String>,
        /// Submissions per second.
        #[arg(long)]
        rate_limit: Option<u32>,
        /// A credential, `name=value` (repeat): mitto needs api_key, traffic_account_id,
        /// webhook_token; twilio needs account_sid, auth_token; infobip needs api_key,
        /// webhook_token.
        #[arg(long = "credential", value_parser = parse_credential)]
        credentials: Vec<(String, String)>,
        #[command(flatten)]
        db: DbArg,
    },
    /// List traffic accounts (without credentials).
    List {
        #[command(flatten)]
        db: DbArg,
    },
}

fn parse_credential(text: &str) -> Result<(String, String), String> {
    let (name, value) = text.split_once('=').ok_or_else(|| format!("expected name=value, got `{text}`"))?;
    Ok((name.trim().to_owned(), value.to_owned()))
}

/// A simulation allocates and frees small objects at a high rate (HTTP buffers, futures,
/// JSON); mimalloc serves them faster than the system allocator (`smsim bench` measures it).
/// It is built without transparent huge pages (`no_thp`): a large simulation's heap grows
/// and is purged and touched again, and each first touch of a huge page clears 2 MiB.
/// The `system-allocator` feature leaves it out, for heap profilers that hook `malloc`.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit codes: 0 ok, 1 failure, 2 bad input.
fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs a command. Simulations run their own simulated runtimes, so only serve mode
/// starts a real one.
fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(serve(args)),
        Command::Tenant(command) => tenant(command),
        Command::Account(command) => account(command),
        Command::Reconcile { db, json } => reconcile(&db, json),
        Command::Run(args) => simulate(args),
        Command::Replay(args) => replay(args),
        Command::Sweep(args) => sweep(args),
        Command::Shrink(args) => shrink(args),
        Command::Certify(args) => certify(args),
        Command::Provider(args) => provider(args),
        Command::Live(args) => live(args),
        Command::Bench(args) => {
            // A missed target fails the command, so CI and scripts can use it.
            let report = smsim_cli::bench::bench(&args)?;
            Ok(if report.missed().is_empty() || args.no_fail { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::BenchPostgres(args) => smsim_cli::bench_postgres::bench_postgres(&args).map(|_| ExitCode::SUCCESS),
        Command::Reference(args) => reference(&args),
        Command::BenchPeakRss { scenario } => {
            outln!("{}", serde_json::to_string(&smsim_cli::bench::peak_rss_child(&scenario)?)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes or checks the generated reference tables; a stale one fails with the command
/// that regenerates it.
fn reference(args: &smsim_cli::reference::ReferenceArgs) -> anyhow::Result<ExitCode> {
    use clap::CommandFactory;
    let stale = smsim_cli::reference::reference(args, &Cli::command())?;
    if stale.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for problem in &stale {
        eprintln!("{problem}");
    }
    eprintln!("regenerate them with `{}` and commit the result", smsim_cli::reference::REGENERATE);
    Ok(ExitCode::from(1))
}

fn certify(args: CertifyArgs) -> anyhow::Result<ExitCode> {
    use smsim_certify::{self as certify, Options, Subject};
    if args.list {
        for clause in certify::CLAUSES {
            outln!("{:<26}  {}", clause.id, clause.statement);
        }
        return Ok(ExitCode::SUCCESS);
    }
    for id in &args.clauses {
        let options = Options { only: vec![id.clone()], ..Options::default() };
        anyhow::ensure!(!certify::selected(&options).is_empty(), "no clause `{id}` (see `smsim certify --list`)");
    }
    let adapter = args.adapter.unwrap_or_default();
    let subjects = match adapter.as_str() {
        "all" => Subject::builtins(),
        name => match ProviderKind::parse(name) {
            Some(kind) => vec![Subject::builtin(kind)],
            None => anyhow::bail!("no adapter `{name}`; expected one of {}, all", provider_names().join(", ")),
        },
    };
    let options = Options { only: args.clauses, system_seeds: args.system_seeds, ..Options::default() };
    let reports: Vec<certify::Report> = subjects.iter().map(|subject| certify::certify(subject, &options)).collect();
    for report in &reports {
        outln!("{}", report.table());
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&reports)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, smsim_cli::junit::certification(&reports))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if reports.iter().all(certify::Report::passed) { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let engine = EngineConfig {
        lease_ms: args.lease_ms,
        // Live-mode tunables (issue #11).
        unknown_settle_after_ms: args.unknown_settle_after_ms,
        lookup_grace_ms: args.lookup_grace_ms,
        maintenance_interval_ms: args.maintenance_interval_ms,
        idle_poll_ms: args.idle_poll_ms,
        rate_burst: args.rate_burst,
        ..EngineConfig::default()
    };
    // Timings that turn deliveries into failures with no fault at all are a usage error,
    // refused before anything listens or opens.
    if let Err(problem) = engine.check_timing(args.provider_timeout_ms, args.report_delay_ms) {
        eprintln!("error: {problem}");
        return Ok(ExitCode::from(2));
    }
    let mut roles: Vec<Role> = args
        .role
        .iter()
        .flat_map(|role| match role {
            RoleArg::Api => vec![Role::Api],
            RoleArg::Worker => vec![Role::Worker],
            RoleArg::Maintenance => vec![Role::Maintenance],
            RoleArg::All => Role::ALL.to_vec(),
        })
        .collect();
    roles.sort();
    roles.dedup();
    let listener = if roles.contains(&Role::Api) {
        let listener = tokio::net::TcpListener::bind(&args.bind)
            .await
            .with_context(|| format!("cannot listen on {}", args.bind))?;
        Some(listener)
    } else {
        None
    };
    let address = match &listener {
        Some(listener) => listener.local_addr()?.to_string(),
        None => args.bind.clone(),
    };
    let db = Database::parse(&args.db.db);
    let options = ServeOptions {
        db: db.clone(),
        roles: roles.clone(),
        workers: args.workers,
        admin_token: args.admin_token,
        public_url: args.public_url.unwrap_or_else(|| format!("http://{address}")),
        provider_timeout: Duration::from_millis(args.provider_timeout_ms),
        engine,
        parked_retention_ms: args.parked_report_retention_ms,
    };
    let admin = if options.admin_token.is_some() { "enabled" } else { "disabled (set SMSIM_ADMIN_TOKEN)" };
    let engine = Engine::start(options, listener).await.with_context(|| format!("cannot open {db}"))?;
    let workers = if roles.contains(&Role::Worker) { args.workers } else { 0 };
    match roles.contains(&Role::Api) {
        true => eprint!("smsim serving on http://{address}"),
        false => eprint!("smsim running without the API"),
    }
    eprintln!(
        " (roles {roles:?}, database {db}, {workers} workers, admin routes {admin})",
        roles = roles.iter().map(|role| format!("{role:?}").to_lowercase()).collect::<Vec<_>>().join(",")
    );
    let ended = engine.wait().await;
    eprintln!("smsim serve stopped: {ended}");
    Ok(ExitCode::from(1))
}

fn provider(args: ProviderArgs) -> anyhow::Result<ExitCode> {
    let bind = smsim_live::provider_server::loopback(&args.bind).map_err(anyhow::Error::msg)?;
    let options = smsim_live::provider_server::ProviderOptions {
        bind,
        behaviour: args.behaviour,
        engine_url: args.engine_url,
        account_id: args.account_id,
        key: args.key,
        secret: args.secret,
        seed: args.seed,
    };
    let endpoint = smsim_sim::provider::wire_format(args.kind).send_path;
    eprintln!("smsim provider on http://{bind}{endpoint}; ground truth at http://{bind}/_smsim/truth");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        tokio::select! {
            result = smsim_live::provider_server::serve(options) => result.map_err(anyhow::Error::from),
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

fn live(args: LiveArgs) -> anyhow::Result<ExitCode> {
    let stem = args.scenario.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
    let workdir = args.workdir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("smsim-live-{stem}-{}-{}", args.seed, std::process::id()))
    });
    let options = smsim_live::run::LiveOptions {
        scenario: args.scenario,
        profile: args.engine,
        seed: args.seed,
        nemesis: smsim_live::plan::NemesisOptions {
            kills: args.kills,
            kills_on_accept: args.kills_on_accept,
            pauses: args.pauses,
            pause_ms: args.pause_ms,
            target: args.target,
            service_kills: args.service_kills,
            ..smsim_live::plan::NemesisOptions::default()
        },
        workdir,
        smsim: std::env::current_exe().context("finding the smsim executable")?,
        sets: args.set,
        timeline: args.html.is_some(),
    };
    let report = smsim_live::run::run(&options)?;
    if let (Some(path), Some(timeline)) = (&args.html, &report.timeline) {
        write_timeline(path, timeline)?;
    }
    out!("{}", smsim_live::report::summary(&report));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, smsim_cli::junit::live(&report)).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn simulate(args: RunArgs) -> anyhow::Result<ExitCode> {
    let report = simulate_and_print(&args)?;
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Runs the scenario and seed of `args`, writes the trace when asked, and prints the
/// report (as JSON with `--json`, else the summary and the trace hash).
fn simulate_and_print(args: &RunArgs) -> anyhow::Result<smsim_sim::run::RunReport> {
    let scenario = smsim_sim::scenario::Scenario::load(&args.scenario)?;
    let options = smsim_sim::run::RunOptions {
        keep_trace: args.trace.is_some(),
        scenario_path: Some(args.scenario.display().to_string()),
        without_bug: args.without_bug,
        adapters: None,
        timeline: args.html.is_some(),
    };
    let report = smsim_sim::run::run(&scenario, args.seed, &options)?;
    if let Some(path) = &args.trace {
        report.write_trace(path).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let (Some(path), Some(timeline)) = (&args.html, &report.timeline) {
        write_timeline(path, timeline)?;
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        out!("{}", smsim_sim::report::summary(&report));
        outln!("trace hash {}", report.trace_hash);
    }
    Ok(report)
}

/// A replay verifies: with `--expect-hash` a different trace hash is a failure (exit 1)
/// whatever the invariants say, because the run is then not the one that was reported.
fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let report = simulate_and_print(&RunArgs { json: false, ..args.run })?;
    if let Some(expected) = &args.expect_hash {
        if *expected != report.trace_hash {
            eprintln!(
                "replay diverged: expected trace hash {expected}\n                        got trace hash {}",
                report.trace_hash
            );
            return Ok(ExitCode::from(1));
        }
        outln!("trace hash matches the expected one");
    }
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn scenario_files(target: &std::path::Path) -> anyhow::Result<Vec<PathBuf>> {
    if target.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(target)
            .with_context(|| format!("cannot read {}", target.display()))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
            .collect();
        files.sort();
        Ok(files)
    } else {
        Ok(vec![target.to_owned()])
    }
}

fn write_timeline(path: &std::path::Path, timeline: &smsim_sim::timeline::Timeline) -> anyhow::Result<()> {
    let page = smsim_cli::timeline::html(timeline);
    std::fs::write(path, &page).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("timeline written to {} ({} KiB)", path.display(), page.len() / 1024);
    Ok(())
}

fn sweep(args: SweepArgs) -> anyhow::Result<ExitCode> {
    let files = scenario_files(&args.target)?;
    let scenarios: Vec<(PathBuf, smsim_sim::scenario::Scenario)> = files
        .into_iter()
        .map(|path| smsim_sim::scenario::Scenario::load(&path).map(|s| (path, s)))
        .collect::<Result<_, _>>()?;
    let seeds = smsim_sim::sweep::SeedRange { start: args.start, count: args.seeds, shard: args.shard }.seeds();
    let mut sweeps = Vec::new();
    for (path, scenario) in scenarios {
        if scenario.expect.incident.is_some() && !smsim_core::incidents::AVAILABLE {
            eprintln!("skipping {} (an incident reproduction; build with --features incidents)", path.display());
            continue;
        }
        let mut swept = sweep_scenario(&args, &path, &scenario, &seeds)?;
        print_sweep(&args, &swept);
        if let Some(dir) = &args.html_dir {
            swept.timelines = failing_timelines(dir, &path, &scenario, &swept)?;
        }
        sweeps.push(swept);
    }
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "shard": format!("{}/{}", args.shard.0, args.shard.1),
            "start": args.start,
            "seeds": args.seeds,
            "scenarios": sweeps,
        });
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.junit {
        let cases = match args.junit_cases {
            JunitCases::Seed => smsim_cli::junit::SweepCases::PerSeed,
            JunitCases::Scenario => smsim_cli::junit::SweepCases::PerScenario,
        };
        std::fs::write(path, smsim_cli::junit::sweep(&sweeps, cases))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if sweeps.iter().all(|sweep| sweep.passed) { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

// Wall time is measured here only to report speed; no outcome depends on it.
#[allow(clippy::disallowed_methods)]
fn sweep_scenario(
    args: &SweepArgs,
    path: &std::path::Path,
    scenario: &smsim_sim::scenario::Scenario,
    seeds: &[u64],
) -> anyhow::Result<smsim_cli::sweep_output::ScenarioSweep> {
    use smsim_cli::sweep_output::{Collected, Progress};
    use std::io::IsTerminal;
    let progress = Progress::new(&scenario.name, seeds.len() as u64, std::io::stderr().is_terminal());
    let collected = Collected::default();
    let on_done = |report: &smsim_sim::run::RunReport| {
        collected.add(report);
        progress.seed_done(report);
    };
    let started = std::time::Instant::now();
    let path_text = path.display().to_string();
    let report = smsim_sim::sweep::sweep(scenario, &path_text, seeds, args.jobs, args.keep_going, &on_done)?;
    let wall = started.elapsed().as_secs_f64();
    progress.finish();
    outln!(
        "{} {}: {} seeds in {wall:.2} s ({:.1} seeds/s, simulated/wall {:.0}×), {} failed",
        if report.passed() { "PASS" } else { "FAIL" },
        report.scenario,
        report.runs,
        report.runs as f64 / wall.max(1e-9),
        report.simulated_ms as f64 / 1_000.0 / wall.max(1e-9),
        report.failures.len()
    );
    for failure in &report.failures {
        out!("{}", smsim_sim::report::summary(failure));
    }
    Ok(collected.into_sweep(&path_text, &report, wall))
}

fn print_sweep(args: &SweepArgs, swept: &smsim_cli::sweep_output::ScenarioSweep) {
    if args.coverage_report {
        out!("{}", swept.coverage_report());
    } else {
        let coverage: Vec<String> =
            swept.coverage.iter().map(|(mark, reach)| format!("{mark} ×{}", reach.count)).collect();
        outln!(
            "  coverage: {}",
            if coverage.is_empty() { "nothing rare happened".to_owned() } else { coverage.join(", ") }
        );
    }
    if !swept.uncovered.is_empty() {
        outln!("  expected coverage never reached in {} seeds: {}", swept.runs, swept.uncovered.join(", "));
    }
}

/// Reruns each failing seed with a timeline (a seed replays byte for byte) and writes it
/// to `dir` as `<scenario>-seed-<seed>.html`.
fn failing_timelines(
    dir: &std::path::Path,
    path: &std::path::Path,
    scenario: &smsim_sim::scenario::Scenario,
    swept: &smsim_cli::sweep_output::ScenarioSweep,
) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    for failure in &swept.failures {
        let options = smsim_sim::run::RunOptions {
            scenario_path: Some(path.display().to_string()),
            timeline: true,
            ..Default::default()
        };
        let report = smsim_sim::run::run(scenario, failure.seed, &options)?;
        let file = dir.join(format!("{}-seed-{}.html", scenario.name, failure.seed));
        if let Some(timeline) = &report.timeline {
            write_timeline(&file, timeline)?;
            written.push(file.display().to_string());
        }
    }
    Ok(written)
}

fn shrink(args: ShrinkArgs) -> anyhow::Result<ExitCode> {
    use smsim_sim::run::{run, RunOptions};
    let scenario = smsim_sim::scenario::Scenario::load(&args.scenario)?;
    let report = run(&scenario, args.seed, &RunOptions::default())?;
    let Some(violation) = report.violation.clone() else {
        outln!("{} seed {} passes: nothing to shrink", scenario.name, args.seed);
        return Ok(ExitCode::SUCCESS);
    };
    outln!(
        "{} seed {} breaks `{}`; shrinking its fault plan ({} timed faults)",
        scenario.name,
        args.seed,
        violation.invariant,
        report.faults.events.len()
    );
    let (plan, runs) = smsim_sim::shrink::shrink(report.faults.clone(), args.max_runs, |candidate| {
        let trial = smsim_sim::shrink::with_plan(&scenario, candidate);
        run(&trial, args.seed, &RunOptions::default())
            .is_ok_and(|r| r.violation.is_some_and(|v| v.invariant == violation.invariant))
    });
    let mut regression = smsim_sim::shrink::with_plan(&scenario, &plan);
    regression.seed = Some(args.seed);
    regression.name = format!("{}-seed-{}", scenario.name, args.seed);
    let header = format!(
        "# Regression: {} seed {} broke `{}` at {} ms: {}\n# Fault plan shrunk in {runs} runs; replayed by the test suite with exactly this seed.\n",
        scenario.name, args.seed, violation.invariant, violation.at_ms, violation.message
    );
    std::fs::create_dir_all(&args.out)?;
    let path = args.out.join(format!("{}.toml", regression.name));
    std::fs::write(&path, header + &toml::to_string(&regression)?)?;
    outln!("wrote {} ({} timed faults left)", path.display(), plan.events.len());
    Ok(ExitCode::from(1))
}

fn open(db: &DbArg) -> anyhow::Result<Arc<dyn Store>> {
    let db = Database::parse(&db.db);
    db.open().with_context(|| format!("cannot open {db}"))
}

fn tenant(command: TenantCommand) -> anyhow::Result<ExitCode> {
    match command {
        TenantCommand::Create { name, credits, rate_limit, db } => {
            let store = open(&db)?;
            let mut key = [0u8; 16];
            rand_chacha::ChaCha20Rng::from_os_rng().fill_bytes(&mut key);
            let api_key = format!("sk_{}", hex::encode(key));
            let new = NewTenant {
                name,
                api_key_hash: sha256_hex(api_key.as_bytes()),
                credits: Credits(credits),
                rate_limit_per_s: rate_limit,
            };
            let tenant = store.create_tenant(new, Timestamp(0))?;
            outln!("tenant {} created with {} credits", tenant.id, tenant.balance);
            outln!("api key (shown once): {api_key}");
        }
        TenantCommand::List { db } => {
            for tenant in open(&db)?.tenants()? {
                outln!(
                    "{}\t{}\tbalance {}\treserved {}\tcharged {}",
                    tenant.id,
                    tenant.name,
                    tenant.balance,
                    tenant.reserved,
                    tenant.charged
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn reconcile(db: &DbArg, json: bool) -> anyhow::Result<ExitCode> {
    let store = open(db)?;
    let evidence = smsim_core::service::reconcile::reconciliation(store.as_ref())?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&evidence)?);
        return Ok(ExitCode::SUCCESS);
    }
    outln!("unknown outcomes, by campaign and account:");
    if evidence.campaigns.is_empty() {
        outln!("  none");
    }
    for campaign in &evidence.campaigns {
        outln!(
            "  {}\ttenant {}\taccount {}\tunknown {}\tsettled UNKNOWN_OUTCOME {}",
            campaign.campaign,
            campaign.tenant,
            campaign.traffic_account,
            campaign.unknown,
            campaign.unknown_outcome
        );
    }
    outln!("reports parked for provider ids never learned, by account and status (received at, ms):");
    if evidence.parked.is_empty() {
        outln!("  none");
    }
    for group in &evidence.parked {
        let status = serde_json::to_value(&group.status)?;
        outln!(
            "  {}\t{}\t{}\tfirst {}\tlast {}",
            group.traffic_account,
            status.as_str().map_or_else(|| status.to_string(), str::to_owned),
            group.reports,
            group.first_received_at.0,
            group.last_received_at.0
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn account(command: AccountCommand) -> anyhow::Result<ExitCode> {
    match command {
        AccountCommand::Create { provider, name, base_url, sender, price, owner, rate_limit, credentials, db } => {
            let owner = owner.map(|text| text.parse::<TenantId>()).transpose()?;
            let new = NewTrafficAccount {
                owner,
                name,
                provider,
                base_url,
                credentials: credentials.into_iter().collect::<BTreeMap<_, _>>(),
                sender,
                rate_limit_per_s: rate_limit,
                price_per_segment: Credits(price),
                idempotent_submissions: capabilities_of(provider).idempotency_keys,
            };
            // The adapter is built once to check the credentials before anything is stored.
            let client = Arc::new(smsim_core::adapter::http::HyperClient::tcp(Duration::from_secs(1)));
            smsim_core::adapter::adapter_for(&new.preview(), client, "http://localhost")
                .map_err(|error| anyhow::anyhow!("{} account: {}", new.provider, error.message))?;
            let account = open(&db)?.create_traffic_account(new)?;
            outln!(
                "traffic account {} created; webhook path /v1/webhooks/{}/{}",
                account.id,
                account.provider,
                account.id
            );
        }
        AccountCommand::List { db } => {
            for account in open(&db)?.traffic_accounts()? {
                let owner = account.owner.map_or_else(|| "shared".to_owned(), |owner| owner.to_string());
                outln!("{}\t{}\t{}\t{}\towner {owner}", account.id, account.provider, account.name, account.base_url);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
