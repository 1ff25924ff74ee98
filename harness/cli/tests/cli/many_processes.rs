//! Several `smsim serve` processes on one PostgreSQL database: one API process and two
//! worker processes (each also running maintenance) send one campaign through the
//! simulated provider on loopback, and one worker process is killed with SIGKILL in the
//! middle of it.
//!
//! always: no message is accepted twice by the provider; the campaign's counters and the
//! tenant's credit columns equal a recount; the traffic account's rate limit, kept in the
//! store, holds across the processes as measured at the provider.
//! eventually: the campaign completes (the dead worker's leases are reaped by the other
//! process's maintenance and settled, never resent).
//!
//! Runs when SMSIM_TEST_POSTGRES names a server (in a database of its own, dropped after);
//! skips loudly otherwise, and fails under CI=true.

use smsim_cli::bench_postgres::with_database;
use smsim_core::adapter::capabilities_of;
use smsim_core::adapter::http::HyperClient;
use smsim_core::adapter::{HttpClient, HttpRequest};
use smsim_core::domain::{Audience, CampaignStatus, ProviderKind};
use smsim_core::store::postgres::{off_the_runtime, testing, PostgresStore};
use smsim_core::store::{sha256_hex, NewCampaign, NewContact, NewTenant, NewTrafficAccount, Store};
use smsim_core::{Credits, Timestamp};
use smsim_sim::clock::SimClock;
use smsim_sim::provider::{AccountBinding, Behaviour, Provider};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CONTACTS: u32 = 2_000;
const RATE_PER_S: u32 = 200;
const API_KEY: &str = "sk_multi_process";

/// A database of its own on the test server, dropped at the end.
struct Database {
    server_url: String,
    name: String,
    url: String,
}

impl Database {
    fn create(server_url: &str, name: &str) -> Database {
        let url = with_database(server_url, name);
        let database = Database { server_url: server_url.to_owned(), name: name.to_owned(), url };
        for sql in [format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"), format!("CREATE DATABASE {name}")] {
            database.admin(&sql).unwrap_or_else(|error| panic!("{sql}: {error}"));
        }
        database
    }

