//! The oracle: named invariants, checked after every simulation step and at the end.
//!
//! It keeps a shadow of every message's and campaign's status, fed by the store's
//! journal, so each step costs in proportion to what changed in it. Against that shadow
//! and the provider's ground truth it checks the safety properties (`always`) after
//! every step, and the liveness properties (`eventually`) once the faults have healed.
//! Each check can fire: the tests feed it broken histories and broken engines.

use crate::driver::DriverLog;
use crate::provider::{MessageKey, Truth};
use serde::Serialize;
use smsim_core::domain::{CampaignStatus, MessageStatus, TransitionCause, UNKNOWN_OUTCOME};
use smsim_core::store::{JournalEntry, Store};
use smsim_core::{CampaignId, MessageId, TenantId, TrafficAccountId};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

/// The invariants, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Invariant {
    /// Status counts ≤ total and sum to it; sent + failed ≤ contacts; stored = recount.
    Counters,
    /// 0 ≤ progress ≤ 100, never decreasing between operator actions.
    Progress,
    /// The provider accepted each message at most once.
    AtMostOnce,
    /// Balance ≥ 0; charges match acceptances; money conserved.
    Money,
    /// Every status change follows the lattice; terminal stays terminal.
    Transitions,
    /// Completed ⇔ nothing pending; announced once.
    Completion,
    /// Nothing is claimed after a pause or cancel committed.
    Halt,
    /// Submissions per window within the account's and tenant's limits.
    Rate,
    /// No tenant reads or changes another's; forged webhooks change nothing; no message to
    /// an opted-out or invalid number.
    Isolation,
    /// After healing: campaigns finish, reports are reflected, leases do not linger.
    Liveness,
}

impl Invariant {
    /// Every invariant.
    pub const ALL: [Invariant; 10] = [
        Invariant::Counters,
        Invariant::Progress,
        Invariant::AtMostOnce,
        Invariant::Money,
        Invariant::Transitions,
        Invariant::Completion,
        Invariant::Halt,
        Invariant::Rate,
        Invariant::Isolation,
        Invariant::Liveness,
    ];

    /// Its name in scenarios and reports.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::Counters => "counters",
            Invariant::Progress => "progress",
            Invariant::AtMostOnce => "at-most-once",
            Invariant::Money => "money",
            Invariant::Transitions => "transitions",
            Invariant::Completion => "completion",
            Invariant::Halt => "halt",
            Invariant::Rate => "rate",
            Invariant::Isolation => "isolation",
            Invariant::Liveness => "liveness",
        }
    }

    /// The invariant named `name`.
    pub fn parse(name: &str) -> Option<Invariant> {
        Invariant::ALL.into_iter().find(|invariant| invariant.name() == name)
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A broken invariant, with the evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Which.
    pub invariant: Invariant,
    /// Simulated ms at which it was found.
    pub at_ms: u64,
    /// What is wrong.
    pub message: String,
    /// The facts that show it.
    pub evidence: Vec<String>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invariant `{}` broken at {} ms: {}", self.invariant, self.at_ms, self.message)?;
        for line in &self.evidence {
            writeln!(f, "  evidence: {line}")?;
        }
        Ok(())
    }
}

/// Stores with up to this many messages are recounted after every step.
pub const RECOUNT_EVERY_STEP_UP_TO: usize = 5_000;

/// Limits the oracle checks the provider's traffic against.
#[derive(Clone, Debug, Default)]
pub struct Limits {
    /// Per engine account id (`ta_N`): submissions per second.
    pub accounts: BTreeMap<String, u32>,
    /// Per tenant: submissions per second.
    pub tenants: BTreeMap<TenantId, u32>,
    /// Maintenance interval plus slack, for lease liveness.
    pub lease_grace_ms: u64,
}

