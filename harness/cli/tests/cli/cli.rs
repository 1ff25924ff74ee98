//! The `smsim` binary as a shell user meets it.

use std::process::{Command, Stdio};

fn smsim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_smsim"))
}

#[test]
fn listing_the_clauses_prints_one_per_line() {
    let output = smsim().args(["certify", "--list"]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.lines().any(|line| line.starts_with("submit.batch ")), "{text}");
    assert!(text.lines().count() >= 30, "{text}");
}

/// `smsim … | head` closes the pipe early; the program ends quietly instead of panicking.
#[test]
fn a_reader_that_goes_away_ends_the_program_quietly() {
    let mut child = smsim().args(["certify", "--list"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {:?}: {stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn scenario(name: &str) -> String {
    format!("{}/../../scenarios/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `smsim replay --expect-hash` verifies: the hash it prints passes, any other fails
/// with exit 1 and both hashes.
#[test]
fn replay_fails_when_the_trace_hash_differs_from_the_expected_one() {
    let path = scenario("happy-path.toml");
    let first = smsim().args(["replay", &path, "--seed", "2"]).output().unwrap();
    assert!(first.status.success(), "{first:?}");
    let stdout = String::from_utf8(first.stdout).unwrap();
    let hash = stdout.lines().find_map(|line| line.strip_prefix("trace hash ")).expect("a trace hash line").to_owned();
    assert_eq!(hash.len(), 64, "{stdout}");
    assert!(stdout.contains(" config "), "the header names the configuration hash: {stdout}");

    let same = smsim().args(["replay", &path, "--seed", "2", "--expect-hash", &hash]).output().unwrap();
    assert!(same.status.success(), "{same:?}");

    let wrong = "0".repeat(64);
    let other = smsim().args(["replay", &path, "--seed", "2", "--expect-hash", &wrong]).output().unwrap();
    assert_eq!(other.status.code(), Some(1), "{other:?}");
    let stderr = String::from_utf8(other.stderr).unwrap();
    assert!(stderr.contains(&wrong) && stderr.contains(&hash), "both hashes are printed: {stderr}");
}

/// A lease the store would refuse on every claim is refused when serve starts, naming the
/// flag, before anything listens or opens.
#[test]
fn serve_refuses_a_lease_longer_than_a_day_at_start() {
    let output =
        smsim().args(["serve", "--lease-ms", "86400001", "--db", "/nonexistent/never-opened.db"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--lease-ms") && stderr.contains("86400001"), "{stderr}");
}

/// Timings that turn deliveries into failures with no fault at all are refused at start
/// with exit 2, naming the flags: a lease shorter than the provider timeout, or a settle
/// delay shorter than lease + timeout + the declared report delay.
#[test]
fn serve_refuses_timings_that_lose_outcomes() {
    let refused = |flags: &[&str], named: &[&str]| {
        let mut args = vec!["serve", "--db", "/nonexistent/never-opened.db"];
        args.extend_from_slice(flags);
        let output = smsim().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flags:?}: {stderr}");
        for flag in named {
            assert!(stderr.contains(flag), "{flags:?} should name {flag}: {stderr}");
        }
        assert!(!stderr.contains("never-opened"), "refused before opening the database: {stderr}");
    };
    refused(&["--lease-ms", "100", "--unknown-settle-after-ms", "100"], &["--lease-ms 100", "--provider-timeout-ms"]);
    refused(
        &[
            "--lease-ms",
            "1000",
            "--provider-timeout-ms",
            "800",
            "--unknown-settle-after-ms",
            "1999",
            "--report-delay-ms",
            "200",
        ],
        &["--unknown-settle-after-ms 1999", "--report-delay-ms 200"],
    );
    // Settled before a lookup may trust "not found": a message never sent is charged.
    let lookups = ["--lease-ms", "1000", "--provider-timeout-ms", "800", "--unknown-settle-after-ms", "2000"];
    refused(&lookups, &["--unknown-settle-after-ms 2000", "--lookup-grace-ms 30000"]);
    refused(
        &[&lookups[..], &["--lookup-grace-ms", "1900", "--maintenance-interval-ms", "200"]].concat(),
        &["--lookup-grace-ms 1900", "--maintenance-interval-ms 200"],
    );
}

/// `smsim reconcile` reads the database: a report parked for an id the engine never
/// learned is listed under its account and status; an empty database says none.
#[test]
fn reconcile_lists_the_parked_reports_of_a_database() {
    use smsim_core::domain::{ProviderKind, ReportStatus};
    use smsim_core::store::sqlite::SqliteStore;
    use smsim_core::store::{InboundReport, NewTrafficAccount, Store};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("smsim.db");
    let run = || smsim().args(["reconcile", "--db"]).arg(&db).output().expect("smsim runs");
    SqliteStore::open(&db).unwrap();
    let empty = String::from_utf8(run().stdout).unwrap();
    assert_eq!(empty.matches("  none").count(), 2, "{empty}");
    {
        let store = SqliteStore::open(&db).unwrap();
        let account = store
            .create_traffic_account(NewTrafficAccount {
                owner: None,
                name: "main".into(),
                provider: ProviderKind::Mitto,
                base_url: "http://provider".into(),
                credentials: [("api_key".to_owned(), "k".to_owned())].into(),
                sender: "SMSIM".into(),
                rate_limit_per_s: None,
                price_per_segment: smsim_core::Credits(55),
                idempotent_submissions: false,
            })
            .unwrap();
        let report = InboundReport {
            traffic_account: account.id,
            provider_message_id: "never-learned".into(),
            message_ref: None,
            status: ReportStatus::Delivered,
            error_code: None,
        };
        store.apply_report(report, smsim_core::Timestamp(5_000)).unwrap();
    }
    let output = run();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("ta_1\tdelivered\t1\tfirst 5000\tlast 5000"), "{text}");
}