    fn admin(&self, sql: &str) -> Result<(), postgres::Error> {
        off_the_runtime(|| postgres::Client::connect(&self.server_url, postgres::NoTls)?.batch_execute(sql))
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // Never a panic here: the test may be unwinding already (a server gone away).
        let _ = self.admin(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

/// A `smsim serve` child process, killed on every way out of the test.
struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    fn start(name: &'static str, dir: &Path, db: &str, args: &[&str]) -> Process {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_smsim"))
            .arg("serve")
            .args(args)
            .env("SMSIM_DB", db)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("start smsim serve");
        Process { name, child, log }
    }

    /// SIGKILL: no chance to finish anything.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log(&self) -> String {
        format!("--- {} ---\n{}", self.name, std::fs::read_to_string(&self.log).unwrap_or_default())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("address").port()
}

async fn api(
    client: &HyperClient<hyper_util::client::legacy::connect::HttpConnector>,
    method: http::Method,
    url: String,
) -> u16 {
    let request = HttpRequest {
        method,
        url,
        headers: BTreeMap::from([("authorization".to_owned(), format!("Bearer {API_KEY}"))]),
        body: bytes::Bytes::new(),
    };
    client.send(request).await.map_or(0, |response| response.status)
}

/// The most messages the provider received within any `window_ms`, from samples of
/// (ms since start, messages received so far).
fn most_in_window(samples: &[(u64, usize)], window_ms: u64) -> usize {
    samples
        .iter()
        .map(|&(start, before)| {
            let after = samples.iter().take_while(|(at, _)| *at <= start + window_ms).last().map_or(before, |s| s.1);
            after - before
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_serve_processes_share_one_database_through_a_worker_killed_mid_campaign() {
    let test = "three_serve_processes_share_one_database";
    let Some(server_url) = testing::test_database_url(test) else { return };
    let database = Database::create(&server_url, &format!("smsim_processes_{}", std::process::id()));
    let store = PostgresStore::connect(&database.url).expect("open the test database");

    let api_address = format!("127.0.0.1:{}", free_port());
    let api_url = format!("http://{api_address}");
    let provider_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("provider port");
    let provider_url = format!("http://{}", provider_listener.local_addr().expect("address"));

    let tenant = store
        .create_tenant(
            NewTenant {
                name: "acme".into(),
                api_key_hash: sha256_hex(API_KEY.as_bytes()),
                credits: Credits(10_000_000),
                rate_limit_per_s: None,
            },
            Timestamp(0),
        )
        .expect("tenant");
    let (key, secret) = ("key-multi".to_owned(), "hook-multi".to_owned());
    let account = store
        .create_traffic_account(NewTrafficAccount {
            owner: None,
            name: "shared".into(),
            provider: ProviderKind::Mitto,
            base_url: provider_url,
            credentials: BTreeMap::from([
                ("api_key".to_owned(), key.clone()),
                ("traffic_account_id".to_owned(), "mitto-multi".to_owned()),
                ("webhook_token".to_owned(), secret.clone()),
            ]),
            sender: "SMSIM".into(),
            rate_limit_per_s: Some(RATE_PER_S),
            price_per_segment: Credits(55),
            idempotent_submissions: capabilities_of(ProviderKind::Mitto).idempotency_keys,
        })
        .expect("account");
    let rows = (0..CONTACTS).map(|n| NewContact { phone: format!("+3069{n:08}"), ..NewContact::default() }).collect();
    let imported = store.import_contacts(tenant.id, rows, Timestamp(0)).expect("import");
    assert_eq!(imported.created, CONTACTS, "{:?}", imported.errors.first());
    let campaign = store
        .create_campaign(
            tenant.id,
            NewCampaign {
                name: "shared".into(),
                body_template: "Spring sale".into(),
                sender: None,
                audience: Audience::All,
                traffic_account: account.id,
                schedule_at: None,
            },
            Timestamp(0),
        )
        .expect("campaign");

    let behaviour =
        Behaviour { latency_ms: [2, 10], delivery_rate: 1.0, report_delay_ms: [50, 200], ..Behaviour::default() };
    let binding = AccountBinding { engine_id: account.id.to_string(), key, secret };
    let provider = Provider::new(behaviour, vec![binding], 7, SimClock);
    let provider_task = {
        let (provider, api_url) = (provider.clone(), api_url.clone());
        tokio::spawn(async move {
            let _ = smsim_sim::provider::serve_tcp(provider, provider_listener, &api_url).await;
        })
    };

    let dir = tempfile::tempdir().expect("temporary directory");
    let worker_args = [
        "--role",
        "worker,maintenance",
        "--workers",
        "2",
        "--lease-ms",
        "1500",
        "--unknown-settle-after-ms",
        "2000",
        "--lookup-grace-ms",
        "500",
        "--provider-timeout-ms",
        "500",
        "--public-url",
        &api_url,
    ];
    let mut processes = vec![
        Process::start("api", dir.path(), &database.url, &["--role", "api", "--bind", &api_address]),
        Process::start("worker-a", dir.path(), &database.url, &worker_args),
        Process::start("worker-b", dir.path(), &database.url, &worker_args),
    ];
    let logs = |processes: &[Process]| processes.iter().map(Process::log).collect::<Vec<_>>().join("\n");

    let client = HyperClient::tcp(Duration::from_secs(5));
    let mut ready = false;
    for _ in 0..200 {
        if api(&client, http::Method::GET, format!("{api_url}/v1/me")).await == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the API process never answered\n{}", logs(&processes));
    let enqueued = api(&client, http::Method::POST, format!("{api_url}/v1/campaigns/{}/enqueue", campaign.id)).await;
    assert_eq!(enqueued, 202, "{}", logs(&processes));

    let start = tokio::time::Instant::now();
    let mut samples: Vec<(u64, usize)> = vec![(0, 0)];
    let mut killed_at = None;
    let mut finished = None;
    for _ in 0..1_800 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let received = provider.truth.lock().expect("truth").received.len();
        samples.push((start.elapsed().as_millis() as u64, received));
        if killed_at.is_none() && received >= (CONTACTS / 3) as usize {
            processes[1].kill();
            killed_at = Some(received);
        }
        let current = store.campaign(tenant.id, campaign.id).expect("campaign");
        if current.status == CampaignStatus::Completed {
            finished = Some(current);
            break;
        }
    }
    let Some(finished) = finished else {
        panic!("the campaign did not complete within 90 s\n{}", logs(&processes));
    };
    assert!(killed_at.is_some(), "a worker process was killed mid-campaign");

    // Stop everything that writes (reports keep arriving after completion), then look.
    provider_task.abort();
    let logs_at_end = logs(&processes);
    drop(processes);
    let finished = store.campaign(tenant.id, finished.id).expect("campaign");
    // always: at most one acceptance per message, whatever the crash.
    let truth = provider.truth.lock().expect("truth");
    let twice: Vec<_> = truth.accepted.iter().filter(|(_, acceptances)| acceptances.len() > 1).collect();
    assert!(twice.is_empty(), "messages accepted twice: {twice:?}");
    assert!(truth.accepted.len() <= CONTACTS as usize);
    // always: counters and credit columns equal a recount.
    assert_eq!(store.recount(campaign.id).expect("recount"), finished.counts, "{logs_at_end}");
    assert_eq!(finished.counts.total(), CONTACTS, "{:?}", finished.counts);
    let books = store.tenant(tenant.id).expect("tenant");
    let recount = store.ledger_recount(tenant.id).expect("ledger recount");
    assert_eq!((books.reserved, books.charged), (recount.reserved, recount.charged));
    // always: the shared account's rate limit held across the processes. A bucket holds
    // one second of tokens, so any second may see up to two seconds' worth (a full bucket
    // and its refill); the margin covers the sampling and the claim-to-submit delay.
    let received = truth.received.len();
    let busiest_second = most_in_window(&samples, 1_000);
    assert!(
        busiest_second <= (2 * RATE_PER_S + RATE_PER_S / 2) as usize,
        "{busiest_second} messages in one second against a limit of {RATE_PER_S}/s"
    );
    let sending_ms = samples.iter().find(|(_, count)| *count >= received).map_or(0, |s| s.0);
    let sustained = received as f64 * 1_000.0 / sending_ms.max(1) as f64;
    assert!(
        sustained <= f64::from(RATE_PER_S) * 1.25,
        "{received} messages in {sending_ms} ms: {sustained:.0}/s against a limit of {RATE_PER_S}/s"
    );
    // sometimes: the limit actually throttled (without it the two processes send the
    // campaign in well under a second).
    assert!(sending_ms as f64 >= 1_000.0 * f64::from(CONTACTS - RATE_PER_S) / f64::from(RATE_PER_S) * 0.5);
    eprintln!(
        "{received} received in {sending_ms} ms ({sustained:.0}/s, busiest second {busiest_second}, limit {RATE_PER_S}/s); \
         worker killed at {killed_at:?}; final counts {:?}",
        finished.counts
    );
    drop(truth);
    drop(store);
}
