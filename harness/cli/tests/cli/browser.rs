//! The timeline of a failing incident seed, opened in a real browser: headless Chromium,
//! driven over its DevTools protocol, shows the violation marker, finds a message the
//! evidence names when its id is typed into the search, and leaves a screenshot.
//!
//! Without Chromium the test says loudly that it was skipped and how to run it, except
//! under `CI=true`, where a missing browser is a failure (`.ci/run` installs it). The
//! browser is ended on every way out (a guard kills it on drop) and every wait is bounded.

use serde_json::{json, Value};
use smsim_sim::run::{run, RunOptions};
use smsim_sim::scenario::Scenario;
use smsim_sim::timeline::{MessageEventKind, Timeline};
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tungstenite::{Message, WebSocket};

/// Debian's Chromium; `SMSIM_CHROMIUM` names another.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("SMSIM_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but there is no browser at {}: .ci/run installs Debian's chromium",
        path.display()
    );
    eprintln!(
        "\n*** SKIPPED the timeline's browser test: no Chromium at {}.\n*** Run it with `apt-get install -y chromium` \
         (or SMSIM_CHROMIUM=/path/to/chromium) and `cargo test -p smsim --test cli browser`.\n",
        path.display()
    );
    None
}

/// The first failing seed of an incident scenario, run with its timeline.
fn failing_timeline(file: &str) -> (Timeline, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/incidents").join(file);
    let scenario = Scenario::load(&path).unwrap();
    let within = scenario.expect.incident.as_ref().and_then(|incident| incident.within_seeds).unwrap_or(5);
    // The reproduction command names the file as a user at the workspace root would.
    let shown_path = format!("scenarios/incidents/{file}");
    let options = RunOptions { scenario_path: Some(shown_path), timeline: true, ..RunOptions::default() };
    let report = (1..=within)
        .map(|seed| run(&scenario, seed, &options).unwrap())
        .find(|report| !report.passed())
        .unwrap_or_else(|| panic!("{file}: no failing seed within {within}"));
    let invariant = report.violation.as_ref().unwrap().invariant.name().to_owned();
    (report.timeline.unwrap(), invariant)
}

/// A message the violation names, else the first one the provider accepted.
fn message_to_find(timeline: &Timeline) -> &smsim_sim::timeline::MessagePath {
    let violation = timeline.violation.as_ref().unwrap();
    let text = format!("{} {}", violation.message, violation.evidence.join(" "));
    let named = |id: &str| text.split(|c: char| !c.is_alphanumeric() && c != '_').any(|word| word == id);
    timeline
        .messages
        .iter()
        .find(|path| named(&path.id))
        .or_else(|| {
            timeline.messages.iter().find(|path| path.events.iter().any(|e| e.kind == MessageEventKind::Accepted))
        })
        .expect("the failing run has a message the provider accepted")
}

#[test]
fn a_failing_seeds_timeline_shows_its_violation_and_finds_a_message_in_chromium() {
    let Some(browser_path) = chromium() else { return };
    // Incident 002: a worker resends after a crash; at-most-once breaks with two accepts.
    let (timeline, invariant) = failing_timeline("resend-after-crash.toml");
    let message = message_to_find(&timeline);
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("timeline.html");
    std::fs::write(&page, smsim_cli::timeline::html(&timeline)).unwrap();
    let mut browser = Browser::launch(&browser_path, &page, &dir.path().join("profile"));
    browser.wait_until("window.timelineReady === true");
    let marker = browser.evaluate(
        "(() => { const m = document.getElementById('violation-marker'); const r = m.getBoundingClientRect(); \
         return !m.hidden && r.width > 0 && r.height > 0 ? m.textContent : ''; })()",
    );
    assert!(marker.as_str().unwrap_or("").contains(&invariant), "violation marker: {marker}");

    // Type the id into the search box and press Enter, as a person would.
    browser.evaluate("document.getElementById('message-search').focus()");
    browser.call("Input.insertText", json!({ "text": message.id }));
    let enter =
        json!({ "type": "keyDown", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "text": "\r" });
    browser.call("Input.dispatchKeyEvent", enter);
    browser.call("Input.dispatchKeyEvent", json!({ "type": "keyUp", "key": "Enter", "code": "Enter" }));
    browser.wait_until("document.querySelectorAll('#lifecycle-table td.kind').length > 0");
    let shown =
        browser.evaluate("[...document.querySelectorAll('#lifecycle-table td.kind')].map(td => td.textContent)");
    let expected: Vec<Value> = message.events.iter().map(|event| serde_json::to_value(event.kind).unwrap()).collect();
    assert_eq!(shown, Value::Array(expected), "the lifecycle of {} as shown", message.id);
    let title = browser.evaluate("document.getElementById('lifecycle-title').textContent");
    assert!(title.as_str().unwrap_or("").starts_with(&message.id), "{title}");

    let screenshot = browser.call("Page.captureScreenshot", json!({ "format": "png" }));
    let png = base64_decode(screenshot["data"].as_str().expect("a screenshot"));
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let saved = std::env::temp_dir().join("smsim-timeline-resend-after-crash.png");
    std::fs::write(&saved, &png).unwrap();
    eprintln!("timeline screenshot: {}", saved.display());
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).expect("base64 from the browser")
}

