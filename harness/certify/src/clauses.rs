//! The clauses: what an adapter must do, each played through a stubbed provider.
//!
//! A clause returns `Ok(())` or the evidence of its failure: what was sent, what the
//! provider answered, and what the adapter made of it.

use super::engine::{destination, Engine};
use super::profile::{Auth, ReportShape, WebhookTarget, WireReport};
use super::stub::{provider_id_for, HangUp, Plan, Stub};
use super::{probe_account, Body, Clause, Context};
use smsim_core::adapter::SignatureScheme;
use smsim_core::adapter::{
    HttpResponse, OutboundMessage, ParsedReport, SubmitOutcome, WebhookError, WebhookRequest, MAX_WEBHOOK_BODY_BYTES,
};
use smsim_core::domain::report::ReportStatus;
use smsim_core::domain::MessageStatus;
use smsim_core::store::Store;
use smsim_core::{CampaignId, ContactId, MessageId};
use std::collections::BTreeMap;

/// A clause's result: `Ok`, or the evidence of its failure.
pub type Verdict = Result<(), String>;

/// Every clause, in the order they run: its id, what it demands, when it does not apply
/// (`unless`), and its body. One table, so a clause cannot be listed without a body or
/// run without a statement.
pub const CLAUSES: &[Clause] = &[
    Clause::new(
        "submit.single",
        "one message accepted: the provider's id is mapped to it",
        Body::Async(|c| Box::pin(accepted_and_mapped(c, 1, Plan::Accept))),
    ),
    Clause::new(
        "submit.batch",
        "a full batch accepted: every provider id lands on its own message, bulk id kept",
        Body::Async(|c| Box::pin(accepted_and_mapped(c, c.full_batch(), Plan::Accept))),
    )
    .unless(one_message_per_request),
    Clause::new(
        "submit.reordered",
        "an answer listing messages out of order still maps every id to its own message",
        Body::Async(|c| Box::pin(accepted_and_mapped(c, c.full_batch(), Plan::AcceptReversed))),
    )
    .unless(answers_in_request_order),
    Clause::new(
        "submit.partial",
        "partial failure: exactly the refused messages fail, the others are accepted",
        Body::Async(|c| Box::pin(partial(c))),
    ),
    Clause::new(
        "submit.codes",
        "every documented per-message error code is classified retryable or permanent as documented",
        Body::Async(|c| Box::pin(codes(c))),
    ),
    Clause::new(
        "submit.missing",
        "a message the answer does not mention is ambiguous, never accepted or failed",
        Body::Async(|c| Box::pin(missing(c))),
    )
    .unless(one_message_per_request),
    Clause::new(
        "submit.throttled",
        "429 with Retry-After: a retryable failure that keeps the delay",
        Body::Async(|c| Box::pin(throttled(c))),
    ),
    Clause::new(
        "submit.server-error",
        "5xx: a retryable failure",
        Body::Async(|c| Box::pin(http_failures(c, &[500, 502, 503], true))),
    ),
    Clause::new(
        "submit.client-error",
        "4xx other than 429: a permanent failure, never retried",
        Body::Async(|c| Box::pin(http_failures(c, &[400, 401, 403, 404, 422], false))),
    ),
    Clause::new(
        "submit.refused",
        "a connection refused before the request left: a retryable failure, not ambiguous",
        Body::Async(|c| Box::pin(refused(c))),
    ),
    Clause::new(
        "submit.timeout",
        "an answer that does not arrive in time: ambiguous, and no silent resend",
        Body::Async(|c| Box::pin(timeout(c))),
    ),
    Clause::new(
        "submit.hang-up",
        "a connection dropped after the request was sent: ambiguous, and no silent resend",
        Body::Async(|c| Box::pin(hang_up(c))),
    ),
    Clause::new(
        "submit.malformed",
        "malformed JSON, wrong content type, empty or truncated body: ambiguous, never accepted or failed",
        Body::Async(|c| Box::pin(malformed(c))),
    ),
    Clause::new(
        "submit.oversized",
        "a batch above the declared maximum is split, never truncated: every message submitted once",
        Body::Async(|c| Box::pin(oversized(c))),
    ),
    Clause::new(
        "submit.request",
        "credentials are sent as the provider requires, and each message's own sender, destination and text",
        Body::Async(|c| Box::pin(request_shape(c))),
    ),
    Clause::new(
        "submit.multipart",
        "long and UCS-2 texts are sent whole, as one message each, never cut or split",
        Body::Async(|c| Box::pin(multipart(c))),
    ),
    Clause::new(
        "submit.secrets",
        "no credential appears in an outcome, a log line or Debug output, even when the provider echoes it",
        Body::Async(|c| Box::pin(secrets(c))),
    ),
    Clause::new(
        "webhook.statuses",
        "every documented status string maps onto the lattice as documented",
        Body::Async(|c| Box::pin(async move { statuses(c) })),
    ),
    Clause::new(
        "webhook.unknown-status",
        "an undocumented status string is reported as unrecognised, never guessed",
        Body::Async(|c| Box::pin(async move { unknown_status(c) })),
    ),
    Clause::new(
        "webhook.shapes",
        "every body shape the provider sends (one object, a batch) parses to the same reports",
        Body::Async(|c| Box::pin(async move { shapes(c) })),
    ),
    Clause::new(
        "webhook.auth",
        "an authentic webhook is accepted; a wrong or missing signature or token is refused",
        Body::Async(|c| Box::pin(async move { auth(c) })),
    ),
    Clause::new(
        "webhook.replayed",
        "a signature lifted from one callback does not authenticate another",
        Body::Async(|c| Box::pin(async move { replayed(c) })),
    )
    .unless(unsigned_webhooks),
    Clause::new(
        "webhook.malformed",
        "oversized, malformed and wrongly typed bodies are refused with a typed error",
        Body::Async(|c| Box::pin(async move { webhook_malformed(c) })),
    ),
    Clause::new(
        "webhook.duplicates",
        "through the engine: a duplicated report changes nothing the second time",
        Body::Async(|c| Box::pin(duplicates(c))),
    ),
    Clause::new(
        "webhook.late-intermediate",
        "through the engine: an intermediate report after a final one is ignored",
        Body::Async(|c| Box::pin(late_intermediate(c))),
    ),
    Clause::new(
        "webhook.early",
        "through the engine: a report for an id not yet known is parked, then applied",
        Body::Async(|c| Box::pin(early(c))),
    ),
    Clause::new(
        "lookup.resolves",
        "through the engine: a status lookup resolves an ambiguous submission to the provider's id",
        Body::Async(|c| Box::pin(lookup_resolves(c))),
    )
    .unless(no_status_lookup),
    Clause::new(
        "lookup.not-found",
        "a lookup of a message the provider never took says so",
        Body::Async(|c| Box::pin(lookup_not_found(c))),
    )
    .unless(no_status_lookup),
    Clause::new(
        "lookup.pages",
        "a lookup follows the provider's pages to the end: the message sought is on the last of several",
        Body::Async(|c| Box::pin(lookup_pages(c))),
    )
    .unless(no_status_lookup),
    Clause::new(
        "system.happy-path",
        "the simulator's happy path through this adapter keeps every invariant",
        Body::Simulator(super::system::happy_path),
    ),
    Clause::new(
        "system.faults",
        "a faulty sweep through this adapter (outages, timeouts, duplicates, crashes) keeps every invariant",
        Body::Simulator(super::system::faults),
    ),
];

