//! Every API route with arbitrary bodies, path ids, query strings and headers; every
//! integer field of every body at its extremes.

use super::fixture::{cases, percent_encode, runner, runtime, Backend, CaseCount, RawRequest, World, ADMIN, BACKENDS};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Number, Value};

/// Method and path of every route; `{tenant}`, `{campaign}`, `{provider}` and
/// `{account}` are filled from the case.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/admin/tenants"),
    ("POST", "/v1/admin/tenants/{tenant}/credits"),
    ("POST", "/v1/admin/traffic-accounts"),
    ("GET", "/v1/admin/traffic-accounts"),
    ("GET", "/v1/admin/queue/stats"),
    ("GET", "/v1/admin/reconciliation"),
    ("GET", "/v1/me"),
    ("POST", "/v1/contacts"),
    ("GET", "/v1/contacts"),
    ("GET", "/v1/traffic-accounts"),
    ("POST", "/v1/campaigns"),
    ("GET", "/v1/campaigns"),
    ("GET", "/v1/campaigns/{campaign}"),
    ("PATCH", "/v1/campaigns/{campaign}"),
    ("GET", "/v1/campaigns/{campaign}/preview"),
    ("POST", "/v1/campaigns/{campaign}/enqueue"),
    ("POST", "/v1/campaigns/{campaign}/pause"),
    ("POST", "/v1/campaigns/{campaign}/resume"),
    ("POST", "/v1/campaigns/{campaign}/cancel"),
    ("POST", "/v1/campaigns/{campaign}/retry-failed"),
    ("GET", "/v1/campaigns/{campaign}/failures"),
    ("GET", "/v1/campaigns/{campaign}/progress"),
    ("GET", "/v1/queue/stats"),
    ("POST", "/v1/webhooks/{provider}/{account}"),
];

/// A valid body for the route at `index` (in the world's ids), which mutations start from.
fn valid_body(world: &World, route: usize) -> Value {
    let account = &world.accounts.mitto;
    match ROUTES[route].1 {
        "/v1/admin/tenants" => json!({"name": "delta", "credits": 100, "rate_limit_per_s": 5}),
        "/v1/admin/tenants/{tenant}/credits" => json!({"top_up": 10}),
        "/v1/admin/traffic-accounts" => json!({
            "owner": world.tenants[0].id, "name": "m", "provider": "mitto", "base_url": "http://p", "sender": "S",
            "rate_limit_per_s": 10, "price_per_segment": 55,
            "credentials": {"api_key": "k", "traffic_account_id": "t", "webhook_token": "w"}
        }),
        "/v1/contacts" => {
            json!({"contacts": [{"phone": "+306912300009", "attributes": {"city": "Athens"}, "opted_out": false}]})
        }
        "/v1/campaigns" | "/v1/campaigns/{campaign}" => json!({
            "name": "n", "body_template": "Hi {{first_name|there}}", "sender": "S", "traffic_account": account,
            "audience": {"kind": "attribute", "key": "city", "value": "Athens"}, "schedule_at": 1_700_000_100_000u64
        }),
        "/v1/webhooks/{provider}/{account}" => json!([{"messageId": "p-msg_2_1", "deliveryStatus": "Delivered"}]),
        _ => json!({}),
    }
}

/// Integers at and around every bound a field could be checked against.
pub fn extreme_integers() -> Vec<Number> {
    let signed = [i64::MIN, i64::MIN + 1, -1_000_000_000_000_000_001, -1, 0, 1, 1_000_000_000_000_000_001];
    let unsigned = [
        u64::from(u32::MAX),
        u64::from(u32::MAX) + 1,
        253_402_300_799_999,
        253_402_300_800_000,
        i64::MAX as u64 - 1,
        i64::MAX as u64,
        i64::MAX as u64 + 1,
        u64::MAX - 1,
        u64::MAX,
    ];
    signed.into_iter().map(Number::from).chain(unsigned.into_iter().map(Number::from)).collect()
}

