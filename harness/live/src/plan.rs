//! The fault plan (Jepsen's nemesis), drawn from the seed alone: the same seed gives the
//! same plan on any machine, although real time does not replay. Faults happen in the
//! scenario's fault phase; the scenario's own `crash` events become kills too.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use smsim_sim::scenario::{FaultEvent, Scenario};

/// How many faults of each kind to draw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NemesisOptions {
    /// SIGKILLs at seeded moments.
    pub kills: u32,
    /// SIGKILLs while the provider holds the answer to a request it accepted (armed at a
    /// seeded moment, fired by the next accepting request).
    pub kills_on_accept: u32,
    /// SIGSTOP … SIGCONT pauses.
    pub pauses: u32,
    /// How long a pause lasts, ms (make it longer than the engine's lease).
    pub pause_ms: u64,
    /// Restart delay range after a kill, ms.
    pub restart_ms: [u64; 2],
    /// Which of the engine's processes the faults hit: `all` (every process at once, as
    /// a machine going down), `random` (one drawn per fault; a kill on acceptance hits the
    /// process that sent the accepted request), or a process's name.
    pub target: String,
    /// SIGKILLs of a service (drawn among the profile's services), restarted after the
    /// restart delay.
    pub service_kills: u32,
}

impl Default for NemesisOptions {
    fn default() -> Self {
        NemesisOptions {
            kills: 2,
            kills_on_accept: 1,
            pauses: 1,
            pause_ms: 1_500,
            restart_ms: [100, 800],
            target: ALL.to_owned(),
            service_kills: 0,
        }
    }
}

/// `--target all`: every process at once.
pub const ALL: &str = "all";
/// `--target random`: one process drawn per fault.
pub const RANDOM: &str = "random";

/// Which processes one fault hits.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// Every process of the engine at once.
    All,
    /// The process that sent the request the provider holds (kills on acceptance).
    Sender,
    /// The process of that name (a kill on acceptance waits for a request it sent).
    Process(String),
}

impl Serialize for Target {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(match self {
            Target::All => ALL,
            Target::Sender => "sender",
            Target::Process(name) => name,
        })
    }
}

/// One planned fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum Fault {
    /// SIGKILL at `at_ms`, restart `restart_after_ms` later.
    Kill {
        /// When (ms after the fault phase began).
        at_ms: u64,
        /// Restart delay.
        restart_after_ms: u64,
        /// Which processes.
        target: Target,
    },
    /// From `at_ms`, the next request the provider accepts (from the target) is held, the
    /// target is SIGKILLed, then the answer is let go (to a dead socket).
    KillOnAccept {
        /// When it is armed.
        at_ms: u64,
        /// Restart delay.
        restart_after_ms: u64,
        /// Which processes.
        target: Target,
    },
    /// SIGSTOP at `at_ms`, SIGCONT `for_ms` later.
    Pause {
        /// When.
        at_ms: u64,
        /// For how long.
        for_ms: u64,
        /// Which processes.
        target: Target,
    },
    /// SIGKILL of a service at `at_ms`, restarted `restart_after_ms` later.
    ServiceKill {
        /// When.
        at_ms: u64,
        /// Restart delay.
        restart_after_ms: u64,
        /// Which service.
        service: String,
    },
}

impl Fault {
    /// When it happens (or is armed).
    pub fn at_ms(&self) -> u64 {
        match self {
            Fault::Kill { at_ms, .. }
            | Fault::KillOnAccept { at_ms, .. }
            | Fault::Pause { at_ms, .. }
            | Fault::ServiceKill { at_ms, .. } => *at_ms,
        }
    }
}

/// The plan of a seed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FaultPlan {
    /// The seed it was drawn from.
    pub seed: u64,
    /// The faults, by time.
    pub faults: Vec<Fault>,
}

/// The engine's processes and services, by name, as the faults may target them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Targets {
    /// Process names, in start order.
    pub processes: Vec<String>,
    /// Service names.
    pub services: Vec<String>,
}