/// The clause every run starts with: the adapter builds for an account with the
/// profile's credentials (without it no other clause can run).
pub const BUILD: Clause = Clause::new(
    "build",
    "the adapter builds for an account with the profile's credentials",
    Body::Async(|c| Box::pin(async move { c.adapter("http://127.0.0.1:9").map(|_| ()) })),
);

fn one_message_per_request(context: &Context) -> Option<String> {
    let max_batch = context.capabilities.max_batch;
    (max_batch < 2).then(|| format!("one message per request (max batch {max_batch})"))
}

fn answers_in_request_order(context: &Context) -> Option<String> {
    (context.capabilities.max_batch < 2 || !context.subject.profile.answers_in_any_order())
        .then(|| "the provider answers in request order".into())
}

fn unsigned_webhooks(context: &Context) -> Option<String> {
    (context.capabilities.signature == SignatureScheme::UrlToken)
        .then(|| "the provider does not sign webhooks; a token in the URL authenticates them".into())
}

fn no_status_lookup(context: &Context) -> Option<String> {
    (!context.capabilities.status_lookup).then(|| "the adapter declares no status lookup".into())
}

// --- submit ---------------------------------------------------------------------------------

/// `count` messages to distinct destinations.
fn batch(count: u32) -> Vec<OutboundMessage> {
    (0..count)
        .map(|n| OutboundMessage {
            id: MessageId::new(CampaignId(1), ContactId(u64::from(n) + 1)),
            destination: destination(n),
            sender: "SMSIM".into(),
            body: format!("certification message {n}"),
            status_callback_url: None,
        })
        .collect()
}

/// Submits `messages` to a stub answering by `plan`; the outcomes and the stub.
async fn submit_to(
    context: &Context,
    plan: Plan,
    messages: &[OutboundMessage],
) -> Result<(Vec<SubmitOutcome>, Stub), String> {
    let stub = Stub::start(context.subject.profile.clone(), plan).await;
    let adapter = context.adapter(&stub.url())?;
    let outcomes = adapter.submit(messages).await;
    if outcomes.len() != messages.len() {
        return Err(format!("{} messages submitted, {} outcomes returned", messages.len(), outcomes.len()));
    }
    Ok((outcomes, stub))
}

