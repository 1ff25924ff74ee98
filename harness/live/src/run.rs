//! `smsim live`: starts the simulated provider on a loopback socket and the engine from
//! its profile, drives a scenario in real time while the fault plan kills, pauses and
//! restarts the engine, heals, waits (bounded) for every campaign to settle, and decides
//! the invariants. Every child process is ended on every way out: the engine's handle
//! kills it when dropped, and Ctrl-C drops the whole run.

use crate::check::{self, CampaignOutcome, LiveJudge, Reading, TenantOutcome};
use crate::driver::Driver;
use crate::plan::{draw, Fault, FaultPlan, NemesisOptions, Target, Targets};
use crate::process::{wait_ready, Fleet, Launch, Program, Readiness};
use crate::profile::{ProcessSection, Profile};
use crate::report::{FaultsFired, LiveReport, Sampling};
use crate::template::{fill, Values};
use crate::trace::Trace;
use crate::LiveError;
use serde_json::json;
use smsim_sim::provider::live::{live_behaviour, serve_live, TruthView};
use smsim_sim::provider::{AccountBinding, AfterAccept, Provider};
use smsim_sim::scenario::Scenario;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// What to run.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// The scenario file.
    pub scenario: PathBuf,
    /// The engine profile.
    pub profile: PathBuf,
    /// The seed of the fault plan.
    pub seed: u64,
    /// How many faults to draw.
    pub nemesis: NemesisOptions,
    /// Where the engine's files, its log and the trace go (created if missing).
    pub workdir: PathBuf,
    /// The `smsim` executable (`${smsim}` in profiles).
    pub smsim: PathBuf,
    /// Overrides of profile values (`dotted.key=value`), applied in order.
    pub sets: Vec<String>,
    /// Keep what a timeline needs (every provider exchange, named by its sender) and put
    /// the timeline in the report.
    pub timeline: bool,
}

/// How often the engine's numbers are sampled during the run.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// Runs `options` to a report; `Err` is bad input or an engine that would not run.
pub fn run(options: &LiveOptions) -> Result<LiveReport, LiveError> {
    let scenario = Scenario::load(&options.scenario).map_err(|error| LiveError::Scenario {
        path: options.scenario.display().to_string(),
        message: error.to_string(),
    })?;
    let profile = Profile::load_with(&options.profile, &options.sets)?;
    check_scenario(&scenario, &profile, options)?;
    check_targets(&profile, options)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| LiveError::Io { what: "starting the runtime".into(), source })?;
    let result = runtime.block_on(async {
        tokio::select! {
            biased;
            _ = tokio::signal::ctrl_c() => Err(LiveError::Interrupted),
            result = execute(scenario, profile, options) => result,
        }
    });
    // Dropping the runtime drops every task still holding the engine, which kills it.
    runtime.shutdown_timeout(Duration::from_secs(2));
    result
}

fn check_scenario(scenario: &Scenario, profile: &Profile, options: &LiveOptions) -> Result<(), LiveError> {
    let error = |message: String| LiveError::Scenario { path: options.scenario.display().to_string(), message };
    match scenario.traffic_accounts.as_slice() {
        [account] if account.provider == profile.provider.kind => {}
        [account] => {
            return Err(error(format!(
                "traffic account `{}` is {:?}, the engine profile's provider is {:?}",
                account.name, account.provider, profile.provider.kind
            )))
        }
        _ => return Err(error("live mode drives exactly one traffic account".into())),
    }
    let shares = |t: &smsim_sim::scenario::TenantSection| {
        t.contacts.invalid_share + t.contacts.opted_out_share + t.contacts.ucs2_name_share
    };
    if let Some(tenant) = scenario.tenants.iter().find(|tenant| shares(tenant) > 0.0) {
        return Err(error(format!(
            "tenant `{}`: live mode imports valid, opted-in GSM-7 contacts only (invalid, opted-out and UCS-2 shares must be 0)",
            tenant.name
        )));
    }
    if scenario.campaigns.is_empty() {
        return Err(error("no campaigns: nothing to drive".into()));
    }
    Ok(())
}

/// The nemesis's target and service kills name what the profile has.
fn check_targets(profile: &Profile, options: &LiveOptions) -> Result<(), LiveError> {
    let error = |message: String| LiveError::Profile { path: options.profile.display().to_string(), message };
    let target = options.nemesis.target.as_str();
    let names = || profile.processes.keys().cloned().collect::<Vec<_>>().join(", ");
    if ![crate::plan::ALL, crate::plan::RANDOM].contains(&target) && !profile.processes.contains_key(target) {
        return Err(error(format!("--target {target}: no such process (all, random, or one of: {})", names())));
    }
    if options.nemesis.service_kills > 0 && profile.services.is_empty() {
        return Err(error(format!("--service-kills {}: the profile has no [services]", options.nemesis.service_kills)));
    }
    Ok(())
}

/// A free loopback port (bound, then released for the engine to take).
fn free_port() -> Result<u16, LiveError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|source| LiveError::Io { what: "finding a free port".into(), source })?;
    listener.local_addr().map(|address| address.port()).map_err(|source| LiveError::Io { what: "port".into(), source })
}

/// What the provider's hold hook asks the runner: kill `victims`, restart after
/// `restart_after_ms`, then answer.
struct KillRequest {
    victims: Target,
    /// Messages the held request had accepted: their answer is lost with the victim.
    accepted: usize,
    restart_after_ms: u64,
    done: oneshot::Sender<()>,
}

