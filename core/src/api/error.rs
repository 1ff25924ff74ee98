//! Typed JSON errors: `{"error":{"code":"…","message":"…"}}` with the right status.
//!
//! Every refusal of the API — a store error, a malformed body, a missing key, a forged
//! webhook — goes through [`ApiError`], so a client can always branch on `error.code`.

use crate::adapter::WebhookError;
use crate::store::StoreError;
use axum::extract::rejection::JsonRejection;
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
            JsonRejection::BytesRejection(error) if error.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", error.body_text())
            }
            other => ApiError::new(StatusCode::BAD_REQUEST, "INVALID_BODY", other.body_text()),
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
