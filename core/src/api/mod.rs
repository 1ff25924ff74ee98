//! The HTTP API (axum): tenants' bearer keys, typed JSON errors, webhooks.
