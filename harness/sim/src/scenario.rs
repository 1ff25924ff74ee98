//! Scenario files: what a simulation sets up, breaks and expects.
//!
//! A scenario is TOML with `deny_unknown_fields` at every level, so a misspelt key is an
//! error and not a silently ignored setting. [`Scenario::load`] reports errors with the
//! file, the line and column, and what was expected; [`Scenario::validate`] refuses
//! values that parse but cannot be simulated (no workers, a rate above 1, an operator
//! action after the end). `docs/src/reference/scenario-format.md` documents every field.

use crate::coverage::Mark;
use crate::fault::Fault;
use crate::invariant::Invariant;
use serde::{Deserialize, Serialize};
use smsim_core::domain::ProviderKind;

pub use crate::fault::FaultRates;
use std::path::{Path, PathBuf};

/// A scenario that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{path}: cannot read: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The TOML is malformed or does not have the expected shape.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What was expected.
        message: String,
    },
    /// The values parse but make no sense together.
    #[error("{path}{}: {field}: {message}", .line.map(|line| format!(":{line}")).unwrap_or_default())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending field, when the file's text is at hand.
        line: Option<usize>,
        /// The dotted path of the offending field.
        field: String,
        /// What is wrong and what is expected.
        message: String,
    },
}

/// One simulation setup.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A short name (defaults to the file stem).
    #[serde(default)]
    pub name: String,
    /// What the scenario proves, in a paragraph.
    #[serde(default)]
    pub description: String,
    /// The seed a regression case replays (the test suite runs exactly this seed).
    /// `smsim run` and `sweep` ignore it and take their seeds from the command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Simulated seconds of the fault phase (at least 1): enqueues, operator actions and
    /// faults happen in it.
    #[serde(default = "defaults::duration_s")]
    pub duration_s: u64,
    /// Simulated seconds after faults heal, by the end of which every liveness property
    /// must hold.
    #[serde(default = "defaults::heal_s")]
    pub heal_s: u64,
    /// The simulation tick in milliseconds (1 to 1000).
    #[serde(default = "defaults::tick_ms")]
    pub tick_ms: u64,
    /// Engine settings.
    #[serde(default)]
    pub engine: EngineSection,
    /// Tenants and their contacts.
    #[serde(default)]
    pub tenants: Vec<TenantSection>,
    /// Provider accounts.
    #[serde(default)]
    pub traffic_accounts: Vec<AccountSection>,
    /// Campaigns the driver creates.
    #[serde(default)]
    pub campaigns: Vec<CampaignSection>,
    /// How the simulated provider behaves.
    #[serde(default)]
    pub provider: ProviderSection,
    /// Faults: an explicit plan, a swarm, or both.
    #[serde(default)]
    pub faults: FaultSection,
    /// Operator actions at given times.
    #[serde(default)]
    pub operator: Vec<OperatorAction>,
    /// Bad input the driver sends as one tenant, judged by `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bad_input: Option<BadInputSection>,
    /// What must hold, or (for an incident reproduction) what must break.
    #[serde(default)]
    pub expect: ExpectSection,
}

mod defaults {
    /// Twilio's US price per SMS segment.
    pub fn twilio_usd_per_segment() -> f64 {
        0.0079
    }
    /// A round Infobip price per message.
    pub fn infobip_eur_per_message() -> f64 {
        0.01
    }
    pub fn duration_s() -> u64 {
        60
    }
    pub fn heal_s() -> u64 {
        120
    }
    pub fn tick_ms() -> u64 {
        10
    }
    pub fn workers() -> u32 {
        2
    }
    pub fn lease_ms() -> u64 {
        10_000
    }
    pub fn claim_batch() -> u32 {
        50
    }
    pub fn unknown_settle_after_ms() -> u64 {
        60_000
    }
    pub fn lookup_grace_ms() -> u64 {
        5_000
    }
    pub fn is_lookup_grace_ms(ms: &u64) -> bool {
        *ms == lookup_grace_ms()
    }
    pub fn price() -> i64 {
        55
    }
    pub fn credits() -> i64 {
        1_000_000
    }
    pub fn template() -> String {
        "Hello {{first_name|there}}, our spring sale starts today.".to_owned()
    }
    pub fn latency_ms() -> [u64; 2] {
        [5, 50]
    }
    pub fn report_delay_ms() -> [u64; 2] {
        [100, 3_000]
    }
    pub fn report_window_ms() -> u64 {
        1_000
    }
    pub fn one() -> f64 {
        1.0
    }
}