/// Draws the plan for `scenario` and `seed`: faults spread over the fault phase (the
/// first half second is left alone so the engine can take its first requests). Random
/// targets and service kills come from streams of their own, so a plan's times are the
/// same whichever processes it aims at.
pub fn draw(scenario: &Scenario, seed: u64, options: &NemesisOptions, targets: &Targets) -> FaultPlan {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6e65_6d65_7369_7300);
    let mut aim_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7461_7267_6574);
    let mut aim = |on_accept: bool| match options.target.as_str() {
        ALL => Target::All,
        RANDOM if on_accept => Target::Sender,
        RANDOM if !targets.processes.is_empty() => {
            Target::Process(targets.processes[aim_rng.random_range(0..targets.processes.len())].clone())
        }
        RANDOM => Target::All,
        name => Target::Process(name.to_owned()),
    };
    let phase_ms = scenario.duration_s.max(1) * 1_000;
    let time = |rng: &mut ChaCha8Rng| rng.random_range(500.min(phase_ms - 1)..phase_ms);
    let mut faults = Vec::new();
    for _ in 0..options.kills {
        let at_ms = time(&mut rng);
        let restart_after_ms = rng.random_range(options.restart_ms[0]..=options.restart_ms[1]);
        faults.push(Fault::Kill { at_ms, restart_after_ms, target: aim(false) });
    }
    // A kill on acceptance needs a request to hold: arm it while the campaigns send.
    let (send_from, send_until) = sending_window_ms(scenario, phase_ms);
    for _ in 0..options.kills_on_accept {
        let at_ms = rng.random_range(send_from..send_until);
        let restart_after_ms = rng.random_range(options.restart_ms[0]..=options.restart_ms[1]);
        faults.push(Fault::KillOnAccept { at_ms, restart_after_ms, target: aim(true) });
    }
    for _ in 0..options.pauses {
        faults.push(Fault::Pause { at_ms: time(&mut rng), for_ms: options.pause_ms, target: aim(false) });
    }
    let mut service_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7365_7276_6963_6500);
    if !targets.services.is_empty() {
        for _ in 0..options.service_kills {
            let at_ms = time(&mut service_rng);
            let restart_after_ms = service_rng.random_range(options.restart_ms[0]..=options.restart_ms[1]);
            let service = targets.services[service_rng.random_range(0..targets.services.len())].clone();
            faults.push(Fault::ServiceKill { at_ms, restart_after_ms, service });
        }
    }
    for event in &scenario.faults.events {
        if let FaultEvent::Crash { at_s, restart_after_s, .. } = event {
            let ms = |seconds: f64| (seconds * 1_000.0) as u64;
            faults.push(Fault::Kill { at_ms: ms(*at_s), restart_after_ms: ms(*restart_after_s), target: Target::All });
        }
    }
    faults.sort_by_key(Fault::at_ms);
    FaultPlan { seed, faults }
}

