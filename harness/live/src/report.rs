//! A live run's report: the fault plan and what of it fired, the campaigns, the verdict
//! per invariant with the simulator's [`Violation`]s as evidence, and the command that
//! reruns the plan. Printed like `smsim run`'s summary.

use crate::check::{CampaignOutcome, TenantOutcome, VerdictRow};
use crate::plan::FaultPlan;
use serde::Serialize;
use smsim_sim::oracle::Violation;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Faults that actually happened (counted from the trace's events).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FaultsFired {
    /// SIGKILLs of every kind.
    pub kills: u32,
    /// SIGKILLs while the provider held the answer to a request it had accepted.
    pub kills_between_accept_and_commit: u32,
    /// SIGSTOP … SIGCONT pauses.
    pub pauses: u32,
    /// SIGKILLs of a service.
    pub service_kills: u32,
    /// Starts of a process or service after its first.
    pub restarts: u32,
    /// Planned faults that found no engine to act on, or no request to hold.
    pub missed: u32,
    /// The missed ones, by why.
    pub missed_why: BTreeMap<String, u32>,
}

/// The missed faults by why, as the report's `fired` line ends: ` (2 when …; 1 when …)`,
/// or nothing when none was missed.
fn missed_why(by_why: &BTreeMap<String, u32>) -> String {
    if by_why.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = by_why.iter().map(|(why, count)| format!("{count}: {why}")).collect();
    format!(" ({})", parts.join("; "))
}

/// The outcome of `smsim live`.
#[derive(Clone, Debug, Serialize)]
pub struct LiveReport {
    /// Scenario name.
    pub scenario: String,
    /// Engine profile name.
    pub engine: String,
    /// The seed.
    pub seed: u64,
    /// The fault plan drawn from the seed.
    pub plan: FaultPlan,
    /// What fired.
    pub fired: FaultsFired,
    /// Each invariant's verdict (money per tenant), as the judge gave it.
    pub verdicts: Vec<VerdictRow>,
    /// The broken invariant, with evidence (the judge stops at the first).
    pub violations: Vec<Violation>,
    /// Campaigns at the end.
    pub campaigns: Vec<CampaignOutcome>,
    /// Tenants at the end.
    pub tenants: Vec<TenantOutcome>,
    /// Acceptances at the provider (duplicates included).
    pub acceptances: u64,
    /// Acceptances beyond the first of a message.
    pub duplicate_acceptances: u64,
    /// Reports the provider sent.
    pub reports_sent: u64,
    /// Rare paths the provider took (its coverage marks: faults drawn, early and
    /// duplicated reports), so a green run that exercised nothing shows.
    pub coverage: BTreeMap<String, u64>,
    /// Readings sampled during the run.
    pub samples: u64,
    /// How steadily the fault phase was sampled.
    pub sampling: Sampling,
    /// Wall-clock milliseconds the run took.
    pub wall_ms: u64,
    /// The working directory (engine database, logs, trace).
    pub workdir: String,
    /// The JSON-lines trace.
    pub trace: String,
    /// The trace's lines around the violation (3 s before to 1 s after, on the run's one
    /// clock), or its last lines when nothing broke.
    pub tail: Vec<String>,
    /// The command that reruns this fault plan.
    pub reproduce: String,
    /// The run's timeline, when asked for (`smsim live --html`).
    #[serde(skip)]
    pub timeline: Option<smsim_sim::timeline::Timeline>,
}

/// How steadily the engine was read during the fault phase: the gaps between sampling
/// rounds that read every campaign, told apart by whether the engine was killed or stopped
/// in between (the engine's gap) or not (the sampler's).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Sampling {
    /// Rounds that read every campaign.
    pub rounds: u64,
    /// The longest gap between two rounds, ms.
    pub largest_gap_ms: u64,
    /// The longest gap with no kill or stop of the engine in it, ms.
    pub largest_gap_engine_up_ms: u64,
    /// The median such gap, ms.
    pub median_gap_engine_up_ms: u64,
}

impl Sampling {
    /// The gaps between `rounds` (ms, ascending), with `disruptions` (ms) telling which
    /// gaps the engine was down or stopped in.
    pub fn of(rounds: &[u64], disruptions: &[u64]) -> Sampling {
        let mut up: Vec<u64> = Vec::new();
        let mut largest = 0;
        for pair in rounds.windows(2) {
            let (from, to) = (pair[0], pair[1]);
            let gap = to.saturating_sub(from);
            largest = largest.max(gap);
            if !disruptions.iter().any(|&at| from <= at && at < to) {
                up.push(gap);
            }
        }
        up.sort_unstable();
        Sampling {
            rounds: rounds.len() as u64,
            largest_gap_ms: largest,
            largest_gap_engine_up_ms: up.last().copied().unwrap_or(0),
            median_gap_engine_up_ms: up.get(up.len() / 2).copied().unwrap_or(0),
        }
    }
}

