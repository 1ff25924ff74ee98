//! The providers' official client libraries against `smsim provider`: a team that drives
//! the simulated provider from its own integration tests uses these clients, so the fake
//! must answer what they expect. The clients are pinned and installed by
//! `.ci/official-clients` (into `target/official-clients`); without them these tests say
//! loudly that they were skipped, and fail under `CI=true`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How often bounded waits look again.
const POLL: Duration = Duration::from_millis(50);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The installed client at `env` (set by `.ci/official-clients`), else at `default` under
/// `target/official-clients`; `None` (a loud skip) when neither exists outside CI.
fn installed(env: &str, default: &str, what: &str) -> Option<PathBuf> {
    let path =
        std::env::var_os(env).map_or_else(|| root().join("target/official-clients").join(default), PathBuf::from);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {what} is not installed at {}: .ci/run installs it (.ci/official-clients)",
        path.display()
    );
    eprintln!(
        "\nSKIPPED: {what} is not installed at {}.\n  Install it with: bash -c 'source .ci/official-clients && official_clients_install'\n",
        path.display()
    );
    None
}

/// A child process ended on every way out of the test.
struct Ended(Child);

impl Drop for Ended {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `smsim provider` on a free loopback port, answering; its base URL.
fn provider(kind: &str, key: &str, secret: &str) -> (Ended, String) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_smsim"))
        .args(["provider", "--bind", &format!("127.0.0.1:{port}"), "--kind", kind, "--key", key, "--secret", secret])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("smsim provider starts");
    let child = Ended(child);
    // Bounded: 200 looks, 10 s.
    let mut looks = 0;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        looks += 1;
        assert!(looks < 200, "smsim provider did not listen on {port} within 10 s");
        std::thread::sleep(POLL);
    }
    (child, format!("http://127.0.0.1:{port}"))
}

/// Runs `command`, bounded by `limit`; its exit status and output.
fn run_bounded(mut command: Command, limit: Duration) -> (bool, String) {
    let out = tempfile::NamedTempFile::new().unwrap();
    let child = command.stdout(out.reopen().unwrap()).stderr(out.reopen().unwrap()).spawn().expect("the client runs");
    let mut child = Ended(child);
    let looks = limit.as_millis() / POLL.as_millis();
    let mut status = None;
    for _ in 0..looks {
        status = child.0.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        std::thread::sleep(POLL);
    }
    let output = std::fs::read_to_string(out.path()).unwrap_or_default();
    match status {
        Some(status) => (status.success(), output),
        None => (false, format!("{output}\n(killed after {} s)", limit.as_secs())),
    }
}

#[test]
fn twilio_python_creates_fetches_lists_and_validates_callbacks_against_smsim_provider() {
    let Some(python) = installed("SMSIM_TWILIO_PYTHON", "venv/bin/python", "twilio-python") else { return };
    let account = "AC00000000000000000000000000000001";
    let (_provider, base) = provider("twilio", account, "official-token");
    let mut command = Command::new(python);
    command.arg(root().join("harness/cli/tests/official/twilio_client.py")).args([&base, account, "official-token"]);
    let (passed, output) = run_bounded(command, Duration::from_secs(90));
    assert!(passed, "twilio-python against smsim provider:\n{output}");
    assert!(
        output.contains("\"failed\": 0")
            && output.contains("ok   every callback passes RequestValidator")
            && output.contains("ok   a callback answered 503 is not retried"),
        "{output}"
    );
}

#[test]
fn infobip_node_sdk_sends_pulls_and_reads_logs_against_smsim_provider() {
    let Some(modules) = installed("SMSIM_INFOBIP_NODE_MODULES", "node/node_modules", "@infobip-api/sdk") else {
        return;
    };
    let (_provider, base) = provider("infobip", "official-key", "official-secret");
    let mut command = Command::new("node");
    command
        .env("NODE_PATH", &modules)
        .arg(root().join("harness/cli/tests/official/infobip_client.js"))
        .args([&base, "official-key"]);
    let (passed, output) = run_bounded(command, Duration::from_secs(90));
    assert!(passed, "@infobip-api/sdk against smsim provider:\n{output}");
    assert!(output.contains("\"failed\":0") && output.contains("ok   a pulled report is given once"), "{output}");
}

/// Infobip's generated Python client, whose models are Infobip's OpenAPI schemas: every
/// answer, log and report of the simulated Infobip loads into its model, with no field the
/// specification lacks.
#[test]
fn infobip_openapi_models_load_every_answer_and_report_of_smsim_provider() {
    let Some(python) = installed("SMSIM_TWILIO_PYTHON", "venv/bin/python", "the official Python clients") else {
        return;
    };
    let (_provider, base) = provider("infobip", "official-key", "official-secret");
    let mut command = Command::new(python);
    command.arg(root().join("harness/cli/tests/official/infobip_models.py")).args([&base, "official-key"]);
    let (passed, output) = run_bounded(command, Duration::from_secs(90));
    assert!(passed, "infobip-api-python-client against smsim provider:\n{output}");
    assert!(
        output.contains("\"failed\": 0")
            && output.contains("ok   the logs of a bulk loads into SmsLogsResponse, every field specified")
            && output.contains("ok   pushed report webhook 0 loads into SmsDeliveryResult"),
        "{output}"
    );
}

