//! Identifiers of the domain's records.
//!
//! Records are numbered by the store; on the wire an id carries a prefix that says what
//! it names (`cmp_12`), so a campaign id pasted where a contact id belongs is refused
//! instead of silently naming another record. A message id is *derived* from its
//! campaign and contact (`msg_12_345`), which makes creating a campaign's messages
//! idempotent: enqueueing twice cannot create a second message for one contact.
//!
//! The number in an id is at most [`MAX_ID_NUMBER`] (`i64::MAX`): stores number records
//! as SQLite does, in signed 64 bits, so a larger number names nothing, and refusing it
//! while parsing keeps it from reaching a store that cannot even look it up.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// An id string that does not have the expected form.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a {kind} id (expected the form `{prefix}<number>`)")]
pub struct BadId {
    /// What was given.
    pub text: String,
    /// The kind of id that was expected.
    pub kind: &'static str,
    /// The expected prefix.
    pub prefix: &'static str,
}

/// The largest number an id may carry (`i64::MAX`, SQLite's largest row id).
pub const MAX_ID_NUMBER: u64 = i64::MAX as u64;

/// The number in `digits`: ASCII digits only, at most [`MAX_ID_NUMBER`].
fn id_number(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|number| *number <= MAX_ID_NUMBER)
}

macro_rules! numbered_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u64);

        impl $name {
            /// The prefix of this id's text form.
            pub const PREFIX: &'static str = $prefix;
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, self.0)
            }
        }

        impl FromStr for $name {
            type Err = BadId;
            fn from_str(text: &str) -> Result<Self, BadId> {
                text.strip_prefix($prefix)
                    .and_then(id_number)
                    .map($name)
                    .ok_or_else(|| BadId { text: text.to_owned(), kind: $kind, prefix: $prefix })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

numbered_id!(
    /// A tenant: one customer account with its own API key, credits and contacts.
    TenantId, "ten_", "tenant"
);
numbered_id!(
    /// A contact of one tenant.
    ContactId, "con_", "contact"
);
numbered_id!(
    /// A campaign of one tenant.
    CampaignId, "cmp_", "campaign"
);
numbered_id!(
    /// A traffic account: provider kind, credentials, sender and rate limit.
    TrafficAccountId, "ta_", "traffic account"
);

/// A message: one per campaign × contact, its id derived from both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId {
    /// The campaign the message belongs to.
    pub campaign: CampaignId,
    /// The contact it is addressed to.
    pub contact: ContactId,
}

impl MessageId {
    /// The prefix of a message id's text form.
    pub const PREFIX: &'static str = "msg_";

    /// The id of the message of `campaign` to `contact`.
    pub fn new(campaign: CampaignId, contact: ContactId) -> Self {
        MessageId { campaign, contact }
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "msg_{}_{}", self.campaign.0, self.contact.0)
    }
}

impl FromStr for MessageId {
    type Err = BadId;
    fn from_str(text: &str) -> Result<Self, BadId> {
        let bad = || BadId { text: text.to_owned(), kind: "message", prefix: "msg_<campaign>_" };
        let rest = text.strip_prefix("msg_").ok_or_else(bad)?;
        let (campaign, contact) = rest.split_once('_').ok_or_else(bad)?;
        let number = |digits: &str| id_number(digits).ok_or_else(bad);
        Ok(MessageId::new(CampaignId(number(campaign)?), ContactId(number(contact)?)))
    }
}

impl Serialize for MessageId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MessageId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text() {
        assert_eq!("cmp_12".parse::<CampaignId>(), Ok(CampaignId(12)));
        assert_eq!(CampaignId(12).to_string(), "cmp_12");
        let message = MessageId::new(CampaignId(3), ContactId(17));
        assert_eq!(message.to_string(), "msg_3_17");
        assert_eq!("msg_3_17".parse::<MessageId>(), Ok(message));
    }

    #[test]
    fn an_id_of_another_kind_is_refused() {
        assert!("con_12".parse::<CampaignId>().is_err());
        assert!("cmp_".parse::<CampaignId>().is_err());
        assert!("cmp_-1".parse::<CampaignId>().is_err());
        assert!("cmp_1x".parse::<CampaignId>().is_err());
        assert!("msg_3".parse::<MessageId>().is_err());
        assert!("msg_3_".parse::<MessageId>().is_err());
    }

    #[test]
    fn a_number_beyond_a_signed_64_bit_row_id_is_refused() {
        assert_eq!("cmp_9223372036854775807".parse::<CampaignId>(), Ok(CampaignId(MAX_ID_NUMBER)));
        assert!("cmp_9223372036854775808".parse::<CampaignId>().is_err());
        assert!("ten_18446744073709551615".parse::<TenantId>().is_err());
        assert!("msg_9223372036854775808_1".parse::<MessageId>().is_err());
        assert!("msg_1_9223372036854775808".parse::<MessageId>().is_err());
    }
}