/// The oracle's state.
pub struct Oracle {
    enabled: BTreeSet<Invariant>,
    limits: Limits,
    messages: BTreeMap<MessageId, MessageStatus>,
    /// Messages now `submitting` or `unknown`: work the engine still has in hand.
    in_hand: u64,
    campaigns: BTreeMap<CampaignId, CampaignStatus>,
    completed: BTreeSet<CampaignId>,
    keys: BTreeMap<MessageKey, MessageId>,
    /// The distinct bodies of `keys`, each held once.
    bodies: BTreeSet<Arc<str>>,
    newly_charged: Vec<MessageId>,
    /// Each message's tenant and account, in one map (a million messages' worth).
    owners: BTreeMap<MessageId, (TenantId, TrafficAccountId)>,
    progress: BTreeMap<CampaignId, u8>,
    actions_seen: usize,
    reports_checked: usize,
    forged_unanswered: Vec<usize>,
    windows: BTreeMap<(String, u64), u32>,
    last_recount_ms: Option<u64>,
    pending_campaigns: BTreeSet<CampaignId>,
    pending_tenants: BTreeSet<TenantId>,
    tenant_windows: BTreeMap<(TenantId, u64), u32>,
    /// Checks run, per invariant.
    pub checks: BTreeMap<Invariant, u64>,
}

fn violation(invariant: Invariant, at_ms: u64, message: impl Into<String>, evidence: Vec<String>) -> Violation {
    Violation { invariant, at_ms, message: message.into(), evidence }
}

impl Oracle {
    /// An oracle checking `enabled` (empty: all) against `limits`.
    pub fn new(enabled: &[Invariant], limits: Limits) -> Self {
        let enabled =
            if enabled.is_empty() { Invariant::ALL.into_iter().collect() } else { enabled.iter().copied().collect() };
        Oracle {
            enabled,
            limits,
            messages: BTreeMap::new(),
            in_hand: 0,
            campaigns: BTreeMap::new(),
            completed: BTreeSet::new(),
            keys: BTreeMap::new(),
            bodies: BTreeSet::new(),
            newly_charged: Vec::new(),
            owners: BTreeMap::new(),
            progress: BTreeMap::new(),
            actions_seen: 0,
            reports_checked: 0,
            forged_unanswered: Vec::new(),
            windows: BTreeMap::new(),
            last_recount_ms: None,
            pending_campaigns: BTreeSet::new(),
            pending_tenants: BTreeSet::new(),
            tenant_windows: BTreeMap::new(),
            checks: BTreeMap::new(),
        }
    }

    fn on(&mut self, invariant: Invariant) -> bool {
        let on = self.enabled.contains(&invariant);
        if on {
            *self.checks.entry(invariant).or_default() += 1;
        }
        on
    }

    /// Whether the engine, as the journal shows it, has nothing left to do by itself: no
    /// campaign sending or scheduled, no message submitting or awaiting reconciliation.
    pub fn engine_idle(&self) -> bool {
        self.in_hand == 0
            && self
                .campaigns
                .values()
                .all(|status| !matches!(status, CampaignStatus::Sending | CampaignStatus::Scheduled))
    }

    /// The message the provider knows under `key`, if the engine created one.
    pub fn message_for(&self, key: &MessageKey) -> Option<MessageId> {
        self.keys.get(key).copied()
    }

    /// Checks one step: `journal` is what the store committed during it.
    pub fn check_step(
        &mut self,
        at_ms: u64,
        journal: &[JournalEntry],
        store: &dyn Store,
        truth: &Truth,
        driver: &DriverLog,
    ) -> Result<(), Violation> {
        let mut touched_campaigns = BTreeSet::new();
        let mut touched_tenants = BTreeSet::new();
        for entry in journal {
            self.check_entry(at_ms, entry, store, &mut touched_campaigns, &mut touched_tenants)?;
        }
        // Recounts cost in proportion to the store: every step while it is small, once a
        // simulated second beyond (a large campaign would otherwise spend its run
        // recounting), and always at the end.
        self.pending_campaigns.extend(touched_campaigns);
        self.pending_tenants.extend(touched_tenants);
        let due = self.messages.len() <= RECOUNT_EVERY_STEP_UP_TO
            || self.last_recount_ms.is_none_or(|last| at_ms >= last + 1_000);
        if due && !(self.pending_campaigns.is_empty() && self.pending_tenants.is_empty()) {
            self.last_recount_ms = Some(at_ms);
            for id in std::mem::take(&mut self.pending_campaigns) {
                self.check_campaign(at_ms, id, store, driver)?;
            }
            for tenant in std::mem::take(&mut self.pending_tenants) {
                self.check_money(at_ms, tenant, store)?;
            }
        }
        self.check_truth(at_ms, store, truth, driver)
    }

