//! The invariants of a live run, decided from the provider's ground truth and what the
//! engine's own API said, in the simulator's vocabulary ([`Invariant`], [`Violation`]).
//!
//! Live mode sees less than the simulator (no store journal): `transitions`, `halt`,
//! `rate` and `isolation` are not checked here, and `counters` compares the engine's
//! numbers with a recount of the provider's acceptances rather than of the engine's rows.

use serde::Serialize;
use smsim_core::domain::segments::count_segments;
use smsim_sim::oracle::{Invariant, Violation};
use smsim_sim::provider::live::{AcceptanceView, TruthView};
use std::collections::BTreeMap;

/// What the engine said about a campaign at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Reading {
    /// Ms since the run began.
    pub at_ms: u64,
    /// The engine's status string.
    pub status: String,
    /// Sent (accepted by the provider, whatever became of it).
    pub sent: u64,
    /// Failed.
    pub failed: u64,
    /// Messages in the campaign.
    pub total: u64,
    /// Progress, percent.
    pub progress: i64,
    /// Failed as `UNKNOWN_OUTCOME` (charged), when the engine says.
    pub unknown_outcome: Option<u64>,
    /// Credits charged for the campaign, when the engine says.
    pub charged: Option<i64>,
}

/// A campaign of the run and its last reading.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CampaignOutcome {
    /// Scenario name.
    pub name: String,
    /// Its tenant's scenario name.
    pub tenant: String,
    /// Contacts it was sent to.
    pub contacts: u64,
    /// The body prefix (`[NAME] `) that tells its messages apart at the provider.
    pub body_prefix: String,
    /// The engine's last answer about it.
    pub last: Reading,
    /// Messages of it the provider accepted (acceptances, duplicates included).
    pub accepted: u64,
    /// Distinct messages of it the provider accepted.
    pub accepted_distinct: u64,
}

/// A tenant of the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TenantOutcome {
    /// Scenario name.
    pub name: String,
    /// Credits charged, as the engine reports it (or the sum of its campaigns').
    pub charged: Option<i64>,
    /// Price of one segment.
    pub price_per_segment: i64,
}

/// A verdict per invariant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Checked, held.
    Held,
    /// Checked, broken.
    Broken,
    /// Not checked, and why.
    NotChecked(String),
}

/// Checks one reading taken during the run: counters within bounds, progress within 0..=100.
pub fn check_reading(campaign: &str, contacts: u64, reading: &Reading) -> Vec<Violation> {
    let mut found = Vec::new();
    let fact = format!(
        "campaign {campaign} at {} ms: status {}, sent {}, failed {}, total {}, progress {}, contacts {contacts}",
        reading.at_ms, reading.status, reading.sent, reading.failed, reading.total, reading.progress
    );
    if reading.sent + reading.failed > contacts || reading.total > contacts {
        found.push(violation(
            Invariant::Counters,
            reading.at_ms,
            format!("campaign {campaign}: sent + failed = {} for {contacts} contacts", reading.sent + reading.failed),
            vec![fact.clone()],
        ));
    }
    if !(0..=100).contains(&reading.progress) {
        found.push(violation(
            Invariant::Progress,
            reading.at_ms,
            format!("campaign {campaign}: progress {}%", reading.progress),
            vec![fact],
        ));
    }
    found
}

fn violation(invariant: Invariant, at_ms: u64, message: String, evidence: Vec<String>) -> Violation {
    Violation { invariant, at_ms, message, evidence }
}

/// Acceptances of `campaign`'s messages at the provider.
pub fn acceptances_of<'a>(truth: &'a TruthView, body_prefix: &'a str) -> impl Iterator<Item = &'a AcceptanceView> {
    truth.acceptances.iter().filter(move |acceptance| acceptance.body.starts_with(body_prefix))
}

