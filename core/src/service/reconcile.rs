//! What an operator weighs when outcomes stay unknown. A message whose submission's answer
//! was lost is `unknown`, then failed `UNKNOWN_OUTCOME` (charged, as the provider may have
//! sent it). Where the provider's report names our message (Twilio's callback URL, Infobip's
//! client `messageId`) the report resolves it; where it names only the provider's id
//! (Mitto-style), nothing can say which message a parked report is for. The evidence is
//! then account-level: per campaign and account how many outcomes are unknown, and per
//! account how many reports, by status, arrived for ids the engine never learned, and when.

use crate::domain::UNKNOWN_OUTCOME;
use crate::ids::{CampaignId, TenantId, TrafficAccountId};
use crate::store::{ParkedSummary, Store, StoreResult};
use serde::Serialize;

/// A campaign with outcomes unknown, or settled as unknown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CampaignUnknowns {
    /// The campaign.
    pub campaign: CampaignId,
    /// Its tenant.
    pub tenant: TenantId,
    /// The account it sends through.
    pub traffic_account: TrafficAccountId,
    /// Messages unknown now (a lookup or a report may still resolve them).
    pub unknown: u32,
    /// Messages settled as failed `UNKNOWN_OUTCOME`, charged.
    pub unknown_outcome: u32,
}

/// The evidence, store-wide.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Reconciliation {
    /// Campaigns with any outcome unknown, by id.
    pub campaigns: Vec<CampaignUnknowns>,
    /// Parked reports by account and status.
    pub parked: Vec<ParkedSummary>,
}

/// The evidence as the store holds it now.
pub fn reconciliation(store: &dyn Store) -> StoreResult<Reconciliation> {
    let mut campaigns = Vec::new();
    for campaign in store.all_campaigns()? {
        // Only a campaign with a failure can have an UNKNOWN_OUTCOME among them.
        let unknown_outcome = match campaign.counts.failed {
            0 => 0,
            _ => store.failures_by_code(campaign.tenant, campaign.id)?.get(UNKNOWN_OUTCOME).copied().unwrap_or(0),
        };
        if campaign.counts.unknown > 0 || unknown_outcome > 0 {
            campaigns.push(CampaignUnknowns {
                campaign: campaign.id,
                tenant: campaign.tenant,
                traffic_account: campaign.traffic_account,
                unknown: campaign.counts.unknown,
                unknown_outcome,
            });
        }
    }
    Ok(Reconciliation { campaigns, parked: store.parked_summary()? })
}
