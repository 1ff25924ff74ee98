//! The invariants of a live run, decided by the same independent judge as the simulator's
//! ([`smsim_judge`]), told what an outside observer of a real engine sees.
//!
//! The judge is fed, on the provider's one clock:
//!
//! * the driver's campaigns (each with the `[NAME] ` prefix the driver put at the head of
//!   its template, which is how the provider's acceptances are told apart), its operator
//!   actions and top-ups with the engine's answers;
//! * the provider's ground truth (its feed: every message received, every acceptance with
//!   the body received, every report and how the engine answered it), drained before each
//!   reading, so whatever the engine says it sent the judge has seen accepted;
//! * the engine's API readings of its campaigns, and of its tenants' charges where the
//!   profile can read them.
//!
//! Live mode has no journal: what needs the engine's messages (`attribution`, message
//! `transitions`) comes out "not checked", with the reason, never "held". `rate` is
//! measured at the provider, as messages arrive, for an account whose limit the driver
//! told the engine (its `create_account` passes `${rate_limit_json}`). `halt` and
//! `isolation` are judged at the provider's acceptances: none later than the grace after
//! the engine showed the campaign paused or cancelled, unless an action sent since may have
//! set it going; each to one of its own tenant's contacts, as the driver imported them.

use crate::profile::Profile;
use serde::Serialize;
use smsim_judge::{
    AccountSetup, Act, CampaignReading, CampaignState, Invariant, Judge, Observation, Setup, TenantSetup, Verdict,
    Violation,
};
use smsim_sim::provider::live::{AcceptanceView, TruthView};
use smsim_sim::provider::Truth;
use smsim_sim::scenario::Scenario;
use std::collections::BTreeMap;

/// What the engine said about a campaign at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Reading {
    /// Ms since the run began (the provider's clock).
    pub at_ms: u64,
    /// The engine's status string.
    pub status: String,
    /// Sent (accepted by the provider, whatever became of it).
    pub sent: u64,
    /// Failed.
    pub failed: u64,
    /// Messages in the campaign.
    pub total: u64,
    /// Progress, percent.
    pub progress: i64,
    /// Failed as `UNKNOWN_OUTCOME` (charged), when the engine says.
    pub unknown_outcome: Option<u64>,
    /// Credits charged for the campaign, when the engine says.
    pub charged: Option<i64>,
}

/// A campaign of the run and its last reading.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CampaignOutcome {
    /// Scenario name.
    pub name: String,
    /// Its tenant's scenario name.
    pub tenant: String,
    /// Contacts it was sent to.
    pub contacts: u64,
    /// The body prefix (`[NAME] `) that tells its messages apart at the provider.
    pub body_prefix: String,
    /// The engine's last answer about it.
    pub last: Reading,
    /// Messages of it the provider accepted (acceptances, duplicates included).
    pub accepted: u64,
    /// Distinct messages of it the provider accepted.
    pub accepted_distinct: u64,
}

/// A tenant of the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TenantOutcome {
    /// Scenario name.
    pub name: String,
    /// Credits charged, as the engine reports it (or the sum of its campaigns').
    pub charged: Option<i64>,
    /// Price of one segment.
    pub price_per_segment: i64,
}

/// One line of the verdict: an invariant (for `money`, per tenant) and what it came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerdictRow {
    /// The invariant.
    pub invariant: Invariant,
    /// The tenant, for per-tenant invariants.
    pub tenant: Option<String>,
    /// `held`, `broken` or `not checked`.
    pub verdict: &'static str,
    /// How many times it was checked.
    pub checks: u64,
    /// Why it was not checked.
    pub why: Option<String>,
}

impl VerdictRow {
    fn of((invariant, tenant, verdict): (Invariant, Option<String>, Verdict)) -> VerdictRow {
        let (word, checks, why) = match verdict {
            Verdict::Held(checks) => ("held", checks, None),
            Verdict::Broken => ("broken", 0, None),
            Verdict::NotChecked(why) => ("not checked", 0, Some(why)),
        };
        VerdictRow { invariant, tenant, verdict: word, checks, why }
    }
}