fn nested(depth: usize) -> Value {
    (0..depth).fold(json!(1), |inner, level| if level % 2 == 0 { json!([inner]) } else { json!({"k": inner}) })
}

/// A value of any JSON type, biased to the ones that break parsers and arithmetic.
fn hostile_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => proptest::sample::select(extreme_integers()).prop_map(Value::Number),
        1 => prop_oneof![Just(json!(1.5)), Just(json!(-0.0)), Just(json!(1e308)), Just(json!(-1e-300))],
        2 => any::<String>().prop_map(Value::String),
        1 => (0usize..200_000).prop_map(|length| Value::String("a".repeat(length))),
        1 => prop_oneof![
            Just(json!("{{")), Just(json!("")), Just(json!(" ")), Just(json!("cmp_18446744073709551615")),
            Just(json!("ta_9223372036854775808")), Just(json!("ten_0")), Just(json!("\u{0}")), Just(json!("😀".repeat(200)))
        ],
        1 => prop_oneof![Just(Value::Null), Just(json!(true)), Just(json!([])), Just(json!({}))],
        1 => (1usize..300).prop_map(nested),
    ]
}

/// Where in a JSON value a mutation lands: a path of object keys and array indices.
fn paths(value: &Value, prefix: Vec<Value>, into: &mut Vec<Vec<Value>>) {
    into.push(prefix.clone());
    match value {
        Value::Object(map) => map.iter().for_each(|(key, inner)| {
            let mut path = prefix.clone();
            path.push(json!(key));
            paths(inner, path, into);
        }),
        Value::Array(items) => items.iter().enumerate().for_each(|(index, inner)| {
            let mut path = prefix.clone();
            path.push(json!(index));
            paths(inner, path, into);
        }),
        _ => {}
    }
}

fn at_path<'a>(value: &'a mut Value, path: &[Value]) -> &'a mut Value {
    path.iter().fold(value, |inner, step| match step {
        Value::String(key) => &mut inner[key.as_str()],
        Value::Number(index) => &mut inner[index.as_u64().expect("an index") as usize],
        _ => unreachable!("paths hold keys and indices"),
    })
}

/// How a valid body is made hostile.
#[derive(Clone, Debug)]
enum Mutation {
    /// One value (or the whole body) replaced.
    Replace(Index, Value),
    /// A key no struct knows, added to an object.
    UnknownKey(Index, Value),
    /// A key removed.
    Remove(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), hostile_value()).prop_map(|(at, value)| Mutation::Replace(at, value)),
        1 => (any::<Index>(), hostile_value()).prop_map(|(at, value)| Mutation::UnknownKey(at, value)),
        1 => any::<Index>().prop_map(Mutation::Remove),
    ]
}

fn mutate(mut body: Value, mutation: &Mutation) -> Value {
    let mut all = Vec::new();
    paths(&body, Vec::new(), &mut all);
    match mutation {
        Mutation::Replace(at, value) => *at_path(&mut body, &all[at.index(all.len())]) = value.clone(),
        Mutation::UnknownKey(at, value) => {
            if let Value::Object(map) = at_path(&mut body, &all[at.index(all.len())]) {
                map.insert("colour".into(), value.clone());
            }
        }
        Mutation::Remove(at) => {
            let path = &all[at.index(all.len())];
            if let Some((last, parent)) = path.split_last() {
                match (at_path(&mut body, parent), last) {
                    (Value::Object(map), Value::String(key)) => drop(map.remove(key)),
                    (Value::Array(items), Value::Number(index)) => drop(items.remove(index.as_u64().unwrap() as usize)),
                    _ => {}
                }
            }
        }
    }
    body
}

