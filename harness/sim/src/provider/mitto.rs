//! The Mitto-style bulk wire format as the simulated provider speaks it, written from the
//! format the provider documents and kept apart from the engine's adapter
//! (`smsim_core::adapter::mitto`), so an adapter that misreads the format meets a provider
//! that does not share the misreading.
//!
//! `POST /api/v1.1/Messages/sendmessagesbulk` with header `X-Mitto-API-Key` and body
//! `{"messages":[{"trafficAccountId","destination","sms":{"text","sender"}}]}`; the answer
//! `{"bulkId","messages":[{"trafficAccountId","messageId"}|{"trafficAccountId","error":{"code","message"}}]}`
//! lists one entry per request message, in request order. Delivery reports are one
//! `{"messageId","deliveryStatus","errorCode"?}` object or an array of them, posted to the
//! account's webhook URL, which carries its token (`?token=`): the provider does not sign.
//!
//! Below the wire types, the simulated provider's handling of the format: the send
//! endpoint, its refusals, and the report webhooks (retried up to five times).

use super::{
    answer_after, caller_crash, json_answer, outage_answer, plan_reports, spawn_webhook, spoil, AccountBinding,
    Channel, FinalDelay, Host, Outgoing, Peer, ReportRules, Spoil, WireFormat,
};
use crate::coverage::Mark;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use smsim_core::adapter::HttpRequest;
use smsim_core::domain::ProviderKind;
use std::collections::BTreeMap;

/// The path of the bulk send endpoint.
pub const SEND_PATH: &str = "/api/v1.1/Messages/sendmessagesbulk";

/// The header that carries the API key.
pub const API_KEY_HEADER: &str = "x-mitto-api-key";

/// A bulk send request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkRequest {
    /// The messages, in order.
    pub messages: Vec<BulkMessage>,
}

/// One message of a bulk request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkMessage {
    /// The provider-side traffic account.
    pub traffic_account_id: String,
    /// The destination, E.164.
    pub destination: String,
    /// The text and the sender.
    pub sms: Sms,
}

/// Text and sender of a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sms {
    /// The body.
    pub text: String,
    /// The sender id.
    pub sender: String,
}

/// The answer to a bulk request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkResponse {
    /// The request's id.
    pub bulk_id: String,
    /// One entry per request message, in request order.
    pub messages: Vec<BulkResult>,
}

/// What became of one message of a bulk request: an id, or a refusal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkResult {
    /// The provider-side traffic account.
    pub traffic_account_id: String,
    /// The provider's id, when accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Why it was refused (a partial bulk failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<BulkError>,
}

/// A refusal of one message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkError {
    /// The code (`INVALID_DESTINATION`, `BLOCKED`, `THROTTLED`, …).
    pub code: String,
    /// A human-readable message.
    #[serde(default)]
    pub message: String,
}

/// A delivery report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryReport {
    /// The provider's id of the message.
    pub message_id: String,
    /// `Sent`, `Delivered` or `Failure`.
    pub delivery_status: String,
    /// An error code, for failures only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

/// A webhook body: one report, or an array of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DeliveryReports {
    /// One report.
    One(DeliveryReport),
    /// Several.
    Many(Vec<DeliveryReport>),
}

// The simulated provider's side: the send endpoint and the report webhooks.

/// The Mitto-style wire as the simulated provider serves it: reports are retried up to
/// five times after a non-2xx answer or none.
pub(super) static WIRE_FORMAT: WireFormat = WireFormat {
    kind: ProviderKind::Mitto,
    send_path: SEND_PATH,
    routes: |router| router.route(SEND_PATH, post(send)),
    reports: ReportRules {
        intermediate: "Sent",
        delivered: "Delivered",
        undelivered: "Failure",
        other_failures: &[],
        attempts: 5,
        retries_error_answers: true,
        // The documentation names an `errorCode` for failures but no values: the simulated
        // provider sends none.
        error_code: |_| None,
    },
};

/// A refusal of a whole request: the documentation gives no error body, so plain text.
fn fault_answer(status: StatusCode) -> Response {
    outage_answer(status, "try later".into_response())
}