/// The judge of a live run, with what it takes to speak its language.
pub struct LiveJudge {
    judge: Judge,
    /// The engine's campaign status names → the design's.
    names: BTreeMap<String, String>,
    next_action: u64,
    found: Option<Violation>,
}

/// The judge's setup for `scenario` run against `profile`'s engine.
pub fn setup(scenario: &Scenario, profile: &Profile) -> Setup {
    let tenants = scenario
        .tenants
        .iter()
        .enumerate()
        .map(|(index, t)| TenantSetup {
            tenant: t.name.clone(),
            opening_credits: t.credits,
            rate_limit_per_s: t.rate_limit_per_s,
            // The numbers the driver imports for it (`isolation`, judged at acceptances).
            numbers: (0..t.contacts.count).map(|n| crate::driver::phone(index, n)).collect(),
        })
        .collect();
    let first = scenario.traffic_accounts.first();
    let price = first.map_or(0, |account| account.price_per_segment);
    // The account's limit binds the engine only if the driver told it (its create_account
    // action passes `${rate_limit_json}`); an engine that was never told is not judged by it.
    let told = profile.actions.create_account.as_ref().is_some_and(|request| {
        let told = |text: &str| text.contains("${rate_limit_json}");
        told(&request.path) || request.body.as_deref().is_some_and(told)
    });
    let accounts = vec![AccountSetup {
        account: profile.provider.account_id.clone(),
        wire: smsim_sim::world::wire_of(profile.provider.kind),
        price_per_segment: price,
        rate_limit_per_s: first.and_then(|account| account.rate_limit_per_s).filter(|_| told),
    }];
    let [fastest, slowest] = scenario.provider.latency_ms;
    Setup {
        tenants,
        accounts,
        halt_grace_ms: profile.judge.halt_grace_ms,
        forbidden_destinations: Default::default(),
        contacts: Default::default(),
        // A foreign engine's retry policy is its own: `retries` is checked only when its
        // profile states it.
        retry: profile.judge.retry,
        // Live mode reads the engine's API, not its journal.
        journal: false,
        // Its claims are not shown: messages are counted as they reach the provider.
        rate_at_provider: Some(slowest.saturating_sub(fastest)),
        // The engine's bucket capacity, as its profile states it.
        rate_strict: profile.judge.rate_burst == smsim_core::domain::rate::Burst::Strict,
    }
}

impl LiveJudge {
    /// A judge of every invariant for `scenario` against `profile`'s engine.
    pub fn new(scenario: &Scenario, profile: &Profile) -> LiveJudge {
        LiveJudge {
            judge: Judge::new(setup(scenario, profile), &[]),
            names: profile.statuses.names.clone(),
            next_action: 0,
            found: None,
        }
    }

    fn observe(&mut self, at_ms: u64, observation: Observation<'_>) {
        if self.found.is_some() {
            return;
        }
        if let Err(violation) = self.judge.observe(at_ms, observation) {
            self.found = Some(violation);
        }
    }

    /// Tells the judge what the provider saw since the last call (drains its feed).
    pub fn provider(&mut self, truth: &mut Truth) {
        if self.found.is_some() {
            truth.feed.clear();
            return;
        }
        if let Err(violation) = smsim_sim::oracle::tell_provider(&mut self.judge, truth) {
            self.found = Some(violation);
        }
    }

    /// The driver created campaign `name` of `tenant` (and will enqueue it).
    pub fn campaign_created(&mut self, at_ms: u64, name: &str, tenant: &str, account: &str, contacts: u64) {
        let marker = body_prefix(name);
        let observation = Observation::CampaignCreated {
            campaign: name,
            tenant,
            account,
            marker: Some(&marker),
            contacts: Some(contacts),
            template: None,
            starts_at: None,
        };
        self.observe(at_ms, observation);
    }

