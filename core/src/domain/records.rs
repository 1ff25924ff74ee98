//! The records of the domain: tenants, contacts, traffic accounts, campaigns, messages.
//!
//! These are plain data. The rules that change them live in [`super::status`],
//! [`super::ledger`] and the store; a campaign's counters here are a *cache* of a count
//! of its messages by status that the store keeps in the same transaction as every
//! status change and that must always equal a recount.

use super::status::{CampaignStatus, MessageStatus};
use crate::clock::Timestamp;
use crate::ids::{CampaignId, ContactId, MessageId, TenantId, TrafficAccountId};
use crate::money::Credits;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A customer account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// Its id.
    pub id: TenantId,
    /// A display name.
    pub name: String,
    /// Hex SHA-256 of the API key; the key itself is never stored.
    pub api_key_hash: String,
    /// Credits owned and not yet charged, reservations included.
    pub balance: Credits,
    /// The part of `balance` held for messages still in flight.
    pub reserved: Credits,
    /// Credits spent on messages (provider-accepted, or settled as unknown outcome).
    pub charged: Credits,
    /// Every credit ever added (the opening balance, top-ups and adjustments).
    pub funded: Credits,
    /// Submissions per second across all of this tenant's campaigns, if limited.
    pub rate_limit_per_s: Option<u32>,
}

impl Tenant {
    /// What enqueue may still reserve.
    pub fn available(&self) -> Credits {
        self.balance - self.reserved
    }
}

/// A tenant's contact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Its id.
    pub id: ContactId,
    /// Its tenant.
    pub tenant: TenantId,
    /// The phone number in E.164 form.
    pub phone: String,
    /// Attributes usable in templates (`{{first_name}}`).
    pub attributes: BTreeMap<String, String>,
    /// Opted out of messages: never sent to.
    pub opted_out: bool,
}

/// What planning reads of a contact. A store may keep its contacts in a shape of its own
/// (the memory store holds a million of them, compactly) and plan from that directly.
pub trait ContactFields {
    /// Its id.
    fn id(&self) -> ContactId;
    /// Its tenant.
    fn tenant(&self) -> TenantId;
    /// The phone number as stored.
    fn phone(&self) -> &str;
    /// The value of attribute `name`, if it has one.
    fn attribute(&self, name: &str) -> Option<&str>;
    /// Opted out of messages.
    fn opted_out(&self) -> bool;
}

impl ContactFields for Contact {
    fn id(&self) -> ContactId {
        self.id
    }

    fn tenant(&self) -> TenantId {
        self.tenant
    }

    fn phone(&self) -> &str {
        &self.phone
    }

    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }

    fn opted_out(&self) -> bool {
        self.opted_out
    }
}

/// Writes [`ProviderKind`] and [`ProviderKind::ALL`] from one list, so a kind cannot be
/// left out of `ALL` (every registry built on `ALL` would silently miss it), and its name
/// in paths, configuration and JSON from the same row.
macro_rules! provider_kinds {
    ($($(#[$doc:meta])* $kind:ident = $name:literal,)+) => {
        /// The wire format an account speaks.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum ProviderKind {
            $($(#[$doc])* #[serde(rename = $name)] $kind,)+
        }

        impl ProviderKind {
            /// Every kind.
            pub const ALL: [ProviderKind; [$($name),+].len()] = [$(ProviderKind::$kind),+];

            /// The kind's name in paths and configuration.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ProviderKind::$kind => $name,)+
                }
            }
        }
    };
}

provider_kinds! {
    /// Mitto's wire format ([`ProviderKind::summary`] says what it is).
    Mitto = "mitto",
    /// Twilio's wire format.
    Twilio = "twilio",
    /// Infobip's wire format.
    Infobip = "infobip",
}

impl ProviderKind {
    /// What the wire format is, in one sentence: the reference's table of providers
    /// prints it.
    pub fn summary(self) -> &'static str {
        match self {
            ProviderKind::Mitto => "Mitto-style bulk: many messages per request, ids mapped back by position.",
            ProviderKind::Twilio => "Twilio-style single: one message per request, signed status callbacks.",
            ProviderKind::Infobip => {
                "Infobip-style bulk: many messages per request, each carrying our id, which the answer and the \
                 reports echo."
            }
        }
    }

    /// The kind named `text`, if any.
    pub fn parse(text: &str) -> Option<ProviderKind> {
        ProviderKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provider account that messages are sent through.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficAccount {
    /// Its id.
    pub id: TrafficAccountId,
    /// The tenant that owns it, or `None` for a platform account any tenant may use.
    pub owner: Option<TenantId>,
    /// A display name.
    pub name: String,
    /// The wire format.
    pub provider: ProviderKind,
    /// The provider's base URL (`https://rest.mitto.ch`).
    pub base_url: String,
    /// Provider credentials by name (`api_key`, `account_sid`, `auth_token`,
    /// `traffic_account_id`, …); never returned by the API.
    pub credentials: BTreeMap<String, String>,
    /// The default sender (alphanumeric id or number).
    pub sender: String,
    /// Submissions per second through this account, if limited.
    pub rate_limit_per_s: Option<u32>,
    /// The price of one segment.
    pub price_per_segment: Credits,
    /// The provider honours idempotency keys, so an expired lease may be resubmitted
    /// with the same key instead of being reconciled.
    pub idempotent_submissions: bool,
}

impl TrafficAccount {
    /// Whether `tenant` may send through this account.
    pub fn usable_by(&self, tenant: TenantId) -> bool {
        if crate::incidents::active(crate::incidents::Bug::PrivateAccountShared) {
            // An ownership check forgotten: every account looks like a platform account.
            return true;
        }
        self.owner.is_none_or(|owner| owner == tenant)
    }
}

/// Who receives a campaign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Audience {
    /// Every contact of the tenant.
    All,
    /// The listed contacts.
    Contacts {
        /// Their ids.
        ids: Vec<ContactId>,
    },
    /// Contacts whose attribute `key` equals `value`.
    Attribute {
        /// The attribute name.
        key: String,
        /// The value to match.
        value: String,
    },
}

impl Audience {
    /// Whether `contact` belongs to this audience.
    pub fn includes(&self, contact: &impl ContactFields) -> bool {
        match self {
            Audience::All => true,
            Audience::Contacts { ids } => ids.contains(&contact.id()),
            Audience::Attribute { key, value } => contact.attribute(key) == Some(value.as_str()),
        }
    }
}

/// Why a campaign is paused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseReason {
    /// An operator paused it.
    Operator,
    /// The tenant ran out of credits.
    InsufficientCredits,
}

