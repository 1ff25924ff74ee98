//! The live driver: what a user does, over the engine's HTTP API as the profile maps it —
//! tenants, accounts, contacts, campaigns, clicks on "send" (twice, for a double click),
//! operator actions and top-ups, and the readings the oracle needs.

use crate::api::{captures, EngineApi};
use crate::check::Reading;
use crate::profile::{Profile, Request};
use crate::template::Values;
use crate::LiveError;
use serde_json::json;
use smsim_sim::scenario::{DoubleClick, OperatorVerb, Scenario};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// How long one action may keep retrying while the engine is down.
pub const ACTION_BOUND: Duration = Duration::from_secs(30);

/// The driver: the engine's API, the profile, and the values each entity captured.
pub struct Driver {
    /// The API.
    pub api: EngineApi,
    /// The profile.
    pub profile: Profile,
    /// Values of each campaign's scope (global, its tenant's and its own), by name.
    pub campaigns: Mutex<BTreeMap<String, Values>>,
    /// Values of each tenant's scope, by name.
    pub tenants: Mutex<BTreeMap<String, Values>>,
}

/// The phone number of contact `n` of tenant `tenant_index` (valid, as the simulator's).
pub fn phone(tenant_index: usize, n: u32) -> String {
    format!("+30691{:07}", tenant_index as u32 * 1_000_000 + n)
}

impl Driver {
    /// Runs `request` (action `name`) until answered, reading its captures.
    async fn required(&self, name: &str, request: &Request, values: &Values) -> Result<Values, LiveError> {
        let answer = self.api.call_retrying(name, request, values, ACTION_BOUND).await?;
        let answer = answer.ok_or_else(|| LiveError::Garbage {
            action: name.to_owned(),
            method: request.method.clone(),
            url: self.api.url(&request.path),
            problem: format!("no answer below 500 within {} s", ACTION_BOUND.as_secs()),
            answer: String::new(),
        })?;
        captures(name, request, &answer, &[])
    }

    /// Creates tenants (with contacts), accounts and campaigns; returns each campaign's
    /// contact count.
    pub async fn setup(&self, scenario: &Scenario, global: &Values) -> Result<BTreeMap<String, u64>, LiveError> {
        let actions = &self.profile.actions;
        for (index, tenant) in scenario.tenants.iter().enumerate() {
            let phones: Vec<String> = (0..tenant.contacts.count).map(|n| phone(index, n)).collect();
            let rows: Vec<_> =
                phones.iter().map(|phone| json!({"phone": phone, "attributes": {"first_name": "Maria"}})).collect();
            let mut values = global.clone();
            values.insert("tenant_name".into(), tenant.name.clone());
            values.insert("credits".into(), tenant.credits.to_string());
            values.insert("contact_count".into(), phones.len().to_string());
            values.insert("phones_json".into(), serde_json::to_string(&phones).expect("strings serialise"));
            values.insert("contacts_json".into(), serde_json::to_string(&rows).expect("values serialise"));
            if let Some(request) = &actions.create_tenant {
                values.extend(self.required("create_tenant", request, &values).await?);
            }
            if let Some(request) = &actions.import_contacts {
                self.required("import_contacts", request, &values).await?;
            }
            self.tenants.lock().expect("driver poisoned").insert(tenant.name.clone(), values);
        }
        for account in &scenario.traffic_accounts {
            let tenant = account.owner.as_deref().or(scenario.tenants.first().map(|t| t.name.as_str()));
            let mut values = self.tenant_values(tenant.unwrap_or_default(), global);
            values.insert("account_name".into(), account.name.clone());
            values.insert("price".into(), account.price_per_segment.to_string());
            let rate = account.rate_limit_per_s.map_or_else(|| "null".to_owned(), |rate| rate.to_string());
            values.insert("rate_limit_json".into(), rate);
            if let Some(request) = &actions.create_account {
                let captured = self.required("create_account", request, &values).await?;
                // Later scopes see the engine's id of the account, if it told it.
                let mut tenants = self.tenants.lock().expect("driver poisoned");
                for values in tenants.values_mut() {
                    values.extend(captured.clone());
                }
            }
        }
        let mut contacts = BTreeMap::new();
        for campaign in &scenario.campaigns {
            let mut values = self.tenant_values(&campaign.tenant, global);
            values.insert("campaign_name".into(), campaign.name.clone());
            values.insert("body".into(), format!("[{}] {}", campaign.name, campaign.template));
            values.extend(self.required("create_campaign", &actions.create_campaign, &values).await?);
            let count = values.get("contact_count").and_then(|count| count.parse().ok()).unwrap_or(0);
            contacts.insert(campaign.name.clone(), count);
            self.campaigns.lock().expect("driver poisoned").insert(campaign.name.clone(), values);
        }
        Ok(contacts)
    }

    fn tenant_values(&self, tenant: &str, global: &Values) -> Values {
        self.tenants.lock().expect("driver poisoned").get(tenant).cloned().unwrap_or_else(|| global.clone())
    }

    fn campaign_values(&self, campaign: &str) -> Option<Values> {
        self.campaigns.lock().expect("driver poisoned").get(campaign).cloned()
    }

    /// Clicks "send" once, or twice at once for a double click; the answers' statuses.
    pub async fn enqueue(&self, campaign: &str, click: DoubleClick) -> Result<Vec<Option<u16>>, LiveError> {
        let Some(values) = self.campaign_values(campaign) else { return Ok(vec![]) };
        let request = &self.profile.actions.enqueue;
        let once = || self.api.call_retrying("enqueue", request, &values, ACTION_BOUND);
        let answers = if click == DoubleClick::None {
            vec![once().await?]
        } else {
            let (first, second) = futures::join!(once(), once());
            vec![first?, second?]
        };
        Ok(answers.into_iter().map(|answer| answer.map(|a| a.status)).collect())
    }

