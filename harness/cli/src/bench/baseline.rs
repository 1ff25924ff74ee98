//! An `smsim` binary measured from the outside: this build (the running executable) and,
//! with `--baseline`, one built from an earlier commit. Both run the same files through
//! their public commands (`sweep --json`, the hidden `bench-peak-rss`), interleaved, so
//! a comparison is made in one run on one machine under the same load.

use super::memory::PeakRss;
use super::Scratch;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// An `smsim` executable.
#[derive(Clone, Debug)]
pub struct Binary {
    /// Where it is.
    pub path: PathBuf,
}

impl Binary {
    /// The running executable: this build.
    pub fn current() -> anyhow::Result<Binary> {
        Ok(Binary { path: std::env::current_exe().context("finding this executable")? })
    }

    /// An earlier build, checked to be an `smsim` that runs.
    pub fn at(path: &Path) -> anyhow::Result<Binary> {
        let output = Command::new(path)
            .arg("--version")
            .stderr(Stdio::null())
            .output()
            .with_context(|| format!("--baseline {}: cannot run it", path.display()))?;
        let version = String::from_utf8_lossy(&output.stdout);
        anyhow::ensure!(
            output.status.success() && version.starts_with("smsim "),
            "--baseline {}: not an smsim binary (its --version printed {:?})",
            path.display(),
            version.trim()
        );
        Ok(Binary { path: path.to_owned() })
    }

    /// Wall seconds of `smsim sweep FILE --seeds N --jobs J`, as the sweep itself measured
    /// them (process start-up left out). Fails unless every seed ran and passed: a speed
    /// measured on a failing run means nothing.
    pub fn sweep_wall_s(&self, scenario: &Path, seeds: u64, jobs: usize) -> anyhow::Result<f64> {
        let scratch = Scratch::new("sweep-json")?;
        let json = scratch.0.join("sweep.json");
        self.run(&format!("sweep {}", scenario.display()), |command| {
            command
                .arg("sweep")
                .arg(scenario)
                .args(["--seeds", &seeds.to_string(), "--jobs", &jobs.to_string(), "--json"])
                .arg(&json)
        })?;
        let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json)?)
            .with_context(|| format!("reading {}'s sweep report", self.path.display()))?;
        let entry = &report["scenarios"][0];
        anyhow::ensure!(
            entry["runs"].as_u64() == Some(seeds) && entry["passed"].as_bool() == Some(true),
            "{} sweep {}: expected {seeds} passing seeds, the report says {entry}",
            self.path.display(),
            scenario.display()
        );
        entry["wall_s"].as_f64().ok_or_else(|| anyhow::anyhow!("no wall_s in {}'s sweep report", self.path.display()))
    }

    /// The peak resident set and wall time of simulating seed 1 of `scenario`, in a child.
    pub fn peak_rss(&self, scenario: &Path) -> anyhow::Result<PeakRss> {
        let stdout =
            self.run("bench-peak-rss", |command| command.arg("bench-peak-rss").arg(scenario).stderr(Stdio::inherit()))?;
        serde_json::from_slice(&stdout)
            .with_context(|| format!("reading {}'s bench-peak-rss answer", self.path.display()))
    }

    /// Runs this binary as `configure` sets it up, with nothing on its standard input, and
    /// returns what it printed; fails, quoting that, unless it exits 0.
    fn run(&self, what: &str, configure: impl FnOnce(&mut Command) -> &mut Command) -> anyhow::Result<Vec<u8>> {
        let mut command = Command::new(&self.path);
        let output = configure(&mut command)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", self.path.display()))?;
        anyhow::ensure!(
            output.status.success(),
            "{} {what} failed: {}",
            self.path.display(),
            String::from_utf8_lossy(&output.stdout)
        );
        Ok(output.stdout)
    }
}

/// The least of `rounds` measurements of `current` and, if given, of `baseline`, taken in
/// turn (current, baseline, current, …) so that a change in the machine's load lands on
/// both. The least is the run least disturbed by anything else.
pub(super) fn interleaved(
    current: &Binary,
    baseline: Option<&Binary>,
    rounds: usize,
    measure: impl Fn(&Binary) -> anyhow::Result<f64>,
) -> anyhow::Result<(f64, Option<f64>)> {
    let (mut ours, mut theirs) = (f64::INFINITY, baseline.map(|_| f64::INFINITY));
    for _ in 0..rounds.max(1) {
        ours = ours.min(measure(current)?);
        if let (Some(binary), Some(best)) = (baseline, theirs.as_mut()) {
            *best = best.min(measure(binary)?);
        }
    }
    Ok((ours, theirs))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `--baseline` that is not an smsim binary is refused at once, naming the path,
    /// instead of failing (or, worse, measuring something else) sections later.
    #[test]
    fn a_baseline_that_is_not_smsim_is_refused() {
        let error = Binary::at(Path::new("/bin/true")).unwrap_err().to_string();
        assert!(error.contains("/bin/true") && error.contains("not an smsim binary"), "{error}");
        let error = Binary::at(Path::new("/nonexistent/smsim")).unwrap_err().to_string();
        assert!(error.contains("cannot run it"), "{error}");
    }
}
