//! Sections 1 and 3 of `smsim bench`: how fast the simulator runs whole scenarios, and
//! how sweeps scale over cores.
//!
//! How two threads scale is first the machine's: a virtual CPU shared with a neighbour or
//! a hyperthread pair gives two of anything less than twice one. So the sweep's scaling
//! is judged against the machine's own, measured in the same run on a CPU-bound
//! reference with nothing shared (each thread hashing its own buffer), as the sweep's
//! jobs are threads of one process sharing nothing but the allocator.
//!
//! Simulated ÷ wall time is a figure, not a target: it moves with the machine. The
//! targets are ratios taken in one run: the happy path's simulated seed against the
//! same campaign run in real time (serve mode on SQLite and tokio sockets, the simulated
//! provider on loopback, same contacts, engine settings and provider latencies), and,
//! with `--baseline`, seeds per second against the earlier build's on the same files.

use super::baseline::{interleaved, Binary};
use super::real_mode::{contact_rows, Loopback};
use super::Figure;
use serde_json::json;
use smsim_core::adapter::http::HyperClient;
use smsim_core::domain::CampaignStatus;
use smsim_core::CampaignId;
use smsim_sim::run::{run, RunOptions};
use smsim_sim::scenario::Scenario;
use smsim_sim::sweep::sweep;
use std::path::Path;
use std::time::Duration;

/// The happy path's simulated seed must run this many times faster than its campaign in
/// real time. (The first round's absolute target, 1 000× simulated ÷ wall, came to about
/// 740× by this measure on the machine that set it.)
const REAL_TIME_OVER_SIMULATED: f64 = 700.0;
/// Seeds per second against the baseline's: not slower, with room for noise.
const AGAINST_BASELINE: f64 = 0.9;
/// Rounds of the interleaved comparison with the baseline.
const ROUNDS: usize = 3;
/// The sweep's `--jobs 2 ÷ --jobs 1` must reach this share of the machine's own
/// two-thread scaling: what is left to lose is the sweep's (shared allocation, uneven
/// seeds), not the machine's.
const SCALING_AGAINST_REFERENCE: f64 = 0.85;
/// Mebibytes each reference thread hashes per round: about 0.3 s on a core with SHA
/// instructions (256 MiB took 0.14 s on the machine of the first kept run, short enough
/// for one scheduler hiccup to move the ratio), a few seconds without.
const HASH_MIB: usize = 512;

/// The sweeps section 1 reads, measured in this process.
pub(super) struct Speeds<'a> {
    pub happy_path: &'a Path,
    pub swarm_path: &'a Path,
    pub happy_one: Speed,
    pub swarm_one: Speed,
}

/// Seeds per second and simulated ÷ wall time of one sweep.
#[derive(Clone, Copy, Debug)]
pub(super) struct Speed {
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
pub(super) fn sweep_speed(scenario: &Scenario, path: &Path, seeds: u64, jobs: usize) -> anyhow::Result<Speed> {
    let seeds: Vec<u64> = (1..=seeds).collect();
    let started = std::time::Instant::now();
    let report = sweep(scenario, &path.display().to_string(), &seeds, jobs, true, &|_| {})?;
    let wall_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(report.failures.is_empty(), "{} failed while being timed", scenario.name);
    Ok(Speed { seeds: report.runs, wall_s, simulated_s: report.simulated_ms as f64 / 1_000.0 })
}

/// Section 1: seeds/s and simulated ÷ wall of the happy path and swarm chaos; the happy
/// path in real time against its simulation; and with a baseline, seeds/s against it.
pub(super) fn section(
    happy: &Scenario,
    speeds: &Speeds<'_>,
    current: &Binary,
    baseline: Option<&Binary>,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Vec<Figure>> {
    let (happy_one, swarm_one) = (speeds.happy_one, speeds.swarm_one);
    let real = runtime.block_on(real_time_campaign(happy))?;
    let simulated = run(happy, 1, &RunOptions::default())?;
    let per_seed_s = happy_one.wall_s / happy_one.seeds as f64;
    let mut figures = vec![
        Figure::new("happy path, seeds/s (one core)", happy_one.seeds_per_s(), "seeds/s", None, true, happy_one.detail(1)),
        Figure::new("happy path, simulated ÷ wall", happy_one.sim_per_wall(), "×", None, true, happy_one.detail(1)),
        Figure::new("swarm chaos, seeds/s (one core)", swarm_one.seeds_per_s(), "seeds/s", None, true, swarm_one.detail(1)),
        Figure::new("swarm chaos, simulated ÷ wall", swarm_one.sim_per_wall(), "×", None, true, swarm_one.detail(1)),
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
            Some(REAL_TIME_OVER_SIMULATED),
            true,
            format!("{:.2} s in real time against {:.2} ms per simulated seed", real.wall_s, per_seed_s * 1_000.0),
        ),
    ];
    for (label, path, seeds) in
        [("happy path", speeds.happy_path, happy_one.seeds), ("swarm chaos", speeds.swarm_path, swarm_one.seeds)]
    {
        let name = format!("{label}, seeds/s ÷ baseline");
        // Without a baseline there is nothing to compare: the same sweep was just timed
        // in this process above, so it is not run again as a child.
        let Some(baseline) = baseline else {
            figures.push(Figure::maybe(
                &name,
                None,
                "×",
                Some(AGAINST_BASELINE),
                true,
                "no baseline to compare with".into(),
            ));
            continue;
        };
        let (ours, theirs) =
            interleaved(current, Some(baseline), ROUNDS, |binary| binary.sweep_wall_s(path, seeds, 1))?;
        let theirs = theirs.expect("a baseline was given");
        figures.push(Figure::new(
            &name,
            theirs / ours.max(1e-9),
            "×",
            Some(AGAINST_BASELINE),
            true,
            format!(
                "{seeds} seeds with --jobs 1 as child processes, best of {ROUNDS} in turn: {ours:.2} s against the baseline's {theirs:.2} s"
            ),
        ));
    }
    Ok(figures)
}

/// Section 3: how sweeps scale from one job to two.
pub(super) fn scaling(happy_one: Speed, happy_two: Speed, reference: Reference, cpus: usize) -> Vec<Figure> {
    let sweep = happy_two.seeds_per_s() / happy_one.seeds_per_s().max(1e-9);
    let reference_scaling = reference.scaling();
    vec![
        Figure::new("happy path, --jobs 1", happy_one.seeds_per_s(), "seeds/s", None, true, happy_one.detail(1)),
        Figure::new("happy path, --jobs 2", happy_two.seeds_per_s(), "seeds/s", None, true, happy_two.detail(2)),
        Figure::new(
            "--jobs 2 ÷ --jobs 1",
            sweep,
            "×",
            None,
            true,
            format!("{cpus} CPUs, shared with whatever else the machine runs"),
        ),
        Figure::new("reference: two threads hashing ÷ one", reference_scaling, "×", None, true, reference.detail()),
        Figure::new(
            "sweep scaling ÷ reference scaling",
            sweep / reference_scaling.max(1e-9),
            "×",
            Some(SCALING_AGAINST_REFERENCE),
            true,
            format!("{sweep:.2} ÷ {reference_scaling:.2}: the sweep's two jobs against the machine's own two threads"),
        ),
    ]
}

/// The machine's two-thread scaling on pure computation: the best of [`ROUNDS`] rounds
/// of one thread, then two at once, each hashing [`HASH_MIB`] MiB of its own.
#[derive(Clone, Copy, Debug)]
pub(super) struct Reference {
    one_s: f64,
    two_s: f64,
}

impl Reference {
    /// Two threads' throughput ÷ one's: each did the same work, so 2 × one ÷ two.
    fn scaling(&self) -> f64 {
        2.0 * self.one_s / self.two_s.max(1e-9)
    }