/// `at-most-once`: no destination and body accepted twice.
pub fn at_most_once(truth: &TruthView, now_ms: u64) -> Option<Violation> {
    let mut by_key: BTreeMap<(&str, &str), Vec<&AcceptanceView>> = BTreeMap::new();
    for acceptance in &truth.acceptances {
        by_key.entry((&acceptance.destination, &acceptance.body)).or_default().push(acceptance);
    }
    let twice: Vec<_> = by_key.iter().filter(|(_, acceptances)| acceptances.len() > 1).collect();
    let extra: usize = twice.iter().map(|(_, acceptances)| acceptances.len() - 1).sum();
    let ((destination, body), acceptances) = twice.first()?;
    let mut evidence: Vec<String> = acceptances
        .iter()
        .map(|a| format!("{destination} `{body}` accepted as {} at {} ms (provider time)", a.provider_id, a.at_ms))
        .collect();
    evidence.push(format!("{} messages accepted more than once, {extra} extra acceptances in all", twice.len()));
    Some(violation(
        Invariant::AtMostOnce,
        now_ms,
        format!("the provider accepted {destination} `{body}` {} times", acceptances.len()),
        evidence,
    ))
}

/// `counters` at the end: the engine's sent equals a recount of the provider's
/// acceptances, give or take the ones it settled as unknown outcome.
pub fn counters_against_truth(campaign: &CampaignOutcome, now_ms: u64) -> Option<Violation> {
    let last = &campaign.last;
    let unknown = last.unknown_outcome.unwrap_or(0);
    let fits = last.sent <= campaign.accepted_distinct && campaign.accepted_distinct <= last.sent + unknown;
    (!fits).then(|| {
        violation(
            Invariant::Counters,
            now_ms,
            format!(
                "campaign {}: the engine says {} sent, the provider accepted {} distinct messages",
                campaign.name, last.sent, campaign.accepted_distinct
            ),
            vec![format!(
                "expected sent ≤ accepted ≤ sent + unknown outcome ({unknown}); {} acceptances in all",
                campaign.accepted
            )],
        )
    })
}

/// `completion`: a campaign the engine calls completed has nothing left to do.
pub fn completion(campaign: &CampaignOutcome, completed: &str, now_ms: u64) -> Option<Violation> {
    let last = &campaign.last;
    let settled = last.sent + last.failed;
    let broken = last.status == completed && (last.progress != 100 || settled > last.total || last.total == 0);
    broken.then(|| {
        violation(
            Invariant::Completion,
            now_ms,
            format!("campaign {} is {completed} with progress {}%", campaign.name, last.progress),
            vec![format!("sent {}, failed {}, total {}", last.sent, last.failed, last.total)],
        )
    })
}

/// `money`: a tenant's charges equal the cost of its accepted messages, plus at most the
/// cost of those settled as unknown outcome (which the provider may not have accepted).
pub fn money(
    tenant: &TenantOutcome,
    campaigns: &[CampaignOutcome],
    truth: &TruthView,
    now_ms: u64,
) -> Option<Violation> {
    let charged = tenant.charged?;
    let mine: Vec<&CampaignOutcome> = campaigns.iter().filter(|c| c.tenant == tenant.name).collect();
    let cost = |body: &str| i64::from(count_segments(body).segments) * tenant.price_per_segment;
    let accepted: i64 = mine.iter().flat_map(|c| acceptances_of(truth, &c.body_prefix)).map(|a| cost(&a.body)).sum();
    let unknown: u64 = mine.iter().map(|c| c.last.unknown_outcome.unwrap_or(0)).sum();
    let most_per_message = mine
        .iter()
        .flat_map(|c| acceptances_of(truth, &c.body_prefix))
        .map(|a| cost(&a.body))
        .max()
        .unwrap_or(tenant.price_per_segment);
    let high = accepted + unknown as i64 * most_per_message;
    (charged < accepted || charged > high).then(|| {
        violation(
            Invariant::Money,
            now_ms,
            format!("tenant {}: charged {charged} credits, accepted messages cost {accepted}", tenant.name),
            vec![format!("expected {accepted} ≤ charged ≤ {high} ({unknown} settled as unknown outcome)")],
        )
    })
}

