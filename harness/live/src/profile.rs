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
    /// How to run the engine.
    pub process: ProcessSection,
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

/// How to run the engine's process.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSection {
    /// The command line, program first; placeholders allowed.
    pub command: Vec<String>,
    /// Extra environment; placeholders allowed in values.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// A URL that answers (any status below 500) once the engine serves
    /// (`http://127.0.0.1:${engine_port}/health`).
    pub ready_url: String,
    /// How long to wait for it, per start.
    #[serde(default = "default_ready_timeout_ms")]
    pub ready_timeout_ms: u64,
    /// How long a SIGTERM may take before SIGKILL, at the end of a run.
    #[serde(default = "default_stop_grace_ms")]
    pub stop_grace_ms: u64,
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
}

impl Default for JudgeSection {
    fn default() -> Self {
        JudgeSection { halt_grace_ms: default_halt_grace_ms() }
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
    /// Once per tenant, with `${contacts}`.
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

impl Profile {
    /// Reads and checks the profile at `path`.
    pub fn load(path: &Path) -> Result<Profile, LiveError> {
        let error = |message: String| LiveError::Profile { path: path.display().to_string(), message };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        let mut profile: Profile = toml::from_str(&text).map_err(|e| error(e.to_string().trim_end().to_owned()))?;
        profile.dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        profile.check().map_err(error)?;
        Ok(profile)
    }

    /// Checks what TOML's types cannot: required captures, a command to run.
    fn check(&self) -> Result<(), String> {
        if self.process.command.is_empty() {
            return Err("process.command: empty (the program and its arguments are needed)".into());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_profiles_load() {
        let engines = Path::new(env!("CARGO_MANIFEST_DIR")).join("engines");
        for name in ["smsim-serve.toml", "python-queue-buggy.toml", "python-queue-fixed.toml"] {
            let profile = Profile::load(&engines.join(name)).unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(profile.dir, engines, "{name}");
        }
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
}