/// `POST` [`SEND_PATH`]: refused as a whole (unknown key, outage, drawn fault), or each
/// message accepted or refused in the answer, by position, with its reports planned.
async fn send(
    State(Host { provider, webhooks, engine_url }): State<Host>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let behaviour = provider.behaviour();
    let Some(account) =
        headers.get(API_KEY_HEADER).and_then(|key| key.to_str().ok()).and_then(|key| provider.account_by_key(key))
    else {
        return (StatusCode::UNAUTHORIZED, "unknown API key").into_response();
    };
    if let Some(fault) = provider.request_fault(&behaviour) {
        if let Ok(request) = serde_json::from_slice::<BulkRequest>(&body) {
            let messages = request.messages.iter().map(|m| (m.destination.as_str(), m.sms.text.as_str()));
            provider.refused_request(&account, messages, fault);
        }
        return answer_after(&provider, &behaviour, Spoil::None, fault_answer(fault)).await;
    }
    let Ok(request) = serde_json::from_slice::<BulkRequest>(&body) else {
        return (StatusCode::BAD_REQUEST, "malformed bulk request").into_response();
    };
    let partial = provider.chance(behaviour.faults.partial_bulk_failure);
    if partial {
        provider.fault("partial_bulk_failure", Mark::PartialBulkFailure);
    }
    let spoiled = spoil(&provider, &behaviour);
    let mut results = Vec::with_capacity(request.messages.len());
    let mut accepted = Vec::new();
    for message in &request.messages {
        provider.received(&account, &message.destination, &message.sms.text);
        let refusal = if provider.chance(behaviour.reject_rate) {
            Some("INVALID_DESTINATION")
        } else if partial && provider.chance(0.3) {
            Some(if provider.chance(0.5) { "THROTTLED" } else { "BLOCKED" })
        } else {
            None
        };
        let result = match refusal {
            Some(code) => BulkResult {
                traffic_account_id: message.traffic_account_id.clone(),
                message_id: None,
                error: Some(BulkError { code: code.into(), message: code.to_lowercase() }),
            },
            None => {
                let id = provider.accept(&account, &message.destination, &message.sms.text, "M");
                accepted.push((id.clone(), message.destination.clone()));
                BulkResult { traffic_account_id: message.traffic_account_id.clone(), message_id: Some(id), error: None }
            }
        };
        results.push(result);
    }
    caller_crash(&provider, &behaviour, peer);
    if provider.after_accept.get().is_some() {
        provider.after_accept(accepted.len(), peer).await;
    }
    let channel = Channel::new(ProviderKind::Mitto, account.clone(), move |_, account, reports| {
        webhook(&engine_url, account, reports)
    });
    // Final reports falling due at the same window's end share a webhook, in the order
    // of the request; every other report (early, intermediate, duplicated, stray,
    // forged) travels alone.
    let final_delay = match behaviour.report_window_ms {
        0 => FinalDelay::Drawn,
        window_ms => FinalDelay::Windowed(window_ms),
    };
    let mut windows: BTreeMap<u64, Vec<Outgoing>> = BTreeMap::new();
    for (id, destination) in &accepted {
        for report in plan_reports(&provider, &channel, id, destination, &behaviour, final_delay) {
            if report.batchable && matches!(final_delay, FinalDelay::Windowed(_)) {
                windows.entry(report.delay_ms).or_default().push(report);
            } else {
                spawn_webhook(provider.clone(), webhooks.clone(), channel.clone(), vec![report]);
            }
        }
    }
    for reports in windows.into_values() {
        spawn_webhook(provider.clone(), webhooks.clone(), channel.clone(), reports);
    }
    let answer = BulkResponse { bulk_id: provider.new_id("B"), messages: results };
    answer_after(&provider, &behaviour, spoiled, json_answer(&answer, spoiled)).await
}

/// The webhook carrying `reports` to the account's URL at the engine, which carries its
/// token: one report as an object, several as an array.
fn webhook(engine_url: &str, account: &AccountBinding, reports: &[Outgoing]) -> HttpRequest {
    let forged = reports.iter().any(|report| report.forged);
    let token = if forged { "forged" } else { account.secret.as_str() };
    let wire = |report: &Outgoing| DeliveryReport {
        message_id: report.provider_id.clone(),
        delivery_status: report.status.into(),
        error_code: (WIRE_FORMAT.reports.error_code)(report.status).map(str::to_owned),
    };
    let body = match reports {
        [report] => DeliveryReports::One(wire(report)),
        many => DeliveryReports::Many(many.iter().map(wire).collect()),
    };
    HttpRequest {
        method: http::Method::POST,
        url: format!("{engine_url}/v1/webhooks/mitto/{}?token={token}", account.engine_id),
        headers: BTreeMap::from([("content-type".to_owned(), "application/json".to_owned())]),
        body: Bytes::from(serde_json::to_vec(&body).expect("reports serialise")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented shapes, read and written as the provider sends them.
    #[test]
    fn the_documented_shapes_round_trip() {
        let request = r#"{"messages":[{"trafficAccountId":"ta","destination":"+306912345678","sms":{"text":"hi","sender":"SMSIM"}}]}"#;
        let parsed: BulkRequest = serde_json::from_str(request).unwrap();
        assert_eq!(parsed.messages[0].sms.sender, "SMSIM");
        assert_eq!(serde_json::to_string(&parsed).unwrap(), request);
        let answer = BulkResponse {
            bulk_id: "B1".into(),
            messages: vec![
                BulkResult { traffic_account_id: "ta".into(), message_id: Some("M1".into()), error: None },
                BulkResult {
                    traffic_account_id: "ta".into(),
                    message_id: None,
                    error: Some(BulkError { code: "BLOCKED".into(), message: "blocked".into() }),
                },
            ],
        };
        assert_eq!(
            serde_json::to_string(&answer).unwrap(),
            r#"{"bulkId":"B1","messages":[{"trafficAccountId":"ta","messageId":"M1"},{"trafficAccountId":"ta","error":{"code":"BLOCKED","message":"blocked"}}]}"#
        );
        let one = DeliveryReport { message_id: "M1".into(), delivery_status: "Delivered".into(), error_code: None };
        assert_eq!(
            serde_json::to_string(&DeliveryReports::One(one)).unwrap(),
            r#"{"messageId":"M1","deliveryStatus":"Delivered"}"#,
            "no errorCode on a delivered report"
        );
    }
}