/// A count of a campaign's messages by status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    /// Waiting for a worker.
    pub queued: u32,
    /// Claimed by a worker.
    pub submitting: u32,
    /// Accepted by the provider, no final report yet.
    pub accepted: u32,
    /// Delivered.
    pub delivered: u32,
    /// Undelivered.
    pub undelivered: u32,
    /// Expired.
    pub expired: u32,
    /// Rejected after acceptance.
    pub rejected: u32,
    /// Failed.
    pub failed: u32,
    /// Outcome unknown.
    pub unknown: u32,
    /// Skipped (opted out, invalid number).
    pub skipped: u32,
    /// Cancelled before sending.
    pub cancelled: u32,
}

impl StatusCounts {
    /// The counter for `status`.
    pub fn get(&self, status: MessageStatus) -> u32 {
        match status {
            MessageStatus::Queued => self.queued,
            MessageStatus::Submitting => self.submitting,
            MessageStatus::Accepted => self.accepted,
            MessageStatus::Delivered => self.delivered,
            MessageStatus::Undelivered => self.undelivered,
            MessageStatus::Expired => self.expired,
            MessageStatus::Rejected => self.rejected,
            MessageStatus::Failed => self.failed,
            MessageStatus::Unknown => self.unknown,
            MessageStatus::Skipped => self.skipped,
            MessageStatus::Cancelled => self.cancelled,
        }
    }

    /// The counter for `status`, mutably.
    pub fn get_mut(&mut self, status: MessageStatus) -> &mut u32 {
        match status {
            MessageStatus::Queued => &mut self.queued,
            MessageStatus::Submitting => &mut self.submitting,
            MessageStatus::Accepted => &mut self.accepted,
            MessageStatus::Delivered => &mut self.delivered,
            MessageStatus::Undelivered => &mut self.undelivered,
            MessageStatus::Expired => &mut self.expired,
            MessageStatus::Rejected => &mut self.rejected,
            MessageStatus::Failed => &mut self.failed,
            MessageStatus::Unknown => &mut self.unknown,
            MessageStatus::Skipped => &mut self.skipped,
            MessageStatus::Cancelled => &mut self.cancelled,
        }
    }

    /// Moves one message from `from` to `to`.
    ///
    /// Panics if `from` is already zero: that is a store bug (a counter out of step with
    /// the messages), never an input error.
    pub fn shift(&mut self, from: MessageStatus, to: MessageStatus) {
        let source = self.get_mut(from);
        *source = source.checked_sub(1).expect("status counter underflow: counters out of step with messages");
        *self.get_mut(to) += 1;
    }

    /// Every message counted.
    pub fn total(&self) -> u32 {
        MessageStatus::ALL.iter().map(|&status| self.get(status)).sum()
    }

    /// Messages still in flight.
    pub fn pending(&self) -> u32 {
        self.queued + self.submitting + self.unknown
    }

    /// Messages settled.
    pub fn settled(&self) -> u32 {
        self.total() - self.pending()
    }

