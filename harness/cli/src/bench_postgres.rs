//! `smsim bench-postgres`: serve mode's throughput on PostgreSQL with one and with three
//! `smsim serve` processes, beside the raw single-row update rate of the same server
//! measured in the same run, as ratios.
//!
//! Each run gets a database of its own (created on the server `--db` names, dropped
//! after). The processes are children of this binary: the first runs every role and
//! receives the provider's webhooks, the others run workers and maintenance. The simulated
//! provider runs in this process on loopback and answers at once; its reports are held
//! until every message is accepted, then released (as array webhooks, as Mitto may send
//! them) and timed until applied. The figures are measurements, not tests: reading the
//! wall clock is the point (each such function says so in its `allow`).

use crate::bench::Figure;
use crate::outln;
use serde_json::json;
use smsim_core::adapter::http::HyperClient;
use smsim_core::adapter::{capabilities_of, HttpClient, HttpRequest};
use smsim_core::domain::{Audience, ProviderKind};
use smsim_core::store::postgres::{off_the_runtime, PostgresStore};
use smsim_core::store::{sha256_hex, NewCampaign, NewContact, NewTenant, NewTrafficAccount, Store};
use smsim_core::{Credits, Timestamp};
use smsim_sim::clock::SimClock;
use smsim_sim::provider::{AccountBinding, Behaviour, Provider};
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Options of `smsim bench-postgres`.
#[derive(clap::Args, Clone, Debug)]
pub struct BenchPostgresArgs {
    /// A PostgreSQL server URL whose user may create databases (the run creates and drops
    /// its own).
    #[arg(long, env = "SMSIM_BENCH_POSTGRES")]
    pub db: String,
    /// Messages per run.
    #[arg(long, default_value_t = 10_000)]
    pub messages: u32,
    /// Worker tasks per serve process.
    #[arg(long, default_value_t = 2)]
    pub workers: u32,
}

const API_KEY: &str = "sk_bench_postgres";

/// What one run measured.
struct Run {
    processes: u32,
    accepted_per_s: f64,
    reports_per_s: f64,
}

/// A database of its own, dropped at the end.
struct Scratch {
    server: String,
    name: String,
    url: String,
}

