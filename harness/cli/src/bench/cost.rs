//! Section 2 of `smsim bench`: what the simulator pays per message and per idle step.
//!
//! Three copies of the happy path are written to a scratch directory, differing from it
//! in one number each:
//!
//! - `contacts-1`: one contact, so a seed is nearly all fixed cost (building the hosts'
//!   runtimes, the driver's setup requests, idle steps);
//! - `contacts-1000`: 1 000 contacts, so the difference from `contacts-1`, divided by
//!   999, is the marginal cost of one message: its share of a bulk submit, its delivery
//!   report's webhook, the store's transitions, the oracle's checks, its trace lines;
//! - `idle-late`: one contact enqueued [`IDLE_S`] seconds later, so the difference from
//!   `contacts-1`, divided by the extra ticks, is the cost of one idle step (turmoil
//!   polling every host and the network while the workers and the maintenance task find
//!   nothing to do).
//!
//! Each file runs through this build and, with `--baseline`, the earlier one, in turn,
//! and the least of two rounds is kept. The marginal cost of a message must be at most
//! half the baseline's; the idle step is printed for reading, with no target, because it
//! is turmoil's own step cost (97 % of it), not smsim's.

use super::baseline::{interleaved, Binary};
use super::{Figure, Scratch};
use anyhow::Context;
use std::path::{Path, PathBuf};

/// The extra idle stretch of `idle-late`, in simulated seconds.
const IDLE_S: i64 = 20;
/// Seeds per measurement: enough that one-time costs are a few percent.
const SEEDS_SMALL: u64 = 200;
const SEEDS_LARGE: u64 = 10;
const LARGE_CONTACTS: i64 = 1_000;
/// The marginal cost of a message must be at most this share of the baseline's.
const AGAINST_BASELINE: f64 = 0.5;
const ROUNDS: usize = 3;

/// The three copies of the happy path.
struct Variants {
    _scratch: Scratch,
    one: PathBuf,
    large: PathBuf,
    idle_late: PathBuf,
    /// Extra simulated ticks of `idle_late` over `one`.
    idle_ticks: f64,
}

impl Variants {
    fn write(happy_path: &Path) -> anyhow::Result<Variants> {
        let text = std::fs::read_to_string(happy_path).with_context(|| format!("reading {}", happy_path.display()))?;
        let base: toml::Table = text.parse().with_context(|| format!("parsing {}", happy_path.display()))?;
        let tick_ms = base.get("tick_ms").and_then(toml::Value::as_integer).unwrap_or(10);
        let scratch = Scratch::new("cost")?;
        let write = |name: &str, contacts: i64, enqueue_delay_s: i64| -> anyhow::Result<PathBuf> {
            let mut table = base.clone();
            let tenant = first(&mut table, "tenants")?;
            let contacts_table = tenant
                .get_mut("contacts")
                .and_then(toml::Value::as_table_mut)
                .ok_or_else(|| anyhow::anyhow!("{}: the first tenant has no contacts table", happy_path.display()))?;
            contacts_table.insert("count".into(), contacts.into());
            let campaign = first(&mut table, "campaigns")?;
            let later = match campaign.get("enqueue_at_s") {
                Some(toml::Value::Float(at)) => toml::Value::Float(at + enqueue_delay_s as f64),
                Some(toml::Value::Integer(at)) => toml::Value::Integer(at + enqueue_delay_s),
                None => toml::Value::Integer(enqueue_delay_s),
                Some(other) => anyhow::bail!("{}: enqueue_at_s is {other}", happy_path.display()),
            };
            campaign.insert("enqueue_at_s".into(), later);
            let path = scratch.0.join(format!("{name}.toml"));
            std::fs::write(&path, toml::to_string(&table)?)?;
            Ok(path)
        };
        Ok(Variants {
            one: write("contacts-1", 1, 0)?,
            large: write(&format!("contacts-{LARGE_CONTACTS}"), LARGE_CONTACTS, 0)?,
            idle_late: write("idle-late", 1, IDLE_S)?,
            idle_ticks: (IDLE_S * 1_000 / tick_ms.max(1)) as f64,
            _scratch: scratch,
        })
    }
}

/// The first entry of the array of tables `key`.
fn first<'a>(table: &'a mut toml::Table, key: &str) -> anyhow::Result<&'a mut toml::Table> {
    table
        .get_mut(key)
        .and_then(toml::Value::as_array_mut)
        .and_then(|entries| entries.first_mut())
        .and_then(toml::Value::as_table_mut)
        .ok_or_else(|| anyhow::anyhow!("the happy path has no [[{key}]]"))
}

/// Seconds per seed of the three copies, for one binary.
#[derive(Clone, Copy, Debug)]
struct Costs {
    one_s: f64,
    large_s: f64,
    idle_late_s: f64,
}

impl Costs {
    fn per_message_us(&self) -> f64 {
        (self.large_s - self.one_s) * 1e6 / (LARGE_CONTACTS - 1) as f64
    }