    /// The driver sends an operator action (`campaign`) or a credit change (`tenant`); the
    /// id to answer it with.
    pub fn action_sent(&mut self, at_ms: u64, act: Act, campaign: Option<&str>, tenant: Option<&str>) -> u64 {
        self.next_action += 1;
        let id = self.next_action;
        self.observe(at_ms, Observation::ActionSent { id, campaign, tenant, act });
        id
    }

    /// The engine answered action `id` with `status` (`None`: no answer came).
    pub fn action_answered(&mut self, at_ms: u64, id: u64, status: Option<u16>) {
        self.observe(at_ms, Observation::ActionAnswered { id, status: status.unwrap_or(0) });
    }

    /// The engine showed `campaign` as `reading`; its status string must name a state of
    /// the design (directly or through the profile's `[statuses] names`).
    pub fn campaign_read(&mut self, campaign: &str, reading: &Reading) -> Result<(), String> {
        let status = self.names.get(&reading.status).cloned().unwrap_or_else(|| reading.status.clone());
        let status = status.as_str();
        if CampaignState::parse(status).is_none() {
            let known: Vec<&str> = CampaignState::ALL.iter().map(|state| state.name()).collect();
            return Err(format!(
                "status `{}` is not a campaign state of the design ({}); map it in the profile's [statuses] names",
                reading.status,
                known.join(", ")
            ));
        }
        let at_ms = reading.at_ms;
        let reading = CampaignReading {
            campaign,
            status,
            counts: None,
            sent: reading.sent,
            failed: reading.failed,
            total: reading.total,
            progress: reading.progress,
            pause_reason: None,
            unknown_outcome: reading.unknown_outcome,
            completed_at: None,
        };
        self.observe(at_ms, Observation::CampaignRead(reading));
        Ok(())
    }

    /// The engine showed `tenant`'s books (charges, and its balance and reservations when
    /// the profile reads them), in answer to a reading asked for once `requested_after`
    /// credit changes had been acknowledged ([`LiveJudge::credit_changes_acknowledged`]).
    pub fn books_read(&mut self, at_ms: u64, tenant: &str, books: crate::driver::Books, requested_after: u64) {
        let crate::driver::Books { charged, balance, reserved } = books;
        let requested_after = Some(requested_after);
        self.observe(at_ms, Observation::BooksRead { tenant, balance, reserved, charged, requested_after });
    }

    /// How many credit changes the judge has been told were acknowledged: note it when a
    /// books reading is asked for, and give it with the answer ([`LiveJudge::books_read`]).
    pub fn credit_changes_acknowledged(&self) -> u64 {
        self.judge.credit_changes_acknowledged()
    }

    /// The end checks, after the heal: the first violation found, if any, and the verdicts.
    pub fn finish(&mut self, at_ms: u64) -> (Option<Violation>, Vec<VerdictRow>) {
        if self.found.is_none() {
            if let Err(violation) = self.judge.finish(at_ms) {
                self.found = Some(violation);
            }
        }
        (self.found.clone(), self.judge.verdicts().into_iter().map(VerdictRow::of).collect())
    }

    /// The first violation found so far.
    pub fn violation(&self) -> Option<&Violation> {
        self.found.as_ref()
    }
}

/// The prefix the driver puts at the head of campaign `name`'s template.
pub fn body_prefix(name: &str) -> String {
    format!("[{name}] ")
}

/// Acceptances of `campaign`'s messages at the provider: bodies that carry its prefix, at
/// their head or inside (an engine may add text of its own around the body).
pub fn acceptances_of<'a>(truth: &'a TruthView, body_prefix: &'a str) -> impl Iterator<Item = &'a AcceptanceView> {
    truth.acceptances.iter().filter(move |acceptance| acceptance.body.contains(body_prefix))
}