/// Longest wait for any one answer or for the page to get somewhere.
const WAIT: Duration = Duration::from_secs(60);

/// A headless Chromium with one page, spoken to over the DevTools protocol's websocket.
/// Dropping it kills the browser and reaps it, whichever way the test ends.
struct Browser {
    child: Child,
    socket: Option<WebSocket<TcpStream>>,
    session: String,
    next_id: u64,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    fn launch(path: &Path, page: &Path, profile: &Path) -> Browser {
        let child = Command::new(path)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"])
            .args(["--remote-debugging-port=0", "--window-size=1400,1500", "--hide-scrollbars"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(format!("file://{}", page.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", path.display()));
        let mut browser = Browser { child, socket: None, session: String::new(), next_id: 0 };
        let url = browser.devtools_url();
        browser.socket = Some(connect(&url));
        let targets = browser.call("Target.getTargets", json!({}));
        let page_target = targets["targetInfos"]
            .as_array()
            .and_then(|targets| targets.iter().find(|target| target["type"] == "page"))
            .and_then(|target| target["targetId"].as_str())
            .expect("the browser has a page")
            .to_owned();
        let attached = browser.call("Target.attachToTarget", json!({ "targetId": page_target, "flatten": true }));
        browser.session = attached["sessionId"].as_str().expect("a session").to_owned();
        browser
    }

    /// The browser's websocket address, which it prints on stderr once it listens.
    fn devtools_url(&mut self) -> String {
        let stderr = self.child.stderr.take().expect("stderr is piped");
        let (sender, receiver) = std::sync::mpsc::channel();
        // The reader thread ends when the browser closes stderr (it is killed on drop).
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("ws://") {
                    let _ = sender.send(line[at..].trim().to_owned());
                }
            }
        });
        receiver.recv_timeout(WAIT).expect("Chromium printed no DevTools address")
    }

    /// Sends a DevTools command (to the page once attached) and returns its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            command["sessionId"] = json!(self.session);
        }
        let socket = self.socket.as_mut().expect("connected");
        socket.send(Message::text(command.to_string())).expect("sending to Chromium");
        // Events come in between; the answer is the message with our id. Bounded by the
        // socket's read timeout per message and by a count.
        for _ in 0..100_000 {
            let Message::Text(text) = socket.read().expect("reading from Chromium") else { continue };
            let answer: Value = serde_json::from_str(text.as_str()).expect("Chromium speaks JSON");
            if answer["id"] == json!(id) {
                assert!(answer.get("error").is_none(), "{method} failed: {answer}");
                return answer["result"].clone();
            }
        }
        panic!("no answer to {method}");
    }

    /// Evaluates `expression` in the page and returns its value.
    fn evaluate(&mut self, expression: &str) -> Value {
        let result = self.call("Runtime.evaluate", json!({ "expression": expression, "returnByValue": true }));
        assert!(result.get("exceptionDetails").is_none(), "{expression} threw: {result}");
        result["result"]["value"].clone()
    }

    /// Polls `condition` until it holds, for at most [`WAIT`].
    fn wait_until(&mut self, condition: &str) {
        for _ in 0..(WAIT.as_millis() / 50) {
            if self.evaluate(condition) == json!(true) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the page never got to `{condition}`");
    }
}

fn connect(url: &str) -> WebSocket<TcpStream> {
    let address = url.trim_start_matches("ws://").split('/').next().expect("a host:port");
    let stream = TcpStream::connect(address).unwrap_or_else(|error| panic!("cannot reach {address}: {error}"));
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.set_write_timeout(Some(WAIT)).unwrap();
    let (socket, _) = tungstenite::client(url, stream).expect("the DevTools websocket handshake");
    socket
}
