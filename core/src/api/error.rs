//! Typed JSON errors: `{"error":{"code":"…","message":"…"}}` with the right status.
//!
//! Every refusal of the API — a store error, a malformed body, a missing key, a forged
//! webhook — goes through [`ApiError`], so a client can always branch on `error.code`.

use crate::adapter::WebhookError;
use crate::store::StoreError;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An API refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable explanation saying what and where.
    pub message: String,
    /// The request field at fault, when one is.
    pub field: Option<String>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), field: None }
    }

    /// 401: no or a wrong key.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }

    /// 404: no such thing for this caller.
    pub fn not_found(what: &str, id: &str) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", format!("{what} {id} not found"))
    }

    /// 400 with the field at fault.
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "VALIDATION",
            message: format!("{field}: {message}"),
            field: Some(field),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let envelope =
            Envelope { error: Body { code: self.code, message: &self.message, field: self.field.as_deref() } };
        (self.status, axum::Json(envelope)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound { what, id } => ApiError::not_found(what, &id),
            StoreError::IllegalTransition(illegal) => {
                ApiError::new(StatusCode::CONFLICT, "ILLEGAL_TRANSITION", illegal.to_string())
            }
            StoreError::Conflict(message) => ApiError::new(StatusCode::CONFLICT, "CONFLICT", message),
            error @ StoreError::InsufficientCredits { .. } => {
                ApiError::new(StatusCode::PAYMENT_REQUIRED, "INSUFFICIENT_CREDITS", error.to_string())
            }
            error @ StoreError::IdempotencyMismatch { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED", error.to_string())
            }
            StoreError::Invalid { field, message } => ApiError::validation(field, message),
            StoreError::Template(error) => ApiError::validation("body_template", error.to_string()),
            StoreError::Transient(message) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", format!("try again: {message}"))
            }
            StoreError::Backend(message) => {
                tracing::error!(%message, "store backend failure");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "internal error; nothing was changed")
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                "expected a request body with content-type application/json",
            ),
            JsonRejection::JsonSyntaxError(error) => {
                ApiError::new(StatusCode::BAD_REQUEST, "INVALID_JSON", error.body_text())
            }
            JsonRejection::JsonDataError(error) => {
                ApiError::new(StatusCode::BAD_REQUEST, "INVALID_JSON", error.body_text())
            }
            JsonRejection::BytesRejection(error) => error.into(),
            other => ApiError::new(StatusCode::BAD_REQUEST, "INVALID_BODY", other.body_text()),
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", rejection.body_text())
        } else {
            // The body could not be read at all (the connection broke mid-body).
            ApiError::new(StatusCode::BAD_REQUEST, "INVALID_BODY", rejection.body_text())
        }
    }
}

impl From<WebhookError> for ApiError {
    fn from(error: WebhookError) -> Self {
        let (status, code) = match &error {
            WebhookError::MissingSignature | WebhookError::BadSignature => (StatusCode::UNAUTHORIZED, "BAD_SIGNATURE"),
            WebhookError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
            WebhookError::ContentType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE"),
            _ => (StatusCode::BAD_REQUEST, "INVALID_WEBHOOK"),
        };
        ApiError::new(status, code, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::status::IllegalTransition;
    use crate::money::Credits;

    fn status_and_code(error: StoreError) -> (StatusCode, &'static str) {
        let error = ApiError::from(error);
        (error.status, error.code)
    }

    #[test]
    fn every_store_error_has_its_status_and_code() {
        let invalid = StoreError::Invalid { field: "name".into(), message: "must not be empty".into() };
        let cases = [
            (StoreError::NotFound { what: "campaign", id: "cmp_1".into() }, StatusCode::NOT_FOUND, "NOT_FOUND"),
            (
                StoreError::IllegalTransition(IllegalTransition { kind: "campaign", from: "draft", to: "paused" }),
                StatusCode::CONFLICT,
                "ILLEGAL_TRANSITION",
            ),
            (StoreError::Conflict("busy".into()), StatusCode::CONFLICT, "CONFLICT"),
            (
                StoreError::InsufficientCredits { needed: Credits(10), available: Credits(5) },
                StatusCode::PAYMENT_REQUIRED,
                "INSUFFICIENT_CREDITS",
            ),
            (
                StoreError::IdempotencyMismatch { key: "k".into() },
                StatusCode::UNPROCESSABLE_ENTITY,
                "IDEMPOTENCY_KEY_REUSED",
            ),
            (invalid, StatusCode::BAD_REQUEST, "VALIDATION"),
            (StoreError::Transient("busy".into()), StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
            (StoreError::Backend("disk".into()), StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        ];
        for (error, status, code) in cases {
            assert_eq!(status_and_code(error.clone()), (status, code), "{error:?}");
        }
    }

    #[test]
    fn a_validation_error_names_its_field() {
        let error = ApiError::from(StoreError::Invalid { field: "name".into(), message: "must not be empty".into() });
        assert_eq!((error.field.as_deref(), error.message.as_str()), (Some("name"), "name: must not be empty"));
    }

    #[test]
    fn a_backend_failure_tells_the_client_nothing_of_the_internals() {
        let error = ApiError::from(StoreError::Backend("disk I/O error at /var/lib/smsim/db".into()));
        assert!(!error.message.contains("/var/lib"), "{}", error.message);
    }

    #[test]
    fn webhook_refusals_map_to_401_400_413_415() {
        let cases = [
            (WebhookError::MissingSignature, StatusCode::UNAUTHORIZED),
            (WebhookError::BadSignature, StatusCode::UNAUTHORIZED),
            (WebhookError::Malformed("x".into()), StatusCode::BAD_REQUEST),
            (WebhookError::TooLarge { size: 2, limit: 1 }, StatusCode::PAYLOAD_TOO_LARGE),
            (WebhookError::ContentType("text/plain".into()), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ];
        for (error, status) in cases {
            assert_eq!(ApiError::from(error.clone()).status, status, "{error:?}");
        }
    }
}
