//! The live run's trace: one JSON object per line, each with `at_ms` (wall milliseconds
//! since the run began) and `event`. The report's fault counts are counted from it.

use serde_json::{Map, Value};
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;

/// How many of the last lines are kept for a failure's report.
const TAIL: usize = 20;

/// A JSON-lines trace file.
pub struct Trace {
    start: tokio::time::Instant,
    file: Mutex<BufWriter<File>>,
    tail: Mutex<VecDeque<String>>,
    counts: Mutex<BTreeMap<String, u32>>,
}

impl Trace {
    /// A trace written to `path`, its clock starting now.
    pub fn create(path: &Path) -> std::io::Result<Trace> {
        Ok(Trace {
            start: tokio::time::Instant::now(),
            file: Mutex::new(BufWriter::new(File::create(path)?)),
            tail: Mutex::new(VecDeque::new()),
            counts: Mutex::new(BTreeMap::new()),
        })
    }

    /// The instant the run's clock counts from (the provider counts from it too).
    pub fn start(&self) -> tokio::time::Instant {
        self.start
    }

    /// Milliseconds since the run began.
    pub fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Records `event` with `fields` (a JSON object).
    pub fn event(&self, event: &str, fields: Value) {
        let mut line = Map::new();
        line.insert("at_ms".into(), self.now_ms().into());
        line.insert("event".into(), event.into());
        if let Value::Object(fields) = fields {
            line.extend(fields);
        }
        let text = Value::Object(line).to_string();
        *self.counts.lock().expect("trace poisoned").entry(event.to_owned()).or_default() += 1;
        let _ = writeln!(self.file.lock().expect("trace poisoned"), "{text}");
        let mut tail = self.tail.lock().expect("trace poisoned");
        if tail.len() == TAIL {
            tail.pop_front();
        }
        tail.push_back(text);
    }

    /// How many events named `event` were recorded.
    pub fn count(&self, event: &str) -> u32 {
        self.counts.lock().expect("trace poisoned").get(event).copied().unwrap_or(0)
    }

    /// The last lines.
    pub fn tail(&self) -> Vec<String> {
        self.tail.lock().expect("trace poisoned").iter().cloned().collect()
    }

    /// The lines from `before_ms` before `at_ms` to `after_ms` after it, at most `limit`
    /// (those nearest `at_ms` kept), read back from the file at `path`.
    pub fn around(&self, path: &Path, at_ms: u64, before_ms: u64, after_ms: u64, limit: usize) -> Vec<String> {
        self.flush();
        let Ok(text) = std::fs::read_to_string(path) else { return self.tail() };
        let mut near: Vec<(u64, String)> = text
            .lines()
            .filter_map(|line| {
                let at = serde_json::from_str::<Value>(line).ok()?.get("at_ms")?.as_u64()?;
                (at + before_ms >= at_ms && at <= at_ms + after_ms).then(|| (at, line.to_owned()))
            })
            .collect();
        if near.len() > limit {
            // Keep the `limit` lines nearest the moment, in file order.
            let mut by_distance: Vec<usize> = (0..near.len()).collect();
            by_distance.sort_by_key(|&i| near[i].0.abs_diff(at_ms));
            let mut keep: Vec<usize> = by_distance.into_iter().take(limit).collect();
            keep.sort_unstable();
            near = keep.into_iter().map(|i| near[i].clone()).collect();
        }
        near.into_iter().map(|(_, line)| line).collect()
    }

    /// Writes everything out.
    pub fn flush(&self) {
        let _ = self.file.lock().expect("trace poisoned").flush();
    }
}
