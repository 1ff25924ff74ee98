//! Every webhook parser (Mitto, Twilio, Infobip) with bodies grown from valid ones by
//! byte mutations, signed, unsigned and forged. A forged or unsigned webhook must never
//! be applied; a signed one is applied or refused with a typed error.

use super::fixture::{
    cases, percent_encode, runner, runtime, Backend, CaseCount, RawRequest, World, PUBLIC_URL, TWILIO_AUTH_TOKEN,
    WEBHOOK_TOKEN,
};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::json;
use smsim_core::adapter::twilio::twilio_signature;
use std::collections::BTreeMap;

/// The provider a case speaks as.
#[derive(Clone, Copy, Debug)]
enum Provider {
    Mitto,
    Twilio,
    Infobip,
}

/// How a case authenticates.
#[derive(Clone, Debug)]
enum Signing {
    /// The right token, or a signature over exactly what is sent.
    Signed,
    /// No token, no signature header.
    Unsigned,
    /// A wrong token, or a signature made for another URL or body.
    Forged(String),
}

/// One edit of a body's bytes.
#[derive(Clone, Debug)]
enum Edit {
    Flip(Index, u8),
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    Duplicate(Index, usize),
    Splice(Index, &'static str),
}

/// Fragments that break JSON and form parsers, or the numbers they read.
const FRAGMENTS: &[&str] = &[
    "\"",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "null",
    "true",
    "18446744073709551616",
    "-1",
    "1e999",
    "\\u0000",
    "\\ud800",
    "&",
    "=",
    "%",
    "%ZZ",
    "%00",
    "+",
    "msg_18446744073709551615_1",
    "msg_9223372036854775808_0",
    "{\"messageId\":\"p-x\",\"deliveryStatus\":\"Delivered\"}",
    "MessageSid=SM2&MessageStatus=failed",
];

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Edit::Flip(at, byte)),
        (any::<Index>(), proptest::collection::vec(any::<u8>(), 1..8)).prop_map(|(at, bytes)| Edit::Insert(at, bytes)),
        (any::<Index>(), 1usize..40).prop_map(|(at, length)| Edit::Delete(at, length)),
        (any::<Index>(), 1usize..200).prop_map(|(at, length)| Edit::Duplicate(at, length)),
        (any::<Index>(), proptest::sample::select(FRAGMENTS)).prop_map(|(at, fragment)| Edit::Splice(at, fragment)),
    ]
}

fn apply(body: &mut Vec<u8>, edit: &Edit) {
    let at = |index: &Index, body: &Vec<u8>| index.index(body.len() + 1);
    match edit {
        Edit::Flip(index, byte) if !body.is_empty() => {
            let i = index.index(body.len());
            body[i] ^= byte;
        }
        Edit::Flip(..) => {}
        Edit::Insert(index, bytes) => {
            let i = at(index, body);
            body.splice(i..i, bytes.iter().copied());
        }
        Edit::Delete(index, length) => {
            let i = at(index, body);
            body.drain(i..(i + length).min(body.len()));
        }
        Edit::Duplicate(index, length) => {
            let i = at(index, body);
            let copy = body[i..(i + length).min(body.len())].to_vec();
            body.splice(i..i, copy);
        }
        Edit::Splice(index, fragment) => {
            let i = at(index, body);
            body.splice(i..i, fragment.bytes());
        }
    }
}

#[derive(Clone, Debug)]
struct Case {
    provider: Provider,
    signing: Signing,
    edits: Vec<Edit>,
    /// Sometimes the content type is not the provider's.
    content_type: Option<&'static str>,
}

fn case() -> impl Strategy<Value = Case> {
    let provider = prop_oneof![Just(Provider::Mitto), Just(Provider::Twilio), Just(Provider::Infobip)];
    let signing = prop_oneof![
        6 => Just(Signing::Signed),
        1 => Just(Signing::Unsigned),
        2 => prop_oneof![Just("forged".to_owned()), Just(String::new()), any::<String>()].prop_map(Signing::Forged),
    ];
    let content_type = proptest::option::weighted(
        0.1,
        proptest::sample::select(vec!["text/plain", "application/json", "application/x-www-form-urlencoded", ""]),
    );
    (provider, signing, proptest::collection::vec(edit(), 0..6), content_type)
        .prop_map(|(provider, signing, edits, content_type)| Case { provider, signing, edits, content_type })
}

