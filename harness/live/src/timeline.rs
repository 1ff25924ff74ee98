//! A live run's timeline: the simulator's [`Timeline`] data, filled from what a live run
//! knows — its trace (starts, kills, pauses and restarts of each process and service; the
//! engine's readings of its campaigns), the provider's exchanges (each request named by
//! the process that sent it) and its ground truth (every acceptance and report, by
//! provider id). `smsim live --html` writes it as the same page `smsim run --html` does,
//! with a lane per process and service.

use crate::report::LiveReport;
use serde_json::Value;
use smsim_sim::provider::live::TruthView;
use smsim_sim::timeline::{
    CampaignSample, CampaignSeries, Exchange, FaultSpan, MessageEvent, MessageEventKind, MessagePath, Phase, Timeline,
};
use std::collections::BTreeMap;

/// What the timeline is drawn from.
pub struct LiveFacts<'a> {
    /// The run's report (scenario, seed, reproduction, violation).
    pub report: &'a LiveReport,
    /// The trace's lines, in order.
    pub lines: &'a [String],
    /// The engine's processes, then its services, in lane order.
    pub programs: Vec<String>,
    /// The provider's exchanges, named by the process that sent each.
    pub exchanges: Vec<Exchange>,
    /// The provider's ground truth at the end.
    pub truth: &'a TruthView,
}

/// The timeline of a live run.
pub fn gather(facts: LiveFacts<'_>) -> Timeline {
    let events: Vec<Value> = facts.lines.iter().filter_map(|line| serde_json::from_str(line).ok()).collect();
    let end_ms = events.iter().filter_map(|event| event["at_ms"].as_u64()).max().unwrap_or(0);
    let mut hosts: Vec<String> = vec!["driver".into()];
    hosts.extend(facts.programs.iter().cloned());
    // A request whose sender was not found among the processes still gets a lane.
    for exchange in &facts.exchanges {
        if !hosts.contains(&exchange.from) && exchange.from != "provider" {
            hosts.push(exchange.from.clone());
        }
    }
    hosts.push("provider".into());
    let at = |name: &str| events.iter().find(|event| event["event"] == name).and_then(|event| event["at_ms"].as_u64());
    // The fault phase begins once the engine is set up (tenants, contacts, campaigns).
    let (setup_ms, heal_ms) = (at("setup").unwrap_or(0), at("heal").unwrap_or(end_ms));
    Timeline {
        scenario: facts.report.scenario.clone(),
        seed: facts.report.seed,
        reproduce: facts.report.reproduce.clone(),
        trace_hash: String::new(),
        simulated_ms: end_ms,
        hosts,
        rates: Vec::new(),
        faults: faults(&events, &facts.programs),
        phases: vec![
            Phase { name: "faults".into(), from_ms: setup_ms, until_ms: heal_ms },
            Phase { name: "liveness".into(), from_ms: heal_ms, until_ms: end_ms },
        ],
        exchanges: facts.exchanges,
        campaigns: campaigns(&events),
        messages: messages(facts.truth),
        violation: facts.report.violations.first().cloned(),
    }
}

/// Kills and pauses as bands on their lanes: from the fault to the program's next start
/// (a kill) or its SIGCONT (a pause), or to the end when neither came.
fn faults(events: &[Value], programs: &[String]) -> Vec<FaultSpan> {
    let mut spans = Vec::new();
    let names = |event: &Value, field: &str| -> Vec<String> {
        match &event[field] {
            Value::Array(names) => names.iter().filter_map(|name| name.as_str().map(str::to_owned)).collect(),
            Value::String(name) => vec![name.clone()],
            _ => Vec::new(),
        }
    };
    let until = |from: usize, program: &str, ends: &[&str]| -> Option<u64> {
        events[from + 1..]
            .iter()
            .find(|later| {
                let event = later["event"].as_str().unwrap_or_default();
                ends.contains(&event)
                    && (later["program"] == program
                        || later["processes"].as_array().is_some_and(|names| names.iter().any(|n| n == program)))
            })
            .and_then(|later| later["at_ms"].as_u64())
    };
    for (index, event) in events.iter().enumerate() {
        let Some(at_ms) = event["at_ms"].as_u64() else { continue };
        let (kind, hit, ends): (&str, Vec<String>, &[&str]) = match event["event"].as_str().unwrap_or_default() {
            "kill" => ("crash", names(event, "processes"), &["restart"]),
            "kill_between_accept_and_commit" => ("crash_after_accept", names(event, "processes"), &["restart"]),
            "service_kill" => ("crash", names(event, "service"), &["restart"]),
            "sigstop" => ("pause", names(event, "processes"), &["sigcont"]),
            _ => continue,
        };
        for program in hit.into_iter().filter(|program| programs.contains(program)) {
            let until_ms = until(index, &program, ends);
            spans.push(FaultSpan { kind: kind.into(), hosts: vec![program], from_ms: at_ms, until_ms });
        }
    }
    spans
}