    /// Messages the provider accepted ("sent").
    pub fn sent(&self) -> u32 {
        self.accepted + self.delivered + self.undelivered + self.expired + self.rejected
    }

    /// `settled / total × 100`, an integer in 0..=100 (0 for an empty campaign).
    pub fn progress(&self) -> u8 {
        if crate::incidents::active(crate::incidents::Bug::UnboundedProgress) {
            // Incident 004: `(sentCount + failedCount) / contactCount × 100` where the sent
            // counter also counted deliveries, and no bound: 290%.
            let total = u64::from(self.total().max(1));
            return ((u64::from(self.settled() + self.delivered) * 100) / total).min(255) as u8;
        }
        progress(self.settled(), self.total())
    }
}

/// `settled / total × 100` rounded down, never above 100.
///
/// Incident 004 computed `(sent + failed) / contacts × 100` from inflated counters and
/// reached 290%; here the numerator is a count of settled messages, which a store cannot
/// make larger than the total, and the result is clamped as a second line of defence.
pub fn progress(settled: u32, total: u32) -> u8 {
    if total == 0 {
        return 0;
    }
    let percent = u64::from(settled.min(total)) * 100 / u64::from(total);
    percent.min(100) as u8
}

/// A campaign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Campaign {
    /// Its id.
    pub id: CampaignId,
    /// Its tenant.
    pub tenant: TenantId,
    /// A display name.
    pub name: String,
    /// The body, with `{{attribute}}` placeholders.
    pub body_template: String,
    /// The sender, overriding the traffic account's default.
    pub sender: Option<String>,
    /// Who receives it.
    pub audience: Audience,
    /// The account it is sent through.
    pub traffic_account: TrafficAccountId,
    /// Where it stands.
    pub status: CampaignStatus,
    /// Why it is paused, while it is.
    pub pause_reason: Option<PauseReason>,
    /// When sending should start; `None` means at enqueue.
    pub schedule_at: Option<Timestamp>,
    /// Its messages by status.
    pub counts: StatusCounts,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was enqueued (messages created, credits reserved).
    pub enqueued_at: Option<Timestamp>,
    /// When it completed.
    pub completed_at: Option<Timestamp>,
}

impl Campaign {
    /// Settled share in percent, 0..=100.
    pub fn progress(&self) -> u8 {
        self.counts.progress()
    }
}

/// A provider or engine error attached to a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageError {
    /// A stable code (`INVALID_NUMBER`, `HTTP_503`, `UNKNOWN_OUTCOME`, a provider code…).
    pub code: String,
    /// Whether another attempt may succeed.
    pub retryable: bool,
    /// A human-readable detail; never contains credentials.
    pub detail: String,
}

/// A worker's claim on a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The worker holding it.
    pub worker: String,
    /// When it expires unless renewed.
    pub expires_at: Timestamp,
    /// The claim's fencing token; a write carrying an older token is refused.
    pub token: u64,
}

/// Text encoding of a rendered body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// The GSM 03.38 7-bit alphabet (160 characters, or 153 per part).
    Gsm7,
    /// UCS-2 (70 characters, or 67 per part).
    Ucs2,
}

/// One message of a campaign to one contact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Its id, derived from campaign and contact.
    pub id: MessageId,
    /// The campaign's tenant.
    pub tenant: TenantId,
    /// The account it is sent through.
    pub traffic_account: TrafficAccountId,
    /// The destination in E.164 form.
    pub destination: String,
    /// The sender.
    pub sender: String,
    /// The rendered body.
    pub body: String,
    /// The body's encoding.
    pub encoding: Encoding,
    /// Parts the body is sent in.
    pub segments: u32,
    /// What it costs: segments × price per segment.
    pub cost: Credits,
    /// Where it stands.
    pub status: MessageStatus,
    /// Submission attempts started.
    pub attempts: u32,
    /// Not to be claimed before this time.
    pub next_attempt_at: Timestamp,
    /// The current worker claim, while submitting.
    pub lease: Option<Lease>,
    /// The provider's id for it, once accepted.
    pub provider_message_id: Option<String>,
    /// The provider's bulk id, for bulk providers.
    pub bulk_id: Option<String>,
    /// The last error.
    pub last_error: Option<MessageError>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When its status last changed.
    pub updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_provider_kind_is_named_alike_in_json_paths_and_parsing() {
        for kind in ProviderKind::ALL {
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<ProviderKind>(&format!("\"{kind}\"")).unwrap(), kind);
            assert_eq!(ProviderKind::parse(kind.as_str()), Some(kind));
        }
        let names: BTreeSet<&str> = ProviderKind::ALL.iter().map(|kind| kind.as_str()).collect();
        assert_eq!(names.len(), ProviderKind::ALL.len(), "two kinds share a name");
        assert_eq!(ProviderKind::parse("Mitto"), None, "names are exact");
    }
}