/// Armed kills-on-accept: each a restart delay and a target; the next accepting request
/// from its target takes one.
#[derive(Clone, Default)]
struct Trap(Arc<Mutex<Vec<(u64, Target)>>>);

impl Trap {
    /// The hook: a request that accepted messages takes the first armed kill it matches —
    /// any for `All`, its sender for `Sender`, and only a named process's own requests for
    /// a name. The sender is looked up only when an armed kill needs it.
    fn hook(&self, requests: mpsc::UnboundedSender<KillRequest>, fleet: Arc<Mutex<Fleet>>) -> AfterAccept {
        let armed = self.0.clone();
        Arc::new(move |accepted, peer| {
            let taken = (accepted > 0).then(|| take_armed(&armed, &fleet, peer)).flatten();
            let requests = requests.clone();
            Box::pin(async move {
                let Some((restart_after_ms, victims)) = taken else { return };
                let (done, answered) = oneshot::channel();
                if requests.send(KillRequest { victims, accepted, restart_after_ms, done }).is_ok() {
                    // Bounded: the runner answers at once after the kill.
                    let _ = tokio::time::timeout(Duration::from_secs(5), answered).await;
                }
            })
        })
    }
}

/// The armed kill a request from `peer` takes, if any: its restart delay and whom to kill.
fn take_armed(
    armed: &Mutex<Vec<(u64, Target)>>,
    fleet: &Mutex<Fleet>,
    peer: std::net::SocketAddr,
) -> Option<(u64, Target)> {
    let mut armed = armed.lock().expect("trap poisoned");
    if armed.is_empty() {
        return None;
    }
    let needs_sender = armed.iter().any(|(_, target)| *target != Target::All);
    let sender = needs_sender.then(|| fleet.lock().expect("fleet lock poisoned").sender_of(peer)).flatten();
    let index = armed.iter().position(|(_, target)| match target {
        Target::All | Target::Sender => true,
        Target::Process(name) => sender.as_ref() == Some(name),
    })?;
    let (restart_after_ms, target) = armed.remove(index);
    let victims = match (target, sender) {
        (Target::Sender, Some(sender)) => Target::Process(sender),
        // Not found among ours (the socket is gone, or no /proc): every process.
        (Target::Sender, None) => Target::All,
        (target, _) => target,
    };
    Some((restart_after_ms, victims))
}

/// The run's moving parts.
struct Live {
    scenario: Scenario,
    profile: Profile,
    fleet: Arc<Mutex<Fleet>>,
    driver: Arc<Driver>,
    provider: Arc<Provider>,
    trace: Arc<Trace>,
    global: Values,
    contacts: BTreeMap<String, u64>,
    /// The independent judge, fed on the provider's clock.
    judge: Arc<Mutex<LiveJudge>>,
    /// The last operator action's end: the next one waits for it, so actions reach the
    /// engine one at a time, in the scenario's order (an operator does not click resume
    /// while the pause is still being retried).
    operator_chain: Mutex<Option<oneshot::Receiver<()>>>,
    failure: Arc<Mutex<Option<LiveError>>>,
    samples: Arc<std::sync::atomic::AtomicU64>,
    /// A sampling round is in flight (a stopped engine holds one for up to a timeout;
    /// rounds do not pile up behind it).
    sampling: Arc<std::sync::atomic::AtomicBool>,
    /// When each sampling round of the fault phase read every campaign (trace clock, ms).
    rounds: Arc<Mutex<Vec<u64>>>,
    /// When the fault phase killed or stopped the engine (trace clock, ms): a gap between
    /// rounds across one of these is the engine's, not the sampler's.
    disruptions: Mutex<Vec<u64>>,
    /// Planned faults that did not fire, by why.
    missed: Mutex<BTreeMap<&'static str, u32>>,
}