/// A valid body for `provider`, naming messages the fixture has (and one it has not).
fn valid_body(world: &World, provider: Provider) -> Vec<u8> {
    let sending = world.tenants[0].sending.trim_start_matches("cmp_").to_owned();
    let message = |contact: u32| format!("msg_{sending}_{contact}");
    match provider {
        Provider::Mitto => json!([
            {"messageId": format!("p-{}", message(1)), "deliveryStatus": "Delivered"},
            {"messageId": format!("p-{}", message(2)), "deliveryStatus": "Failure", "errorCode": "E1"},
            {"messageId": "p-unknown", "deliveryStatus": "Sent"}
        ])
        .to_string()
        .into_bytes(),
        Provider::Twilio => b"MessageSid=SM1&MessageStatus=delivered&ErrorCode=".to_vec(),
        Provider::Infobip => {
            let result = |id: String, group: &str| {
                json!({"bulkId": "b", "messageId": id, "to": "306912300001", "smsCount": 1,
                       "status": {"groupId": 3, "groupName": group, "id": 5, "name": group, "description": "d"}})
            };
            json!({"results": [result(message(1), "DELIVERED"), result(message(2), "UNDELIVERABLE")]})
                .to_string()
                .into_bytes()
        }
    }
}

fn build(world: &World, case: &Case) -> RawRequest {
    let mut body = valid_body(world, case.provider);
    case.edits.iter().for_each(|edit| apply(&mut body, edit));
    let (name, account, native_type) = match case.provider {
        Provider::Mitto => ("mitto", &world.accounts.mitto, "application/json"),
        Provider::Twilio => ("twilio", &world.accounts.twilio, "application/x-www-form-urlencoded"),
        Provider::Infobip => ("infobip", &world.accounts.infobip, "application/json"),
    };
    let content_type = case.content_type.unwrap_or(native_type).as_bytes().to_vec();
    let mut headers = vec![("content-type", content_type)];
    let base = format!("/v1/webhooks/{name}/{account}");
    let sending = world.tenants[0].sending.trim_start_matches("cmp_").to_owned();
    let uri = match (case.provider, &case.signing) {
        (Provider::Twilio, signing) => {
            let uri = format!("{base}?message_id=msg_{sending}_1");
            let signature = match signing {
                Signing::Signed => twilio_signature(TWILIO_AUTH_TOKEN, &format!("{PUBLIC_URL}{uri}"), &params(&body)),
                Signing::Unsigned => String::new(),
                Signing::Forged(token) => twilio_signature(token, &format!("{PUBLIC_URL}{uri}"), &params(&body)),
            };
            if !matches!(signing, Signing::Unsigned) {
                headers.push(("x-twilio-signature", signature.into_bytes()));
            }
            uri
        }
        (_, Signing::Signed) => format!("{base}?token={WEBHOOK_TOKEN}"),
        (_, Signing::Unsigned) => base,
        (_, Signing::Forged(token)) => format!("{base}?token={}", percent_encode(token.as_bytes())),
    };
    RawRequest { method: "POST".into(), uri, headers, body }
}

/// The parameters Twilio would sign for `body` (what the adapter will read from it).
fn params(body: &[u8]) -> BTreeMap<String, String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .map(|pairs| pairs.into_iter().collect())
        .unwrap_or_default()
}

fn fuzz_webhooks(backend: Backend, name: &'static str) {
    let rt = runtime();
    let world = rt.block_on(World::new(backend));
    let count = CaseCount::new(name);
    let result = runner(cases(64)).run(&case(), |case| {
        count.tick();
        let request = build(&world, &case);
        let reply = rt.block_on(world.send_checked(&request))?;
        count.answered(reply.status);
        let forged = match &case.signing {
            Signing::Signed => false,
            Signing::Unsigned => true,
            Signing::Forged(token) => token != WEBHOOK_TOKEN && token != TWILIO_AUTH_TOKEN,
        };
        prop_assert!(
            !(forged && (200..300).contains(&reply.status)),
            "a forged or unsigned webhook was applied: {} {} → {}",
            request.uri,
            String::from_utf8_lossy(&request.body),
            reply.text
        );
        Ok(())
    });
    if let Err(error) = result {
        panic!("{name}: {error}");
    }
}

#[test]
fn mutated_webhooks_are_applied_or_refused_with_typed_errors_memory() {
    fuzz_webhooks(Backend::Memory, "webhooks (memory store)");
}

#[test]
fn mutated_webhooks_are_applied_or_refused_with_typed_errors_sqlite() {
    fuzz_webhooks(Backend::Sqlite, "webhooks (SQLite store)");
}
