//! The judge: a reference model of the campaign engine, built from observations alone,
//! and the invariants decided against it.
//!
//! The model keeps, per message the engine created, the judge's own view of it: its
//! status on the judge's lattice, what it must cost (the judge's segment count × the
//! account's price), the key the provider knows it by (destination and body) and the
//! provider id the engine recorded. Per tenant it keeps its own ledger: what the driver
//! funded, and what the engine must have reserved and charged. Per campaign, the
//! operator's acknowledged actions. Against that model:
//!
//! * after every observation, the safety invariants (`transitions`, `money`, `operator`,
//!   `completion`, `counters`, `progress`, `halt`, `rate`, `at-most-once`, `isolation`,
//!   `forgery`);
//! * at the end, once faults healed, `attribution`, the end of `money` and `operator`,
//!   and `liveness`.
//!
//! Where the engine's messages are not shown (live mode has no journal), the model is
//! kept per campaign instead: the provider's acceptances are told apart by the prefix the
//! driver put at the head of each campaign's template, and counted and priced by the
//! judge; the engine's numbers and books are held against those counts.
//!
//! Messages are held compactly (a million-message run holds a million of them): keys and
//! provider ids as 64-bit FNV-1a hashes of their text, fixed forever, so the judge's
//! decisions do not depend on the process or the platform.

use crate::input::InputModel;
use crate::invariant::Invariant;
use crate::lattice::{self, CampaignState, Mover, Status};
use crate::messages::MessageTable;
use crate::observation::{Act, CampaignReading, MessageRef, MessageRow, Observation, Setup, Wire};
use crate::reports::final_status;
use crate::segments;
use crate::violation::{Verdict, Violation};
use std::collections::{BTreeMap, BTreeSet};

/// The error code of a message settled because its submission's outcome was never
/// learned (DESIGN.md, "Credits"): charged, since the provider may have sent it.
pub const UNKNOWN_OUTCOME: &str = "UNKNOWN_OUTCOME";