    fn detail(&self) -> String {
        format!(
            "SHA-256 of {HASH_MIB} MiB per thread: one thread {:.2} s, two at once {:.2} s; best of {ROUNDS} rounds",
            self.one_s, self.two_s
        )
    }
}

/// Measures [`Reference`], one thread and two threads in turn.
pub(super) fn hashing_scaling() -> Reference {
    let (mut one_s, mut two_s) = (f64::MAX, f64::MAX);
    for _ in 0..ROUNDS {
        one_s = one_s.min(hashing_wall_s(1));
        two_s = two_s.min(hashing_wall_s(2));
    }
    Reference { one_s, two_s }
}

/// Wall seconds for `threads` threads each to hash [`HASH_MIB`] MiB of their own.
// Wall time is what is measured here; no outcome depends on it.
#[allow(clippy::disallowed_methods)]
fn hashing_wall_s(threads: usize) -> f64 {
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        let hashers: Vec<_> = (0..threads).map(|_| scope.spawn(hash_own_buffer)).collect();
        for hasher in hashers {
            std::hint::black_box(hasher.join().expect("a hashing thread does not panic"));
        }
    });
    started.elapsed().as_secs_f64()
}

/// [`HASH_MIB`] SHA-256 digests of a mebibyte each, every one hashing the last digest too,
/// so none can be skipped.
fn hash_own_buffer() -> String {
    let mut block = vec![0x5a_u8; 1 << 20];
    let mut digest = String::new();
    for _ in 0..HASH_MIB {
        block[..digest.len()].copy_from_slice(digest.as_bytes());
        digest = smsim_core::store::sha256_hex(&block);
    }
    digest
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
        (smsim_sim::world::engine_config(scenario), smsim_sim::provider::Behaviour::from_scenario(scenario));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::Verdict;

    fn speed(seeds_per_s: f64) -> Speed {
        Speed { seeds: 100, wall_s: 100.0 / seeds_per_s, simulated_s: 1_000.0 }
    }

    /// The sweep is judged against the machine's own scaling, not against 2×: 1.40× on a
    /// machine whose two threads hash 1.64× one's is 0.85 of it, met; 1.28× is missed.
    #[test]
    fn sweep_scaling_is_judged_against_the_reference() {
        let reference = Reference { one_s: 1.0, two_s: 2.0 / 1.64 };
        let figures = scaling(speed(100.0), speed(140.0), reference, 2);
        let figure = |name: &str| figures.iter().find(|figure| figure.name == name).unwrap();
        assert!((figure("reference: two threads hashing ÷ one").value.unwrap() - 1.64).abs() < 1e-9);
        assert!((figure("--jobs 2 ÷ --jobs 1").value.unwrap() - 1.4).abs() < 1e-9);
        assert_eq!(figure("--jobs 2 ÷ --jobs 1").verdict, Verdict::NoTarget);
        let judged = figure("sweep scaling ÷ reference scaling");
        assert!((judged.value.unwrap() - 1.4 / 1.64).abs() < 1e-9);
        assert_eq!(judged.verdict, Verdict::Met);
        let slower = scaling(speed(100.0), speed(128.0), reference, 2);
        assert_eq!(slower.last().unwrap().verdict, Verdict::Missed);
    }
}