/// The engine's Twilio webhook accepts exactly the callbacks Twilio's official validator
/// accepts: signatures computed by twilio-python over the URL Twilio called, checked at the
/// URL the engine sees — default ports added or dropped, other ports, query strings,
/// values with spaces, `+`, `&` and non-ASCII text.
#[test]
fn the_engines_twilio_webhook_agrees_with_twilios_request_validator() {
    use smsim_core::adapter::twilio::TwilioAdapter;
    use smsim_core::adapter::{ProviderAdapter, WebhookRequest};
    let Some(python) = installed("SMSIM_TWILIO_PYTHON", "venv/bin/python", "twilio-python") else { return };
    let token = "official-token";
    let base = "https://engine.example/v1/webhooks/twilio/ta_3";
    let with_port = "https://engine.example:443/v1/webhooks/twilio/ta_3";
    let plain_http = "http://engine.example/v1/webhooks/twilio/ta_3";
    let other_port = "http://engine.example:8080/v1/webhooks/twilio/ta_3";
    let query = "?message_id=msg_1_1";
    let long_query = "?message_id=msg_1_1&campaign=spring%20sale&x=a%2Bb";
    let urls: Vec<(String, String)> = vec![
        (format!("{base}{query}"), format!("{base}{query}")),
        (format!("{with_port}{query}"), format!("{base}{query}")),
        (format!("{base}{query}"), format!("{with_port}{query}")),
        (format!("{plain_http}{query}"), format!("http://engine.example:80/v1/webhooks/twilio/ta_3{query}")),
        (format!("{other_port}{query}"), format!("{other_port}{query}")),
        (format!("{plain_http}{query}"), format!("{other_port}{query}")),
        (format!("{base}{long_query}"), format!("{base}{long_query}")),
        (format!("{base}{long_query}"), format!("{base}?campaign=spring%20sale&message_id=msg_1_1&x=a%2Bb")),
        (format!("{base}{query}"), format!("{base}?message_id=msg_1_2")),
        (format!("{base}{query}"), format!("{base}/{query}")),
    ];
    let params = serde_json::json!({
        "MessageSid": "SM0123456789abcdef0123456789abcdef",
        "MessageStatus": "delivered",
        "AccountSid": "AC00000000000000000000000000000001",
        "To": "+306910000001",
        "From": "+15005550006",
        "Body": "Καλημέρα & welcome + 10% off",
        "ErrorCode": "",
    });
    let cases: Vec<serde_json::Value> = urls
        .iter()
        .map(|(signed, seen)| serde_json::json!({ "token": token, "signed": signed, "seen": seen, "params": params }))
        .collect();
    let input = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(input.path(), serde_json::to_vec(&cases).unwrap()).unwrap();
    let output = Command::new(python)
        .arg(root().join("harness/cli/tests/official/twilio_signatures.py"))
        .stdin(std::fs::File::open(input.path()).unwrap())
        .output()
        .expect("python runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let answers: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).expect("the validator's answers");
    let mut account = smsim_core::domain::TrafficAccount {
        id: smsim_core::TrafficAccountId(3),
        owner: None,
        name: "main".into(),
        provider: smsim_core::domain::ProviderKind::Twilio,
        base_url: "http://127.0.0.1:9".into(),
        credentials: Default::default(),
        sender: "+15005550006".into(),
        rate_limit_per_s: None,
        price_per_segment: smsim_core::Credits(79),
        idempotent_submissions: false,
    };
    account.credentials.insert("account_sid".into(), "AC00000000000000000000000000000001".into());
    account.credentials.insert("auth_token".into(), token.into());
    let client = std::sync::Arc::new(smsim_core::adapter::http::HyperClient::tcp(Duration::from_secs(1)));
    let adapter = TwilioAdapter::from_account(&account, client, "https://engine.example").unwrap();
    let form: Vec<(String, String)> =
        serde_json::from_value::<std::collections::BTreeMap<String, String>>(params).unwrap().into_iter().collect();
    let body = serde_urlencoded::to_string(&form).unwrap().into_bytes();
    let mut accepted_by_both = 0;
    for ((signed, seen), answer) in urls.iter().zip(&answers) {
        let headers = [
            ("content-type".to_owned(), "application/x-www-form-urlencoded".to_owned()),
            ("x-twilio-signature".to_owned(), answer["signature"].as_str().unwrap().to_owned()),
        ]
        .into();
        let request = WebhookRequest { url: seen.clone(), headers, body: body.clone() };
        let engine = adapter.parse_webhook(&request).is_ok();
        let official = answer["official"].as_bool().unwrap();
        assert_eq!(
            engine, official,
            "signed over {signed}, seen at {seen}: engine {engine}, RequestValidator {official}"
        );
        accepted_by_both += usize::from(engine);
    }
    // Both directions are exercised: some forms are accepted, some refused.
    assert!(accepted_by_both >= 5 && accepted_by_both < urls.len(), "{accepted_by_both} of {}", urls.len());
}
