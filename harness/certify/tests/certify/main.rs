//! The certification kit, both ways: the shipped adapters pass every clause that applies
//! to them, and adapters broken in one known way fail the clause that names the defect.

use smsim_certify::profiles::{InfobipProfile, MittoProfile, TwilioProfile};
use smsim_certify::{self as certify, Options, Outcome, Report, Subject, CLAUSES};
use smsim_core::adapter::infobip;
use smsim_core::adapter::twilio::{self, TwilioAdapter};
use smsim_core::adapter::{
    adapter_for, Capabilities, LookupOutcome, OutboundMessage, ParsedReport, ProviderAdapter, SubmitOutcome,
    WebhookError, WebhookRequest,
};
use smsim_core::domain::ProviderKind;
use smsim_core::incidents::{self, Bug};
use std::collections::BTreeSet;
use std::sync::Arc;

fn options(only: &[&str]) -> Options {
    Options { only: only.iter().map(|id| id.to_string()).collect(), system_seeds: 2, ..Options::default() }
}

fn failed(report: &Report) -> BTreeSet<&'static str> {
    report.failures().into_iter().collect()
}

#[test]
fn clause_ids_are_unique_and_statements_present() {
    let ids: BTreeSet<&str> = CLAUSES.iter().map(|clause| clause.id).collect();
    assert_eq!(ids.len(), CLAUSES.len(), "duplicate clause ids");
    assert!(CLAUSES.iter().all(|clause| !clause.statement.is_empty() && clause.id.contains('.')));
    assert_eq!(certify::selected(&options(&["webhook"])).len(), 9);
    assert_eq!(certify::selected(&options(&["submit"])).len(), 17);
    assert_eq!(certify::selected(&options(&["submit.codes"])).len(), 1);
    assert!(certify::selected(&options(&["submit.cod"])).is_empty(), "a prefix must end at a dot");
}

#[test]
fn the_shipped_adapters_pass_every_clause_that_applies() {
    for subject in Subject::builtins() {
        let report = certify::certify(&subject, &options(&[]));
        assert!(report.passed(), "{}", report.table());
        let ran = report.clauses.iter().filter(|clause| clause.outcome == Outcome::Pass).count();
        assert!(ran >= 22, "{}: only {ran} clauses ran:\n{}", subject.name, report.table());
    }
}

#[test]
fn the_reports_render_as_a_table_and_json() {
    let report =
        certify::certify(&Subject::builtin(ProviderKind::Twilio), &options(&["submit.single", "submit.batch"]));
    let table = report.table();
    assert!(table.contains("submit.single") && table.contains("n/a") && table.contains("1 passed"), "{table}");
    let json: serde_json::Value = serde_json::to_value(&report).unwrap();
    assert_eq!(json["clauses"][0]["outcome"]["result"], "pass");
    assert_eq!(json["clauses"][1]["outcome"]["result"], "not_applicable");
}

// --- broken adapters --------------------------------------------------------------------------

/// Wraps a real adapter and spoils its submit outcomes.
#[derive(Debug)]
struct Spoiled {
    inner: Arc<dyn ProviderAdapter>,
    spoil: fn(SubmitOutcome) -> SubmitOutcome,
}

