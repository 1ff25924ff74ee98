//! What a bench run records about where and when it ran, and the CPU time of named
//! threads: the facts that make a run's figures comparable with another run's.
//!
//! Everything here reads Linux's `/proc` (and `git` for the commit); where a file is
//! missing, the fact is recorded as unknown rather than guessed. The parsers are pure
//! functions of the files' text, unit-tested on samples.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// The machine a run measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs available to the process.
    pub cores: usize,
    /// The CPU's model name (`/proc/cpuinfo`), if known.
    pub cpu_model: Option<String>,
}

impl Machine {
    /// This machine.
    pub fn here() -> Machine {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|text| cpu_model(&text));
        Machine { cores, cpu_model }
    }
}

/// The first `model name` of `/proc/cpuinfo`'s text.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_owned())
    })
}

/// The 1-, 5- and 15-minute load averages of `/proc/loadavg`, if it can be read.
pub fn load_average() -> Option<[f64; 3]> {
    parse_load_average(&std::fs::read_to_string("/proc/loadavg").ok()?)
}

fn parse_load_average(text: &str) -> Option<[f64; 3]> {
    let mut fields = text.split_whitespace().map(str::parse::<f64>);
    Some([fields.next()?.ok()?, fields.next()?.ok()?, fields.next()?.ok()?])
}

/// The commit the working directory is at (`git rev-parse --short HEAD`), if git knows.
pub fn commit() -> Option<String> {
    let output = std::process::Command::new("git").args(["rev-parse", "--short", "HEAD"]).output().ok()?;
    let commit = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !commit.is_empty()).then_some(commit)
}

/// Now, in UTC, as `YYYY-MM-DDTHH:MM:SSZ`.
// When the run happened is recorded beside its figures; no outcome depends on it.
#[allow(clippy::disallowed_methods)]
pub fn now_utc() -> String {
    let seconds = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_secs());
    utc(seconds)
}

/// `seconds` since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc(seconds: u64) -> String {
    let time = i64::try_from(seconds).ok().and_then(|seconds| chrono::DateTime::from_timestamp(seconds, 0));
    time.map_or_else(|| "unknown".to_owned(), |time| time.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// The file name a run is kept under in `benches/results/runs/`: its date and commit,
/// `2026-12-07-4627bd1.json`, so that names sort by date.
pub fn run_file_name(date: &str, commit: Option<&str>) -> String {
    let day = date.get(..10).unwrap_or(date);
    format!("{day}-{}.json", commit.unwrap_or("unknown"))
}

/// The CPU time, in seconds, that this process's live threads whose name starts with
/// `prefix` have used so far (`/proc/self/task/*/`; 0 where `/proc` cannot be read).
pub fn threads_cpu_s(prefix: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    tasks.filter_map(Result::ok).filter_map(|task| thread_cpu_s(&task.path(), prefix)).sum()
}

/// The CPU time, in seconds, the calling thread has used so far (0 where `/proc` cannot
/// be read).
pub fn this_thread_cpu_s() -> f64 {
    task_cpu_s(Path::new("/proc/thread-self")).unwrap_or(0.0)
}

fn thread_cpu_s(task: &Path, prefix: &str) -> Option<f64> {
    let name = std::fs::read_to_string(task.join("comm")).ok()?;
    if !name.trim_end().starts_with(prefix) {
        return None;
    }
    task_cpu_s(task)
}

fn task_cpu_s(task: &Path) -> Option<f64> {
    // `schedstat` counts nanoseconds; `stat` only clock ticks (10 ms), when the kernel
    // keeps no scheduler statistics.
    match std::fs::read_to_string(task.join("schedstat")).ok().and_then(|text| schedstat_cpu_s(&text)) {
        Some(seconds) => Some(seconds),
        None => stat_cpu_s(&std::fs::read_to_string(task.join("stat")).ok()?),
    }
}

/// The first field of `schedstat`: nanoseconds on a CPU.
fn schedstat_cpu_s(text: &str) -> Option<f64> {
    Some(text.split_whitespace().next()?.parse::<u64>().ok()? as f64 / 1e9)
}

/// `utime` + `stime` of a `stat` line (fields 14 and 15, after the parenthesised name,
/// which may hold spaces), at Linux's 100 ticks per second.
fn stat_cpu_s(text: &str) -> Option<f64> {
    let after_name = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name, field 3 (state) is index 0, so fields 14 and 15 are 11 and 12.
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_model_and_the_load_are_read_from_procs_text() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(cpu_model("processor\t: 0\n"), None);
        assert_eq!(parse_load_average("0.20 1.16 1.54 3/119 16054\n"), Some([0.20, 1.16, 1.54]));
        assert_eq!(parse_load_average("garbage"), None);
    }

    #[test]
    fn dates_are_utc_and_name_the_run_file() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_796_640_194), "2026-12-07T10:43:14Z");
        assert_eq!(run_file_name("2026-12-07T10:43:14Z", Some("4627bd1")), "2026-12-07-4627bd1.json");
        assert_eq!(run_file_name("2026-12-07T10:43:14Z", None), "2026-12-07-unknown.json");
    }

    #[test]
    fn a_threads_cpu_time_is_read_from_schedstat_or_stat() {
        assert_eq!(schedstat_cpu_s("1500000000 20000 31\n"), Some(1.5));
        // A name with a space and a parenthesis; utime 250 and stime 50 ticks.
        let stat = "4242 (smsim (engine) 1) S 1 4242 4242 0 -1 4194368 100 0 0 0 250 50 0 0 20 0 1 0 1234";
        assert_eq!(stat_cpu_s(stat), Some(3.0));
        assert_eq!(stat_cpu_s("4242 (x) S 1"), None);
    }

    /// This thread, named, is found and has used some CPU; a prefix no thread has reads 0.
    #[test]
    fn this_process_threads_are_found_by_name() {
        let spent = std::thread::Builder::new()
            .name("smsim-cpu-probe".into())
            .spawn(|| {
                let mut sum = 0u64;
                for n in 0..20_000_000u64 {
                    sum = std::hint::black_box(sum.wrapping_add(n * n));
                }
                threads_cpu_s("smsim-cpu-probe")
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(spent > 0.0, "{spent}");
        assert_eq!(threads_cpu_s("no-thread-is-called-this"), 0.0);
    }
}
