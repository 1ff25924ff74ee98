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

    /// Writes everything out.
    pub fn flush(&self) {
        let _ = self.file.lock().expect("trace poisoned").flush();
    }
}
