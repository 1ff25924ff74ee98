//! The oracle: the simulation's observer, which tells the independent judge
//! ([`smsim_judge`]) what an outside observer sees, after every step and at the end.
//!
//! It decides nothing of its own about the engine's rules. It hands over the driver's
//! requests and answers, the provider's ground truth (acceptances with the bodies
//! received, reports and how the engine answered them) and the engine's reads: its store's
//! journal and rows, read as data, and its campaigns' numbers and tenants' books. The
//! judge — its own lattice, segment counter, price arithmetic and ledger — says whether
//! the engine was right. The one check made here is a fact about data, not a rule: no
//! lease outlives its expiry by more than the reaper's slack.
//!
//! Each step costs in proportion to what changed in it: the feeds are drained, the journal
//! is the step's own, and reads are made of the campaigns and tenants it touched (every
//! step while the store is small, once a simulated second beyond, and of everything at
//! the end).

use crate::driver::{DriverLog, SentInput, Told};
use crate::provider::{Seen, Truth};
use crate::scenario::OperatorVerb;
use smsim_core::domain::{Campaign, CampaignStatus, StatusCounts, TransitionCause};
use smsim_core::store::{JournalEntry, Store};
use smsim_core::{CampaignId, TenantId};
use smsim_judge::{
    Act, CampaignReading, ImportCounts, Input, InputAnswer, Judge, MessageRow, Mover, Observation, Setup,
};
use std::collections::{BTreeMap, BTreeSet};

pub use smsim_judge::{Invariant, Violation};

/// Stores with up to this many messages are read after every step.
pub const RECOUNT_EVERY_STEP_UP_TO: usize = 5_000;

/// What the oracle itself checks against.
#[derive(Clone, Debug, Default)]
pub struct Limits {
    /// Maintenance interval plus slack, for lease liveness.
    pub lease_grace_ms: u64,
}

/// The oracle's state.
pub struct Oracle {
    judge: Judge,
    limits: Limits,
    /// Campaigns the judge was told of, with their tenant.
    campaigns: BTreeMap<CampaignId, TenantId>,
    /// Messages the journal created so far.
    messages: usize,
    last_read_ms: Option<u64>,
    pending_campaigns: BTreeSet<CampaignId>,
    pending_tenants: BTreeSet<TenantId>,
    lease_checks: u64,
}

/// A store read the oracle cannot do without. The oracle reads the store underneath the
/// engine's faulty wrapper (`World::store`, not `World::faulty_store`), so no injected
/// failure reaches it: a failed read is a bug in the store or the harness, and treating
/// it as "nothing to check" would let a run pass unchecked.
fn read<T>(result: smsim_core::store::StoreResult<T>, what: &str) -> T {
    result.unwrap_or_else(|error| panic!("the oracle could not read {what} from the store: {error}"))
}

