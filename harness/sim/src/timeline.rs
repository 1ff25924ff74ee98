//! What a run's timeline shows: hosts and the HTTP exchanges between them, faults and
//! phases, campaign counters over time, every message's path, and the broken invariant.
//!
//! [`Timeline`] is plain data, so anything that watches a run — the simulator here, a
//! live run against real processes later — can fill it, and the HTML writer (in the
//! `smsim` command) only reads it. The simulator fills it with a [`Collector`]: from the
//! run's trace lines (the same events the trace hash covers), from the provider's
//! exchange log and from samples of the store's stored counters. None of that is written
//! into the trace, so asking for a timeline leaves the trace hash unchanged.

use crate::oracle::Violation;
use crate::provider::Truth;
use crate::trace::Trace;
use crate::world::{TimedFault, World};
use serde::Serialize;
use serde_json::Value;
use smsim_core::store::Store;
use smsim_core::CampaignId;
use std::collections::BTreeMap;

pub use crate::exchange::Exchange;

/// Simulated milliseconds between two samples of a campaign's stored counters: fine
/// enough for plots a few hundred pixels wide, coarse enough for a 100 000-message run.
pub const SAMPLE_EVERY_MS: u64 = 100;

/// How long a host crashed between accept and commit stays down (`run` restarts it then).
pub const CRASH_AFTER_ACCEPT_DOWN_MS: u64 = 2_000;

/// Everything the timeline page shows about one run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timeline {
    /// The scenario's name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// The command that reproduces the run.
    pub reproduce: String,
    /// The trace hash.
    pub trace_hash: String,
    /// Simulated time the run covered (ms).
    pub simulated_ms: u64,
    /// Every host, in lane order (driver, api, workers, provider).
    pub hosts: Vec<String>,
    /// Fault rates in force during the fault phase, by name (only those above zero).
    pub rates: Vec<(String, f64)>,
    /// Timed faults and provider-side faults.
    pub faults: Vec<FaultSpan>,
    /// The run's phases: faults, then liveness after the heal.
    pub phases: Vec<Phase>,
    /// HTTP exchanges between hosts, in the order they ended.
    pub exchanges: Vec<Exchange>,
    /// Per campaign, its stored counters over time.
    pub campaigns: Vec<CampaignSeries>,
    /// Every message's path, by message id.
    pub messages: Vec<MessagePath>,
    /// The first broken invariant, if any.
    pub violation: Option<Violation>,
}

/// A fault: a band from `from_ms` to `until_ms`, or a marker when `until_ms` is `None`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FaultSpan {
    /// `crash`, `crash_after_accept`, `partition`, `hold`, `outage`, or a provider fault
    /// (`provider_5xx`, `timeout_after_accept`, …).
    pub kind: String,
    /// The hosts it hits (both ends of a link).
    pub hosts: Vec<String>,
    /// Start (ms).
    pub from_ms: u64,
    /// End (ms), for faults that last.
    pub until_ms: Option<u64>,
}

/// A phase of the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Phase {
    /// `faults` or `liveness`.
    pub name: String,
    /// Start (ms).
    pub from_ms: u64,
    /// End (ms).
    pub until_ms: u64,
}

/// A campaign's stored counters over time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CampaignSeries {
    /// The campaign id.
    pub id: String,
    /// Its name in the scenario.
    pub name: String,
    /// Samples, in time order.
    pub samples: Vec<CampaignSample>,
    /// Status changes: (ms, from, to).
    pub statuses: Vec<(u64, String, String)>,
}

/// The stored counters of one campaign at one moment, as the engine reports them (so a
/// counter the engine gets wrong is plotted wrong).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct CampaignSample {
    /// When (ms).
    pub at_ms: u64,
    /// Messages counted.
    pub total: u32,
    /// Queued.
    pub queued: u32,
    /// Submitting.
    pub submitting: u32,
    /// Accepted by the provider ("sent", including those delivered since).
    pub sent: u32,
    /// Delivered.
    pub delivered: u32,
    /// Failed.
    pub failed: u32,
    /// Unknown outcome.
    pub unknown: u32,
    /// Progress, percent, as stored (not bounded, so an overflow shows).
    pub progress: u8,
}

/// A message's path through the run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MessagePath {
    /// The message id (`msg_1_2`).
    pub id: String,
    /// Its events, in the order they happened.
    pub events: Vec<MessageEvent>,
}

/// One event in a message's path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MessageEvent {
    /// When (ms).
    pub at_ms: u64,
    /// What kind.
    pub kind: MessageEventKind,
    /// The details (`queued → submitting`, the provider id, the report's status…).
    pub detail: String,
}

