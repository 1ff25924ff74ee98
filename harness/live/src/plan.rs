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
}

impl Default for NemesisOptions {
    fn default() -> Self {
        NemesisOptions { kills: 2, kills_on_accept: 1, pauses: 1, pause_ms: 1_500, restart_ms: [100, 800] }
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
    },
    /// From `at_ms`, the next request the provider accepts is held, the engine is
    /// SIGKILLed, then the answer is let go (to a dead socket).
    KillOnAccept {
        /// When it is armed.
        at_ms: u64,
        /// Restart delay.
        restart_after_ms: u64,
    },
    /// SIGSTOP at `at_ms`, SIGCONT `for_ms` later.
    Pause {
        /// When.
        at_ms: u64,
        /// For how long.
        for_ms: u64,
    },
}

impl Fault {
    /// When it happens (or is armed).
    pub fn at_ms(&self) -> u64 {
        match self {
            Fault::Kill { at_ms, .. } | Fault::KillOnAccept { at_ms, .. } | Fault::Pause { at_ms, .. } => *at_ms,
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

/// Draws the plan for `scenario` and `seed`: faults spread over the fault phase (the
/// first half second is left alone so the engine can take its first requests).
pub fn draw(scenario: &Scenario, seed: u64, options: &NemesisOptions) -> FaultPlan {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6e65_6d65_7369_7300);
    let phase_ms = scenario.duration_s.max(1) * 1_000;
    let time = |rng: &mut ChaCha8Rng| rng.random_range(500.min(phase_ms - 1)..phase_ms);
    let mut faults = Vec::new();
    for _ in 0..options.kills {
        let at_ms = time(&mut rng);
        let restart_after_ms = rng.random_range(options.restart_ms[0]..=options.restart_ms[1]);
        faults.push(Fault::Kill { at_ms, restart_after_ms });
    }
    // A kill on acceptance needs a request to hold: arm it while the campaigns send.
    let (send_from, send_until) = sending_window_ms(scenario, phase_ms);
    for _ in 0..options.kills_on_accept {
        let at_ms = rng.random_range(send_from..send_until);
        let restart_after_ms = rng.random_range(options.restart_ms[0]..=options.restart_ms[1]);
        faults.push(Fault::KillOnAccept { at_ms, restart_after_ms });
    }
    for _ in 0..options.pauses {
        faults.push(Fault::Pause { at_ms: time(&mut rng), for_ms: options.pause_ms });
    }
    for event in &scenario.faults.events {
        if let FaultEvent::Crash { at_s, restart_after_s, .. } = event {
            let ms = |seconds: f64| (seconds * 1_000.0) as u64;
            faults.push(Fault::Kill { at_ms: ms(*at_s), restart_after_ms: ms(*restart_after_s) });
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
        let plan = draw(&scenario, 7, &options);
        assert_eq!(plan, draw(&scenario, 7, &options));
        assert_ne!(plan, draw(&scenario, 8, &options));
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
            let plan = draw(&scenario, seed, &options);
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
}