/// A 64-bit FNV-1a hash of `parts`, each followed by a zero byte.
fn fnv(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &byte in part.as_bytes().iter().chain(&[0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// How the provider knows a message: its destination and body.
fn key_of(destination: &str, body: &str) -> u64 {
    fnv(&[destination, body])
}

fn message_name((campaign, contact): MessageRef) -> String {
    format!("msg_{campaign}_{contact}")
}

/// What a message's status means for its tenant's money.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Money {
    /// Its cost is held: it may still be sent.
    Reserved,
    /// Its cost is spent: the provider took it, or may have (an unknown outcome).
    Charged,
    /// Nothing: it was never sent.
    Free,
}

fn money_of(status: Status, unknown_outcome: bool) -> Money {
    if status.is_pending() {
        Money::Reserved
    } else if status.is_sent() || (status == Status::Failed && unknown_outcome) {
        Money::Charged
    } else {
        Money::Free
    }
}

/// The judge's view of one message.
struct MessageModel {
    campaign: u32,
    status: Status,
    unknown_outcome: bool,
    key: u64,
    cost: i64,
    /// Hash of the provider id the engine recorded for it (0: none).
    provider_id: u64,
    /// Whether its destination is one that must never receive a message.
    forbidden: bool,
    /// When it last moved to `failed` (ms).
    failed_ms: u64,
}

/// What the provider did with one key.
#[derive(Default)]
struct KeyRecord {
    /// The engine's message with this key (the last created, should two share one).
    message: Option<MessageRef>,
    acceptances: u32,
    first_accepted_ms: u64,
    account: u32,
    /// Retryable refusals of it so far: at least as many attempts were made.
    retryable_refusals: u32,
}

/// A refusal of a whole request by the provider, as it concerns one of its messages.
#[derive(Clone, Copy, Debug)]
struct Refusal {
    at_ms: u64,
    status: u16,
    retry_after_ms: Option<u64>,
}

impl Refusal {
    /// Retryable by the design's rule ("Retries"): 408, 429 and 5xx.
    fn retryable(&self) -> bool {
        matches!(self.status, 408 | 429 | 500..=599)
    }
}

/// An operator action on a campaign, with its answer.
#[derive(Clone, Copy, Debug)]
struct Action {
    /// The driver's id of it, which its answer names.
    id: u64,
    act: Act,
    sent_ms: u64,
    answered: Option<(u64, u16)>,
}

impl Action {
    fn acknowledged_at(&self) -> Option<u64> {
        self.answered.filter(|(_, status)| (200..300).contains(status)).map(|(at, _)| at)
    }

    /// Refused: answered with a 4xx, so it changed nothing.
    fn refused(&self) -> bool {
        self.answered.is_some_and(|(_, status)| (400..500).contains(&status))
    }
}

struct CampaignModel {
    name: String,
    tenant: u32,
    account: u32,
    state: CampaignState,
    /// Its messages by the judge's status, indexed as `Status::ALL`.
    counts: [u64; 11],
    completed_ms: Option<u64>,
    actions: Vec<Action>,
    /// The engine's last reading of it.
    last_read: Option<(CampaignState, Option<String>)>,
    last_progress: Option<i64>,
    /// Retry-failed actions sent, and answered, so far (the only edge out of `failed` is
    /// theirs; each sending and each answer may lower progress).
    retries_sent: u32,
    retries_at_last_progress: u32,
    /// The prefix every body of it starts with, when the driver wrote one.
    marker: Option<String>,
    /// Its body template, when the judge holds its messages to it.
    template: Option<String>,
    /// Contacts the driver gave it, when known.
    contacts: Option<u64>,
    /// When it was scheduled to start (ms).
    starts_at: Option<u64>,
    /// When one of its messages last settled (left queued, submitting or unknown), ms.
    last_settled_ms: u64,
    /// Distinct messages of it the provider accepted, and their cost by the judge's
    /// count, and the dearest of them (told apart by `marker`; live mode).
    accepted_keys: u64,
    accepted_cost: i64,
    dearest: i64,
    /// The engine's last numbers for it: sent, failed, unknown outcome if shown.
    last_numbers: Option<(u64, u64, Option<u64>)>,
    /// When the engine first showed it paused or cancelled, with no action sent since
    /// that might set it going again (live mode's `halt`, judged at acceptances).
    halted_shown: Option<u64>,
}

impl CampaignModel {
    fn count(&self, status: Status) -> u64 {
        self.counts[status as usize]
    }

    fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn pending(&self) -> u64 {
        Status::ALL.into_iter().filter(|s| s.is_pending()).map(|s| self.count(s)).sum()
    }

    /// The acknowledged cancel, if any: when it was acknowledged.
    fn cancel_acknowledged(&self) -> Option<u64> {
        self.actions.iter().filter(|a| a.act == Act::Cancel).find_map(Action::acknowledged_at)
    }

    /// The pause in force: acknowledged, and no resume sent after it that may have taken
    /// effect (a resume the engine refused with a 4xx changed nothing).
    fn pause_in_force(&self) -> Option<u64> {
        let (index, pause) = self.actions.iter().enumerate().rev().find(|(_, a)| a.act == Act::Pause)?;
        let resumed = self.actions[index + 1..].iter().any(|a| a.act == Act::Resume && !a.refused());
        (!resumed).then(|| pause.acknowledged_at()).flatten()
    }
}

struct TenantModel {
    name: String,
    /// Opening credits plus every change the engine acknowledged.
    funded: i64,
    /// Changes sent and not acknowledged (in flight, refused with no answer, or 5xx):
    /// each may or may not have been applied.
    in_doubt: Vec<(u64, i64)>,
    /// What the engine must hold and have spent, by the judge's rules.
    reserved: i64,
    charged: i64,
    /// Whether the engine's books were ever read.
    books_read: u64,
    /// What the engine last said it charged.
    last_charged: Option<i64>,
    /// Per credit change in doubt: the least the tenant had available (by the judge's
    /// ledger) since it was sent, and whether another change was in doubt beside it.
    doubt_windows: BTreeMap<u64, (i64, bool)>,
    /// The credit changes acknowledged, each with its number among all tenants'
    /// acknowledgements ([`Judge::credit_changes_acknowledged`]) and its amount: a
    /// reading asked for before one was acknowledged may not show it.
    acknowledged: Vec<(u64, i64)>,
}

impl TenantModel {
    /// Funded and not spent or held, by the judge's ledger.
    fn available(&self) -> i64 {
        self.funded - self.reserved - self.charged
    }

    /// The amounts of the credit changes acknowledged after the first `requested_after`
    /// (none, without it).
    fn acknowledged_since(&self, requested_after: Option<u64>) -> Vec<i64> {
        let Some(after) = requested_after else { return Vec::new() };
        self.acknowledged.iter().filter(|(number, _)| *number > after).map(|(_, amount)| *amount).collect()
    }

    /// Every total the driver may have funded, given the changes in doubt, as a reading
    /// asked for once `requested_after` changes had been acknowledged may show it: the
    /// changes acknowledged since are in doubt for it too.
    fn possible_funding(&self, requested_after: Option<u64>) -> BTreeSet<i64> {
        let late = self.acknowledged_since(requested_after);
        let mut possible = BTreeSet::from([self.funded - late.iter().sum::<i64>()]);
        let in_doubt = self.in_doubt.iter().map(|(_, amount)| *amount).chain(late);
        for amount in in_doubt.take(12) {
            let more: Vec<i64> = possible.iter().map(|total| total + amount).collect();
            possible.extend(more);
        }
        possible
    }
}

struct AccountModel {
    name: String,
    wire: Wire,
    price_per_segment: i64,
    rate_limit_per_s: Option<u32>,
}

/// A report the engine answered, remembered for the end checks.
struct AnsweredReport {
    provider_id: Box<str>,
    status: Status,
    /// The error code it carried, if any.
    error_code: Option<Box<str>>,
    at_ms: u64,
}

/// The judge. Feed it with [`Judge::observe`]; end with [`Judge::finish`].
pub struct Judge {
    setup: Setup,
    enabled: BTreeSet<Invariant>,
    tenants: Vec<TenantModel>,
    tenant_rate_limits: Vec<Option<u32>>,
    accounts: Vec<AccountModel>,
    campaigns: Vec<CampaignModel>,
    campaign_index: BTreeMap<String, u32>,
    messages: MessageTable<MessageModel>,
    keys: BTreeMap<u64, KeyRecord>,
    /// (account, provider id hash) → key.
    provider_ids: BTreeMap<(u32, u64), u64>,
    /// Genuine final reports the engine acknowledged, by (account, provider id hash).
    acknowledged: BTreeMap<(u32, u64), Vec<AnsweredReport>>,
    /// Forged final reports the engine refused, by (account, provider id hash).
    refused_forgeries: BTreeMap<(u32, u64), Vec<AnsweredReport>>,
    /// Operator actions and credit changes sent, by id: (campaign or tenant index, is a
    /// credit change).
    actions: BTreeMap<u64, (u32, bool)>,
    /// Claims per (account or tenant, second).
    account_windows: BTreeMap<(u32, u64), u32>,
    /// Messages the provider received per account and second (`rate` at the provider).
    receipt_windows: BTreeMap<(u32, u64), u32>,
    tenant_windows: BTreeMap<(u32, u64), u32>,
    /// Checks run, per invariant.
    checks: BTreeMap<Invariant, u64>,
    broken: Option<Invariant>,
    /// Whether the judge is shown the engine's messages (the simulator's journal).
    sees_messages: bool,
    /// The tenants bad input was sent as (`input`).
    inputs: InputModel,
    /// Credit changes acknowledged so far, all tenants'.
    credit_acks: u64,
    /// The provider's last refusal of a key, if that is the last thing it did with it:
    /// rare, so kept apart from [`KeyRecord`], one of which every message has.
    refusals: BTreeMap<u64, Refusal>,
    /// The error code a message's row showed when a report settled it: rare, so kept
    /// apart from [`MessageModel`].
    report_errors: BTreeMap<MessageRef, Box<str>>,
}

fn violation(invariant: Invariant, at_ms: u64, message: impl Into<String>, evidence: Vec<String>) -> Violation {
    Violation::new(invariant, at_ms, message, evidence)
}

impl Judge {
    /// A judge of the run `setup` describes, deciding `enabled` (empty: every invariant).
    pub fn new(setup: Setup, enabled: &[Invariant]) -> Judge {
        let enabled =
            if enabled.is_empty() { Invariant::ALL.into_iter().collect() } else { enabled.iter().copied().collect() };
        let tenants = setup
            .tenants
            .iter()
            .map(|t| TenantModel {
                name: t.tenant.clone(),
                funded: t.opening_credits,
                in_doubt: Vec::new(),
                reserved: 0,
                charged: 0,
                books_read: 0,
                last_charged: None,
                doubt_windows: BTreeMap::new(),
                acknowledged: Vec::new(),
            })
            .collect();
        let accounts = setup
            .accounts
            .iter()
            .map(|a| AccountModel {
                name: a.account.clone(),
                wire: a.wire,
                price_per_segment: a.price_per_segment,
                rate_limit_per_s: a.rate_limit_per_s,
            })
            .collect();
        let tenant_rate_limits = setup.tenants.iter().map(|t| t.rate_limit_per_s).collect();
        Judge {
            setup,
            enabled,
            tenants,
            tenant_rate_limits,
            accounts,
            campaigns: Vec::new(),
            campaign_index: BTreeMap::new(),
            messages: MessageTable::default(),
            keys: BTreeMap::new(),
            provider_ids: BTreeMap::new(),
            acknowledged: BTreeMap::new(),
            refused_forgeries: BTreeMap::new(),
            actions: BTreeMap::new(),
            account_windows: BTreeMap::new(),
            receipt_windows: BTreeMap::new(),
            tenant_windows: BTreeMap::new(),
            checks: BTreeMap::new(),
            broken: None,
            sees_messages: false,
            inputs: InputModel::default(),
            credit_acks: 0,
            refusals: BTreeMap::new(),
            report_errors: BTreeMap::new(),
        }
    }

    fn on(&mut self, invariant: Invariant) -> bool {
        let on = self.enabled.contains(&invariant);
        if on {
            *self.checks.entry(invariant).or_default() += 1;
        }
        on
    }

    /// `input` on what the input model found, if anything.
    fn input_finding(&mut self, at_ms: u64, found: Option<crate::input::Finding>) -> Result<(), Violation> {
        if !self.on(Invariant::Input) {
            return Ok(());
        }
        let found = found.map(|(message, evidence)| violation(Invariant::Input, at_ms, message, evidence));
        self.fail_if(found)
    }

    fn fail(&mut self, found: Violation) -> Result<(), Violation> {
        self.broken = Some(found.invariant);
        Err(found)
    }

    /// Fails with `found`, if a check found something.
    fn fail_if(&mut self, found: Option<Violation>) -> Result<(), Violation> {
        found.map_or(Ok(()), |found| self.fail(found))
    }

    /// How many credit changes, all tenants', the judge has been told were acknowledged:
    /// what a books reading asked for now names as `requested_after`.
    pub fn credit_changes_acknowledged(&self) -> u64 {
        self.credit_acks
    }

    /// Checks run so far, per invariant.
    pub fn checks(&self) -> &BTreeMap<Invariant, u64> {
        &self.checks
    }

    /// Whether the engine, as the judge has seen it, has work in hand: a message pending
    /// beyond the queue, or a campaign sending or scheduled.
    pub fn engine_busy(&self) -> bool {
        self.campaigns.iter().any(|c| {
            matches!(c.state, CampaignState::Sending | CampaignState::Scheduled)
                || c.count(Status::Submitting) + c.count(Status::Unknown) > 0
        })
    }

    fn tenant(&self, name: &str) -> u32 {
        let index = self.tenants.iter().position(|t| t.name == name);
        index.unwrap_or_else(|| panic!("the judge was not told of tenant `{name}` in its setup")) as u32
    }

    fn account(&self, name: &str) -> u32 {
        let index = self.accounts.iter().position(|a| a.name == name);
        index.unwrap_or_else(|| panic!("the judge was not told of account `{name}` in its setup")) as u32
    }

    fn campaign(&self, name: &str) -> Option<u32> {
        self.campaign_index.get(name).copied()
    }

    fn known_campaign(&self, name: &str) -> u32 {
        self.campaign(name).unwrap_or_else(|| panic!("the judge saw campaign `{name}` before the driver created it"))
    }

    /// Takes one observation at `at_ms` (ms since the run began, on the run's one clock).
    pub fn observe(&mut self, at_ms: u64, observation: Observation<'_>) -> Result<(), Violation> {
        if self.broken.is_some() {
            return Ok(());
        }
        match observation {
            Observation::CampaignCreated { campaign, tenant, account, marker, contacts, template, starts_at } => {
                self.campaign_created(campaign, tenant, account, marker, contacts, template);
                if let Some(index) = self.campaign(campaign) {
                    self.campaigns[index as usize].starts_at = starts_at;
                }
                Ok(())
            }
            Observation::ActionSent { id, campaign, tenant, act } => {
                self.action_sent(at_ms, id, campaign, tenant, act);
                Ok(())
            }
            Observation::ActionAnswered { id, status } => self.action_answered(at_ms, id, status),
            Observation::CrossTenantProbe { request, answered } => self.cross_tenant_probe(at_ms, request, answered),
            Observation::ForeignAccountProbe { request, answered } => {
                self.foreign_account_probe(at_ms, request, answered)
            }
            Observation::InputSent { tenant, input, answer } => {
                let opening = self.setup.tenants.iter().find(|t| t.tenant == tenant).map_or(0, |t| t.opening_credits);
                let found = self.inputs.sent(tenant, opening, input, &answer);
                self.input_finding(at_ms, found)
            }
            Observation::InputTenantRead { tenant, contacts, campaigns } => {
                let found = self.inputs.read(tenant, contacts, campaigns);
                self.input_finding(at_ms, found)
            }
            Observation::Received { account, destination, body } => self.received(at_ms, account, destination, body),
            Observation::Refused { account, destination, body, status, retry_after_ms } => {
                self.refused(at_ms, account, destination, body, status, retry_after_ms);
                Ok(())
            }
            Observation::Accepted { account, destination, body, provider_id } => {
                self.accepted(at_ms, account, destination, body, provider_id)
            }
            Observation::ReportAnswered { account, provider_id, status, error_code, forged, answered } => {
                self.report_answered(at_ms, account, provider_id, (status, error_code), forged, answered)
            }
            Observation::MessageMoved { message, campaign, from, to, mover, row } => {
                self.sees_messages = true;
                self.message_moved(at_ms, message, campaign, from, to, mover, row)
            }
            Observation::CampaignMoved { campaign, from, to } => self.campaign_moved(at_ms, campaign, from, to),
            Observation::CampaignRead(reading) => self.campaign_read(at_ms, reading),
            Observation::BooksRead { tenant, balance, reserved, charged, requested_after } => {
                self.books_read(at_ms, tenant, (balance, reserved, charged), requested_after)
            }
        }
    }

    // --- the driver ---------------------------------------------------------------------

    fn campaign_created(
        &mut self,
        campaign: &str,
        tenant: &str,
        account: &str,
        marker: Option<&str>,
        contacts: Option<u64>,
        template: Option<&str>,
    ) {
        if self.campaign_index.contains_key(campaign) {
            return;
        }
        let (tenant, account) = (self.tenant(tenant), self.account(account));
        self.campaign_index.insert(campaign.to_owned(), self.campaigns.len() as u32);
        self.campaigns.push(CampaignModel {
            name: campaign.to_owned(),
            tenant,
            account,
            state: CampaignState::Draft,
            counts: [0; 11],
            completed_ms: None,
            actions: Vec::new(),
            last_read: None,
            last_progress: None,
            retries_sent: 0,
            retries_at_last_progress: 0,
            marker: marker.map(str::to_owned),
            template: template.map(str::to_owned),
            contacts,
            starts_at: None,
            last_settled_ms: 0,
            accepted_keys: 0,
            accepted_cost: 0,
            dearest: 0,
            last_numbers: None,
            halted_shown: None,
        });
    }

    fn action_sent(&mut self, at_ms: u64, id: u64, campaign: Option<&str>, tenant: Option<&str>, act: Act) {
        match (act, campaign, tenant) {
            (Act::Credits(amount), _, Some(tenant)) => {
                let index = self.tenant(tenant);
                let books = &mut self.tenants[index as usize];
                let overlapped = !books.in_doubt.is_empty();
                for window in books.doubt_windows.values_mut() {
                    window.1 = true;
                }
                let available = books.available();
                books.doubt_windows.insert(id, (available, overlapped));
                books.in_doubt.push((id, amount));
                self.actions.insert(id, (index, true));
                // Credits may set a campaign paused for want of them going again.
                for campaign in self.campaigns.iter_mut().filter(|campaign| campaign.tenant == index) {
                    campaign.halted_shown = None;
                }
            }
            (_, Some(campaign), _) => {
                let Some(index) = self.campaign(campaign) else { return };
                let model = &mut self.campaigns[index as usize];
                model.actions.push(Action { id, act, sent_ms: at_ms, answered: None });
                // Any action may set it going again (a resume, a retry): halt waits for
                // the engine to show it halted anew.
                model.halted_shown = None;
                if act == Act::RetryFailed {
                    model.retries_sent += 1;
                }
                self.actions.insert(id, (index, false));
            }
            _ => {}
        }
    }

    fn action_answered(&mut self, at_ms: u64, id: u64, status: u16) -> Result<(), Violation> {
        let Some(&(index, is_credit)) = self.actions.get(&id) else { return Ok(()) };
        let acknowledged = (200..300).contains(&status);
        if is_credit {
            let tenant = &mut self.tenants[index as usize];
            let Some(position) = tenant.in_doubt.iter().position(|&(action, _)| action == id) else { return Ok(()) };
            let amount = tenant.in_doubt[position].1;
            let window = tenant.doubt_windows.remove(&id);
            if status == 402 {
                if let Some((lowest, overlapped)) = window {
                    self.check_credit_refusal(at_ms, index, id, amount, lowest, overlapped)?;
                }
            }
            let tenant = &mut self.tenants[index as usize];
            // A refusal (4xx) changed nothing; no answer or a 5xx may have changed it.
            if acknowledged {
                tenant.funded += tenant.in_doubt.remove(position).1;
                self.credit_acks += 1;
                tenant.acknowledged.push((self.credit_acks, amount));
            } else if (400..500).contains(&status) {
                tenant.in_doubt.remove(position);
            }
        } else {
            let model = &mut self.campaigns[index as usize];
            // Answers may come in any order (live mode's actions run concurrently).
            if let Some(action) = model.actions.iter_mut().find(|a| a.id == id) {
                action.answered = Some((at_ms, status));
                if action.act == Act::RetryFailed {
                    // Its effect may have landed in the step its answer came back in.
                    model.retries_sent += 1;
                }
            }
        }
        Ok(())
    }

    /// `retries`, at the end: an acknowledged retry-failed put back in the queue every
    /// failure of its campaign that was failed when it was sent, except those settled as
    /// an unknown outcome (charged, and maybe sent: never again). Judged at the end, as
    /// the answer may be heard before the moves it made.
    fn check_retry_failed(&mut self, at_ms: u64) -> Result<(), Violation> {
        let acknowledged = self.campaigns.iter().enumerate().flat_map(|(index, campaign)| {
            campaign
                .actions
                .iter()
                .filter(|a| a.act == Act::RetryFailed && a.acknowledged_at().is_some())
                .map(move |a| (index as u32, a.sent_ms))
        });
        let left = acknowledged.into_iter().find_map(|(campaign, sent_ms)| {
            self.messages
                .iter()
                .find(|(_, m)| {
                    m.campaign == campaign && m.status == Status::Failed && !m.unknown_outcome && m.failed_ms < sent_ms
                })
                .map(|(&message, model)| (campaign, sent_ms, message, model.failed_ms))
        });
        let Some((campaign, sent_ms, message, failed_ms)) = left else { return Ok(()) };
        let found = violation(
            Invariant::Retries,
            at_ms,
            format!(
                "retry-failed on {} was acknowledged, but {} stayed failed",
                self.campaigns[campaign as usize].name,
                message_name(message)
            ),
            vec![format!("failed at {failed_ms} ms; retry-failed sent at {sent_ms} ms")],
        );
        self.fail(found)
    }

    /// `money`: a credit change is refused for want of credits only when the tenant could
    /// not afford it: never a top-up, and a debit only if, at some moment while it was in
    /// flight, it was more than the tenant had available by the judge's ledger (funded
    /// less held and spent). Judged where the messages are shown, with no other change in
    /// doubt beside it.
    fn check_credit_refusal(
        &mut self,
        at_ms: u64,
        tenant: u32,
        id: u64,
        amount: i64,
        lowest: i64,
        overlapped: bool,
    ) -> Result<(), Violation> {
        if !self.sees_messages || overlapped || !self.on(Invariant::Money) {
            return Ok(());
        }
        let affordable = amount > 0 || lowest >= -amount;
        if !affordable {
            return Ok(());
        }
        let name = self.tenants[tenant as usize].name.clone();
        let found = violation(
            Invariant::Money,
            at_ms,
            format!("a credit change of {amount} for {name} was refused for want of credits"),
            vec![format!("change {id}: the tenant had at least {lowest} available while it was in flight")],
        );
        self.fail(found)
    }

    /// A breach of a campaign answers with something (2xx) or reveals the campaign exists
    /// (a 4xx other than 404); no answer, or a 5xx, reveals and changes nothing.
    fn cross_tenant_probe(&mut self, at_ms: u64, request: &str, answered: u16) -> Result<(), Violation> {
        let breach = answered != 404 && answered != 0 && answered < 500;
        self.probe(at_ms, request, answered, breach, "a tenant reached another tenant's campaign")
    }

    /// A tenant's campaign on another tenant's private account is refused: any 2xx is a
    /// breach.
    fn foreign_account_probe(&mut self, at_ms: u64, request: &str, answered: u16) -> Result<(), Violation> {
        let breach = (200..300).contains(&answered);
        let what = "a tenant created a campaign on another tenant's private traffic account";
        self.probe(at_ms, request, answered, breach, what)
    }

    /// `isolation` on one probe's answer.
    fn probe(&mut self, at_ms: u64, request: &str, answered: u16, breach: bool, what: &str) -> Result<(), Violation> {
        if self.on(Invariant::Isolation) && breach {
            return self.fail(violation(
                Invariant::Isolation,
                at_ms,
                what,
                vec![format!("{request} answered {answered}")],
            ));
        }
        Ok(())
    }

    // --- the provider's ground truth ----------------------------------------------------

    fn refused(
        &mut self,
        at_ms: u64,
        account: &str,
        destination: &str,
        body: &str,
        status: u16,
        retry_after_ms: Option<u64>,
    ) {
        let account = self.account(account);
        let key = key_of(destination, body);
        let record = self.keys.entry(key).or_default();
        let refusal = Refusal { at_ms, status, retry_after_ms };
        record.account = account;
        if refusal.retryable() {
            record.retryable_refusals += 1;
        }
        self.refusals.insert(key, refusal);
    }

    /// `rate`, where it is measured at the provider: in any one-second window, an account's
    /// messages arrive at most as its bucket allows — one second's burst plus its refill
    /// (twice the rate), or one token plus its refill when strict (the rate plus one) —
    /// widened by what the network's latency spread may bring together.
    fn check_rate_at_provider(&mut self, at_ms: u64, account: &str) -> Result<(), Violation> {
        let Some(spread_ms) = self.setup.rate_at_provider else { return Ok(()) };
        let index = self.account(account);
        let Some(limit) = self.accounts[index as usize].rate_limit_per_s else { return Ok(()) };
        let second = at_ms / 1_000;
        let count = self.receipt_windows.entry((index, second)).or_default();
        *count += 1;
        let count = *count;
        let allowed = self.window_bound(limit) + (u64::from(limit) * spread_ms).div_ceil(1_000) + 1;
        if !self.on(Invariant::Rate) || u64::from(count) <= allowed {
            return Ok(());
        }
        let message = format!("the provider received {count} messages through {account} in second {second}");
        let bound = format!("limit {limit}/s: at most {allowed} in a second with a {spread_ms} ms latency spread");
        self.fail(violation(Invariant::Rate, at_ms, message, vec![bound]))
    }

    /// The most a bucket for `limit` per second lets through in one second: the burst it
    /// holds plus a second's refill.
    fn window_bound(&self, limit: u32) -> u64 {
        let burst = if self.setup.rate_strict { 1 } else { u64::from(limit) };
        burst + u64::from(limit)
    }

    fn burst_name(&self) -> &'static str {
        if self.setup.rate_strict {
            "strict"
        } else {
            "one second's"
        }
    }

    /// The campaign of the engine's message the provider knows by `key`, once created.
    fn campaign_of_key(&self, key: u64) -> Option<u32> {
        let message = self.keys.get(&key)?.message?;
        self.messages.get(&message).map(|model| model.campaign)
    }

    /// The least delay the retry policy allows after attempt `attempt` (1-based) failed:
    /// the backoff less its jitter, capped as one delay is.
    fn least_backoff_ms(&self, attempt: u32) -> Option<u64> {
        let policy = self.setup.retry?;
        let factor = u64::from(policy.multiplier).saturating_pow(attempt.saturating_sub(1).min(63));
        let backoff = policy.base_delay_ms.saturating_mul(factor).min(policy.max_delay_ms);
        Some(backoff - backoff * u64::from(policy.jitter_percent.min(100)) / 100)
    }

    /// `retries`: a message the provider refused retryably comes back no sooner than the
    /// backoff and the `Retry-After` the provider gave allow, unless the operator asked for
    /// its campaign's failures again since.
    fn check_retry_spacing(&mut self, at_ms: u64, key: u64, destination: &str) -> Result<(), Violation> {
        let Some(record) = self.keys.get(&key) else { return Ok(()) };
        let (Some(&refusal), attempts) = (self.refusals.get(&key), record.retryable_refusals) else { return Ok(()) };
        let message = record.message;
        if !refusal.retryable() {
            return Ok(());
        }
        let Some(least) = self.least_backoff_ms(attempts) else { return Ok(()) };
        let operator_retried = self.campaign_of_key(key).is_some_and(|c| {
            self.campaigns[c as usize].actions.iter().any(|a| a.act == Act::RetryFailed && a.sent_ms >= refusal.at_ms)
        });
        let wait = least.max(refusal.retry_after_ms.unwrap_or(0));
        if operator_retried || !self.on(Invariant::Retries) || at_ms >= refusal.at_ms + wait {
            return Ok(());
        }
        let name = message.map_or_else(|| format!("a message to {destination}"), message_name);
        let found = violation(
            Invariant::Retries,
            at_ms,
            format!("{name} was sent again {} ms after a {} refusal", at_ms - refusal.at_ms, refusal.status),
            vec![
                format!("refused at {} ms (retryable refusal number {attempts})", refusal.at_ms),
                match refusal.retry_after_ms {
                    Some(after) => format!("the backoff allows {least} ms at least, Retry-After {after} ms"),
                    None => format!("the backoff allows {least} ms at least"),
                },
            ],
        );
        self.fail(found)
    }

    fn received(&mut self, at_ms: u64, account: &str, destination: &str, body: Option<&str>) -> Result<(), Violation> {
        self.check_rate_at_provider(at_ms, account)?;
        if let Some(body) = body {
            let key = key_of(destination, body);
            self.check_retry_spacing(at_ms, key, destination)?;
            self.refusals.remove(&key);
        }
        // With nothing forbidden there is nothing to check: no vacuous "held".
        let any_forbidden = !self.setup.forbidden_destinations.is_empty();
        if any_forbidden && self.on(Invariant::Isolation) && self.setup.forbidden_destinations.contains(destination) {
            return self.fail(violation(
                Invariant::Isolation,
                at_ms,
                format!("a message went to opted-out or invalid number {destination}"),
                vec![format!("received at {at_ms} ms through {account}")],
            ));
        }
        Ok(())
    }

    fn accepted(
        &mut self,
        at_ms: u64,
        account: &str,
        destination: &str,
        body: &str,
        provider_id: &str,
    ) -> Result<(), Violation> {
        let account_index = self.account(account);
        let key = key_of(destination, body);
        self.provider_ids.insert((account_index, fnv(&[provider_id])), key);
        let record = self.keys.entry(key).or_default();
        record.acceptances += 1;
        if record.acceptances == 1 {
            record.first_accepted_ms = at_ms;
            record.account = account_index;
        }
        let (acceptances, first_ms, message) = (record.acceptances, record.first_accepted_ms, record.message);
        if self.on(Invariant::AtMostOnce) && acceptances > 1 {
            let name = message.map_or("a message".to_owned(), message_name);
            return self.fail(violation(
                Invariant::AtMostOnce,
                at_ms,
                format!("the provider accepted {name} {acceptances} times"),
                vec![
                    format!("first accepted at {first_ms} ms (to {destination})"),
                    format!("accepted again at {at_ms} ms as {provider_id} through {account}"),
                ],
            ));
        }
        let campaign_index = match message {
            Some(message) => self.messages[&message].campaign,
            None => match self.campaign_by_marker(body) {
                Some(index) => {
                    if acceptances == 1 {
                        let cost = segments::cost(body, self.accounts[account_index as usize].price_per_segment);
                        let campaign = &mut self.campaigns[index as usize];
                        campaign.accepted_keys += 1;
                        campaign.accepted_cost += cost;
                        campaign.dearest = campaign.dearest.max(cost);
                    }
                    index
                }
                None => return Ok(()),
            },
        };
        let what = message.map_or_else(|| format!("a message to {destination}"), message_name);
        // Where the engine's messages are not seen (live mode), `isolation` is judged at
        // acceptances: a campaign's body goes only to its own tenant's contacts.
        let tenant = self.campaigns[campaign_index as usize].tenant as usize;
        let numbers = &self.setup.tenants[tenant].numbers;
        let foreign = message.is_none() && !numbers.is_empty() && !numbers.contains(destination);
        if message.is_none() && !numbers.is_empty() && self.on(Invariant::Isolation) && foreign {
            let campaign = &self.campaigns[campaign_index as usize];
            let message = format!(
                "{what} of {} (tenant {}) was accepted, not one of the tenant's contacts",
                campaign.name, self.tenants[tenant].name
            );
            let evidence = vec![format!("accepted at {at_ms} ms as {provider_id} through {account}")];
            return self.fail(violation(Invariant::Isolation, at_ms, message, evidence));
        }
        let campaign = &self.campaigns[campaign_index as usize];
        let name = campaign.name.clone();
        let grace = self.setup.halt_grace_ms;
        let late_cancel = campaign.cancel_acknowledged().filter(|&cancelled| at_ms > cancelled + grace);
        let late_pause = campaign.pause_in_force().filter(|&paused| at_ms > paused + grace);
        let late_halt = campaign.halted_shown.filter(|&shown| at_ms > shown + grace);
        let completed_before = campaign.completed_ms.filter(|&completed| completed < at_ms);
        let starts_at = campaign.starts_at;
        // Without an operator action on the campaign there is nothing to hold it to.
        let acted_on = !campaign.actions.is_empty();
        let checks_completion = self.on(Invariant::Completion);
        let checks_operator = acted_on && self.on(Invariant::Operator);
        if let Some(starts) = starts_at.filter(|&starts| self.on(Invariant::Operator) && at_ms < starts) {
            return self.fail(violation(
                Invariant::Operator,
                at_ms,
                format!("{what} of {name} was accepted before the campaign's scheduled start"),
                vec![format!("scheduled for {starts} ms, accepted at {at_ms} ms as {provider_id}")],
            ));
        }
        if let Some(completed) = completed_before {
            if checks_completion {
                return self.fail(violation(
                    Invariant::Completion,
                    at_ms,
                    format!("{what} of {name} was accepted after {name} completed"),
                    vec![format!("completed at {completed} ms, accepted at {at_ms} ms as {provider_id}")],
                ));
            }
        }
        if let Some((action, acknowledged)) =
            late_cancel.map(|at| ("a cancel", at)).or(late_pause.map(|at| ("a pause", at)))
        {
            if checks_operator {
                return self.fail(violation(
                    Invariant::Operator,
                    at_ms,
                    format!("{what} of {name} was accepted {} ms after {action} was acknowledged", at_ms - acknowledged),
                    vec![
                        format!("{action} acknowledged at {acknowledged} ms; one lease and the reaper's slack allow {grace} ms"),
                        format!("accepted at {at_ms} ms as {provider_id} through {account}"),
                    ],
                ));
            }
        }
        // Where claims are not seen (live mode), `halt` is judged at acceptances: none
        // later than the grace after the engine itself showed the campaign paused or
        // cancelled, with nothing sent since that might set it going (a campaign paused
        // for want of credits, say, that keeps sending).
        if !self.sees_messages && self.on(Invariant::Halt) {
            if let Some(shown) = late_halt {
                return self.fail(violation(
                    Invariant::Halt,
                    at_ms,
                    format!("{what} of {name} was accepted {} ms after the engine showed it halted", at_ms - shown),
                    vec![
                        format!("shown paused or cancelled at {shown} ms, with no action sent since; one lease and the reaper's slack allow {grace} ms"),
                        format!("accepted at {at_ms} ms as {provider_id} through {account}"),
                    ],
                ));
            }
        }
        Ok(())
    }

    /// The campaign whose marker `body` carries: at its head, or anywhere in it, as an
    /// engine may put text of its own around the body it was given (a sender's name before
    /// it, an opt-out line after it). At the head wins over inside, then the longest marker,
    /// should two match.
    fn campaign_by_marker(&self, body: &str) -> Option<u32> {
        let marked = self.campaigns.iter().enumerate().filter_map(|(index, campaign)| {
            let marker = campaign.marker.as_deref()?;
            body.contains(marker).then_some((body.starts_with(marker), marker.len(), index as u32))
        });
        marked.max().map(|(_, _, index)| index)
    }

    fn report_answered(
        &mut self,
        at_ms: u64,
        account: &str,
        provider_id: &str,
        (status, error_code): (&str, Option<&str>),
        forged: bool,
        answered: Option<u16>,
    ) -> Result<(), Violation> {
        let account_index = self.account(account);
        let acknowledged = answered.is_some_and(|code| (200..300).contains(&code));
        if forged && self.on(Invariant::Forgery) && acknowledged {
            return self.fail(violation(
                Invariant::Forgery,
                at_ms,
                "a forged report was acknowledged",
                vec![format!("{status} for {provider_id} through {account}, answered {}", answered.unwrap_or(0))],
            ));
        }
        let Some(final_status) = final_status(self.accounts[account_index as usize].wire, status) else {
            return Ok(());
        };
        let report = AnsweredReport {
            provider_id: provider_id.into(),
            status: final_status,
            error_code: error_code.map(Box::from),
            at_ms,
        };
        let slot = (account_index, fnv(&[provider_id]));
        // Room for one: a message's final report comes once unless duplicated (a default
        // `Vec` would make room for four, a million times over).
        let list = if forged && answered.is_some() {
            &mut self.refused_forgeries
        } else if acknowledged {
            &mut self.acknowledged
        } else {
            return Ok(());
        };
        list.entry(slot).or_insert_with(|| Vec::with_capacity(1)).push(report);
        Ok(())
    }

    // --- the engine's history -----------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn message_moved(
        &mut self,
        at_ms: u64,
        message: MessageRef,
        campaign: &str,
        from: Option<&str>,
        to: &str,
        mover: Mover,
        row: MessageRow<'_>,
    ) -> Result<(), Violation> {
        let name = message_name(message);
        let Some(to_status) = Status::parse(to) else {
            return self.fail_transitions(at_ms, format!("{name} moved to `{to}`, a status the design does not have"));
        };
        let from_status = match from {
            None => None,
            Some(text) => match Status::parse(text) {
                Some(status) => Some(status),
                None => {
                    return self.fail_transitions(
                        at_ms,
                        format!("{name} moved from `{text}`, a status the design does not have"),
                    )
                }
            },
        };
        let campaign_index = self.known_campaign(campaign);
        let held = self.messages.get(&message).map(|m| m.status);
        if self.on(Invariant::Transitions) {
            let legal = match (held, from_status) {
                (None, None) => lattice::may_create(to_status),
                (Some(held), Some(from)) if held == from => {
                    let model = &self.messages[&message];
                    let retry_allowed = mover != Mover::OperatorRetry
                        || (self.campaigns[campaign_index as usize].retries_sent > 0 && !model.unknown_outcome);
                    lattice::may_move(from, to_status, mover) && retry_allowed
                }
                _ => false,
            };
            if !legal {
                let seen = held.map_or("nowhere".to_owned(), |s| s.to_string());
                let from_text = from.unwrap_or("nothing");
                return self.fail_transitions(
                    at_ms,
                    format!("{name} moved {from_text} → {to} ({mover:?}); the judge last saw it {seen}"),
                );
            }
        }
        let unknown_outcome = to_status == Status::Failed && row.error_code == Some(UNKNOWN_OUTCOME);
        match held {
            None => self.message_created(message, campaign_index, to_status, row),
            Some(_) => {
                let model = self.messages.get_mut(&message).expect("held");
                let before = money_of(model.status, model.unknown_outcome);
                let campaign = &mut self.campaigns[campaign_index as usize];
                if model.status.is_pending() && !to_status.is_pending() {
                    campaign.last_settled_ms = at_ms;
                }
                campaign.counts[model.status as usize] -= 1;
                campaign.counts[to_status as usize] += 1;
                model.status = to_status;
                model.unknown_outcome = unknown_outcome;
                if to_status == Status::Failed {
                    model.failed_ms = at_ms;
                }
                if to_status.is_final_report() {
                    match row.error_code {
                        Some(code) => _ = self.report_errors.insert(message, code.into()),
                        None => _ = self.report_errors.remove(&message),
                    }
                }
                let after = money_of(to_status, unknown_outcome);
                let (cost, tenant) = (model.cost, campaign.tenant);
                self.move_money(tenant, cost, before, after);
            }
        }
        self.check_message_move(at_ms, message, campaign_index, from_status, to_status, row)
    }

    fn fail_transitions(&mut self, at_ms: u64, message: String) -> Result<(), Violation> {
        if self.on(Invariant::Transitions) {
            return self.fail(violation(Invariant::Transitions, at_ms, message, vec![]));
        }
        Ok(())
    }

    fn message_created(&mut self, message: MessageRef, campaign_index: u32, status: Status, row: MessageRow<'_>) {
        let campaign = &mut self.campaigns[campaign_index as usize];
        campaign.counts[status as usize] += 1;
        let account = &self.accounts[campaign.account as usize];
        let cost = segments::cost(row.body, account.price_per_segment);
        let key = key_of(row.destination, row.body);
        let (tenant, expected) = (campaign.tenant, campaign.contacts);
        self.keys.entry(key).or_default().message = Some(message);
        self.messages.insert(
            message,
            MessageModel {
                campaign: campaign_index,
                status,
                unknown_outcome: false,
                key,
                cost,
                provider_id: 0,
                forbidden: self.setup.forbidden_destinations.contains(row.destination),
                failed_ms: 0,
            },
            expected,
        );
        self.move_money(tenant, cost, Money::Free, money_of(status, false));
    }

    fn move_money(&mut self, tenant: u32, cost: i64, before: Money, after: Money) {
        let books = &mut self.tenants[tenant as usize];
        for (state, sign) in [(before, -1), (after, 1)] {
            match state {
                Money::Reserved => books.reserved += sign * cost,
                Money::Charged => books.charged += sign * cost,
                Money::Free => {}
            }
        }
        let available = books.available();
        for window in books.doubt_windows.values_mut() {
            window.0 = window.0.min(available);
        }
    }

    fn check_message_move(
        &mut self,
        at_ms: u64,
        message: MessageRef,
        campaign_index: u32,
        from: Option<Status>,
        to: Status,
        row: MessageRow<'_>,
    ) -> Result<(), Violation> {
        let name = message_name(message);
        let key = self.messages[&message].key;
        let accepted = self.keys.get(&key).map_or(0, |record| record.acceptances);
        // Skipped means opted out or invalid (DESIGN.md, "Domain"): a message to anyone
        // else that is skipped was never sent to a customer who should have had it.
        if from.is_none() {
            self.check_content(at_ms, &name, campaign_index, row)?;
            self.check_own_contact(at_ms, &name, campaign_index, row)?;
        }
        if to == Status::Skipped && self.on(Invariant::Isolation) && !self.messages[&message].forbidden {
            return self.fail(violation(
                Invariant::Isolation,
                at_ms,
                format!("{name} was skipped, but its number is valid and opted in"),
                vec![],
            ));
        }
        if from == Some(Status::Queued) && to == Status::Submitting {
            self.check_claim(at_ms, &name, campaign_index)?;
        }
        if from == Some(Status::Submitting) && to == Status::Failed {
            self.check_given_up(at_ms, &name, key, row)?;
        }
        if to == Status::Accepted {
            if self.on(Invariant::Money) && accepted == 0 {
                return self.fail(violation(
                    Invariant::Money,
                    at_ms,
                    format!("{name} is charged as sent, but the provider never accepted it"),
                    vec![format!("to {}", row.destination)],
                ));
            }
            if let Some(provider_id) = row.provider_id {
                let account = self.campaigns[campaign_index as usize].account;
                let hash = fnv(&[provider_id]);
                self.messages.get_mut(&message).expect("held").provider_id = hash;
                let given_to = self.provider_ids.get(&(account, hash)).copied();
                if self.on(Invariant::Attribution) && given_to != Some(key) {
                    let whose = match given_to {
                        None => "an id the provider never gave through its account".to_owned(),
                        Some(_) => "an id the provider gave to another message".to_owned(),
                    };
                    return self.fail(violation(
                        Invariant::Attribution,
                        at_ms,
                        format!("{name} was recorded as accepted under {provider_id}: {whose}"),
                        vec![format!("{name} is to {}", row.destination)],
                    ));
                }
            }
        }
        let released = from.is_some_and(Status::is_pending)
            && money_of(to, self.messages[&message].unknown_outcome) == Money::Free;
        if released && accepted > 0 && self.on(Invariant::Money) {
            return self.fail(violation(
                Invariant::Money,
                at_ms,
                format!("{name} was refunded ({to}), but the provider accepted it"),
                vec![format!("to {}; released at {at_ms} ms", row.destination)],
            ));
        }
        Ok(())
    }

    /// `isolation`: a campaign's message goes to one of its own tenant's contacts.
    fn check_own_contact(
        &mut self,
        at_ms: u64,
        name: &str,
        campaign_index: u32,
        row: MessageRow<'_>,
    ) -> Result<(), Violation> {
        let tenant = self.campaigns[campaign_index as usize].tenant as usize;
        let numbers = &self.setup.tenants[tenant].numbers;
        if numbers.is_empty() || numbers.contains(row.destination) || !self.on(Invariant::Isolation) {
            return Ok(());
        }
        let found = violation(
            Invariant::Isolation,
            at_ms,
            format!(
                "{name} of tenant {} is to {}, not one of its contacts",
                self.tenants[tenant].name, row.destination
            ),
            vec![format!("campaign {}", self.campaigns[campaign_index as usize].name)],
        );
        self.fail(found)
    }

    /// `retries`: a submission the provider refused retryably fails only once the
    /// message's attempts are spent.
    fn check_given_up(&mut self, at_ms: u64, name: &str, key: u64, row: MessageRow<'_>) -> Result<(), Violation> {
        let refusal = self.refusals.get(&key).copied();
        let (Some(refusal), Some(policy), Some(attempts)) = (refusal, self.setup.retry, row.attempts) else {
            return Ok(());
        };
        // The row is read after the step: a retry-failed in it may have reset its attempts.
        let operator_retried = self.campaign_of_key(key).is_some_and(|c| self.campaigns[c as usize].retries_sent > 0);
        if !refusal.retryable() || operator_retried || !self.on(Invariant::Retries) || attempts >= policy.max_attempts {
            return Ok(());
        }
        let found = violation(
            Invariant::Retries,
            at_ms,
            format!("{name} failed after {attempts} of {} attempts, on a retryable refusal", policy.max_attempts),
            vec![format!("the provider answered {} at {} ms", refusal.status, refusal.at_ms)],
        );
        self.fail(found)
    }

    /// `content`: a message is created with its campaign's template rendered for its
    /// contact, by the judge's own renderer.
    fn check_content(
        &mut self,
        at_ms: u64,
        name: &str,
        campaign_index: u32,
        row: MessageRow<'_>,
    ) -> Result<(), Violation> {
        let Some(template) = self.campaigns[campaign_index as usize].template.as_deref() else { return Ok(()) };
        let Some(attributes) = self.setup.contacts.get(row.destination) else { return Ok(()) };
        let Some(expected) = crate::template::render(template, attributes, row.destination) else { return Ok(()) };
        if !self.on(Invariant::Content) || row.body == expected {
            return Ok(());
        }
        self.fail(violation(
            Invariant::Content,
            at_ms,
            format!("{name} to {} does not say what its campaign's template does", row.destination),
            vec![format!("the engine rendered `{}`", row.body), format!("the template renders `{expected}`")],
        ))
    }

    /// `halt` and `rate` at a claim (`queued → submitting`).
    fn check_claim(&mut self, at_ms: u64, name: &str, campaign_index: u32) -> Result<(), Violation> {
        let campaign = &self.campaigns[campaign_index as usize];
        let (state, account, tenant) = (campaign.state, campaign.account, campaign.tenant);
        let campaign_name = campaign.name.clone();
        if let Some(starts) = campaign.starts_at {
            if self.on(Invariant::Operator) && at_ms < starts {
                return self.fail(violation(
                    Invariant::Operator,
                    at_ms,
                    format!("{name} was claimed before its campaign's scheduled start"),
                    vec![format!("campaign {campaign_name} is scheduled for {starts} ms")],
                ));
            }
        }
        if self.on(Invariant::Halt) && state != CampaignState::Sending {
            return self.fail(violation(
                Invariant::Halt,
                at_ms,
                format!("{name} was claimed while its campaign was {state}"),
                vec![format!("campaign {campaign_name}")],
            ));
        }
        if !self.on(Invariant::Rate) {
            return Ok(());
        }
        // The limit is enforced where messages are claimed (a token bucket of one second's
        // burst, refilled at the rate): in any one-second window at most burst + refill =
        // twice the rate.
        let second = at_ms / 1_000;
        let account_count = self.account_windows.entry((account, second)).or_default();
        *account_count += 1;
        let account_count = *account_count;
        let tenant_count = self.tenant_windows.entry((tenant, second)).or_default();
        *tenant_count += 1;
        let tenant_count = *tenant_count;
        let limits = [
            (
                self.accounts[account as usize].rate_limit_per_s,
                account_count,
                self.accounts[account as usize].name.clone(),
            ),
            (self.tenant_rate_limits[tenant as usize], tenant_count, self.tenants[tenant as usize].name.clone()),
        ];
        for (limit, count, who) in limits {
            if let Some(limit) = limit.filter(|&limit| u64::from(count) > self.window_bound(limit)) {
                let message = format!("{who} had {count} messages claimed in second {second}, limit {limit}/s");
                let bound = format!("at most {} in a second ({} burst)", self.window_bound(limit), self.burst_name());
                return self.fail(violation(Invariant::Rate, at_ms, message, vec![name.to_owned(), bound]));
            }
        }
        Ok(())
    }

    fn campaign_moved(&mut self, at_ms: u64, campaign: &str, from: &str, to: &str) -> Result<(), Violation> {
        let index = self.known_campaign(campaign);
        let (Some(from_state), Some(to_state)) = (CampaignState::parse(from), CampaignState::parse(to)) else {
            return self
                .fail_transitions(at_ms, format!("{campaign} moved {from} → {to}: a state the design does not have"));
        };
        let held = self.campaigns[index as usize].state;
        if self.on(Invariant::Transitions) && (held != from_state || !lattice::campaign_may_move(from_state, to_state))
        {
            return self
                .fail_transitions(at_ms, format!("{campaign} moved {from} → {to}; the judge last saw it {held}"));
        }
        let model = &mut self.campaigns[index as usize];
        model.state = to_state;
        if to_state != CampaignState::Completed {
            return Ok(());
        }
        model.completed_ms = Some(at_ms);
        let (pending, paused) = (model.pending(), model.pause_in_force());
        let counts = describe_counts(model);
        if self.on(Invariant::Completion) && pending > 0 {
            return self.fail(violation(
                Invariant::Completion,
                at_ms,
                format!("{campaign} completed with {pending} messages still pending"),
                vec![counts],
            ));
        }
        if let Some(paused) = paused.filter(|_| self.on(Invariant::Operator)) {
            return self.fail(violation(
                Invariant::Operator,
                at_ms,
                format!("{campaign} completed while paused by the operator"),
                vec![format!("pause acknowledged at {paused} ms; no resume sent since")],
            ));
        }
        Ok(())
    }

    // --- the engine's reads -------------------------------------------------------------

    fn campaign_read(&mut self, at_ms: u64, reading: CampaignReading<'_>) -> Result<(), Violation> {
        let Some(index) = self.campaign(reading.campaign) else { return Ok(()) };
        let name = reading.campaign;
        let fact = format!(
            "{name} at {at_ms} ms: {}, sent {}, failed {}, total {}, progress {}",
            reading.status, reading.sent, reading.failed, reading.total, reading.progress
        );
        let Some(state) = CampaignState::parse(reading.status) else {
            return self.fail_transitions(
                at_ms,
                format!("{name} shows status `{}`, which the design does not have", reading.status),
            );
        };
        // Where the journal shows the campaign's moves, a reading comes after the moves
        // before it: the status shown is the one the journal last moved it to.
        let journaled = self.setup.journal.then_some(self.campaigns[index as usize].state);
        if let Some(journaled) = journaled.filter(|_| self.on(Invariant::Transitions)) {
            if journaled != state {
                let message = format!("{name} is shown {state}, but its journal last moved it to {journaled}");
                return self.fail(violation(Invariant::Transitions, at_ms, message, vec![fact]));
            }
        }
        if let Some((last, _)) = self.campaigns[index as usize].last_read {
            if self.on(Invariant::Transitions) && !lattice::campaign_may_reach(last, state) {
                return self.fail_transitions(at_ms, format!("{name} was shown {last}, then {state}"));
            }
        }
        self.campaigns[index as usize].last_read = Some((state, reading.pause_reason.map(str::to_owned)));
        let halted_shown = &mut self.campaigns[index as usize].halted_shown;
        match state {
            CampaignState::Paused | CampaignState::Cancelled => {
                halted_shown.get_or_insert(at_ms);
            }
            _ => *halted_shown = None,
        }
        if self.on(Invariant::Counters) {
            if let Some(problem) = self.counters_problem(index, &reading) {
                return self.fail(violation(Invariant::Counters, at_ms, format!("{name}: {problem}"), vec![fact]));
            }
        }
        if self.on(Invariant::Completion) && state == CampaignState::Completed {
            let shown_pending: u64 = reading
                .counts
                .unwrap_or(&[])
                .iter()
                .filter(|(status, _)| Status::parse(status).is_some_and(Status::is_pending))
                .map(|(_, n)| n)
                .sum();
            let pending = if self.sees_messages { self.campaigns[index as usize].pending() } else { 0 };
            if shown_pending + pending > 0 {
                let message =
                    format!("{name} is shown completed with {} messages still pending", shown_pending.max(pending));
                return self.fail(violation(Invariant::Completion, at_ms, message, vec![fact]));
            }
        }
        if let Some(problem) =
            self.completed_at_problem(index, state, &reading).filter(|_| self.on(Invariant::Completion))
        {
            return self.fail(violation(Invariant::Completion, at_ms, format!("{name}: {problem}"), vec![fact]));
        }
        if !self.sees_messages && state == CampaignState::Completed {
            if self.on(Invariant::Completion) {
                if let Some(problem) = self.completed_reading_problem(&reading) {
                    let message = format!("{name} is shown completed, but {problem}");
                    return self.fail(violation(Invariant::Completion, at_ms, message, vec![fact]));
                }
            }
            self.campaigns[index as usize].completed_ms.get_or_insert(at_ms);
        }
        self.campaigns[index as usize].last_numbers = Some((reading.sent, reading.failed, reading.unknown_outcome));
        if self.on(Invariant::Progress) {
            if let Some(problem) = self.progress_problem(index, &reading) {
                return self.fail(violation(Invariant::Progress, at_ms, format!("{name}: {problem}"), vec![fact]));
            }
        }
        Ok(())
    }

    /// `completion`: only a completed campaign shows a completion time, and it is no
    /// earlier than the last settlement of its messages the judge saw.
    fn completed_at_problem(&self, index: u32, state: CampaignState, reading: &CampaignReading<'_>) -> Option<String> {
        let completed_at = reading.completed_at?;
        let last_settled = self.campaigns[index as usize].last_settled_ms;
        if state != CampaignState::Completed {
            return Some(format!("it is {state}, but shows a completion time ({completed_at} ms)"));
        }
        (self.sees_messages && completed_at < last_settled).then(|| {
            format!("it shows completion at {completed_at} ms, before its last message settled at {last_settled} ms")
        })
    }

    /// A completed campaign, read without its messages: everything settled, by its own
    /// numbers (with no number skipped, sent and failed must cover every message).
    fn completed_reading_problem(&self, reading: &CampaignReading<'_>) -> Option<String> {
        if reading.progress != 100 {
            return Some(format!("its progress is {}%", reading.progress));
        }
        let none_skipped = reading.counts.is_none() && self.setup.forbidden_destinations.is_empty();
        (none_skipped && reading.sent + reading.failed != reading.total).then(|| {
            format!(
                "sent {} + failed {} leaves messages of its {} unsettled",
                reading.sent, reading.failed, reading.total
            )
        })
    }

    fn counters_problem(&self, index: u32, reading: &CampaignReading<'_>) -> Option<String> {
        if reading.sent + reading.failed > reading.total {
            return Some(format!(
                "sent {} + failed {} exceeds its {} messages",
                reading.sent, reading.failed, reading.total
            ));
        }
        let model = &self.campaigns[index as usize];
        if let Some(counts) = reading.counts {
            let sum: u64 = counts.iter().map(|(_, n)| n).sum();
            if sum != reading.total {
                return Some(format!("its counts sum to {sum}, not its total {}", reading.total));
            }
            if let Some((status, _)) = counts.iter().find(|(status, _)| Status::parse(status).is_none()) {
                return Some(format!("it counts messages in `{status}`, a status the design does not have"));
            }
        }
        if let Some(contacts) = model.contacts.filter(|&contacts| reading.total > contacts) {
            return Some(format!("it shows {} messages for {contacts} contacts", reading.total));
        }
        if !self.sees_messages {
            // The provider's acceptances were told before this reading: whatever the engine
            // counts as sent, the provider took first.
            if model.marker.is_some() && reading.sent > model.accepted_keys {
                return Some(format!(
                    "it shows {} sent, but the provider accepted only {} of its messages",
                    reading.sent, model.accepted_keys
                ));
            }
            return None;
        }
        let sent: u64 = Status::ALL.into_iter().filter(|s| s.is_sent()).map(|s| model.count(s)).sum();
        let (failed, total) = (model.count(Status::Failed), model.total());
        if (reading.sent, reading.failed, reading.total) != (sent, failed, total) {
            return Some(format!(
                "it shows sent {}, failed {}, total {}; its messages say {sent}, {failed}, {total}",
                reading.sent, reading.failed, reading.total
            ));
        }
        let counts = reading.counts?;
        for status in Status::ALL {
            let shown = counts.iter().find(|(name, _)| *name == status.name()).map_or(0, |(_, n)| *n);
            if shown != model.count(status) {
                return Some(format!("it shows {shown} {status}; its messages say {}", model.count(status)));
            }
        }
        None
    }

    fn progress_problem(&mut self, index: u32, reading: &CampaignReading<'_>) -> Option<String> {
        let sees_messages = self.sees_messages;
        let model = &mut self.campaigns[index as usize];
        if !(0..=100).contains(&reading.progress) {
            return Some(format!("progress {}%", reading.progress));
        }
        if sees_messages {
            let total = model.total();
            let expected = ((total - model.pending()) * 100).checked_div(total).unwrap_or(0) as i64;
            if reading.progress != expected {
                return Some(format!("progress {}%, but its messages say {expected}%", reading.progress));
            }
        }
        // Only retry-failed may lower progress: it puts settled messages back in the queue,
        // at any time between its sending and its answer (or ever after, when no answer
        // came: it may still arrive).
        let in_doubt = model
            .actions
            .iter()
            .any(|a| a.act == Act::RetryFailed && a.answered.is_none_or(|(_, status)| status == 0 || status >= 500));
        let retried = model.retries_sent != model.retries_at_last_progress || in_doubt;
        let before = model.last_progress.replace(reading.progress);
        model.retries_at_last_progress = model.retries_sent;
        match before {
            Some(before) if reading.progress < before && !retried => {
                Some(format!("progress went from {before}% to {}% with no retry-failed", reading.progress))
            }
            _ => None,
        }
    }

    /// The engine showed `tenant`'s books: its balance and reservations when it shows
    /// them, and its charges, in a reading asked for once `requested_after` credit changes
    /// had been acknowledged.
    fn books_read(
        &mut self,
        at_ms: u64,
        tenant: &str,
        (balance, reserved, charged): (Option<i64>, Option<i64>, i64),
        requested_after: Option<u64>,
    ) -> Result<(), Violation> {
        let index = self.tenant(tenant) as usize;
        self.tenants[index].books_read += 1;
        self.tenants[index].last_charged = Some(charged);
        if !self.on(Invariant::Money) {
            return Ok(());
        }
        let books = &self.tenants[index];
        let possible = books.possible_funding(requested_after);
        let unknown = |value: Option<i64>| value.map_or("?".into(), |v| v.to_string());
        let shown = format!("shown: balance {}, reserved {}, charged {charged}", unknown(balance), unknown(reserved));
        let most = possible.iter().max().copied().unwrap_or(books.funded);
        let model = format!(
            "the judge: funded {} ({} changes in doubt, {} acknowledged after the reading was asked for), reserved {}, \
             charged {}",
            books.funded,
            books.in_doubt.len(),
            books.acknowledged_since(requested_after).len(),
            books.reserved,
            books.charged
        );
        let problem = if charged < 0 {
            Some("the charges are negative".to_owned())
        } else if charged > most {
            Some(format!("charged {charged}, more than the driver ever funded ({most})"))
        } else if balance.is_some_and(|balance| balance < 0) {
            Some("the balance is negative".to_owned())
        } else if reserved.is_some_and(|reserved| reserved < 0 || balance.is_some_and(|balance| reserved > balance)) {
            Some("more is reserved than the balance holds".to_owned())
        } else if let Some(sum) = balance.map(|balance| balance + charged).filter(|sum| !possible.contains(sum)) {
            Some(format!("balance + charged = {sum}, but the driver funded {}", books.funded))
        } else if self.sees_messages && charged != books.charged {
            Some(format!("charged {charged}, but its messages' prices say {}", books.charged))
        } else if self.sees_messages && reserved.is_some_and(|reserved| reserved != books.reserved) {
            Some(format!("reserved {}, but its messages' prices say {}", reserved.unwrap_or(0), books.reserved))
        } else {
            None
        };
        match problem {
            Some(problem) => {
                self.fail(violation(Invariant::Money, at_ms, format!("{tenant}: {problem}"), vec![shown, model]))
            }
            None => Ok(()),
        }
    }

    // --- the end ------------------------------------------------------------------------

    /// The end-of-run checks, once faults healed and the engine had its time: every
    /// acceptance charged, every acknowledged report on its message, every operator
    /// action honoured, every campaign finished. Feed the engine's last reads first.
    pub fn finish(&mut self, at_ms: u64) -> Result<(), Violation> {
        if self.broken.is_some() {
            return Ok(());
        }
        // What needs the engine's messages is judged only where they were shown.
        let sees = self.sees_messages;
        if sees && self.on(Invariant::Money) {
            self.check_acceptances_charged(at_ms)?;
        }
        if sees && self.on(Invariant::Attribution) {
            self.check_attribution(at_ms)?;
        }
        if sees && self.on(Invariant::Forgery) {
            self.check_forgeries_changed_nothing(at_ms)?;
        }
        let retried = self.campaigns.iter().any(|c| c.actions.iter().any(|a| a.act == Act::RetryFailed));
        if sees && retried && self.on(Invariant::Retries) {
            self.check_retry_failed(at_ms)?;
        }
        let acted_on = self.campaigns.iter().any(|c| !c.actions.is_empty());
        if acted_on && self.on(Invariant::Operator) {
            self.check_operator_end(at_ms)?;
        }
        if self.on(Invariant::Liveness) {
            self.check_campaigns_finished(at_ms)?;
        }
        let read_marked = self.campaigns.iter().any(|c| c.marker.is_some() && c.last_numbers.is_some());
        if !sees && read_marked && self.on(Invariant::Counters) {
            self.check_acceptances_counted(at_ms)?;
        }
        let charges_read = self.tenants.iter().any(|t| t.last_charged.is_some());
        if !sees && charges_read && self.on(Invariant::Money) {
            self.check_charges_against_acceptances(at_ms)?;
        }
        Ok(())
    }

    /// Without the messages: every message of a campaign the provider accepted is counted
    /// sent, or among those settled as unknown outcome (or failed, when the engine does not
    /// tell the unknown ones apart).
    fn check_acceptances_counted(&mut self, at_ms: u64) -> Result<(), Violation> {
        let uncounted = self.campaigns.iter().filter(|c| c.marker.is_some()).find_map(|campaign| {
            let (sent, failed, unknown) = campaign.last_numbers?;
            let may_have_gone = unknown.unwrap_or(failed);
            (campaign.accepted_keys > sent + may_have_gone).then(|| {
                violation(
                    Invariant::Counters,
                    at_ms,
                    format!(
                        "the provider accepted {} messages of {}, but it shows {sent} sent",
                        campaign.accepted_keys, campaign.name
                    ),
                    vec![match unknown {
                        Some(unknown) => format!("{unknown} settled as an unknown outcome"),
                        None => format!("{failed} failed (unknown outcomes not shown apart)"),
                    }],
                )
            })
        });
        self.fail_if(uncounted)
    }

    /// Without the messages: each tenant's charges, as last read, are the judge's price of
    /// what the provider accepted for it, plus at most the dearest such message for each
    /// one settled as an unknown outcome (which the provider may never have received).
    fn check_charges_against_acceptances(&mut self, at_ms: u64) -> Result<(), Violation> {
        let mut found = None;
        for (index, tenant) in self.tenants.iter().enumerate() {
            let Some(charged) = tenant.last_charged else { continue };
            let mine = self.campaigns.iter().filter(|c| c.tenant == index as u32 && c.marker.is_some());
            let (mut low, mut in_doubt, mut dearest) = (0, 0, 0);
            for campaign in mine {
                low += campaign.accepted_cost;
                dearest = dearest.max(campaign.dearest);
                let (_, failed, unknown) = campaign.last_numbers.unwrap_or_default();
                in_doubt += unknown.unwrap_or(failed) as i64;
                let price = self.accounts[campaign.account as usize].price_per_segment;
                dearest = dearest.max(price);
            }
            let high = low + in_doubt * dearest;
            if !(low..=high).contains(&charged) {
                found = Some(violation(
                    Invariant::Money,
                    at_ms,
                    format!("{}: charged {charged}, but what the provider accepted costs {low}", tenant.name),
                    vec![format!(
                        "the judge's price: {low} ≤ charged ≤ {high} ({in_doubt} settled as unknown, {dearest} the dearest message)"
                    )],
                ));
                break;
            }
        }
        self.fail_if(found)
    }

    /// Every message the provider accepted is charged (or still pending).
    fn check_acceptances_charged(&mut self, at_ms: u64) -> Result<(), Violation> {
        let uncharged = self.messages.iter().find(|(_, m)| {
            let accepted = self.keys.get(&m.key).is_some_and(|record| record.acceptances > 0);
            accepted && money_of(m.status, m.unknown_outcome) == Money::Free
        });
        if let Some((&message, model)) = uncharged {
            let record = &self.keys[&model.key];
            let found = violation(
                Invariant::Money,
                at_ms,
                format!(
                    "{} was accepted by the provider but ended {} without a charge",
                    message_name(message),
                    model.status
                ),
                vec![format!("accepted at {} ms", record.first_accepted_ms)],
            );
            return self.fail(found);
        }
        Ok(())
    }

    /// The message the provider accepted under `slot`'s id, if the engine created it.
    fn message_of(&self, slot: (u32, u64)) -> Option<(MessageRef, &MessageModel)> {
        let key = self.provider_ids.get(&slot)?;
        let message = self.keys.get(key)?.message?;
        Some((message, &self.messages[&message]))
    }

    /// Every acknowledged final report is reflected on the message the provider accepted
    /// under its id: the message ends with the report's status and, if the report carried
    /// an error code, with that code as its last error (DESIGN.md, "Domain": a message keeps
    /// its last error, code and retryable; the provider's report is the last word on why it
    /// was not delivered).
    fn check_attribution(&mut self, at_ms: u64) -> Result<(), Violation> {
        let mut found = None;
        for (&slot, reports) in &self.acknowledged {
            let Some((message, model)) = self.message_of(slot) else { continue };
            let statuses: Vec<Status> = reports.iter().map(|r| r.status).collect();
            // The one excuse: the message settled as an unknown outcome (terminal, charged)
            // before the report could be matched to it.
            let reflected = statuses.contains(&model.status) && (model.provider_id == 0 || model.provider_id == slot.1);
            if !reflected && !model.unknown_outcome {
                let report = &reports[0];
                found = Some(violation(
                    Invariant::Attribution,
                    at_ms,
                    format!(
                        "report {} {} was acknowledged at {} ms, but {} ended {}",
                        report.provider_id,
                        report.status,
                        report.at_ms,
                        message_name(message),
                        model.status
                    ),
                    vec![format!("acknowledged final statuses for {}: {statuses:?}", report.provider_id)],
                ));
                break;
            }
            if reflected {
                if let Some(found_here) = self.error_problem(at_ms, message, model, reports) {
                    found = Some(found_here);
                    break;
                }
            }
        }
        self.fail_if(found)
    }

    /// A message a report settled records the error code that report carried: of the
    /// acknowledged reports with the status it ended in, those that carried a code name
    /// the codes it may show (a report that carried none leaves its earlier error as it
    /// was, so proves nothing).
    fn error_problem(
        &self,
        at_ms: u64,
        message: MessageRef,
        model: &MessageModel,
        reports: &[AnsweredReport],
    ) -> Option<Violation> {
        let carried: Vec<&str> =
            reports.iter().filter(|r| r.status == model.status).filter_map(|r| r.error_code.as_deref()).collect();
        let recorded = self.report_errors.get(&message).map(|code| &**code);
        if carried.is_empty() || recorded.is_some_and(|code| carried.contains(&code)) {
            return None;
        }
        let report = reports.iter().find(|r| r.status == model.status && r.error_code.is_some())?;
        Some(violation(
            Invariant::Attribution,
            at_ms,
            format!(
                "report {} {} carried error {}, but {} ended {} with error {}",
                report.provider_id,
                report.status,
                carried[0],
                message_name(message),
                model.status,
                recorded.unwrap_or("none"),
            ),
            vec![format!("acknowledged at {} ms; codes the reports carried: {carried:?}", report.at_ms)],
        ))
    }

    fn check_forgeries_changed_nothing(&mut self, at_ms: u64) -> Result<(), Violation> {
        let mut found = None;
        for (&slot, forgeries) in &self.refused_forgeries {
            let Some((message, model)) = self.message_of(slot) else { continue };
            let genuine: Vec<Status> = self
                .acknowledged
                .get(&slot)
                .map(|reports| reports.iter().map(|r| r.status).collect())
                .unwrap_or_default();
            if let Some(forgery) = forgeries.iter().find(|f| f.status == model.status && !genuine.contains(&f.status)) {
                found = Some(violation(
                    Invariant::Forgery,
                    at_ms,
                    format!("{} ended {}, as only a refused forged report said", message_name(message), model.status),
                    vec![format!(
                        "forged {} for {} at {} ms; genuine reports said {genuine:?}",
                        forgery.status, forgery.provider_id, forgery.at_ms
                    )],
                ));
                break;
            }
        }
        self.fail_if(found)
    }

    /// The state the engine ended a campaign in: its journal's, else its last reading.
    fn end_state(campaign: &CampaignModel, sees_messages: bool) -> Option<CampaignState> {
        if sees_messages {
            Some(campaign.state)
        } else {
            campaign.last_read.as_ref().map(|(state, _)| *state)
        }
    }

    fn check_operator_end(&mut self, at_ms: u64) -> Result<(), Violation> {
        let mut found = None;
        for campaign in &self.campaigns {
            let Some(state) = Judge::end_state(campaign, self.sees_messages) else { continue };
            let name = &campaign.name;
            if let Some(cancelled) = campaign.cancel_acknowledged() {
                if state != CampaignState::Cancelled {
                    found = Some(violation(
                        Invariant::Operator,
                        at_ms,
                        format!("{name} ended {state}, though a cancel was acknowledged at {cancelled} ms"),
                        vec![],
                    ));
                    break;
                }
                continue;
            }
            let last = campaign.actions.iter().rev().find(|a| matches!(a.act, Act::Pause | Act::Resume));
            let Some(last) = last else { continue };
            let paused_by_engine = campaign.last_read.as_ref().is_some_and(|(_, reason)| reason.is_some());
            let problem = match (last.act, last.acknowledged_at(), state) {
                (Act::Pause, Some(_), CampaignState::Completed) => Some("completed, though paused by the operator"),
                (Act::Resume, Some(_), CampaignState::Paused) if !paused_by_engine => {
                    Some("still paused, though a resume was acknowledged")
                }
                (Act::Resume, Some(_), CampaignState::Sending) => {
                    Some("still sending, though a resume was acknowledged")
                }
                _ => None,
            };
            if let Some(problem) = problem {
                found = Some(violation(
                    Invariant::Operator,
                    at_ms,
                    format!("{name} ended {state}: {problem}"),
                    vec![format!("last pause or resume sent at {} ms, answered {:?}", last.sent_ms, last.answered)],
                ));
                break;
            }
        }
        self.fail_if(found)
    }

    /// No campaign still sending, nor paused without a reason the engine gave.
    fn check_campaigns_finished(&mut self, at_ms: u64) -> Result<(), Violation> {
        let mut found = None;
        for campaign in &self.campaigns {
            let Some(state) = Judge::end_state(campaign, self.sees_messages) else { continue };
            let paused_by_engine = campaign.last_read.as_ref().is_some_and(|(_, reason)| reason.is_some());
            let paused_by_operator = campaign.pause_in_force().is_some();
            let stuck = match state {
                CampaignState::Sending => true,
                CampaignState::Paused => !paused_by_engine && !paused_by_operator,
                _ => false,
            };
            if stuck {
                found = Some(violation(
                    Invariant::Liveness,
                    at_ms,
                    format!(
                        "{} is still {state} after the heal phase ({} messages pending)",
                        campaign.name,
                        campaign.pending()
                    ),
                    vec![describe_counts(campaign)],
                ));
                break;
            }
        }
        self.fail_if(found)
    }

    /// What each invariant came to: per tenant for `money` (a tenant whose books were
    /// never shown is "not checked"), once for every other.
    pub fn verdicts(&self) -> Vec<(Invariant, Option<String>, Verdict)> {
        let mut verdicts = Vec::new();
        for invariant in Invariant::ALL {
            let checks = self.checks.get(&invariant).copied().unwrap_or(0);
            let verdict = if !self.enabled.contains(&invariant) {
                Verdict::NotChecked("not asked for".into())
            } else if self.broken == Some(invariant) {
                Verdict::Broken
            } else if checks == 0 && self.broken.is_some() {
                Verdict::NotChecked("judging stopped at the first violation".into())
            } else if checks == 0 {
                Verdict::NotChecked(self.unobserved(invariant).into())
            } else {
                Verdict::Held(checks)
            };
            if invariant == Invariant::Money && verdict != Verdict::Broken {
                for tenant in &self.tenants {
                    let verdict = match (&verdict, tenant.books_read) {
                        (Verdict::Held(_), 0) => {
                            Verdict::NotChecked("the engine's books for it were never read".into())
                        }
                        (Verdict::Held(_), reads) => Verdict::Held(reads),
                        (other, _) => other.clone(),
                    };
                    verdicts.push((invariant, Some(tenant.name.clone()), verdict));
                }
                continue;
            }
            verdicts.push((invariant, None, verdict));
        }
        verdicts
    }

    fn unobserved(&self, invariant: Invariant) -> &'static str {
        match invariant {
            Invariant::Transitions => "no status change or reading was observed",
            Invariant::Rate if self.setup.rate_at_provider.is_some() => {
                "no account with a rate limit the engine was told of received a message"
            }
            Invariant::Halt if !self.sees_messages => "no acceptance was observed",
            Invariant::Halt | Invariant::Rate => "the engine's claims are not observable",
            Invariant::Money => "no tenant's books were read",
            Invariant::Attribution if !self.sees_messages => {
                "needs the engine's messages, to see which one each report landed on"
            }
            Invariant::Attribution => "no final report was acknowledged",
            Invariant::Operator => "no operator action or acceptance to judge",
            Invariant::Content => "the judge was not given the campaigns' templates and the contacts",
            Invariant::Retries if self.setup.retry.is_none() => "the engine's retry policy was not given",
            Invariant::Retries => "the provider refused nothing retryable, and no retry-failed was acknowledged",
            Invariant::Input => "no bad input was sent (a scenario's `[bad_input]`)",
            // Listed one by one, so a new invariant must say why it could go unchecked.
            Invariant::Counters
            | Invariant::Progress
            | Invariant::AtMostOnce
            | Invariant::Completion
            | Invariant::Isolation
            | Invariant::Liveness
            | Invariant::Forgery => "nothing it needs was observed",
        }
    }
}

fn describe_counts(campaign: &CampaignModel) -> String {
    let counts: Vec<String> = Status::ALL
        .into_iter()
        .filter(|&s| campaign.count(s) > 0)
        .map(|s| format!("{s} {}", campaign.count(s)))
        .collect();
    format!("the judge's counts: {}", counts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_is_the_published_function() {
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c; ours appends a zero byte to each part.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        hash ^= u64::from(b'a');
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        assert_eq!(hash, 0xaf63_dc4c_8601_ec8c);
        assert_ne!(fnv(&["ab", "c"]), fnv(&["a", "bc"]), "parts are separated");
    }
}