    fn check_entry(
        &mut self,
        at_ms: u64,
        entry: &JournalEntry,
        store: &dyn Store,
        touched_campaigns: &mut BTreeSet<CampaignId>,
        touched_tenants: &mut BTreeSet<TenantId>,
    ) -> Result<(), Violation> {
        match *entry {
            JournalEntry::Message { message, from, to, cause, seq, .. } => {
                touched_campaigns.insert(message.campaign);
                let known = self.messages.get(&message).copied();
                if self.on(Invariant::Transitions) {
                    let legal = match (known, from) {
                        (None, None) => matches!(to, MessageStatus::Queued | MessageStatus::Skipped),
                        (Some(held), Some(from)) => held == from && from.allows(to, cause),
                        _ => false,
                    };
                    if !legal {
                        return Err(violation(
                            Invariant::Transitions,
                            at_ms,
                            format!(
                                "{message} moved {} → {to} ({cause:?})",
                                from.map_or("nothing".to_owned(), |f| f.to_string())
                            ),
                            vec![format!(
                                "journal entry {seq}; the oracle last saw it {}",
                                known.map_or("nowhere".to_owned(), |k| k.to_string())
                            )],
                        ));
                    }
                }
                if from.is_none() {
                    if let Ok(stored) = store.message(message) {
                        let body = match self.bodies.get(stored.body.as_str()) {
                            Some(known) => known.clone(),
                            None => {
                                let body: Arc<str> = stored.body.into();
                                self.bodies.insert(body.clone());
                                body
                            }
                        };
                        self.keys.insert((stored.destination.into(), body), message);
                        self.owners.insert(message, (stored.tenant, stored.traffic_account));
                    }
                }
                if let Some(&(tenant, _)) = self.owners.get(&message) {
                    touched_tenants.insert(tenant);
                }
                if from == Some(MessageStatus::Queued) && to == MessageStatus::Submitting && self.on(Invariant::Rate) {
                    self.check_rate(at_ms, message, entry)?;
                }
                if from == Some(MessageStatus::Queued) && to == MessageStatus::Submitting && self.on(Invariant::Halt) {
                    let campaign = self.campaigns.get(&message.campaign).copied();
                    if campaign != Some(CampaignStatus::Sending) {
                        return Err(violation(
                            Invariant::Halt,
                            at_ms,
                            format!(
                                "{message} was claimed while its campaign was {}",
                                campaign.map_or("unknown".to_owned(), |c| c.to_string())
                            ),
                            vec![format!("journal entry {seq}")],
                        ));
                    }
                }
                if to.is_provider_accepted() && !from.is_some_and(MessageStatus::is_provider_accepted) {
                    self.newly_charged.push(message);
                }
                let in_hand =
                    |status: MessageStatus| matches!(status, MessageStatus::Submitting | MessageStatus::Unknown);
                if self.messages.insert(message, to).is_some_and(in_hand) {
                    self.in_hand -= 1;
                }
                if in_hand(to) {
                    self.in_hand += 1;
                }
            }
            JournalEntry::Campaign { campaign, from, to, seq, .. } => {
                touched_campaigns.insert(campaign);
                let known = self.campaigns.get(&campaign).copied().unwrap_or(CampaignStatus::Draft);
                if self.on(Invariant::Transitions) && (known != from || !from.allows(to)) {
                    return Err(violation(
                        Invariant::Transitions,
                        at_ms,
                        format!("{campaign} moved {from} → {to}"),
                        vec![format!("journal entry {seq}; last seen {known}")],
                    ));
                }
                if to == CampaignStatus::Completed && self.on(Invariant::Completion) && !self.completed.insert(campaign)
                {
                    return Err(violation(
                        Invariant::Completion,
                        at_ms,
                        format!("{campaign} announced completed twice"),
                        vec![format!("journal entry {seq}")],
                    ));
                }
                self.campaigns.insert(campaign, to);
            }
        }
        let _ = TransitionCause::Engine;
        Ok(())
    }

