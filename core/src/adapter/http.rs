//! The HTTP seam adapters send through.
//!
//! Adapters never open sockets. They are given an [`HttpClient`]; [`HyperClient`] wraps
//! hyper's client over any connector — tokio TCP for real use, a simulated network's
//! streams in the simulator. Errors say whether the request left: a connect failure is
//! safe to retry; a failure after the request was written is ambiguous.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::Connect;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::collections::BTreeMap;
use std::time::Duration;

/// An HTTP request, fully buffered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `POST`, …
    pub method: http::Method,
    /// Absolute URL.
    pub url: String,
    /// Headers (lower-case names).
    pub headers: BTreeMap<String, String>,
    /// Body.
    pub body: Bytes,
}

/// An HTTP response, fully buffered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers (lower-case names).
    pub headers: BTreeMap<String, String>,
    /// Body.
    pub body: Bytes,
}

impl HttpResponse {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

/// A transport failure.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The connection could not be made: the request never left.
    #[error("connect failed: {0}")]
    Connect(String),
    /// The request may have left; no complete answer came back.
    #[error("request failed after it was sent: {0}")]
    AfterSend(String),
    /// No answer within the timeout; the request may have left.
    #[error("timed out after {0} ms")]
    Timeout(u64),
    /// The request could not be built (bad URL); nothing was sent.
    #[error("bad request: {0}")]
    BadRequest(String),
}

impl HttpError {
    /// Whether the request certainly did not reach the server.
    pub fn never_sent(&self) -> bool {
        matches!(self, HttpError::Connect(_) | HttpError::BadRequest(_))
    }
}

/// Sends HTTP requests.
#[async_trait::async_trait]
pub trait HttpClient: Send + Sync {
    /// Sends `request` and reads the whole answer.
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError>;
}

/// hyper's client over connector `C`, with a per-request timeout from tokio's clock.
pub struct HyperClient<C> {
    client: Client<C, Full<Bytes>>,
    timeout: Duration,
}

impl<C: Connect + Clone + Send + Sync + 'static> HyperClient<C> {
    /// A client over `connector` whose requests time out after `timeout`.
    pub fn new(connector: C, timeout: Duration) -> Self {
        // hyper re-sends, by default, a request it believes never left a reused
        // connection. Whether a request reached the provider is exactly what the engine
        // decides for itself (a resend is an at-most-once question), so the client never
        // retries on its own.
        let client = Client::builder(TokioExecutor::new()).retry_canceled_requests(false).build(connector);
        HyperClient { client, timeout }
    }
}

impl HyperClient<hyper_util::client::legacy::connect::HttpConnector> {
    /// A client over plain TCP sockets.
    pub fn tcp(timeout: Duration) -> Self {
        HyperClient::new(hyper_util::client::legacy::connect::HttpConnector::new(), timeout)
    }
}

#[async_trait::async_trait]
impl<C: Connect + Clone + Send + Sync + 'static> HttpClient for HyperClient<C> {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let mut builder = http::Request::builder().method(request.method).uri(&request.url);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let built = builder.body(Full::new(request.body)).map_err(|error| HttpError::BadRequest(error.to_string()))?;
        let exchange = async {
            let response = self.client.request(built).await.map_err(|error| {
                if error.is_connect() {
                    HttpError::Connect(error.to_string())
                } else {
                    HttpError::AfterSend(error.to_string())
                }
            })?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
                .collect();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|error| HttpError::AfterSend(error.to_string()))?
                .to_bytes();
            Ok(HttpResponse { status, headers, body })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(HttpError::Timeout(self.timeout.as_millis() as u64)),
        }
    }
}
