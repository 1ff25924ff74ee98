//! Whole simulations: determinism, every scenario file, bad scenario files.

use smsim_sim::check::scenario_passes;
use smsim_sim::coverage::Mark;
use smsim_sim::run::{run, RunOptions};
use smsim_sim::scenario::{Scenario, ScenarioError};
use std::path::{Path, PathBuf};

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

fn load(name: &str) -> Scenario {
    Scenario::load(&scenarios_dir().join(name)).unwrap()
}

/// Same scenario + seed ⇒ same trace hash, run after run.
#[test]
fn seeds_replay_byte_for_byte() {
    for (name, seed) in [("happy-path.toml", 11), ("swarm-chaos.toml", 3)] {
        let scenario = load(name);
        let first = run(&scenario, seed, &RunOptions::default()).unwrap();
        let second = run(&scenario, seed, &RunOptions::default()).unwrap();
        assert_eq!(first.trace_hash, second.trace_hash, "{name} seed {seed} did not replay");
        assert_eq!(first.events, second.events);
        assert_eq!(first.coverage, second.coverage);
    }
}

/// A run's trace depends on its scenario and seed only, not on what else the process is
/// doing: crashes used to let tokio's process-wide task ids reach the network's generator.
#[test]
fn a_crash_scenario_replays_while_other_simulations_share_the_process() {
    let crash = load("api-crash.toml");
    let alone = run(&crash, 1, &RunOptions::default()).unwrap().trace_hash;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let neighbour = {
        let (stop, other) = (stop.clone(), load("happy-path.toml"));
        std::thread::spawn(move || {
            let mut seed = 1;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                run(&other, seed, &RunOptions::default()).unwrap();
                seed += 1;
            }
        })
    };
    let beside: Vec<String> = (0..3).map(|_| run(&crash, 1, &RunOptions::default()).unwrap().trace_hash).collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    neighbour.join().unwrap();
    assert!(beside.iter().all(|hash| *hash == alone), "alone {alone}, beside another simulation {beside:?}");
}

/// The scenario files directly in `dirs`, sorted; an unreadable directory is a failure.
fn scenario_files(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in dirs {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display()));
        files.extend(
            entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "toml")),
        );
    }
    files.sort();
    files
}

/// Every scenario file (regressions included) runs through one loader, a few seeds each.
#[test]
fn every_scenario_holds_its_invariants() {
    let files = scenario_files(&[scenarios_dir(), scenarios_dir().join("regressions")]);
    assert!(files.len() >= 2, "no scenarios found in {}", scenarios_dir().display());
    for file in files {
        let scenario = Scenario::load(&file).unwrap();
        if scenario.expect.incident.is_some() {
            continue;
        }
        let seeds = match scenario.seed {
            Some(seed) => seed..seed + 1,
            None if scenario.faults.swarm => 1..3,
            None => 1..2,
        };
        let reports = scenario_passes(&file, seeds);
        snapshot(&scenario, &reports[0]);
    }
}

/// The mutation benchmark's test (`docs/src/design/testing.md`, "Fault-finding power"):
/// every scenario — the library, the regressions, and the incident reproductions with their
/// bug left off (they are built to walk the dangerous paths) — over `SMSIM_MUTATION_SEEDS`
/// seeds (default 8), failing on what the judge finds or a coverage mark a scenario expects
/// and never saw; and every incident reproduction with its bug on, failing when the judge
/// no longer finds the invariant it names within its seeds (a mutant that disarms a bug
/// switch, or blinds the judge to it). No snapshot, no unit test. Ignored by default:
/// `cargo mutants` runs it by name.
#[test]
#[ignore = "the mutation benchmark's test command; run by name"]
fn the_judge_alone_passes_every_scenario_over_many_seeds() {
    let seeds: u64 = std::env::var("SMSIM_MUTATION_SEEDS").ok().and_then(|n| n.parse().ok()).unwrap_or(8);
    let dirs = [scenarios_dir(), scenarios_dir().join("regressions"), scenarios_dir().join("incidents")];
    let files = scenario_files(&dirs);
    assert!(files.len() >= 20, "too few scenarios found under {}", scenarios_dir().display());
    for file in files {
        let scenario = Scenario::load(&file).unwrap();
        let path = file.display().to_string();
        for seed in 1..=seeds {
            let options = RunOptions {
                keep_trace: false,
                scenario_path: Some(path.clone()),
                without_bug: true,
                adapters: None,
                timeline: false,
            };
            let report = run(&scenario, seed, &options).unwrap();
            assert!(report.passed(), "{path} seed {seed}: {:?}", report.violation);
        }
        if let Some(incident) = &scenario.expect.incident {
            let with_bug = RunOptions { keep_trace: false, scenario_path: Some(path.clone()), ..RunOptions::default() };
            let found = (1..=incident.within_seeds.unwrap_or(5))
                .find_map(|seed| run(&scenario, seed, &with_bug).unwrap().violation)
                .unwrap_or_else(|| panic!("{path}: bug `{}` went unnoticed", incident.bug));
            assert_eq!(found.invariant, incident.breaks, "{path}: another invariant broke first:\n{found}");
        }
    }
}

