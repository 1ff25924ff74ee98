//! Engine profiles: a TOML file that says how to start the engine under test and how
//! each of the driver's actions maps onto its HTTP API, so an engine in any language can
//! be checked. Unknown fields are refused, and every error names the file, the line and
//! the field.

use crate::LiveError;
use serde::Deserialize;
use smsim_core::domain::ProviderKind;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// An engine profile.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// A name for reports.
    pub name: String,
    /// How to run an engine of one process: the same as `[processes.engine]`.
    #[serde(default)]
    pub process: Option<ProcessSection>,
    /// How to run an engine of several processes (`api`, `worker-1`, …), by name; they
    /// start in name order, each ready before the next. After loading, a `[process]`
    /// profile has its one process here, as `engine`.
    #[serde(default)]
    pub processes: BTreeMap<String, ProcessSection>,
    /// Services the engine needs (a Redis, a database), by name: started in name order
    /// before the processes, stopped after them, and killed only by `--service-kills`.
    #[serde(default)]
    pub services: BTreeMap<String, ProcessSection>,
    /// How the simulated provider knows the engine.
    pub provider: ProviderSection,
    /// What the engine's campaign statuses mean.
    pub statuses: StatusSection,
    /// The driver's actions as HTTP requests.
    pub actions: Actions,
    /// What the judge needs to know of the engine's timing.
    #[serde(default)]
    pub judge: JudgeSection,
    /// The directory the profile was read from (`${profile_dir}`).
    #[serde(skip)]
    pub dir: PathBuf,
}

/// How to run one of the engine's processes, or a service it needs. At most one of the
/// `ready_*` checks is given; with none, the program is ready once it keeps running.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSection {
    /// The command line, program first; placeholders allowed.
    pub command: Vec<String>,
    /// Extra environment; placeholders allowed in values.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// A URL that answers (any status below 500) once it serves
    /// (`http://127.0.0.1:${engine_port}/health`).
    #[serde(default)]
    pub ready_url: Option<String>,
    /// A `host:port` that accepts a TCP connection once it serves (`127.0.0.1:${port_redis}`).
    #[serde(default)]
    pub ready_tcp: Option<String>,
    /// A command that exits 0 once it serves (`["pg_isready", "-h", …]`).
    #[serde(default)]
    pub ready_command: Option<Vec<String>>,
    /// How long to wait for it, per start.
    #[serde(default = "default_ready_timeout_ms")]
    pub ready_timeout_ms: u64,
    /// How long a SIGTERM (or the stop command) may take before SIGKILL, at the end of a run.
    #[serde(default = "default_stop_grace_ms")]
    pub stop_grace_ms: u64,
    /// A program that daemonises: the file its pid is written to (first line). Its
    /// command may exit at once; the pid in the file is what is killed, paused and ended.
    #[serde(default)]
    pub pid_file: Option<String>,
    /// Run first to stop it at the end of a run (`pg_ctl stop`), then SIGTERM, then SIGKILL.
    #[serde(default)]
    pub stop_command: Option<Vec<String>>,
}

fn default_ready_timeout_ms() -> u64 {
    15_000
}

fn default_stop_grace_ms() -> u64 {
    2_000
}

/// How the simulated provider knows the engine's account.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSection {
    /// The wire format.
    pub kind: ProviderKind,
    /// The engine's id of its provider account: Mitto-style reports go to
    /// `{webhook_base_url}/v1/webhooks/mitto/{account_id}?token={secret}`.
    pub account_id: String,
    /// The API key (Mitto, Infobip) or account SID (Twilio) the engine sends.
    pub key: String,
    /// The webhook token (Mitto, Infobip) or auth token (Twilio).
    pub secret: String,
    /// The engine's base URL for Mitto-style reports; placeholders allowed.
    pub webhook_base_url: String,
}

