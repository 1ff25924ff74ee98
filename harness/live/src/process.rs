//! The engine's child processes and the services it needs: each started from its
//! profile's command line in a process group of its own, signalled (SIGKILL, SIGSTOP,
//! SIGCONT) as the fault plan says, and always ended. Dropping a [`Fleet`] kills every
//! process group and reaps it, then stops the services — a daemonised one through its
//! stop command and its pid file — on every way out of a run (an error, a panic, Ctrl-C).

use crate::LiveError;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use smsim_core::adapter::http::HyperClient;
use smsim_core::adapter::{HttpClient, HttpRequest};
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// How a program shows it is ready, already filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// `GET url` answers below 500.
    Url(String),
    /// A TCP connection to `host:port` is accepted.
    Tcp(String),
    /// The command exits 0.
    Command(Vec<String>),
    /// Started and still running a moment later (a worker with nothing to ask).
    Started,
}

/// What to run, already filled in.
#[derive(Clone, Debug)]
pub struct Launch {
    /// The name in the profile (`engine` for a `[process]` profile, `api`, `redis`, …).
    pub name: String,
    /// Program and arguments.
    pub command: Vec<String>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
    /// Where its stdout and stderr go (appended across restarts).
    pub log: PathBuf,
    /// How it shows it is ready.
    pub ready: Readiness,
    /// How long to wait for it, per start.
    pub ready_timeout_ms: u64,
    /// How long a SIGTERM (or the stop command) may take before SIGKILL.
    pub stop_grace_ms: u64,
    /// A daemonised program: the file its pid is in (first line). Its command may exit at
    /// once; the program is the pid in the file.
    pub pid_file: Option<PathBuf>,
    /// Run to stop it, before signals (a daemon's own stop).
    pub stop_command: Option<Vec<String>>,
}

/// One program (at most one instance at a time), ended when dropped.
#[derive(Debug)]
pub struct Program {
    launch: Launch,
    child: Option<Child>,
    stopped: bool,
    /// How many times it was started.
    pub starts: u32,
}

impl Program {
    /// Nothing running yet.
    pub fn new(launch: Launch) -> Program {
        Program { launch, child: None, stopped: false, starts: 0 }
    }

    /// Its name in the profile.
    pub fn name(&self) -> &str {
        &self.launch.name
    }

    fn error(&self, message: String) -> LiveError {
        LiveError::Process { command: format!("{} ({})", self.launch.name, self.launch.command.join(" ")), message }
    }

    /// Starts it (in its own process group, so signals reach its children too).
    pub fn start(&mut self) -> Result<u32, LiveError> {
        // A daemon's command may have exited long since: only a running one is refused.
        if let Some(mut old) = self.child.take() {
            assert!(!matches!(old.try_wait(), Ok(None)), "a program is started once at a time");
        }
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

    /// The pid its pid file names, if it names a running process.
    fn daemon_pid(&self) -> Option<Pid> {
        let text = std::fs::read_to_string(self.launch.pid_file.as_ref()?).ok()?;
        let pid: i32 = text.lines().next()?.trim().parse().ok()?;
        (pid > 1 && kill(Pid::from_raw(pid), None).is_ok() && !zombie(pid)).then(|| Pid::from_raw(pid))
    }

    /// Whether it is running (or stopped), reaping a child that exited. A daemonised
    /// program is running while its pid file names a live process.
    pub fn alive(&mut self) -> bool {
        let child_alive = match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(Ok(Some(_))) if self.launch.pid_file.is_some() => false,
            Some(_) => {
                self.child = None;
                false
            }
            None => false,
        };
        child_alive || self.daemon_pid().is_some()
    }