    /// Claims per one-second window, per account and per tenant, against the limits.
    ///
    /// The limit is enforced where messages are claimed (a token bucket of one second's
    /// burst, refilled at the rate), so that is where it is measured: in any window of one
    /// second at most burst + refill = 2 × rate claims. Arrivals at the provider are later
    /// by each submission's latency, so counting there would blame the engine for the
    /// network's jitter.
    fn check_rate(&mut self, at_ms: u64, message: MessageId, entry: &JournalEntry) -> Result<(), Violation> {
        let JournalEntry::Message { at, .. } = entry else { return Ok(()) };
        let window = at.ms_since(crate::clock::EPOCH) / 1_000;
        let owner = self.owners.get(&message).copied();
        if let Some(account) = owner.map(|(_, account)| account.to_string()) {
            let count = self.windows.entry((account.clone(), window)).or_default();
            *count += 1;
            if let Some(&limit) = self.limits.accounts.get(&account) {
                if *count > 2 * limit {
                    return Err(violation(
                        Invariant::Rate,
                        at_ms,
                        format!("{account} had {count} messages claimed in second {window}, limit {limit}/s"),
                        vec![format!("{message}")],
                    ));
                }
            }
        }
        if let Some((tenant, _)) = owner {
            let count = self.tenant_windows.entry((tenant, window)).or_default();
            *count += 1;
            if let Some(&limit) = self.limits.tenants.get(&tenant) {
                if *count > 2 * limit {
                    return Err(violation(
                        Invariant::Rate,
                        at_ms,
                        format!("{tenant} had {count} messages claimed in second {window}, limit {limit}/s"),
                        vec![format!("{message}")],
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_campaign(
        &mut self,
        at_ms: u64,
        id: CampaignId,
        store: &dyn Store,
        driver: &DriverLog,
    ) -> Result<(), Violation> {
        let Some(campaign) = store.all_campaigns().ok().and_then(|all| all.into_iter().find(|c| c.id == id)) else {
            return Ok(());
        };
        let counts = campaign.counts;
        if self.on(Invariant::Counters) {
            let recount = store.recount(id).unwrap_or_default();
            let total = recount.total();
            if counts != recount || counts.sent() + counts.failed > total || counts.total() != total {
                return Err(violation(
                    Invariant::Counters,
                    at_ms,
                    format!(
                        "{id}: stored counters differ from its messages (sent {} + failed {} for {} messages)",
                        counts.sent(),
                        counts.failed,
                        total
                    ),
                    vec![format!("stored {counts:?}"), format!("recount {recount:?}")],
                ));
            }
        }
        if self.on(Invariant::Progress) {
            let progress = campaign.progress();
            if driver.operator_actions.len() > self.actions_seen || driver.actions_in_flight > 0 {
                // An operator acted (retry-failed may lower progress): restart the baseline.
                self.actions_seen = driver.operator_actions.len();
                self.progress.clear();
            }
            let before = self.progress.insert(id, progress).unwrap_or(0);
            if progress > 100 || progress < before {
                return Err(violation(
                    Invariant::Progress,
                    at_ms,
                    format!("{id}: progress went from {before}% to {progress}%"),
                    vec![format!("counts {counts:?}")],
                ));
            }
        }
        if self.on(Invariant::Completion) && campaign.status == CampaignStatus::Completed && counts.pending() > 0 {
            return Err(violation(
                Invariant::Completion,
                at_ms,
                format!("{id} is completed with {} messages still pending", counts.pending()),
                vec![format!("queued {}, submitting {}, unknown {}", counts.queued, counts.submitting, counts.unknown)],
            ));
        }
        Ok(())
    }

    fn check_money(&mut self, at_ms: u64, tenant: TenantId, store: &dyn Store) -> Result<(), Violation> {
        if !self.on(Invariant::Money) {
            return Ok(());
        }
        let Ok(books) = store.tenant(tenant) else { return Ok(()) };
        let recount = store.ledger_recount(tenant).unwrap_or_default();
        let problem = if books.balance.get() < 0 {
            Some("the balance is negative")
        } else if books.reserved > books.balance || books.reserved.get() < 0 {
            Some("more is reserved than the balance holds")
        } else if books.balance + books.charged != books.funded {
            Some("money is not conserved: balance + charged ≠ funded")
        } else if books.charged != recount.charged {
            Some("charges differ from the cost of charged messages")
        } else if books.reserved != recount.reserved {
            Some("reservations differ from the cost of messages in flight")
        } else {
            None
        };
        match problem {
            Some(problem) => Err(violation(
                Invariant::Money,
                at_ms,
                format!("{tenant}: {problem}"),
                vec![
                    format!(
                        "balance {} reserved {} charged {} funded {}",
                        books.balance, books.reserved, books.charged, books.funded
                    ),
                    format!("recount: reserved {} charged {}", recount.reserved, recount.charged),
                ],
            )),
            None => Ok(()),
        }
    }

    fn check_truth(
        &mut self,
        at_ms: u64,
        store: &dyn Store,
        truth: &Truth,
        driver: &DriverLog,
    ) -> Result<(), Violation> {
        if self.on(Invariant::AtMostOnce) {
            if let Some((key, acceptances)) = truth.duplicated.first().and_then(|key| truth.accepted.get_key_value(key))
            {
                let message = self.keys.get(key).map_or("an unknown message".to_owned(), |id| id.to_string());
                return Err(violation(
                    Invariant::AtMostOnce,
                    at_ms,
                    format!("the provider accepted {message} {} times", acceptances.len()),
                    acceptances
                        .iter()
                        .map(|a| {
                            format!(
                                "accepted at {} ms as {} through {} (to {})",
                                a.at_ms, a.provider_id, a.account, key.0
                            )
                        })
                        .collect(),
                ));
            }
        }
        if self.on(Invariant::Isolation) {
            if let Some(breach) = driver.isolation_breaches.first() {
                return Err(violation(
                    Invariant::Isolation,
                    at_ms,
                    "a tenant reached another tenant's campaign",
                    vec![breach.clone()],
                ));
            }
            // Each report is looked at once when it is sent; a forged one is watched until
            // it is answered, so a step costs in proportion to what is new, not to every
            // report of the run.
            let sent = self.reports_checked..truth.reports.len();
            self.forged_unanswered.extend(sent.filter(|&index| truth.reports[index].forged));
            self.reports_checked = truth.reports.len();
            let mut unanswered = Vec::new();
            for index in std::mem::take(&mut self.forged_unanswered) {
                let report = &truth.reports[index];
                match report.answered {
                    Some(status) if (200..300).contains(&status) => {
                        return Err(violation(
                            Invariant::Isolation,
                            at_ms,
                            "a forged webhook was accepted",
                            vec![format!("{report:?}")],
                        ));
                    }
                    Some(_) => {}
                    None => unanswered.push(index),
                }
            }
            self.forged_unanswered = unanswered;
        }
        if self.on(Invariant::Money) {
            // Every message the engine charged as provider-accepted was accepted: checked
            // when it becomes accepted (the provider records an acceptance before it
            // answers or reports, so the truth is always there first).
            // The key is read back from the store rather than kept per message: a million
            // messages' destinations and bodies are worth not holding twice.
            for id in std::mem::take(&mut self.newly_charged) {
                let Ok(message) = store.message(id) else { continue };
                let key: MessageKey = (message.destination.into(), message.body.into());
                if !truth.accepted.contains_key(&key) {
                    return Err(violation(
                        Invariant::Money,
                        at_ms,
                        format!("{id} is charged as sent but the provider never accepted it"),
                        vec![format!("destination {}", key.0)],
                    ));
                }
            }
        }
        Ok(())
    }

    /// The end-of-run checks, after faults healed and the heal phase ran.
    pub fn check_final(
        &mut self,
        at_ms: u64,
        store: &dyn Store,
        truth: &Truth,
        opted_out_or_invalid: &BTreeSet<String>,
    ) -> Result<(), Violation> {
        if self.on(Invariant::Isolation) {
            if let Some((at, account, destination)) =
                truth.received.iter().find(|(_, _, destination)| opted_out_or_invalid.contains(destination))
            {
                return Err(violation(
                    Invariant::Isolation,
                    at_ms,
                    format!("a message went to opted-out or invalid number {destination}"),
                    vec![format!("received at {at} ms through {account}")],
                ));
            }
        }
        // A full recount at the end catches a number changed without a status change
        // (which the journal-driven step checks would not revisit).
        let never = DriverLog::default();
        for campaign in store.all_campaigns().unwrap_or_default() {
            self.check_campaign(at_ms, campaign.id, store, &never)?;
        }
        for tenant in store.tenants().unwrap_or_default() {
            self.check_money(at_ms, tenant.id, store)?;
        }
        let campaigns = store.all_campaigns().unwrap_or_default();
        if self.on(Invariant::Money) {
            // Every acceptance at the provider is charged, or settled as unknown outcome.
            for (key, acceptances) in &truth.accepted {
                let Some(id) = self.keys.get(key) else { continue };
                let Ok(message) = store.message(*id) else { continue };
                let charged = message.status.is_provider_accepted()
                    || (message.status == MessageStatus::Failed
                        && message.last_error.as_ref().is_some_and(|e| e.code == UNKNOWN_OUTCOME));
                if !charged && !message.status.is_pending() {
                    return Err(violation(
                        Invariant::Money,
                        at_ms,
                        format!("{id} was accepted by the provider but ended {} without a charge", message.status),
                        acceptances
                            .iter()
                            .map(|a| format!("accepted at {} ms as {}", a.at_ms, a.provider_id))
                            .collect(),
                    ));
                }
            }
        }
        if self.on(Invariant::Liveness) {
            for campaign in &campaigns {
                let pending = campaign.counts.pending();
                let stuck = match campaign.status {
                    CampaignStatus::Sending => true,
                    CampaignStatus::Paused => campaign.pause_reason.is_none(),
                    _ => false,
                };
                if stuck {
                    return Err(violation(
                        Invariant::Liveness,
                        at_ms,
                        format!(
                            "{} is still {} after the heal phase ({pending} messages pending)",
                            campaign.id, campaign.status
                        ),
                        vec![format!("counts {:?}", campaign.counts)],
                    ));
                }
            }
            let now = smsim_harness_epoch_plus(at_ms);
            // Each message is read once and indexed, so the report check below costs in
            // proportion to the reports, not reports × messages; messages are read in place,
            // one at a time (a million-message run is at its largest here).
            let mut settled: BTreeSet<(TrafficAccountId, String)> = BTreeSet::new();
            let mut outlived = None;
            for campaign in &campaigns {
                let _ = store.visit_messages(campaign.id, &mut |message| {
                    if let Some(lease) = &message.lease {
                        if outlived.is_none() && lease.expires_at.plus_ms(self.limits.lease_grace_ms) < now {
                            outlived = Some((message.id, lease.clone()));
                        }
                    }
                    if let (Some(provider_id), true) = (&message.provider_message_id, message.status.is_settled()) {
                        settled.insert((message.traffic_account, provider_id.clone()));
                    }
                });
                if let Some((id, lease)) = outlived.take() {
                    return Err(violation(
                        Invariant::Liveness,
                        at_ms,
                        format!("{id}'s lease outlived its expiry"),
                        vec![format!("lease {lease:?}")],
                    ));
                }
            }
            // Provider ids are unique at the provider: each names one accepted key.
            let mut accepted_as: BTreeMap<&str, &MessageKey> = BTreeMap::new();
            for (key, acceptances) in &truth.accepted {
                for acceptance in acceptances {
                    accepted_as.entry(acceptance.provider_id.as_str()).or_insert(key);
                }
            }
            for report in truth
                .reports
                .iter()
                .filter(|r| r.is_final && !r.forged && r.answered.is_some_and(|s| (200..300).contains(&s)))
            {
                let account: Option<TrafficAccountId> = report.account.parse().ok();
                let reflected = account.is_some_and(|account| settled.contains(&(account, report.provider_id.clone())));
                let Some(key) = accepted_as.get(report.provider_id.as_str()) else { continue };
                if !reflected {
                    let unknown_outcome = self
                        .keys
                        .get(*key)
                        .and_then(|id| store.message(*id).ok())
                        .is_some_and(|m| m.status == MessageStatus::Failed);
                    if !unknown_outcome {
                        return Err(violation(
                            Invariant::Liveness,
                            at_ms,
                            format!("report {} {} was accepted but never reflected", report.provider_id, report.status),
                            vec![format!("{report:?}")],
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

fn smsim_harness_epoch_plus(at_ms: u64) -> smsim_core::Timestamp {
    crate::clock::EPOCH.plus_ms(at_ms)
}