/// What the engine's campaign statuses mean.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusSection {
    /// Statuses after which nothing more is sent (`completed`, `cancelled`).
    #[serde(rename = "final")]
    pub final_statuses: Vec<String>,
    /// The status of a campaign that finished sending.
    pub completed: String,
    /// The engine's campaign status names that differ from the design's (`draft`,
    /// `scheduled`, `sending`, `paused`, `completed`, `cancelled`), mapped to them:
    /// `names = { "SENDING" = "sending" }`. A status neither spelled as the design's nor
    /// mapped here stops the run with an error naming it.
    #[serde(default)]
    pub names: BTreeMap<String, String>,
}

/// What the judge needs to know of the engine's timing.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeSection {
    /// How long after an acknowledged pause or cancel a submission may still reach the
    /// provider: a batch claimed just before it may take one lease, and its request one
    /// provider timeout.
    #[serde(default = "default_halt_grace_ms")]
    pub halt_grace_ms: u64,
    /// The engine's retry policy, when its profile states it: the judge then holds its
    /// resubmissions to it (`retries`). Absent: `retries` is not checked.
    #[serde(default)]
    pub retry: Option<smsim_judge::RetrySetup>,
    /// The capacity of the engine's rate-limit buckets: `one_second` (the default: up to
    /// twice the limit in a second) or `strict` (the limit plus one).
    #[serde(default)]
    pub rate_burst: smsim_core::domain::rate::Burst,
}

impl Default for JudgeSection {
    fn default() -> Self {
        JudgeSection { halt_grace_ms: default_halt_grace_ms(), retry: None, rate_burst: Default::default() }
    }
}

fn default_halt_grace_ms() -> u64 {
    15_000
}

/// The driver's actions. Those marked optional are skipped (with a note in the report)
/// when the engine has no such thing.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actions {
    /// Once per tenant; may capture `api_key`, `tenant_id`.
    #[serde(default)]
    pub create_tenant: Option<Request>,
    /// Once per traffic account (after the tenants).
    #[serde(default)]
    pub create_account: Option<Request>,
    /// Once per tenant, with `${contacts_json}` (rows of phone and attributes) and `${phones_json}`.
    #[serde(default)]
    pub import_contacts: Option<Request>,
    /// Once per campaign; must capture `campaign_id`.
    pub create_campaign: Request,
    /// "Send" (clicked twice for a double click).
    pub enqueue: Request,
    /// Operator pause.
    #[serde(default)]
    pub pause: Option<Request>,
    /// Operator resume.
    #[serde(default)]
    pub resume: Option<Request>,
    /// Operator cancel.
    #[serde(default)]
    pub cancel: Option<Request>,
    /// Credit top-up, with `${amount}`.
    #[serde(default)]
    pub top_up: Option<Request>,
    /// Reads a campaign; must capture `status`, `sent`, `failed`, `total`, `progress`,
    /// and may capture `unknown_outcome` and `charged`.
    pub read_campaign: Request,
    /// Reads a campaign's failures; may capture `unknown_outcome` (absent: 0).
    #[serde(default)]
    pub read_failures: Option<Request>,
    /// Reads a tenant; may capture `charged`.
    #[serde(default)]
    pub read_tenant: Option<Request>,
}

/// One HTTP request of the engine's API.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// `GET`, `POST`, `PATCH`, …
    pub method: String,
    /// The path (and query), placeholders allowed: `/v1/campaigns/${campaign_id}/enqueue`.
    pub path: String,
    /// Headers, placeholders allowed in values.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body, placeholders allowed (string values are JSON-escaped).
    #[serde(default)]
    pub body: Option<String>,
    /// Values to keep from the JSON answer: name → JSON pointer (`/tenant/id`).
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
}

/// The name of a `[process]` profile's one process.
pub const ENGINE: &str = "engine";

/// Fault targets that are not names.
const RESERVED: [&str; 3] = ["all", "random", "sender"];

/// How deep `include` may nest (a loop of includes is refused before this).
const MAX_INCLUDE_DEPTH: usize = 8;

impl Profile {
    /// Reads and checks the profile at `path`.
    pub fn load(path: &Path) -> Result<Profile, LiveError> {
        Profile::load_with(path, &[])
    }

