//! Differential test of the stores: the in-memory store is the reference model, and SQLite
//! and PostgreSQL must each give the same answer to every call of a random operation
//! sequence.
//!
//! Each case builds a random setup (tenants, accounts, contacts, enqueued campaigns) and
//! then applies a random operation sequence to a fresh `MemoryStore` and a fresh
//! in-memory `SqliteStore` (or a `PostgresStore` in a fresh schema), comparing every returned value (`Ok` and `Err` alike) as it
//! goes. At the end it compares everything either store shows (journal, tenants,
//! accounts, contacts, campaigns, messages) and checks that the stored counters and
//! credit columns equal a recount in both.
//!
//! Operations name records by a [`Pick`], resolved against the reference store when the
//! operation runs: mostly an existing record, sometimes a missing id or another tenant's.
//! Workers' writes refer to claims made earlier, with the claim's token or a stale one.
//! Delivery reports come one to four to a call, as a webhook (or a group of webhooks
//! committed together) brings them: a store that looks a batch's messages up at once must
//! still answer each report as if the ones before it had been applied alone.
//! Provider ids are mostly the message's own (`p<campaign>_<contact>`), sometimes "ghost"
//! ids that no submission returns, and rarely one shared by several messages — which a
//! provider should never do, and which both stores answer by sending the report to the
//! message that was given the id last.
//!
//! The PostgreSQL arm runs when `SMSIM_TEST_POSTGRES` names a database (see
//! `store::postgres::testing`), each case in a schema of its own.
//!
//! The cases come from a seeded generator, so a default run is the same run every time
//! and its rare paths (`SOMETIMES`) are taken or not by the code alone, not by luck: a
//! random 128 cases missed one of them about once in fifty runs. `DIFFERENTIAL_SEED=N`
//! draws other cases, `PROPTEST_CASES` runs more than the default 128 (explore with both);
//! `DIFFERENTIAL_MARKS=1` prints how often each rare path was taken.

use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
use smsim_core::domain::{
    Audience, CampaignStatus, Message, MessageError, MessageStatus, PauseReason, ProviderKind, ReportStatus,
    UNKNOWN_OUTCOME,
};
use smsim_core::store::conformance::phone;
use smsim_core::store::memory::MemoryStore;
#[cfg(feature = "postgres")]
use smsim_core::store::postgres::testing;
use smsim_core::store::sqlite::SqliteStore;
use smsim_core::store::*;
use smsim_core::{CampaignId, ContactId, Credits, MessageId, TenantId, Timestamp, TrafficAccountId};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Mutex;

const T0: Timestamp = Timestamp(1_700_000_000_000);

/// Most operations after the setup in one generated case.
const MAX_OPS: usize = 60;

// --- the operations -------------------------------------------------------------------------

/// A reference to a record, resolved against the reference store when the operation runs.
#[derive(Clone, Copy, Debug)]
struct Pick(u8);

/// An import row.
#[derive(Clone, Debug)]
struct RowSpec {
    /// `Some(n)`: the n-th valid number (sometimes written with spaces); `None`: garbage.
    phone: Option<u32>,
    spaced: bool,
    attributes: BTreeMap<String, String>,
    opted_out: bool,
}

#[derive(Clone, Debug)]
enum AudienceSpec {
    All,
    Contacts(Vec<Pick>),
    GroupA,
}

#[derive(Clone, Debug)]
struct CampaignSpec {
    name: &'static str,
    body: &'static str,
    sender: Option<&'static str>,
    audience: AudienceSpec,
    account: Pick,
    /// Start relative to now, if scheduled.
    start_in_ms: Option<i64>,
}

#[derive(Clone, Debug)]
enum ResultSpec {
    /// Accepted under the message's own provider id, or under a shared one.
    Accepted {
        bulk: bool,
        shared: Option<u8>,
    },
    Retry {
        code: &'static str,
        delay_ms: u64,
    },
    Failed {
        code: &'static str,
    },
    Unknown,
}

/// Which token a worker's write carries, relative to the claim it refers to.
#[derive(Clone, Copy, Debug)]
enum TokenSpec {
    Current,
    Previous,
    Future,
}

#[derive(Clone, Debug)]
enum PidSpec {
    /// The id the message gets (or got) when accepted.
    Own,
    /// An id no submission returns.
    Ghost(u8),
    /// An id some submissions may share.
    Shared(u8),
}

/// One delivery report: for which message (resolved against the reference when applied),
/// under which provider id and account, naming the message or not.
#[derive(Clone, Debug)]
struct ReportSpec {
    message: usize,
    pid: PidSpec,
    by_reference: bool,
    own_account: bool,
    status: ReportStatus,
    error_code: bool,
}