    fn per_idle_step_us(&self, ticks: f64) -> f64 {
        (self.idle_late_s - self.one_s) * 1e6 / ticks
    }
}

/// The section: per-message and per-idle-step cost, and with a baseline, each against it.
pub(super) fn section(happy_path: &Path, current: &Binary, baseline: Option<&Binary>) -> anyhow::Result<Vec<Figure>> {
    let variants = Variants::write(happy_path)?;
    let per_seed = |path: &Path, seeds: u64| {
        interleaved(current, baseline, ROUNDS, |binary| Ok(binary.sweep_wall_s(path, seeds, 1)? / seeds as f64))
    };
    let (one, base_one) = per_seed(&variants.one, SEEDS_SMALL)?;
    let (large, base_large) = per_seed(&variants.large, SEEDS_LARGE)?;
    let (idle_late, base_idle_late) = per_seed(&variants.idle_late, SEEDS_SMALL)?;
    let ours = Costs { one_s: one, large_s: large, idle_late_s: idle_late };
    let theirs = match (base_one, base_large, base_idle_late) {
        (Some(one_s), Some(large_s), Some(idle_late_s)) => Some(Costs { one_s, large_s, idle_late_s }),
        _ => None,
    };
    let ticks = variants.idle_ticks;
    let seeds = |costs: &Costs| {
        format!(
            "{:.2} ms per seed with 1 contact, {:.2} ms with {LARGE_CONTACTS}, {:.2} ms with 1 contact enqueued {IDLE_S} s later",
            costs.one_s * 1e3,
            costs.large_s * 1e3,
            costs.idle_late_s * 1e3
        )
    };
    let against = |what: &str, ours: f64, theirs: Option<f64>, target: Option<f64>| {
        Figure::maybe(
            &format!("{what} ÷ baseline"),
            theirs.map(|theirs| ours / theirs.max(1e-9)),
            "×",
            target,
            false,
            match theirs {
                Some(theirs) => format!("{ours:.2} µs against the baseline's {theirs:.2} µs, measured in turn"),
                None => "no baseline to compare with".into(),
            },
        )
    };
    Ok(vec![
        Figure::new("fixed cost of a seed (1 contact)", ours.one_s * 1e3, "ms", None, false, seeds(&ours)),
        Figure::new(
            "marginal cost per message",
            ours.per_message_us(),
            "µs",
            None,
            false,
            format!("(1 000-contact seed − 1-contact seed) ÷ {}", LARGE_CONTACTS - 1),
        ),
        against(
            "marginal cost per message",
            ours.per_message_us(),
            theirs.map(|c| c.per_message_us()),
            Some(AGAINST_BASELINE),
        ),
        Figure::new(
            "cost per idle step",
            ours.per_idle_step_us(ticks),
            "µs",
            None,
            false,
            format!("(late seed − 1-contact seed) ÷ {ticks:.0} extra ticks; for reading: it is turmoil's own step"),
        ),
        // No target: an idle step is turmoil's and tokio's (`bounds.md`, "The idle step").
        against("cost per idle step", ours.per_idle_step_us(ticks), theirs.map(|c| c.per_idle_step_us(ticks)), None),
    ]
    .into_iter()
    .chain(theirs.map(|theirs| Figure::new("baseline's seeds", theirs.one_s * 1e3, "ms", None, false, seeds(&theirs))))
    .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use smsim_sim::scenario::Scenario;

    /// The copies are the happy path with exactly one number changed each, and load as
    /// scenarios; a differing anything else would make the differences measure it too.
    #[test]
    fn the_copies_differ_from_the_happy_path_in_one_number_each() {
        let happy_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/happy-path.toml");
        let happy = Scenario::load(&happy_path).unwrap();
        let variants = Variants::write(&happy_path).unwrap();
        let load = |path: &Path| Scenario::load(path).unwrap();
        let (one, large, late) = (load(&variants.one), load(&variants.large), load(&variants.idle_late));
        assert_eq!(one.tenants[0].contacts.count, 1);
        assert_eq!(large.tenants[0].contacts.count, 1_000);
        assert_eq!(late.tenants[0].contacts.count, 1);
        let enqueue_at = |scenario: &Scenario| scenario.campaigns[0].enqueue_at_s;
        assert_eq!(enqueue_at(&one), enqueue_at(&happy));
        assert_eq!(enqueue_at(&large), enqueue_at(&happy));
        assert_eq!(enqueue_at(&late), enqueue_at(&happy) + IDLE_S as f64);
        assert_eq!(variants.idle_ticks, (IDLE_S as u64 * 1_000 / happy.tick_ms) as f64);
        for copy in [&one, &large, &late] {
            assert_eq!((copy.duration_s, copy.heal_s, copy.tick_ms), (happy.duration_s, happy.heal_s, happy.tick_ms));
            assert_eq!(copy.engine.workers, happy.engine.workers);
        }
    }
}