/// Engine settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSection {
    /// Worker hosts (`worker-1` … `worker-N`), 1 to 64.
    #[serde(default = "defaults::workers")]
    pub workers: u32,
    /// Lease length of a claim, in ms.
    #[serde(default = "defaults::lease_ms")]
    pub lease_ms: u64,
    /// Most messages claimed at once (at least 1).
    #[serde(default = "defaults::claim_batch")]
    pub claim_batch: u32,
    /// How long (ms) an ambiguous submission may stay unknown before it settles as
    /// failed `UNKNOWN_OUTCOME`, charged.
    #[serde(default = "defaults::unknown_settle_after_ms")]
    pub unknown_settle_after_ms: u64,
    /// How long (ms) after a message became unknown a status lookup's "not found" is
    /// trusted (it is then settled as never accepted, refunded). Left out of the resolved
    /// configuration at its default, so a scenario that does not set it keeps its hash.
    #[serde(default = "defaults::lookup_grace_ms", skip_serializing_if = "defaults::is_lookup_grace_ms")]
    pub lookup_grace_ms: u64,
    /// The store the engine runs on: `memory` (the default), or `sqlite`, an in-memory
    /// SQLite database, so the rows the SQL backends write and read back are judged too.
    #[serde(default)]
    pub store: StoreKind,
    /// The capacity of the rate-limit buckets: `one_second` (the default) or `strict`
    /// (one token: at most the limit plus one in any second). The judge's `rate` bound
    /// follows it.
    #[serde(default, skip_serializing_if = "smsim_core::domain::rate::Burst::is_one_second")]
    pub rate_burst: smsim_core::domain::rate::Burst,
}

/// The store a simulated engine runs on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// The in-memory store.
    #[default]
    Memory,
    /// SQLite, in memory.
    Sqlite,
}

impl Default for EngineSection {
    fn default() -> Self {
        EngineSection {
            workers: defaults::workers(),
            lease_ms: defaults::lease_ms(),
            claim_batch: defaults::claim_batch(),
            unknown_settle_after_ms: defaults::unknown_settle_after_ms(),
            lookup_grace_ms: defaults::lookup_grace_ms(),
            store: StoreKind::default(),
            rate_burst: Default::default(),
        }
    }
}

/// A tenant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSection {
    /// Its name; campaigns and accounts refer to it.
    pub name: String,
    /// Opening credits (≥ 0).
    #[serde(default = "defaults::credits")]
    pub credits: i64,
    /// Submissions per second across its campaigns (none: unlimited).
    #[serde(default)]
    pub rate_limit_per_s: Option<u32>,
    /// Its contacts.
    #[serde(default)]
    pub contacts: ContactsSection,
}

/// Generated contacts (drawn from the seed; there is no explicit list). Shares are in
/// 0..=1 and apply to each row independently.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactsSection {
    /// How many rows the driver imports.
    #[serde(default)]
    pub count: u32,
    /// Share of rows with an invalid number (refused at import).
    #[serde(default)]
    pub invalid_share: f64,
    /// Share of contacts opted out (skipped at enqueue).
    #[serde(default)]
    pub opted_out_share: f64,
    /// Share of contacts whose first name is outside GSM-7 (forcing UCS-2).
    #[serde(default)]
    pub ucs2_name_share: f64,
}

impl Default for ContactsSection {
    fn default() -> Self {
        ContactsSection { count: 0, invalid_share: 0.0, opted_out_share: 0.0, ucs2_name_share: 0.0 }
    }
}

/// A provider account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSection {
    /// Its name; campaigns refer to it.
    pub name: String,
    /// Wire format (`mitto`, `twilio`, `infobip`: the engine's provider kinds).
    pub provider: ProviderKind,
    /// Owning tenant (its `name`), or none for a platform account shared by all.
    #[serde(default)]
    pub owner: Option<String>,
    /// Submissions per second (none: unlimited).
    #[serde(default)]
    pub rate_limit_per_s: Option<u32>,
    /// Price of one segment, in credits (≥ 0).
    #[serde(default = "defaults::price")]
    pub price_per_segment: i64,
    /// Twilio-style only: send through a messaging service, which picks each message's
    /// sender from its pool (the account's own sender is never the `From`).
    #[serde(default)]
    pub messaging_service: bool,
}

/// How the driver clicks "send".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoubleClick {
    /// One enqueue request.
    #[default]
    None,
    /// Two concurrent requests with the same `Idempotency-Key`.
    SameKey,
    /// Two concurrent requests with different keys.
    DifferentKeys,
    /// Two concurrent requests without a key.
    NoKey,
}

/// A campaign the driver creates and enqueues.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSection {
    /// Its name; operator actions refer to it.
    pub name: String,
    /// The tenant.
    pub tenant: String,
    /// The account.
    pub traffic_account: String,
    /// Body template; the driver sends it prefixed with `[NAME] `.
    #[serde(default = "defaults::template")]
    pub template: String,
    /// When the driver enqueues it (simulated seconds, within the fault phase).
    #[serde(default)]
    pub enqueue_at_s: f64,
    /// Start delay after enqueue in simulated seconds, making it a scheduled campaign.
    #[serde(default)]
    pub schedule_in_s: Option<f64>,
    /// How the driver clicks "send".
    #[serde(default)]
    pub double_click: DoubleClick,
}

