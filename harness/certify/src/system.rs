//! The system arm: the adapter under test serves the engine in the full simulator, against
//! the simulated provider of its wire kind, and the oracle judges every step.

use super::engine::SubjectFactory;
use super::Context;
use smsim_sim::run::{self, AdapterFactoryRef, RunOptions};
use smsim_sim::scenario::Scenario;
use std::path::Path;
use std::sync::Arc;

/// One campaign of 100 contacts, no faults.
const HAPPY_PATH: &str = r#"
description = "certification: the happy path through the adapter under test"
duration_s = 30
heal_s = 30

[[tenants]]
name = "acme"
credits = 100000
contacts = { count = 100 }

[[traffic_accounts]]
name = "under-test"
provider = "{provider}"

[[campaigns]]
name = "spring"
tenant = "acme"
traffic_account = "under-test"
enqueue_at_s = 1
"#;

/// Two campaigns under provider outages, timeouts after accept, malformed answers,
/// duplicated and reordered reports, and a worker crash.
const FAULTS: &str = r#"
description = "certification: the adapter under test through provider and engine faults"
duration_s = 40
heal_s = 120

[engine]
workers = 2
unknown_settle_after_ms = 30000

[provider]
intermediate_reports = true

[[tenants]]
name = "acme"
credits = 100000
contacts = { count = 60 }

[[traffic_accounts]]
name = "under-test"
provider = "{provider}"

[[campaigns]]
name = "first"
tenant = "acme"
traffic_account = "under-test"
enqueue_at_s = 1

[[campaigns]]
name = "second"
tenant = "acme"
traffic_account = "under-test"
enqueue_at_s = 3

[faults.rates]
provider_429 = 0.1
timeout_after_accept = 0.1
malformed_answer = 0.05
partial_bulk_failure = 0.1
duplicate_report = 0.3
report_before_answer = 0.1
intermediate_after_final = 0.2

[[faults.events]]
kind = "provider_outage"
status = 503
at_s = 5
for_s = 8

[[faults.events]]
kind = "crash"
host = "worker-1"
at_s = 12
restart_after_s = 3
"#;

fn scenario(template: &str, context: &Context) -> Result<Scenario, String> {
    let text = template.replace("{provider}", context.subject.profile.kind().as_str());
    Scenario::parse(&text, Path::new("<certification>")).map_err(|error| error.to_string())
}

fn sweep(template: &str, seeds: std::ops::RangeInclusive<u64>, context: &Context) -> Result<(), String> {
    let scenario = scenario(template, context)?;
    let options = RunOptions {
        adapters: Some(AdapterFactoryRef(Arc::new(SubjectFactory(context.subject.clone())))),
        ..RunOptions::default()
    };
    for seed in seeds {
        let report = run::run(&scenario, seed, &options).map_err(|error| format!("seed {seed}: {error}"))?;
        if let Some(violation) = report.violation {
            return Err(format!(
                "seed {seed}: {} broke at {} ms: {}; evidence: {}",
                violation.invariant,
                violation.at_ms,
                violation.message,
                violation.evidence.join("; ")
            ));
        }
    }
    Ok(())
}

/// The happy path, at the kit's first seed.
pub fn happy_path(context: &Context) -> Result<(), String> {
    sweep(HAPPY_PATH, 1..=1, context)
}

/// The faulty scenario over the kit's system seeds.
pub fn faults(context: &Context) -> Result<(), String> {
    sweep(FAULTS, 1..=context.options.system_seeds.max(1), context)
}