/// Each campaign's readings as samples (what the engine showed, so a wrong counter is
/// plotted wrong), and its status changes between readings.
fn campaigns(events: &[Value]) -> Vec<CampaignSeries> {
    let mut series: BTreeMap<String, CampaignSeries> = BTreeMap::new();
    let number = |value: &Value| u32::try_from(value.as_u64().unwrap_or(0)).unwrap_or(u32::MAX);
    for event in events.iter().filter(|event| event["event"] == "sample") {
        let (Some(name), reading) = (event["campaign"].as_str(), &event["reading"]) else { continue };
        let at_ms = reading["at_ms"].as_u64().or(event["at_ms"].as_u64()).unwrap_or(0);
        let campaign = series.entry(name.to_owned()).or_insert_with(|| CampaignSeries {
            id: name.to_owned(),
            name: name.to_owned(),
            samples: Vec::new(),
            statuses: Vec::new(),
        });
        let status = reading["status"].as_str().unwrap_or_default().to_owned();
        let previous = campaign.statuses.last().map(|(_, _, to)| to.clone());
        if previous.as_deref() != Some(status.as_str()) {
            campaign.statuses.push((at_ms, previous.unwrap_or_default(), status));
        }
        campaign.samples.push(CampaignSample {
            at_ms,
            total: number(&reading["total"]),
            queued: 0,
            submitting: 0,
            sent: number(&reading["sent"]),
            delivered: 0,
            failed: number(&reading["failed"]),
            unknown: number(&reading["unknown_outcome"]),
            progress: reading["progress"].as_i64().unwrap_or(0).clamp(0, i64::from(u8::MAX)) as u8,
        });
    }
    series.into_values().collect()
}

