//! A run's timeline as one self-contained HTML page.
//!
//! The page (`page.html`, `page.js`) carries its CSS, its script and the run's data inline
//! (gzipped JSON in base64), so it opens from disk and fetches nothing. The data is a
//! compact JSON rendering of a
//! [`Timeline`]: exchanges and campaign samples as flat number arrays, repeated strings
//! (statuses, paths, provider ids) once in a string table, and message paths as number
//! triples that the page decodes only for the message asked for. That keeps a
//! 100 000-message run to a file a browser opens in a second or two.

use serde_json::{json, Value};
use smsim_sim::timeline::{MessageEventKind, Timeline};
use std::collections::BTreeMap;

const PAGE: &str = include_str!("page.html");
const SCRIPT: &str = include_str!("page.js");

/// Kinds of message events, in the order the page's `kinds` table lists them.
const KINDS: [MessageEventKind; 5] = [
    MessageEventKind::Created,
    MessageEventKind::Claimed,
    MessageEventKind::Status,
    MessageEventKind::Accepted,
    MessageEventKind::Report,
];

/// The timeline as an HTML page.
pub fn html(timeline: &Timeline) -> String {
    PAGE.replacen("__SCRIPT__", SCRIPT, 1).replacen("__DATA__", &packed(&compact(timeline)), 1)
}

/// The data gzipped and in base64, which the page unpacks with the browser's own
/// `DecompressionStream`: a 100 000-message run's JSON is mostly message paths and
/// provider ids that compress about tenfold. Base64 also holds no `<`, so nothing in the
/// data can end the script element early.
fn packed(data: &Value) -> String {
    use base64::Engine;
    use std::io::Write;
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(data.to_string().as_bytes()).expect("writing to memory");
    let bytes = gzip.finish().expect("writing to memory");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Strings held once, referred to by index.
#[derive(Default)]
struct Strings {
    index: BTreeMap<String, usize>,
    list: Vec<String>,
}

impl Strings {
    fn of(&mut self, text: &str) -> usize {
        if let Some(&index) = self.index.get(text) {
            return index;
        }
        self.list.push(text.to_owned());
        self.index.insert(text.to_owned(), self.list.len() - 1);
        self.list.len() - 1
    }
}

/// The page's data: see the module documentation for the encoding.
fn compact(timeline: &Timeline) -> Value {
    let mut strings = Strings::default();
    let lane = |host: &str| timeline.hosts.iter().position(|known| known == host);
    let mut exchanges = Vec::with_capacity(timeline.exchanges.len() * 7);
    for exchange in &timeline.exchanges {
        let (Some(from), Some(to)) = (lane(&exchange.from), lane(&exchange.to)) else { continue };
        let what = strings.of(&exchange.what) as u64;
        exchanges.extend([
            exchange.at_ms,
            exchange.until_ms,
            from as u64,
            to as u64,
            u64::from(exchange.status),
            what,
            u64::from(exchange.count),
        ]);
    }
    let faults: Vec<Value> = timeline
        .faults
        .iter()
        .map(|fault| {
            let lanes: Vec<usize> = fault.hosts.iter().filter_map(|host| lane(host)).collect();
            json!([fault.kind, lanes, fault.from_ms, fault.until_ms])
        })
        .collect();
    let campaigns: Vec<Value> = timeline
        .campaigns
        .iter()
        .map(|campaign| {
            let samples: Vec<u64> = campaign
                .samples
                .iter()
                .flat_map(|s| {
                    let counts = [s.total, s.queued, s.submitting, s.sent, s.delivered, s.failed, s.unknown];
                    std::iter::once(s.at_ms).chain(counts.map(u64::from)).chain([u64::from(s.progress)])
                })
                .collect();
            json!({"id": campaign.id, "name": campaign.name, "s": samples, "statuses": campaign.statuses})
        })
        .collect();
    let ids: Vec<&str> = timeline.messages.iter().map(|path| path.id.as_str()).collect();
    let events: Vec<Vec<u64>> = timeline
        .messages
        .iter()
        .map(|path| {
            path.events
                .iter()
                .flat_map(|event| {
                    let kind = KINDS.iter().position(|kind| *kind == event.kind).unwrap_or(0) as u64;
                    [event.at_ms, kind, strings.of(&event.detail) as u64]
                })
                .collect()
        })
        .collect();
    let kinds: Vec<Value> = KINDS.iter().map(|kind| serde_json::to_value(kind).unwrap_or(Value::Null)).collect();
    json!({
        "meta": {
            "scenario": timeline.scenario,
            "seed": timeline.seed,
            "reproduce": timeline.reproduce,
            "trace_hash": timeline.trace_hash,
            "simulated_ms": timeline.simulated_ms,
        },
        "hosts": timeline.hosts,
        "rates": timeline.rates,
        "faults": faults,
        "phases": timeline.phases.iter().map(|p| json!([p.name, p.from_ms, p.until_ms])).collect::<Vec<_>>(),
        "ex": exchanges,
        "campaigns": campaigns,
        "messages": {"ids": ids, "ev": events},
        "kinds": kinds,
        "violation": timeline.violation,
        "strings": strings.list,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use smsim_sim::timeline::{Exchange, MessageEvent, MessagePath};

    fn timeline() -> Timeline {
        Timeline {
            scenario: "demo".into(),
            seed: 7,
            hosts: vec!["driver".into(), "api".into(), "worker-1".into(), "provider".into()],
            exchanges: vec![Exchange {
                from: "worker-1".into(),
                to: "provider".into(),
                at_ms: 10,
                until_ms: 30,
                what: "POST /x".into(),
                status: 200,
                count: 1,
            }],
            messages: vec![MessagePath {
                id: "msg_1_1".into(),
                events: vec![MessageEvent { at_ms: 12, kind: MessageEventKind::Report, detail: "</script><b>".into() }],
            }],
            ..Timeline::default()
        }
    }

    #[test]
    fn the_page_is_self_contained_and_its_data_cannot_end_the_script() {
        let page = html(&timeline());
        assert!(!page.contains("__DATA__") && !page.contains("__SCRIPT__"));
        assert!(!page.contains("</script><b>"), "a string in the data closed the script element");
        assert!(!page.contains("http://") && !page.contains("https://"), "the page must fetch nothing");
        assert_eq!(page.matches("</script>").count(), 2);
    }

    #[test]
    fn the_packed_data_unpacks_to_the_compact_json() {
        use base64::Engine;
        use std::io::Read;
        let data = compact(&timeline());
        let bytes = base64::engine::general_purpose::STANDARD.decode(packed(&data)).unwrap();
        let mut json = String::new();
        flate2::read::GzDecoder::new(bytes.as_slice()).read_to_string(&mut json).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), data);
    }

    #[test]
    fn exchanges_are_flat_numbers_naming_lanes_and_strings() {
        let data = compact(&timeline());
        assert_eq!(data["ex"], json!([10, 30, 2, 3, 200, 0, 1]));
        assert_eq!(data["strings"][0], "POST /x");
        assert_eq!(data["messages"]["ev"][0], json!([12, 4, 1]));
        assert_eq!(data["kinds"][4], "report");
    }
}
