//! Hostile scenario files: a valid scenario with one field replaced by a value of the
//! wrong type, an extreme, a NaN or an infinity, an unknown key added or a key removed.
//! The loader must answer a typed error naming the file, the line and the field — never
//! panic — and a scenario it accepts must be bounded (a simulation that ends, contacts
//! that fit, amounts the engine accepts).
//!
//! The long run: `PROPTEST_CASES=5000 cargo test -p smsim-harness --test harness hostile -- --nocapture`.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use smsim_sim::scenario::{bounds, FaultEvent, Scenario, ScenarioError};
use std::cell::Cell;
use std::path::Path;
use toml::Value;

/// A scenario that sets every section and every kind of field.
const BASE: &str = r#"
name = "hostile"
description = "every field"
seed = 7
duration_s = 20
heal_s = 30
tick_ms = 10

[engine]
workers = 2
lease_ms = 5000
claim_batch = 20
unknown_settle_after_ms = 30000

[provider]
latency_ms = [5, 50]
reject_rate = 0.1
delivery_rate = 0.9
report_delay_ms = [100, 1000]
intermediate_reports = true
report_window_ms = 250

[faults]
swarm = false
[faults.rates]
provider_5xx = 0.1
duplicate_report = 0.2
[[faults.events]]
kind = "crash"
host = "worker-1"
at_s = 3.0
restart_after_s = 2.0
[[faults.events]]
kind = "partition"
a = "api"
b = "provider"
at_s = 4.0
for_s = 1.5
[[faults.events]]
kind = "provider_outage"
at_s = 5.0
for_s = 1.0
status = 503

[[tenants]]
name = "acme"
credits = 100000
rate_limit_per_s = 50
contacts = { count = 20, invalid_share = 0.1, opted_out_share = 0.1, ucs2_name_share = 0.2 }

[[traffic_accounts]]
name = "main"
provider = "mitto"
owner = "acme"
rate_limit_per_s = 20
price_per_segment = 55

[[campaigns]]
name = "spring"
tenant = "acme"
traffic_account = "main"
template = "Hi {{first_name|there}}"
enqueue_at_s = 1.0
schedule_in_s = 2.0
double_click = "same_key"

[[operator]]
action = "top_up"
tenant = "acme"
amount = 1000
at_s = 6.0

[[operator]]
action = "pause"
campaign = "spring"
at_s = 7.0
random = true

[expect]
invariants = ["money", "counters"]
coverage = ["operator_cancel"]
"#;

fn hostile_value() -> impl Strategy<Value = Value> {
    let integers = vec![i64::MIN, -1, 0, 1, 65, 1_001, i64::from(u32::MAX), i64::from(u32::MAX) + 1, i64::MAX];
    let floats = vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, -1.0, 0.5, 1.5, 1e308];
    let datetime: toml::value::Datetime = "1979-05-27T07:32:00Z".parse().expect("a TOML datetime");
    prop_oneof![
        4 => proptest::sample::select(integers).prop_map(Value::Integer),
        3 => proptest::sample::select(floats).prop_map(Value::Float),
        2 => prop_oneof![
            Just(String::new()), Just("worker-999".to_owned()), Just("api".to_owned()), Just("acme".to_owned()),
            Just("{{".to_owned()), Just("x".repeat(100_000)), any::<String>()
        ]
        .prop_map(Value::String),
        1 => any::<bool>().prop_map(Value::Boolean),
        1 => Just(Value::Datetime(datetime)),
        1 => prop_oneof![
            Just(Value::Array(Vec::new())),
            Just(Value::Array(vec![Value::Integer(1), Value::String("a".into())])),
            Just(Value::Table(toml::Table::new())),
        ],
    ]
}

/// A path of table keys and array indices into the base document.
type TomlPath = Vec<Value>;

fn paths(value: &Value, prefix: TomlPath, into: &mut Vec<TomlPath>) {
    into.push(prefix.clone());
    let step = |key: Value, inner: &Value, into: &mut Vec<TomlPath>| {
        let mut path = prefix.clone();
        path.push(key);
        paths(inner, path, into);
    };
    match value {
        Value::Table(table) => table.iter().for_each(|(key, inner)| step(Value::String(key.clone()), inner, into)),
        Value::Array(items) => {
            items.iter().enumerate().for_each(|(i, inner)| step(Value::Integer(i as i64), inner, into))
        }
        _ => {}
    }
}

fn at_path<'a>(value: &'a mut Value, path: &[Value]) -> &'a mut Value {
    path.iter().fold(value, |inner, step| match (inner, step) {
        (Value::Table(table), Value::String(key)) => table.get_mut(key).expect("a listed key"),
        (Value::Array(items), Value::Integer(index)) => &mut items[*index as usize],
        _ => unreachable!("paths follow the document"),
    })
}