    /// The exit status of a child that ended by itself, if it did (a daemonised program's
    /// command ends by design: only a failure of it is reported).
    pub fn exit_status(&mut self) -> Option<String> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        (self.launch.pid_file.is_none() || !status.success()).then(|| status.to_string())
    }

    /// Its process group leader, while its child runs.
    pub fn group(&self) -> Option<i32> {
        self.child.as_ref().map(|child| child.id() as i32)
    }

    fn signal(&self, signal: Signal) -> bool {
        let mut sent = false;
        if let Some(child) = &self.child {
            sent |= killpg(Pid::from_raw(child.id() as i32), signal).is_ok();
        }
        if let Some(pid) = self.daemon_pid() {
            sent |= kill(pid, signal).is_ok();
        }
        sent
    }

    /// SIGKILLs its process group (and a daemon's pid) and reaps the child. Whether one
    /// was running.
    pub fn kill(&mut self) -> bool {
        let killed = self.signal(Signal::SIGKILL);
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.stopped = false;
        killed
    }

    /// SIGSTOPs it.
    pub fn pause(&mut self) -> bool {
        self.stopped = self.signal(Signal::SIGSTOP);
        self.stopped
    }

    /// SIGCONTs it.
    pub fn resume(&mut self) -> bool {
        self.stopped = false;
        self.signal(Signal::SIGCONT)
    }

    /// Whether it is stopped by [`Program::pause`].
    pub fn is_paused(&self) -> bool {
        self.stopped
    }

    /// SIGCONTs it if paused, runs its stop command (bounded by its grace), then SIGTERMs
    /// it: the polite first half of a stop.
    pub fn terminate(&mut self) -> bool {
        if self.stopped {
            self.resume();
        }
        if let Some(stop) = &self.launch.stop_command {
            run_bounded(stop, &self.launch.env, &self.launch.log, Duration::from_millis(self.launch.stop_grace_ms));
        }
        self.signal(Signal::SIGTERM)
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.launch.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        // A stop command also cleans up (a killed daemon's data): run it if ever started.
        if self.launch.stop_command.is_some() && self.starts > 0 {
            self.terminate();
        }
        self.kill();
    }
}

/// Whether `pid` has exited and waits for a parent to reap it: a daemon's parent is not
/// this process, and signals still reach a zombie.
fn zombie(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rfind(')').is_some_and(|end| stat[end + 1..].trim_start().starts_with('Z'))
}