/// Provider behaviour.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSection {
    /// Answer latency range `[min, max]`, in ms.
    #[serde(default = "defaults::latency_ms")]
    pub latency_ms: [u64; 2],
    /// Share of messages refused permanently (invalid number).
    #[serde(default)]
    pub reject_rate: f64,
    /// Share of accepted messages reported delivered (the rest are reported undelivered).
    #[serde(default = "defaults::one")]
    pub delivery_rate: f64,
    /// Delay range `[min, max]` between acceptance and the final report, in ms.
    #[serde(default = "defaults::report_delay_ms")]
    pub report_delay_ms: [u64; 2],
    /// Send an intermediate report (`Sent`, `sent`, `PENDING_ENROUTE`) before the final one.
    #[serde(default)]
    pub intermediate_reports: bool,
    /// Mitto-style final reports fall due at the end of a window of this many ms, and
    /// those of one bulk request due at the same end travel in one array webhook, as a
    /// bulk provider's report sender flushes them. 0 sends each report in its own webhook.
    #[serde(default = "defaults::report_window_ms")]
    pub report_window_ms: u64,
    /// What the simulated providers charge, as their answers state it.
    #[serde(default, skip_serializing_if = "PriceTable::is_default")]
    pub prices: PriceTable,
}

/// The simulated providers' price list: what each says a message cost, in its own
/// currency and unit, as its answers and logs carry it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTable {
    /// Twilio-style: USD per segment (a message resource's `price` is minus this times its
    /// `num_segments`, once sent).
    #[serde(default = "defaults::twilio_usd_per_segment")]
    pub twilio_usd_per_segment: f64,
    /// Infobip-style: EUR per message (`price.pricePerMessage` of its reports and logs).
    #[serde(default = "defaults::infobip_eur_per_message")]
    pub infobip_eur_per_message: f64,
}

impl Default for PriceTable {
    fn default() -> Self {
        PriceTable {
            twilio_usd_per_segment: defaults::twilio_usd_per_segment(),
            infobip_eur_per_message: defaults::infobip_eur_per_message(),
        }
    }
}

impl PriceTable {
    /// Whether it is the default list (left out of a scenario's canonical form, so the
    /// configuration hash of a scenario that sets no prices stays what it was).
    pub fn is_default(&self) -> bool {
        *self == PriceTable::default()
    }
}

impl Default for ProviderSection {
    fn default() -> Self {
        ProviderSection {
            latency_ms: defaults::latency_ms(),
            reject_rate: 0.0,
            delivery_rate: 1.0,
            report_delay_ms: defaults::report_delay_ms(),
            intermediate_reports: false,
            report_window_ms: defaults::report_window_ms(),
            prices: PriceTable::default(),
        }
    }
}

/// Faults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSection {
    /// Each seed draws its own subset of faults and rates.
    #[serde(default)]
    pub swarm: bool,
    /// Faults that are always on, with their rates.
    #[serde(default)]
    pub rates: FaultRates,
    /// Faults at fixed times.
    #[serde(default)]
    pub events: Vec<FaultEvent>,
}

/// A fault at a fixed time (simulated seconds), within the fault phase (`0..=duration_s`),
/// on hosts of this scenario (`api`, `provider`, `driver`, `worker-1`…`worker-N`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultEvent {
    /// Crash a host, restarting it after a while.
    Crash {
        /// `api`, `worker-N` or `provider`.
        host: String,
        /// When.
        at_s: f64,
        /// Restart delay (restarted at the end of the fault phase at the latest).
        restart_after_s: f64,
    },
    /// Cut the link between two hosts for a while.
    Partition {
        /// One end.
        a: String,
        /// The other end.
        b: String,
        /// When.
        at_s: f64,
        /// For how long.
        for_s: f64,
    },
    /// Hold messages on a link (delivered, delayed and reordered, on release).
    Hold {
        /// One end.
        a: String,
        /// The other end.
        b: String,
        /// When.
        at_s: f64,
        /// For how long.
        for_s: f64,
    },
    /// A burst of provider errors.
    ProviderOutage {
        /// When.
        at_s: f64,
        /// For how long.
        for_s: f64,
        /// The status answered to every submit request (`503`; `429` with `Retry-After`).
        status: u16,
    },
}

/// Bad input — malformed templates, contact rows at fault beside valid ones — that the
/// driver sends as one tenant, then lists what that tenant holds. The judge's `input`
/// holds every answer to the documented rules and the listing to its own contact book.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BadInputSection {
    /// The tenant it is sent as: one with no contacts and no campaigns of the scenario's,
    /// so that what it lists afterwards is the bad input's doing alone.
    pub tenant: String,
    /// When (simulated seconds into the fault phase).
    #[serde(default)]
    pub at_s: f64,
}

/// An operator action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorAction {
    /// When (simulated seconds); with `random`, the upper bound of a seeded draw.
    pub at_s: f64,
    /// Draw the time uniformly in `[0, at_s]` from the seed.
    #[serde(default)]
    pub random: bool,
    /// What.
    pub action: OperatorVerb,
    /// The campaign (for campaign actions).
    #[serde(default)]
    pub campaign: Option<String>,
    /// The tenant (for credit actions).
    #[serde(default)]
    pub tenant: Option<String>,
    /// Credits (for top-ups and adjustments).
    #[serde(default)]
    pub amount: Option<i64>,
}

