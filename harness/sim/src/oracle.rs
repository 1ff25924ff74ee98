//! The oracle: named invariants, checked after every simulation step and at the end.
//!
//! It keeps a shadow of every message's and campaign's status, fed by the store's
//! journal, so each step costs in proportion to what changed in it. Against that shadow
//! and the provider's ground truth it checks the safety properties (`always`) after
//! every step, and the liveness properties (`eventually`) once the faults have healed.
//! Each check can fire: the tests feed it broken histories and broken engines.

use crate::driver::DriverLog;
use crate::provider::{MessageKey, SentReport, Truth};
use serde::Serialize;
use smsim_core::domain::{Campaign, CampaignStatus, Message, MessageStatus, UNKNOWN_OUTCOME};
use smsim_core::store::{JournalEntry, Store};
use smsim_core::{CampaignId, MessageId, TenantId, TrafficAccountId};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

pub use crate::invariant::Invariant;

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
    newly_charged: Vec<MessageId>,
    /// Each campaign's tenant and account, which all its messages share (they are created
    /// together, at its enqueue). Kept per campaign, not per message: a large campaign
    /// has a million messages. Nor does the oracle keep each message's provider key
    /// (destination and body): the store holds it, and the end checks read it there.
    owners: BTreeMap<CampaignId, (TenantId, TrafficAccountId)>,
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