    /// Reads the profile at `path` — with the profile it `include`s, if any, under it — then
    /// applies `sets` (`dotted.key=value`, the value TOML or else a string), and checks it.
    /// A profile alone is read with its line and column in every error; a merged one names
    /// the field and both files.
    pub fn load_with(path: &Path, sets: &[String]) -> Result<Profile, LiveError> {
        let error = |message: String| LiveError::Profile { path: path.display().to_string(), message };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        let own: toml::Table = toml::from_str(&text).map_err(|e| error(e.to_string().trim_end().to_owned()))?;
        let (merged, included) = if own.contains_key("include") || !sets.is_empty() {
            let mut chain = vec![path.to_path_buf()];
            let mut merged = resolve(path, own, &mut chain)?;
            for set in sets {
                apply_set(&mut merged, set).map_err(|message| error(format!("--set {set}: {message}")))?;
            }
            (toml::to_string(&merged).expect("a table serialises"), chain.len() > 1)
        } else {
            (text, false)
        };
        let mut profile: Profile = toml::from_str(&merged).map_err(|e| {
            let message = e.to_string().trim_end().to_owned();
            // Line numbers of a merged profile are not the file's: name the field only.
            let message = if included || !sets.is_empty() {
                format!("{} (in this profile, the profiles it includes, or a --set)", e.message())
            } else {
                message
            };
            error(message)
        })?;
        profile.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        profile.check().map_err(error)?;
        if let Some(process) = profile.process.take() {
            profile.processes.insert(ENGINE.to_owned(), process);
        }
        Ok(profile)
    }

    /// Checks what TOML's types cannot: required captures, a command to run.
    fn check(&self) -> Result<(), String> {
        match (&self.process, self.processes.is_empty()) {
            (None, true) => {
                return Err("process: missing (give [process], or [processes.NAME] for each process)".into())
            }
            (Some(_), false) => return Err("process: give [process] or [processes.NAME], not both".into()),
            _ => {}
        }
        let programs = self.process.iter().map(|process| ("process".to_owned(), process));
        let programs = programs
            .chain(self.processes.iter().map(|(name, process)| (format!("processes.{name}"), process)))
            .chain(self.services.iter().map(|(name, service)| (format!("services.{name}"), service)));
        for (place, program) in programs {
            if program.command.is_empty() {
                return Err(format!("{place}.command: empty (the program and its arguments are needed)"));
            }
            let checks = [program.ready_url.is_some(), program.ready_tcp.is_some(), program.ready_command.is_some()];
            if checks.into_iter().filter(|given| *given).count() > 1 {
                return Err(format!("{place}: give at most one of ready_url, ready_tcp, ready_command"));
            }
            if program.ready_command.as_ref().is_some_and(Vec::is_empty) {
                return Err(format!("{place}.ready_command: empty"));
            }
        }
        if let Some(name) = self.services.keys().find(|name| self.processes.contains_key(*name)) {
            return Err(format!("services.{name}: a process has that name too (names are fault targets)"));
        }
        if let Some(name) =
            self.processes.keys().chain(self.services.keys()).find(|name| RESERVED.contains(&name.as_str()))
        {
            return Err(format!("`{name}`: reserved as a fault target (all, random, sender); name it otherwise"));
        }
        let needs = |action: &str, request: &Request, names: &[&str]| {
            names.iter().find(|name| !request.capture.contains_key(**name)).map_or(Ok(()), |missing| {
                Err(format!("actions.{action}.capture: missing `{missing}` (a JSON pointer into the answer)"))
            })
        };
        needs("create_campaign", &self.actions.create_campaign, &["campaign_id"])?;
        needs("read_campaign", &self.actions.read_campaign, &["status", "sent", "failed", "total", "progress"])?;
        if let Some(read_tenant) = &self.actions.read_tenant {
            needs("read_tenant", read_tenant, &["charged"])?;
        }
        Ok(())
    }
}