#[async_trait::async_trait]
impl ProviderAdapter for Spoiled {
    fn kind(&self) -> ProviderKind {
        self.inner.kind()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn submit(&self, batch: &[OutboundMessage]) -> Vec<SubmitOutcome> {
        self.inner.submit(batch).await.into_iter().map(self.spoil).collect()
    }
    async fn lookup(&self, message: &OutboundMessage) -> LookupOutcome {
        self.inner.lookup(message).await
    }
    fn parse_webhook(&self, request: &WebhookRequest) -> Result<Vec<ParsedReport>, WebhookError> {
        self.inner.parse_webhook(request)
    }
}

fn spoiled(kind: ProviderKind, spoil: fn(SubmitOutcome) -> SubmitOutcome) -> Subject {
    let built = Subject::builtin(kind);
    Subject {
        name: format!("{}-spoiled", built.name),
        build: Arc::new(move |account, client, base| {
            Ok(Arc::new(Spoiled { inner: adapter_for(account, client, base)?, spoil }) as Arc<dyn ProviderAdapter>)
        }),
        ..built
    }
}

#[test]
fn an_adapter_that_treats_timeouts_as_failures_fails_the_timeout_clauses() {
    let subject = spoiled(ProviderKind::Mitto, |outcome| match outcome {
        SubmitOutcome::Ambiguous { detail } => SubmitOutcome::Failed(smsim_core::adapter::ProviderFailure {
            code: "TIMEOUT".into(),
            retryable: true,
            retry_after_ms: None,
            detail,
        }),
        other => other,
    });
    let report = certify::certify(&subject, &Options { system_seeds: 4, ..options(&["submit", "system.faults"]) });
    let failed = failed(&report);
    // In the simulator a timed-out submission that the provider took is retried and
    // accepted twice: the oracle's at-most-once invariant names the defect too.
    for clause in ["submit.timeout", "submit.hang-up", "submit.malformed", "submit.missing", "system.faults"] {
        assert!(failed.contains(clause), "expected {clause} to fail:\n{}", report.table());
    }
    assert!(!failed.contains("submit.single"), "{}", report.table());
}

#[test]
fn an_adapter_that_retries_every_4xx_fails_the_classification_clauses() {
    let subject = spoiled(ProviderKind::Twilio, |outcome| match outcome {
        SubmitOutcome::Failed(failure) => {
            SubmitOutcome::Failed(smsim_core::adapter::ProviderFailure { retryable: true, ..failure })
        }
        other => other,
    });
    let report = certify::certify(&subject, &options(&["submit"]));
    let failed = failed(&report);
    for clause in ["submit.client-error", "submit.codes", "submit.partial"] {
        assert!(failed.contains(clause), "expected {clause} to fail:\n{}", report.table());
    }
    for clause in ["submit.throttled", "submit.server-error", "submit.single"] {
        assert!(!failed.contains(clause), "{clause} should still pass:\n{}", report.table());
    }
}

/// The Twilio adapter with its signature check forgotten.
#[derive(Debug)]
struct Unsigned(TwilioAdapter);

#[async_trait::async_trait]
impl ProviderAdapter for Unsigned {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Twilio
    }
    fn capabilities(&self) -> Capabilities {
        twilio::CAPABILITIES
    }
    async fn submit(&self, batch: &[OutboundMessage]) -> Vec<SubmitOutcome> {
        self.0.submit(batch).await
    }
    async fn lookup(&self, message: &OutboundMessage) -> LookupOutcome {
        self.0.lookup(message).await
    }
    fn parse_webhook(&self, request: &WebhookRequest) -> Result<Vec<ParsedReport>, WebhookError> {
        let callback: twilio::wire::StatusCallback =
            serde_urlencoded::from_bytes(&request.body).map_err(|error| WebhookError::Malformed(error.to_string()))?;
        Ok(vec![ParsedReport {
            status: twilio::report_status(&callback.message_status),
            provider_message_id: callback.message_sid,
            message_ref: None,
            error_code: callback.error_code,
        }])
    }
}

#[test]
fn an_adapter_that_does_not_check_signatures_fails_the_authentication_clauses() {
    let subject = Subject::new("twilio-unsigned", TwilioProfile::default(), |account, client, base| {
        Ok(Arc::new(Unsigned(TwilioAdapter::from_account(account, client, base)?)) as Arc<dyn ProviderAdapter>)
    });
    let report = certify::certify(&subject, &options(&["webhook"]));
    let failed = failed(&report);
    for clause in ["webhook.auth", "webhook.replayed"] {
        assert!(failed.contains(clause), "expected {clause} to fail:\n{}", report.table());
    }
    assert!(!failed.contains("webhook.statuses"), "{}", report.table());
}

#[test]
fn incident_003_bulk_ids_on_the_wrong_messages_fails_the_batch_clause() {
    incidents::activate(Some(Bug::BulkIdsShifted)).unwrap();
    let report = certify::certify(&Subject::builtin(ProviderKind::Mitto), &options(&["submit.batch", "submit.single"]));
    incidents::activate(None).unwrap();
    assert_eq!(failed(&report), BTreeSet::from(["submit.batch"]), "{}", report.table());
}

#[test]
fn an_engine_that_counts_every_report_fails_the_duplicate_clause() {
    incidents::activate(Some(Bug::CounterPerReport)).unwrap();
    let report = certify::certify(&Subject::builtin(ProviderKind::Mitto), &options(&["webhook.duplicates"]));
    incidents::activate(None).unwrap();
    assert_eq!(failed(&report), BTreeSet::from(["webhook.duplicates"]), "{}", report.table());
}