async fn execute(scenario: Scenario, profile: Profile, options: &LiveOptions) -> Result<LiveReport, LiveError> {
    let io = |what: &str| {
        let what = what.to_owned();
        move |source| LiveError::Io { what, source }
    };
    // An old engine database would carry an earlier run's campaigns into this one.
    let used = std::fs::read_dir(&options.workdir).is_ok_and(|mut entries| entries.next().is_some());
    if used {
        return Err(LiveError::Scenario {
            path: options.scenario.display().to_string(),
            message: format!("workdir {} is not empty; give a new or empty directory", options.workdir.display()),
        });
    }
    std::fs::create_dir_all(&options.workdir).map_err(io("creating the workdir"))?;
    let trace_path = options.workdir.join("trace.jsonl");
    let trace = Arc::new(Trace::create(&trace_path).map_err(io("creating the trace"))?);
    let targets = Targets {
        processes: profile.processes.keys().cloned().collect(),
        services: profile.services.keys().cloned().collect(),
    };
    let plan = draw(&scenario, options.seed, &options.nemesis, &targets);
    trace.event("plan", json!({ "seed": plan.seed, "faults": plan.faults }));

    let provider_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(io("binding the provider"))?;
    let provider_url = format!("http://{}", provider_listener.local_addr().map_err(io("provider address"))?);
    let engine_port = free_port()?;
    let mut global = global_values(&profile, options, &provider_url, engine_port);
    for name in port_placeholders(&profile) {
        global.insert(name, free_port()?.to_string());
    }
    let engine_url = format!("http://127.0.0.1:{engine_port}");

    let fleet = Arc::new(Mutex::new(fleet(&profile, &global, options)?));
    let (kill_requests, kill_queue) = mpsc::unbounded_channel();
    let trap = Trap::default();
    let webhook_base = fill(&profile.provider.webhook_base_url, &global, "provider.webhook_base_url", false)?;
    loopback_only(&webhook_base, "provider.webhook_base_url", options)?;
    let provider = start_provider(&scenario, &profile, webhook_base, options.seed, provider_listener, trace.start());
    provider.hold_answers_with(trap.hook(kill_requests, fleet.clone()));
    if options.timeline {
        let fleet = fleet.clone();
        provider
            .keep_exchanges_named_by(Arc::new(move |peer| fleet.lock().expect("fleet lock poisoned").sender_of(peer)));
    }

    // Services first, then the processes, each ready before the next starts.
    let (services, processes) = {
        let fleet = fleet.lock().expect("fleet lock poisoned");
        (fleet.service_names(), fleet.process_names())
    };
    for name in services.iter().chain(&processes) {
        let pid = fleet.lock().expect("fleet lock poisoned").get(name).expect("a program").start()?;
        trace.event("start", json!({ "program": name, "pid": pid }));
        wait_ready(&fleet, name).await?;
    }

    let driver = Arc::new(Driver {
        api: crate::api::EngineApi::new(engine_url),
        profile: profile.clone(),
        campaigns: Mutex::new(BTreeMap::new()),
        tenants: Mutex::new(BTreeMap::new()),
    });
    let contacts = driver.setup(&scenario, &global).await?;
    trace.event("setup", json!({ "campaigns": contacts }));
    let mut judge = LiveJudge::new(&scenario, &profile);
    for campaign in &scenario.campaigns {
        let count = contacts.get(&campaign.name).copied().unwrap_or(0);
        let account = &profile.provider.account_id;
        judge.campaign_created(provider.now_ms(), &campaign.name, &campaign.tenant, account, count);
    }
    let live = Live {
        scenario,
        profile,
        fleet,
        driver,
        provider,
        trace,
        global,
        contacts,
        judge: Arc::new(Mutex::new(judge)),
        operator_chain: Mutex::new(None),
        failure: Arc::default(),
        samples: Arc::default(),
        sampling: Arc::default(),
        rounds: Arc::default(),
        disruptions: Mutex::default(),
        missed: Mutex::default(),
    };
    let started = live.trace.now_ms();
    live.fault_phase(&plan, &trap, kill_queue).await?;
    live.heal(&trap).await?;
    let settled = live.settle().await?;
    let report = live.report(plan, settled, options, &trace_path, started).await;
    crate::process::stop(&live.fleet).await;
    report
}

/// Whether `url` is `http://` on a loopback host: live mode never leaves the machine.
fn is_loopback(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else { return false };
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(host, _port)| host);
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

fn loopback_only(url: &str, place: &str, options: &LiveOptions) -> Result<(), LiveError> {
    if is_loopback(url) {
        return Ok(());
    }
    Err(LiveError::Profile {
        path: options.profile.display().to_string(),
        message: format!("{place}: `{url}` is not a loopback URL (live mode stays on 127.0.0.1)"),
    })
}

fn global_values(profile: &Profile, options: &LiveOptions, provider_url: &str, engine_port: u16) -> Values {
    let provider = &profile.provider;
    Values::from([
        ("smsim".into(), options.smsim.display().to_string()),
        ("profile_dir".into(), profile.dir.display().to_string()),
        ("workdir".into(), options.workdir.display().to_string()),
        ("seed".into(), options.seed.to_string()),
        ("engine_port".into(), engine_port.to_string()),
        ("provider_url".into(), provider_url.to_owned()),
        ("provider_key".into(), provider.key.clone()),
        ("provider_secret".into(), provider.secret.clone()),
        ("account_id".into(), provider.account_id.clone()),
    ])
}

/// The `port_NAME` placeholders the profile's programs use: each gets a free port.
fn port_placeholders(profile: &Profile) -> std::collections::BTreeSet<String> {
    let programs = profile.processes.values().chain(profile.services.values());
    let texts = programs.flat_map(|program| {
        let ready = [&program.ready_url, &program.ready_tcp, &program.pid_file].into_iter().flatten();
        let lists = [Some(&program.command), program.ready_command.as_ref(), program.stop_command.as_ref()];
        program.env.values().chain(ready).chain(lists.into_iter().flatten().flatten()).cloned().collect::<Vec<_>>()
    });
    let mut names = std::collections::BTreeSet::new();
    for text in texts {
        let mut rest = text.as_str();
        while let Some(start) = rest.find("${port_") {
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else { break };
            names.insert(after[..end].to_owned());
            rest = &after[end + 1..];
        }
    }
    names
}

