//! Infobip's SMS API as Infobip documents it — the send request and answer, message logs,
//! delivery reports pushed to `notifyUrl` and pulled from `GET /sms/1/reports`, statuses
//! and errors — read and written by the simulated provider with code of its own, not with
//! the engine's adapter's types, so a misreading in one is not repeated in the other.

use serde_json::{json, Value};

/// Infobip's status table as the simulated provider uses it: name, group id, group name,
/// status id, description (Infobip's "Response status and error codes").
pub const STATUSES: [(&str, u32, &str, u32, &str); 7] = [
    ("PENDING_ACCEPTED", 1, "PENDING", 26, "Message sent to next instance"),
    ("PENDING_ENROUTE", 1, "PENDING", 7, "Message sent to next instance"),
    ("DELIVERED_TO_HANDSET", 3, "DELIVERED", 5, "Message delivered to handset"),
    ("UNDELIVERABLE_NOT_DELIVERED", 2, "UNDELIVERABLE", 9, "Message sent not delivered"),
    ("EXPIRED_EXPIRED", 4, "EXPIRED", 15, "Message expired"),
    ("REJECTED_DESTINATION", 5, "REJECTED", 14, "Invalid destination address"),
    ("REJECTED_NETWORK", 5, "REJECTED", 6, "Network is forbidden"),
];

/// Whether status `name` is final.
pub fn is_final(name: &str) -> bool {
    !name.starts_with("PENDING")
}

/// The status object of status `name` (one of [`STATUSES`]).
pub fn status(name: &str) -> Value {
    let (name, group_id, group_name, id, description) = STATUSES
        .iter()
        .copied()
        .find(|(known, ..)| *known == name)
        .expect("the simulated provider only uses statuses from its table");
    json!({ "groupId": group_id, "groupName": group_name, "id": id, "name": name, "description": description })
}

/// The error object that goes with status `name`.
pub fn error(name: &str) -> Value {
    let (group_id, group_name, id, error, description, permanent) = match name {
        "UNDELIVERABLE_NOT_DELIVERED" => (1, "HANDSET_ERRORS", 27, "EC_ABSENT_SUBSCRIBER", "Absent subscriber", false),
        "EXPIRED_EXPIRED" => (1, "HANDSET_ERRORS", 1, "EC_UNKNOWN_SUBSCRIBER", "Unknown subscriber", true),
        _ => (0, "OK", 0, "NO_ERROR", "No Error", false),
    };
    json!({
        "groupId": group_id, "groupName": group_name, "id": id, "name": error,
        "description": description, "permanent": permanent,
    })
}

/// A time as Infobip writes it: `2023-11-14T22:13:20.000+0000`.
pub fn time(at_ms: u64) -> String {
    let millis = i64::try_from(crate::clock::EPOCH.plus_ms(at_ms).0).expect("simulated time fits");
    let time = chrono::DateTime::from_timestamp_millis(millis).expect("simulated time is a date");
    time.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// Infobip's error answer.
pub fn refusal(code: &str, text: &str) -> Value {
    json!({ "requestError": { "serviceException": { "messageId": code, "text": text } } })
}

/// What the simulated provider charges a message, in EUR (Infobip's answers carry it).
pub const PRICE_PER_MESSAGE_EUR: f64 = 0.01;

/// The mobile network every simulated destination is on (Greece, Cosmote).
pub const MCC_MNC: &str = "20201";

/// One destination of a send request, with its message's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outbound {
    /// The destination.
    pub to: String,
    /// The client's id for it, if it gave one.
    pub message_id: Option<String>,
    /// The sender (optional at Infobip: the account's default is used).
    pub from: Option<String>,
    /// The text.
    pub text: String,
    /// Where its reports go (none: they wait at `GET /sms/1/reports`).
    pub notify_url: Option<String>,
    /// Echoed in its reports.
    pub callback_data: Option<String>,
}