/// Kinds of [`MessageEvent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageEventKind {
    /// Created by enqueue.
    Created,
    /// Claimed by a worker (`queued → submitting`).
    Claimed,
    /// Any other status change.
    Status,
    /// The provider accepted it.
    Accepted,
    /// The provider sent a delivery report naming it (as answered by the engine).
    Report,
}

/// Gathers a timeline during a run; the run calls [`Collector::sample`] after every step
/// and [`Collector::finish`] at the end.
#[derive(Debug, Default)]
pub struct Collector {
    next_sample_ms: u64,
    series: BTreeMap<CampaignId, Vec<CampaignSample>>,
}

/// What [`Collector::finish`] reads besides the trace.
pub struct RunFacts<'a> {
    /// The run's timeline so far: scenario, seed, reproduction, hash, time, hosts, rates,
    /// timed faults, phases and violation filled in by the caller.
    pub timeline: Timeline,
    /// The store at the end.
    pub store: &'a dyn Store,
    /// The provider's ground truth at the end.
    pub truth: &'a Truth,
    /// Campaign names by id.
    pub names: BTreeMap<CampaignId, String>,
}

impl Collector {
    /// Samples every campaign's stored counters, at most once per [`SAMPLE_EVERY_MS`].
    pub fn sample(&mut self, now_ms: u64, store: &dyn Store) {
        if now_ms < self.next_sample_ms {
            return;
        }
        self.next_sample_ms = now_ms + SAMPLE_EVERY_MS;
        for campaign in store.all_campaigns().unwrap_or_default() {
            let counts = &campaign.counts;
            let sample = CampaignSample {
                at_ms: now_ms,
                total: counts.total(),
                queued: counts.queued,
                submitting: counts.submitting,
                sent: counts.sent(),
                delivered: counts.delivered,
                failed: counts.failed,
                unknown: counts.unknown,
                progress: campaign.progress(),
            };
            let samples = self.series.entry(campaign.id).or_default();
            // An unchanged sample adds nothing to a step plot.
            if samples.last().is_none_or(|last| CampaignSample { at_ms: now_ms, ..*last } != sample) {
                samples.push(sample);
            }
        }
    }

    /// The timeline: `facts.timeline` completed with exchanges, provider faults, campaign
    /// series and message paths.
    /// `lines` are the trace's lines, in order.
    pub fn finish<'l>(mut self, facts: RunFacts<'_>, lines: impl IntoIterator<Item = &'l str>) -> Timeline {
        let end_ms = facts.timeline.simulated_ms;
        self.next_sample_ms = 0;
        self.sample(end_ms, facts.store);
        let mut timeline = facts.timeline;
        let mut paths = Paths::new(facts.store, facts.truth);
        let mut statuses: BTreeMap<String, Vec<(u64, String, String)>> = BTreeMap::new();
        for line in lines {
            let Ok(value) = serde_json::from_str::<Value>(line) else { continue };
            read_line(&value, &mut timeline, &mut paths, &mut statuses);
        }
        timeline.exchanges.extend(facts.truth.exchanges.iter().flatten().cloned());
        timeline.exchanges.sort_by_key(|exchange| exchange.until_ms);
        // Stable: events of one millisecond keep the order the trace has them in.
        timeline.messages = paths
            .by_message
            .into_values()
            .map(|mut path| {
                path.events.sort_by_key(|event| event.at_ms);
                path
            })
            .collect();
        timeline.campaigns = self
            .series
            .into_iter()
            .map(|(id, samples)| CampaignSeries {
                id: id.to_string(),
                name: facts.names.get(&id).cloned().unwrap_or_default(),
                statuses: statuses.remove(&id.to_string()).unwrap_or_default(),
                samples,
            })
            .collect();
        timeline
    }
}

/// A finished run's timeline: `run` (the run's own fields: scenario, seed, reproduction,
/// trace hash, simulated time and violation), what `world` knew (hosts, plan, phases),
/// what `collector` gathered and the kept lines of `trace`.
pub fn gather(collector: Collector, run: Timeline, world: &World, trace: &Trace) -> Timeline {
    let mut hosts: Vec<String> = ["driver", "api"].map(String::from).to_vec();
    hosts.extend(world.hosts.iter().filter(|host| host.starts_with("worker")).cloned());
    hosts.push("provider".into());
    let rates = match serde_json::to_value(&world.plan.rates) {
        Ok(Value::Object(rates)) => rates
            .into_iter()
            .filter_map(|(name, rate)| rate.as_f64().filter(|rate| *rate > 0.0).map(|rate| (name, rate)))
            .collect(),
        _ => Vec::new(),
    };
    let end_ms = run.simulated_ms.max(world.heal_at_ms.min(world.end_ms));
    let phases = vec![
        Phase { name: "faults".into(), from_ms: 0, until_ms: world.heal_at_ms.min(end_ms) },
        Phase { name: "liveness".into(), from_ms: world.heal_at_ms.min(end_ms), until_ms: end_ms },
    ];
    let timeline =
        Timeline { hosts, rates, faults: world.plan.events.iter().map(planned_fault).collect(), phases, ..run };
    let names = world
        .driver
        .lock()
        .expect("driver log poisoned")
        .campaigns
        .iter()
        .map(|(name, (_, id))| (*id, name.clone()))
        .collect();
    let truth = world.provider.truth.lock().expect("provider poisoned");
    let facts = RunFacts { timeline, store: world.store.as_ref(), truth: &truth, names };
    collector.finish(facts, trace.lines())
}

