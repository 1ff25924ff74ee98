//! One run: build the world, step it, apply the fault plan on time, heal, check the
//! oracle after every step and at the end, and report.
//!
//! A run is identified by (scenario, seed); its trace hash must be the same on every
//! machine. A failing run reports the invariant, the simulated time, the evidence, the
//! last events and the command that reproduces it.

use crate::oracle::{Invariant, Oracle, Violation};
use crate::scenario::Scenario;
use crate::trace::Trace;
use crate::world::{self, TimedFault, World};
use serde::Serialize;
use smsim_core::domain::MessageStatus;
use smsim_core::service::AdapterFactory;
use smsim_core::store::{JournalEntry, Store};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

/// Options of a run.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Keep every trace line (for `--trace`), not just the tail.
    pub keep_trace: bool,
    /// The scenario file, for the reproduction command.
    pub scenario_path: Option<String>,
    /// Run an incident scenario on the normal engine (its bug off).
    pub without_bug: bool,
    /// Build the engine's adapters with this factory instead of the built-in one.
    pub adapters: Option<AdapterFactoryRef>,
}

/// A shared adapter factory in [`RunOptions`].
#[derive(Clone)]
pub struct AdapterFactoryRef(pub Arc<dyn AdapterFactory>);

impl std::fmt::Debug for AdapterFactoryRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdapterFactory")
    }
}

/// Switches an incident's bug on for this thread for as long as it lives.
struct BugGuard;

impl BugGuard {
    fn activate(scenario: &Scenario, options: &RunOptions) -> anyhow::Result<BugGuard> {
        let bug = match (&scenario.expect.incident, options.without_bug) {
            (Some(incident), false) => {
                Some(incident.bug.parse::<smsim_core::incidents::Bug>().map_err(anyhow::Error::msg)?)
            }
            _ => None,
        };
        smsim_core::incidents::activate(bug).map_err(anyhow::Error::msg)?;
        Ok(BugGuard)
    }
}

impl Drop for BugGuard {
    fn drop(&mut self) {
        let _ = smsim_core::incidents::activate(None);
    }
}

/// A campaign's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CampaignOutcome {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Final status.
    pub status: String,
    /// Messages.
    pub total: u32,
    /// Provider-accepted.
    pub sent: u32,
    /// Delivered.
    pub delivered: u32,
    /// Failed.
    pub failed: u32,
    /// Skipped.
    pub skipped: u32,
    /// Cancelled.
    pub cancelled: u32,
    /// Progress.
    pub progress: u8,
}

/// What a run found.
#[derive(Debug, Serialize)]
pub struct RunReport {
    /// The scenario's name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// Hash of the trace.
    pub trace_hash: String,
    /// Trace events.
    pub events: u64,
    /// Simulated time covered (ms).
    pub simulated_ms: u64,
    /// The fault plan.
    pub faults: world::FaultPlan,
    /// Coverage marks: rare paths the run went through, and how often.
    pub coverage: BTreeMap<String, u64>,
    /// Checks run per invariant.
    pub checks: BTreeMap<String, u64>,
    /// Campaign outcomes.
    pub campaigns: Vec<CampaignOutcome>,
    /// Credits charged per tenant.
    pub charged: BTreeMap<String, i64>,
    /// The first broken invariant, if any.
    pub violation: Option<Violation>,
    /// The last trace lines.
    pub tail: Vec<String>,
    /// The command that reproduces this run.
    pub reproduce: String,
    #[serde(skip)]
    trace: Option<Trace>,
}

impl RunReport {
    /// Whether every invariant held.
    pub fn passed(&self) -> bool {
        self.violation.is_none()
    }

