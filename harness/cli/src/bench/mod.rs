//! `smsim bench`: the performance report, every figure beside its target, in one run.
//!
//! Absolute speeds move with the machine and with whatever else it runs, so every speed
//! target here is a ratio of two things measured in the same run:
//!
//! 1. [`simulation`] speed: the happy path simulated against the same scenario run in
//!    real time (serve mode on SQLite, the simulated provider on loopback), and swarm
//!    chaos; with `--baseline`, seeds per second against an earlier build's.
//! 2. [`cost`] per message and per idle step (the latter for reading: it is turmoil's own
//!    step cost): copies of the happy path with 1 and 1 000
//!    contacts and with a long idle stretch, each the same files run through this build
//!    and, with `--baseline`, an earlier one, interleaved.
//! 3. Sweep scaling: happy-path seeds per second with one and with two jobs, against the
//!    machine's own two-thread scaling on a CPU-bound reference measured in the same run.
//! 4. [`real_mode`] throughput: messages accepted and delivery reports ingested per
//!    second in serve mode on SQLite, against raw SQLite update rates measured in the
//!    same run; and the engine's CPU time per report, one per webhook against arrays.
//! 5. [`memory`]: the peak resident set and wall time of simulating a 1 000 000-contact
//!    campaign, in a child process so that the peak is that simulation's own.
//!
//! These are measurements, not tests: nothing here decides an outcome, so reading the
//! wall clock is the point (each such function says so in its `allow`). A missed target
//! makes `smsim bench` exit 1; a target that needs `--baseline` and has none is printed as
//! not checked, never as met.
//!
//! `--json FILE` writes the run as one JSON object ([`BenchReport`]): the commit, the date,
//! the [`machine`] and its load average at the start, and every figure with its value,
//! unit, target and verdict. Runs worth keeping go to `benches/results/runs/` under
//! [`machine::run_file_name`]; the book's table of them is generated from those files.

mod baseline;
mod cost;
pub mod machine;
mod memory;
mod real_mode;
mod simulation;

pub use baseline::Binary;
pub use memory::{peak_rss_child, PeakRss};
pub use real_mode::REPORT_SLOTS;

use crate::outln;
use serde::{Deserialize, Serialize};
use smsim_sim::run::{run, RunOptions};
use smsim_sim::scenario::Scenario;
use std::path::PathBuf;

/// Options of `smsim bench`.
#[derive(clap::Args, Clone, Debug)]
pub struct BenchArgs {
    /// Also write the run as JSON (commit, date, machine, load, every figure) to this
    /// file; given a directory, to DATE-COMMIT.json in it (as benches/results/runs/ keeps
    /// runs).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The directory holding happy-path.toml, swarm-chaos.toml and large/.
    #[arg(long, default_value = "scenarios")]
    pub scenarios: PathBuf,
    /// An `smsim` binary built from an earlier commit: the simulation figures are measured
    /// with it too, in the same run, and the relative targets are checked against it.
    #[arg(long, value_name = "SMSIM_BINARY")]
    pub baseline: Option<PathBuf>,
    /// Happy-path seeds per speed measurement.
    #[arg(long, default_value_t = 400)]
    pub happy_seeds: u64,
    /// Swarm-chaos seeds.
    #[arg(long, default_value_t = 40)]
    pub swarm_seeds: u64,
    /// Messages in the real-mode throughput run.
    #[arg(long, default_value_t = 20_000)]
    pub real_messages: u32,
    /// The scenario whose peak memory is measured (relative to --scenarios).
    #[arg(long, default_value = "large/million-contacts.toml")]
    pub memory_scenario: PathBuf,
    /// Skip the memory section (its 1 000 000-contact simulation takes 15–25 s, and the
    /// baseline's about a minute).
    #[arg(long)]
    pub skip_memory: bool,
    /// Run only these sections (repeat the flag for several); all of them by default.
    #[arg(long, value_enum, value_name = "SECTION")]
    pub only: Vec<Section>,
    /// A sentence kept with the run in its JSON: what else the machine was doing, what
    /// was unusual.
    #[arg(long)]
    pub note: Option<String>,
    /// Exit 0 even when a target is missed (by default a missed target exits 1, so CI
    /// and scripts can rely on the exit code).
    #[arg(long)]
    pub no_fail: bool,
}

