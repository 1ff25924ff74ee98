//! One run: build the world, step it, apply the fault plan on time, heal, check the
//! oracle after every step and at the end, and report.
//!
//! A run is identified by (scenario, seed); its trace hash must be the same on every
//! machine. A failing run reports the invariant, the simulated time, the evidence, the
//! last events and the command that reproduces it.

use crate::coverage::Mark;
use crate::oracle::{Invariant, Oracle, Violation};
use crate::scenario::Scenario;
use crate::timeline::{Collector, Timeline};
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
    /// Gather a [`Timeline`] beside the trace (for `--html`); the trace hash is the same.
    pub timeline: bool,
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
    /// Hash of the scenario's resolved configuration ([`Scenario::config_hash`]):
    /// with the scenario's name and the seed it identifies the run.
    pub config_hash: String,
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
    /// The run's timeline, when [`RunOptions::timeline`] asked for it.
    #[serde(skip)]
    pub timeline: Option<Timeline>,
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

/// Runs `scenario` with `seed`: the safety phase with faults, heal, the liveness phase,
/// the end-of-run checks, then the report.
pub fn run(scenario: &Scenario, seed: u64, options: &RunOptions) -> anyhow::Result<RunReport> {
    let _bug = BugGuard::activate(scenario, options)?;
    let world = match &options.adapters {
        Some(factory) => world::build_with(scenario, seed, factory.0.clone())?,
        None => world::build(scenario, seed)?,
    };
    let mut runner = Runner::new(world, scenario, options);
    let violation = runner.phases().and_then(|()| runner.check_end()).err();
    Ok(runner.finish(scenario, seed, options, violation))
}

/// Whether a run goes on after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Progress {
    /// More to do.
    Running,
    /// The end of the run, or nothing left to happen.
    Done,
}

/// One run in progress: the world, the oracle watching it, the trace, the coverage so
/// far, and the timed faults not yet over.
struct Runner {
    world: World,
    oracle: Oracle,
    trace: Trace,
    /// What the timeline needs beyond the trace, when `--html` asked for it.
    collector: Option<Collector>,
    marks: BTreeMap<String, u64>,
    /// Timed faults still to start or, once started (`at_ms: u64::MAX`), to end.
    pending_faults: Vec<TimedFault>,
    /// Crashed hosts and when they restart.
    restarts: Vec<(u64, String)>,
    healed: bool,
    now_ms: u64,
}

impl Runner {
    fn new(world: World, scenario: &Scenario, options: &RunOptions) -> Runner {
        let oracle = Oracle::new(&scenario.expect.invariants, world.judge_setup.clone(), world.limits.clone());
        let mut trace = Trace::new(options.keep_trace || options.timeline);
        let collector = options.timeline.then(|| {
            world.provider.truth.lock().expect("provider poisoned").exchanges = Some(Vec::new());
            Collector::default()
        });
        trace.record(0, "harness", &HarnessEvent::FaultPlan { plan: &world.plan });
        let pending_faults = world.plan.events.clone();
        Runner {
            world,
            oracle,
            trace,
            collector,
            marks: BTreeMap::new(),
            pending_faults,
            restarts: Vec::new(),
            healed: false,
            now_ms: 0,
        }
    }

    /// VOPR's two loops: a safety phase in which faults happen and every `always`
    /// invariant is checked after every step, then heal, then a liveness phase without
    /// faults that must converge by the end (or settle earlier).
    fn phases(&mut self) -> Result<(), Violation> {
        while !self.healed {
            self.step()?;
            if self.now_ms >= self.world.heal_at_ms {
                self.heal();
            }
            if self.observe()? == Progress::Done {
                return Ok(());
            }
        }
        loop {
            self.step()?;
            if self.observe()? == Progress::Done {
                return Ok(());
            }
        }
    }

    /// One simulation step, then the timed faults due at its time. A host that panics
    /// or a simulation that runs out of time fails the run.
    fn step(&mut self) -> Result<(), Violation> {
        let stepped = self.world.sim.step();
        self.now_ms = self.world.sim.elapsed().as_millis() as u64;
        if let Err(error) = stepped {
            return Err(Violation {
                invariant: Invariant::Liveness,
                at_ms: self.now_ms,
                message: format!("the simulation failed: {error}"),
                evidence: vec!["a host panicked or the simulation ran out of time".into()],
            });
        }
        apply_faults(
            &mut self.world,
            self.now_ms,
            &mut self.pending_faults,
            &mut self.restarts,
            &mut self.trace,
            &mut self.marks,
            self.healed,
        );
        Ok(())
    }