fn planned_fault(fault: &TimedFault) -> FaultSpan {
    let (kind, hosts, from_ms, until_ms) = match fault {
        TimedFault::Crash { host, at_ms, restart_at_ms } => ("crash", vec![host.clone()], at_ms, restart_at_ms),
        TimedFault::Partition { a, b, at_ms, until_ms } => ("partition", vec![a.clone(), b.clone()], at_ms, until_ms),
        TimedFault::Hold { a, b, at_ms, until_ms } => ("hold", vec![a.clone(), b.clone()], at_ms, until_ms),
        TimedFault::Outage { status, at_ms, until_ms } => {
            return FaultSpan {
                kind: format!("outage {status}"),
                hosts: vec!["provider".into()],
                from_ms: *at_ms,
                until_ms: Some(*until_ms),
            }
        }
    };
    FaultSpan { kind: kind.into(), hosts, from_ms: *from_ms, until_ms: Some(*until_ms) }
}

/// Message paths being built, and how to find a message from a provider id.
struct Paths {
    by_message: BTreeMap<(u64, u64), MessagePath>,
    by_provider_id: BTreeMap<String, (u64, u64)>,
}

impl Paths {
    /// Maps every provider id the provider handed out to the message it was for, through
    /// the provider's ground truth (destination and body) and the store's messages.
    fn new(store: &dyn Store, truth: &Truth) -> Paths {
        let mut by_provider_id = BTreeMap::new();
        for campaign in store.all_campaigns().unwrap_or_default() {
            for message in store.messages(campaign.id).unwrap_or_default() {
                let key = (message.destination.as_str().into(), message.body.as_str().into());
                let order = order_of(&message.id.to_string());
                for acceptance in truth.accepted.get(&key).into_iter().flatten() {
                    by_provider_id.insert(acceptance.provider_id.to_string(), order);
                }
                if let Some(id) = message.provider_message_id {
                    by_provider_id.insert(id, order);
                }
            }
        }
        Paths { by_message: BTreeMap::new(), by_provider_id }
    }

    fn push(&mut self, id: &str, event: MessageEvent) {
        let path = self
            .by_message
            .entry(order_of(id))
            .or_insert_with(|| MessagePath { id: id.to_owned(), events: Vec::new() });
        path.events.push(event);
    }

    fn push_by_provider_id(&mut self, provider_id: &str, event: MessageEvent) {
        if let Some(order) = self.by_provider_id.get(provider_id) {
            let id = format!("msg_{}_{}", order.0, order.1);
            self.push(&id, event);
        }
    }
}

/// Orders `msg_12_345` by campaign, then contact, as numbers.
fn order_of(id: &str) -> (u64, u64) {
    let mut parts = id.trim_start_matches("msg_").split('_').map(|part| part.parse().unwrap_or(u64::MAX));
    (parts.next().unwrap_or(u64::MAX), parts.next().unwrap_or(u64::MAX))
}

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value.get(field).and_then(Value::as_str).unwrap_or("")
}