/// `liveness`: every campaign reached a final status within the bound, and every report
/// the provider sent for a message it accepted was answered 2xx in the end.
pub fn liveness(
    campaigns: &[CampaignOutcome],
    final_statuses: &[String],
    truth: &TruthView,
    now_ms: u64,
) -> Option<Violation> {
    let unfinished: Vec<String> = campaigns
        .iter()
        .filter(|c| !final_statuses.contains(&c.last.status))
        .map(|c| format!("campaign {} still {} at progress {}%", c.name, c.last.status, c.last.progress))
        .collect();
    let accepted_ids: std::collections::BTreeSet<&str> =
        truth.acceptances.iter().map(|a| a.provider_id.as_str()).collect();
    let unanswered: Vec<String> = truth
        .reports
        .iter()
        .filter(|r| !r.forged && accepted_ids.contains(r.provider_id.as_str()))
        .filter(|r| !r.answered.is_some_and(|status| (200..300).contains(&status)))
        .map(|r| format!("report {} for {} answered {:?}", r.status, r.provider_id, r.answered))
        .collect();
    if unfinished.is_empty() && unanswered.is_empty() {
        return None;
    }
    let message =
        format!("{} campaigns unfinished and {} reports unanswered after healing", unfinished.len(), unanswered.len());
    let evidence = unfinished.into_iter().chain(unanswered.into_iter().take(5)).collect();
    Some(violation(Invariant::Liveness, now_ms, message, evidence))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acceptance(destination: &str, body: &str, id: &str) -> AcceptanceView {
        AcceptanceView {
            destination: destination.into(),
            body: body.into(),
            at_ms: 1,
            provider_id: id.into(),
            account: "ta_1".into(),
        }
    }

    #[test]
    fn a_second_acceptance_breaks_at_most_once() {
        let mut truth = TruthView { acceptances: vec![acceptance("+1", "[a] hi", "M1")], ..TruthView::default() };
        assert!(at_most_once(&truth, 0).is_none());
        truth.acceptances.push(acceptance("+1", "[a] hi", "M2"));
        let broken = at_most_once(&truth, 0).expect("two acceptances of one message");
        assert_eq!(broken.invariant, Invariant::AtMostOnce);
        assert!(broken.evidence.iter().any(|line| line.contains("M2")));
    }

    #[test]
    fn readings_above_their_bounds_break_counters_and_progress() {
        let fine = Reading { sent: 60, failed: 40, total: 100, progress: 100, ..Reading::default() };
        assert!(check_reading("a", 100, &fine).is_empty());
        let inflated = Reading { sent: 139, failed: 0, total: 100, progress: 139, ..Reading::default() };
        let found: Vec<Invariant> = check_reading("a", 100, &inflated).iter().map(|v| v.invariant).collect();
        assert_eq!(found, vec![Invariant::Counters, Invariant::Progress]);
    }

    #[test]
    fn charges_outside_accepted_cost_break_money() {
        let truth = TruthView { acceptances: vec![acceptance("+1", "[a] hi", "M1")], ..TruthView::default() };
        let campaign = CampaignOutcome {
            name: "a".into(),
            tenant: "t".into(),
            contacts: 1,
            body_prefix: "[a] ".into(),
            last: Reading { unknown_outcome: Some(0), ..Reading::default() },
            accepted: 1,
            accepted_distinct: 1,
        };
        let tenant = |charged| TenantOutcome { name: "t".into(), charged: Some(charged), price_per_segment: 55 };
        assert!(money(&tenant(55), std::slice::from_ref(&campaign), &truth, 0).is_none());
        assert!(money(&tenant(110), std::slice::from_ref(&campaign), &truth, 0).is_some());
        assert!(money(&tenant(0), &[campaign], &truth, 0).is_some());
    }
}