#[derive(Clone, Debug)]
enum Op {
    Tick {
        ms: u64,
    },
    CreateTenant {
        name: &'static str,
        credits: i64,
        rate: Option<u32>,
    },
    ChangeCredits {
        tenant: Pick,
        change: CreditChange,
    },
    CreateAccount {
        owner: Option<Pick>,
        name: &'static str,
        sender: &'static str,
        price: i64,
        rate: Option<u32>,
        idempotent: bool,
    },
    Import {
        tenant: Pick,
        rows: Vec<RowSpec>,
    },
    CreateCampaign {
        tenant: Pick,
        spec: CampaignSpec,
    },
    UpdateCampaign {
        campaign: Pick,
        spec: CampaignSpec,
        fields: u8,
    },
    Preview {
        campaign: Pick,
    },
    Enqueue {
        campaign: Pick,
        key: Option<(u8, u8)>,
    },
    StartDue,
    Claim {
        account: Option<Pick>,
        max: u32,
        lease_ms: u64,
    },
    RenewLease {
        claim: usize,
        token: TokenSpec,
        lease_ms: u64,
    },
    Record {
        claim: usize,
        token: TokenSpec,
        results: Vec<Option<ResultSpec>>,
        stray: bool,
    },
    /// Reports applied in one call (one webhook, or a group of them committed together).
    Reports {
        reports: Vec<ReportSpec>,
    },
    Reap,
    UnknownMessages {
        limit: u32,
    },
    Resolve {
        message: usize,
        accepted: bool,
    },
    SettleStale {
        older_than_ms: u64,
    },
    Pause {
        campaign: Pick,
        operator: bool,
    },
    Resume {
        campaign: Pick,
    },
    Cancel {
        campaign: Pick,
    },
    RetryFailed {
        campaign: Pick,
    },
    FailuresByCode {
        campaign: Pick,
    },
    QueueStats {
        tenant: Option<Pick>,
    },
    TakeJournal,
}

// --- strategies -----------------------------------------------------------------------------

fn pick() -> impl Strategy<Value = Pick> {
    any::<u8>().prop_map(Pick)
}

fn attributes() -> impl Strategy<Value = BTreeMap<String, String>> {
    let pair = prop_oneof![
        8 => prop::sample::select(vec!["a", "b"]).prop_map(|value| ("group", value)),
        8 => prop::sample::select(vec!["Ann", "Bob", "Ωμέγα", ""]).prop_map(|value| ("name", value)),
        1 => Just(("bad key", "x")),
    ];
    prop::collection::vec(pair, 0..3)
        .prop_map(|pairs| pairs.into_iter().map(|(key, value)| (key.to_owned(), value.to_owned())).collect())
}

fn row() -> impl Strategy<Value = RowSpec> {
    (
        prop_oneof![9 => (0u32..12).prop_map(Some), 1 => Just(None)],
        any::<bool>(),
        attributes(),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.05),
    )
        .prop_map(|(phone, spaced, mut attributes, opted_out, long_value)| {
            if long_value {
                attributes.insert("note".to_owned(), "x".repeat(1025));
            }
            RowSpec { phone, spaced, attributes, opted_out }
        })
}

const GOOD_BODIES: &[&str] = &[
    "Hello {{name|friend}}",
    "{{phone}}: your code is 1234",
    "Group {{group}}: the spring sale ends tonight, everything must go, come early and bring friends! Offer valid in all stores.",
    "Γειά σου {{name}}",
];

fn campaign_spec(valid: bool) -> impl Strategy<Value = CampaignSpec> {
    let mut bodies = GOOD_BODIES.to_vec();
    let mut names = vec!["spring"];
    if !valid {
        bodies.extend(["Unclosed {{name", ""]);
        names.push("  ");
    }
    let audience = prop_oneof![
        4 => Just(AudienceSpec::All),
        2 => prop::collection::vec(pick(), 0..4).prop_map(AudienceSpec::Contacts),
        2 => Just(AudienceSpec::GroupA),
    ];
    (
        prop::sample::select(names),
        prop::sample::select(bodies),
        prop::option::weighted(0.2, Just("ALT")),
        audience,
        pick(),
        prop::option::weighted(0.25, -10_000i64..60_000),
    )
        .prop_map(|(name, body, sender, audience, account, start_in_ms)| CampaignSpec {
            name,
            body,
            sender,
            audience,
            account,
            start_in_ms,
        })
}

fn result_spec() -> impl Strategy<Value = ResultSpec> {
    prop_oneof![
        6 => (any::<bool>(), prop::option::weighted(0.1, 0u8..2))
            .prop_map(|(bulk, shared)| ResultSpec::Accepted { bulk, shared }),
        2 => (prop::sample::select(vec!["HTTP_503", "THROTTLED"]), prop::sample::select(vec![0u64, 1_000, 20_000]))
            .prop_map(|(code, delay_ms)| ResultSpec::Retry { code, delay_ms }),
        2 => prop::sample::select(vec!["INVALID_NUMBER", "HTTP_400", UNKNOWN_OUTCOME])
            .prop_map(|code| ResultSpec::Failed { code }),
        3 => Just(ResultSpec::Unknown),
    ]
}

fn token_spec() -> impl Strategy<Value = TokenSpec> {
    prop_oneof![8 => Just(TokenSpec::Current), 2 => Just(TokenSpec::Previous), 1 => Just(TokenSpec::Future)]
}

fn report_status() -> impl Strategy<Value = ReportStatus> {
    prop_oneof![
        3 => Just(ReportStatus::Accepted),
        5 => Just(ReportStatus::Delivered),
        2 => Just(ReportStatus::Undelivered),
        1 => Just(ReportStatus::Expired),
        1 => Just(ReportStatus::Rejected),
        1 => Just(ReportStatus::Unrecognized("WEIRD".into())),
    ]
}