/// The report's sections, as `--only` names them.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// 1. Simulation speed.
    Simulation,
    /// 2. Cost per message and per idle step.
    Cost,
    /// 3. Sweep scaling.
    Scaling,
    /// 4. Engine throughput in real mode.
    RealMode,
    /// 5. Memory and scale.
    Memory,
}

impl BenchArgs {
    /// Whether this run measures `section`.
    fn runs(&self, section: Section) -> bool {
        let chosen = self.only.is_empty() || self.only.contains(&section);
        chosen && !(section == Section::Memory && self.skip_memory)
    }
}

/// Whether a figure's target was checked, and how it came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// There is no target: the figure is for reading.
    NoTarget,
    /// The target is met.
    Met,
    /// The target is missed.
    Missed,
    /// The target needs a figure this run did not measure (no `--baseline`).
    NotChecked,
}

/// A figure and its target; `higher_is_better` says which side of the target passes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Figure {
    /// What is measured.
    pub name: String,
    /// The measured value (`None` when it needs a baseline that was not given).
    pub value: Option<f64>,
    /// Its unit.
    pub unit: String,
    /// The target, if there is one.
    pub target: Option<f64>,
    /// Whether the value must be at least (true) or at most (false) the target.
    pub higher_is_better: bool,
    /// How the target came out.
    pub verdict: Verdict,
    /// How it was measured.
    pub detail: String,
}

impl Figure {
    fn new(name: &str, value: f64, unit: &str, target: Option<f64>, higher_is_better: bool, detail: String) -> Figure {
        Figure::maybe(name, Some(value), unit, target, higher_is_better, detail)
    }

    /// A figure that may not have been measured: without a value its target is not
    /// checked, which the report says.
    fn maybe(
        name: &str,
        value: Option<f64>,
        unit: &str,
        target: Option<f64>,
        higher_is_better: bool,
        detail: String,
    ) -> Figure {
        let verdict = match (value, target) {
            (_, None) => Verdict::NoTarget,
            (None, Some(_)) => Verdict::NotChecked,
            (Some(value), Some(target))
                if (higher_is_better && value >= target) || (!higher_is_better && value <= target) =>
            {
                Verdict::Met
            }
            (Some(_), Some(_)) => Verdict::Missed,
        };
        Figure { name: name.to_owned(), value, unit: unit.to_owned(), target, higher_is_better, verdict, detail }
    }

    /// A figure without a target.
    pub(crate) fn new_public(name: &str, value: f64, unit: &str, detail: String) -> Figure {
        Figure::new(name, value, unit, None, true, detail)
    }
}

/// One section of the report: its title and its figures, in order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SectionFigures {
    /// Its title (`3. Sweep scaling`).
    pub title: String,
    /// Its figures.
    pub figures: Vec<Figure>,
}

/// The whole run, as `--json` writes it: where and when it ran, and its sections of
/// figures, in order.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct BenchReport {
    /// The commit measured (`git rev-parse --short HEAD`), if git knows it.
    pub commit: Option<String>,
    /// When the run started, in UTC (`2026-12-07T10:43:14Z`).
    pub date: String,
    /// The machine.
    pub machine: machine::Machine,
    /// The 1-, 5- and 15-minute load averages when the run started, if known: what else
    /// the machine was doing.
    pub load_average_at_start: Option<[f64; 3]>,
    /// The baseline binary the relative targets were checked against, if any.
    pub baseline: Option<String>,
    /// What the person who ran it noted (`--note`).
    #[serde(default)]
    pub note: Option<String>,
    /// The sections, in order.
    pub sections: Vec<SectionFigures>,
}