#[test]
fn an_adapter_that_leaks_its_key_fails_the_secrets_clause() {
    #[derive(Debug)]
    struct Leaky(Arc<dyn ProviderAdapter>, String);
    #[async_trait::async_trait]
    impl ProviderAdapter for Leaky {
        fn kind(&self) -> ProviderKind {
            self.0.kind()
        }
        fn capabilities(&self) -> Capabilities {
            self.0.capabilities()
        }
        async fn submit(&self, batch: &[OutboundMessage]) -> Vec<SubmitOutcome> {
            tracing::info!(api_key = %self.1, "submitting");
            self.0.submit(batch).await
        }
        async fn lookup(&self, message: &OutboundMessage) -> LookupOutcome {
            self.0.lookup(message).await
        }
        fn parse_webhook(&self, request: &WebhookRequest) -> Result<Vec<ParsedReport>, WebhookError> {
            self.0.parse_webhook(request)
        }
    }
    let subject = Subject::new("mitto-leaky", MittoProfile::default(), |account, client, base| {
        let key = account.credentials["api_key"].clone();
        Ok(Arc::new(Leaky(adapter_for(account, client, base)?, key)) as Arc<dyn ProviderAdapter>)
    });
    let report = certify::certify(&subject, &options(&["submit.secrets"]));
    assert_eq!(failed(&report), BTreeSet::from(["submit.secrets"]), "{}", report.table());
}

/// Sends every message without its sender. Infobip takes that (its `from` is optional)
/// and sends from the account's default: the provider accepts, and the clause on the
/// request's shape is what finds it.
#[derive(Debug)]
struct SenderDropped(Arc<dyn ProviderAdapter>);

#[async_trait::async_trait]
impl ProviderAdapter for SenderDropped {
    fn kind(&self) -> ProviderKind {
        self.0.kind()
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    async fn submit(&self, batch: &[OutboundMessage]) -> Vec<SubmitOutcome> {
        let dropped: Vec<OutboundMessage> =
            batch.iter().map(|message| OutboundMessage { sender: String::new(), ..message.clone() }).collect();
        self.0.submit(&dropped).await
    }
    async fn lookup(&self, message: &OutboundMessage) -> LookupOutcome {
        self.0.lookup(message).await
    }
    fn parse_webhook(&self, request: &WebhookRequest) -> Result<Vec<ParsedReport>, WebhookError> {
        self.0.parse_webhook(request)
    }
}

#[test]
fn an_infobip_adapter_that_drops_the_sender_is_accepted_by_the_provider_and_fails_the_request_clause() {
    let subject = Subject::new("infobip-no-sender", InfobipProfile::default(), |account, client, base| {
        Ok(Arc::new(SenderDropped(adapter_for(account, client, base)?)) as Arc<dyn ProviderAdapter>)
    });
    let report = certify::certify(&subject, &options(&["submit.request", "submit.single"]));
    assert_eq!(failed(&report), BTreeSet::from(["submit.request"]), "{}", report.table());
    let table = report.table();
    assert!(table.contains("not sent: the provider would send from the account's default"), "{table}");
    assert!(!table.contains("the provider refused"), "Infobip takes a message without `from`: {table}");
}

/// The Infobip-style adapter as someone would write it who assumed the answer lists the
/// messages in request order: ids mapped back by position.
struct PositionMapped {
    client: Arc<dyn smsim_core::adapter::HttpClient>,
    base_url: String,
    api_key: String,
    real: Arc<dyn ProviderAdapter>,
}

impl std::fmt::Debug for PositionMapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PositionMapped").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl ProviderAdapter for PositionMapped {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Infobip
    }
    fn capabilities(&self) -> Capabilities {
        infobip::CAPABILITIES
    }
    async fn submit(&self, batch: &[OutboundMessage]) -> Vec<SubmitOutcome> {
        let request = infobip::wire::SendRequest {
            bulk_id: None,
            messages: batch
                .iter()
                .map(|message| infobip::wire::Message {
                    destinations: vec![infobip::wire::Destination {
                        to: message.destination.clone(),
                        message_id: Some(message.id.to_string()),
                    }],
                    from: message.sender.clone(),
                    text: message.body.clone(),
                    notify_url: None,
                    notify_content_type: None,
                })
                .collect(),
        };
        let http = smsim_core::adapter::HttpRequest {
            method: http::Method::POST,
            url: format!("{}{}", self.base_url, infobip::SEND_PATH),
            headers: [
                ("authorization".to_owned(), format!("App {}", self.api_key)),
                ("content-type".to_owned(), "application/json".to_owned()),
            ]
            .into(),
            body: serde_json::to_vec(&request).unwrap().into(),
        };
        let lost = || vec![SubmitOutcome::Ambiguous { detail: "no answer".into() }; batch.len()];
        let Ok(response) = self.client.send(http).await else { return lost() };
        let Ok(answer) = serde_json::from_slice::<infobip::wire::SendResponse>(&response.body) else { return lost() };
        // The defect: the i-th answer entry is taken to be the i-th message.
        answer
            .messages
            .into_iter()
            .map(|entry| SubmitOutcome::Accepted {
                provider_message_id: entry.message_id,
                bulk_id: answer.bulk_id.clone(),
            })
            .collect()
    }
    async fn lookup(&self, message: &OutboundMessage) -> LookupOutcome {
        self.real.lookup(message).await
    }
    fn parse_webhook(&self, request: &WebhookRequest) -> Result<Vec<ParsedReport>, WebhookError> {
        self.real.parse_webhook(request)
    }
}