/// How the base scenario is made hostile.
#[derive(Clone, Debug)]
enum Mutation {
    Replace(Index, Value),
    UnknownKey(Index),
    Remove(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        6 => (any::<Index>(), hostile_value()).prop_map(|(at, value)| Mutation::Replace(at, value)),
        1 => any::<Index>().prop_map(Mutation::UnknownKey),
        1 => any::<Index>().prop_map(Mutation::Remove),
    ]
}

fn mutated(mutations: &[Mutation]) -> String {
    let mut document: Value = toml::from_str(BASE).expect("the base scenario parses");
    for mutation in mutations {
        let mut all = Vec::new();
        paths(&document, Vec::new(), &mut all);
        // The root itself cannot be replaced by a non-table and stay a document.
        let all: Vec<TomlPath> = all.into_iter().filter(|path| !path.is_empty()).collect();
        match mutation {
            Mutation::Replace(at, value) => *at_path(&mut document, &all[at.index(all.len())]) = value.clone(),
            Mutation::UnknownKey(at) => {
                if let Value::Table(table) = at_path(&mut document, &all[at.index(all.len())]) {
                    table.insert("colour".into(), Value::String("red".into()));
                }
            }
            Mutation::Remove(at) => {
                let path = &all[at.index(all.len())];
                let (last, parent) = path.split_last().expect("not the root");
                match (at_path(&mut document, parent), last) {
                    (Value::Table(table), Value::String(key)) => drop(table.remove(key)),
                    (Value::Array(items), Value::Integer(index)) => drop(items.remove(*index as usize)),
                    _ => {}
                }
            }
        }
    }
    toml::to_string(&document).unwrap_or_else(|_| format!("{document}"))
}

/// A loaded scenario is bounded: it ends, it fits, its floats are numbers.
fn check_bounded(scenario: &Scenario) -> Result<(), TestCaseError> {
    prop_assert!(scenario.duration_s <= bounds::MAX_PHASE_S && scenario.heal_s <= bounds::MAX_PHASE_S);
    let contacts: u64 = scenario.tenants.iter().map(|tenant| u64::from(tenant.contacts.count)).sum();
    prop_assert!(contacts <= bounds::MAX_CONTACTS, "{} contacts", contacts);
    prop_assert!(scenario.engine.lease_ms >= 1 && scenario.engine.lease_ms <= bounds::MAX_DURATION_MS);
    prop_assert!(scenario.provider.report_window_ms <= bounds::MAX_DURATION_MS);
    let mut times: Vec<f64> = scenario.campaigns.iter().map(|campaign| campaign.enqueue_at_s).collect();
    times.extend(scenario.campaigns.iter().filter_map(|campaign| campaign.schedule_in_s));
    times.extend(scenario.operator.iter().map(|action| action.at_s));
    for event in &scenario.faults.events {
        times.extend(match event {
            FaultEvent::Crash { at_s, restart_after_s, .. } => [*at_s, *restart_after_s],
            FaultEvent::Partition { at_s, for_s, .. }
            | FaultEvent::Hold { at_s, for_s, .. }
            | FaultEvent::ProviderOutage { at_s, for_s, .. } => [*at_s, *for_s],
        });
    }
    prop_assert!(times.iter().all(|time| time.is_finite() && *time >= 0.0), "times {:?}", times);
    Ok(())
}

/// A refusal names the file, a line in it and (for a value error) the field.
fn check_located(error: &ScenarioError, file: &Path, text: &str) -> Result<(), TestCaseError> {
    let lines = text.lines().count() + 1;
    let shown = error.to_string();
    prop_assert!(shown.starts_with(&file.display().to_string()), "no file in `{}`", shown);
    match error {
        ScenarioError::Parse { line, message, .. } => {
            prop_assert!((1..=lines).contains(line) && !message.is_empty(), "{}", shown);
        }
        ScenarioError::Invalid { line, field, message, .. } => {
            prop_assert!(!field.is_empty() && !message.is_empty(), "{}", shown);
            prop_assert!(line.is_some_and(|line| (1..=lines).contains(&line)), "no line in `{}`\n{}", shown, text);
        }
        ScenarioError::Read { .. } => prop_assert!(false, "the file was written: {}", shown),
    }
    Ok(())
}

#[test]
fn hostile_scenario_files_are_refused_with_file_line_and_field_or_load_bounded() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let file = directory.path().join("hostile.toml");
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(64);
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[16; 32]));
    let (accepted, refused) = (Cell::new(0u64), Cell::new(0u64));
    let result = runner.run(&proptest::collection::vec(mutation(), 1..4), |mutations| {
        let text = mutated(&mutations);
        std::fs::write(&file, &text).expect("write the scenario");
        match Scenario::load(&file) {
            Ok(scenario) => {
                accepted.set(accepted.get() + 1);
                check_bounded(&scenario)
            }
            Err(error) => {
                refused.set(refused.get() + 1);
                check_located(&error, &file, &text)
            }
        }
    });
    let (accepted, refused) = (accepted.get(), refused.get());
    eprintln!("hostile scenario files: {} cases; {accepted} loaded (bounded), {refused} refused", accepted + refused);
    if let Err(error) = result {
        panic!("{error}");
    }
}