/// A request body.
#[derive(Clone, Debug)]
enum BodyChoice {
    None,
    Bytes(Vec<u8>),
    Mutated(Mutation),
    /// `[[[…]]]` this deep (serde_json stops at 128; a parser without a limit overflows
    /// its stack).
    Deep(usize),
    /// One byte over the route's limit.
    OverLimit,
    /// A number beyond every integer type, in place of one value.
    HugeNumber(Index),
}

fn body_choice() -> impl Strategy<Value = BodyChoice> {
    prop_oneof![
        1 => Just(BodyChoice::None),
        2 => proptest::collection::vec(any::<u8>(), 0..300).prop_map(BodyChoice::Bytes),
        8 => mutation().prop_map(BodyChoice::Mutated),
        1 => (100usize..20_000).prop_map(BodyChoice::Deep),
        1 => Just(BodyChoice::OverLimit),
        1 => any::<Index>().prop_map(BodyChoice::HugeNumber),
    ]
}

fn render_body(world: &World, route: usize, choice: &BodyChoice) -> Vec<u8> {
    match choice {
        BodyChoice::None => Vec::new(),
        BodyChoice::Bytes(bytes) => bytes.clone(),
        BodyChoice::Mutated(mutation) => mutate(valid_body(world, route), mutation).to_string().into_bytes(),
        BodyChoice::Deep(depth) => format!("{}{}", "[".repeat(*depth), "]".repeat(*depth)).into_bytes(),
        BodyChoice::OverLimit => vec![b' '; smsim_core::api::MAX_BODY_BYTES + 1],
        BodyChoice::HugeNumber(at) => {
            let marker = "\"__huge__\"";
            let body = mutate(valid_body(world, route), &Mutation::Replace(*at, json!("__huge__")));
            body.to_string().replacen(marker, "184467440737095516160000", 1).into_bytes()
        }
    }
}

/// Whose ids a path names.
#[derive(Clone, Debug)]
enum IdChoice {
    /// The caller's own (tenant A's).
    Own,
    /// Another tenant's (B's).
    Other,
    /// Any text at all, percent-encoded.
    Text(String),
}

fn id_choice() -> impl Strategy<Value = IdChoice> {
    let texts = prop_oneof![
        Just("cmp_0".to_owned()),
        Just("cmp_18446744073709551615".to_owned()),
        Just("cmp_18446744073709551616".to_owned()),
        Just("cmp_9223372036854775807".to_owned()),
        Just("cmp_9223372036854775808".to_owned()),
        Just("ten_9223372036854775808".to_owned()),
        Just("ta_18446744073709551615".to_owned()),
        Just("cmp_-1".to_owned()),
        Just("cmp_01".to_owned()),
        Just("..".to_owned()),
        Just(String::new()),
        any::<u64>().prop_map(|n| format!("cmp_{n}")),
        any::<u64>().prop_map(|n| format!("ten_{n}")),
        any::<u64>().prop_map(|n| format!("ta_{n}")),
        any::<String>(),
    ];
    prop_oneof![3 => Just(IdChoice::Own), 2 => Just(IdChoice::Other), 3 => texts.prop_map(IdChoice::Text)]
}

/// Who the `Authorization` header says the caller is.
#[derive(Clone, Debug)]
enum Caller {
    /// The caller the route is for: the admin on admin routes, tenant A on tenant routes,
    /// nobody on webhooks (so most cases get past authentication to the parsers).
    Right,
    TenantA,
    TenantB,
    Admin,
    Nobody,
    /// Any bytes after `Bearer `.
    BearerBytes(Vec<u8>),
    /// Any bytes as the whole header.
    Raw(Vec<u8>),
}

fn caller() -> impl Strategy<Value = Caller> {
    let bytes = || proptest::collection::vec(any::<u8>(), 0..80);
    prop_oneof![
        12 => Just(Caller::Right),
        1 => Just(Caller::TenantA),
        1 => Just(Caller::TenantB),
        1 => Just(Caller::Admin),
        1 => Just(Caller::Nobody),
        1 => bytes().prop_map(Caller::BearerBytes),
        1 => bytes().prop_map(Caller::Raw),
    ]
}