/// The id the stub's provider gives `message`.
fn expected_id(context: &Context, message: &OutboundMessage) -> String {
    let reference = message.id.to_string();
    context.subject.profile.provider_id(Some(&reference), provider_id_for(&message.destination))
}

fn show(outcome: &SubmitOutcome) -> String {
    serde_json::to_string(outcome).unwrap_or_else(|_| format!("{outcome:?}"))
}

async fn accepted_and_mapped(context: &Context, count: u32, plan: Plan) -> Verdict {
    let messages = batch(count);
    let (outcomes, stub) = submit_to(context, plan, &messages).await?;
    if let Some(reason) = stub.seen().refused.first() {
        return Err(format!("the provider refused the request: {reason}"));
    }
    for (message, outcome) in messages.iter().zip(&outcomes) {
        let expected = expected_id(context, message);
        match outcome {
            SubmitOutcome::Accepted { provider_message_id, bulk_id } => {
                if *provider_message_id != expected {
                    return Err(format!(
                        "message to {} got provider id `{provider_message_id}`; the provider gave it `{expected}`",
                        message.destination
                    ));
                }
                if context.subject.profile.bulk_ids() && bulk_id.is_none() {
                    return Err(format!("message to {} lost the answer's bulk id", message.destination));
                }
            }
            other => {
                return Err(format!(
                    "message to {} accepted by the provider, outcome {}",
                    message.destination,
                    show(other)
                ))
            }
        }
    }
    Ok(())
}

async fn partial(context: &Context) -> Verdict {
    let messages = batch(context.full_batch().clamp(4, 12));
    let code = permanent_code(context)?;
    let refused: BTreeMap<String, String> =
        messages.iter().skip(1).step_by(2).map(|message| (message.destination.clone(), code.clone())).collect();
    let (outcomes, _stub) = submit_to(context, Plan::Reject(refused.clone()), &messages).await?;
    for (message, outcome) in messages.iter().zip(&outcomes) {
        let ok = match (refused.contains_key(&message.destination), outcome) {
            (true, SubmitOutcome::Failed(failure)) => failure.code == code && !failure.retryable,
            (false, SubmitOutcome::Accepted { provider_message_id, .. }) => {
                *provider_message_id == expected_id(context, message)
            }
            _ => false,
        };
        if !ok {
            let expected = if refused.contains_key(&message.destination) {
                format!("failed with `{code}`, permanent")
            } else {
                format!("accepted as `{}`", expected_id(context, message))
            };
            return Err(format!("message to {}: expected {expected}, outcome {}", message.destination, show(outcome)));
        }
    }
    Ok(())
}

fn permanent_code(context: &Context) -> Result<String, String> {
    context
        .subject
        .profile
        .documented_codes()
        .into_iter()
        .find(|code| !code.retryable)
        .map(|code| code.code)
        .ok_or_else(|| "the profile documents no permanent error code".into())
}