/// What an operator does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorVerb {
    /// Pause a campaign.
    Pause,
    /// Resume it.
    Resume,
    /// Cancel it.
    Cancel,
    /// Retry its failed messages.
    RetryFailed,
    /// Add credits to a tenant.
    TopUp,
    /// Remove (or add) credits of a tenant.
    Adjust,
}

/// Expectations.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectSection {
    /// Invariants to check (empty: all of them); an unknown name is a load error.
    #[serde(default)]
    pub invariants: Vec<Invariant>,
    /// Coverage marks the scenario is meant to go through: `smsim sweep` and `cargo test`
    /// fail the scenario when one of them fired in none of its seeds. A single run does
    /// not check them (one seed may miss a rare path). An unknown name is a load error
    /// with the file and line, so a misspelt mark cannot pass by never firing.
    #[serde(default)]
    pub coverage: Vec<Mark>,
    /// For an incident reproduction: the bug to switch on and the invariant it must break.
    #[serde(default)]
    pub incident: Option<IncidentExpectation>,
}

/// An incident reproduction's expectation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentExpectation {
    /// The seed document, e.g. `000_09048aa223bbca77.md` (not checked).
    pub seed_document: String,
    /// The bug's name in the `incidents` feature.
    pub bug: String,
    /// The invariant that must break with the bug on.
    pub breaks: Invariant,
    /// The test suite requires the violation among seeds `1..=within_seeds` with the bug
    /// on, and those seeds to pass with it off (5 seeds when absent).
    #[serde(default)]
    pub within_seeds: Option<u64>,
}