/// A store read the oracle cannot do without. The oracle reads the store underneath the
/// engine's faulty wrapper (`World::store`, not `World::faulty_store`), so no injected
/// failure reaches it: a failed read is a bug in the store or the harness, and treating
/// it as "nothing to check" would let a run pass unchecked.
fn read<T>(result: smsim_core::store::StoreResult<T>, what: &str) -> T {
    result.unwrap_or_else(|error| panic!("the oracle could not read {what} from the store: {error}"))
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
                if from.is_none() && !self.owners.contains_key(&message.campaign) {
                    let stored = read(store.message(message), "a message the journal created");
                    self.owners.insert(message.campaign, (stored.tenant, stored.traffic_account));
                }
                if let Some(&(tenant, _)) = self.owners.get(&message.campaign) {
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
        let owner = self.owners.get(&message.campaign).copied();
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
        let campaign = read(store.all_campaigns(), "the campaigns")
            .into_iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("{id} is in the journal but not in the store"));
        let counts = campaign.counts;
        if self.on(Invariant::Counters) {
            let recount = read(store.recount(id), "a campaign's recount");
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
        let books = read(store.tenant(tenant), "a tenant's books");
        let recount = read(store.ledger_recount(tenant), "a tenant's ledger recount");
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
                let message = self
                    .message_with_key(store, key)
                    .map_or("an unknown message".to_owned(), |message| message.id.to_string());
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
                let message = read(store.message(id), "a charged message");
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
                truth.received.iter().find(|(_, _, destination)| opted_out_or_invalid.contains(&**destination))
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
        for campaign in read(store.all_campaigns(), "the campaigns") {
            self.check_campaign(at_ms, campaign.id, store, &never)?;
        }
        for tenant in read(store.tenants(), "the tenants") {
            self.check_money(at_ms, tenant.id, store)?;
        }
        let campaigns = read(store.all_campaigns(), "the campaigns");
        if self.on(Invariant::Money) {
            self.check_acceptances_charged(at_ms, store, truth, &campaigns)?;
        }
        if self.on(Invariant::Liveness) {
            check_campaigns_finished(at_ms, &campaigns)?;
            let acknowledged = AcknowledgedReports::of(truth);
            let reflected = self.check_leases(at_ms, store, &campaigns, &acknowledged)?;
            self.check_reports_reflected(at_ms, store, truth, &campaigns, &acknowledged, &reflected)?;
        }
        Ok(())
    }

    /// The first message of the store whose provider key is `key` (a violation's evidence;
    /// the oracle keeps no index of keys).
    fn message_with_key(&self, store: &dyn Store, key: &MessageKey) -> Option<Message> {
        let mut found = None;
        for &campaign in self.campaigns.keys() {
            let visited = store.visit_messages(campaign, &mut |message| {
                if found.is_none() && *message.destination == *key.0 && *message.body == *key.1 {
                    found = Some(message.clone());
                }
            });
            read(visited, "a campaign's messages");
            if found.is_some() {
                break;
            }
        }
        found
    }

    /// Every acceptance at the provider is charged, or settled as unknown outcome. Walks the
    /// store's messages and looks each one's key up in the truth: an acceptance of a
    /// message the engine never created (an unknown-id or forged report's key) has no
    /// charge to check.
    fn check_acceptances_charged(
        &self,
        at_ms: u64,
        store: &dyn Store,
        truth: &Truth,
        campaigns: &[Campaign],
    ) -> Result<(), Violation> {
        let mut uncharged = None;
        for campaign in campaigns {
            let visited = store.visit_messages(campaign.id, &mut |message| {
                if uncharged.is_some() {
                    return;
                }
                let key: MessageKey = (message.destination.as_str().into(), message.body.as_str().into());
                let Some(acceptances) = truth.accepted.get(&key) else { return };
                let charged = message.status.is_provider_accepted() || settled_as_unknown_outcome(message);
                if !charged && !message.status.is_pending() {
                    uncharged = Some(violation(
                        Invariant::Money,
                        at_ms,
                        format!(
                            "{} was accepted by the provider but ended {} without a charge",
                            message.id, message.status
                        ),
                        acceptances
                            .iter()
                            .map(|a| format!("accepted at {} ms as {}", a.at_ms, a.provider_id))
                            .collect(),
                    ));
                }
            });
            read(visited, "a campaign's messages");
            if let Some(violation) = uncharged {
                return Err(violation);
            }
        }
        Ok(())
    }

    /// No lease outlived its expiry by more than the grace; returns, for each of
    /// `acknowledged`, whether a settled message carries its account and provider id.
    fn check_leases(
        &self,
        at_ms: u64,
        store: &dyn Store,
        campaigns: &[Campaign],
        acknowledged: &AcknowledgedReports<'_>,
    ) -> Result<Vec<bool>, Violation> {
        let now = smsim_harness_epoch_plus(at_ms);
        // Messages are read in place, one at a time, and matched against the sorted
        // acknowledged reports: a million-message run holds no index of its messages here.
        let mut reflected = vec![false; acknowledged.ids.len()];
        let mut outlived = None;
        for campaign in campaigns {
            let visited = store.visit_messages(campaign.id, &mut |message| {
                if let Some(lease) = &message.lease {
                    if outlived.is_none() && lease.expires_at.plus_ms(self.limits.lease_grace_ms) < now {
                        outlived = Some((message.id, lease.clone()));
                    }
                }
                if let (Some(provider_id), true) = (&message.provider_message_id, message.status.is_settled()) {
                    if let Some(index) = acknowledged.find(message.traffic_account, provider_id) {
                        reflected[index] = true;
                    }
                }
            });
            read(visited, "a campaign's messages");
            if let Some((id, lease)) = outlived.take() {
                return Err(violation(
                    Invariant::Liveness,
                    at_ms,
                    format!("{id}'s lease outlived its expiry"),
                    vec![format!("lease {lease:?}")],
                ));
            }
        }
        Ok(reflected)
    }

    /// Every final report the engine accepted is reflected in its message.
    fn check_reports_reflected(
        &self,
        at_ms: u64,
        store: &dyn Store,
        truth: &Truth,
        campaigns: &[Campaign],
        acknowledged: &AcknowledgedReports<'_>,
        reflected: &[bool],
    ) -> Result<(), Violation> {
        let unreflected: Vec<&SentReport> = truth
            .reports
            .iter()
            .filter(|report| AcknowledgedReports::wanted(report))
            .filter(|report| {
                let account: Option<TrafficAccountId> = report.account.parse().ok();
                !account
                    .and_then(|account| acknowledged.find(account, &report.provider_id))
                    .is_some_and(|i| reflected[i])
            })
            .collect();
        if unreflected.is_empty() {
            return Ok(());
        }
        // Provider ids are unique at the provider: each names one accepted key. Only the
        // few unreflected reports' ids are looked up.
        let wanted: BTreeSet<&str> = unreflected.iter().map(|report| &*report.provider_id).collect();
        let mut accepted_as: BTreeMap<&str, &MessageKey> = BTreeMap::new();
        for (key, acceptances) in &truth.accepted {
            for acceptance in acceptances.iter().filter(|a| wanted.contains(&*a.provider_id)) {
                accepted_as.entry(&acceptance.provider_id).or_insert(key);
            }
        }
        // Whether the message of each such key (the last created, where two share one)
        // settled as failed `UNKNOWN_OUTCOME`.
        let mut unknown_outcome: BTreeMap<&MessageKey, bool> = accepted_as.values().map(|key| (*key, false)).collect();
        for campaign in campaigns {
            let visited = store.visit_messages(campaign.id, &mut |message| {
                let key: MessageKey = (message.destination.as_str().into(), message.body.as_str().into());
                if let Some(settled) = unknown_outcome.get_mut(&key) {
                    *settled = settled_as_unknown_outcome(message);
                }
            });
            read(visited, "a campaign's messages");
        }
        for report in unreflected {
            let Some(key) = accepted_as.get(&*report.provider_id) else { continue };
            // The one excuse: the message settled as failed `UNKNOWN_OUTCOME` (charged,
            // reported) before the report came; any other failure must reflect it.
            if !unknown_outcome.get(key).copied().unwrap_or(false) {
                return Err(violation(
                    Invariant::Liveness,
                    at_ms,
                    format!("report {} {} was accepted but never reflected", report.provider_id, report.status),
                    vec![format!("{report:?}")],
                ));
            }
        }
        Ok(())
    }
}