    /// Writes the whole trace (when kept) to `path`.
    pub fn write_trace(&self, path: &Path) -> std::io::Result<()> {
        match &self.trace {
            Some(trace) => trace.write_to(std::io::BufWriter::new(std::fs::File::create(path)?)),
            None => Ok(()),
        }
    }
}

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum HarnessEvent<'a> {
    FaultPlan { plan: &'a world::FaultPlan },
    Fault { fault: &'a str, host: &'a str },
    Heal,
    Settled,
    Violation { violation: &'a Violation },
}

/// Runs `scenario` with `seed`.
pub fn run(scenario: &Scenario, seed: u64, options: &RunOptions) -> anyhow::Result<RunReport> {
    let _bug = BugGuard::activate(scenario, options)?;
    let mut world = match &options.adapters {
        Some(factory) => world::build_with(scenario, seed, factory.0.clone())?,
        None => world::build(scenario, seed)?,
    };
    let enabled: Vec<Invariant> = scenario.expect.invariants.iter().filter_map(|name| Invariant::parse(name)).collect();
    let mut oracle = Oracle::new(&enabled, world.limits.clone());
    let mut trace = Trace::new(options.keep_trace);
    trace.record(0, "harness", &HarnessEvent::FaultPlan { plan: &world.plan });
    let mut marks: BTreeMap<String, u64> = BTreeMap::new();
    let mut pending_faults = world.plan.events.clone();
    let mut restarts: Vec<(u64, String)> = Vec::new();
    let mut healed = false;
    let mut violation = None;
    let mut now_ms;
    loop {
        let stepped = world.sim.step();
        now_ms = world.sim.elapsed().as_millis() as u64;
        if let Err(error) = stepped {
            violation = Some(Violation {
                invariant: Invariant::Liveness,
                at_ms: now_ms,
                message: format!("the simulation failed: {error}"),
                evidence: vec!["a host panicked or the simulation ran out of time".into()],
            });
            break;
        }
        apply_faults(&mut world, now_ms, &mut pending_faults, &mut restarts, &mut trace, &mut marks, healed);
        if !healed && now_ms >= world.heal_at_ms {
            heal(&mut world, &mut restarts, &mut pending_faults);
            trace.record(now_ms, "harness", &HarnessEvent::Heal);
            healed = true;
        }
        let journal = world.store.take_journal().unwrap_or_default();
        record_marks(&journal, &mut marks);
        for entry in &journal {
            trace.record(now_ms, "store", entry);
        }
        {
            let mut truth = world.provider.truth.lock().expect("provider poisoned");
            for (at, event) in truth.events.drain(..) {
                trace.record(at, "provider", &event);
            }
        }
        {
            let mut driver = world.driver.lock().expect("driver log poisoned");
            for (at, event) in driver.events.drain(..) {
                trace.record(at, "driver", &event);
            }
        }
        let truth = world.provider.truth.lock().expect("provider poisoned");
        let driver = world.driver.lock().expect("driver log poisoned");
        if let Err(found) = oracle.check_step(now_ms, &journal, world.store.as_ref(), &truth, &driver) {
            violation = Some(found);
            break;
        }
        if now_ms >= world.end_ms {
            break;
        }
        // Once nothing is left to happen — every planned action and fault done, the engine
        // idle, no report on its way — the rest of the run would be idle steps and the
        // driver's polls: the end-of-run checks would find exactly what they find now.
        let settled = pending_faults.is_empty()
            && restarts.is_empty()
            && driver.plan_done
            && driver.actions_in_flight == 0
            && truth.reports_pending == 0
            && truth.crash_requests.is_empty()
            && oracle.engine_idle();
        if settled {
            trace.record(now_ms, "harness", &HarnessEvent::Settled);
            break;
        }
    }
    if violation.is_none() {
        let truth = world.provider.truth.lock().expect("provider poisoned");
        violation = oracle.check_final(now_ms, world.store.as_ref(), &truth, &world.forbidden_destinations).err();
    }
    if violation.is_none() {
        let driver = world.driver.lock().expect("driver log poisoned");
        if !driver.not_started.is_empty() {
            violation = Some(Violation {
                invariant: Invariant::Liveness,
                at_ms: now_ms,
                message: format!("{} campaign(s) of the scenario never started", driver.not_started.len()),
                evidence: driver.not_started.clone(),
            });
        }
    }
    if let Some(violation) = &violation {
        trace.record(violation.at_ms, "oracle", &HarnessEvent::Violation { violation });
    }
    let truth = world.provider.truth.lock().expect("provider poisoned");
    for (name, count) in truth.marks.iter().chain(world.driver.lock().expect("driver log poisoned").marks.iter()) {
        *marks.entry((*name).to_owned()).or_default() += count;
    }
    let store_failures = world.faulty_store.failures();
    if store_failures > 0 {
        marks.insert("store_transient_failure".into(), store_failures);
    }
    drop(truth);
    let campaigns = outcomes(world.store.as_ref(), &world.driver.lock().expect("driver log poisoned").campaigns);
    let charged = world.store.tenants().unwrap_or_default().into_iter().map(|t| (t.name, t.charged.get())).collect();
    let scenario_path = options.scenario_path.clone().unwrap_or_else(|| format!("scenarios/{}.toml", scenario.name));
    Ok(RunReport {
        scenario: scenario.name.clone(),
        seed,
        trace_hash: trace.hash(),
        events: trace.len(),
        simulated_ms: now_ms,
        faults: world.plan.clone(),
        coverage: marks,
        checks: oracle.checks.iter().map(|(invariant, count)| (invariant.name().to_owned(), *count)).collect(),
        campaigns,
        charged,
        tail: trace.tail().map(str::to_owned).collect(),
        reproduce: format!(
            "smsim replay {scenario_path} --seed {seed}{}",
            if scenario.expect.incident.is_some() && !options.without_bug {
                "   (an engine built with --features incidents)"
            } else {
                ""
            }
        ),
        violation,
        trace: options.keep_trace.then_some(trace),
    })
}

fn apply_faults(
    world: &mut World,
    now_ms: u64,
    pending: &mut Vec<TimedFault>,
    restarts: &mut Vec<(u64, String)>,
    trace: &mut Trace,
    marks: &mut BTreeMap<String, u64>,
    healed: bool,
) {
    let mut remaining = Vec::with_capacity(pending.len());
    for fault in pending.drain(..) {
        match &fault {
            TimedFault::Crash { host, at_ms, restart_at_ms } if *at_ms <= now_ms => {
                crash(world, host, &remaining);
                restarts.push((*restart_at_ms, host.clone()));
                trace.record(now_ms, "harness", &HarnessEvent::Fault { fault: "crash", host });
                let kind = if host.starts_with("worker-") { "worker" } else { host.as_str() };
                *marks.entry(format!("crash_{kind}")).or_default() += 1;
            }
            TimedFault::Partition { a, b, at_ms, until_ms } if *at_ms <= now_ms && now_ms < *until_ms => {
                world.sim.partition(a.as_str(), b.as_str());
                trace.record(now_ms, "harness", &HarnessEvent::Fault { fault: "partition", host: a });
                *marks.entry("partition".into()).or_default() += 1;
                remaining.push(TimedFault::Partition {
                    a: a.clone(),
                    b: b.clone(),
                    at_ms: u64::MAX,
                    until_ms: *until_ms,
                });
            }
            TimedFault::Partition { a, b, at_ms: u64::MAX, until_ms } if *until_ms <= now_ms => {
                world.sim.repair(a.as_str(), b.as_str())
            }
            TimedFault::Hold { a, b, at_ms, until_ms } if *at_ms <= now_ms && now_ms < *until_ms => {
                world.sim.hold(a.as_str(), b.as_str());
                trace.record(now_ms, "harness", &HarnessEvent::Fault { fault: "hold", host: a });
                *marks.entry("held_link".into()).or_default() += 1;
                remaining.push(TimedFault::Hold { a: a.clone(), b: b.clone(), at_ms: u64::MAX, until_ms: *until_ms });
            }
            TimedFault::Hold { a, b, at_ms: u64::MAX, until_ms } if *until_ms <= now_ms => {
                world.sim.release(a.as_str(), b.as_str())
            }
            TimedFault::Outage { status, at_ms, until_ms } if *at_ms <= now_ms && now_ms < *until_ms => {
                world.provider.set_outage(Some(*status));
                trace.record(now_ms, "harness", &HarnessEvent::Fault { fault: "provider_outage", host: "provider" });
                remaining.push(TimedFault::Outage { status: *status, at_ms: u64::MAX, until_ms: *until_ms });
            }
            TimedFault::Outage { at_ms: u64::MAX, until_ms, .. } if *until_ms <= now_ms => {
                world.provider.set_outage(None)
            }
            _ => remaining.push(fault),
        }
    }
    *pending = remaining;
    // The provider asks for crashes of workers whose batch it just accepted: the crash
    // lands before the answer reaches them, between accept and commit.
    let requests: Vec<String> =
        std::mem::take(&mut world.provider.truth.lock().expect("provider poisoned").crash_requests);
    for host in requests {
        if healed || !world.sim.is_host_running(host.as_str()) || !host.starts_with("worker") {
            continue;
        }
        let holding =
            world.store.queue_stats(None, crate::clock::EPOCH.plus_ms(now_ms)).map_or(0, |stats| stats.submitting);
        crash(world, &host, pending);
        restarts.push((now_ms + 2_000, host.clone()));
        trace.record(now_ms, "harness", &HarnessEvent::Fault { fault: "crash_after_accept", host: &host });
        if holding > 0 {
            *marks.entry("crash_between_accept_and_commit".into()).or_default() += 1;
        }
    }
    let (due, later): (Vec<_>, Vec<_>) = restarts.drain(..).partition(|(at, _)| *at <= now_ms);
    *restarts = later;
    for (_, host) in due {
        world.sim.bounce(host.as_str());
    }
}

/// Crashes `host` the way a machine dies: its links go dark first, so the connections its
/// runtime drops on the way down send nothing. Left to itself, turmoil would send a FIN
/// for every dropped socket and draw each one's latency from the network's generator, in
/// the order tokio drops the tasks — an order that follows process-wide task ids, so the
/// same seed would take another path when other simulations share the process.
fn crash(world: &mut World, host: &str, active: &[TimedFault]) {
    let faulted = |peer: &str| {
        active.iter().any(|fault| match fault {
            TimedFault::Partition { a, b, at_ms: u64::MAX, .. } | TimedFault::Hold { a, b, at_ms: u64::MAX, .. } => {
                (a == host && b == peer) || (a == peer && b == host)
            }
            _ => false,
        })
    };
    let peers: Vec<String> =
        world.hosts.iter().filter(|peer| peer.as_str() != host && !faulted(peer)).cloned().collect();
    for peer in &peers {
        world.sim.partition(host, peer.as_str());
    }
    world.sim.crash(host);
    for peer in &peers {
        world.sim.repair(host, peer.as_str());
    }
}

fn heal(world: &mut World, restarts: &mut Vec<(u64, String)>, pending: &mut Vec<TimedFault>) {
    for fault in pending.drain(..) {
        match fault {
            TimedFault::Partition { a, b, at_ms: u64::MAX, .. } => world.sim.repair(a.as_str(), b.as_str()),
            TimedFault::Hold { a, b, at_ms: u64::MAX, .. } => world.sim.release(a.as_str(), b.as_str()),
            _ => {}
        }
    }
    for (_, host) in restarts.drain(..) {
        world.sim.bounce(host.as_str());
    }
    world.provider.heal();
    world.faulty_store.heal();
}

fn record_marks(journal: &[JournalEntry], marks: &mut BTreeMap<String, u64>) {
    use MessageStatus::*;
    for entry in journal {
        if let JournalEntry::Message { from: Some(from), to, .. } = entry {
            let mark = match (from, to) {
                (Submitting, Unknown) => "submission_unknown",
                (Unknown, Accepted) => "unknown_resolved_accepted",
                (Unknown, Failed) => "unknown_settled_or_refuted",
                (Submitting, Queued) => "retry_scheduled",
                (Failed, Queued) => "failed_requeued_by_operator",
                (Queued, Cancelled) => "queued_cancelled",
                _ => continue,
            };
            *marks.entry(mark.into()).or_default() += 1;
        }
    }
}

fn outcomes(
    store: &dyn Store,
    names: &BTreeMap<String, (smsim_core::TenantId, smsim_core::CampaignId)>,
) -> Vec<CampaignOutcome> {
    let by_id: BTreeMap<_, _> = names.iter().map(|(name, (_, id))| (*id, name.clone())).collect();
    let ids: BTreeSet<_> = by_id.keys().copied().collect();
    store
        .all_campaigns()
        .unwrap_or_default()
        .into_iter()
        .filter(|campaign| ids.contains(&campaign.id))
        .map(|campaign| CampaignOutcome {
            id: campaign.id.to_string(),
            name: by_id[&campaign.id].clone(),
            status: campaign.status.to_string(),
            total: campaign.counts.total(),
            sent: campaign.counts.sent(),
            delivered: campaign.counts.delivered,
            failed: campaign.counts.failed,
            skipped: campaign.counts.skipped,
            cancelled: campaign.counts.cancelled,
            progress: campaign.progress(),
        })
        .collect()
}