/// The run's programs, filled in: the profile's services and processes.
fn fleet(profile: &Profile, global: &Values, options: &LiveOptions) -> Result<Fleet, LiveError> {
    let programs = |kind: &str, table: &BTreeMap<String, ProcessSection>| {
        table
            .iter()
            .map(|(name, section)| launch(&format!("{kind}.{name}"), name, section, global, options).map(Program::new))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(Fleet {
        services: programs("services", &profile.services)?,
        processes: programs("processes", &profile.processes)?,
    })
}

fn launch(
    place: &str,
    name: &str,
    section: &ProcessSection,
    global: &Values,
    options: &LiveOptions,
) -> Result<Launch, LiveError> {
    // A `[process]` profile's one process keeps its old place in messages.
    let place = if name == crate::profile::ENGINE && place.starts_with("processes.") { "process" } else { place };
    let list = |parts: &[String], field: &str| {
        parts.iter().map(|part| fill(part, global, &format!("{place}.{field}"), false)).collect::<Result<Vec<_>, _>>()
    };
    let text = |value: &str, field: &str| fill(value, global, &format!("{place}.{field}"), false);
    let mut env = BTreeMap::new();
    for (key, value) in &section.env {
        env.insert(key.clone(), text(value, &format!("env.{key}"))?);
    }
    let ready = match (&section.ready_url, &section.ready_tcp, &section.ready_command) {
        (Some(url), _, _) => {
            let url = text(url, "ready_url")?;
            loopback_only(&url, &format!("{place}.ready_url"), options)?;
            Readiness::Url(url)
        }
        (_, Some(address), _) => {
            let address = text(address, "ready_tcp")?;
            loopback_only(&format!("http://{address}"), &format!("{place}.ready_tcp"), options)?;
            Readiness::Tcp(address)
        }
        (_, _, Some(command)) => Readiness::Command(list(command, "ready_command")?),
        (None, None, None) => Readiness::Started,
    };
    Ok(Launch {
        name: name.to_owned(),
        command: list(&section.command, "command")?,
        env,
        log: options.workdir.join(format!("{name}.log")),
        ready,
        ready_timeout_ms: section.ready_timeout_ms,
        stop_grace_ms: section.stop_grace_ms,
        pid_file: section.pid_file.as_deref().map(|file| text(file, "pid_file")).transpose()?.map(PathBuf::from),
        stop_command: section.stop_command.as_deref().map(|command| list(command, "stop_command")).transpose()?,
    })
}

fn start_provider(
    scenario: &Scenario,
    profile: &Profile,
    webhook_base: String,
    seed: u64,
    listener: tokio::net::TcpListener,
    start: tokio::time::Instant,
) -> Arc<Provider> {
    let binding = AccountBinding {
        engine_id: profile.provider.account_id.clone(),
        key: profile.provider.key.clone(),
        secret: profile.provider.secret.clone(),
    };
    let provider = Provider::new(live_behaviour(scenario), vec![binding], seed, smsim_sim::clock::SimClock);
    // One clock for the run: the provider's record and the trace count from one instant.
    provider.use_real_time_from(start);
    // Real sockets: bound the webhooks in flight, as a real provider's sender does.
    provider.limit_concurrent_reports(64);
    let serving = provider.clone();
    tokio::spawn(async move {
        let _ = serve_live(serving, listener, &webhook_base, None).await;
    });
    provider
}

/// A step of the fault phase's timeline.
#[derive(Clone, Debug)]
enum Step {
    Enqueue(usize),
    Operator(usize),
    Fault(Fault),
    /// Start these programs again (those not running).
    Restart(Vec<String>),
    /// SIGCONT these processes.
    Continue(Vec<String>),
}

impl Live {
    /// The timeline: enqueues and operator actions from the scenario, faults from the plan.
    fn timeline(&self, plan: &FaultPlan) -> BTreeMap<(u64, u64), Step> {
        let mut timeline = BTreeMap::new();
        let mut sequence = 0;
        let mut add = |at_ms: u64, step: Step| {
            sequence += 1;
            timeline.insert((at_ms, sequence), step);
        };
        let ms = |seconds: f64| (seconds * 1_000.0) as u64;
        for (index, campaign) in self.scenario.campaigns.iter().enumerate() {
            add(ms(campaign.enqueue_at_s), Step::Enqueue(index));
        }
        // Random operator times are drawn from the seed, like the simulator's.
        let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(plan.seed ^ 0x6f70);
        for (index, action) in self.scenario.operator.iter().enumerate() {
            let at_ms =
                if action.random { rand::Rng::random_range(&mut rng, 0..=ms(action.at_s)) } else { ms(action.at_s) };
            add(at_ms, Step::Operator(index));
        }
        for fault in &plan.faults {
            add(fault.at_ms(), Step::Fault(fault.clone()));
        }
        timeline
    }

    /// Runs the fault phase: the timeline, kill requests from the provider, and samples.
    async fn fault_phase(
        &self,
        plan: &FaultPlan,
        trap: &Trap,
        mut kill_queue: mpsc::UnboundedReceiver<KillRequest>,
    ) -> Result<(), LiveError> {
        let start = tokio::time::Instant::now();
        let phase_end = start + Duration::from_secs(self.scenario.duration_s.max(1));
        let mut timeline = self.timeline(plan);
        let mut sampling = tokio::time::interval(SAMPLE_EVERY);
        let mut sequence = u64::MAX / 2;
        loop {
            if let Some(error) = self.failure.lock().expect("failure poisoned").take() {
                return Err(error);
            }
            let next = timeline.first_key_value().map(|((at_ms, _), _)| start + Duration::from_millis(*at_ms));
            let wake = next.map_or(phase_end, |next| next.min(phase_end));
            tokio::select! {
                biased;
                Some(request) = kill_queue.recv() => {
                    let (at, killed) = self.kill_between_accept_and_commit(request);
                    sequence += 1;
                    timeline.insert((at + start.elapsed().as_millis() as u64, sequence), Step::Restart(killed));
                }
                _ = tokio::time::sleep_until(wake) => {
                    if tokio::time::Instant::now() >= phase_end {
                        return Ok(());
                    }
                    let Some(((_, _), step)) = timeline.pop_first() else { continue };
                    let now_ms = start.elapsed().as_millis() as u64;
                    if let Some((delay_ms, follow)) = self.apply(step, trap) {
                        sequence += 1;
                        timeline.insert((now_ms + delay_ms, sequence), follow);
                    }
                }
                _ = sampling.tick() => self.sample(),
            }
        }
    }

    /// Kills the request's victims while the provider holds its answer, then lets the
    /// answer go; the restart delay and who was killed.
    fn kill_between_accept_and_commit(&self, request: KillRequest) -> (u64, Vec<String>) {
        let killed = self.kill(&request.victims);
        let fields =
            json!({ "restart_after_ms": request.restart_after_ms, "processes": killed, "accepted": request.accepted });
        match killed.is_empty() {
            true => self.missed("kill_on_accept", NOT_RUNNING, fields),
            false => self.trace.event("kill_between_accept_and_commit", fields),
        }
        let _ = request.done.send(());
        (request.restart_after_ms, killed)
    }

    /// The processes `target` names (every process for `All`).
    fn aimed(&self, target: &Target) -> Vec<String> {
        let all = self.fleet.lock().expect("fleet lock poisoned").process_names();
        match target {
            Target::All | Target::Sender => all,
            Target::Process(name) => all.into_iter().filter(|n| n == name).collect(),
        }
    }

    /// SIGKILLs the processes `target` names; those that were running.
    fn kill(&self, target: &Target) -> Vec<String> {
        let names = self.aimed(target);
        let killed: Vec<String> = {
            let mut fleet = self.fleet.lock().expect("fleet lock poisoned");
            names.into_iter().filter(|name| fleet.get(name).is_some_and(Program::kill)).collect()
        };
        self.disrupted(&killed);
        killed
    }

    /// Applies one step; a follow-up step and its delay, if any.
    fn apply(&self, step: Step, trap: &Trap) -> Option<(u64, Step)> {
        match step {
            Step::Enqueue(index) => self.spawn_enqueue(index),
            Step::Operator(index) => self.spawn_operator(index),
            Step::Fault(Fault::Kill { restart_after_ms, target, .. }) => {
                let killed = self.kill(&target);
                let fields = json!({ "restart_after_ms": restart_after_ms, "processes": killed });
                match killed.is_empty() {
                    true => self.missed("kill", NOT_RUNNING, fields),
                    false => self.trace.event("kill", fields),
                }
                return (!killed.is_empty()).then_some((restart_after_ms, Step::Restart(killed)));
            }
            Step::Fault(Fault::KillOnAccept { restart_after_ms, target, .. }) => {
                self.trace
                    .event("armed_kill_on_accept", json!({ "restart_after_ms": restart_after_ms, "target": target }));
                trap.0.lock().expect("trap poisoned").push((restart_after_ms, target));
            }
            Step::Fault(Fault::Pause { for_ms, target, .. }) => {
                let names = self.aimed(&target);
                let paused: Vec<String> = {
                    let mut fleet = self.fleet.lock().expect("fleet lock poisoned");
                    let mut pause = |program: &mut Program| program.alive() && !program.is_paused() && program.pause();
                    names.into_iter().filter(|name| fleet.get(name).is_some_and(&mut pause)).collect()
                };
                self.disrupted(&paused);
                let fields = json!({ "for_ms": for_ms, "processes": paused });
                match paused.is_empty() {
                    true => self.missed("pause", "its target was not running, or was paused already", fields),
                    false => self.trace.event("sigstop", fields),
                }
                return (!paused.is_empty()).then_some((for_ms, Step::Continue(paused)));
            }
            Step::Fault(Fault::ServiceKill { restart_after_ms, service, .. }) => {
                let killed = self.fleet.lock().expect("fleet lock poisoned").get(&service).is_some_and(Program::kill);
                self.disrupted(std::slice::from_ref(&service));
                let fields = json!({ "restart_after_ms": restart_after_ms, "service": service });
                match killed {
                    true => self.trace.event("service_kill", fields),
                    false => self.missed("service_kill", "the service was not running", fields),
                }
                return killed.then_some((restart_after_ms, Step::Restart(vec![service])));
            }
            Step::Restart(names) => self.restart(&names),
            Step::Continue(names) => {
                let mut fleet = self.fleet.lock().expect("fleet lock poisoned");
                for name in &names {
                    if let Some(program) = fleet.get(name) {
                        program.resume();
                    }
                }
                self.trace.event("sigcont", json!({ "processes": names }));
            }
        }
        None
    }

    /// Notes that `programs` were just killed or stopped, when the engine's API is among
    /// what they take down (a process that serves HTTP, or a service).
    fn disrupted(&self, programs: &[String]) {
        let serving = |name: &String| {
            self.profile.services.contains_key(name)
                || self.profile.processes.get(name).is_some_and(|process| process.ready_url.is_some())
        };
        if programs.iter().any(serving) {
            self.disruptions.lock().expect("disruptions poisoned").push(self.trace.now_ms());
        }
    }

    /// Starts again those of `names` that are not running.
    fn restart(&self, names: &[String]) {
        let mut fleet = self.fleet.lock().expect("fleet lock poisoned");
        for name in names {
            let Some(program) = fleet.get(name) else { continue };
            if program.alive() {
                continue;
            }
            match program.start() {
                Ok(pid) => self.trace.event("restart", json!({ "program": name, "pid": pid })),
                Err(error) => *self.failure.lock().expect("failure poisoned") = Some(error),
            }
        }
    }

    fn spawn_enqueue(&self, index: usize) {
        let campaign = self.scenario.campaigns[index].clone();
        let (driver, trace, failure) = (self.driver.clone(), self.trace.clone(), self.failure.clone());
        tokio::spawn(async move {
            match driver.enqueue(&campaign.name, campaign.double_click).await {
                Ok(answers) => trace.event("enqueue", json!({ "campaign": campaign.name, "answers": answers })),
                Err(error) => *failure.lock().expect("failure poisoned") = Some(error),
            }
        });
    }

    fn spawn_operator(&self, index: usize) {
        let action = self.scenario.operator[index].clone();
        let (driver, trace, global) = (self.driver.clone(), self.trace.clone(), self.global.clone());
        let (failure, judge, provider) = (self.failure.clone(), self.judge.clone(), self.provider.clone());
        let tenants: Vec<String> = self.scenario.tenants.iter().map(|t| t.name.clone()).collect();
        let (done, next) = oneshot::channel();
        let previous = self.operator_chain.lock().expect("operator chain poisoned").replace(next);
        tokio::spawn(async move {
            if let Some(previous) = previous {
                // The previous action ended (or its task was dropped): either way, go on.
                let _ = previous.await;
            }
            let campaign = action.campaign.as_deref();
            let act = smsim_sim::oracle::act_of(action.action, action.amount.unwrap_or(0));
            let tenant = action.tenant.as_deref().filter(|tenant| tenants.iter().any(|t| t == tenant));
            // The judge hears of what is sent, as it is sent: a mapped action on a campaign,
            // or a credit change of a tenant it knows.
            let told = driver.maps(action.action)
                && match act {
                    smsim_judge::Act::Credits(_) => tenant.is_some(),
                    _ => campaign.is_some(),
                };
            let id = told.then(|| {
                let mut judge = judge.lock().expect("judge poisoned");
                judge.provider(&mut provider.truth.lock().expect("provider poisoned"));
                let (on_campaign, on_tenant) = match act {
                    smsim_judge::Act::Credits(_) => (None, tenant),
                    _ => (campaign, None),
                };
                judge.action_sent(provider.now_ms(), act, on_campaign, on_tenant)
            });
            let answer =
                driver.operator(action.action, campaign, action.tenant.as_deref(), action.amount, &global).await;
            if let (Some(id), Ok(answer)) = (id, &answer) {
                let mut judge = judge.lock().expect("judge poisoned");
                judge.provider(&mut provider.truth.lock().expect("provider poisoned"));
                judge.action_answered(provider.now_ms(), id, answer.flatten());
            }
            match answer {
                Ok(answer) => trace.event(
                    "operator",
                    json!({ "action": action.action, "campaign": campaign, "mapped": answer.is_some(), "answer": answer.flatten() }),
                ),
                Err(error) => *failure.lock().expect("failure poisoned") = Some(error),
            }
            let _ = done.send(());
        });
    }

    /// Reads every campaign once in the background, checking each reading's bounds.
    fn sample(&self) {
        if self.sampling.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return;
        }
        let sampling = self.sampling.clone();
        let names: Vec<(String, u64)> = self.contacts.iter().map(|(name, count)| (name.clone(), *count)).collect();
        let (driver, trace, judge) = (self.driver.clone(), self.trace.clone(), self.judge.clone());
        let (failure, samples, provider) = (self.failure.clone(), self.samples.clone(), self.provider.clone());
        let rounds = self.rounds.clone();
        let tenants: Vec<String> = self.scenario.tenants.iter().map(|t| t.name.clone()).collect();
        let global = self.global.clone();
        tokio::spawn(async move {
            let mut read_all = true;
            for (name, _contacts) in names {
                match driver.read(&name).await {
                    Ok(Some(mut reading)) => {
                        samples.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if let Err(error) = judge_reading(&judge, &provider, &name, &mut reading) {
                            *failure.lock().expect("failure poisoned") = Some(error);
                        }
                        trace.event("sample", json!({ "campaign": name, "reading": reading }));
                    }
                    Ok(None) => read_all = false,
                    Err(error) => {
                        read_all = false;
                        *failure.lock().expect("failure poisoned") = Some(error);
                    }
                }
            }
            if read_all {
                rounds.lock().expect("rounds poisoned").push(trace.now_ms());
            }
            for tenant in &tenants {
                // A top-up answered while this reading is on its way may or may not show in it.
                let requested_after = judge.lock().expect("judge poisoned").credit_changes_acknowledged();
                match driver.books(tenant, &global, false).await {
                    Ok(Some(books)) => {
                        let mut judge = judge.lock().expect("judge poisoned");
                        judge.provider(&mut provider.truth.lock().expect("provider poisoned"));
                        judge.books_read(provider.now_ms(), tenant, books, requested_after);
                    }
                    Ok(None) => {}
                    Err(error) => *failure.lock().expect("failure poisoned") = Some(error),
                }
            }
            sampling.store(false, std::sync::atomic::Ordering::Release);
        });
    }
}