    /// Whether the profile maps operator `verb` onto a request.
    pub fn maps(&self, verb: OperatorVerb) -> bool {
        let actions = &self.profile.actions;
        match verb {
            OperatorVerb::Pause => actions.pause.is_some(),
            OperatorVerb::Resume => actions.resume.is_some(),
            OperatorVerb::Cancel => actions.cancel.is_some(),
            OperatorVerb::TopUp => actions.top_up.is_some(),
            OperatorVerb::RetryFailed | OperatorVerb::Adjust => false,
        }
    }

    /// An operator action; `None` when the profile has no mapping for it.
    pub async fn operator(
        &self,
        verb: OperatorVerb,
        campaign: Option<&str>,
        tenant: Option<&str>,
        amount: Option<i64>,
        global: &Values,
    ) -> Result<Option<Option<u16>>, LiveError> {
        let actions = &self.profile.actions;
        let (name, request) = match verb {
            OperatorVerb::Pause => ("pause", &actions.pause),
            OperatorVerb::Resume => ("resume", &actions.resume),
            OperatorVerb::Cancel => ("cancel", &actions.cancel),
            OperatorVerb::TopUp => ("top_up", &actions.top_up),
            OperatorVerb::RetryFailed | OperatorVerb::Adjust => return Ok(None),
        };
        let Some(request) = request else { return Ok(None) };
        let mut values = match campaign {
            Some(campaign) => self.campaign_values(campaign).unwrap_or_else(|| global.clone()),
            None => self.tenant_values(tenant.unwrap_or_default(), global),
        };
        values.insert("amount".into(), amount.unwrap_or(0).to_string());
        let answer = self.api.call_retrying(name, request, &values, ACTION_BOUND).await?;
        Ok(Some(answer.map(|answer| answer.status)))
    }

    /// Reads a campaign once; `Ok(None)` when the engine did not answer (it may be down).
    /// The reading's time is left 0 for the caller to stamp on its clock.
    pub async fn read(&self, campaign: &str) -> Result<Option<Reading>, LiveError> {
        let Some(values) = self.campaign_values(campaign) else { return Ok(None) };
        let actions = &self.profile.actions;
        let optional = ["unknown_outcome", "charged"];
        let Some(answer) = self.api.call("read_campaign", &actions.read_campaign, &values).await? else {
            return Ok(None);
        };
        if answer.status >= 500 {
            return Ok(None);
        }
        let mut read = captures("read_campaign", &actions.read_campaign, &answer, &optional)?;
        if let Some(request) = &actions.read_failures {
            match self.api.call("read_failures", request, &values).await? {
                Some(answer) if answer.status < 500 => {
                    read.extend(captures("read_failures", request, &answer, &optional)?)
                }
                _ => return Ok(None),
            }
            read.entry("unknown_outcome".into()).or_insert_with(|| "0".into());
        }
        reading(&read, 0).map(Some).map_err(|problem| LiveError::Garbage {
            action: "read_campaign".into(),
            method: actions.read_campaign.method.clone(),
            url: actions.read_campaign.path.clone(),
            problem,
            answer: answer.text,
        })
    }

    /// A tenant's books, when the profile can read them: retried until answered when
    /// `wait`, else `None` if the engine does not answer now (it may be down).
    pub async fn books(&self, tenant: &str, global: &Values, wait: bool) -> Result<Option<Books>, LiveError> {
        let Some(request) = &self.profile.actions.read_tenant else { return Ok(None) };
        let values = self.tenant_values(tenant, global);
        let captured = if wait {
            self.required("read_tenant", request, &values).await?
        } else {
            match self.api.call("read_tenant", request, &values).await? {
                Some(answer) if answer.status < 500 => {
                    captures("read_tenant", request, &answer, &["balance", "reserved"])?
                }
                _ => return Ok(None),
            }
        };
        let number = |name: &str| captured.get(name).and_then(|text| text.parse::<f64>().ok()).map(|n| n as i64);
        Ok(number("charged").map(|charged| Books { charged, balance: number("balance"), reserved: number("reserved") }))
    }
}

/// A tenant's books as the engine shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Books {
    /// Credits spent.
    pub charged: i64,
    /// Credits owned and not yet charged, when the profile reads them.
    pub balance: Option<i64>,
    /// Credits held for messages in flight, when the profile reads them.
    pub reserved: Option<i64>,
}

/// A reading from captured text values.
fn reading(read: &Values, at_ms: u64) -> Result<Reading, String> {
    let number = |name: &str| -> Result<i64, String> {
        let text = read.get(name).ok_or_else(|| format!("no `{name}`"))?;
        text.parse::<f64>().map(|n| n as i64).map_err(|_| format!("`{name}` is `{text}`, not a number"))
    };
    let optional = |name: &str| read.contains_key(name).then(|| number(name)).transpose();
    let unsigned = |name: &str| number(name).map(|n| n.max(0) as u64);
    Ok(Reading {
        at_ms,
        status: read.get("status").cloned().unwrap_or_default(),
        sent: unsigned("sent")?,
        failed: unsigned("failed")?,
        total: unsigned("total")?,
        progress: number("progress")?,
        unknown_outcome: optional("unknown_outcome")?.map(|n| n.max(0) as u64),
        charged: optional("charged")?,
    })
}
