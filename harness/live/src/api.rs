//! Calls the engine's HTTP API as the profile maps each action, over loopback, with a
//! timeout per request and a bound on retries: while the fault plan has the engine down,
//! the driver retries like a user would, then gives up.

use crate::profile::Request;
use crate::template::{fill, Values};
use crate::LiveError;
use serde_json::Value;
use smsim_core::adapter::http::HyperClient;
use smsim_core::adapter::{HttpClient, HttpRequest};
use std::collections::BTreeMap;
use std::time::Duration;

/// An answer: status and JSON (Null when the body is not JSON).
#[derive(Clone, Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body as JSON.
    pub json: Value,
    /// The body as text (the first bytes, for errors).
    pub text: String,
}

/// The engine's API at a base URL.
pub struct EngineApi {
    base_url: String,
    client: std::sync::Arc<dyn HttpClient>,
}

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

impl EngineApi {
    /// The API at `base_url` (`http://127.0.0.1:PORT`).
    pub fn new(base_url: String) -> EngineApi {
        EngineApi { base_url, client: std::sync::Arc::new(HyperClient::tcp(REQUEST_TIMEOUT)) }
    }

    /// Sends `request` (action `name`) once; `None` when no answer came.
    pub async fn call(&self, name: &str, request: &Request, values: &Values) -> Result<Option<Answer>, LiveError> {
        let place = |field: &str| format!("actions.{name}.{field}");
        let path = fill(&request.path, values, &place("path"), false)?;
        let mut headers = BTreeMap::from([("content-type".to_owned(), "application/json".to_owned())]);
        for (header, value) in &request.headers {
            headers.insert(header.to_lowercase(), fill(value, values, &place("headers"), false)?);
        }
        let body = match &request.body {
            Some(body) => fill(body, values, &place("body"), true)?,
            None => String::new(),
        };
        let method = http::Method::from_bytes(request.method.as_bytes()).map_err(|_| LiveError::Profile {
            path: "(profile)".into(),
            message: format!("{}: `{}` is not an HTTP method", place("method"), request.method),
        })?;
        let url = format!("{}{path}", self.base_url);
        let http = HttpRequest { method, url, headers, body: bytes::Bytes::from(body) };
        Ok(self.client.send(http).await.ok().map(|answer| {
            let text = String::from_utf8_lossy(&answer.body).chars().take(300).collect::<String>();
            let json = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
            Answer { status: answer.status, json, text }
        }))
    }

    /// Sends `request` until it is answered (retrying every 100 ms while the engine is down)
    /// for at most `bound`; `None` when it never was.
    pub async fn call_retrying(
        &self,
        name: &str,
        request: &Request,
        values: &Values,
        bound: Duration,
    ) -> Result<Option<Answer>, LiveError> {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            if let Some(answer) = self.call(name, request, values).await? {
                if answer.status < 500 {
                    return Ok(Some(answer));
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The URL a request of this API goes to, for error messages.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

/// Reads `request.capture`'s pointers out of a 2xx `answer`, as text; a missing pointer
/// (or a non-2xx answer) is garbage, named with the action and what was missing.
/// `optional` pointers read as absent instead.
pub fn captures(
    name: &str,
    request: &Request,
    answer: &Answer,
    optional: &[&str],
) -> Result<BTreeMap<String, String>, LiveError> {
    let garbage = |problem: String| LiveError::Garbage {
        action: name.to_owned(),
        method: request.method.clone(),
        url: request.path.clone(),
        problem,
        answer: answer.text.clone(),
    };
    if !(200..300).contains(&answer.status) {
        return Err(garbage(format!("HTTP {}", answer.status)));
    }
    let mut out = BTreeMap::new();
    for (capture, pointer) in &request.capture {
        match answer.json.pointer(pointer) {
            Some(Value::String(text)) => out.insert(capture.clone(), text.clone()),
            Some(value @ (Value::Number(_) | Value::Bool(_))) => out.insert(capture.clone(), value.to_string()),
            _ if optional.contains(&capture.as_str()) => None,
            _ => return Err(garbage(format!("no `{capture}` at JSON pointer `{pointer}`"))),
        };
    }
    Ok(out)
}