/// When the scenario's campaigns are expected to be sending, in ms of the fault phase:
/// from the first enqueue until its contacts would all be submitted at the tightest rate
/// limit (without one, the first fifth of what is left of the phase), within the phase.
fn sending_window_ms(scenario: &Scenario, phase_ms: u64) -> (u64, u64) {
    let ms = |seconds: f64| (seconds * 1_000.0) as u64;
    let from = scenario.campaigns.iter().map(|c| ms(c.enqueue_at_s)).min().unwrap_or(0).clamp(0, phase_ms - 1);
    let contacts: u64 = scenario
        .campaigns
        .iter()
        .filter_map(|c| scenario.tenants.iter().find(|t| t.name == c.tenant))
        .map(|t| u64::from(t.contacts.count))
        .sum();
    let rate = scenario
        .traffic_accounts
        .iter()
        .filter_map(|a| a.rate_limit_per_s)
        .chain(scenario.tenants.iter().filter_map(|t| t.rate_limit_per_s))
        .min();
    let span = match rate {
        Some(rate) => contacts * 1_000 / u64::from(rate.max(1)),
        None => (phase_ms - from) / 5,
    };
    (from, (from + span.max(1)).min(phase_ms).max(from + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_draws_the_same_plan_and_another_seed_another() {
        let scenario: Scenario = toml::from_str("duration_s = 10").unwrap();
        let options = NemesisOptions { kills: 5, kills_on_accept: 3, pauses: 2, ..NemesisOptions::default() };
        let targets = Targets::default();
        let plan = draw(&scenario, 7, &options, &targets);
        assert_eq!(plan, draw(&scenario, 7, &options, &targets));
        assert_ne!(plan, draw(&scenario, 8, &options, &targets));
        assert_eq!(plan.faults.len(), 10);
        assert!(plan.faults.windows(2).all(|pair| pair[0].at_ms() <= pair[1].at_ms()));
        assert!(plan.faults.iter().all(|fault| fault.at_ms() < 10_000));
    }

    #[test]
    fn kills_on_acceptance_are_armed_while_the_campaign_sends() {
        // 300 contacts at 60/s from 0.2 s: sending lasts about 5 s of a 30 s phase.
        let scenario: Scenario = toml::from_str(
            r#"duration_s = 30
            [[tenants]]
            name = "t"
            credits = 100000
            contacts = { count = 300 }
            [[traffic_accounts]]
            name = "a"
            provider = "mitto"
            rate_limit_per_s = 60
            [[campaigns]]
            name = "c"
            tenant = "t"
            traffic_account = "a"
            enqueue_at_s = 0.2"#,
        )
        .unwrap();
        let options = NemesisOptions { kills_on_accept: 20, ..NemesisOptions::default() };
        for seed in 1..=5 {
            let plan = draw(&scenario, seed, &options, &Targets::default());
            let armed: Vec<u64> = plan
                .faults
                .iter()
                .filter(|fault| matches!(fault, Fault::KillOnAccept { .. }))
                .map(Fault::at_ms)
                .collect();
            assert_eq!(armed.len(), 20);
            assert!(armed.iter().all(|&at| (200..5_200).contains(&at)), "seed {seed}: {armed:?}");
        }
    }

    #[test]
    fn targets_are_drawn_from_their_own_stream_and_service_kills_only_with_services() {
        let scenario: Scenario = toml::from_str("duration_s = 10").unwrap();
        let targets = Targets {
            processes: vec!["api".into(), "worker-1".into(), "worker-2".into()],
            services: vec!["redis".into()],
        };
        let all = NemesisOptions { kills: 6, pauses: 3, service_kills: 2, ..NemesisOptions::default() };
        let random = NemesisOptions { target: RANDOM.into(), ..all.clone() };
        let named = NemesisOptions { target: "worker-1".into(), ..all.clone() };
        let [all, random, named] = [&all, &random, &named].map(|options| draw(&scenario, 3, options, &targets));
        let times = |plan: &FaultPlan| plan.faults.iter().map(Fault::at_ms).collect::<Vec<_>>();
        assert_eq!(times(&all), times(&random), "the same moments whatever the aim");
        assert_eq!(times(&all), times(&named));
        let aims = |plan: &FaultPlan| -> Vec<Target> {
            plan.faults
                .iter()
                .filter_map(|fault| match fault {
                    Fault::Kill { target, .. } | Fault::Pause { target, .. } | Fault::KillOnAccept { target, .. } => {
                        Some(target.clone())
                    }
                    Fault::ServiceKill { .. } => None,
                })
                .collect()
        };
        assert!(aims(&all).iter().all(|target| *target == Target::All));
        assert!(aims(&named).iter().all(|target| *target == Target::Process("worker-1".into())));
        let drawn = aims(&random);
        assert!(drawn.contains(&Target::Sender), "a kill on acceptance hits the sender: {drawn:?}");
        let named_ones: std::collections::BTreeSet<_> =
            drawn.iter().filter(|target| matches!(target, Target::Process(_))).collect();
        assert!(named_ones.len() > 1, "several processes drawn over 9 faults: {drawn:?}");
        let service_kills = all.faults.iter().filter(|fault| matches!(fault, Fault::ServiceKill { .. })).count();
        assert_eq!(service_kills, 2);
        let without =
            draw(&scenario, 3, &NemesisOptions { service_kills: 2, ..NemesisOptions::default() }, &Targets::default());
        assert!(!without.faults.iter().any(|fault| matches!(fault, Fault::ServiceKill { .. })));
    }
}