impl Scenario {
    /// Reads, parses and validates the scenario at `path`.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text =
            std::fs::read_to_string(path).map_err(|error| ScenarioError::Read { path: path.to_owned(), error })?;
        let mut scenario = Scenario::parse(&text, path)?;
        if scenario.name.is_empty() {
            scenario.name = path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
        }
        scenario.validate(path).map_err(|error| error.located(&text))?;
        Ok(scenario)
    }

    /// The hash of this scenario's resolved configuration: every field, defaults filled
    /// in, as JSON. With the scenario's name and a seed it identifies a run (madsim's
    /// triple): a changed default or file changes the hash, so an old trace hash is not
    /// compared against a different world.
    pub fn config_hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let json = serde_json::to_vec(self).expect("a scenario always serializes to JSON");
        hex::encode(Sha256::digest(&json))
    }

    /// Parses scenario text; `path` is only used in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        toml::from_str(text).map_err(|error| {
            let (line, column) = error.span().map_or((1, 1), |span| line_column(text, span.start));
            ScenarioError::Parse { path: path.to_owned(), line, column, message: error.message().to_owned() }
        })
    }

    /// Refuses values that parse but cannot be simulated, naming the field.
    pub fn validate(&self, path: &Path) -> Result<(), ScenarioError> {
        self.validate_timing(path)?;
        self.validate_tenants(path)?;
        self.validate_accounts(path)?;
        self.validate_campaigns(path)?;
        self.validate_operator(path)?;
        self.validate_bad_input(path)?;
        self.validate_expect(path)?;
        self.validate_rates(path)?;
        self.validate_events(path)?;
        self.validate_provider_ranges(path)
    }

    /// Workers, batch, tick and phase length.
    fn validate_timing(&self, path: &Path) -> Result<(), ScenarioError> {
        let invalid = |field: String, message: String| invalid(path, field, message);
        if self.engine.workers == 0 || self.engine.workers > 64 {
            return invalid("engine.workers".into(), format!("expected 1 to 64 workers, got {}", self.engine.workers));
        }
        if self.engine.claim_batch == 0 {
            return invalid("engine.claim_batch".into(), "expected at least 1".into());
        }
        if self.tick_ms == 0 || self.tick_ms > 1_000 {
            return invalid("tick_ms".into(), format!("expected 1 to 1000 ms, got {}", self.tick_ms));
        }
        if self.duration_s == 0 {
            return invalid("duration_s".into(), "expected a positive number of simulated seconds".into());
        }
        if let Err((field, message)) = self.check_bounds() {
            return invalid(field, message);
        }
        Ok(())
    }

    /// Tenant names unique, credits and contact shares in range.
    fn validate_tenants(&self, path: &Path) -> Result<(), ScenarioError> {
        let invalid = |field: String, message: String| invalid(path, field, message);
        let mut seen = std::collections::BTreeSet::new();
        for (index, tenant) in self.tenants.iter().enumerate() {
            if !seen.insert(tenant.name.as_str()) {
                return invalid(format!("tenants[{index}].name"), format!("`{}` is defined twice", tenant.name));
            }
            if tenant.credits < 0 {
                return invalid(format!("tenants[{index}].credits"), "expected credits ≥ 0".into());
            }
            for (name, share) in [
                ("invalid_share", tenant.contacts.invalid_share),
                ("opted_out_share", tenant.contacts.opted_out_share),
                ("ucs2_name_share", tenant.contacts.ucs2_name_share),
            ] {
                if !(0.0..=1.0).contains(&share) {
                    return invalid(
                        format!("tenants[{index}].contacts.{name}"),
                        format!("expected a share in 0..=1, got {share}"),
                    );
                }
            }
        }
        Ok(())
    }

    /// Account names unique, owners known, rates and prices in range.
    fn validate_accounts(&self, path: &Path) -> Result<(), ScenarioError> {
        let invalid = |field: String, message: String| invalid(path, field, message);
        let tenant_known = |name: &str| self.tenants.iter().any(|tenant| tenant.name == name);
        let mut seen_accounts = std::collections::BTreeSet::new();
        for (index, account) in self.traffic_accounts.iter().enumerate() {
            if !seen_accounts.insert(account.name.as_str()) {
                return invalid(
                    format!("traffic_accounts[{index}].name"),
                    format!("`{}` is defined twice", account.name),
                );
            }
            if account.rate_limit_per_s == Some(0) {
                return invalid(
                    format!("traffic_accounts[{index}].rate_limit_per_s"),
                    "expected at least 1 submission per second (leave it out for no limit)".into(),
                );
            }
            if let Some(owner) = &account.owner {
                if !tenant_known(owner) {
                    return invalid(format!("traffic_accounts[{index}].owner"), format!("no tenant named `{owner}`"));
                }
            }
            if account.price_per_segment < 0 {
                return invalid(format!("traffic_accounts[{index}].price_per_segment"), "expected a price ≥ 0".into());
            }
            if account.messaging_service && account.provider != ProviderKind::Twilio {
                return invalid(
                    format!("traffic_accounts[{index}].messaging_service"),
                    format!("messaging services are Twilio's; this account is {:?}", account.provider),
                );
            }
        }
        Ok(())
    }

    /// Campaign names unique, their tenant and account known, enqueued in the fault phase.
    fn validate_campaigns(&self, path: &Path) -> Result<(), ScenarioError> {
        let invalid = |field: String, message: String| invalid(path, field, message);
        let tenant_known = |name: &str| self.tenants.iter().any(|tenant| tenant.name == name);
        let mut seen_campaigns = std::collections::BTreeSet::new();
        for (index, campaign) in self.campaigns.iter().enumerate() {
            if !seen_campaigns.insert(campaign.name.as_str()) {
                return invalid(format!("campaigns[{index}].name"), format!("`{}` is defined twice", campaign.name));
            }
            if !tenant_known(&campaign.tenant) {
                return invalid(format!("campaigns[{index}].tenant"), format!("no tenant named `{}`", campaign.tenant));
            }
            if !self.traffic_accounts.iter().any(|account| account.name == campaign.traffic_account) {
                return invalid(
                    format!("campaigns[{index}].traffic_account"),
                    format!("no traffic account named `{}`", campaign.traffic_account),
                );
            }
            if campaign.enqueue_at_s < 0.0 || campaign.enqueue_at_s > self.duration_s as f64 {
                return invalid(
                    format!("campaigns[{index}].enqueue_at_s"),
                    format!("expected a time within 0..={} s", self.duration_s),
                );
            }
        }
        Ok(())
    }

    /// The bad input's tenant: one of the scenario's, with nothing of its own; a shared
    /// account to name; a time in the fault phase.
    fn validate_bad_input(&self, path: &Path) -> Result<(), ScenarioError> {
        let Some(bad) = &self.bad_input else { return Ok(()) };
        let invalid = |field: &str, message: String| invalid(path, field.to_owned(), message);
        let Some(tenant) = self.tenants.iter().find(|tenant| tenant.name == bad.tenant) else {
            return invalid("bad_input.tenant", format!("no tenant named `{}`", bad.tenant));
        };
        if tenant.contacts.count > 0 || self.campaigns.iter().any(|campaign| campaign.tenant == bad.tenant) {
            return invalid(
                "bad_input.tenant",
                format!("`{}` has contacts or campaigns; bad input needs a tenant of its own", bad.tenant),
            );
        }
        if !self.traffic_accounts.iter().any(|account| account.owner.is_none()) {
            return invalid("bad_input", "bad input names a shared traffic account, and none is defined".into());
        }
        if !(0.0..=self.duration_s as f64).contains(&bad.at_s) {
            return invalid("bad_input.at_s", format!("expected a time within 0..={} s", self.duration_s));
        }
        Ok(())
    }

    /// Operator actions in the fault phase, naming what they act on.
    fn validate_operator(&self, path: &Path) -> Result<(), ScenarioError> {
        let invalid = |field: String, message: String| invalid(path, field, message);
        let tenant_known = |name: &str| self.tenants.iter().any(|tenant| tenant.name == name);
        for (index, action) in self.operator.iter().enumerate() {
            if action.at_s < 0.0 || action.at_s > self.duration_s as f64 {
                return invalid(
                    format!("operator[{index}].at_s"),
                    format!("expected a time within the fault phase, 0..={} s", self.duration_s),
                );
            }
            let needs_campaign = matches!(
                action.action,
                OperatorVerb::Pause | OperatorVerb::Resume | OperatorVerb::Cancel | OperatorVerb::RetryFailed
            );
            match (&action.campaign, &action.tenant, needs_campaign) {
                (Some(name), _, true) if self.campaigns.iter().any(|campaign| &campaign.name == name) => {}
                (_, _, true) => {
                    return invalid(
                        format!("operator[{index}].campaign"),
                        "expected the name of a campaign of this scenario".into(),
                    )
                }
                (_, Some(name), false) if tenant_known(name) && action.amount.is_some() => {}
                (_, _, false) => {
                    return invalid(
                        format!("operator[{index}]"),
                        "expected `tenant` naming a tenant and `amount`".into(),
                    )
                }
            }
        }
        Ok(())
    }

    /// The incident bug exists (invariant and coverage names are checked as they parse).
    fn validate_expect(&self, path: &Path) -> Result<(), ScenarioError> {
        let invalid = |field: String, message: String| invalid(path, field, message);
        if let Some(incident) = &self.expect.incident {
            if let Err(message) = incident.bug.parse::<smsim_core::incidents::Bug>() {
                return invalid("expect.incident.bug".into(), message);
            }
        }
        Ok(())
    }

    /// Every fault rate and provider rate in 0..=1.
    fn validate_rates(&self, path: &Path) -> Result<(), ScenarioError> {
        let invalid = |field: String, message: String| invalid(path, field, message);
        let fault_rates =
            self.faults.rates.iter().map(|(fault, rate)| (format!("faults.rates.{}", Fault::name(fault)), rate));
        let provider_rates = [
            ("provider.reject_rate".to_owned(), self.provider.reject_rate),
            ("provider.delivery_rate".to_owned(), self.provider.delivery_rate),
        ];
        for (field, rate) in fault_rates.chain(provider_rates) {
            if !(0.0..=1.0).contains(&rate) {
                return invalid(field, format!("expected a rate in 0..=1, got {rate}"));
            }
        }
        Ok(())
    }

    /// Timed faults on hosts of this scenario, within the fault phase.
    fn validate_events(&self, path: &Path) -> Result<(), ScenarioError> {
        let invalid = |field: String, message: String| invalid(path, field, message);
        let workers = self.engine.workers;
        let host_known = |host: &str, driver_too: bool| {
            matches!(host, "api" | "provider")
                || (driver_too && host == "driver")
                || host
                    .strip_prefix("worker-")
                    .and_then(|n| n.parse::<u32>().ok())
                    .is_some_and(|n| (1..=workers).contains(&n))
        };
        let hosts = format!("api, provider, driver or worker-1..worker-{workers}");
        for (index, event) in self.faults.events.iter().enumerate() {
            let field = |name: &str| format!("faults.events[{index}].{name}");
            let at_s = match event {
                FaultEvent::Crash { host, at_s, restart_after_s } => {
                    if !host_known(host, false) {
                        return invalid(
                            field("host"),
                            format!("no host `{host}` to crash; expected api, provider or worker-1..worker-{workers}"),
                        );
                    }
                    if *restart_after_s < 0.0 {
                        return invalid(field("restart_after_s"), "expected a delay ≥ 0".into());
                    }
                    *at_s
                }
                FaultEvent::Partition { a, b, at_s, for_s } | FaultEvent::Hold { a, b, at_s, for_s } => {
                    for (name, host) in [("a", a), ("b", b)] {
                        if !host_known(host, true) {
                            return invalid(field(name), format!("no host `{host}`; expected {hosts}"));
                        }
                    }
                    if a == b {
                        return invalid(field("b"), format!("a link needs two different hosts, got `{a}` twice"));
                    }
                    if *for_s < 0.0 {
                        return invalid(field("for_s"), "expected a duration ≥ 0".into());
                    }
                    *at_s
                }
                FaultEvent::ProviderOutage { at_s, for_s, status } => {
                    if !(400..=599).contains(status) {
                        return invalid(
                            field("status"),
                            format!("expected an HTTP error status 400..=599, got {status}"),
                        );
                    }
                    if *for_s < 0.0 {
                        return invalid(field("for_s"), "expected a duration ≥ 0".into());
                    }
                    *at_s
                }
            };
            if !(0.0..=self.duration_s as f64).contains(&at_s) {
                return invalid(
                    field("at_s"),
                    format!("expected a time within the fault phase, 0..={} s, got {at_s}", self.duration_s),
                );
            }
        }
        Ok(())
    }

    /// Latency and report delay ranges with min ≤ max.
    fn validate_provider_ranges(&self, path: &Path) -> Result<(), ScenarioError> {
        let invalid = |field: String, message: String| invalid(path, field, message);
        for (field, [low, high]) in [
            ("provider.latency_ms", self.provider.latency_ms),
            ("provider.report_delay_ms", self.provider.report_delay_ms),
        ] {
            if low > high {
                return invalid(field.into(), format!("expected [min, max] with min ≤ max, got [{low}, {high}]"));
            }
        }
        let prices = self.provider.prices;
        for (field, price) in [
            ("provider.prices.twilio_usd_per_segment", prices.twilio_usd_per_segment),
            ("provider.prices.infobip_eur_per_message", prices.infobip_eur_per_message),
        ] {
            if !(0.0..=100.0).contains(&price) {
                return invalid(field.into(), format!("expected a price in 0..=100, got {price}"));
            }
        }
        Ok(())
    }
}

