//! The trace: every event of a run as a JSON line with its simulated time, and a hash.
//!
//! The hash is SHA-256 over the lines in order. Two runs of the same scenario and seed
//! must produce the same hash on any machine; a test runs seeds twice to hold the engine
//! and the simulator to that. Lines are kept only when asked for (`--trace FILE`), but
//! the last few are always kept for failure reports.

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::io::Write;

/// How many recent lines a trace keeps for failure output.
pub const TAIL_LINES: usize = 40;

/// One line of the trace.
#[derive(Serialize)]
struct Line<'a, E: Serialize> {
    seq: u64,
    at_ms: u64,
    source: &'a str,
    #[serde(flatten)]
    event: &'a E,
}

/// A run's trace.
#[derive(Debug)]
pub struct Trace {
    hasher: Sha256,
    next_seq: u64,
    keep_all: bool,
    lines: Vec<String>,
    tail: VecDeque<String>,
}

impl Trace {
    /// A trace that keeps every line when `keep_all`, otherwise only the tail.
    pub fn new(keep_all: bool) -> Self {
        Trace {
            hasher: Sha256::new(),
            next_seq: 0,
            keep_all,
            lines: Vec::new(),
            tail: VecDeque::with_capacity(TAIL_LINES),
        }
    }

    /// Records `event`, which happened at simulated `at_ms` on `source`.
    ///
    /// Events are tagged enums or structs; their serialisation must not depend on
    /// anything but their content (no maps with unordered keys).
    pub fn record<E: Serialize>(&mut self, at_ms: u64, source: &str, event: &E) {
        self.next_seq += 1;
        // The line that falls out of the tail lends its buffer to the new one.
        let mut buffer = match self.tail.len() {
            TAIL_LINES => self.tail.pop_front().map(String::into_bytes).unwrap_or_default(),
            _ => Vec::new(),
        };
        buffer.clear();
        serde_json::to_writer(&mut buffer, &Line { seq: self.next_seq, at_ms, source, event })
            .expect("trace events serialise");
        buffer.push(b'\n');
        self.hasher.update(&buffer);
        buffer.pop();
        let line = String::from_utf8(buffer).expect("JSON is UTF-8");
        if self.keep_all {
            self.lines.push(line.clone());
        }
        self.tail.push_back(line);
    }

    /// Events recorded so far.
    pub fn len(&self) -> u64 {
        self.next_seq
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.next_seq == 0
    }

    /// The hash of every line so far, as hex.
    pub fn hash(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }

    /// The most recent lines.
    pub fn tail(&self) -> impl Iterator<Item = &str> {
        self.tail.iter().map(String::as_str)
    }

    /// Writes every kept line to `out`.
    pub fn write_to(&self, mut out: impl Write) -> std::io::Result<()> {
        for line in &self.lines {
            writeln!(out, "{line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    #[serde(tag = "event", rename_all = "snake_case")]
    enum Event {
        Accepted { message: String },
    }

    #[test]
    fn the_hash_depends_on_content_and_order() {
        let mut first = Trace::new(true);
        first.record(10, "provider", &Event::Accepted { message: "msg_1_1".into() });
        first.record(20, "provider", &Event::Accepted { message: "msg_1_2".into() });
        let mut same = Trace::new(false);
        same.record(10, "provider", &Event::Accepted { message: "msg_1_1".into() });
        same.record(20, "provider", &Event::Accepted { message: "msg_1_2".into() });
        let mut swapped = Trace::new(false);
        swapped.record(10, "provider", &Event::Accepted { message: "msg_1_2".into() });
        swapped.record(20, "provider", &Event::Accepted { message: "msg_1_1".into() });
        assert_eq!(first.hash(), same.hash());
        assert_ne!(first.hash(), swapped.hash());
        let mut written = Vec::new();
        first.write_to(&mut written).unwrap();
        let text = String::from_utf8(written).unwrap();
        assert_eq!(
            text.lines().next(),
            Some(r#"{"seq":1,"at_ms":10,"source":"provider","event":"accepted","message":"msg_1_1"}"#)
        );
    }
}