/// The final reports the engine acknowledged (2xx, not forged), by account and provider
/// id, sorted: each must end up reflected in a settled message. Borrowed from the truth,
/// so the end check of a million reports holds one small row per report.
struct AcknowledgedReports<'t> {
    ids: Vec<(TrafficAccountId, &'t str)>,
}

impl<'t> AcknowledgedReports<'t> {
    fn wanted(report: &SentReport) -> bool {
        report.is_final && !report.forged && report.answered.is_some_and(|status| (200..300).contains(&status))
    }

    fn of(truth: &'t Truth) -> Self {
        let mut ids: Vec<(TrafficAccountId, &'t str)> = truth
            .reports
            .iter()
            .filter(|report| Self::wanted(report))
            .filter_map(|report| Some((report.account.parse().ok()?, &*report.provider_id)))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        AcknowledgedReports { ids }
    }

    /// The index of (`account`, `provider_id`), if a report acknowledged it.
    fn find(&self, account: TrafficAccountId, provider_id: &str) -> Option<usize> {
        self.ids.binary_search_by(|&(known, id)| (known, id).cmp(&(account, provider_id))).ok()
    }
}

/// After the heal phase, no campaign is still sending, nor paused without a reason
/// (a pause for credits is the engine's answer, not a stall).
fn check_campaigns_finished(at_ms: u64, campaigns: &[Campaign]) -> Result<(), Violation> {
    for campaign in campaigns {
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
    Ok(())
}

/// Whether `message` settled as failed `UNKNOWN_OUTCOME`: charged, because the provider
/// may have sent it.
fn settled_as_unknown_outcome(message: &Message) -> bool {
    message.status == MessageStatus::Failed && message.last_error.as_ref().is_some_and(|e| e.code == UNKNOWN_OUTCOME)
}

fn smsim_harness_epoch_plus(at_ms: u64) -> smsim_core::Timestamp {
    crate::clock::EPOCH.plus_ms(at_ms)
}
