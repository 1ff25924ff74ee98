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

use serde::{Deserialize, Serialize};

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
