//! The messages an enqueue creates.
//!
//! Planning is pure: given the campaign, its traffic account and a page of the tenant's
//! contacts it renders each body, counts its segments and prices it. The store sums the
//! pages, checks the total against the tenant's available credit and keeps all of it, or
//! nothing, in one transaction. Because the plan is exact (the rendered body, not the template, decides
//! GSM-7 or UCS-2), a personalisation that turns one message into three segments is
//! reserved as three.

use super::phone::is_e164_form;
use super::records::{Campaign, ContactFields, Encoding, TrafficAccount};
use super::segments::{count_segments, MAX_SEGMENTS};
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
    /// The contact's number is not in E.164 form.
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
    /// The destination: the contact's number, in E.164 form unless the message is
    /// skipped as [`SkipReason::InvalidNumber`].
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

/// Plans the messages of `campaign` sent through `account` to those of `contacts` that
/// are in its audience, one at a time, in contact id order (`contacts` may be in any
/// order): a caller counts or writes each and keeps no more than it needs. A rendered body
/// of more than [`MAX_SEGMENTS`] parts is an error naming its contact.
///
/// Numbers were validated against the numbering plan once, when the contacts were
/// imported (a stored contact's number is canonical E.164); planning checks only their
/// form, so a number that is not E.164 (a hand-edited database, say) is skipped rather
/// than sent.
pub fn plan_each<'a, C: ContactFields>(
    campaign: &'a Campaign,
    account: &'a TrafficAccount,
    contacts: &'a [C],
) -> impl Iterator<Item = Result<PlannedMessage, TemplateError>> + 'a {
    let sender = campaign.sender.clone().unwrap_or_else(|| account.sender.clone());
    let mut audience: Vec<&C> = contacts
        .iter()
        .filter(|contact| contact.tenant() == campaign.tenant && campaign.audience.includes(*contact))
        .collect();
    audience.sort_by_key(|contact| contact.id());
    audience.dedup_by_key(|contact| contact.id());
    audience.into_iter().map(move |contact| {
        let body = render_with(&campaign.body_template, |name| contact.attribute(name), contact.phone())?;
        let info = count_segments(&body);
        if info.segments > MAX_SEGMENTS {
            return Err(TemplateError::RenderedTooLong { contact: contact.id().0, segments: info.segments });
        }
        let priced = if crate::incidents::active(crate::incidents::Bug::TemplatePriced) {
            count_segments(&campaign.body_template).segments
        } else {
            info.segments
        };
        let skip = if contact.opted_out() {
            Some(SkipReason::OptedOut)
        } else if !is_e164_form(contact.phone()) {
            Some(SkipReason::InvalidNumber)
        } else {
            None
        };
        let cost = if skip.is_some() { Credits::ZERO } else { account.price_per_segment * priced };
        Ok(PlannedMessage {
            id: MessageId::new(campaign.id, contact.id()),
            contact: contact.id(),
            destination: contact.phone().to_owned(),
            sender: sender.clone(),
            body,
            encoding: info.encoding,
            segments: info.segments,
            cost,
            skip,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::domain::records::{Audience, Contact, ProviderKind};
    use crate::domain::CampaignStatus;
    use crate::ids::{CampaignId, TenantId, TrafficAccountId};

    const TENANT: TenantId = TenantId(1);

    fn campaign() -> Campaign {
        Campaign {
            id: CampaignId(7),
            tenant: TENANT,
            name: "spring".into(),
            body_template: "Hello {{first_name|there}}".into(),
            sender: None,
            audience: Audience::All,
            traffic_account: TrafficAccountId(1),
            status: CampaignStatus::Draft,
            pause_reason: None,
            schedule_at: None,
            counts: Default::default(),
            created_at: Timestamp(0),
            enqueued_at: None,
            completed_at: None,
        }
    }

    fn account() -> TrafficAccount {
        TrafficAccount {
            id: TrafficAccountId(1),
            owner: None,
            name: "main".into(),
            provider: ProviderKind::Mitto,
            base_url: "http://provider".into(),
            credentials: Default::default(),
            sender: "ACME".into(),
            rate_limit_per_s: None,
            price_per_segment: Credits(3),
            idempotent_submissions: false,
        }
    }

    fn contact(id: u64, phone: &str, opted_out: bool) -> Contact {
        Contact { id: ContactId(id), tenant: TENANT, phone: phone.into(), attributes: Default::default(), opted_out }
    }

    fn plan(contacts: &[Contact]) -> Vec<PlannedMessage> {
        plan_each(&campaign(), &account(), contacts).collect::<Result<_, _>>().unwrap()
    }

    fn cost(plan: &[PlannedMessage]) -> Credits {
        plan.iter().map(|message| message.cost).sum()
    }

    #[test]
    fn a_plan_is_in_contact_order_and_prices_only_what_it_sends() {
        let contacts = [
            contact(3, "+306912345003", false),
            contact(1, "+306912345001", true),
            contact(2, "+306912345002", false),
            Contact { tenant: TenantId(2), ..contact(4, "+306912345004", false) },
        ];
        let plan = plan(&contacts);
        let planned: Vec<(u64, Option<SkipReason>, Credits)> =
            plan.iter().map(|m| (m.contact.0, m.skip, m.cost)).collect();
        assert_eq!(
            planned,
            [(1, Some(SkipReason::OptedOut), Credits::ZERO), (2, None, Credits(3)), (3, None, Credits(3))]
        );
        assert_eq!(plan[1].body, "Hello there");
        assert_eq!(plan[1].sender, "ACME");
        let sent: Vec<&PlannedMessage> = plan.iter().filter(|m| m.skip.is_none()).collect();
        let segments: u32 = sent.iter().map(|m| m.segments).sum();
        assert_eq!((cost(&plan), sent.len(), plan.len() - sent.len(), segments), (Credits(6), 2, 1, 2));
    }

    #[test]
    fn a_number_not_in_e164_form_is_skipped_unpriced_and_kept_as_stored() {
        let contacts = [contact(1, "6912345678", false), contact(2, "+306912345002", false)];
        let plan = plan(&contacts);
        let first = &plan[0];
        assert_eq!(
            (first.skip, first.cost, first.destination.as_str()),
            (Some(SkipReason::InvalidNumber), Credits::ZERO, "6912345678")
        );
        assert_eq!(plan[1].skip, None);
        assert_eq!(cost(&plan), Credits(3));
    }
}