/// A scenario's outcome at its first seed, reviewed like code (`cargo insta review`).
fn snapshot(scenario: &Scenario, report: &smsim_sim::run::RunReport) {
    let outcome = serde_json::json!({
        "scenario": report.scenario,
        "seed": report.seed,
        "trace_hash": report.trace_hash,
        "events": report.events,
        "campaigns": report.campaigns,
        "charged": report.charged,
        "faults": report.faults,
        "invariants_checked": report.checks,
        "coverage": report.coverage,
    });
    insta::with_settings!({ snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../../snapshots"), prepend_module_to_snapshot => false }, {
        insta::assert_json_snapshot!(scenario.name.clone(), outcome);
    });
}

/// A Mitto-style bulk request's final reports travel as arrays, one webhook per window
/// they fall due in; with no window each report is a webhook of its own. Either way the
/// run keeps every invariant (the oracle's liveness check: every report applied) and the
/// campaign completes delivered.
#[test]
fn mitto_reports_share_a_webhook_per_window_unless_the_window_is_zero() {
    let batched = load("happy-path.toml");
    assert_eq!(batched.provider.report_window_ms, 1_000, "the default window");
    let mut single = batched.clone();
    single.provider.report_window_ms = 0;
    for seed in 1..=3 {
        let arrays = run(&batched, seed, &RunOptions::default()).unwrap();
        let alone = run(&single, seed, &RunOptions::default()).unwrap();
        for report in [&arrays, &alone] {
            assert!(report.violation.is_none(), "seed {seed}: {:?}", report.violation);
            let campaign = &report.campaigns[0];
            assert_eq!((campaign.status.as_str(), campaign.delivered), ("completed", 100), "seed {seed}");
        }
        // 100 messages in two bulk requests, their reports due over three seconds: a
        // handful of arrays, not a hundred webhooks.
        let arrays_sent = arrays.coverage.get(Mark::ReportsBatchedInOneWebhook.name()).copied().unwrap_or(0);
        assert!((2..=8).contains(&arrays_sent), "seed {seed}: {arrays_sent} array webhooks");
        assert!(
            !alone.coverage.contains_key(Mark::ReportsBatchedInOneWebhook.name()),
            "seed {seed}: {:?}",
            alone.coverage
        );
        assert_ne!(arrays.trace_hash, alone.trace_hash);
    }
    // With no window the provider draws and sends exactly as before windows existed, so a
    // run recorded then replays: this is seed 1's hash from that time.
    let before_windows = "e9ebb65c21d5ab812fc1c4b76329f16024e4f47e24373dd79b7393b704100a11";
    assert_eq!(run(&single, 1, &RunOptions::default()).unwrap().trace_hash, before_windows);
}

#[test]
fn different_seeds_take_different_paths() {
    let scenario = load("swarm-chaos.toml");
    let one = run(&scenario, 1, &RunOptions::default()).unwrap();
    let two = run(&scenario, 2, &RunOptions::default()).unwrap();
    assert_ne!(one.trace_hash, two.trace_hash);
}

