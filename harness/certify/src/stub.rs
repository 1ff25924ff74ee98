//! The provider the adapter under test talks to: a wiremock server on loopback that reads
//! every request through the profile and answers by a [`Plan`], plus a server that hangs
//! up after reading a request.

use super::profile::{Accepted, ProviderProfile, Verdict, WireMessage};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use smsim_core::adapter::{HttpRequest, HttpResponse};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// How the stub answers send requests.
#[derive(Clone, Debug, Default)]
pub enum Plan {
    /// Accept every message, listing them in request order.
    #[default]
    Accept,
    /// Accept every message, listing them in reverse order.
    AcceptReversed,
    /// Refuse the messages to these destinations with these codes; accept the rest.
    Reject(BTreeMap<String, String>),
    /// Accept every message but leave these destinations out of the answer.
    Omit(Vec<String>),
    /// Answer every send request with this.
    Raw(HttpResponse),
    /// Accept every message, then answer after this long (past the client's timeout).
    AcceptLate(Duration),
}

/// The provider id the stub gives the message to `destination`.
pub fn provider_id_for(destination: &str) -> String {
    format!("prov-{}", destination.trim_start_matches('+'))
}

/// What the stub saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Every send request the profile could read, with its messages.
    pub submits: Vec<Vec<WireMessage>>,
    /// Why the profile refused a send request.
    pub refused: Vec<String>,
    /// Every request, as received.
    pub requests: Vec<HttpRequest>,
    /// What the provider accepted, for lookups.
    pub accepted: Vec<Accepted>,
}

impl Seen {
    /// How many times each destination was submitted.
    pub fn submissions_per_destination(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for message in self.submits.iter().flatten() {
            *counts.entry(message.destination.clone()).or_default() += 1;
        }
        counts
    }
}

struct Responder {
    profile: Arc<dyn ProviderProfile>,
    plan: Arc<Mutex<Plan>>,
    seen: Arc<Mutex<Seen>>,
}

/// The profile's view of a wiremock request.
pub fn http_request(request: &Request) -> HttpRequest {
    HttpRequest {
        method: request.method.clone(),
        url: request.url.to_string(),
        headers: request
            .headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str().to_ascii_lowercase(), value.to_str().ok()?.to_owned())))
            .collect(),
        body: Bytes::from(request.body.clone()),
    }
}

fn template(response: &HttpResponse) -> ResponseTemplate {
    let mut template = ResponseTemplate::new(response.status);
    for (name, value) in &response.headers {
        template = template.insert_header(name.as_str(), value.as_str());
    }
    template.set_body_bytes(response.body.to_vec())
}

impl Respond for Responder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let http = http_request(request);
        let mut seen = self.seen.lock().expect("stub poisoned");
        seen.requests.push(http.clone());
        if !self.profile.is_submit(&http) {
            return match self.profile.lookup_answer(&http, &seen.accepted) {
                Some(answer) => template(&answer),
                None => ResponseTemplate::new(404),
            };
        }
        let messages = match self.profile.read_submit(&http) {
            Ok(messages) => messages,
            Err(reason) => {
                seen.refused.push(reason.clone());
                return ResponseTemplate::new(400).set_body_string(reason);
            }
        };
        seen.submits.push(messages.clone());
        let plan = self.plan.lock().expect("plan poisoned").clone();
        let accept = |index: usize| {
            let message = &messages[index];
            let provider_id =
                self.profile.provider_id(message.reference.as_deref(), provider_id_for(&message.destination));
            (index, Verdict::Accept { provider_id })
        };
        let (verdicts, delay): (Vec<(usize, Verdict)>, Option<Duration>) = match &plan {
            Plan::Raw(answer) => return template(answer),
            Plan::Accept => ((0..messages.len()).map(accept).collect(), None),
            Plan::AcceptReversed => ((0..messages.len()).rev().map(accept).collect(), None),
            Plan::AcceptLate(delay) => ((0..messages.len()).map(accept).collect(), Some(*delay)),
            Plan::Omit(left_out) => (
                (0..messages.len())
                    .filter(|index| !left_out.contains(&messages[*index].destination))
                    .map(accept)
                    .collect(),
                None,
            ),
            Plan::Reject(codes) => (
                (0..messages.len())
                    .map(|index| match codes.get(&messages[index].destination) {
                        Some(code) => (index, Verdict::Reject { code: code.clone() }),
                        None => accept(index),
                    })
                    .collect(),
                None,
            ),
        };
        for (index, verdict) in &verdicts {
            if let Verdict::Accept { provider_id } = verdict {
                seen.accepted.push(Accepted {
                    message: messages[*index].clone(),
                    provider_id: provider_id.clone(),
                    status: "queued".into(),
                });
            }
        }
        let answer = template(&self.profile.answer(&messages, &verdicts));
        match delay {
            Some(delay) => answer.set_delay(delay),
            None => answer,
        }
    }
}

/// A stubbed provider.
pub struct Stub {
    server: MockServer,
    plan: Arc<Mutex<Plan>>,
    seen: Arc<Mutex<Seen>>,
}

impl Stub {
    /// A provider on loopback speaking `profile`, answering by `plan`.
    pub async fn start(profile: Arc<dyn ProviderProfile>, plan: Plan) -> Stub {
        let server = MockServer::start().await;
        let plan = Arc::new(Mutex::new(plan));
        let seen = Arc::new(Mutex::new(Seen::default()));
        Mock::given(wiremock::matchers::any())
            .respond_with(Responder { profile, plan: plan.clone(), seen: seen.clone() })
            .mount(&server)
            .await;
        Stub { server, plan, seen }
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        self.server.uri()
    }

    /// Answers by `plan` from now on.
    pub fn set_plan(&self, plan: Plan) {
        *self.plan.lock().expect("plan poisoned") = plan;
    }

    /// What it saw.
    pub fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().expect("stub poisoned")
    }
}

/// A server that reads each request whole and closes the connection without answering:
/// the request reached the provider, the answer never came back.
pub struct HangUp {
    url: String,
    requests: Arc<Mutex<Vec<HttpRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HangUp {
    /// Listens on a loopback port.
    pub async fn start() -> std::io::Result<HangUp> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                        let log = log.clone();
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body.collect().await.map(|body| body.to_bytes()).unwrap_or_default();
                            log.lock().expect("log poisoned").push(HttpRequest {
                                method: parts.method,
                                url: parts.uri.to_string(),
                                headers: parts
                                    .headers
                                    .iter()
                                    .filter_map(|(name, value)| {
                                        Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
                                    })
                                    .collect(),
                                body,
                            });
                            // An error from the service makes hyper drop the connection.
                            Err::<hyper::Response<Full<Bytes>>, _>(std::io::Error::other("hang up"))
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
        });
        Ok(HangUp { url, requests, task })
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Every request it read.
    pub fn requests(&self) -> Vec<HttpRequest> {
        self.requests.lock().expect("log poisoned").clone()
    }
}

impl Drop for HangUp {
    fn drop(&mut self) {
        self.task.abort();
    }
}