fn credit_change() -> impl Strategy<Value = CreditChange> {
    prop_oneof![
        (-5i64..500).prop_map(|amount| CreditChange::TopUp(Credits(amount))),
        (-800i64..500).prop_map(|amount| CreditChange::Adjust(Credits(amount))),
        Just(CreditChange::Adjust(Credits::ZERO)),
    ]
}

fn report_spec() -> impl Strategy<Value = ReportSpec> {
    (
        any::<usize>(),
        prop_oneof![
            12 => Just(PidSpec::Own),
            2 => (0u8..3).prop_map(PidSpec::Ghost),
            1 => (0u8..2).prop_map(PidSpec::Shared),
        ],
        prop::bool::weighted(0.5),
        prop::bool::weighted(0.9),
        report_status(),
        prop::bool::weighted(0.3),
    )
        .prop_map(|(message, pid, by_reference, own_account, status, error_code)| ReportSpec {
            message,
            pid,
            by_reference,
            own_account,
            status,
            error_code,
        })
}

fn create_tenant(valid: bool) -> impl Strategy<Value = Op> {
    let names = if valid { vec!["acme", "globex"] } else { vec!["acme", "globex", " "] };
    // A setup's tenants mostly afford their campaigns; later ones often cannot.
    let credits =
        if valid { prop_oneof![1 => 0i64..100, 2 => 2_000i64..6_000].boxed() } else { (-1i64..4_000).boxed() };
    (prop::sample::select(names), credits, prop::option::weighted(0.3, 1u32..4))
        .prop_map(|(name, credits, rate)| Op::CreateTenant { name, credits, rate })
}

fn create_account(valid: bool) -> impl Strategy<Value = Op> {
    let blank = if valid { 0.0 } else { 0.1 };
    (
        prop::option::weighted(
            if valid { 0.15 } else { 0.3 },
            if valid { (0u8..3).prop_map(Pick).boxed() } else { pick().boxed() },
        ),
        prop::bool::weighted(blank),
        prop::bool::weighted(blank),
        if valid { (1i64..30).boxed() } else { (-1i64..30).boxed() },
        prop::option::weighted(0.3, 1u32..4),
        any::<bool>(),
    )
        .prop_map(|(owner, blank_name, blank_sender, price, rate, idempotent)| Op::CreateAccount {
            owner,
            name: if blank_name { "" } else { "main" },
            sender: if blank_sender { "" } else { "SMSIM" },
            price,
            rate,
            idempotent,
        })
}