/// Tells the judge what the provider saw, then `reading`, stamped with the provider's time
/// now: after the engine answered, so every acceptance it may count is already told.
fn judge_reading(
    judge: &Mutex<LiveJudge>,
    provider: &Provider,
    campaign: &str,
    reading: &mut Reading,
) -> Result<(), LiveError> {
    let mut judge = judge.lock().expect("judge poisoned");
    judge.provider(&mut provider.truth.lock().expect("provider poisoned"));
    reading.at_ms = provider.now_ms();
    judge.campaign_read(campaign, reading).map_err(|problem| LiveError::Garbage {
        action: "read_campaign".into(),
        method: "GET".into(),
        url: format!("campaign {campaign}"),
        problem,
        answer: format!("{reading:?}"),
    })
}

/// Why a kill found nothing to kill.
const NOT_RUNNING: &str = "its target was not running (killed earlier, and not yet restarted)";

impl Live {
    /// Ends the faults: disarms the trap, turns the provider's faults off, continues or
    /// restarts every service and process, and waits until each is ready.
    async fn heal(&self, trap: &Trap) -> Result<(), LiveError> {
        let unfired = std::mem::take(&mut *trap.0.lock().expect("trap poisoned"));
        for (_, target) in unfired {
            let why = "no request (from its target) was accepted after it was armed";
            self.missed("kill_on_accept", why, json!({ "target": target }));
        }
        self.provider.heal();
        let names: Vec<String> = {
            let mut fleet = self.fleet.lock().expect("fleet lock poisoned");
            let names: Vec<String> = fleet.service_names().into_iter().chain(fleet.process_names()).collect();
            for name in &names {
                let program = fleet.get(name).expect("a program");
                if program.is_paused() {
                    program.resume();
                    self.trace.event("sigcont", json!({ "processes": [name] }));
                }
            }
            names
        };
        self.restart(&names);
        self.trace.event("heal", json!({}));
        for name in &names {
            wait_ready(&self.fleet, name).await?;
        }
        Ok(())
    }