impl BenchReport {
    fn with_verdict(&self, verdict: Verdict) -> Vec<&str> {
        self.sections
            .iter()
            .flat_map(|section| &section.figures)
            .filter(|f| f.verdict == verdict)
            .map(|f| f.name.as_str())
            .collect()
    }

    /// The names of the figures whose target was missed.
    pub fn missed(&self) -> Vec<&str> {
        self.with_verdict(Verdict::Missed)
    }

    /// The names of the figures whose target needs `--baseline` and had none.
    pub fn not_checked(&self) -> Vec<&str> {
        self.with_verdict(Verdict::NotChecked)
    }

    fn push(&mut self, title: &str, figures: Vec<Figure>) {
        print_section(title, &figures);
        self.sections.push(SectionFigures { title: title.to_owned(), figures });
    }
}

/// Runs every section and prints each as it completes; [`BenchReport::missed`] says
/// which targets were missed.
pub fn bench(args: &BenchArgs) -> anyhow::Result<BenchReport> {
    // The load is read first, before this run adds to it.
    let load_average_at_start = machine::load_average();
    let machine = machine::Machine::here();
    let cpus = machine.cores;
    let current = Binary::current()?;
    let baseline = args.baseline.as_deref().map(Binary::at).transpose()?;
    let mut report = BenchReport {
        commit: machine::commit(),
        date: machine::now_utc(),
        machine,
        load_average_at_start,
        baseline: baseline.as_ref().map(|b| b.path.display().to_string()),
        note: args.note.clone(),
        sections: Vec::new(),
    };
    let load = load_average_at_start.map_or_else(|| "unknown".to_owned(), |load| format!("{:.2}", load[0]));
    outln!("smsim bench ({cpus} CPUs, load average {load} at the start; release build expected)");
    match &baseline {
        Some(baseline) => outln!("baseline: {}\n", baseline.path.display()),
        None => outln!("no --baseline: the targets relative to an earlier build are not checked\n"),
    }
    let happy_path = args.scenarios.join("happy-path.toml");
    let happy = Scenario::load(&happy_path)?;
    let swarm_path = args.scenarios.join("swarm-chaos.toml");
    let swarm = Scenario::load(&swarm_path)?;
    // One seed first: process-wide one-time costs (the phone-number metadata) are not
    // per-seed costs.
    run(&happy, 1, &RunOptions::default())?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;

    let happy_one = if args.runs(Section::Simulation) || args.runs(Section::Scaling) {
        Some(simulation::sweep_speed(&happy, &happy_path, args.happy_seeds, 1)?)
    } else {
        None
    };
    if let (true, Some(happy_one)) = (args.runs(Section::Simulation), happy_one) {
        let swarm_one = simulation::sweep_speed(&swarm, &swarm_path, args.swarm_seeds, 1)?;
        let speed = simulation::Speeds { happy_path: &happy_path, swarm_path: &swarm_path, happy_one, swarm_one };
        report.push("1. Simulation speed", simulation::section(&happy, &speed, &current, baseline.as_ref(), &runtime)?);
    }
    if args.runs(Section::Cost) {
        report.push("2. Cost per message and per idle step", cost::section(&happy_path, &current, baseline.as_ref())?);
    }
    if let (true, Some(happy_one)) = (args.runs(Section::Scaling), happy_one) {
        let happy_two = simulation::sweep_speed(&happy, &happy_path, args.happy_seeds, 2)?;
        let reference = simulation::hashing_scaling();
        report.push("3. Sweep scaling", simulation::scaling(happy_one, happy_two, reference, cpus));
    }
    if args.runs(Section::RealMode) {
        report.push(
            "4. Engine throughput in real mode (SQLite, loopback)",
            real_mode::section(args.real_messages, &runtime)?,
        );
    }
    if args.runs(Section::Memory) {
        let path = args.scenarios.join(&args.memory_scenario);
        report.push("5. Memory and scale", memory::section(&path, &current, baseline.as_ref())?);
    }
    let (missed, not_checked) = (report.missed(), report.not_checked());
    outln!(
        "{} of the targets missed{}",
        missed.len(),
        if missed.is_empty() { String::new() } else { format!(": {}", missed.join("; ")) }
    );
    if !not_checked.is_empty() {
        outln!("{} not checked without --baseline: {}", not_checked.len(), not_checked.join("; "));
    }
    if let Some(path) = &args.json {
        let path = if path.is_dir() {
            path.join(machine::run_file_name(&report.date, report.commit.as_deref()))
        } else {
            path.clone()
        };
        std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")?;
        outln!("the run written to {}", path.display());
    }
    Ok(report)
}