/// Every message the provider accepted, by provider id: its acceptance and the reports
/// sent for it, with how the engine answered each.
fn messages(truth: &TruthView) -> Vec<MessagePath> {
    let mut paths: BTreeMap<&str, MessagePath> = BTreeMap::new();
    for acceptance in &truth.acceptances {
        let path = paths
            .entry(&acceptance.provider_id)
            .or_insert_with(|| MessagePath { id: acceptance.provider_id.clone(), events: Vec::new() });
        path.events.push(MessageEvent {
            at_ms: acceptance.at_ms,
            kind: MessageEventKind::Accepted,
            detail: format!("{} to {}", acceptance.provider_id, acceptance.destination),
        });
    }
    for report in &truth.reports {
        let Some(path) = paths.get_mut(report.provider_id.as_str()) else { continue };
        let answered = report.answered.map_or_else(|| "no answer".to_owned(), |status| format!("answered {status}"));
        let forged = if report.forged { " (forged)" } else { "" };
        path.events.push(MessageEvent {
            at_ms: report.at_ms,
            kind: MessageEventKind::Report,
            detail: format!("{}{forged}, {answered}", report.status),
        });
    }
    paths
        .into_values()
        .map(|mut path| {
            path.events.sort_by_key(|event| event.at_ms);
            path
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::FaultPlan;
    use crate::report::{FaultsFired, Sampling};
    use smsim_sim::provider::live::{AcceptanceView, ReportView};

    fn report() -> LiveReport {
        LiveReport {
            scenario: "short".into(),
            engine: "e".into(),
            seed: 4,
            plan: FaultPlan { seed: 4, faults: Vec::new() },
            fired: FaultsFired::default(),
            verdicts: Vec::new(),
            violations: Vec::new(),
            campaigns: Vec::new(),
            tenants: Vec::new(),
            acceptances: 1,
            duplicate_acceptances: 0,
            reports_sent: 1,
            coverage: BTreeMap::new(),
            samples: 2,
            sampling: Sampling::default(),
            wall_ms: 0,
            workdir: String::new(),
            trace: String::new(),
            tail: Vec::new(),
            reproduce: "smsim live …".into(),
            timeline: None,
        }
    }

    #[test]
    fn lanes_faults_readings_and_messages_come_from_the_trace_and_the_provider() {
        let lines: Vec<String> = [
            r#"{"at_ms":0,"event":"start","program":"redis","pid":1}"#,
            r#"{"at_ms":300,"event":"setup"}"#,
            r#"{"at_ms":400,"event":"sample","campaign":"spring","reading":{"at_ms":400,"status":"sending","sent":0,"failed":0,"total":3,"progress":0}}"#,
            r#"{"at_ms":500,"event":"kill","processes":["worker-1"],"restart_after_ms":200}"#,
            r#"{"at_ms":600,"event":"sigstop","processes":["api"],"for_ms":900}"#,
            r#"{"at_ms":700,"event":"restart","program":"worker-1","pid":2}"#,
            r#"{"at_ms":800,"event":"service_kill","service":"redis","restart_after_ms":100}"#,
            r#"{"at_ms":1500,"event":"sigcont","processes":["api"]}"#,
            r#"{"at_ms":2000,"event":"heal"}"#,
            r#"{"at_ms":2100,"event":"sample","campaign":"spring","reading":{"at_ms":2100,"status":"completed","sent":3,"failed":0,"total":3,"progress":100,"unknown_outcome":0}}"#,
        ]
        .map(String::from)
        .to_vec();
        let truth = TruthView {
            now_ms: 2_100,
            acceptances: vec![AcceptanceView {
                destination: "+301".into(),
                body: "[spring] hi".into(),
                at_ms: 550,
                provider_id: "p1".into(),
                account: "ta_1".into(),
            }],
            received: 1,
            reports: vec![ReportView {
                at_ms: 900,
                provider_id: "p1".into(),
                status: "Delivered".into(),
                is_final: true,
                forged: false,
                answered: None,
            }],
            reports_pending: 0,
            marks: BTreeMap::new(),
        };
        let sent = |from: &str| Exchange {
            from: from.into(),
            to: "provider".into(),
            at_ms: 540,
            until_ms: 560,
            what: "POST /send".into(),
            status: 200,
            count: 1,
        };
        let report = report();
        let timeline = gather(LiveFacts {
            report: &report,
            lines: &lines,
            programs: vec!["api".into(), "worker-1".into(), "redis".into()],
            exchanges: vec![sent("worker-1"), sent("?")],
            truth: &truth,
        });
        assert_eq!(timeline.hosts, ["driver", "api", "worker-1", "redis", "?", "provider"]);
        let spans: Vec<(&str, &str, u64, Option<u64>)> = timeline
            .faults
            .iter()
            .map(|fault| (fault.kind.as_str(), fault.hosts[0].as_str(), fault.from_ms, fault.until_ms))
            .collect();
        assert_eq!(
            spans,
            [
                ("crash", "worker-1", 500, Some(700)),
                ("pause", "api", 600, Some(1_500)),
                ("crash", "redis", 800, None), // never restarted in this trace
            ]
        );
        assert_eq!(
            (timeline.phases[0].from_ms, timeline.phases[0].until_ms, timeline.phases[1].until_ms),
            (300, 2_000, 2_100)
        );
        let spring = &timeline.campaigns[0];
        assert_eq!(spring.samples.iter().map(|s| (s.sent, s.progress)).collect::<Vec<_>>(), [(0, 0), (3, 100)]);
        assert_eq!(spring.statuses.last().unwrap(), &(2_100, "sending".to_owned(), "completed".to_owned()));
        let kinds: Vec<MessageEventKind> = timeline.messages[0].events.iter().map(|event| event.kind).collect();
        assert_eq!(kinds, [MessageEventKind::Accepted, MessageEventKind::Report]);
        assert!(timeline.messages[0].events[1].detail.contains("no answer"));
    }
}
