//! The engine's child process: started from the profile's command line in a process
//! group of its own, signalled (SIGKILL, SIGSTOP, SIGCONT) as the fault plan says, and
//! always ended: dropping an [`EngineProcess`] kills the whole group and reaps it, on every
//! way out of a run (an error, a panic, Ctrl-C).

use crate::LiveError;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use smsim_core::adapter::http::HyperClient;
use smsim_core::adapter::{HttpClient, HttpRequest};
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// What to run, already filled in.
#[derive(Clone, Debug)]
pub struct Launch {
    /// Program and arguments.
    pub command: Vec<String>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// Where the engine's stdout and stderr go (appended across restarts).
    pub log: PathBuf,
}

/// The engine's process (at most one at a time), ended when dropped.
#[derive(Debug)]
pub struct EngineProcess {
    launch: Launch,
    child: Option<Child>,
    stopped: bool,
    /// How many times it was started.
    pub starts: u32,
}

impl EngineProcess {
    /// Nothing running yet.
    pub fn new(launch: Launch) -> EngineProcess {
        EngineProcess { launch, child: None, stopped: false, starts: 0 }
    }

    fn error(&self, message: String) -> LiveError {
        LiveError::Process { command: self.launch.command.join(" "), message }
    }

    /// Starts the process (in its own process group, so signals reach its children too).
    pub fn start(&mut self) -> Result<u32, LiveError> {
        assert!(self.child.is_none(), "the engine is started once at a time");
        let log = File::options().create(true).append(true).open(&self.launch.log);
        let log = log.map_err(|e| self.error(format!("cannot open {}: {e}", self.launch.log.display())))?;
        let log_too = log.try_clone().map_err(|e| self.error(e.to_string()))?;
        let (program, arguments) = self.launch.command.split_first().expect("a profile's command is not empty");
        let child = Command::new(program)
            .args(arguments)
            .envs(&self.launch.env)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_too)
            .process_group(0)
            .spawn()
            .map_err(|e| self.error(format!("cannot start: {e}")))?;
        let pid = child.id();
        self.child = Some(child);
        self.stopped = false;
        self.starts += 1;
        Ok(pid)
    }

    /// Whether a process is running (or stopped), reaping one that exited.
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(_) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    /// The exit status of a process that ended by itself, if it did.
    pub fn exit_status(&mut self) -> Option<String> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        Some(status.to_string())
    }

    fn signal(&self, signal: Signal) -> bool {
        let Some(child) = &self.child else { return false };
        killpg(Pid::from_raw(child.id() as i32), signal).is_ok()
    }

    /// SIGKILLs the process group and reaps the process. Whether one was running.
    pub fn kill(&mut self) -> bool {
        let killed = self.signal(Signal::SIGKILL);
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.stopped = false;
        killed
    }

    /// SIGSTOPs the process group.
    pub fn pause(&mut self) -> bool {
        self.stopped = self.signal(Signal::SIGSTOP);
        self.stopped
    }

    /// SIGCONTs the process group.
    pub fn resume(&mut self) -> bool {
        self.stopped = false;
        self.signal(Signal::SIGCONT)
    }

    /// Whether it is stopped by [`EngineProcess::pause`].
    pub fn is_paused(&self) -> bool {
        self.stopped
    }

    /// SIGCONTs it if paused, then SIGTERMs it: the polite first half of a stop.
    pub fn terminate(&mut self) -> bool {
        if self.stopped {
            self.resume();
        }
        self.signal(Signal::SIGTERM)
    }

    /// The last `lines` lines of the engine's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.launch.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for EngineProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Stops the engine: SIGTERM, up to `grace` for it to exit, then SIGKILL. The lock is
/// not held across waits.
pub async fn stop(process: &std::sync::Mutex<EngineProcess>, grace: Duration) {
    let lock = || process.lock().expect("engine lock poisoned");
    if lock().terminate() {
        let deadline = tokio::time::Instant::now() + grace;
        while lock().alive() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    lock().kill();
}

/// Waits until `url` answers HTTP below 500 (a server that answers at all, even 401, is
/// up), for at most `timeout_ms`; fails early when the process exits. The process is behind a lock so the caller can share it with the fault plan.
pub async fn wait_ready(
    process: &std::sync::Mutex<EngineProcess>,
    url: &str,
    timeout_ms: u64,
) -> Result<(), LiveError> {
    let client = HyperClient::tcp(Duration::from_millis(500));
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        let request = HttpRequest {
            method: http::Method::GET,
            url: url.to_owned(),
            headers: BTreeMap::new(),
            body: bytes::Bytes::new(),
        };
        let last = match client.send(request).await {
            Ok(answer) if answer.status < 500 => return Ok(()),
            Ok(answer) => format!("last answer HTTP {}", answer.status),
            Err(error) => format!("last error: {error:?}"),
        };
        let exited = process.lock().expect("engine lock poisoned").exit_status();
        let timed_out = tokio::time::Instant::now() >= deadline;
        if exited.is_some() || timed_out {
            let process = process.lock().expect("engine lock poisoned");
            let exit = exited.map(|status| format!("; the process exited ({status})")).unwrap_or_default();
            let tail = process.log_tail(5);
            let log = if tail.is_empty() { String::new() } else { format!("; its log ends:\n{tail}") };
            return Err(LiveError::NotReady {
                url: url.to_owned(),
                timeout_ms,
                detail: format!(" ({last}){exit}{log}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
