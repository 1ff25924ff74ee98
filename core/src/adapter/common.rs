//! Helpers every adapter shares: secrets kept out of error details, HTTP failures and
//! transport errors mapped to outcomes, token-authenticated JSON webhooks, and a
//! comparison of secrets in constant time. They live here rather than in one provider's
//! file so that a new adapter takes them from the adapter module, not from a sibling.

use super::{
    HttpError, HttpResponse, ProviderFailure, SubmitOutcome, WebhookError, WebhookRequest, MAX_WEBHOOK_BODY_BYTES,
};
use crate::domain::retry::{classify_http_status, ErrorClass};

/// `outcome` with every secret in its detail replaced by `<redacted>`.
pub(crate) fn redact(outcome: SubmitOutcome, secrets: &[&str]) -> SubmitOutcome {
    let clean = |mut detail: String| {
        for secret in secrets.iter().filter(|secret| !secret.is_empty()) {
            detail = detail.replace(secret, "<redacted>");
        }
        detail
    };
    match outcome {
        SubmitOutcome::Failed(failure) => {
            SubmitOutcome::Failed(ProviderFailure { detail: clean(failure.detail), ..failure })
        }
        SubmitOutcome::Ambiguous { detail } => SubmitOutcome::Ambiguous { detail: clean(detail) },
        accepted => accepted,
    }
}

/// Whether a content type is JSON.
pub(crate) fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|value| {
        let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        essence == "application/json" || essence.ends_with("+json")
    })
}

/// The longest `Retry-After` honoured: a day. A provider's header is hostile input; a
/// larger value (or one whose milliseconds overflow a `u64`) is read as a day, so the
/// message is retried then rather than scheduled past what any store can keep.
pub const MAX_RETRY_AFTER_MS: u64 = 24 * 60 * 60 * 1_000;

/// A `Retry-After` header in seconds as milliseconds, capped at [`MAX_RETRY_AFTER_MS`].
/// (The HTTP-date form is not used by these providers and is ignored.)
pub fn retry_after_ms(value: &str) -> Option<u64> {
    let seconds = value.trim().parse::<u64>().ok()?;
    Some(seconds.checked_mul(1_000).map_or(MAX_RETRY_AFTER_MS, |ms| ms.min(MAX_RETRY_AFTER_MS)))
}

/// The failure every message of a refused request gets.
pub(crate) fn http_failure(response: &HttpResponse) -> ProviderFailure {
    let retry_after_ms = response.header("retry-after").and_then(retry_after_ms);
    let snippet: String = String::from_utf8_lossy(&response.body).chars().take(200).collect();
    ProviderFailure {
        code: format!("HTTP_{}", response.status),
        retryable: classify_http_status(response.status) == ErrorClass::Retryable,
        retry_after_ms,
        detail: format!("provider answered {}: {snippet}", response.status),
    }
}

/// The outcomes of `count` messages whose request failed in transport.
pub(crate) fn transport_outcomes(count: usize, error: &HttpError) -> Vec<SubmitOutcome> {
    if error.never_sent() {
        let failure = ProviderFailure {
            code: "NETWORK".into(),
            retryable: true,
            retry_after_ms: None,
            detail: error.to_string(),
        };
        vec![SubmitOutcome::Failed(failure); count]
    } else {
        vec![SubmitOutcome::Ambiguous { detail: error.to_string() }; count]
    }
}

/// The value of query parameter `name` in `url`.
pub(crate) fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or("");
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// Authenticates a webhook of a provider that does not sign (the URL carries the account's
/// token) and checks it is a JSON body within the size limit. Without a configured token
/// every webhook is refused.
pub(crate) fn check_token_json_webhook(request: &WebhookRequest, expected: Option<&str>) -> Result<(), WebhookError> {
    let expected = expected.ok_or(WebhookError::BadSignature)?;
    let given = query_param(&request.url, "token").ok_or(WebhookError::MissingSignature)?;
    if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
        return Err(WebhookError::BadSignature);
    }
    if request.body.len() > MAX_WEBHOOK_BODY_BYTES {
        return Err(WebhookError::TooLarge { size: request.body.len(), limit: MAX_WEBHOOK_BODY_BYTES });
    }
    let content_type = request.headers.get("content-type").map(String::as_str);
    if !is_json(content_type) {
        return Err(WebhookError::ContentType(content_type.unwrap_or("").to_owned()));
    }
    Ok(())
}

/// Compares two secrets in time independent of where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |difference, (x, y)| difference | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absurd_retry_after_is_capped_at_a_day_instead_of_overflowing() {
        assert_eq!(retry_after_ms("30"), Some(30_000));
        assert_eq!(retry_after_ms("18446744073709551615"), Some(MAX_RETRY_AFTER_MS));
        assert_eq!(retry_after_ms("18446744073709552"), Some(MAX_RETRY_AFTER_MS));
        assert_eq!((retry_after_ms("-1"), retry_after_ms("soon")), (None, None));
    }
}