/// One hostile request, as drawn.
#[derive(Clone, Debug)]
struct Case {
    route: usize,
    /// Another method than the route's, sometimes.
    method: Option<&'static str>,
    id: IdChoice,
    query: Option<Vec<u8>>,
    caller: Caller,
    content_type: Option<Vec<u8>>,
    idempotency_key: Option<Vec<u8>>,
    body: BodyChoice,
}

fn case() -> impl Strategy<Value = Case> {
    let method =
        proptest::option::weighted(0.1, proptest::sample::select(vec!["GET", "POST", "PATCH", "PUT", "DELETE"]));
    let content_type = proptest::option::weighted(
        0.85,
        prop_oneof![
            6 => Just(b"application/json".to_vec()),
            1 => Just(b"application/json; charset=utf-8".to_vec()),
            1 => Just(b"application/problem+json".to_vec()),
            1 => Just(b"text/plain".to_vec()),
            1 => proptest::collection::vec(any::<u8>(), 0..40),
        ],
    );
    let key = proptest::option::weighted(
        0.3,
        prop_oneof![
            Just(b"click-1".to_vec()),
            Just(Vec::new()),
            Just(vec![b'k'; 256]),
            proptest::collection::vec(any::<u8>(), 0..300)
        ],
    );
    let query = proptest::option::weighted(0.2, proptest::collection::vec(any::<u8>(), 0..60));
    (0..ROUTES.len(), method, id_choice(), query, caller(), content_type, key, body_choice()).prop_map(
        |(route, method, id, query, caller, content_type, idempotency_key, body)| Case {
            route,
            method,
            id,
            query,
            caller,
            content_type,
            idempotency_key,
            body,
        },
    )
}

fn fill_path(world: &World, case: &Case) -> String {
    let (a, b) = (&world.tenants[0], &world.tenants[1]);
    let pick = |own: &str, other: &str| match &case.id {
        IdChoice::Own => own.to_owned(),
        IdChoice::Other => other.to_owned(),
        IdChoice::Text(text) => percent_encode(text.as_bytes()),
    };
    let campaign = if case.route % 2 == 0 { &a.draft } else { &a.sending };
    let mut path = ROUTES[case.route]
        .1
        .replace("{tenant}", &pick(&a.id, &b.id))
        .replace("{campaign}", &pick(campaign, &b.draft))
        .replace("{provider}", &pick("mitto", "twilio"))
        .replace("{account}", &pick(&world.accounts.mitto, &world.accounts.infobip));
    if let Some(query) = &case.query {
        path = format!("{path}?{}", percent_encode(query).replace("%3D", "=").replace("%26", "&"));
    }
    path
}

fn build(world: &World, case: &Case) -> RawRequest {
    let (route_method, _) = ROUTES[case.route];
    let mut headers = Vec::new();
    let path = ROUTES[case.route].1;
    let right = if path.starts_with("/v1/admin") {
        Caller::Admin
    } else if path.starts_with("/v1/webhooks") {
        Caller::Nobody
    } else {
        Caller::TenantA
    };
    let caller = if matches!(case.caller, Caller::Right) { &right } else { &case.caller };
    let authorization = match caller {
        Caller::Right => unreachable!("replaced by the route's caller"),
        Caller::TenantA => Some(format!("Bearer {}", world.tenants[0].key).into_bytes()),
        Caller::TenantB => Some(format!("Bearer {}", world.tenants[1].key).into_bytes()),
        Caller::Admin => Some(format!("Bearer {ADMIN}").into_bytes()),
        Caller::Nobody => None,
        Caller::BearerBytes(bytes) => Some([b"Bearer ".as_slice(), bytes].concat()),
        Caller::Raw(bytes) => Some(bytes.clone()),
    };
    headers.extend(authorization.map(|value| ("authorization", value)));
    headers.extend(case.content_type.clone().map(|value| ("content-type", value)));
    headers.extend(case.idempotency_key.clone().map(|value| ("idempotency-key", value)));
    RawRequest {
        method: case.method.unwrap_or(route_method).to_owned(),
        uri: fill_path(world, case),
        headers,
        body: render_body(world, case.route, &case.body),
    }
}

