//! Twilio's Messages API as Twilio documents it — the message resource, its list, its
//! errors and its status callbacks — rendered by the simulated provider with code of its
//! own. The reference is Twilio's published OpenAPI document (the Messages part is kept in
//! `harness/sim/spec/twilio/messages.json`, and a test holds every answer to it); nothing
//! here comes from the engine's Twilio adapter, so a misreading of the API in one is not
//! repeated in the other.

use crate::clock::EPOCH;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The API version every path and resource names.
pub const API_VERSION: &str = "2010-04-01";

/// Twilio refuses longer bodies (error 21617).
pub const MAX_BODY_CHARS: usize = 1_600;

/// What one segment costs in the simulated price list, in USD (Twilio's US SMS price).
pub const PRICE_PER_SEGMENT_USD: f64 = 0.0079;

/// A message SID: `SM` and 32 hex digits, as the specification's pattern says.
pub fn message_sid(number: u64) -> String {
    format!("SM{number:032x}")
}

/// Whether `sid` has the shape of a message SID.
pub fn is_message_sid(sid: &str) -> bool {
    sid.len() == 34 && sid.starts_with("SM") && sid[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// An RFC 2822 date, as Twilio writes its `date_*` fields: `Tue, 14 Nov 2023 22:13:20 +0000`.
pub fn rfc2822(at_ms: u64) -> String {
    let millis = i64::try_from(EPOCH.plus_ms(at_ms).0).expect("simulated time fits");
    let time = chrono::DateTime::from_timestamp_millis(millis).expect("simulated time is a date");
    time.format("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

/// A `DateSent` filter of the message list, as Twilio's OpenAPI document names them:
/// `DateSent` (sent that UTC day), `DateSent<` (on or before), `DateSent>` (on or after). A
/// value is a date (`2023-11-14`: the whole day) or a UTC date-time (`2023-11-14T22:13:20Z`,
/// as twilio-python writes even a date; for `DateSent`, its day).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateSent {
    /// Earliest send time kept, ms since the Unix epoch.
    pub from_ms: Option<i64>,
    /// Latest send time kept, ms since the Unix epoch.
    pub until_ms: Option<i64>,
}

impl DateSent {
    /// The filters of `query`; an unreadable value is Twilio's 20001, naming it.
    pub fn of(query: &BTreeMap<String, String>) -> Result<DateSent, String> {
        let mut filter = DateSent { from_ms: None, until_ms: None };
        for (name, value) in query {
            let (first, last) = match name.as_str() {
                "DateSent" | "DateSent<" | "DateSent>" => day_or_instant(value)
                    .ok_or_else(|| format!("{name} must be a date (YYYY-MM-DD) or a date-time, not `{value}`"))?,
                _ => continue,
            };
            match name.as_str() {
                "DateSent" => {
                    let start = first - first.rem_euclid(86_400_000);
                    (filter.from_ms, filter.until_ms) = (Some(start), Some(start + 86_400_000 - 1));
                }
                "DateSent<" => filter.until_ms = Some(last),
                _ => filter.from_ms = Some(first),
            }
        }
        Ok(filter)
    }

    /// Whether a message sent at `at_ms` (simulated ms) passes.
    pub fn keeps(&self, at_ms: u64) -> bool {
        let sent = i64::try_from(EPOCH.plus_ms(at_ms).0).unwrap_or(i64::MAX);
        self.from_ms.is_none_or(|from| sent >= from) && self.until_ms.is_none_or(|until| sent <= until)
    }
}

/// The first and last millisecond `value` names: a whole UTC day, or one instant.
fn day_or_instant(value: &str) -> Option<(i64, i64)> {
    if let Ok(day) = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        let start = day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis();
        return Some((start, start + 86_400_000 - 1));
    }
    let instant = chrono::DateTime::parse_from_rfc3339(value).ok()?.timestamp_millis();
    Some((instant, instant))
}

/// Whether `number` is in E.164 form (`+` and 8 to 15 digits, no leading zero): Twilio
/// refuses anything else with error 21211.
pub fn is_e164(number: &str) -> bool {
    let Some(digits) = number.strip_prefix('+') else { return false };
    (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
}

/// A message as the simulated Twilio holds it.
#[derive(Clone, Debug)]
pub struct Message<'a> {
    /// The account.
    pub account_sid: &'a str,
    /// Its SID.
    pub sid: &'a str,
    /// Destination.
    pub to: &'a str,
    /// The number it went out from (none yet for a messaging service's fresh message).
    pub from: Option<&'a str>,
    /// The messaging service that sent it.
    pub messaging_service_sid: Option<&'a str>,
    /// Body.
    pub body: &'a str,
    /// Twilio's status (`queued`, `accepted`, `sent`, `delivered`, `undelivered`, …).
    pub status: &'a str,
    /// When it was created (ms since the start).
    pub created_ms: u64,
    /// When it last changed.
    pub updated_ms: u64,
}

/// Error code and message of an `undelivered` or `failed` message (30003: unreachable).
pub const UNDELIVERED: (i64, &str) = (30003, "Unreachable destination handset");

/// The message resource, every documented field present (null where Twilio has none).
pub fn resource(message: &Message<'_>) -> Value {
    let segments = smsim_judge::segments::count(message.body);
    // A messaging service has not picked a sender yet: no segments, no price (as the
    // specification says of `num_segments`).
    let picked = message.from.is_some();
    let settled = matches!(message.status, "sent" | "delivered" | "undelivered");
    let price = (picked && settled).then(|| format!("{:.5}", -PRICE_PER_SEGMENT_USD * f64::from(segments)));
    let failed = matches!(message.status, "undelivered" | "failed");
    let uri = format!("/{API_VERSION}/Accounts/{}/Messages/{}.json", message.account_sid, message.sid);
    let sent = settled.then(|| rfc2822(message.updated_ms));
    json!({
        "account_sid": message.account_sid,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": rfc2822(message.created_ms),
        "date_sent": sent,
        "date_updated": rfc2822(message.updated_ms),
        "direction": "outbound-api",
        "error_code": failed.then_some(UNDELIVERED.0),
        "error_message": failed.then_some(UNDELIVERED.1),
        "from": message.from,
        "messaging_service_sid": message.messaging_service_sid,
        "num_media": "0",
        "num_segments": if picked { segments.to_string() } else { "0".to_owned() },
        "price": price,
        "price_unit": "USD",
        "sid": message.sid,
        "status": message.status,
        "subresource_uris": {
            "media": format!("/{API_VERSION}/Accounts/{}/Messages/{}/Media.json", message.account_sid, message.sid),
        },
        "to": message.to,
        "uri": uri,
    })
}

/// One page of the message list, with Twilio's paging fields. `query` is the request's
/// filters (without `Page`), repeated in the page URIs.
pub fn list_page(
    account_sid: &str,
    messages: Vec<Value>,
    query: &str,
    page: usize,
    page_size: usize,
    more: bool,
) -> Value {
    let path = format!("/{API_VERSION}/Accounts/{account_sid}/Messages.json");
    // Twilio's page links carry a `PageToken` beside the page number; here it names the
    // page it leads to (`PA1`, …), and a client that follows the link lands there.
    let at = |page: usize| {
        let separator = if query.is_empty() { "" } else { "&" };
        format!("{path}?{query}{separator}PageSize={page_size}&Page={page}&PageToken=PA{page}")
    };
    let start = page * page_size;
    let end = (start + messages.len()).saturating_sub(1);
    json!({
        "end": end,
        "first_page_uri": at(0),
        "messages": messages,
        "next_page_uri": more.then(|| at(page + 1)),
        "page": page,
        "page_size": page_size,
        "previous_page_uri": (page > 0).then(|| at(page - 1)),
        "start": start,
        "uri": at(page),
    })
}

/// Twilio's error answer: `{code, message, more_info, status}`.
pub fn error(code: i64, message: &str, status: u16) -> Value {
    json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    })
}