/// Values that parse but would never end, never fit or overflow: each refused at load,
/// naming its field and line.
#[test]
fn unbounded_scenarios_are_refused_at_load_naming_the_bound() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let file = directory.path().join("unbounded.toml");
    let cases = [
        ("duration_s = 20", "duration_s = 99999999999", "duration_s", "at most 3600"),
        (
            "report_window_ms = 250",
            "report_window_ms = 250\nprices = { twilio_usd_per_segment = -0.5 }",
            "provider.prices.twilio_usd_per_segment",
            "0..=100",
        ),
        ("heal_s = 30", "heal_s = 9223372036854775807", "heal_s", "at most 3600"),
        ("lease_ms = 5000", "lease_ms = 0", "engine.lease_ms", "at least 1 ms"),
        ("count = 20,", "count = 4294967295,", "tenants[0].contacts.count", "at most 10000000"),
        ("credits = 100000", "credits = 9223372036854775807", "tenants[0].credits", "at most"),
        ("rate_limit_per_s = 50", "rate_limit_per_s = 0", "tenants[0].rate_limit_per_s", "at least 1"),
        (
            "price_per_segment = 55",
            "price_per_segment = 9223372036854775807",
            "traffic_accounts[0].price_per_segment",
            "at most",
        ),
        ("amount = 1000", "amount = 9223372036854775807", "operator[0].amount", "top-up of 1 to"),
        ("enqueue_at_s = 1.0", "enqueue_at_s = nan", "campaigns[0].enqueue_at_s", "got NaN"),
        ("schedule_in_s = 2.0", "schedule_in_s = inf", "campaigns[0].schedule_in_s", "got inf"),
        ("at_s = 6.0", "at_s = nan", "operator[0].at_s", "got NaN"),
        ("restart_after_s = 2.0", "restart_after_s = inf", "faults.events[0].restart_after_s", "got inf"),
        ("latency_ms = [5, 50]", "latency_ms = [5, 9223372036854775807]", "provider.latency_ms", "at most"),
        ("report_window_ms = 250", "report_window_ms = 9223372036854775807", "provider.report_window_ms", "at most"),
    ];
    for (from, to, field, expected) in cases {
        assert!(BASE.contains(from), "{from}");
        let text = BASE.replacen(from, to, 1);
        std::fs::write(&file, &text).expect("write the scenario");
        let error = Scenario::load(&file).expect_err(to);
        let ScenarioError::Invalid { field: named, line: Some(line), message, .. } = &error else {
            panic!("{to}: {error}")
        };
        assert_eq!(named, field, "{to}: {error}");
        assert!(message.contains(expected), "{to}: {error}");
        let written = text.lines().position(|text| text.contains(to.split(" = ").next().unwrap())).map(|i| i + 1);
        assert!(written.is_some_and(|written| written <= *line), "{to}: line {line}: {error}");
    }
}

/// `[bad_input]` needs a tenant of its own and a shared account: a section that names an
/// unknown tenant, one with contacts or campaigns, or a scenario with no shared account is
/// refused naming the field; a right one loads.
#[test]
fn bad_input_is_refused_unless_its_tenant_has_nothing_of_its_own() {
    let path = Path::new("bad-input.toml");
    let scenario = |tenant_contacts: u32, extra: &str, owner: &str| {
        format!(
            r#"
[[tenants]]
name = "acme"
contacts = {{ count = 5 }}
[[tenants]]
name = "mallory"
contacts = {{ count = {tenant_contacts} }}
[[traffic_accounts]]
name = "main"
provider = "mitto"
{owner}
[[campaigns]]
name = "spring"
tenant = "acme"
traffic_account = "main"
{extra}
[bad_input]
tenant = "mallory"
at_s = 2
"#
        )
    };
    let load = |text: &str| Scenario::parse(text, path).and_then(|scenario| scenario.validate(path).map(|()| scenario));
    let refused = |text: String, field: &str, says: &str| match load(&text) {
        Err(ScenarioError::Invalid { field: named, message, .. }) => {
            assert_eq!(named, field, "{message}");
            assert!(message.contains(says), "{message}");
        }
        other => panic!("expected `{field}` refused, got {other:?}"),
    };
    load(&scenario(0, "", "")).expect("a tenant of its own loads");
    refused(scenario(3, "", ""), "bad_input.tenant", "has contacts or campaigns");
    let campaign = "[[campaigns]]\nname = \"probe\"\ntenant = \"mallory\"\ntraffic_account = \"main\"";
    refused(scenario(0, campaign, ""), "bad_input.tenant", "has contacts or campaigns");
    refused(scenario(0, "", "owner = \"acme\""), "bad_input", "shared traffic account");
    refused(
        scenario(0, "", "").replace("tenant = \"mallory\"\nat_s", "tenant = \"nobody\"\nat_s"),
        "bad_input.tenant",
        "no tenant named",
    );
    refused(scenario(0, "", "").replace("at_s = 2", "at_s = 999"), "bad_input.at_s", "within");
}