fn print_section(title: &str, figures: &[Figure]) {
    outln!("{title}");
    for figure in figures {
        let target = match figure.target {
            Some(target) => format!(
                "target {} {}  {}",
                if figure.higher_is_better { "≥" } else { "≤" },
                number(target),
                match figure.verdict {
                    Verdict::Met => "met",
                    Verdict::Missed => "MISSED",
                    Verdict::NotChecked | Verdict::NoTarget => "not checked (no --baseline)",
                }
            ),
            None => String::new(),
        };
        let value = figure.value.map_or_else(|| "—".to_owned(), number);
        outln!("  {:<58} {:>12} {:<9} {target}", figure.name, value, figure.unit);
        outln!("      {}", figure.detail);
    }
    outln!();
}

/// `value` with as many decimals as its size deserves.
pub(crate) fn number(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> anyhow::Result<Scratch> {
        let path = std::env::temp_dir().join(format!("smsim-bench-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `smsim bench` exits 1 when `missed` is not empty: a figure below (or, for memory,
    /// above) its target is listed, one without a target never is, and one whose value
    /// needed a baseline that was not given is listed as not checked, not as met.
    #[test]
    fn a_missed_target_is_listed_and_an_unmeasured_one_is_not_checked() {
        let report = BenchReport {
            sections: vec![SectionFigures {
                title: "speed".into(),
                figures: vec![
                    Figure::new("fast enough", 120.0, "seeds/s", Some(100.0), true, String::new()),
                    Figure::new("too slow", 80.0, "seeds/s", Some(100.0), true, String::new()),
                    Figure::new("too big", 2.5, "GiB", Some(2.0), false, String::new()),
                    Figure::new("just a figure", 0.0, "s", None, true, String::new()),
                    Figure::maybe("against the baseline", None, "×", Some(0.5), false, String::new()),
                ],
            }],
            ..BenchReport::default()
        };
        assert_eq!(report.missed(), ["too slow", "too big"]);
        assert_eq!(report.not_checked(), ["against the baseline"]);
    }

    /// What `--json` writes reads back as the same run, figures and all.
    #[test]
    fn a_run_written_as_json_reads_back() {
        let report = BenchReport {
            commit: Some("4627bd1".into()),
            date: "2026-12-07T10:43:14Z".into(),
            machine: machine::Machine { cores: 2, cpu_model: Some("AMD EPYC 7B13".into()) },
            load_average_at_start: Some([0.2, 1.16, 1.54]),
            baseline: None,
            note: None,
            sections: vec![SectionFigures {
                title: "3. Sweep scaling".into(),
                figures: vec![Figure::new("sweep ÷ reference", 0.8, "×", Some(0.85), true, "detail".into())],
            }],
        };
        let json = serde_json::to_string_pretty(&report).unwrap();
        for field in ["\"commit\": \"4627bd1\"", "\"cpu_model\": \"AMD EPYC 7B13\"", "\"verdict\": \"missed\""] {
            assert!(json.contains(field), "{field} in {json}");
        }
        let read: BenchReport = serde_json::from_str(&json).unwrap();
        assert_eq!(read.machine, report.machine);
        assert_eq!(read.sections[0].figures[0].verdict, Verdict::Missed);
        assert_eq!(read.missed(), ["sweep ÷ reference"]);
    }
}