/// A validation error for `field` of the file at `path` (its line is found later, by
/// [`ScenarioError::located`]).
fn invalid(path: &Path, field: String, message: String) -> Result<(), ScenarioError> {
    Err(ScenarioError::Invalid { path: path.to_owned(), line: None, field, message })
}

/// The bounds that keep every scenario a loader accepts finite and its arithmetic exact:
/// a simulation that ends, in memory that fits, with amounts the engine accepts. Each is
/// at or above the largest scenario of the project (`scenarios/large/ten-million-contacts.toml`).
pub mod bounds {
    /// Simulated seconds of the fault phase, and of the heal phase (each).
    pub const MAX_PHASE_S: u64 = 3_600;
    /// Any duration in milliseconds (lease, settle delay, latency, report delay).
    pub const MAX_DURATION_MS: u64 = 2 * MAX_PHASE_S * 1_000;
    /// Contacts across all tenants: ten million simulate in a few GiB (the largest
    /// scenario, `scenarios/large/ten-million-contacts.toml`).
    pub const MAX_CONTACTS: u64 = 10_000_000;
    /// Entries of each list (tenants, accounts, campaigns, operator actions, fault events).
    pub const MAX_ENTRIES: usize = 1_000;
    /// Messages claimed at once.
    pub const MAX_CLAIM_BATCH: u32 = 10_000;
    /// Seeds an incident reproduction may need.
    pub const MAX_WITHIN_SEEDS: u64 = 1_000;
}

