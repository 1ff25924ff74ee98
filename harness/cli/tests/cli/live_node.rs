//! `smsim live` against the example Node/BullMQ engine (harness/live/engines/node-bullmq):
//! an API process and two BullMQ worker processes on a Redis of their own. In the first
//! incident's version it is caught — a job handed on after a kill is sent again, or
//! counters bumped per delivery report run past the contacts — and corrected, it passes
//! the same fault plans, whether the faults hit every process or one worker.
//!
//! Needs `node`, `redis-server` (.ci/redis) and the engine's packages (.ci/node-engine);
//! without them these tests say loudly that they were skipped, and fail under CI=true.

use super::live::text;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn engines() -> PathBuf {
    root().join("harness/live/engines")
}

/// Whether `program --version` runs.
fn runs(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether the engine can run here; a loud skip when it cannot, a failure under CI=true.
fn node_engine_installed() -> bool {
    let modules = engines().join("node-bullmq/node_modules");
    let missing: Vec<&str> = [
        (!runs("node")).then_some("node"),
        (!runs("redis-server")).then_some("redis-server (.ci/redis)"),
        (!modules.join("bullmq").exists() || !modules.join("ioredis").exists())
            .then_some("the engine's node_modules (.ci/node-engine)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but the Node engine cannot run: missing {}; .ci/run installs them",
        missing.join(", ")
    );
    eprintln!(
        "\nSKIPPED: the Node/BullMQ engine's live tests: missing {}.\n  Install with: bash -c 'source .ci/redis; source .ci/node-engine && node_engine_install'\n",
        missing.join(", ")
    );
    false
}

/// `smsim live SCENARIO --engine PROFILE` in `workdir` (the profile by its name in the
/// engines directory), with its output and JSON report, which must exist.
fn live(scenario: &Path, profile: &str, workdir: &Path, extra: &[&str]) -> (Output, Value) {
    let (output, report) = super::live::live_in(scenario, &engines().join(profile), workdir, extra);
    let report = report.unwrap_or_else(|| panic!("no report: {}", text(&output)));
    (output, report)
}

/// The verdict on `invariant` (for money, its first tenant's).
fn verdict<'a>(report: &'a Value, invariant: &str) -> &'a str {
    let rows = report["verdicts"].as_array().expect("verdict rows");
    let row =
        rows.iter().find(|row| row["invariant"] == invariant).unwrap_or_else(|| panic!("no verdict on {invariant}"));
    row["verdict"].as_str().expect("a verdict")
}

/// The fixed engine passed: exit 0, nothing accepted twice, the campaign completed, and the
/// invariants live mode can judge of it held.
fn assert_passed(output: &Output, report: &Value) {
    assert_eq!(output.status.code(), Some(0), "{}", text(output));
    assert_eq!(report["duplicate_acceptances"], 0, "{}", text(output));
    assert_eq!(report["campaigns"][0]["last"]["status"], "completed", "{}", text(output));
    for invariant in ["counters", "progress", "at-most-once", "money", "completion", "liveness", "rate"] {
        assert_eq!(verdict(report, invariant), "held", "{invariant}: {}", text(output));
    }
}

// incident 000: the SmsQueueService's per-report counters and its resend after a crash,
// on BullMQ: a job whose worker was killed after the provider accepted is handed on by
// the stalled-job check and sent again.
#[test]
fn the_node_engine_is_caught_in_its_incident_mode_and_passes_corrected() {
    if !node_engine_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let scenario = root().join("harness/live/scenarios/short.toml");
    let (buggy, report) = live(&scenario, "node-bullmq-buggy.toml", &dir.path().join("buggy"), &[]);
    assert_eq!(buggy.status.code(), Some(1), "{}", text(&buggy));
    // The judge stops at the first violation: a resend (at-most-once), or the per-report
    // counters running past the contacts (counters, progress).
    let broken: Vec<&str> = ["at-most-once", "counters", "progress"]
        .into_iter()
        .filter(|invariant| verdict(&report, invariant) == "broken")
        .collect();
    assert_eq!(broken.len(), 1, "{}", text(&buggy));
    assert_eq!(report["violations"].as_array().unwrap().len(), 1, "{}", text(&buggy));

    let (fixed, report) = live(&scenario, "node-bullmq-fixed.toml", &dir.path().join("fixed"), &[]);
    assert_passed(&fixed, &report);
    assert!(report["fired"]["kills"].as_u64().unwrap() >= 2, "{}", text(&fixed));
}

/// Kills of worker-1 alone, the other worker and the API running on: each while the
/// provider holds the answer to a request of worker-1's it accepted, which leaves the job
/// active until its lock lapses; BullMQ then hands it on. Two such kills and no other
/// fault, so that worker-1 is up to send when one is armed. Reports are not duplicated
/// here: only a resend can convict the incident's version.
#[test]
fn a_job_handed_on_from_a_killed_worker_is_resent_by_the_incident_engine_and_never_by_the_corrected_one() {
    if !node_engine_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let short = std::fs::read_to_string(root().join("harness/live/scenarios/short.toml")).unwrap();
    assert!(short.contains("duplicate_report = 0.1"), "short.toml changed: update this test");
    let scenario = dir.path().join("short-no-duplicate-reports.toml");
    std::fs::write(&scenario, short.replace("duplicate_report = 0.1", "duplicate_report = 0.0")).unwrap();
    let one_worker = ["--target", "worker-1", "--kills", "0", "--pauses", "0", "--kills-on-accept", "2"];

    let (buggy, report) = live(&scenario, "node-bullmq-buggy.toml", &dir.path().join("buggy"), &one_worker);
    assert_eq!(buggy.status.code(), Some(1), "{}", text(&buggy));
    assert_eq!(verdict(&report, "at-most-once"), "broken", "{}", text(&buggy));
    assert!(report["duplicate_acceptances"].as_u64().unwrap() > 0, "{}", text(&buggy));

    let workdir = dir.path().join("fixed");
    let (fixed, report) = live(&scenario, "node-bullmq-fixed.toml", &workdir, &one_worker);
    assert_passed(&fixed, &report);
    // The dangerous path was taken: worker-1 was killed holding an accepted request, and the
    // job handed on found its messages submitting and let them settle as unknown outcomes.
    assert!(report["fired"]["kills_between_accept_and_commit"].as_u64().unwrap() >= 1, "{}", text(&fixed));
    assert!(report["campaigns"][0]["last"]["unknown_outcome"].as_u64().unwrap() > 0, "{}", text(&fixed));
    let killed = super::live::killed_processes(&workdir);
    assert_eq!(killed, std::collections::BTreeSet::from(["worker-1".to_owned()]), "{}", text(&fixed));
}