    /// Ends the fault phase: links repaired, crashed hosts restarted, rates off.
    fn heal(&mut self) {
        heal(&mut self.world, &mut self.restarts, &mut self.pending_faults);
        self.trace.record(self.now_ms, "harness", &HarnessEvent::Heal);
        self.healed = true;
    }

    /// Traces what the step did, checks it, and says whether the run is over.
    fn observe(&mut self) -> Result<Progress, Violation> {
        // The store underneath the faulty wrapper: its reads do not fail by design, so a
        // failure is a bug, not an empty step.
        let journal = self.world.store.take_journal().expect("the memory store's journal is always readable");
        record_marks(&journal, &mut self.marks);
        for entry in &journal {
            self.trace.record(self.now_ms, "store", entry);
        }
        {
            let mut truth = self.world.provider.truth.lock().expect("provider poisoned");
            for (at, event) in truth.events.drain(..) {
                self.trace.record(at, "provider", &event);
            }
        }
        {
            let mut driver = self.world.driver.lock().expect("driver log poisoned");
            for (at, event) in driver.events.drain(..) {
                self.trace.record(at, "driver", &event);
            }
        }
        if let Some(collector) = self.collector.as_mut() {
            collector.sample(self.now_ms, self.world.store.as_ref());
        }
        let mut truth = self.world.provider.truth.lock().expect("provider poisoned");
        let mut driver = self.world.driver.lock().expect("driver log poisoned");
        self.oracle.check_step(self.now_ms, &journal, self.world.store.as_ref(), &mut truth, &mut driver)?;
        if self.now_ms >= self.world.end_ms {
            return Ok(Progress::Done);
        }
        // Once nothing is left to happen — every planned action and fault done, the engine
        // idle, no report on its way — the rest of the run would be idle steps and the
        // driver's polls: the end-of-run checks would find exactly what they find now.
        let settled = self.pending_faults.is_empty()
            && self.restarts.is_empty()
            && driver.plan_done
            && driver.actions_in_flight == 0
            && truth.reports_pending == 0
            && truth.crash_requests.is_empty()
            && self.oracle.engine_idle();
        if settled {
            self.trace.record(self.now_ms, "harness", &HarnessEvent::Settled);
            return Ok(Progress::Done);
        }
        Ok(Progress::Running)
    }

    /// The end-of-run checks: the oracle's final ones, and every campaign of the
    /// scenario started.
    fn check_end(&mut self) -> Result<(), Violation> {
        let mut driver = self.world.driver.lock().expect("driver log poisoned");
        {
            let mut truth = self.world.provider.truth.lock().expect("provider poisoned");
            self.oracle.check_final(self.now_ms, self.world.store.as_ref(), &mut truth, &mut driver)?;
        }
        if !driver.not_started.is_empty() {
            return Err(Violation {
                invariant: Invariant::Liveness,
                at_ms: self.now_ms,
                message: format!("{} campaign(s) of the scenario never started", driver.not_started.len()),
                evidence: driver.not_started.clone(),
            });
        }
        Ok(())
    }