#[test]
fn a_swarm_sweep_goes_through_the_dangerous_paths() {
    let scenario = load("swarm-chaos.toml");
    let mut seen = std::collections::BTreeSet::new();
    for seed in 1..5 {
        seen.extend(run(&scenario, seed, &RunOptions::default()).unwrap().coverage.into_keys());
    }
    for mark in [
        "report_before_answer_sent",
        "duplicate_report_sent",
        "submission_unknown",
        "timeout_after_accept",
        "enqueue_replayed",
    ] {
        assert!(seen.contains(mark), "no seed of 1..5 went through `{mark}`; seen: {seen:?}");
    }
}

fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    let scenario = Scenario::parse(text, Path::new("bad.toml"))?;
    scenario.validate(Path::new("bad.toml")).map_err(|error| error.located(text))?;
    Ok(scenario)
}

#[test]
fn bad_scenarios_are_refused_with_file_line_and_expectation() {
    let unknown_key = parse("duration_s = 10\nworkerz = 3\n").unwrap_err().to_string();
    assert!(unknown_key.starts_with("bad.toml:2:"), "{unknown_key}");
    assert!(unknown_key.contains("workerz"), "{unknown_key}");
    let wrong_type = parse("[engine]\nworkers = \"three\"\n").unwrap_err().to_string();
    assert!(wrong_type.starts_with("bad.toml:2:"), "{wrong_type}");
    let zero_workers = parse("[engine]\nworkers = 0\n").unwrap_err().to_string();
    assert!(zero_workers.contains("engine.workers") && zero_workers.contains("1 to 64"), "{zero_workers}");
    let negative_rate = parse("[faults.rates]\nprovider_5xx = -0.5\n").unwrap_err().to_string();
    assert!(negative_rate.contains("provider_5xx") && negative_rate.contains("0..=1"), "{negative_rate}");
    let late_action = parse("duration_s = 10\n[[tenants]]\nname = \"a\"\n[[traffic_accounts]]\nname = \"m\"\nprovider = \"mitto\"\n[[campaigns]]\nname = \"c\"\ntenant = \"a\"\ntraffic_account = \"m\"\n[[operator]]\naction = \"pause\"\ncampaign = \"c\"\nat_s = 99\n")
        .unwrap_err()
        .to_string();
    assert!(late_action.starts_with("bad.toml:14: operator[0].at_s"), "{late_action}");
    let unknown_host = parse("[engine]\nworkers = 2\n[[faults.events]]\nkind = \"crash\"\nhost = \"worker-3\"\nat_s = 1\nrestart_after_s = 1\n")
        .unwrap_err()
        .to_string();
    assert!(unknown_host.starts_with("bad.toml:5: faults.events[0].host: no host `worker-3`"), "{unknown_host}");
    let twice = parse("[[traffic_accounts]]\nname = \"m\"\nprovider = \"mitto\"\n[[traffic_accounts]]\nname = \"m\"\nprovider = \"twilio\"\n")
        .unwrap_err()
        .to_string();
    assert!(twice.starts_with("bad.toml:5: traffic_accounts[1].name: `m` is defined twice"), "{twice}");
    // A misspelt coverage mark or invariant is refused at load, with its line: it would
    // otherwise never fire, and the sweep could not tell a typo from a path not taken.
    let misspelt_mark = parse("duration_s = 10\n[expect]\ncoverage = [\"crash_api\",\n  \"duplicate_reports_sent\"]\n")
        .unwrap_err()
        .to_string();
    assert!(misspelt_mark.starts_with("bad.toml:4:"), "{misspelt_mark}");
    assert!(misspelt_mark.contains("duplicate_reports_sent"), "{misspelt_mark}");
    let misspelt_invariant = parse("[expect]\ninvariants = [\"at_most_once\"]\n").unwrap_err().to_string();
    assert!(misspelt_invariant.starts_with("bad.toml:2:"), "{misspelt_invariant}");
    assert!(misspelt_invariant.contains("at-most-once"), "the error lists the names: {misspelt_invariant}");
    let missing = Scenario::load(Path::new("/nonexistent/scenario.toml")).unwrap_err().to_string();
    assert!(missing.contains("/nonexistent/scenario.toml"), "{missing}");
}