async fn codes(context: &Context) -> Verdict {
    let documented = context.subject.profile.documented_codes();
    if documented.is_empty() {
        return Err("the profile documents no error codes".into());
    }
    let mut wrong = Vec::new();
    for code in documented {
        let messages = batch(1);
        let plan = Plan::Reject(BTreeMap::from([(messages[0].destination.clone(), code.code.clone())]));
        let (outcomes, _stub) = submit_to(context, plan, &messages).await?;
        match &outcomes[0] {
            SubmitOutcome::Failed(failure) if failure.code == code.code && failure.retryable == code.retryable => {}
            other => wrong.push(format!(
                "`{}` is documented {}, outcome {}",
                code.code,
                if code.retryable { "retryable" } else { "permanent" },
                show(other)
            )),
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
}

async fn missing(context: &Context) -> Verdict {
    let messages = batch(context.full_batch().clamp(3, 12));
    let left_out = messages[1].destination.clone();
    let (outcomes, _stub) = submit_to(context, Plan::Omit(vec![left_out.clone()]), &messages).await?;
    match &outcomes[1] {
        SubmitOutcome::Ambiguous { .. } => Ok(()),
        other => Err(format!("the answer left out the message to {left_out}; its outcome is {}", show(other))),
    }
}

async fn throttled(context: &Context) -> Verdict {
    let answer = HttpResponse {
        status: 429,
        headers: BTreeMap::from([("retry-after".to_owned(), "7".to_owned())]),
        body: "Too Many Requests".into(),
    };
    let messages = batch(2);
    let (outcomes, _stub) = submit_to(context, Plan::Raw(answer), &messages).await?;
    for outcome in &outcomes {
        match outcome {
            SubmitOutcome::Failed(failure) if failure.retryable && failure.retry_after_ms == Some(7_000) => {}
            other => return Err(format!("429 with `Retry-After: 7`: outcome {}", show(other))),
        }
    }
    Ok(())
}

async fn http_failures(context: &Context, statuses: &[u16], retryable: bool) -> Verdict {
    for &status in statuses {
        let answer = HttpResponse {
            status,
            headers: BTreeMap::from([("content-type".to_owned(), "text/plain".to_owned())]),
            body: format!("status {status}").into(),
        };
        let messages = batch(2);
        let (outcomes, stub) = submit_to(context, Plan::Raw(answer), &messages).await?;
        for outcome in &outcomes {
            match outcome {
                SubmitOutcome::Failed(failure) if failure.retryable == retryable => {}
                other => {
                    return Err(format!(
                        "HTTP {status} should be a {} failure; outcome {}",
                        if retryable { "retryable" } else { "permanent" },
                        show(other)
                    ))
                }
            }
        }
        let sent = stub.seen().submits.len();
        let expected = messages.len().div_ceil(context.capabilities.max_batch.max(1) as usize);
        if sent > expected {
            return Err(format!(
                "HTTP {status}: the adapter sent {sent} requests for {expected}; it retried by itself"
            ));
        }
    }
    Ok(())
}

async fn refused(context: &Context) -> Verdict {
    // A port that was just free: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|error| error.to_string())?;
    let url = format!("http://{}", listener.local_addr().map_err(|error| error.to_string())?);
    drop(listener);
    let adapter = context.adapter(&url)?;
    for outcome in adapter.submit(&batch(2)).await {
        match outcome {
            SubmitOutcome::Failed(failure) if failure.retryable => {}
            other => return Err(format!("connection refused: outcome {}", show(&other))),
        }
    }
    Ok(())
}

/// Checks that every outcome is ambiguous and that the provider saw each message once, or
/// (for adapters declaring idempotency keys) every time under one key.
fn ambiguous_and_not_resent(
    what: &str,
    context: &Context,
    outcomes: &[SubmitOutcome],
    submits: &[Vec<super::profile::WireMessage>],
) -> Verdict {
    if let Some(other) = outcomes.iter().find(|outcome| !matches!(outcome, SubmitOutcome::Ambiguous { .. })) {
        return Err(format!("{what}: the provider may have the messages, but the outcome is {}", show(other)));
    }
    let mut per_destination: BTreeMap<&str, Vec<Option<&str>>> = BTreeMap::new();
    for message in submits.iter().flatten() {
        per_destination.entry(&message.destination).or_default().push(message.idempotency_key.as_deref());
    }
    for (destination, keys) in per_destination {
        if keys.len() < 2 {
            continue;
        }
        if !context.capabilities.idempotency_keys {
            return Err(format!(
                "{what}: the message to {destination} was sent {} times without an idempotency key",
                keys.len()
            ));
        }
        if keys[0].is_none() || keys.iter().any(|key| *key != keys[0]) {
            return Err(format!("{what}: the message to {destination} was resent under keys {keys:?}"));
        }
    }
    Ok(())
}

async fn timeout(context: &Context) -> Verdict {
    let messages = batch(2);
    let late = context.options.client_timeout * 4;
    let (outcomes, stub) = submit_to(context, Plan::AcceptLate(late), &messages).await?;
    let submits = stub.seen().submits.clone();
    ambiguous_and_not_resent("answer later than the timeout", context, &outcomes, &submits)
}

async fn hang_up(context: &Context) -> Verdict {
    let server = HangUp::start().await.map_err(|error| error.to_string())?;
    let adapter = context.adapter(&server.url())?;
    let messages = batch(2);
    let outcomes = adapter.submit(&messages).await;
    let profile = &context.subject.profile;
    let submits: Vec<_> = server.requests().iter().filter_map(|request| profile.read_submit(request).ok()).collect();
    if submits.is_empty() {
        return Err("no send request the provider could read reached it".into());
    }
    ambiguous_and_not_resent("connection dropped after the request", context, &outcomes, &submits)
}

async fn malformed(context: &Context) -> Verdict {
    // A real answer to cut and relabel.
    let messages = batch(2.min(context.capabilities.max_batch.max(1)));
    let good = {
        let wire: Vec<_> = (0..messages.len())
            .map(|index| super::profile::WireMessage {
                destination: messages[index].destination.clone(),
                sender: Some(messages[index].sender.clone()),
                body: messages[index].body.clone(),
                reference: Some(messages[index].id.to_string()),
                callback: None,
                idempotency_key: None,
            })
            .collect();
        let verdicts: Vec<_> = (0..wire.len())
            .map(|index| {
                let provider_id = expected_id(context, &messages[index]);
                (index, super::profile::Verdict::Accept { provider_id })
            })
            .collect();
        context.subject.profile.answer(&wire, &verdicts)
    };
    let json = BTreeMap::from([("content-type".to_owned(), "application/json".to_owned())]);
    let cases = [
        (
            "malformed JSON",
            HttpResponse { status: good.status, headers: json.clone(), body: "{\"messages\": [,]".into() },
        ),
        (
            "wrong content type",
            HttpResponse {
                status: good.status,
                headers: BTreeMap::from([("content-type".to_owned(), "text/html".to_owned())]),
                body: "<html>ok</html>".into(),
            },
        ),
        ("empty body", HttpResponse { status: good.status, headers: json.clone(), body: Default::default() }),
        (
            "truncated body",
            HttpResponse {
                status: good.status,
                headers: good.headers.clone(),
                body: good.body.slice(..good.body.len() / 2),
            },
        ),
    ];
    for (case, answer) in cases {
        let (outcomes, _stub) = submit_to(context, Plan::Raw(answer), &messages).await?;
        if let Some(other) = outcomes.iter().find(|outcome| !matches!(outcome, SubmitOutcome::Ambiguous { .. })) {
            return Err(format!("{case} in a {} answer: outcome {}", good.status, show(other)));
        }
    }
    Ok(())
}

async fn oversized(context: &Context) -> Verdict {
    let max = context.capabilities.max_batch.max(1);
    let messages = batch(max + 1);
    let (outcomes, stub) = submit_to(context, Plan::Accept, &messages).await?;
    let seen = stub.seen();
    if let Some(largest) = seen.submits.iter().map(Vec::len).max().filter(|largest| *largest > max as usize) {
        return Err(format!("a request carried {largest} messages; the declared maximum is {max}"));
    }
    let counts = seen.submissions_per_destination();
    for (message, outcome) in messages.iter().zip(&outcomes) {
        let submitted = counts.get(&message.destination).copied().unwrap_or(0);
        if submitted != 1 {
            return Err(format!("the message to {} was submitted {submitted} times", message.destination));
        }
        if !matches!(outcome, SubmitOutcome::Accepted { .. }) {
            return Err(format!("the message to {} was accepted; outcome {}", message.destination, show(outcome)));
        }
    }
    Ok(())
}

async fn request_shape(context: &Context) -> Verdict {
    let messages = batch(context.full_batch().min(3));
    let (_outcomes, stub) = submit_to(context, Plan::Accept, &messages).await?;
    let seen = stub.seen();
    if let Some(reason) = seen.refused.first() {
        return Err(format!("the provider refused the request: {reason}"));
    }
    let sent: Vec<_> = seen.submits.iter().flatten().collect();
    if sent.len() != messages.len() {
        return Err(format!("{} messages submitted, the provider read {}", messages.len(), sent.len()));
    }
    for (message, wire) in messages.iter().zip(sent) {
        if wire.destination != message.destination || wire.body != message.body {
            return Err(format!(
                "sent to {} with text {:?}; the provider read {} with text {:?}",
                message.destination, message.body, wire.destination, wire.body
            ));
        }
        match &wire.sender {
            Some(sender) if *sender == message.sender => {}
            Some(sender) => return Err(format!("sender {:?} sent as {sender:?}", message.sender)),
            None => {
                return Err(format!(
                    "sender {:?} not sent: the provider would send from the account's default",
                    message.sender
                ))
            }
        }
    }
    Ok(())
}

async fn multipart(context: &Context) -> Verdict {
    let mut messages = batch(2);
    // Four GSM-7 segments, and three UCS-2 segments with a character outside the BMP.
    messages[0].body = "Long message. ".repeat(40);
    messages[1].body = format!("Γειά σου Μαρία 👋 {}", "ελληνικά ".repeat(20));
    let (outcomes, stub) = submit_to(context, Plan::Accept, &messages).await?;
    let seen = stub.seen();
    let read: Vec<_> = seen.submits.iter().flatten().collect();
    for (message, outcome) in messages.iter().zip(&outcomes) {
        let copies: Vec<_> = read.iter().filter(|wire| wire.destination == message.destination).collect();
        match copies.as_slice() {
            [one] if one.body == message.body => {}
            [one] => {
                return Err(format!(
                    "a {}-character text reached the provider as {} characters",
                    message.body.chars().count(),
                    one.body.chars().count()
                ))
            }
            many => {
                return Err(format!("one long text reached the provider as {} messages", many.len()));
            }
        }
        if !matches!(outcome, SubmitOutcome::Accepted { .. }) {
            return Err(format!("a long text the provider took: outcome {}", show(outcome)));
        }
    }
    Ok(())
}

async fn secrets(context: &Context) -> Verdict {
    let secrets = context.subject.profile.secrets();
    let echo = |status: u16, content_type: &str| {
        let mut body = String::from("the provider echoes your request: ");
        for secret in &secrets {
            body.push_str(secret);
            body.push(' ');
        }
        HttpResponse {
            status,
            headers: BTreeMap::from([("content-type".to_owned(), content_type.to_owned())]),
            body: body.into(),
        }
    };
    let mut texts = Vec::new();
    let logs = super::capture_logs(async {
        for answer in
            [echo(401, "text/plain"), echo(500, "text/plain"), echo(200, "text/plain"), echo(200, "application/json")]
        {
            let (outcomes, _stub) = submit_to(context, Plan::Raw(answer), &batch(1)).await?;
            texts.extend(outcomes.iter().map(show));
        }
        let adapter = context.adapter("http://127.0.0.1:9")?;
        texts.push(format!("{adapter:?}"));
        Ok::<(), String>(())
    })
    .await;
    let (result, logs) = logs;
    result?;
    texts.push(logs);
    for secret in secrets.iter().filter(|secret| !secret.is_empty()) {
        if let Some(text) = texts.iter().find(|text| text.contains(secret.as_str())) {
            let shown: String = secret.chars().take(4).collect();
            return Err(format!("the secret `{shown}…` appears in: {}", text.chars().take(300).collect::<String>()));
        }
    }
    Ok(())
}

// --- webhooks -------------------------------------------------------------------------------

fn report(provider_message_id: &str, status: &str) -> WireReport {
    WireReport {
        provider_message_id: provider_message_id.into(),
        reference: Some(MessageId::new(CampaignId(1), ContactId(1)).to_string()),
        status: status.into(),
        error_code: None,
    }
}

fn target() -> WebhookTarget {
    let account_url = format!("{}/v1/webhooks/certify/ta1", super::engine::ENGINE_URL);
    WebhookTarget { callback: Some(format!("{account_url}?message_id=msg_1_1")), account_url }
}

fn parse(context: &Context, request: &WebhookRequest) -> Result<Result<Vec<ParsedReport>, WebhookError>, String> {
    let adapter = context.adapter("http://127.0.0.1:9")?;
    Ok(adapter.parse_webhook(request))
}

fn statuses(context: &Context) -> Verdict {
    let profile = &context.subject.profile;
    let documented = profile.documented_statuses();
    if documented.is_empty() {
        return Err("the profile documents no status strings".into());
    }
    for (raw, expected) in documented {
        let request = profile.webhook(&target(), &[report("prov-1", &raw)], ReportShape::Single, Auth::Valid);
        match parse(context, &request)? {
            Ok(reports) if reports.len() == 1 && reports[0].status == expected => {}
            other => return Err(format!("status `{raw}` is documented as {expected:?}; parsed {other:?}")),
        }
    }
    Ok(())
}

fn unknown_status(context: &Context) -> Verdict {
    let raw = "TELEPORTED_TO_MARS";
    let request =
        context.subject.profile.webhook(&target(), &[report("prov-1", raw)], ReportShape::Single, Auth::Valid);
    match parse(context, &request)? {
        Ok(reports) if reports.len() == 1 && reports[0].status == ReportStatus::Unrecognized(raw.into()) => Ok(()),
        other => Err(format!("undocumented status `{raw}` parsed as {other:?}")),
    }
}

fn shapes(context: &Context) -> Verdict {
    let profile = &context.subject.profile;
    let (delivered, _) = status_of(context, ReportStatus::Delivered)?;
    let reports: Vec<WireReport> = (0..3).map(|n| report(&format!("prov-{n}"), &delivered)).collect();
    let expected: Vec<(String, ReportStatus)> =
        reports.iter().map(|report| (report.provider_message_id.clone(), ReportStatus::Delivered)).collect();
    for shape in profile.report_shapes() {
        let parsed: Vec<(String, ReportStatus)> = match shape {
            ReportShape::Single => {
                let mut parsed = Vec::new();
                for one in &reports {
                    let request = profile.webhook(&target(), std::slice::from_ref(one), shape, Auth::Valid);
                    match parse(context, &request)? {
                        Ok(reports) => parsed.extend(reports.into_iter().map(|r| (r.provider_message_id, r.status))),
                        Err(error) => return Err(format!("a single-report body was refused: {error}")),
                    }
                }
                parsed
            }
            ReportShape::Batch => {
                let request = profile.webhook(&target(), &reports, shape, Auth::Valid);
                match parse(context, &request)? {
                    Ok(reports) => reports.into_iter().map(|r| (r.provider_message_id, r.status)).collect(),
                    Err(error) => return Err(format!("a batch body was refused: {error}")),
                }
            }
        };
        if parsed != expected {
            return Err(format!("{shape:?} bodies parsed to {parsed:?}, expected {expected:?}"));
        }
    }
    Ok(())
}

/// The first documented status string that maps to `status`.
fn status_of(context: &Context, status: ReportStatus) -> Result<(String, ReportStatus), String> {
    context
        .subject
        .profile
        .documented_statuses()
        .into_iter()
        .find(|(_, mapped)| *mapped == status)
        .ok_or_else(|| format!("the profile documents no status that means {status:?}"))
}

fn auth(context: &Context) -> Verdict {
    let profile = &context.subject.profile;
    let (delivered, _) = status_of(context, ReportStatus::Delivered)?;
    let reports = [report("prov-1", &delivered)];
    match parse(context, &profile.webhook(&target(), &reports, ReportShape::Single, Auth::Valid))? {
        Ok(_) => {}
        Err(error) => return Err(format!("an authentic webhook was refused: {error}")),
    }
    match parse(context, &profile.webhook(&target(), &reports, ReportShape::Single, Auth::Invalid))? {
        Err(WebhookError::BadSignature) => {}
        other => return Err(format!("a webhook with a wrong signature or token: {other:?}, expected BadSignature")),
    }
    match parse(context, &profile.webhook(&target(), &reports, ReportShape::Single, Auth::Missing))? {
        Err(WebhookError::MissingSignature | WebhookError::BadSignature) => Ok(()),
        other => Err(format!("a webhook without a signature or token: {other:?}, expected MissingSignature")),
    }
}

fn replayed(context: &Context) -> Verdict {
    let profile = &context.subject.profile;
    let (delivered, _) = status_of(context, ReportStatus::Delivered)?;
    let (failed, _) =
        status_of(context, ReportStatus::Undelivered).or_else(|_| status_of(context, ReportStatus::Rejected))?;
    let genuine = profile.webhook(&target(), &[report("prov-1", &delivered)], ReportShape::Single, Auth::Valid);
    let other = profile.webhook(&target(), &[report("prov-1", &failed)], ReportShape::Single, Auth::Valid);
    // The other callback's body under the genuine one's URL and signature.
    let forged = WebhookRequest { body: other.body, ..genuine };
    match parse(context, &forged)? {
        Err(WebhookError::BadSignature) => Ok(()),
        other => Err(format!("a signature lifted onto another body: {other:?}, expected BadSignature")),
    }
}

fn webhook_malformed(context: &Context) -> Verdict {
    let profile = &context.subject.profile;
    let (delivered, _) = status_of(context, ReportStatus::Delivered)?;
    let genuine = profile.webhook(&target(), &[report("prov-1", &delivered)], ReportShape::Single, Auth::Valid);
    let mut oversized = genuine.clone();
    oversized.body = vec![b' '; MAX_WEBHOOK_BODY_BYTES + 1];
    match parse(context, &oversized)? {
        Err(WebhookError::TooLarge { .. } | WebhookError::BadSignature) => {}
        other => return Err(format!("a body of {} bytes: {other:?}, expected TooLarge", oversized.body.len())),
    }
    let mut typed = genuine.clone();
    typed.headers.insert("content-type".into(), "text/plain".into());
    match parse(context, &typed)? {
        Err(WebhookError::ContentType(_)) => {}
        other => return Err(format!("a text/plain body: {other:?}, expected ContentType")),
    }
    // Half of a genuine body: for signed providers the signature no longer matches, which
    // is a refusal too; for the rest it must be a parse error.
    let mut cut = genuine.clone();
    cut.body.truncate(cut.body.len() / 2);
    cut.body.extend_from_slice(b"\x00{[");
    match parse(context, &cut)? {
        Err(WebhookError::Malformed(_) | WebhookError::BadSignature) => Ok(()),
        other => Err(format!("a truncated body: {other:?}, expected Malformed")),
    }
}

async fn engine(context: &Context, contacts: u32, plan: Plan) -> Result<Engine, String> {
    Engine::start(&context.subject, contacts, plan, context.options.client_timeout).await
}

fn report_for(engine: &Engine, n: u32, status: &str) -> WireReport {
    let message = engine.message(n);
    WireReport {
        provider_message_id: message
            .provider_message_id
            .clone()
            .unwrap_or_else(|| provider_id_for(&message.destination)),
        reference: Some(message.id.to_string()),
        status: status.into(),
        error_code: None,
    }
}

async fn post_report(context: &Context, engine: &Engine, n: u32, status: &str) -> Result<serde_json::Value, String> {
    let request = context.subject.profile.webhook(
        &engine.target(n),
        &[report_for(engine, n, status)],
        ReportShape::Single,
        Auth::Valid,
    );
    match engine.post(&request).await {
        (200, summary) => Ok(summary),
        (status, answer) => Err(format!("the engine answered {status} to an authentic webhook: {answer}")),
    }
}

async fn duplicates(context: &Context) -> Verdict {
    let engine = engine(context, 2, Plan::Accept).await?;
    engine.send().await?;
    let (delivered, _) = status_of(context, ReportStatus::Delivered)?;
    post_report(context, &engine, 0, &delivered).await?;
    let before = engine.store.recount(engine.message(0).id.campaign).map_err(|error| error.to_string())?;
    let second = post_report(context, &engine, 0, &delivered).await?;
    let after = engine.store.recount(engine.message(0).id.campaign).map_err(|error| error.to_string())?;
    if engine.message(0).status != MessageStatus::Delivered {
        return Err(format!("after a delivered report twice the message is {}", engine.message(0).status));
    }
    if before != after || second["applied"] != 0 {
        return Err(format!("the duplicate changed the campaign: {before:?} → {after:?}; the engine said {second}"));
    }
    engine.counters_agree()
}

async fn late_intermediate(context: &Context) -> Verdict {
    let engine = engine(context, 1, Plan::Accept).await?;
    engine.send().await?;
    let (delivered, _) = status_of(context, ReportStatus::Delivered)?;
    let (intermediate, _) = status_of(context, ReportStatus::Accepted)?;
    post_report(context, &engine, 0, &delivered).await?;
    post_report(context, &engine, 0, &intermediate).await?;
    match engine.message(0).status {
        MessageStatus::Delivered => engine.counters_agree(),
        other => Err(format!("`{delivered}` then `{intermediate}` left the message {other}")),
    }
}

async fn early(context: &Context) -> Verdict {
    let engine = engine(context, 1, Plan::Accept).await?;
    let (delivered, _) = status_of(context, ReportStatus::Delivered)?;
    // The stub's ids are known in advance, so the report can beat the send answer.
    let reference = engine.message(0).id.to_string();
    let early = WireReport {
        provider_message_id: context.subject.profile.provider_id(Some(&reference), provider_id_for(&destination(0))),
        reference: Some(reference),
        status: delivered.clone(),
        error_code: None,
    };
    let target = WebhookTarget { account_url: engine.account_url(), callback: None };
    let request = context.subject.profile.webhook(&target, &[early], ReportShape::Single, Auth::Valid);
    match engine.post(&request).await {
        (200, _) => {}
        (status, answer) => return Err(format!("an early report was answered {status}: {answer}")),
    }
    if engine.message(0).status.is_terminal() {
        return Err(format!("a report for a message not yet submitted made it {}", engine.message(0).status));
    }
    engine.send().await?;
    match engine.message(0).status {
        MessageStatus::Delivered => engine.counters_agree(),
        other => {
            Err(format!("the parked `{delivered}` report was not applied once the submission was recorded: {other}"))
        }
    }
}

async fn lookup_resolves(context: &Context) -> Verdict {
    let late = context.options.client_timeout * 4;
    let engine = engine(context, 1, Plan::AcceptLate(late)).await?;
    engine.send().await?;
    let status = engine.message(0).status;
    if status != MessageStatus::Unknown {
        return Err(format!("an answer later than the timeout left the message {status}, expected unknown"));
    }
    engine.stub.set_plan(Plan::Accept);
    let resolved = engine.maintain().await?;
    let message = engine.message(0);
    let reference = message.id.to_string();
    let expected = context.subject.profile.provider_id(Some(&reference), provider_id_for(&message.destination));
    if resolved != 1 || message.provider_message_id.as_deref() != Some(expected.as_str()) {
        return Err(format!(
            "after a lookup the message is {} with provider id {:?}; the provider holds it as `{expected}`",
            message.status, message.provider_message_id
        ));
    }
    engine.counters_agree()
}

async fn lookup_not_found(context: &Context) -> Verdict {
    let stub = Stub::start(context.subject.profile.clone(), Plan::Accept).await;
    let adapter = context.adapter(&stub.url())?;
    match adapter.lookup(&batch(1)[0]).await {
        smsim_core::adapter::LookupOutcome::NotFound => Ok(()),
        other => Err(format!("a message the provider never took: lookup said {other:?}")),
    }
}

async fn lookup_pages(context: &Context) -> Verdict {
    // Three messages to one destination, the one sought sent first: listed newest first,
    // one to a page (the stub's cap), it is on the third page.
    let messages: Vec<OutboundMessage> = (0..3u64)
        .map(|n| OutboundMessage {
            id: MessageId::new(CampaignId(1), ContactId(n + 1)),
            destination: destination(0),
            sender: "SMSIM".into(),
            body: format!("paged message {n}"),
            status_callback_url: None,
        })
        .collect();
    let stub = Stub::start(context.subject.profile.clone(), Plan::Accept).await;
    let adapter = context.adapter(&stub.url())?;
    let mut ids = Vec::new();
    for message in &messages {
        match adapter.submit(std::slice::from_ref(message)).await.pop() {
            Some(SubmitOutcome::Accepted { provider_message_id, .. }) => ids.push(provider_message_id),
            other => return Err(format!("the stub accepts every message; the adapter said {other:?}")),
        }
    }
    match adapter.lookup(&messages[0]).await {
        smsim_core::adapter::LookupOutcome::Accepted { provider_message_id, .. } if provider_message_id == ids[0] => {
            Ok(())
        }
        other => Err(format!("the message sought was on the last page as {}; lookup said {other:?}", ids[0])),
    }
}

/// The account the kit builds adapters for, on `base_url`.
pub fn account(context: &Context, base_url: &str) -> smsim_core::domain::TrafficAccount {
    probe_account(context.subject.profile.as_ref(), base_url)
}