impl LiveReport {
    /// Whether every checked invariant held.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// The report for people.
pub fn summary(report: &LiveReport) -> String {
    let mut out = String::new();
    let verdict = if report.passed() { "PASS" } else { "FAIL" };
    let _ = writeln!(
        out,
        "{verdict}  {} against {} seed {}  ({:.1} wall s, {} samples)",
        report.scenario,
        report.engine,
        report.seed,
        report.wall_ms as f64 / 1_000.0,
        report.samples
    );
    let sampling = &report.sampling;
    let _ = writeln!(
        out,
        "  sampling: {} rounds in the fault phase; gaps with the engine up: median {} ms, largest {} ms (largest across a kill or stop {} ms)",
        sampling.rounds, sampling.median_gap_engine_up_ms, sampling.largest_gap_engine_up_ms, sampling.largest_gap_ms
    );
    for campaign in &report.campaigns {
        let last = &campaign.last;
        let _ = writeln!(
            out,
            "  campaign {:<12} {:<10} contacts {:>6}  sent {:>6}  failed {:>5}  progress {:>3}%  provider accepted {:>6} ({} distinct)",
            campaign.name, last.status, campaign.contacts, last.sent, last.failed, last.progress, campaign.accepted, campaign.accepted_distinct
        );
    }
    for tenant in &report.tenants {
        let charged = tenant.charged.map_or_else(|| "not exposed".to_owned(), |c| format!("{c} credits"));
        let _ = writeln!(out, "  tenant {}: charged {charged}", tenant.name);
    }
    let plan: Vec<String> = report.plan.faults.iter().map(|f| serde_json::to_string(f).unwrap_or_default()).collect();
    let _ = writeln!(out, "  fault plan: {}", if plan.is_empty() { "none".to_owned() } else { plan.join(", ") });
    let fired = &report.fired;
    let _ = writeln!(
        out,
        "  fired: {} SIGKILLs ({} between acceptance and commit), {} SIGSTOP pauses, {} service kills, {} restarts, {} missed{}",
        fired.kills,
        fired.kills_between_accept_and_commit,
        fired.pauses,
        fired.service_kills,
        fired.restarts,
        fired.missed,
        missed_why(&fired.missed_why)
    );
    let _ = writeln!(
        out,
        "  provider: {} acceptances, {} duplicate, {} reports sent",
        report.acceptances, report.duplicate_acceptances, report.reports_sent
    );
    let coverage: Vec<String> = report.coverage.iter().map(|(mark, count)| format!("{mark} ×{count}")).collect();
    let _ = writeln!(
        out,
        "  coverage: {}",
        if coverage.is_empty() { "nothing rare happened at the provider".to_owned() } else { coverage.join(", ") }
    );
    let _ = writeln!(out, "  invariants:");
    for row in &report.verdicts {
        let name = match &row.tenant {
            Some(tenant) => format!("{} ({tenant})", row.invariant),
            None => row.invariant.to_string(),
        };
        let verdict = match (row.verdict, &row.why) {
            ("held", _) => format!("held ({} checks)", row.checks),
            ("broken", _) => "BROKEN".to_owned(),
            (word, Some(why)) => format!("{word}: {why}"),
            (word, None) => word.to_owned(),
        };
        let _ = writeln!(out, "    {name:<24} {verdict}");
    }
    let _ = writeln!(out, "  trace {}  (workdir {})", report.trace, report.workdir);
    for violation in &report.violations {
        let _ = writeln!(out);
        let _ = write!(out, "{violation}");
    }
    if !report.passed() {
        let _ = writeln!(out, "events around the violation (the trace's clock is the judge's):");
        for line in &report.tail {
            let _ = writeln!(out, "  {line}");
        }
    }
    let _ = writeln!(out, "rerun this fault plan with:\n  {}", report.reproduce);
    out
}

#[cfg(test)]
mod tests {
    use super::{missed_why, Sampling};
    use std::collections::BTreeMap;

    /// A missed fault says why, with how many times; none missed says nothing.
    #[test]
    fn missed_faults_are_reported_with_why() {
        assert_eq!(missed_why(&BTreeMap::new()), "");
        let by_why =
            BTreeMap::from([("the service was not running".to_owned(), 1), ("its target was down".to_owned(), 2)]);
        assert_eq!(missed_why(&by_why), " (2: its target was down; 1: the service was not running)");
    }

    /// Gaps across a kill or stop are the engine's; the rest are the sampler's.
    #[test]
    fn sampling_gaps_are_told_apart_by_the_engines_disruptions() {
        let sampling = Sampling::of(&[0, 250, 500, 2_500, 2_750, 3_100], &[600]);
        assert_eq!(
            sampling,
            Sampling { rounds: 6, largest_gap_ms: 2_000, largest_gap_engine_up_ms: 350, median_gap_engine_up_ms: 250 }
        );
        assert_eq!(Sampling::of(&[], &[]), Sampling::default());
    }
}