impl Scratch {
    fn create(server: &str, label: &str) -> anyhow::Result<Scratch> {
        let name = format!("smsim_bench_{label}_{}", std::process::id());
        let scratch = Scratch { server: server.to_owned(), url: with_database(server, &name), name };
        scratch.admin(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", scratch.name))?;
        scratch.admin(&format!("CREATE DATABASE {}", scratch.name))?;
        Ok(scratch)
    }

    fn admin(&self, sql: &str) -> anyhow::Result<()> {
        off_the_runtime(|| {
            let mut client = postgres::Client::connect(&self.server, postgres::NoTls)?;
            client.batch_execute(sql)?;
            Ok(())
        })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = self.admin(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

/// `url` naming database `name` instead of its own.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(base, query)| (base, Some(query)));
    let authority_start = base.find("://").map_or(0, |at| at + 3);
    let path_start = base[authority_start..].find('/').map_or(base.len(), |at| authority_start + at);
    match query {
        Some(query) => format!("{}/{name}?{query}", &base[..path_start]),
        None => format!("{}/{name}", &base[..path_start]),
    }
}

/// A serve child process, killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Runs the benchmark and prints its figures.
pub fn bench_postgres(args: &BenchPostgresArgs) -> anyhow::Result<Vec<Figure>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // The server's raw rate is measured before and after the engine's runs, and the ratios
    // use their mean: a machine whose speed drifts during the run shows it in the drift
    // figure instead of skewing one ratio unseen.
    let raw_before = raw_update_rate(&args.db, args.messages)?;
    let one = runtime.block_on(run(args, 1))?;
    let three = runtime.block_on(run(args, 3))?;
    let raw_after = raw_update_rate(&args.db, args.messages)?;
    let raw = (raw_before + raw_after) / 2.0;
    let figures = vec![
        accepted(&one, args),
        accepted(&three, args),
        reports(&one),
        reports(&three),
        Figure::new_public(
            "raw PostgreSQL single-row updates/s",
            raw,
            "updates/s",
            format!(
                "{} autocommitted UPDATEs by primary key, one connection, prepared; mean of {raw_before:.0} \
                 before and {raw_after:.0} after the runs",
                args.messages
            ),
        ),
        Figure::new_public(
            "raw rate after ÷ before",
            raw_after / raw_before.max(1e-9),
            "",
            "how far the server's speed drifted during the run; far from 1, read the ratios with care".into(),
        ),
        ratio("accepted ÷ raw update rate, 1 process", one.accepted_per_s, raw),
        ratio("accepted ÷ raw update rate, 3 processes", three.accepted_per_s, raw),
        ratio("reports ÷ raw update rate, 1 process", one.reports_per_s, raw),
        ratio("reports ÷ raw update rate, 3 processes", three.reports_per_s, raw),
    ];
    outln!("Engine throughput on PostgreSQL ({} messages a run)", args.messages);
    for figure in &figures {
        outln!(
            "  {:<44} {:>10.2} {:<10} {}",
            figure.name,
            figure.value.unwrap_or(f64::NAN),
            figure.unit,
            figure.detail
        );
    }
    Ok(figures)
}

fn accepted(run: &Run, args: &BenchPostgresArgs) -> Figure {
    Figure::new_public(
        &format!("messages/s accepted, {} process(es)", run.processes),
        run.accepted_per_s,
        "msgs/s",
        format!("enqueue to accepted; {} workers a process, batches of 200, provider on loopback", args.workers),
    )
}

fn reports(run: &Run) -> Figure {
    Figure::new_public(
        &format!("reports/s ingested, {} process(es)", run.processes),
        run.reports_per_s,
        "reports/s",
        "array webhooks to the first process's API, one store transaction each".into(),
    )
}

fn ratio(name: &str, value: f64, raw: f64) -> Figure {
    Figure::new_public(name, value / raw.max(1e-9), "", "same server, same run".into())
}

/// One run with `processes` serve processes on a fresh database.
// Wall time is what is measured here; no outcome depends on it.
#[allow(clippy::disallowed_methods)]
async fn run(args: &BenchPostgresArgs, processes: u32) -> anyhow::Result<Run> {
    let scratch = Scratch::create(&args.db, &format!("{processes}p"))?;
    let store = PostgresStore::connect(&scratch.url)?;
    let api_address = format!("127.0.0.1:{}", free_port()?);
    let api_url = format!("http://{api_address}");
    let provider_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let provider_url = format!("http://{}", provider_listener.local_addr()?);
    let tenant = store.create_tenant(
        NewTenant {
            name: "acme".into(),
            api_key_hash: sha256_hex(API_KEY.as_bytes()),
            credits: Credits(i64::from(args.messages) * 100),
            rate_limit_per_s: None,
        },
        Timestamp(0),
    )?;
    let (key, secret) = ("key-bench".to_owned(), "hook-bench".to_owned());
    let account = store.create_traffic_account(NewTrafficAccount {
        owner: None,
        name: "bench".into(),
        provider: ProviderKind::Mitto,
        base_url: provider_url,
        credentials: BTreeMap::from([
            ("api_key".to_owned(), key.clone()),
            ("traffic_account_id".to_owned(), "mitto-bench".to_owned()),
            ("webhook_token".to_owned(), secret.clone()),
        ]),
        sender: "SMSIM".into(),
        rate_limit_per_s: None,
        price_per_segment: Credits(55),
        idempotent_submissions: capabilities_of(ProviderKind::Mitto).idempotency_keys,
    })?;
    let rows: Vec<NewContact> = (0..args.messages)
        .map(|n| NewContact {
            phone: format!("+30691{n:07}"),
            attributes: BTreeMap::from([("first_name".to_owned(), "Maria".to_owned())]),
            opted_out: false,
        })
        .collect();
    for chunk in rows.chunks(10_000) {
        store.import_contacts(tenant.id, chunk.to_vec(), Timestamp(0))?;
    }
    let campaign = store.create_campaign(
        tenant.id,
        NewCampaign {
            name: "bench".into(),
            body_template: "Hello {{first_name|there}}, our spring sale starts today.".into(),
            sender: None,
            audience: Audience::All,
            traffic_account: account.id,
            schedule_at: None,
        },
        Timestamp(0),
    )?;
    // Every report falls due at once, so any window puts each request's reports in one array.
    let behaviour = Behaviour {
        latency_ms: [0, 0],
        delivery_rate: 1.0,
        report_delay_ms: [0, 0],
        report_window_ms: 1_000,
        ..Behaviour::default()
    };
    let provider =
        Provider::new(behaviour, vec![AccountBinding { engine_id: account.id.to_string(), key, secret }], 1, SimClock);
    provider.hold_reports(true);
    provider.limit_concurrent_reports(8);
    let provider_task = {
        let (provider, api_url) = (provider.clone(), api_url.clone());
        tokio::spawn(async move {
            if let Err(error) = smsim_sim::provider::serve_tcp(provider, provider_listener, &api_url).await {
                tracing::error!(%error, "the loopback provider stopped");
            }
        })
    };
    let binary = std::env::current_exe()?;
    let workers = args.workers.to_string();
    let mut children = Vec::new();
    for n in 0..processes {
        let role = if n == 0 { "all" } else { "worker,maintenance" };
        let child = Command::new(&binary)
            .args(["serve", "--role", role, "--bind", &api_address, "--public-url", &api_url])
            .args(["--workers", &workers, "--idle-poll-ms", "20"])
            .env("SMSIM_DB", &scratch.url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        children.push(Process(child));
    }
    let client = HyperClient::tcp(Duration::from_secs(60));
    let call = |method: http::Method, path: String| HttpRequest {
        method,
        url: format!("{api_url}{path}"),
        headers: BTreeMap::from([
            ("authorization".to_owned(), format!("Bearer {API_KEY}")),
            ("content-type".to_owned(), "application/json".to_owned()),
        ]),
        body: bytes::Bytes::from(json!({}).to_string()),
    };
    let mut ready = false;
    for _ in 0..200 {
        if client.send(call(http::Method::GET, "/v1/me".into())).await.is_ok_and(|answer| answer.status == 200) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::ensure!(ready, "the serve process never answered on {api_url}");
    let deadline = Duration::from_secs(600);
    let started = std::time::Instant::now();
    let answer = client.send(call(http::Method::POST, format!("/v1/campaigns/{}/enqueue", campaign.id))).await?;
    anyhow::ensure!(answer.status == 202, "enqueue answered {}", answer.status);
    while store.campaign(tenant.id, campaign.id)?.counts.sent() < args.messages {
        anyhow::ensure!(started.elapsed() < deadline, "the messages were not accepted in {deadline:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let accepted_s = started.elapsed().as_secs_f64();
    let released = std::time::Instant::now();
    provider.hold_reports(false);
    while store.campaign(tenant.id, campaign.id)?.counts.delivered < args.messages {
        anyhow::ensure!(released.elapsed() < deadline, "the reports were not applied in {deadline:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let reports_s = released.elapsed().as_secs_f64();
    provider_task.abort();
    drop(children);
    drop(store);
    Ok(Run {
        processes,
        accepted_per_s: f64::from(args.messages) / accepted_s.max(1e-9),
        reports_per_s: f64::from(args.messages) / reports_s.max(1e-9),
    })
}

/// Single-row updates per second on the same server: one connection, a prepared UPDATE
/// by primary key, each its own (autocommitted) transaction, as each report webhook is.
// Wall time is what is measured here; no outcome depends on it.
#[allow(clippy::disallowed_methods)]
fn raw_update_rate(server: &str, rows: u32) -> anyhow::Result<f64> {
    let scratch = Scratch::create(server, "raw")?;
    off_the_runtime(|| {
        let mut client = postgres::Client::connect(&scratch.url, postgres::NoTls)?;
        client.batch_execute(
            "CREATE TABLE message (id BIGINT PRIMARY KEY, status TEXT NOT NULL, updated_at BIGINT NOT NULL)",
        )?;
        client.execute(
            "INSERT INTO message SELECT n, 'accepted', 0 FROM generate_series(0, $1::BIGINT - 1) AS n",
            &[&i64::from(rows)],
        )?;
        let update = client.prepare("UPDATE message SET status = 'delivered', updated_at = $2 WHERE id = $1")?;
        let started = std::time::Instant::now();
        for id in 0..i64::from(rows) {
            client.execute(&update, &[&id, &(id + 1)])?;
        }
        Ok(f64::from(rows) / started.elapsed().as_secs_f64().max(1e-9))
    })
}