fn fuzz_routes(backend: Backend, name: &'static str) {
    let rt = runtime();
    let world = rt.block_on(World::new(backend));
    let count = CaseCount::new(name);
    let result = runner(cases(48)).run(&case(), |case| {
        count.tick();
        let request = build(&world, &case);
        let reply = rt.block_on(world.send_checked(&request))?;
        count.answered(reply.status);
        Ok(())
    });
    if let Err(error) = result {
        panic!("{name}: {error}");
    }
}

#[test]
fn hostile_requests_on_every_route_get_typed_errors_and_change_nothing_memory() {
    fuzz_routes(Backend::Memory, "api routes (memory store)");
}

#[test]
fn hostile_requests_on_every_route_get_typed_errors_and_change_nothing_sqlite() {
    fuzz_routes(Backend::Sqlite, "api routes (SQLite store)");
}

/// Every integer field of every body, one at a time, at every extreme; and for the
/// fields that later arithmetic uses (prices, credits, schedule times), the requests
/// that compute with them afterwards (preview, enqueue, top-up).
#[test]
fn every_integer_field_at_every_extreme_gets_a_typed_answer() {
    let rt = runtime();
    for backend in BACKENDS {
        let world = rt.block_on(World::new(backend));
        let mut tried = 0;
        for number in extreme_integers() {
            for (route, field) in integer_fields() {
                tried += 1;
                rt.block_on(extreme_then_use(&world, route, field, Value::Number(number.clone())))
                    .unwrap_or_else(|error| panic!("{backend:?} {route} {field} = {number}: {error}"));
            }
        }
        eprintln!("hostile integer extremes ({backend:?} store): {tried} cases");
    }
}

/// Every integer field of a request body: the route's path (in [`ROUTES`]) and the field.
fn integer_fields() -> Vec<(&'static str, &'static str)> {
    vec![
        ("/v1/admin/tenants", "credits"),
        ("/v1/admin/tenants", "rate_limit_per_s"),
        ("/v1/admin/tenants/{tenant}/credits", "top_up"),
        ("/v1/admin/tenants/{tenant}/credits", "adjust"),
        ("/v1/admin/traffic-accounts", "price_per_segment"),
        ("/v1/admin/traffic-accounts", "rate_limit_per_s"),
        ("/v1/campaigns", "schedule_at"),
        ("/v1/campaigns/{campaign}", "schedule_at"),
    ]
}

async fn extreme_then_use(world: &World, path: &str, field: &str, number: Value) -> Result<(), TestCaseError> {
    let route = ROUTES.iter().position(|(method, p)| *p == path && *method != "GET").expect("a listed route");
    let mut body = valid_body(world, route);
    if field == "adjust" {
        body = json!({});
    }
    body.as_object_mut().expect("an object body").insert(field.into(), number);
    let tenant = &world.tenants[2];
    let key = if path.starts_with("/v1/admin") { ADMIN.to_owned() } else { tenant.key.clone() };
    let uri = path.replace("{tenant}", &tenant.id).replace("{campaign}", &tenant.draft);
    let reply = world.send_checked(&json_request(ROUTES[route].0, &uri, &key, &body)).await?;
    if !(200..300).contains(&reply.status) {
        return Ok(());
    }
    // Accepted: the value now takes part in arithmetic. Use it.
    let mut created = reply.body["id"].as_str().or(reply.body["tenant"]["id"].as_str()).unwrap_or_default().to_owned();
    let mut path = path;
    if path == "/v1/admin/traffic-accounts" {
        // A price is used by a campaign sent through the account.
        let body = json!({"name": "uses", "body_template": "Hi", "traffic_account": created});
        let campaign = world.send_checked(&json_request("POST", "/v1/campaigns", &tenant.key, &body)).await?;
        created = campaign.body["id"].as_str().unwrap_or_default().to_owned();
        path = "/v1/campaigns";
    }
    let follow_ups = follow_ups(world, path, &created, &reply.body);
    for (method, uri, key, body) in follow_ups {
        world.send_checked(&json_request(method, &uri, &key, &body)).await?;
    }
    Ok(())
}