/// A send request, read: its bulk id and every destination, or what is wrong with it.
pub fn parse_send(body: &[u8]) -> Result<(Option<String>, Vec<Outbound>), String> {
    let request: Value = serde_json::from_slice(body).map_err(|error| format!("not JSON: {error}"))?;
    let text_of = |value: &Value, field: &str| value.get(field).and_then(Value::as_str).map(str::to_owned);
    let messages = request.get("messages").and_then(Value::as_array).ok_or("`messages` is missing")?;
    let mut out = Vec::new();
    for (index, message) in messages.iter().enumerate() {
        let text = text_of(message, "text").ok_or(format!("messages[{index}].text is missing"))?;
        let destinations = message
            .get("destinations")
            .and_then(Value::as_array)
            .ok_or(format!("messages[{index}].destinations is missing"))?;
        for (number, destination) in destinations.iter().enumerate() {
            let to =
                text_of(destination, "to").ok_or(format!("messages[{index}].destinations[{number}].to is missing"))?;
            out.push(Outbound {
                to,
                message_id: text_of(destination, "messageId"),
                from: text_of(message, "from"),
                text: text.clone(),
                notify_url: text_of(message, "notifyUrl"),
                callback_data: text_of(message, "callbackData"),
            });
        }
    }
    if out.is_empty() {
        return Err("no destinations".into());
    }
    Ok((text_of(&request, "bulkId"), out))
}

/// Whether Infobip would take `to` as a destination: an international number, with or
/// without `+`, 8 to 15 digits.
pub fn is_destination(to: &str) -> bool {
    let digits = to.strip_prefix('+').unwrap_or(to);
    (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
}

/// What the simulated provider keeps of each Infobip message beyond its acceptance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Its bulk.
    pub bulk_id: String,
    /// Its sender, as given.
    pub from: Option<String>,
    /// Echoed in its reports.
    pub callback_data: Option<String>,
    /// When it was accepted.
    pub sent_ms: u64,
    /// No `notifyUrl`: its final report waits to be pulled, due then, with this status.
    pub pull: Option<(u64, &'static str)>,
    /// Pulled already (a report is pulled once).
    pub pulled: bool,
}

impl Record {
    /// A message the provider kept nothing extra of (a stray report's id, or an acceptance
    /// recorded before this record existed): its bulk and when it was sent.
    pub fn untracked(bulk_id: String, sent_ms: u64) -> Record {
        Record { bulk_id, from: None, callback_data: None, sent_ms, pull: None, pulled: false }
    }
}

/// A message's report or log entry: everything Infobip documents for it. `done_ms` is
/// when its status became final, if it has.
pub fn entry(
    record: &Record,
    message_id: &str,
    to: &str,
    status_name: &str,
    done_ms: Option<u64>,
    sms_count: u32,
) -> Value {
    json!({
        "bulkId": record.bulk_id,
        "messageId": message_id,
        "to": to,
        "from": record.from,
        "sentAt": time(record.sent_ms),
        "doneAt": done_ms.map(time),
        "smsCount": sms_count,
        "mccMnc": MCC_MNC,
        "callbackData": record.callback_data,
        "price": { "pricePerMessage": PRICE_PER_MESSAGE_EUR, "currency": "EUR" },
        "status": status(status_name),
        "error": error(status_name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_as_infobip_documents_them() {
        let body = br#"{"bulkId":"B1","messages":[{"destinations":[{"to":"41793026727"},{"to":"+41793026834","messageId":"m2"}],"text":"hi","notifyUrl":"http://x","callbackData":"c"}]}"#;
        let (bulk, messages) = parse_send(body).unwrap();
        assert_eq!(bulk.as_deref(), Some("B1"));
        assert_eq!(messages.len(), 2);
        assert_eq!((messages[0].from.as_deref(), messages[1].message_id.as_deref()), (None, Some("m2")));
        assert!(parse_send(br#"{"messages":[{"destinations":[{"to":"1"}]}]}"#).unwrap_err().contains("text"));
        assert!(is_destination("41793026727") && is_destination("+41793026727"));
        assert!(!is_destination("abc") && !is_destination("123") && !is_destination("041793026727"));
        assert_eq!(time(0), "2023-11-14T22:13:20.000+0000");
    }
}
