//! Human-readable summaries of runs.

use crate::run::RunReport;
use std::fmt::Write;

/// A run's summary: campaigns, money, faults, invariants, coverage, and on failure the
/// evidence, the last events and the command to reproduce.
pub fn summary(report: &RunReport) -> String {
    let mut out = String::new();
    let verdict = if report.passed() { "PASS" } else { "FAIL" };
    let _ = writeln!(
        out,
        "{verdict}  {} seed {}  ({} simulated s, {} events, trace {})",
        report.scenario,
        report.seed,
        report.simulated_ms / 1_000,
        report.events,
        &report.trace_hash[..16]
    );
    for campaign in &report.campaigns {
        let _ = writeln!(
            out,
            "  campaign {} {:<12} {:<10} total {:>6}  sent {:>6}  delivered {:>6}  failed {:>5}  skipped {:>5}  cancelled {:>5}  progress {:>3}%",
            campaign.id, campaign.name, campaign.status, campaign.total, campaign.sent, campaign.delivered, campaign.failed, campaign.skipped, campaign.cancelled, campaign.progress
        );
    }
    for (tenant, charged) in &report.charged {
        let _ = writeln!(out, "  tenant {tenant}: charged {charged} credits");
    }
    let faults: Vec<String> =
        report.faults.events.iter().map(|fault| serde_json::to_string(fault).unwrap_or_default()).collect();
    let _ = writeln!(out, "  timed faults: {}", if faults.is_empty() { "none".to_owned() } else { faults.join(", ") });
    let checks: Vec<String> = report.checks.iter().map(|(name, count)| format!("{name} ×{count}")).collect();
    let _ = writeln!(out, "  invariants checked: {}", checks.join(", "));
    let coverage: Vec<String> = report.coverage.iter().map(|(name, count)| format!("{name} ×{count}")).collect();
    let _ = writeln!(
        out,
        "  coverage: {}",
        if coverage.is_empty() { "nothing rare happened".to_owned() } else { coverage.join(", ") }
    );
    if let Some(violation) = &report.violation {
        let _ = writeln!(out);
        let _ = write!(out, "{violation}");
        let _ = writeln!(out, "last events:");
        for line in &report.tail {
            let _ = writeln!(out, "  {line}");
        }
        let _ = writeln!(out, "reproduce with:\n  {}", report.reproduce);
    }
    out
}