#[test]
fn an_adapter_that_maps_ids_by_position_fails_when_the_provider_answers_out_of_order() {
    let subject = Subject::new("infobip-by-position", InfobipProfile::default(), |account, client, base| {
        Ok(Arc::new(PositionMapped {
            real: adapter_for(account, client.clone(), base)?,
            client,
            base_url: account.base_url.clone(),
            api_key: account.credentials["api_key"].clone(),
        }) as Arc<dyn ProviderAdapter>)
    });
    let report = certify::certify(&subject, &options(&["submit.single", "submit.batch", "submit.reordered"]));
    assert_eq!(failed(&report), BTreeSet::from(["submit.reordered"]), "{}", report.table());
}

/// The Twilio adapter with a lookup that reads the first page of the list only (what the
/// engine's lookup did before it followed `next_page_uri`).
struct FirstPageOnly {
    adapter: TwilioAdapter,
    client: Arc<dyn smsim_core::adapter::HttpClient>,
    base_url: String,
}

impl std::fmt::Debug for FirstPageOnly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirstPageOnly").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl ProviderAdapter for FirstPageOnly {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Twilio
    }
    fn capabilities(&self) -> Capabilities {
        twilio::CAPABILITIES
    }
    async fn submit(&self, batch: &[OutboundMessage]) -> Vec<SubmitOutcome> {
        self.adapter.submit(batch).await
    }
    async fn lookup(&self, message: &OutboundMessage) -> LookupOutcome {
        use base64::Engine;
        let profile = TwilioProfile::default();
        let credentials = profile_credentials(&profile);
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", credentials["account_sid"], credentials["auth_token"]));
        let query = serde_urlencoded::to_string([("To", message.destination.as_str())]).unwrap();
        let request = smsim_core::adapter::HttpRequest {
            method: http::Method::GET,
            url: format!("{}/2010-04-01/Accounts/{}/Messages.json?{query}", self.base_url, credentials["account_sid"]),
            headers: [("authorization".to_owned(), format!("Basic {auth}"))].into(),
            body: bytes::Bytes::new(),
        };
        let Ok(answer) = self.client.send(request).await else {
            return LookupOutcome::Unavailable { detail: "unreachable".into() };
        };
        let Ok(page) = serde_json::from_slice::<twilio::wire::MessageList>(&answer.body) else {
            return LookupOutcome::Unavailable { detail: "unreadable".into() };
        };
        match page.messages.into_iter().find(|m| m.body == message.body) {
            Some(found) => LookupOutcome::Accepted { provider_message_id: found.sid, status: None, error_code: None },
            None => LookupOutcome::NotFound,
        }
    }
    fn parse_webhook(&self, request: &WebhookRequest) -> Result<Vec<ParsedReport>, WebhookError> {
        self.adapter.parse_webhook(request)
    }
}

fn profile_credentials(profile: &TwilioProfile) -> std::collections::BTreeMap<String, String> {
    use smsim_certify::profile::ProviderProfile;
    profile.credentials()
}

#[test]
fn an_adapter_whose_lookup_reads_one_page_fails_the_pages_clause() {
    let subject = Subject::new("twilio-first-page-only", TwilioProfile::default(), |account, client, base| {
        let adapter = TwilioAdapter::from_account(account, client.clone(), base)?;
        let base_url = account.base_url.clone();
        Ok(Arc::new(FirstPageOnly { adapter, client, base_url }) as Arc<dyn ProviderAdapter>)
    });
    let report = certify::certify(&subject, &options(&["lookup"]));
    let failed = failed(&report);
    assert!(failed.contains("lookup.pages"), "expected lookup.pages to fail:\n{}", report.table());
    assert!(!failed.contains("lookup.not-found"), "{}", report.table());
}

/// A third party's certification test links neither store backend: the kit runs the
/// engine in memory, so it depends on core and the simulator without their `sqlite` and
/// `postgres` features (no SQLite C source to compile, no PostgreSQL client).
#[test]
fn the_kit_links_no_database() {
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = std::process::Command::new(env!("CARGO"))
        .args(["tree", "--locked", "--offline", "-p", "smsim-certify", "-e", "normal", "--prefix", "none"])
        .current_dir(&workspace)
        .output()
        .expect("cargo runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let tree = String::from_utf8(output.stdout).unwrap();
    assert!(tree.lines().any(|line| line.starts_with("smsim-core ")), "the tree lists core: {tree}");
    for database in ["rusqlite ", "libsqlite3-sys ", "postgres ", "tokio-postgres ", "r2d2 "] {
        assert!(!tree.lines().any(|line| line.starts_with(database)), "smsim-certify links {database}");
    }
}
