//! The messages an enqueue creates, computed before anything is written.
//!
//! Planning is pure: given the campaign, its traffic account and the tenant's contacts
//! it renders every body, counts its segments and prices it. The store then checks the
//! total against the tenant's available credit and writes all of it, or nothing, in one
//! transaction. Because the plan is exact (the rendered body, not the template, decides
//! GSM-7 or UCS-2), a personalisation that turns one message into three segments is
//! reserved as three.

use super::phone::normalize_e164;
use super::records::{Campaign, ContactFields, Encoding, TrafficAccount};
use super::segments::count_segments;
use super::template::{render_with, TemplateError};
use crate::ids::{ContactId, MessageId};
use crate::money::Credits;
use serde::{Deserialize, Serialize};

/// Why a planned message will not be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SkipReason {
    /// The contact opted out.
    OptedOut,
    /// The contact's number is not a valid E.164 number.
    InvalidNumber,
}

impl SkipReason {
    /// The error code recorded on the skipped message.
    pub fn code(self) -> &'static str {
        match self {
            SkipReason::OptedOut => "OPTED_OUT",
            SkipReason::InvalidNumber => "INVALID_NUMBER",
        }
    }
}

/// One message an enqueue will create.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedMessage {
    /// Its id.
    pub id: MessageId,
    /// The contact.
    pub contact: ContactId,
    /// The destination in E.164 form (as stored when the number is invalid).
    pub destination: String,
    /// The sender.
    pub sender: String,
    /// The rendered body.
    pub body: String,
    /// Its encoding.
    pub encoding: Encoding,
    /// Its parts.
    pub segments: u32,
    /// segments × price per segment; zero for a skipped message.
    pub cost: Credits,
    /// Set when the message is created already skipped.
    pub skip: Option<SkipReason>,
}

/// The whole plan of an enqueue.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// One entry per audience contact, in contact id order.
    pub messages: Vec<PlannedMessage>,
}

impl Plan {
    /// The credits the plan must reserve.
    pub fn cost(&self) -> Credits {
        self.messages.iter().map(|message| message.cost).sum()
    }

    /// Messages that will be sent.
    pub fn sendable(&self) -> usize {
        self.messages.iter().filter(|message| message.skip.is_none()).count()
    }

    /// Messages created already skipped.
    pub fn skipped(&self) -> usize {
        self.messages.len() - self.sendable()
    }

    /// Total segments of the messages that will be sent.
    pub fn segments(&self) -> u64 {
        self.messages.iter().filter(|message| message.skip.is_none()).map(|message| u64::from(message.segments)).sum()
    }
}

/// Plans the messages of `campaign` sent through `account` to those of `contacts` that
/// are in its audience. `contacts` may be in any order; the plan is in contact id order.
pub fn plan_messages<C: ContactFields>(
    campaign: &Campaign,
    account: &TrafficAccount,
    contacts: &[C],
) -> Result<Plan, TemplateError> {
    let sender = campaign.sender.clone().unwrap_or_else(|| account.sender.clone());
    let mut audience: Vec<&C> = contacts
        .iter()
        .filter(|contact| contact.tenant() == campaign.tenant && campaign.audience.includes(*contact))
        .collect();
    audience.sort_by_key(|contact| contact.id());
    audience.dedup_by_key(|contact| contact.id());
    let mut messages = Vec::with_capacity(audience.len());
    for contact in audience {
        let body = render_with(&campaign.body_template, |name| contact.attribute(name), contact.phone())?;
        let info = count_segments(&body);
        let destination = normalize_e164(contact.phone());
        let skip = if contact.opted_out() {
            Some(SkipReason::OptedOut)
        } else if destination.is_err() {
            Some(SkipReason::InvalidNumber)
        } else {
            None
        };
        let cost = if skip.is_some() { Credits::ZERO } else { account.price_per_segment * info.segments };
        messages.push(PlannedMessage {
            id: MessageId::new(campaign.id, contact.id()),
            contact: contact.id(),
            destination: destination.unwrap_or_else(|_| contact.phone().to_owned()),
            sender: sender.clone(),
            body,
            encoding: info.encoding,
            segments: info.segments,
            cost,
            skip,
        });
    }
    Ok(Plan { messages })
}