/// A campaign's counts by status name, as its row holds them.
fn counts_by_name(counts: &StatusCounts) -> [(&'static str, u64); 11] {
    [
        ("queued", counts.queued),
        ("submitting", counts.submitting),
        ("accepted", counts.accepted),
        ("delivered", counts.delivered),
        ("undelivered", counts.undelivered),
        ("expired", counts.expired),
        ("rejected", counts.rejected),
        ("failed", counts.failed),
        ("unknown", counts.unknown),
        ("skipped", counts.skipped),
        ("cancelled", counts.cancelled),
    ]
    .map(|(name, count)| (name, u64::from(count)))
}

fn ms(at: smsim_core::Timestamp) -> u64 {
    at.ms_since(crate::clock::EPOCH)
}

/// The judge's word for an operator action of the scenario (`amount` for credit changes).
pub fn act_of(verb: OperatorVerb, amount: i64) -> Act {
    match verb {
        OperatorVerb::Pause => Act::Pause,
        OperatorVerb::Resume => Act::Resume,
        OperatorVerb::Cancel => Act::Cancel,
        OperatorVerb::RetryFailed => Act::RetryFailed,
        OperatorVerb::TopUp | OperatorVerb::Adjust => Act::Credits(amount),
    }
}

/// Tells `judge` what the provider saw since the last call: drains `truth`'s feed (the
/// simulator's oracle and live mode alike).
pub fn tell_provider(judge: &mut Judge, truth: &mut Truth) -> Result<(), Violation> {
    let feed = std::mem::take(&mut truth.feed);
    for (at_ms, seen) in feed {
        let observation = match &seen {
            Seen::Received { account, key } => {
                Observation::Received { account, destination: &key.0, body: Some(&key.1) }
            }
            Seen::Refused { account, key, status, retry_after_ms } => Observation::Refused {
                account,
                destination: &key.0,
                body: &key.1,
                status: *status,
                retry_after_ms: *retry_after_ms,
            },
            Seen::Accepted { account, key, provider_id } => {
                Observation::Accepted { account, destination: &key.0, body: &key.1, provider_id }
            }
            Seen::ReportAnswered { report, answered } => {
                let report = &truth.reports[*report];
                Observation::ReportAnswered {
                    account: &report.account,
                    provider_id: &report.provider_id,
                    status: report.status,
                    error_code: report.error_code,
                    forged: report.forged,
                    answered: *answered,
                }
            }
        };
        judge.observe(at_ms, observation)?;
    }
    Ok(())
}

impl Oracle {
    /// An oracle for a run set up as `setup`, checking `enabled` (empty: all).
    pub fn new(enabled: &[Invariant], setup: Setup, limits: Limits) -> Self {
        Oracle {
            judge: Judge::new(setup, enabled),
            limits,
            campaigns: BTreeMap::new(),
            messages: 0,
            last_read_ms: None,
            pending_campaigns: BTreeSet::new(),
            pending_tenants: BTreeSet::new(),
            lease_checks: 0,
        }
    }

    /// Checks run so far, per invariant.
    pub fn checks(&self) -> BTreeMap<Invariant, u64> {
        let mut checks = self.judge.checks().clone();
        if self.lease_checks > 0 {
            *checks.entry(Invariant::Liveness).or_default() += self.lease_checks;
        }
        checks
    }

    /// What each invariant came to, per tenant for money.
    pub fn verdicts(&self) -> Vec<(Invariant, Option<String>, smsim_judge::Verdict)> {
        self.judge.verdicts()
    }

    /// Whether the engine, as the judge saw it, has nothing left to do by itself: no
    /// campaign sending or scheduled, no message submitting or awaiting reconciliation.
    pub fn engine_idle(&self) -> bool {
        !self.judge.engine_busy()
    }

    /// Checks one step: `journal` is what the store committed during it; the provider's
    /// and the driver's feeds are drained.
    pub fn check_step(
        &mut self,
        at_ms: u64,
        journal: &[JournalEntry],
        store: &dyn Store,
        truth: &mut Truth,
        driver: &mut DriverLog,
    ) -> Result<(), Violation> {
        self.tell_driver(driver)?;
        self.tell_provider(truth)?;
        for entry in journal {
            self.tell_journal(entry, store)?;
        }
        // Reads cost in proportion to the store: every step while it is small, once a
        // simulated second beyond (a large campaign would otherwise spend its run
        // reading), and always at the end.
        let due =
            self.messages <= RECOUNT_EVERY_STEP_UP_TO || self.last_read_ms.is_none_or(|last| at_ms >= last + 1_000);
        if due && !(self.pending_campaigns.is_empty() && self.pending_tenants.is_empty()) {
            self.last_read_ms = Some(at_ms);
            let campaigns = std::mem::take(&mut self.pending_campaigns);
            let all = read(store.all_campaigns(), "the campaigns");
            for campaign in all.iter().filter(|c| campaigns.contains(&c.id)) {
                self.tell_campaign(at_ms, campaign)?;
            }
            for tenant in std::mem::take(&mut self.pending_tenants) {
                self.tell_books(at_ms, tenant, store)?;
            }
        }
        Ok(())
    }

    fn tell_driver(&mut self, driver: &mut DriverLog) -> Result<(), Violation> {
        for (at_ms, told) in driver.feed.drain(..) {
            let observation_text;
            let (campaign_text, tenant_text);
            let input_counts;
            let observation = match &told {
                Told::CampaignCreated { campaign, tenant, account, template, starts_at } => {
                    self.campaigns.insert(*campaign, *tenant);
                    campaign_text = campaign.to_string();
                    tenant_text = tenant.to_string();
                    Observation::CampaignCreated {
                        campaign: &campaign_text,
                        tenant: &tenant_text,
                        account,
                        marker: None,
                        contacts: None,
                        template: Some(template),
                        starts_at: *starts_at,
                    }
                }
                Told::ActionSent { id, campaign, tenant, verb, amount } => {
                    campaign_text = campaign.map(|c| c.to_string()).unwrap_or_default();
                    tenant_text = tenant.map(|t| t.to_string()).unwrap_or_default();
                    let act = act_of(*verb, *amount);
                    let is_credit = matches!(act, Act::Credits(_));
                    Observation::ActionSent {
                        id: *id,
                        campaign: (!is_credit && campaign.is_some()).then_some(campaign_text.as_str()),
                        tenant: tenant.is_some().then_some(tenant_text.as_str()),
                        act,
                    }
                }
                Told::ActionAnswered { id, status } => Observation::ActionAnswered { id: *id, status: *status },
                Told::InputSent { tenant, input, status, body } => {
                    tenant_text = tenant.to_string();
                    let error = &body["error"];
                    input_counts = import_counts(body);
                    Observation::InputSent {
                        tenant: &tenant_text,
                        input: match input {
                            SentInput::Campaign(template) => Input::Campaign { template },
                            SentInput::Import(rows) => Input::Import { rows },
                            SentInput::Credits(field, amount) => Input::Credits { field, amount: *amount },
                        },
                        answer: InputAnswer {
                            status: *status,
                            code: error["code"].as_str(),
                            field: error["field"].as_str(),
                            message: error["message"].as_str(),
                            import: input_counts.as_ref(),
                        },
                    }
                }
                Told::InputTenantRead { tenant, contacts, campaigns } => {
                    tenant_text = tenant.to_string();
                    Observation::InputTenantRead { tenant: &tenant_text, contacts, campaigns: *campaigns }
                }
                Told::CrossTenantProbe { request, status } => {
                    observation_text = request.clone();
                    Observation::CrossTenantProbe { request: &observation_text, answered: *status }
                }
                Told::ForeignAccountProbe { request, status } => {
                    observation_text = request.clone();
                    Observation::ForeignAccountProbe { request: &observation_text, answered: *status }
                }
            };
            self.judge.observe(at_ms, observation)?;
        }
        Ok(())
    }

    fn tell_provider(&mut self, truth: &mut Truth) -> Result<(), Violation> {
        tell_provider(&mut self.judge, truth)
    }

    /// Tells the judge of `campaign` if the driver has not (the journal may name a campaign
    /// whose creation answer the driver never got): its tenant and account as its row says.
    fn know_campaign(&mut self, campaign: CampaignId, store: &dyn Store) -> Result<TenantId, Violation> {
        if let Some(&tenant) = self.campaigns.get(&campaign) {
            return Ok(tenant);
        }
        let all = read(store.all_campaigns(), "the campaigns");
        let row = all
            .iter()
            .find(|c| c.id == campaign)
            .unwrap_or_else(|| panic!("{campaign} is in the journal but not in the store"));
        let (campaign_text, tenant_text, account_text) =
            (campaign.to_string(), row.tenant.to_string(), row.traffic_account.to_string());
        self.campaigns.insert(campaign, row.tenant);
        self.judge.observe(
            0,
            Observation::CampaignCreated {
                campaign: &campaign_text,
                tenant: &tenant_text,
                account: &account_text,
                marker: None,
                contacts: None,
                template: None,
                starts_at: None,
            },
        )?;
        Ok(row.tenant)
    }

    fn tell_journal(&mut self, entry: &JournalEntry, store: &dyn Store) -> Result<(), Violation> {
        match *entry {
            JournalEntry::Message { message, from, to, cause, at, .. } => {
                let tenant = self.know_campaign(message.campaign, store)?;
                self.pending_campaigns.insert(message.campaign);
                self.pending_tenants.insert(tenant);
                if from.is_none() {
                    self.messages += 1;
                }
                // The row is read where the judge needs what it says: its key at creation,
                // its provider id at acceptance, its error when it fails or a report settles
                // it as not delivered.
                let wanted = from.is_none()
                    || matches!(to.as_str(), "accepted" | "failed" | "undelivered" | "expired" | "rejected");
                let stored = wanted.then(|| read(store.message(message), "a message the journal moved"));
                let row = stored.as_ref().map_or(MessageRow::default(), |m| MessageRow {
                    destination: &m.destination,
                    body: &m.body,
                    provider_id: m.provider_message_id.as_deref(),
                    error_code: m.last_error.as_ref().map(|e| e.code.as_str()),
                    attempts: Some(m.attempts),
                });
                let campaign = message.campaign.to_string();
                let mover = match cause {
                    TransitionCause::Engine => Mover::Engine,
                    TransitionCause::OperatorRetry => Mover::OperatorRetry,
                };
                self.judge.observe(
                    ms(at),
                    Observation::MessageMoved {
                        message: (message.campaign.0, message.contact.0),
                        campaign: &campaign,
                        from: from.map(|f| f.as_str()),
                        to: to.as_str(),
                        mover,
                        row,
                    },
                )
            }
            JournalEntry::Campaign { campaign, from, to, at, .. } => {
                self.know_campaign(campaign, store)?;
                self.pending_campaigns.insert(campaign);
                let name = campaign.to_string();
                self.judge.observe(
                    ms(at),
                    Observation::CampaignMoved { campaign: &name, from: from.as_str(), to: to.as_str() },
                )
            }
        }
    }

    fn tell_campaign(&mut self, at_ms: u64, campaign: &Campaign) -> Result<(), Violation> {
        let counts = counts_by_name(&campaign.counts);
        let name = campaign.id.to_string();
        let pause_reason = campaign.pause_reason.as_ref().map(|reason| format!("{reason:?}"));
        let reading = CampaignReading {
            campaign: &name,
            status: campaign.status.as_str(),
            counts: Some(&counts),
            sent: u64::from(campaign.counts.sent()),
            failed: u64::from(campaign.counts.failed),
            total: u64::from(campaign.counts.total()),
            progress: i64::from(campaign.progress()),
            pause_reason: pause_reason.as_deref(),
            unknown_outcome: None,
            completed_at: campaign.completed_at.map(ms),
        };
        self.judge.observe(at_ms, Observation::CampaignRead(reading))
    }

    fn tell_books(&mut self, at_ms: u64, tenant: TenantId, store: &dyn Store) -> Result<(), Violation> {
        let books = read(store.tenant(tenant), "a tenant's books");
        let name = tenant.to_string();
        self.judge.observe(
            at_ms,
            Observation::BooksRead {
                tenant: &name,
                balance: Some(books.balance.get()),
                reserved: Some(books.reserved.get()),
                charged: books.charged.get(),
                requested_after: None,
            },
        )
    }

    /// The end-of-run checks, after faults healed and the heal phase ran: the engine's
    /// every campaign and tenant read once more, the leases looked at, and the judge's
    /// end checks.
    pub fn check_final(
        &mut self,
        at_ms: u64,
        store: &dyn Store,
        truth: &mut Truth,
        driver: &mut DriverLog,
    ) -> Result<(), Violation> {
        self.check_step(at_ms, &[], store, truth, driver)?;
        let campaigns = read(store.all_campaigns(), "the campaigns");
        for campaign in &campaigns {
            self.know_campaign(campaign.id, store)?;
            if campaign.status != CampaignStatus::Draft {
                self.tell_campaign(at_ms, campaign)?;
            }
        }
        for tenant in read(store.tenants(), "the tenants") {
            self.tell_books(at_ms, tenant.id, store)?;
        }
        self.check_leases(at_ms, store, &campaigns)?;
        self.judge.finish(at_ms)
    }

    /// No lease outlived its expiry by more than the grace.
    fn check_leases(&mut self, at_ms: u64, store: &dyn Store, campaigns: &[Campaign]) -> Result<(), Violation> {
        self.lease_checks += 1;
        let now = crate::clock::EPOCH.plus_ms(at_ms);
        let mut outlived = None;
        for campaign in campaigns {
            let visited = store.visit_messages(campaign.id, &mut |message| {
                if let Some(lease) = &message.lease {
                    if outlived.is_none() && lease.expires_at.plus_ms(self.limits.lease_grace_ms) < now {
                        outlived = Some((message.id, lease.clone()));
                    }
                }
            });
            read(visited, "a campaign's messages");
            if let Some((id, lease)) = outlived.take() {
                return Err(Violation::new(
                    Invariant::Liveness,
                    at_ms,
                    format!("{id}'s lease outlived its expiry"),
                    vec![format!("lease {lease:?}")],
                ));
            }
        }
        Ok(())
    }
}

/// An import's answer, read from its JSON: the counts and the refused rows, if it has them.
fn import_counts(body: &serde_json::Value) -> Option<ImportCounts> {
    let count = |name: &str| body[name].as_u64().map(|n| n as u32);
    let errors = body["errors"]
        .as_array()?
        .iter()
        .map(|error| Some((error["row"].as_u64()? as usize, error["field"].as_str()?.to_owned())))
        .collect::<Option<Vec<_>>>()?;
    Some(ImportCounts {
        created: count("created")?,
        updated: count("updated")?,
        unchanged: count("unchanged")?,
        errors,
    })
}
