//! Shrinking a failing fault plan to the smallest one that still fails.
//!
//! A failure found by a swarm seed usually carries many faults that had nothing to do
//! with it. [`shrink`] removes them greedily, the way proptest simplifies a value: drop a
//! timed fault, zero a rate, halve a rate — keep each change that still fails, repeat
//! until no change does. The result is written as an explicit scenario under
//! `scenarios/regressions/`, which the test suite replays.

use crate::scenario::{FaultEvent, FaultRates, FaultSection, Scenario};
use crate::world::{FaultPlan, TimedFault};

/// The rates of a plan as (name, value) pairs, and a setter, for uniform shrinking.
fn rates_mut(rates: &mut FaultRates) -> [(&'static str, &mut f64); 12] {
    [
        ("provider_5xx", &mut rates.provider_5xx),
        ("provider_429", &mut rates.provider_429),
        ("timeout_after_accept", &mut rates.timeout_after_accept),
        ("partial_bulk_failure", &mut rates.partial_bulk_failure),
        ("malformed_answer", &mut rates.malformed_answer),
        ("duplicate_report", &mut rates.duplicate_report),
        ("report_before_answer", &mut rates.report_before_answer),
        ("intermediate_after_final", &mut rates.intermediate_after_final),
        ("unknown_id_report", &mut rates.unknown_id_report),
        ("forged_report", &mut rates.forged_report),
        ("store_transient", &mut rates.store_transient),
        ("crash_after_accept", &mut rates.crash_after_accept),
    ]
}

/// Candidate simplifications of `plan`, simplest first.
fn candidates(plan: &FaultPlan) -> Vec<FaultPlan> {
    let mut out = Vec::new();
    for index in 0..plan.events.len() {
        let mut smaller = plan.clone();
        smaller.events.remove(index);
        out.push(smaller);
    }
    for zero_or_halve in [true, false] {
        for index in 0..12 {
            let mut smaller = plan.clone();
            let mut rates = rates_mut(&mut smaller.rates);
            let value = &mut rates[index].1;
            if **value <= 0.0 {
                continue;
            }
            **value = if zero_or_halve || **value < 0.002 { 0.0 } else { **value / 2.0 };
            out.push(smaller);
        }
    }
    out
}

/// The smallest plan (by greedy simplification) for which `still_fails` holds, and the
/// number of runs it took. `still_fails(plan)` must hold on entry.
pub fn shrink(plan: FaultPlan, max_runs: usize, mut still_fails: impl FnMut(&FaultPlan) -> bool) -> (FaultPlan, usize) {
    let mut current = plan;
    let mut runs = 0;
    'outer: loop {
        for candidate in candidates(&current) {
            if runs >= max_runs {
                break 'outer;
            }
            runs += 1;
            if still_fails(&candidate) {
                current = candidate;
                continue 'outer;
            }
        }
        break;
    }
    (current, runs)
}

/// `scenario` with its faults replaced by exactly `plan` (no swarm).
pub fn with_plan(scenario: &Scenario, plan: &FaultPlan) -> Scenario {
    let seconds = |ms: u64| ms as f64 / 1_000.0;
    let events = plan
        .events
        .iter()
        .map(|event| match event.clone() {
            TimedFault::Crash { host, at_ms, restart_at_ms } => {
                FaultEvent::Crash { host, at_s: seconds(at_ms), restart_after_s: seconds(restart_at_ms - at_ms) }
            }
            TimedFault::Partition { a, b, at_ms, until_ms } => {
                FaultEvent::Partition { a, b, at_s: seconds(at_ms), for_s: seconds(until_ms - at_ms) }
            }
            TimedFault::Hold { a, b, at_ms, until_ms } => {
                FaultEvent::Hold { a, b, at_s: seconds(at_ms), for_s: seconds(until_ms - at_ms) }
            }
            TimedFault::Outage { status, at_ms, until_ms } => {
                FaultEvent::ProviderOutage { status, at_s: seconds(at_ms), for_s: seconds(until_ms - at_ms) }
            }
        })
        .collect();
    Scenario { faults: FaultSection { swarm: false, rates: plan.rates.clone(), events }, ..scenario.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinking_keeps_only_what_the_failure_needs() {
        let plan = FaultPlan {
            rates: FaultRates {
                provider_5xx: 0.2,
                duplicate_report: 0.4,
                crash_after_accept: 0.08,
                ..FaultRates::default()
            },
            events: vec![
                TimedFault::Crash { host: "worker-1".into(), at_ms: 1_000, restart_at_ms: 2_000 },
                TimedFault::Partition { a: "worker-2".into(), b: "provider".into(), at_ms: 5_000, until_ms: 9_000 },
            ],
        };
        // A failure that needs duplicated reports at a rate above 0.05 and the crash.
        let fails = |plan: &FaultPlan| {
            plan.rates.duplicate_report > 0.05 && plan.events.iter().any(|e| matches!(e, TimedFault::Crash { .. }))
        };
        let (smallest, runs) = shrink(plan, 1_000, fails);
        assert!(fails(&smallest));
        assert_eq!(smallest.events.len(), 1);
        assert_eq!((smallest.rates.provider_5xx, smallest.rates.crash_after_accept), (0.0, 0.0));
        assert!(
            smallest.rates.duplicate_report <= 0.1,
            "halved down to just above the threshold: {}",
            smallest.rates.duplicate_report
        );
        assert!(runs < 100);
    }
}
