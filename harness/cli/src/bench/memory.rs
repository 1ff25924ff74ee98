//! Section 5 of `smsim bench`: memory and scale. The peak resident set (`VmHWM`) and the
//! wall time of simulating one large scenario (by default 1 000 000 contacts), each in a
//! child process so that the peak is that simulation's own. The targets are per message
//! (1 000 000 messages in at most 1 GiB and 20 s), so they also read on a 10 000 000-contact
//! run (`--memory-scenario large/ten-million-contacts.toml`).

use super::baseline::Binary;
use super::Figure;
use serde::Serialize;
use smsim_sim::run::{run, RunOptions};
use smsim_sim::scenario::Scenario;
use std::path::Path;

/// Peak bytes per simulated message: 1 GiB for 1 000 000.
const BYTES_PER_MESSAGE: f64 = 1024.0 * 1024.0 * 1024.0 / 1_000_000.0;
/// Wall microseconds per simulated message: 20 s for 1 000 000.
const MICROS_PER_MESSAGE: f64 = 20.0;

/// The section: this build's peak and time, and with a baseline, the baseline's, each run
/// once, one after the other.
pub(super) fn section(path: &Path, current: &Binary, baseline: Option<&Binary>) -> anyhow::Result<Vec<Figure>> {
    let ours = current.peak_rss(path)?;
    anyhow::ensure!(ours.passed, "{} failed while being measured", path.display());
    let theirs = baseline.map(|binary| binary.peak_rss(path)).transpose()?;
    let messages = ours.messages.max(1) as f64;
    let gib = |kib: u64| kib as f64 / (1024.0 * 1024.0);
    let run = format!(
        "{}: {} messages in {:.1} s wall ({:.0} simulated s), peak {:.2} GiB",
        path.display(),
        ours.messages,
        ours.wall_s,
        ours.simulated_ms as f64 / 1_000.0,
        gib(ours.peak_rss_kib)
    );
    let mut figures = vec![
        Figure::new("peak RSS", gib(ours.peak_rss_kib), "GiB", None, false, run.clone()),
        Figure::new("wall time", ours.wall_s, "s", None, false, run),
        Figure::new(
            "peak RSS per message",
            ours.peak_rss_kib as f64 * 1024.0 / messages,
            "bytes",
            Some(BYTES_PER_MESSAGE),
            false,
            "target: 1 000 000 messages in 1 GiB".into(),
        ),
        Figure::new(
            "wall time per message",
            ours.wall_s * 1e6 / messages,
            "µs",
            Some(MICROS_PER_MESSAGE),
            false,
            "target: 1 000 000 messages in 20 s".into(),
        ),
    ];
    if let Some(theirs) = theirs {
        let detail = format!(
            "baseline: {:.2} GiB peak, {:.1} s wall, {}",
            gib(theirs.peak_rss_kib),
            theirs.wall_s,
            if theirs.passed { "passed" } else { "FAILED" }
        );
        figures.push(Figure::new(
            "peak RSS ÷ baseline",
            ours.peak_rss_kib as f64 / theirs.peak_rss_kib.max(1) as f64,
            "×",
            None,
            false,
            detail.clone(),
        ));
        figures.push(Figure::new(
            "wall time ÷ baseline",
            ours.wall_s / theirs.wall_s.max(1e-9),
            "×",
            None,
            false,
            detail,
        ));
    }

    Ok(figures)
}

/// What the memory child reports.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct PeakRss {
    /// VmHWM of the child, in KiB.
    pub peak_rss_kib: u64,
    /// Whether the run kept every invariant.
    pub passed: bool,
    /// Messages created.
    pub messages: u64,
    /// Simulated time covered.
    pub simulated_ms: u64,
    /// Wall time of the run.
    pub wall_s: f64,
}

/// The hidden `smsim bench-peak-rss SCENARIO`: simulates seed 1 of the scenario and prints
/// its own peak resident set (VmHWM) with the outcome, as JSON.
// Wall time is what is measured here; no outcome depends on it.
#[allow(clippy::disallowed_methods)]
pub fn peak_rss_child(scenario: &Path) -> anyhow::Result<PeakRss> {
    let loaded = Scenario::load(scenario)?;
    let started = std::time::Instant::now();
    let report = run(&loaded, 1, &RunOptions::default())?;
    let wall_s = started.elapsed().as_secs_f64();
    let status = std::fs::read_to_string("/proc/self/status")?;
    let peak_rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmHWM in /proc/self/status"))?;
    Ok(PeakRss {
        peak_rss_kib,
        passed: report.passed(),
        messages: report.campaigns.iter().map(|c| u64::from(c.total)).sum(),
        simulated_ms: report.simulated_ms,
        wall_s,
    })
}