/// A field and what is wrong with it.
type BoundError = (String, String);

/// `value` unless it is above `max`.
fn at_most<T: PartialOrd + std::fmt::Display>(field: &str, value: T, max: T, unit: &str) -> Result<(), BoundError> {
    if value > max {
        return Err((field.to_owned(), format!("expected at most {max} {unit}, got {value}")));
    }
    Ok(())
}

/// A time or duration in simulated seconds: finite, not negative, within both phases.
fn seconds(field: String, value: f64) -> Result<(), BoundError> {
    let max = (2 * bounds::MAX_PHASE_S) as f64;
    if !value.is_finite() || !(0.0..=max).contains(&value) {
        return Err((field, format!("expected a number of seconds in 0..={max}, got {value}")));
    }
    Ok(())
}

impl Scenario {
    /// Refuses what would never end, never fit or overflow: every count, duration and
    /// amount within [`bounds`] or the engine's own limits, every float finite.
    fn check_bounds(&self) -> Result<(), BoundError> {
        use bounds::*;
        at_most("duration_s", self.duration_s, MAX_PHASE_S, "simulated seconds")?;
        at_most("heal_s", self.heal_s, MAX_PHASE_S, "simulated seconds")?;
        at_most("engine.lease_ms", self.engine.lease_ms, MAX_DURATION_MS, "ms")?;
        if self.engine.lease_ms == 0 {
            return Err(("engine.lease_ms".into(), "expected a lease of at least 1 ms".into()));
        }
        at_most("engine.unknown_settle_after_ms", self.engine.unknown_settle_after_ms, MAX_DURATION_MS, "ms")?;
        at_most("engine.lookup_grace_ms", self.engine.lookup_grace_ms, MAX_DURATION_MS, "ms")?;
        at_most("engine.claim_batch", self.engine.claim_batch, MAX_CLAIM_BATCH, "messages")?;
        for (field, [_, high]) in [
            ("provider.latency_ms", self.provider.latency_ms),
            ("provider.report_delay_ms", self.provider.report_delay_ms),
        ] {
            at_most(field, high, MAX_DURATION_MS, "ms")?;
        }
        at_most("provider.report_window_ms", self.provider.report_window_ms, MAX_DURATION_MS, "ms")?;
        for (field, length) in [
            ("tenants", self.tenants.len()),
            ("traffic_accounts", self.traffic_accounts.len()),
            ("campaigns", self.campaigns.len()),
            ("operator", self.operator.len()),
            ("faults.events", self.faults.events.len()),
        ] {
            at_most(field, length, MAX_ENTRIES, "entries")?;
        }
        self.check_tenant_bounds()?;
        self.check_amount_bounds()?;
        self.check_time_bounds()?;
        if let Some(within) = self.expect.incident.as_ref().and_then(|incident| incident.within_seeds) {
            at_most("expect.incident.within_seeds", within, MAX_WITHIN_SEEDS, "seeds")?;
        }
        Ok(())
    }