/// Whether `authorization` is HTTP basic auth with `account_sid` and `auth_token`.
pub fn authorised(authorization: Option<&str>, account_sid: &str, auth_token: &str) -> bool {
    let Some(encoded) = authorization.and_then(|value| value.strip_prefix("Basic ")) else { return false };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else { return false };
    decoded == format!("{account_sid}:{auth_token}").as_bytes()
}

/// The form fields of a status callback: every field Twilio documents for an SMS one.
pub fn callback_params(
    account_sid: &str,
    sid: &str,
    status: &str,
    from: Option<&str>,
    to: &str,
    messaging_service_sid: Option<&str>,
) -> BTreeMap<String, String> {
    let mut params: BTreeMap<String, String> = [
        ("AccountSid", account_sid),
        ("ApiVersion", API_VERSION),
        ("MessageSid", sid),
        ("MessageStatus", status),
        ("SmsSid", sid),
        ("SmsStatus", status),
        ("To", to),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    if let Some(from) = from {
        params.insert("From".into(), from.to_owned());
    }
    if let Some(service) = messaging_service_sid {
        params.insert("MessagingServiceSid".into(), service.to_owned());
    }
    if matches!(status, "undelivered" | "failed") {
        params.insert("ErrorCode".into(), UNDELIVERED.0.to_string());
    }
    params
}

/// `X-Twilio-Signature`: base64 of HMAC-SHA1, keyed with the auth token, over the URL
/// followed by each POST parameter's name and value, sorted by name (Twilio's "Webhooks
/// security").
pub fn signature(auth_token: &str, url: &str, params: &BTreeMap<String, String>) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key");
    mac.update(url.as_bytes());
    for (name, value) in params {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_twilios_published_example() {
        // The example of Twilio's "Webhooks security" page and of twilio-python's tests:
        // auth token 12345, this URL and these parameters sign to RSOYDt4T…8B8=.
        let params: BTreeMap<String, String> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(signature("12345", url, &params), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
    }

    #[test]
    fn sids_dates_and_numbers_have_twilios_shapes() {
        assert!(is_message_sid(&message_sid(1)));
        assert!(!is_message_sid("SM00000001"));
        assert_eq!(rfc2822(0), "Tue, 14 Nov 2023 22:13:20 +0000");
        assert!(is_e164("+306912345678"));
        for bad in ["306912345678", "+0691234567", "+12", "+1 415 555", "+1234567890123456"] {
            assert!(!is_e164(bad), "{bad}");
        }
    }
}