    /// Waits (at most the scenario's `heal_s`) until every campaign is in a final status
    /// and the provider has no report left to send; the last readings, and whether it did.
    async fn settle(&self) -> Result<(BTreeMap<String, Reading>, bool), LiveError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(self.scenario.heal_s.max(1));
        let final_statuses = &self.profile.statuses.final_statuses;
        let mut last: BTreeMap<String, Reading> = BTreeMap::new();
        loop {
            for name in self.contacts.keys() {
                if let Some(mut reading) = self.driver.read(name).await? {
                    self.samples.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    judge_reading(&self.judge, &self.provider, name, &mut reading)?;
                    last.insert(name.clone(), reading);
                }
            }
            let pending = self.provider.truth.lock().expect("provider poisoned").reports_pending;
            let finished = last.len() == self.contacts.len()
                && last.values().all(|reading| final_statuses.contains(&reading.status));
            if finished && pending == 0 {
                self.trace.event("settled", json!({ "campaigns": last }));
                return Ok((last, true));
            }
            if tokio::time::Instant::now() >= deadline {
                self.trace.event("not_settled", json!({ "campaigns": last, "reports_pending": pending }));
                return Ok((last, false));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Decides the invariants and writes the report.
    async fn report(
        &self,
        plan: FaultPlan,
        (last, _settled): (BTreeMap<String, Reading>, bool),
        options: &LiveOptions,
        trace_path: &std::path::Path,
        started_ms: u64,
    ) -> Result<LiveReport, LiveError> {
        let now_ms = self.trace.now_ms();
        let truth = {
            let truth = self.provider.truth.lock().expect("provider poisoned");
            TruthView::of(&truth, self.provider.now_ms())
        };
        let campaigns = self.outcomes(&last, &truth);
        let requested_after = self.judge.lock().expect("judge poisoned").credit_changes_acknowledged();
        let (tenants, books) = self.tenants(&campaigns).await?;
        let (violation, verdicts) = {
            let mut judge = self.judge.lock().expect("judge poisoned");
            judge.provider(&mut self.provider.truth.lock().expect("provider poisoned"));
            let at_ms = self.provider.now_ms();
            for (tenant, books) in tenants.iter().zip(&books) {
                let books = books.or(tenant.charged.map(|charged| crate::driver::Books {
                    charged,
                    balance: None,
                    reserved: None,
                }));
                if let Some(books) = books {
                    judge.books_read(at_ms, &tenant.name, books, requested_after);
                }
            }
            judge.finish(at_ms)
        };
        let violations: Vec<_> = violation.into_iter().collect();
        let tail = match violations.first() {
            // The events around the violation, on the same clock as its evidence.
            Some(violation) => self.trace.around(trace_path, violation.at_ms, 3_000, 1_000, 30),
            None => self.trace.tail(),
        };
        self.trace.event("verdicts", json!({ "verdicts": verdicts }));
        self.trace.flush();
        let duplicate_acceptances = truth.acceptances.len() as u64 - distinct(&truth);
        let mut report = LiveReport {
            scenario: self.scenario.name.clone(),
            engine: self.profile.name.clone(),
            seed: plan.seed,
            fired: self.fired(),
            plan,
            verdicts,
            violations,
            campaigns,
            tenants,
            acceptances: truth.acceptances.len() as u64,
            duplicate_acceptances,
            reports_sent: truth.reports.len() as u64,
            coverage: truth.marks.clone(),
            samples: self.samples.load(std::sync::atomic::Ordering::Relaxed),
            sampling: Sampling::of(
                &self.rounds.lock().expect("rounds poisoned"),
                &self.disruptions.lock().expect("disruptions poisoned"),
            ),
            wall_ms: now_ms - started_ms,
            workdir: options.workdir.display().to_string(),
            trace: trace_path.display().to_string(),
            tail,
            reproduce: reproduce(options),
            timeline: None,
        };
        if options.timeline {
            report.timeline = Some(self.timeline_page(&report, trace_path, &truth)?);
        }
        Ok(report)
    }

    /// The run's timeline, from its trace (flushed) and the provider's record.
    fn timeline_page(
        &self,
        report: &LiveReport,
        trace_path: &std::path::Path,
        truth: &TruthView,
    ) -> Result<smsim_sim::timeline::Timeline, LiveError> {
        let text = std::fs::read_to_string(trace_path)
            .map_err(|source| LiveError::Io { what: format!("reading {}", trace_path.display()), source })?;
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let programs = {
            let fleet = self.fleet.lock().expect("fleet lock poisoned");
            fleet.process_names().into_iter().chain(fleet.service_names()).collect()
        };
        let exchanges = self.provider.truth.lock().expect("provider poisoned").exchanges.clone().unwrap_or_default();
        Ok(crate::timeline::gather(crate::timeline::LiveFacts { report, lines: &lines, programs, exchanges, truth }))
    }

    fn fired(&self) -> FaultsFired {
        let between = self.trace.count("kill_between_accept_and_commit");
        FaultsFired {
            kills: self.trace.count("kill") + between,
            kills_between_accept_and_commit: between,
            pauses: self.trace.count("sigstop"),
            service_kills: self.trace.count("service_kill"),
            restarts: self.trace.count("restart"),
            missed: self.trace.count("missed"),
            missed_why: self
                .missed
                .lock()
                .expect("missed poisoned")
                .iter()
                .map(|(why, n)| (why.to_string(), *n))
                .collect(),
        }
    }

    /// A planned `fault` that did not fire, and `why`: in the trace with `fields`, and
    /// counted for the report.
    fn missed(&self, fault: &str, why: &'static str, mut fields: serde_json::Value) {
        fields["fault"] = json!(fault);
        fields["why"] = json!(why);
        self.trace.event("missed", fields);
        *self.missed.lock().expect("missed poisoned").entry(why).or_default() += 1;
    }

    fn outcomes(&self, last: &BTreeMap<String, Reading>, truth: &TruthView) -> Vec<CampaignOutcome> {
        self.scenario
            .campaigns
            .iter()
            .map(|campaign| {
                let body_prefix = format!("[{}] ", campaign.name);
                let mine: Vec<_> = check::acceptances_of(truth, &body_prefix).collect();
                let keys: std::collections::BTreeSet<(&str, &str)> =
                    mine.iter().map(|a| (a.destination.as_str(), a.body.as_str())).collect();
                CampaignOutcome {
                    name: campaign.name.clone(),
                    tenant: campaign.tenant.clone(),
                    contacts: self.contacts.get(&campaign.name).copied().unwrap_or(0),
                    last: last.get(&campaign.name).cloned().unwrap_or_default(),
                    accepted: mine.len() as u64,
                    accepted_distinct: keys.len() as u64,
                    body_prefix,
                }
            })
            .collect()
    }

    /// Each tenant's outcome, and its books as the engine last showed them.
    async fn tenants(
        &self,
        campaigns: &[CampaignOutcome],
    ) -> Result<(Vec<TenantOutcome>, Vec<Option<crate::driver::Books>>), LiveError> {
        let price = self.scenario.traffic_accounts.first().map_or(0, |account| account.price_per_segment);
        let mut tenants = Vec::new();
        let mut all_books = Vec::new();
        for tenant in &self.scenario.tenants {
            let from_campaigns: Option<i64> =
                campaigns.iter().filter(|c| c.tenant == tenant.name).map(|c| c.last.charged).sum();
            let books = self.driver.books(&tenant.name, &self.global, true).await?;
            let charged = books.map(|books| books.charged).or(from_campaigns);
            tenants.push(TenantOutcome { name: tenant.name.clone(), charged, price_per_segment: price });
            all_books.push(books);
        }
        Ok((tenants, all_books))
    }
}

fn distinct(truth: &TruthView) -> u64 {
    let keys: std::collections::BTreeSet<(&str, &str)> =
        truth.acceptances.iter().map(|a| (a.destination.as_str(), a.body.as_str())).collect();
    keys.len() as u64
}

fn reproduce(options: &LiveOptions) -> String {
    let nemesis = &options.nemesis;
    format!(
        "smsim live {} --engine {} --seed {} --kills {} --kills-on-accept {} --pauses {} --pause-ms {}",
        options.scenario.display(),
        options.profile.display(),
        options.seed,
        nemesis.kills,
        nemesis.kills_on_accept,
        nemesis.pauses,
        nemesis.pause_ms
    ) + &aim(nemesis)
        + &options.sets.iter().map(|set| format!(" --set '{set}'")).collect::<String>()
}

/// The nemesis's aim, when not the default.
fn aim(nemesis: &NemesisOptions) -> String {
    let mut aim = String::new();
    if nemesis.target != crate::plan::ALL {
        aim += &format!(" --target {}", nemesis.target);
    }
    if nemesis.service_kills > 0 {
        aim += &format!(" --service-kills {}", nemesis.service_kills);
    }
    aim
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn only_loopback_urls_pass() {
        assert!(is_loopback("http://127.0.0.1:8080/health"));
        assert!(is_loopback("http://localhost:1"));
        assert!(is_loopback("http://[::1]:80/x?y"));
        assert!(!is_loopback("http://10.0.0.1:8080/health"));
        assert!(!is_loopback("https://example.com/"));
        assert!(!is_loopback("http://127.0.0.1.evil.com/"));
    }
}