/// The requests that compute with a value just accepted by `path`.
fn follow_ups(world: &World, path: &str, created: &str, answer: &Value) -> Vec<(&'static str, String, String, Value)> {
    let tenant = &world.tenants[2];
    let credits = format!("/v1/admin/tenants/{}/credits", tenant.id);
    match path {
        "/v1/admin/tenants" => {
            let key = answer["api_key"].as_str().unwrap_or_default().to_owned();
            let credits = format!("/v1/admin/tenants/{created}/credits");
            vec![
                ("POST", credits.clone(), ADMIN.into(), json!({"top_up": 1})),
                ("POST", credits.clone(), ADMIN.into(), json!({"top_up": i64::MAX})),
                ("POST", credits, ADMIN.into(), json!({"adjust": i64::MIN})),
                ("GET", "/v1/me".into(), key, Value::Null),
            ]
        }
        "/v1/admin/tenants/{tenant}/credits" => vec![
            ("POST", credits.clone(), ADMIN.into(), json!({"top_up": 1})),
            ("POST", credits, ADMIN.into(), json!({"adjust": -1})),
            ("GET", "/v1/me".into(), tenant.key.clone(), Value::Null),
        ],
        "/v1/campaigns" => campaign_follow_ups(tenant, created, &["preview", "enqueue"]),
        _ => campaign_follow_ups(tenant, &tenant.draft, &["preview"]),
    }
}

fn campaign_follow_ups(
    tenant: &super::fixture::TenantIds,
    campaign: &str,
    actions: &[&str],
) -> Vec<(&'static str, String, String, Value)> {
    actions
        .iter()
        .map(|&action| {
            let method = if action == "preview" { "GET" } else { "POST" };
            (method, format!("/v1/campaigns/{campaign}/{action}"), tenant.key.clone(), Value::Null)
        })
        .collect()
}

fn json_request(method: &str, uri: &str, key: &str, body: &Value) -> RawRequest {
    let mut headers = vec![("authorization", format!("Bearer {key}").into_bytes())];
    let body = if body.is_null() {
        Vec::new()
    } else {
        headers.push(("content-type", b"application/json".to_vec()));
        body.to_string().into_bytes()
    };
    RawRequest { method: method.into(), uri: uri.into(), headers, body }
}

/// Regression (issue 16): a top-up of i64::MAX answered `500 INTERNAL` on SQLite (the
/// balance sum became a REAL) and overflowed the memory store's balance.
#[test]
fn a_top_up_beyond_the_credit_bound_is_a_validation_error_naming_top_up() {
    let rt = runtime();
    for backend in BACKENDS {
        let world = rt.block_on(World::new(backend));
        let uri = format!("/v1/admin/tenants/{}/credits", world.tenants[0].id);
        for body in [json!({"top_up": i64::MAX}), json!({"adjust": i64::MAX}), json!({"adjust": i64::MIN})] {
            let request = json_request("POST", &uri, ADMIN, &body);
            let reply =
                rt.block_on(world.send_checked(&request)).unwrap_or_else(|error| panic!("{backend:?}: {error}"));
            let field = body.as_object().and_then(|object| object.keys().next().cloned());
            assert_eq!(
                (reply.status, reply.code(), reply.body["error"]["field"].as_str().map(str::to_owned)),
                (400, "VALIDATION", field),
                "{backend:?} {body}: {}",
                reply.text
            );
        }
    }
}