/// A setup that reaches the interesting states: tenants with contacts, accounts, and
/// campaigns enqueued (or refused for credit) right away. Its picks name records that
/// exist, so most of it succeeds.
fn setup() -> impl Strategy<Value = Vec<Op>> {
    let good_row = (0u32..12, prop::bool::weighted(0.15), attributes()).prop_map(|(n, opted_out, attributes)| {
        let attributes = attributes.into_iter().filter(|(key, _)| key != "bad key").collect();
        RowSpec { phone: Some(n), spaced: false, attributes, opted_out }
    });
    let campaign = (0u8..3, campaign_spec(true), 0u8..3, prop::option::weighted(0.5, (0u8..2, 0u8..2)));
    (
        prop::collection::vec(create_tenant(true), 1..4),
        prop::collection::vec(create_account(true), 1..3),
        prop::collection::vec(prop::collection::vec(good_row, 2..10), 3),
        prop::collection::vec(campaign, 1..4),
    )
        .prop_map(|(tenants, accounts, imports, campaigns)| {
            let tenant_count = tenants.len();
            let mut ops = tenants;
            ops.extend(accounts);
            for (index, rows) in imports.into_iter().take(tenant_count).enumerate() {
                ops.push(Op::Import { tenant: Pick(index as u8), rows });
            }
            for (index, (tenant, mut spec, account, key)) in campaigns.into_iter().enumerate() {
                spec.account = Pick(account);
                if let AudienceSpec::Contacts(picks) = &mut spec.audience {
                    picks.retain(|pick| pick.0 % 10 != 9);
                    if picks.is_empty() {
                        spec.audience = AudienceSpec::All;
                    }
                }
                ops.push(Op::CreateCampaign { tenant: Pick(tenant), spec });
                ops.push(Op::Enqueue { campaign: Pick(index as u8), key });
            }
            ops
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::sample::select(vec![0u64, 1, 250, 1_000, 5_000, 30_000, 120_000]).prop_map(|ms| Op::Tick { ms }),
        1 => create_tenant(false),
        1 => (pick(), credit_change()).prop_map(|(tenant, change)| Op::ChangeCredits { tenant, change }),
        1 => create_account(false),
        2 => (pick(), prop::collection::vec(row(), 0..7)).prop_map(|(tenant, rows)| Op::Import { tenant, rows }),
        2 => (pick(), campaign_spec(false)).prop_map(|(tenant, spec)| Op::CreateCampaign { tenant, spec }),
        1 => (pick(), campaign_spec(false), any::<u8>())
            .prop_map(|(campaign, spec, fields)| Op::UpdateCampaign { campaign, spec, fields }),
        1 => pick().prop_map(|campaign| Op::Preview { campaign }),
        3 => (pick(), prop::option::weighted(0.6, (0u8..2, 0u8..2))).prop_map(|(campaign, key)| Op::Enqueue { campaign, key }),
        1 => Just(Op::StartDue),
        8 => (prop::option::weighted(0.3, pick()), 0u32..7, prop::sample::select(vec![0u64, 5_000, 30_000]))
            .prop_map(|(account, max, lease_ms)| Op::Claim { account, max, lease_ms }),
        1 => (any::<usize>(), token_spec(), prop::sample::select(vec![0u64, 5_000, 60_000]))
            .prop_map(|(claim, token, lease_ms)| Op::RenewLease { claim, token, lease_ms }),
        8 => (
            any::<usize>(),
            token_spec(),
            prop::collection::vec(prop::option::weighted(0.85, result_spec()), 0..7),
            prop::bool::weighted(0.03),
        )
            .prop_map(|(claim, token, results, stray)| Op::Record { claim, token, results, stray }),
        8 => prop::collection::vec(report_spec(), 1..5).prop_map(|reports| Op::Reports { reports }),
        2 => Just(Op::Reap),
        1 => (0u32..5).prop_map(|limit| Op::UnknownMessages { limit }),
        3 => (any::<usize>(), any::<bool>()).prop_map(|(message, accepted)| Op::Resolve { message, accepted }),
        1 => prop::sample::select(vec![0u64, 10_000, 60_000]).prop_map(|older_than_ms| Op::SettleStale { older_than_ms }),
        1 => (pick(), any::<bool>()).prop_map(|(campaign, operator)| Op::Pause { campaign, operator }),
        1 => pick().prop_map(|campaign| Op::Resume { campaign }),
        1 => pick().prop_map(|campaign| Op::Cancel { campaign }),
        1 => pick().prop_map(|campaign| Op::RetryFailed { campaign }),
        1 => pick().prop_map(|campaign| Op::FailuresByCode { campaign }),
        1 => prop::option::weighted(0.5, pick()).prop_map(|tenant| Op::QueueStats { tenant }),
        1 => Just(Op::TakeJournal),
    ]
}

// --- running a sequence against both stores ---------------------------------------------------

struct Pair {
    reference: MemoryStore,
    /// The store under test, and its name for messages.
    subject: Box<dyn Store>,
    subject_name: &'static str,
    now: Timestamp,
    /// Every claim made so far, in order; workers' writes refer to them.
    claims: Vec<Claim>,
    /// How often each rare path was taken (coverage marks).
    marks: BTreeMap<&'static str, u32>,
    step: usize,
}

fn provider_id(id: MessageId) -> String {
    format!("p{}_{}", id.campaign.0, id.contact.0)
}

/// A provider id given to more than one message (a provider should never do it).
fn shared_provider_id(n: u8) -> String {
    format!("shared-{n}")
}

fn error(code: &str) -> MessageError {
    MessageError { code: code.to_owned(), retryable: false, detail: code.to_lowercase() }
}

/// The submission result `spec` describes for message `id`.
fn submission(id: MessageId, spec: &ResultSpec, token: u64, now: Timestamp) -> SubmissionResult {
    match *spec {
        ResultSpec::Accepted { bulk, shared } => SubmissionResult::Accepted {
            provider_message_id: shared.map_or_else(|| provider_id(id), shared_provider_id),
            bulk_id: bulk.then(|| format!("bulk-{token}")),
        },
        ResultSpec::Retry { code, delay_ms } => SubmissionResult::Retry {
            error: MessageError { retryable: true, ..error(code) },
            next_attempt_at: now.plus_ms(delay_ms),
        },
        ResultSpec::Failed { code } => SubmissionResult::Failed { error: error(code) },
        ResultSpec::Unknown => SubmissionResult::Unknown { error: error("TIMEOUT") },
    }
}

fn import_row(row: &RowSpec) -> NewContact {
    let phone = match row.phone {
        Some(n) if row.spaced => {
            let number = phone(n);
            format!("{} {} {}", &number[..3], &number[3..7], &number[7..])
        }
        Some(n) => phone(n),
        None => "12345".to_owned(),
    };
    NewContact { phone, attributes: row.attributes.clone(), opted_out: row.opted_out }
}

impl Pair {
    fn new(subject: Box<dyn Store>, subject_name: &'static str) -> Self {
        Pair {
            reference: MemoryStore::new(),
            subject,
            subject_name,
            now: T0,
            claims: Vec::new(),
            marks: BTreeMap::new(),
            step: 0,
        }
    }

    /// Runs `call` on both stores, asserts equal answers and returns the reference's.
    fn both<T: PartialEq + Debug>(&self, what: &str, call: impl Fn(&dyn Store) -> T) -> T {
        let expected = call(&self.reference);
        let actual = call(self.subject.as_ref());
        assert_eq!(
            expected, actual,
            "step {}: {what}: the {} store (right) disagrees with the reference (left)",
            self.step, self.subject_name
        );
        expected
    }

    /// Runs `call` on both stores and asserts equal answers.
    fn check<T: PartialEq + Debug>(&self, what: &str, call: impl Fn(&dyn Store) -> T) {
        let _answer = self.both(what, call);
    }

    fn mark(&mut self, mark: &'static str) {
        *self.marks.entry(mark).or_default() += 1;
    }

    // --- resolving picks against the reference --------------------------------------------

    fn tenant(&self, pick: Pick) -> TenantId {
        let tenants = self.reference.tenants().expect("tenants");
        match tenants.get(usize::from(pick.0) % tenants.len().max(1)) {
            Some(tenant) if pick.0 % 8 != 7 => tenant.id,
            _ => TenantId(tenants.len() as u64 + 1),
        }
    }

    fn account(&self, pick: Pick) -> TrafficAccountId {
        let accounts = self.reference.traffic_accounts().expect("accounts");
        match accounts.get(usize::from(pick.0) % accounts.len().max(1)) {
            Some(account) if pick.0 % 8 != 7 => account.id,
            _ => TrafficAccountId(accounts.len() as u64 + 1),
        }
    }

    /// A campaign and the tenant asking for it: mostly its own, sometimes another.
    fn campaign(&self, pick: Pick) -> (TenantId, CampaignId) {
        let campaigns = self.reference.all_campaigns().expect("campaigns");
        match campaigns.get(usize::from(pick.0) % campaigns.len().max(1)) {
            Some(campaign) if pick.0 % 10 == 9 => (TenantId(campaign.tenant.0 % 3 + 1), campaign.id),
            Some(campaign) if pick.0 % 10 != 8 => (campaign.tenant, campaign.id),
            _ => (TenantId(1), CampaignId(campaigns.len() as u64 + 1)),
        }
    }

    fn contact(&self, tenant: TenantId, pick: Pick) -> ContactId {
        let contacts = self.reference.contacts(tenant).unwrap_or_default();
        match contacts.get(usize::from(pick.0) % contacts.len().max(1)) {
            Some(contact) if pick.0 % 10 != 9 => contact.id,
            // Another tenant's contact, or none at all.
            _ => ContactId(u64::from(pick.0 % 20) + 1),
        }
    }

    /// Every message of the reference store, in id order.
    fn known_messages(&self) -> Vec<Message> {
        let campaigns = self.reference.all_campaigns().expect("campaigns");
        campaigns.iter().flat_map(|campaign| self.reference.messages(campaign.id).expect("messages")).collect()
    }

    /// A message for a report: mostly one the provider may have (accepted or unknown),
    /// sometimes one a worker holds, sometimes any.
    /// The report `spec` describes, its message picked from the reference as it is now.
    fn report(&self, spec: &ReportSpec) -> InboundReport {
        let (target, account) = match self.report_target(spec.message) {
            Some(message) => (message.id, message.traffic_account),
            None => (MessageId::new(CampaignId(1), ContactId(1)), TrafficAccountId(1)),
        };
        InboundReport {
            traffic_account: if spec.own_account { account } else { TrafficAccountId(account.0 % 3 + 1) },
            provider_message_id: match spec.pid {
                PidSpec::Own => provider_id(target),
                PidSpec::Ghost(n) => format!("ghost-{n}"),
                PidSpec::Shared(n) => shared_provider_id(n),
            },
            message_ref: spec.by_reference.then_some(target),
            status: spec.status.clone(),
            error_code: spec.error_code.then(|| "E42".to_owned()),
        }
    }

    fn report_target(&self, index: usize) -> Option<Message> {
        let known = self.known_messages();
        let with = |statuses: &[MessageStatus]| -> Vec<&Message> {
            known.iter().filter(|message| statuses.contains(&message.status)).collect()
        };
        let pools = [
            with(&[MessageStatus::Accepted, MessageStatus::Unknown]),
            with(&[MessageStatus::Accepted, MessageStatus::Unknown]),
            with(&[MessageStatus::Submitting]),
            known.iter().filter(|message| message.attempts > 0).collect(),
            known.iter().collect(),
        ];
        let pool = pools[index % pools.len()].clone();
        let pool = if pool.is_empty() { known.iter().collect() } else { pool };
        pool.get(index / pools.len() % pool.len().max(1)).map(|message| (*message).clone())
    }

    fn claim_token(&self, index: usize, spec: TokenSpec) -> Option<(u64, &Claim)> {
        if self.claims.is_empty() {
            return None;
        }
        // Mostly one of the last few claims: writes for claims long gone are all fenced.
        let back = if index % 4 == 0 { index / 4 % self.claims.len() } else { index % self.claims.len().min(2) };
        let claim = &self.claims[self.claims.len() - 1 - back];
        let token = match spec {
            TokenSpec::Current => claim.token,
            TokenSpec::Previous => claim.token.saturating_sub(1),
            TokenSpec::Future => claim.token + 1_000,
        };
        Some((token, claim))
    }

    fn new_campaign(&self, tenant: TenantId, spec: &CampaignSpec) -> NewCampaign {
        let audience = match &spec.audience {
            AudienceSpec::All => Audience::All,
            AudienceSpec::Contacts(picks) => {
                Audience::Contacts { ids: picks.iter().map(|&pick| self.contact(tenant, pick)).collect() }
            }
            AudienceSpec::GroupA => Audience::Attribute { key: "group".into(), value: "a".into() },
        };
        NewCampaign {
            name: spec.name.to_owned(),
            body_template: spec.body.to_owned(),
            sender: spec.sender.map(str::to_owned),
            audience,
            traffic_account: self.account(spec.account),
            schedule_at: spec.start_in_ms.map(|offset| Timestamp(self.now.0.saturating_add_signed(offset))),
        }
    }

    // --- applying operations ------------------------------------------------------------------

    fn apply(&mut self, op: &Op) {
        self.step += 1;
        let now = self.now;
        let what = format!("{op:?} at {now}");
        match op.clone() {
            Op::Tick { ms } => self.now = now.plus_ms(ms),
            Op::CreateTenant { name, credits, rate } => {
                let new = NewTenant {
                    name: name.to_owned(),
                    api_key_hash: sha256_hex(format!("{name}-{}", self.step).as_bytes()),
                    credits: Credits(credits),
                    rate_limit_per_s: rate,
                };
                self.check(&what, |store| store.create_tenant(new.clone(), now));
            }
            Op::ChangeCredits { tenant, change } => {
                let tenant = self.tenant(tenant);
                self.check(&what, |store| store.change_credits(tenant, change, now));
            }
            Op::CreateAccount { owner, name, sender, price, rate, idempotent } => {
                let new = NewTrafficAccount {
                    owner: owner.map(|owner| self.tenant(owner)),
                    name: name.to_owned(),
                    provider: if idempotent { ProviderKind::Twilio } else { ProviderKind::Mitto },
                    base_url: "http://provider".to_owned(),
                    credentials: BTreeMap::from([("api_key".to_owned(), format!("secret-{}", self.step))]),
                    sender: sender.to_owned(),
                    rate_limit_per_s: rate,
                    price_per_segment: Credits(price),
                    idempotent_submissions: idempotent,
                };
                self.check(&what, |store| store.create_traffic_account(new.clone()));
            }
            Op::Import { tenant, rows } => {
                let tenant = self.tenant(tenant);
                let rows: Vec<NewContact> = rows.iter().map(import_row).collect();
                self.check(&what, |store| store.import_contacts(tenant, rows.clone(), now));
            }
            Op::CreateCampaign { tenant, spec } => {
                let tenant = self.tenant(tenant);
                let new = self.new_campaign(tenant, &spec);
                self.check(&what, |store| store.create_campaign(tenant, new.clone(), now));
            }
            Op::UpdateCampaign { campaign, spec, fields } => {
                let (tenant, campaign) = self.campaign(campaign);
                let new = self.new_campaign(tenant, &spec);
                let has = |bit: u8| fields & (1 << bit) != 0;
                let patch = CampaignPatch {
                    name: has(0).then(|| new.name.clone()),
                    body_template: has(1).then(|| new.body_template.clone()),
                    sender: has(2).then(|| new.sender.clone()),
                    audience: has(3).then(|| new.audience.clone()),
                    traffic_account: has(4).then_some(new.traffic_account),
                    schedule_at: has(5).then_some(new.schedule_at),
                };
                self.check(&what, |store| store.update_campaign(tenant, campaign, patch.clone(), now));
            }
            Op::Preview { campaign } => {
                let (tenant, campaign) = self.campaign(campaign);
                self.check(&what, |store| store.preview(tenant, campaign));
            }
            Op::Enqueue { campaign, key } => self.enqueue(&what, campaign, key),
            Op::StartDue => {
                if self.both(&what, |store| store.start_due_campaigns(now)).is_ok_and(|started| !started.is_empty()) {
                    self.mark("scheduled campaign started");
                }
            }
            Op::Claim { account, max, lease_ms } => {
                let request = ClaimRequest {
                    worker: format!("worker-{}", self.step % 3),
                    traffic_account: account.map(|account| self.account(account)),
                    max_messages: max,
                    lease_ms,
                    burst: Default::default(),
                };
                match self.both(&what, |store| store.claim(request.clone(), now)) {
                    Ok(ClaimOutcome::Claimed(claim)) => {
                        self.mark("claimed");
                        self.claims.push(claim);
                    }
                    Ok(ClaimOutcome::Idle(IdleReason::RateLimited { .. })) if max > 0 => self.mark("rate limited"),
                    _ => {}
                }
            }
            Op::RenewLease { claim, token, lease_ms } => {
                let token = self.claim_token(claim, token).map_or(1, |(token, _)| token);
                self.check(&what, |store| store.renew_lease(token, lease_ms, now));
            }
            Op::Record { claim, token, results, stray } => self.record(&what, claim, token, &results, stray),
            Op::Reports { reports } => {
                let reports: Vec<InboundReport> = reports.iter().map(|spec| self.report(spec)).collect();
                let outcomes = match &reports[..] {
                    [report] => {
                        self.both(&what, |store| store.apply_report(report.clone(), now)).map(|outcome| vec![outcome])
                    }
                    _ => {
                        self.mark("reports applied in one call");
                        self.both(&what, |store| store.apply_reports(reports.clone(), now))
                    }
                };
                let Ok(outcomes) = outcomes else {
                    self.mark("report refused");
                    return;
                };
                for outcome in outcomes {
                    self.mark(match outcome {
                        ReportOutcome::Applied { from: MessageStatus::Unknown, .. } => "report resolved an unknown",
                        ReportOutcome::Applied { .. } => "report applied",
                        ReportOutcome::Duplicate { .. } => "report duplicate",
                        ReportOutcome::IgnoredBackwards { .. } => "report ignored backwards",
                        ReportOutcome::Parked => "report parked",
                        ReportOutcome::Unrecognized => "report unrecognized",
                    });
                }
            }
            Op::Reap => {
                if let Ok(reaped) = self.both(&what, |store| store.reap_expired_leases(now)) {
                    if !reaped.unknown.is_empty() {
                        self.mark("lease reaped to unknown");
                    }
                    if !reaped.requeued.is_empty() {
                        self.mark("lease reaped to queue");
                    }
                }
            }
            Op::UnknownMessages { limit } => {
                self.check(&what, |store| store.unknown_messages(limit));
            }
            Op::Resolve { message, accepted } => {
                // Mostly unknown messages (the interesting case), sometimes any message.
                let unknown = self.reference.unknown_messages(u32::MAX).expect("unknown messages");
                let candidates = if unknown.is_empty() || message % 4 == 0 { self.known_messages() } else { unknown };
                let target = candidates
                    .get(message % candidates.len().max(1))
                    .map_or(MessageId::new(CampaignId(1), ContactId(1)), |message| message.id);
                let resolution = if accepted {
                    Resolution::Accepted { provider_message_id: provider_id(target) }
                } else {
                    Resolution::NotAccepted { error: error("NOT_FOUND_AT_PROVIDER") }
                };
                if self.both(&what, |store| store.resolve_unknown(target, resolution.clone(), now)) == Ok(true) {
                    self.mark("unknown resolved");
                }
            }
            Op::SettleStale { older_than_ms } => {
                let settled = self.both(&what, |store| store.settle_stale_unknowns(older_than_ms, now));
                if settled.is_ok_and(|settled| !settled.is_empty()) {
                    self.mark("stale unknown settled");
                }
            }
            Op::Pause { campaign, operator } => {
                let (tenant, campaign) = self.campaign(campaign);
                let reason = if operator { PauseReason::Operator } else { PauseReason::InsufficientCredits };
                if self.both(&what, |store| store.pause(tenant, campaign, reason.clone(), now)).is_ok() {
                    self.mark("campaign paused");
                }
            }
            Op::Resume { campaign } => {
                let (tenant, campaign) = self.campaign(campaign);
                if self.both(&what, |store| store.resume(tenant, campaign, now)).is_ok() {
                    self.mark("campaign resumed");
                }
            }
            Op::Cancel { campaign } => {
                let (tenant, campaign) = self.campaign(campaign);
                if self.both(&what, |store| store.cancel(tenant, campaign, now)).is_ok() {
                    self.mark("campaign cancelled");
                }
            }
            Op::RetryFailed { campaign } => {
                let (tenant, campaign) = self.campaign(campaign);
                let retried = self.both(&what, |store| store.retry_failed(tenant, campaign, now));
                if retried.is_ok_and(|receipt| receipt.requeued > 0) {
                    self.mark("failed messages requeued");
                }
            }
            Op::FailuresByCode { campaign } => {
                let (tenant, campaign) = self.campaign(campaign);
                self.check(&what, |store| store.failures_by_code(tenant, campaign));
            }
            Op::QueueStats { tenant } => {
                let tenant = tenant.map(|tenant| self.tenant(tenant));
                self.check(&what, |store| store.queue_stats(tenant, now));
            }
            Op::TakeJournal => {
                self.check(&what, |store| store.take_journal());
            }
        }
    }

    fn enqueue(&mut self, what: &str, campaign: Pick, key: Option<(u8, u8)>) {
        let now = self.now;
        let (tenant, campaign) = self.campaign(campaign);
        let key =
            key.map(|(key, hash)| IdempotencyKey { key: format!("key-{key}"), request_hash: format!("hash-{hash}") });
        let receipt = self.both(what, |store| store.enqueue(tenant, campaign, key.clone(), now));
        match receipt {
            Ok(receipt) if receipt.replayed => self.mark("enqueue replayed"),
            Ok(receipt) => self.mark(match receipt.status {
                CampaignStatus::Scheduled => "enqueued scheduled",
                CampaignStatus::Completed => "enqueued all skipped",
                _ => "enqueued",
            }),
            Err(StoreError::InsufficientCredits { .. }) => self.mark("enqueue refused for credit"),
            Err(StoreError::IdempotencyMismatch { .. }) => self.mark("idempotency key mismatch"),
            Err(StoreError::Conflict(_)) => self.mark("enqueue of a started campaign refused"),
            Err(_) => {}
        }
    }

    fn record(&mut self, what: &str, claim: usize, token: TokenSpec, results: &[Option<ResultSpec>], stray: bool) {
        let now = self.now;
        let Some((token, claim)) = self.claim_token(claim, token) else { return };
        let mut batch: Vec<(MessageId, SubmissionResult)> = claim
            .messages
            .iter()
            .zip(results)
            .filter_map(|(message, spec)| Some((message.id, submission(message.id, spec.as_ref()?, token, now))))
            .collect();
        if stray {
            let missing = MessageId::new(CampaignId(99), ContactId(1));
            batch.insert(batch.len() / 2, (missing, SubmissionResult::Failed { error: error("HTTP_400") }));
        }
        let outcomes = self.both(what, |store| store.record_submissions(token, batch.clone(), now));
        for outcome in outcomes.unwrap_or_default() {
            self.mark(match outcome {
                RecordOutcome::Fenced { .. } => "submission fenced",
                RecordOutcome::Recorded { parked_reports_applied, .. } if parked_reports_applied > 0 => {
                    "parked report applied on acceptance"
                }
                RecordOutcome::Recorded { .. } => "submission recorded",
            });
        }
    }

    /// Compares everything the stores show and checks both against their own recounts.
    fn assert_same_state(&mut self) {
        self.check("take_journal", |store| store.take_journal());
        let tenants = self.both("tenants", |store| store.tenants()).expect("tenants");
        self.check("traffic_accounts", |store| store.traffic_accounts());
        let campaigns = self.both("all_campaigns", |store| store.all_campaigns()).expect("campaigns");
        if campaigns.iter().any(|campaign| campaign.status == CampaignStatus::Completed) {
            self.mark("campaign completed");
        }
        for tenant in &tenants {
            self.check("contacts", |store| store.contacts(tenant.id));
            self.check("tenant_by_api_key_hash", |store| store.tenant_by_api_key_hash(&tenant.api_key_hash));
            for store in [&self.reference as &dyn Store, self.subject.as_ref()] {
                let recount = store.ledger_recount(tenant.id).expect("ledger recount");
                assert_eq!(
                    (tenant.reserved, tenant.charged),
                    (recount.reserved, recount.charged),
                    "credit columns of {} differ from its messages",
                    tenant.id
                );
            }
        }
        for campaign in &campaigns {
            self.check("messages", |store| store.messages(campaign.id));
            for store in [&self.reference as &dyn Store, self.subject.as_ref()] {
                assert_eq!(
                    store.recount(campaign.id).expect("recount"),
                    campaign.counts,
                    "counters of {}",
                    campaign.id
                );
            }
        }
        self.check("queue_stats", |store| store.queue_stats(None, self.now));
        for tenant in &tenants {
            self.check("queue_stats of a tenant", |store| store.queue_stats(Some(tenant.id), self.now));
        }
        self.check("unknown_messages", |store| store.unknown_messages(u32::MAX));
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|cases| cases.parse().ok()).unwrap_or(128)
}

/// The generator's seed: `DIFFERENTIAL_SEED`, else 1.
fn seed() -> u64 {
    std::env::var("DIFFERENTIAL_SEED").ok().and_then(|seed| seed.parse().ok()).unwrap_or(1)
}

/// Rare paths that a default run must take at least once, or a green run proves little.
const SOMETIMES: &[&str] = &[
    "claimed",
    "submission recorded",
    "submission fenced",
    "parked report applied on acceptance",
    "report applied",
    "report parked",
    "report duplicate",
    "report resolved an unknown",
    "reports applied in one call",
    "lease reaped to unknown",
    "unknown resolved",
    "enqueue replayed",
    "enqueue refused for credit",
    "rate limited",
    "campaign completed",
];

/// always: every call answers the same on SQLite as on the reference model, and both end
/// in the same state with counters and credit columns equal to a recount.
/// sometimes: the run went through each of the [`SOMETIMES`] paths.
#[test]
fn sqlite_agrees_with_the_reference_model() {
    agrees_with_the_reference_model(
        "SQLite",
        concat!(module_path!(), "::sqlite_agrees_with_the_reference_model"),
        cases(),
        &|| Some(Box::new(SqliteStore::open_in_memory().expect("open an in-memory SQLite store"))),
    );
}

/// The same properties on PostgreSQL, each case in a schema of its own.
#[cfg(feature = "postgres")]
#[test]
fn postgres_agrees_with_the_reference_model() {
    let test = "postgres_agrees_with_the_reference_model";
    if testing::test_database_url(test).is_none() {
        return;
    }
    agrees_with_the_reference_model(
        "PostgreSQL",
        concat!(module_path!(), "::postgres_agrees_with_the_reference_model"),
        cases(),
        &|| testing::test_store(test).map(|store| Box::new(store) as Box<dyn Store>),
    );
}

fn agrees_with_the_reference_model(
    subject_name: &'static str,
    test_name: &'static str,
    cases: u32,
    make: &dyn Fn() -> Option<Box<dyn Store>>,
) {
    let config =
        ProptestConfig { cases, source_file: Some(file!()), test_name: Some(test_name), ..ProptestConfig::default() };
    let marks: Mutex<BTreeMap<&'static str, u32>> = Mutex::new(BTreeMap::new());
    let strategy = (setup(), prop::collection::vec(op(), 1..MAX_OPS));
    let mut seed = [0; 32];
    seed[..8].copy_from_slice(&self::seed().to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed);
    let outcome = TestRunner::new_with_rng(config, rng).run(&strategy, |(setup, ops)| {
        let mut pair = Pair::new(make().expect("a store to test"), subject_name);
        for op in setup.iter().chain(&ops) {
            pair.apply(op);
        }
        pair.assert_same_state();
        let mut total = marks.lock().expect("marks");
        for (mark, count) in pair.marks {
            *total.entry(mark).or_default() += count;
        }
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    let marks = marks.into_inner().expect("marks");
    if std::env::var_os("DIFFERENTIAL_MARKS").is_some() {
        eprintln!("{marks:#?}");
    }
    for mark in SOMETIMES {
        assert!(marks.contains_key(mark), "no case went through `{mark}`: {marks:?}");
    }
}