/// A run in which a scenario's campaign never started has tested nothing about it, and
/// says so instead of passing.
#[test]
fn a_campaign_the_api_refuses_to_create_fails_the_run() {
    let text = "duration_s = 10\nheal_s = 10\n[[tenants]]\nname = \"a\"\ncontacts = { count = 3 }\n[[traffic_accounts]]\nname = \"m\"\nprovider = \"mitto\"\n[[campaigns]]\nname = \"c\"\ntenant = \"a\"\ntraffic_account = \"m\"\ntemplate = \"Hello {{first_name\"\nenqueue_at_s = 1\n";
    let scenario = parse(text).unwrap();
    let report = run(&scenario, 1, &RunOptions::default()).unwrap();
    let violation = report.violation.expect("the run should fail");
    assert_eq!(violation.invariant, smsim_sim::oracle::Invariant::Liveness);
    assert!(violation.evidence[0].contains("creating campaign `c` was answered 400"), "{violation}");
}

/// `expect.coverage` fails a sweep whose seeds never went where the scenario is meant to
/// go, and passes one in which every listed mark fired somewhere.
#[test]
fn a_sweep_fails_when_an_expected_coverage_mark_never_fires() {
    use smsim_sim::sweep::sweep;
    let mut quiet = load("happy-path.toml");
    quiet.expect.coverage = vec![Mark::CrashWorker];
    let report = sweep(&quiet, "scenarios/happy-path.toml", &[1, 2], 1, true, &|_| {}).unwrap();
    assert!(report.failures.is_empty());
    assert_eq!(report.uncovered, ["crash_worker"]);
    assert!(!report.passed());

    let crashing = load("api-crash.toml");
    assert_eq!(crashing.expect.coverage, [Mark::CrashApi]);
    let report = sweep(&crashing, "scenarios/api-crash.toml", &[1], 1, true, &|_| {}).unwrap();
    assert!(report.uncovered.is_empty() && report.passed(), "{:?}", report.coverage);
}

/// Asking for a timeline changes nothing about the run (same trace hash), and the
/// timeline follows every message and names the host behind each provider request.
#[test]
fn a_timeline_leaves_the_trace_hash_unchanged_and_follows_every_message() {
    use smsim_sim::timeline::MessageEventKind;
    let scenario = load("crash-between-accept-and-commit.toml");
    let plain = run(&scenario, 1, &RunOptions::default()).unwrap();
    let seen = run(&scenario, 1, &RunOptions { timeline: true, ..RunOptions::default() }).unwrap();
    assert_eq!(plain.trace_hash, seen.trace_hash);
    assert!(plain.timeline.is_none());
    let timeline = seen.timeline.unwrap();
    let messages: u32 = seen.campaigns.iter().map(|campaign| campaign.total).sum();
    assert_eq!(timeline.messages.len() as u32, messages);
    let sent: u32 = seen.campaigns.iter().map(|campaign| campaign.sent).sum();
    let accepted = |path: &&smsim_sim::timeline::MessagePath| {
        path.events.iter().any(|event| event.kind == MessageEventKind::Accepted)
    };
    // Messages settled as failed after an ambiguous acceptance were accepted too.
    let with_acceptance = timeline.messages.iter().filter(accepted).count() as u32;
    assert!(sent > 0 && with_acceptance >= sent, "{with_acceptance} messages with an acceptance, {sent} sent");
    for path in &timeline.messages {
        assert_eq!(path.events[0].kind, MessageEventKind::Created, "{}", path.id);
        assert!(path.events.windows(2).all(|pair| pair[0].at_ms <= pair[1].at_ms), "{} out of order", path.id);
    }
    assert!(timeline.exchanges.iter().any(|e| e.from.starts_with("worker-") && e.to == "provider"));
    assert!(timeline.exchanges.iter().any(|e| e.from == "driver" && e.to == "api"));
    assert!(timeline.hosts.first().is_some_and(|host| host == "driver"));
    assert!(timeline.campaigns.iter().all(|campaign| !campaign.samples.is_empty()));
}