/// Runs `command` to its end, for at most `limit` (then SIGKILLs its group); whether it
/// exited 0.
fn run_bounded(command: &[String], env: &BTreeMap<String, String>, log: &std::path::Path, limit: Duration) -> bool {
    let Some((program, arguments)) = command.split_first() else { return false };
    let output = File::options().create(true).append(true).open(log).ok();
    let (out, err) = match output.and_then(|file| Some((file.try_clone().ok()?, file))) {
        Some((out, err)) => (Stdio::from(out), Stdio::from(err)),
        None => (Stdio::null(), Stdio::null()),
    };
    let spawned = Command::new(program)
        .args(arguments)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn();
    let Ok(mut child) = spawned else { return false };
    let polls = limit.as_millis().div_ceil(20).max(1);
    for _ in 0..polls {
        if let Ok(Some(status)) = child.try_wait() {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    let _ = child.wait();
    false
}

/// Every program of a run: the services, started first and stopped last, and the engine's
/// processes, each in name order.
#[derive(Debug)]
pub struct Fleet {
    /// The services the engine needs.
    pub services: Vec<Program>,
    /// The engine's processes.
    pub processes: Vec<Program>,
}

impl Fleet {
    /// The program called `name`, process or service.
    pub fn get(&mut self, name: &str) -> Option<&mut Program> {
        self.processes.iter_mut().chain(&mut self.services).find(|program| program.name() == name)
    }

    /// The names of the processes.
    pub fn process_names(&self) -> Vec<String> {
        self.processes.iter().map(|program| program.name().to_owned()).collect()
    }

    /// The names of the services.
    pub fn service_names(&self) -> Vec<String> {
        self.services.iter().map(|program| program.name().to_owned()).collect()
    }

    /// The process whose group holds the socket the provider saw as `peer` (Linux: read
    /// from /proc), if it is one of ours.
    pub fn sender_of(&self, peer: std::net::SocketAddr) -> Option<String> {
        let groups: Vec<i32> = self.processes.iter().filter_map(Program::group).collect();
        let group = crate::sockets::owner_group(peer, &groups)?;
        self.processes.iter().find(|program| program.group() == Some(group)).map(|program| program.name().to_owned())
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // The engine first, so it does not see its services go.
        self.processes.clear();
        self.services.clear();
    }
}

/// Stops every program, processes first: SIGTERM (a service's stop command first), up to
/// its grace for it to exit, then SIGKILL. The lock is not held across waits.
pub async fn stop(fleet: &Mutex<Fleet>) {
    let lock = || fleet.lock().expect("fleet lock poisoned");
    let names: Vec<(String, u64)> = {
        let fleet = lock();
        fleet.processes.iter().chain(&fleet.services).map(|p| (p.name().to_owned(), p.launch.stop_grace_ms)).collect()
    };
    for (name, grace_ms) in names {
        let terminated = lock().get(&name).is_some_and(Program::terminate);
        if terminated {
            let deadline = tokio::time::Instant::now() + Duration::from_millis(grace_ms);
            while lock().get(&name).is_some_and(Program::alive) && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if let Some(program) = lock().get(&name) {
            program.kill();
        }
    }
}

/// Waits until the program `name` is ready as its launch says, for at most its ready
/// timeout; fails early when it exits. The fleet is behind a lock so the caller can share
/// it with the fault plan.
pub async fn wait_ready(fleet: &Mutex<Fleet>, name: &str) -> Result<(), LiveError> {
    let launch = {
        let mut fleet = fleet.lock().expect("fleet lock poisoned");
        fleet.get(name).expect("a program of the fleet").launch.clone()
    };
    let client = HyperClient::tcp(Duration::from_millis(500));
    let deadline = tokio::time::Instant::now() + Duration::from_millis(launch.ready_timeout_ms);
    loop {
        let checked = check(&launch, &client).await;
        let (exited, tail) = {
            let mut fleet = fleet.lock().expect("fleet lock poisoned");
            let program = fleet.get(name).expect("a program of the fleet");
            let exited = program.exit_status().or_else(|| {
                // A daemon's command ends by design; its daemon may still fail to appear.
                (checked.is_ok() && launch.pid_file.is_some() && !program.alive())
                    .then(|| "its pid file names no running process".to_owned())
            });
            (exited, program.log_tail(5))
        };
        let last = match checked {
            Ok(()) if exited.is_none() => return Ok(()),
            Ok(()) => "it answered".to_owned(),
            Err(last) => last,
        };
        let timed_out = tokio::time::Instant::now() >= deadline;
        if exited.is_some() || timed_out {
            let exit = exited.map(|status| format!("; it exited ({status})")).unwrap_or_default();
            let log = if tail.is_empty() { String::new() } else { format!("; its log ends:\n{tail}") };
            return Err(LiveError::NotReady {
                what: format!("{name}: {}", describe(&launch.ready)),
                timeout_ms: launch.ready_timeout_ms,
                detail: format!(" ({last}){exit}{log}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn describe(ready: &Readiness) -> String {
    match ready {
        Readiness::Url(url) => format!("{url} did not answer"),
        Readiness::Tcp(address) => format!("tcp {address} did not accept"),
        Readiness::Command(command) => format!("`{}` did not exit 0", command.join(" ")),
        Readiness::Started => "it did not keep running".to_owned(),
    }
}

/// One readiness check: `Ok` when ready, else what was seen.
async fn check(launch: &Launch, client: &impl HttpClient) -> Result<(), String> {
    match &launch.ready {
        Readiness::Url(url) => {
            let request = HttpRequest {
                method: http::Method::GET,
                url: url.clone(),
                headers: BTreeMap::new(),
                body: bytes::Bytes::new(),
            };
            match client.send(request).await {
                Ok(answer) if answer.status < 500 => Ok(()),
                Ok(answer) => Err(format!("last answer HTTP {}", answer.status)),
                Err(error) => Err(format!("last error: {error:?}")),
            }
        }
        Readiness::Tcp(address) => {
            let connect = tokio::net::TcpStream::connect(address.as_str());
            match tokio::time::timeout(Duration::from_millis(500), connect).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(error)) => Err(format!("last error: {error}")),
                Err(_) => Err("connect timed out".into()),
            }
        }
        Readiness::Command(command) => {
            let (command, env, log) = (command.clone(), launch.env.clone(), launch.log.clone());
            let ran = tokio::task::spawn_blocking(move || run_bounded(&command, &env, &log, Duration::from_secs(2)));
            match ran.await {
                Ok(true) => Ok(()),
                _ => Err("the command did not exit 0".into()),
            }
        }
        Readiness::Started => {
            // A program with nothing to ask is ready once it has kept running a moment.
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok(())
        }
    }
}