/// `table` with the profile it `include`s (a path relative to `path`'s directory) under it:
/// tables merge key by key, anything else in `table` wins.
fn resolve(path: &Path, mut table: toml::Table, chain: &mut Vec<PathBuf>) -> Result<toml::Table, LiveError> {
    let error = |message: String| LiveError::Profile { path: path.display().to_string(), message };
    let Some(include) = table.remove("include") else { return Ok(table) };
    let toml::Value::String(include) = include else {
        return Err(error("include: expected the path of another profile, as a string".into()));
    };
    let base_path = path.parent().unwrap_or(Path::new(".")).join(&include);
    if chain.iter().any(|seen| seen == &base_path) || chain.len() >= MAX_INCLUDE_DEPTH {
        let names: Vec<String> = chain.iter().map(|p| p.display().to_string()).collect();
        return Err(error(format!("include: `{include}` closes a loop or nests too deep ({})", names.join(" → "))));
    }
    chain.push(base_path.clone());
    let text =
        std::fs::read_to_string(&base_path).map_err(|e| error(format!("include: `{}`: {e}", base_path.display())))?;
    let base: toml::Table = toml::from_str(&text).map_err(|e| LiveError::Profile {
        path: base_path.display().to_string(),
        message: e.to_string().trim_end().to_owned(),
    })?;
    let mut merged = resolve(&base_path, base, chain)?;
    merge(&mut merged, table);
    Ok(merged)
}