    /// The report: the violation traced, the coverage gathered from every source, the
    /// outcomes read from the store.
    fn finish(
        mut self,
        scenario: &Scenario,
        seed: u64,
        options: &RunOptions,
        violation: Option<Violation>,
    ) -> RunReport {
        if let Some(violation) = &violation {
            self.trace.record(violation.at_ms, "oracle", &HarnessEvent::Violation { violation });
        }
        self.gather_marks();
        let world = &self.world;
        let campaigns = outcomes(world.store.as_ref(), &world.driver.lock().expect("driver log poisoned").campaigns);
        let tenants = world.store.tenants().expect("the memory store's tenants are always readable");
        let charged = tenants.into_iter().map(|t| (t.name, t.charged.get())).collect();
        let trace_hash = self.trace.hash();
        let mut report = RunReport {
            scenario: scenario.name.clone(),
            seed,
            config_hash: scenario.config_hash(),
            events: self.trace.len(),
            simulated_ms: self.now_ms,
            faults: world.plan.clone(),
            coverage: self.marks,
            checks: self
                .oracle
                .checks()
                .iter()
                .map(|(invariant, count)| (invariant.name().to_owned(), *count))
                .collect(),
            campaigns,
            charged,
            tail: self.trace.tail().map(str::to_owned).collect(),
            reproduce: reproduce(scenario, seed, options, &trace_hash),
            violation,
            trace_hash,
            timeline: None,
            trace: None,
        };
        if let Some(collector) = self.collector.take() {
            let run = Timeline {
                scenario: report.scenario.clone(),
                seed: report.seed,
                reproduce: report.reproduce.clone(),
                trace_hash: report.trace_hash.clone(),
                simulated_ms: report.simulated_ms,
                violation: report.violation.clone(),
                ..Timeline::default()
            };
            report.timeline = Some(crate::timeline::gather(collector, run, world, &self.trace));
        }
        report.trace = options.keep_trace.then_some(self.trace);
        report
    }

    /// Adds the provider's, the driver's and the faulty store's marks to the run loop's.
    fn gather_marks(&mut self) {
        let truth = self.world.provider.truth.lock().expect("provider poisoned");
        let driver = self.world.driver.lock().expect("driver log poisoned");
        for (name, count) in truth.marks.iter().chain(driver.marks.iter()) {
            *self.marks.entry((*name).to_owned()).or_default() += count;
        }
        let store_failures = self.world.faulty_store.failures();
        if store_failures > 0 {
            self.marks.insert(Mark::StoreTransientFailure.name().into(), store_failures);
        }
    }
}

/// The command that reproduces a run and checks that it did.
fn reproduce(scenario: &Scenario, seed: u64, options: &RunOptions, trace_hash: &str) -> String {
    let scenario_path = options.scenario_path.clone().unwrap_or_else(|| format!("scenarios/{}.toml", scenario.name));
    let incident = if scenario.expect.incident.is_some() && !options.without_bug {
        "   (an engine built with --features incidents)"
    } else {
        ""
    };
    format!("smsim replay {scenario_path} --seed {seed} --expect-hash {trace_hash}{incident}")
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
                if let Some(mark) = Mark::crash_of(host) {
                    count(marks, mark);
                }
            }
            TimedFault::Partition { a, b, at_ms, until_ms } if *at_ms <= now_ms && now_ms < *until_ms => {
                world.sim.partition(a.as_str(), b.as_str());
                trace.record(now_ms, "harness", &HarnessEvent::Fault { fault: "partition", host: a });
                count(marks, Mark::Partition);
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
                count(marks, Mark::HeldLink);
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
        let holding = world
            .store
            .queue_stats(None, crate::clock::EPOCH.plus_ms(now_ms))
            .expect("the memory store's queue stats are always readable")
            .submitting;
        crash(world, &host, pending);
        restarts.push((now_ms + 2_000, host.clone()));
        trace.record(now_ms, "harness", &HarnessEvent::Fault { fault: "crash_after_accept", host: &host });
        if holding > 0 {
            count(marks, Mark::CrashBetweenAcceptAndCommit);
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

/// Counts one pass through `mark`.
fn count(marks: &mut BTreeMap<String, u64>, mark: Mark) {
    *marks.entry(mark.name().to_owned()).or_default() += 1;
}

fn record_marks(journal: &[JournalEntry], marks: &mut BTreeMap<String, u64>) {
    use MessageStatus::*;
    for entry in journal {
        if let JournalEntry::Message { from: Some(from), to, .. } = entry {
            let mark = match (from, to) {
                (Submitting, Unknown) => Mark::SubmissionUnknown,
                (Unknown, Accepted) => Mark::UnknownResolvedAccepted,
                (Unknown, Failed) => Mark::UnknownSettledOrRefuted,
                (Submitting, Queued) => Mark::RetryScheduled,
                (Failed, Queued) => Mark::FailedRequeuedByOperator,
                (Queued, Cancelled) => Mark::QueuedCancelled,
                _ => continue,
            };
            count(marks, mark);
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
        .expect("the memory store's campaigns are always readable")
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