    fn check_tenant_bounds(&self) -> Result<(), BoundError> {
        let mut contacts = 0u64;
        for (index, tenant) in self.tenants.iter().enumerate() {
            contacts += u64::from(tenant.contacts.count);
            at_most(&format!("tenants[{index}].contacts.count"), contacts, bounds::MAX_CONTACTS, "contacts in all")?;
            let credits = smsim_core::Credits(tenant.credits);
            at_most(&format!("tenants[{index}].credits"), credits, smsim_core::Credits::MAX, "credits")?;
            if tenant.rate_limit_per_s == Some(0) {
                return Err((
                    format!("tenants[{index}].rate_limit_per_s"),
                    "expected at least 1 submission per second (leave it out for no limit)".into(),
                ));
            }
        }
        for (index, account) in self.traffic_accounts.iter().enumerate() {
            let price = smsim_core::Credits(account.price_per_segment);
            let max = smsim_core::Credits::MAX_PRICE_PER_SEGMENT;
            at_most(&format!("traffic_accounts[{index}].price_per_segment"), price, max, "credits")?;
        }
        Ok(())
    }

    /// Credit actions carry an amount the engine's API accepts.
    fn check_amount_bounds(&self) -> Result<(), BoundError> {
        use smsim_core::store::CreditChange;
        for (index, action) in self.operator.iter().enumerate() {
            let change = match (action.action, action.amount) {
                (OperatorVerb::TopUp, Some(amount)) => CreditChange::TopUp(smsim_core::Credits(amount)),
                (OperatorVerb::Adjust, Some(amount)) => CreditChange::Adjust(smsim_core::Credits(amount)),
                _ => continue,
            };
            if let Err(smsim_core::store::StoreError::Invalid { message, .. }) = change.check() {
                return Err((format!("operator[{index}].amount"), message));
            }
        }
        Ok(())
    }

    /// Every time and duration in seconds is finite and within both phases (a NaN
    /// passes every `<` and `>` comparison, so it is refused here by name).
    fn check_time_bounds(&self) -> Result<(), BoundError> {
        for (index, campaign) in self.campaigns.iter().enumerate() {
            seconds(format!("campaigns[{index}].enqueue_at_s"), campaign.enqueue_at_s)?;
            if let Some(delay) = campaign.schedule_in_s {
                seconds(format!("campaigns[{index}].schedule_in_s"), delay)?;
            }
        }
        for (index, action) in self.operator.iter().enumerate() {
            seconds(format!("operator[{index}].at_s"), action.at_s)?;
        }
        for (index, event) in self.faults.events.iter().enumerate() {
            let field = |name: &str| format!("faults.events[{index}].{name}");
            let (at_s, name, length) = match event {
                FaultEvent::Crash { at_s, restart_after_s, .. } => (at_s, "restart_after_s", restart_after_s),
                FaultEvent::Partition { at_s, for_s, .. }
                | FaultEvent::Hold { at_s, for_s, .. }
                | FaultEvent::ProviderOutage { at_s, for_s, .. } => (at_s, "for_s", for_s),
            };
            seconds(field("at_s"), *at_s)?;
            seconds(field(name), *length)?;
        }
        Ok(())
    }
}

impl ScenarioError {
    /// The error with the line of its field in `text`, the file it came from.
    pub fn located(self, text: &str) -> ScenarioError {
        match self {
            ScenarioError::Invalid { path, line: None, field, message } => {
                let line = field_offset(text, &field).map(|offset| line_column(text, offset).0);
                ScenarioError::Invalid { path, line, field, message }
            }
            other => other,
        }
    }
}

/// Where the dotted `field` (`campaigns[1].traffic_account`) is written in `text`: the
/// deepest key or table header of the path that the file spells out.
fn field_offset(text: &str, field: &str) -> Option<usize> {
    let document = toml_edit::ImDocument::parse(text).ok()?;
    let mut table: &dyn toml_edit::TableLike = document.as_table();
    let mut offset = None;
    for segment in field.split('.') {
        let (name, index) = match segment.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        let Some((key, item)) = table.get_key_value(name) else { break };
        offset = key.span().map(|span| span.start).or(offset);
        let next = match (index, item) {
            (Some(index), toml_edit::Item::ArrayOfTables(array)) => {
                let Some(entry) = array.get(index) else { break };
                offset = entry.span().map(|span| span.start).or(offset);
                entry as &dyn toml_edit::TableLike
            }
            (Some(index), toml_edit::Item::Value(toml_edit::Value::Array(array))) => {
                let Some(value) = array.get(index) else { break };
                offset = value.span().map(|span| span.start).or(offset);
                match value.as_inline_table() {
                    Some(inline) => inline as &dyn toml_edit::TableLike,
                    None => break,
                }
            }
            (_, item) => match item.as_table_like() {
                Some(next) => next,
                None => break,
            },
        };
        table = next;
    }
    offset
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.len(), |newline| before.len() - newline - 1) + 1;
    (line, column)
}