/// Merges `over` into `base`: tables key by key, anything else replaced.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base)), toml::Value::Table(over)) => merge(base, over),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Applies `dotted.key=value` to `table`; the value is read as TOML (`66`, `true`,
/// `"text"`, `[1, 2]`), or else taken as a string — and where the key holds a string
/// already, as that string.
fn apply_set(table: &mut toml::Table, set: &str) -> Result<(), String> {
    let (key, raw) = set.split_once('=').ok_or("expected `dotted.key=value`")?;
    let path: Vec<&str> = key.trim().split('.').collect();
    if path.iter().any(|part| part.is_empty()) {
        return Err(format!("`{key}` is not a dotted key"));
    }
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut table| table.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()));
    let (last, parents) = path.split_last().expect("at least one part");
    let mut at = table;
    for part in parents {
        let next = at.entry((*part).to_owned()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        at = next.as_table_mut().ok_or_else(|| format!("`{part}` is not a table"))?;
    }
    // A string stays a string (`process.env.PRICE=66` sets "66").
    let value = match (at.get(*last), value) {
        (Some(toml::Value::String(_)), toml::Value::String(text)) => toml::Value::String(text),
        (Some(toml::Value::String(_)), _) => toml::Value::String(raw.trim().to_owned()),
        (_, value) => value,
    };
    at.insert((*last).to_owned(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_profiles_load() {
        let engines = Path::new(env!("CARGO_MANIFEST_DIR")).join("engines");
        for name in [
            "smsim-serve.toml",
            "smsim-serve-twilio.toml",
            "smsim-serve-infobip.toml",
            "smsim-serve-postgres.toml",
            "python-queue-buggy.toml",
            "python-queue-fixed.toml",
            "node-bullmq-fixed.toml",
            "node-bullmq-buggy.toml",
        ] {
            let profile = Profile::load(&engines.join(name)).unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(profile.dir, engines, "{name}");
        }
    }

    #[test]
    fn a_profile_includes_another_and_a_set_overrides_one_value() {
        let dir = std::env::temp_dir().join(format!("smsim-profile-include-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let engines = Path::new(env!("CARGO_MANIFEST_DIR")).join("engines");
        let base = engines.join("python-queue-fixed.toml");
        let path = dir.join("pricier.toml");
        std::fs::write(
            &path,
            format!("include = \"{}\"\nname = \"pricier\"\n[process.env]\nPRICE = \"66\"\n", base.display()),
        )
        .unwrap();
        let profile = Profile::load(&path).unwrap();
        assert_eq!(profile.name, "pricier");
        assert_eq!(profile.processes[ENGINE].env["PRICE"], "66");
        assert_eq!(profile.processes[ENGINE].env["ENGINE_FIXED"], "1", "the rest of the table is the base's");
        let set =
            Profile::load_with(&path, &["process.env.PRICE=77".into(), "judge.halt_grace_ms=4000".into()]).unwrap();
        assert_eq!((set.processes[ENGINE].env["PRICE"].as_str(), set.judge.halt_grace_ms), ("77", 4_000));
        // A typo in the including file is named; a loop is refused.
        std::fs::write(&path, format!("include = \"{}\"\nnmae = \"x\"\n", base.display())).unwrap();
        let error = Profile::load(&path).unwrap_err().to_string();
        assert!(error.contains("nmae") && error.contains("pricier.toml"), "{error}");
        std::fs::write(&path, "include = \"pricier.toml\"\n").unwrap();
        let error = Profile::load(&path).unwrap_err().to_string();
        assert!(error.contains("loop"), "{error}");
        let error = Profile::load_with(&base, &["process.env.PRICE".into()]).unwrap_err().to_string();
        assert!(error.contains("--set") && error.contains("dotted.key=value"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unknown_field_and_a_missing_capture_are_named() {
        let dir = std::env::temp_dir().join(format!("smsim-profile-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let engines = Path::new(env!("CARGO_MANIFEST_DIR")).join("engines");
        let good = std::fs::read_to_string(engines.join("python-queue-fixed.toml")).unwrap();
        let path = dir.join("typo.toml");
        std::fs::write(&path, good.replace("ready_url =", "readyurl =")).unwrap();
        let error = Profile::load(&path).unwrap_err().to_string();
        assert!(error.contains("typo.toml") && error.contains("readyurl") && error.contains("line"), "{error}");
        std::fs::write(&path, good.replace("capture = { campaign_id = \"/id\" }", "")).unwrap();
        let error = Profile::load(&path).unwrap_err().to_string();
        assert!(error.contains("actions.create_campaign.capture") && error.contains("campaign_id"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn processes_and_services_are_checked_and_a_single_process_is_named_engine() {
        let dir = std::env::temp_dir().join(format!("smsim-profile-fleet-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let engines = Path::new(env!("CARGO_MANIFEST_DIR")).join("engines");
        let single = Profile::load(&engines.join("smsim-serve.toml")).unwrap();
        assert_eq!(single.processes.keys().collect::<Vec<_>>(), [ENGINE]);
        assert!(single.process.is_none() && single.services.is_empty());
        let fleet = Profile::load(&engines.join("smsim-serve-postgres.toml")).unwrap();
        assert_eq!(fleet.processes.keys().collect::<Vec<_>>(), ["api", "maintenance", "worker-1", "worker-2"]);
        assert_eq!(fleet.services.keys().collect::<Vec<_>>(), ["postgres"]);

        let base = engines.join("smsim-serve/common.toml");
        let refused = |programs: &str| {
            let path = dir.join("fleet.toml");
            std::fs::write(&path, format!("include = \"{}\"\nname = \"f\"\n{programs}", base.display())).unwrap();
            Profile::load(&path).unwrap_err().to_string()
        };
        let error = refused("[process]\ncommand = [\"a\"]\n[processes.w]\ncommand = [\"b\"]\n");
        assert!(error.contains("not both"), "{error}");
        let error = refused("");
        assert!(error.contains("process: missing"), "{error}");
        let error = refused(
            "[processes.w]\ncommand = [\"b\"]\nready_tcp = \"127.0.0.1:1\"\nready_url = \"http://127.0.0.1:1\"\n",
        );
        assert!(error.contains("processes.w") && error.contains("at most one"), "{error}");
        let error = refused("[processes.random]\ncommand = [\"b\"]\n");
        assert!(error.contains("`random`") && error.contains("reserved"), "{error}");
        let error = refused("[processes.db]\ncommand = [\"b\"]\n[services.db]\ncommand = [\"c\"]\n");
        assert!(error.contains("services.db") && error.contains("that name"), "{error}");
        let error = refused("[services.db]\ncommand = []\n[processes.w]\ncommand = [\"b\"]\n");
        assert!(error.contains("services.db.command") && error.contains("empty"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