/// Reads one trace line into the timeline.
fn read_line(
    value: &Value,
    timeline: &mut Timeline,
    paths: &mut Paths,
    statuses: &mut BTreeMap<String, Vec<(u64, String, String)>>,
) {
    // The trace stamps store entries with the step that drained them; the entry's own
    // commit time puts a message's claim before the provider's acceptance it led to.
    let at_ms = match value.get("at").and_then(Value::as_u64) {
        Some(at) if text(value, "source") == "store" => at.saturating_sub(crate::clock::EPOCH.0),
        _ => value.get("at_ms").and_then(Value::as_u64).unwrap_or(0),
    };
    match (text(value, "source"), text(value, "event")) {
        ("store", "message") => {
            let (from, to) = (value.get("from").and_then(Value::as_str), text(value, "to"));
            let (kind, detail) = match from {
                None => (MessageEventKind::Created, to.to_owned()),
                Some("queued") if to == "submitting" => (MessageEventKind::Claimed, "queued → submitting".to_owned()),
                Some(from) => (MessageEventKind::Status, format!("{from} → {to}")),
            };
            paths.push(text(value, "message"), MessageEvent { at_ms, kind, detail });
        }
        ("store", "campaign") => statuses.entry(text(value, "campaign").to_owned()).or_default().push((
            at_ms,
            text(value, "from").to_owned(),
            text(value, "to").to_owned(),
        )),
        ("provider", "accepted") => {
            let provider_id = text(value, "provider_id");
            let count = value.get("count").and_then(Value::as_u64).unwrap_or(1);
            let detail = format!("{provider_id} (acceptance #{count}, {})", text(value, "account"));
            paths.push_by_provider_id(provider_id, MessageEvent { at_ms, kind: MessageEventKind::Accepted, detail });
        }
        ("provider", "report") => read_report(value, at_ms, timeline, paths),
        ("provider", "fault") => timeline.faults.push(FaultSpan {
            kind: text(value, "kind").to_owned(),
            hosts: vec!["provider".to_owned()],
            from_ms: at_ms,
            until_ms: None,
        }),
        ("driver", "request") => timeline.exchanges.push(Exchange {
            from: "driver".into(),
            to: "api".into(),
            at_ms,
            until_ms: at_ms,
            what: format!("{} → {}", text(value, "call"), text(value, "answer")),
            status: value.get("status").and_then(Value::as_u64).unwrap_or(0) as u16,
            count: 1,
        }),
        // Timed faults come from the plan, with their ends; only the crashes the provider
        // asks for (between accept and commit) are decided during the run, and the run
        // restarts those hosts after [`CRASH_AFTER_ACCEPT_DOWN_MS`].
        ("harness", "fault") if text(value, "fault") == "crash_after_accept" => timeline.faults.push(FaultSpan {
            kind: "crash_after_accept".into(),
            hosts: vec![text(value, "host").to_owned()],
            from_ms: at_ms,
            until_ms: Some(at_ms + CRASH_AFTER_ACCEPT_DOWN_MS),
        }),
        _ => {}
    }
}

/// A delivery report: a step in its message's path, and a webhook from the provider to
/// the api, merged with the previous one when it went in the same batch.
fn read_report(value: &Value, at_ms: u64, timeline: &mut Timeline, paths: &mut Paths) {
    let provider_id = text(value, "provider_id");
    let answered = value.get("answered").and_then(Value::as_u64).unwrap_or(0) as u16;
    let forged = value.get("forged").and_then(Value::as_bool).unwrap_or(false);
    let detail = format!(
        "{} for {provider_id}{}, engine answered {}",
        text(value, "status"),
        if forged { " (forged)" } else { "" },
        if answered == 0 { "nothing".to_owned() } else { answered.to_string() }
    );
    paths.push_by_provider_id(provider_id, MessageEvent { at_ms, kind: MessageEventKind::Report, detail });
    match timeline.exchanges.last_mut() {
        Some(last)
            if last.from == "provider" && last.to == "api" && last.until_ms == at_ms && last.status == answered =>
        {
            last.count += 1;
            last.what = format!("{} delivery reports", last.count);
        }
        _ => timeline.exchanges.push(Exchange {
            from: "provider".into(),
            to: "api".into(),
            at_ms,
            until_ms: at_ms,
            what: "1 delivery report".into(),
            status: answered,
            count: 1,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_order_by_campaign_then_contact_as_numbers() {
        let mut ids = vec!["msg_2_1", "msg_1_10", "msg_1_2"];
        ids.sort_by_key(|id| order_of(id));
        assert_eq!(ids, ["msg_1_2", "msg_1_10", "msg_2_1"]);
    }

    #[test]
    fn reports_of_one_batch_merge_into_one_webhook_exchange() {
        let mut timeline = Timeline::default();
        let mut paths = Paths { by_message: BTreeMap::new(), by_provider_id: BTreeMap::new() };
        paths.by_provider_id.insert("M1".into(), (1, 1));
        let mut statuses = BTreeMap::new();
        for provider_id in ["M1", "M2"] {
            let line = serde_json::json!({"at_ms": 50, "source": "provider", "event": "report",
                "provider_id": provider_id, "status": "Delivered", "forged": false, "answered": 200});
            read_line(&line, &mut timeline, &mut paths, &mut statuses);
        }
        assert_eq!(timeline.exchanges.len(), 1);
        assert_eq!(timeline.exchanges[0].count, 2);
        // Only M1 belongs to a known message.
        assert_eq!(paths.by_message.len(), 1);
        assert_eq!(paths.by_message[&(1, 1)].events[0].kind, MessageEventKind::Report);
    }
}
