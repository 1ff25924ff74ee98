//! Tenant isolation as a property: for a random pair of tenants and every route, tenant
//! B's key on tenant A's ids answers `404 NOT_FOUND` and changes nothing; B's listings
//! show none of A's records; admin routes refuse a tenant key with `403 FORBIDDEN`.

use super::fixture::{cases, runner, runtime, Backend, CaseCount, RawRequest, TenantIds, World};
use proptest::prelude::*;
use serde_json::{json, Value};

/// Every tenant route that names a campaign, with a body it would accept from its owner.
fn campaign_routes(campaign: &str) -> Vec<(&'static str, String, Value)> {
    let path = |action: &str| format!("/v1/campaigns/{campaign}{action}");
    vec![
        ("GET", path(""), Value::Null),
        ("PATCH", path(""), json!({"name": "taken over"})),
        ("GET", path("/preview"), Value::Null),
        ("POST", path("/enqueue"), Value::Null),
        ("POST", path("/pause"), Value::Null),
        ("POST", path("/resume"), Value::Null),
        ("POST", path("/cancel"), Value::Null),
        ("POST", path("/retry-failed"), Value::Null),
        ("GET", path("/failures"), Value::Null),
        ("GET", path("/progress"), Value::Null),
    ]
}

/// Every admin route, with a body the admin would have accepted.
fn admin_routes(victim: &TenantIds) -> Vec<(&'static str, String, Value)> {
    vec![
        ("POST", "/v1/admin/tenants".into(), json!({"name": "mallory", "credits": 1})),
        ("POST", format!("/v1/admin/tenants/{}/credits", victim.id), json!({"top_up": 1_000})),
        ("GET", "/v1/admin/traffic-accounts".into(), Value::Null),
        (
            "POST",
            "/v1/admin/traffic-accounts".into(),
            json!({"name": "m", "provider": "mitto", "base_url": "http://p", "sender": "S", "price_per_segment": 0,
                   "credentials": {"api_key": "k", "traffic_account_id": "t", "webhook_token": "w"}}),
        ),
    ]
}

fn request(method: &str, uri: String, key: &str, body: &Value) -> RawRequest {
    let mut headers = vec![("authorization", format!("Bearer {key}").into_bytes())];
    let body = match body {
        Value::Null => Vec::new(),
        body => {
            headers.push(("content-type", b"application/json".to_vec()));
            body.to_string().into_bytes()
        }
    };
    RawRequest { method: method.into(), uri, headers, body }
}

/// B's view of a listing route holds none of A's ids.
async fn listings_hide(
    world: &World,
    count: &CaseCount,
    owner: &TenantIds,
    intruder: &TenantIds,
) -> Result<(), TestCaseError> {
    for uri in ["/v1/campaigns", "/v1/contacts", "/v1/me", "/v1/queue/stats", "/v1/traffic-accounts"] {
        let reply = world.send_checked(&request("GET", uri.into(), &intruder.key, &Value::Null)).await?;
        count.answered(reply.status);
        prop_assert_eq!(reply.status, 200, "{} {}", uri, reply.text);
        let items = reply.body.as_array().cloned().unwrap_or_else(|| vec![reply.body.clone()]);
        for item in items {
            for field in ["id", "tenant", "owner"] {
                let shown = item[field].as_str().unwrap_or_default();
                prop_assert!(
                    shown != owner.id && shown != owner.draft && shown != owner.sending,
                    "{} of {} shows {} of {}",
                    uri,
                    intruder.id,
                    shown,
                    owner.id
                );
            }
        }
    }
    Ok(())
}

async fn intrude(
    world: &World,
    count: &CaseCount,
    owner: &TenantIds,
    intruder: &TenantIds,
) -> Result<(), TestCaseError> {
    for campaign in [&owner.draft, &owner.sending] {
        for (method, uri, body) in campaign_routes(campaign) {
            let reply = world.send_checked(&request(method, uri.clone(), &intruder.key, &body)).await?;
            count.answered(reply.status);
            prop_assert_eq!(
                (reply.status, reply.code()),
                (404, "NOT_FOUND"),
                "{} {} with {}'s key: {}",
                method,
                uri,
                intruder.id,
                reply.text
            );
        }
    }
    for (method, uri, body) in admin_routes(owner) {
        let reply = world.send_checked(&request(method, uri.clone(), &intruder.key, &body)).await?;
        count.answered(reply.status);
        prop_assert_eq!((reply.status, reply.code()), (403, "FORBIDDEN"), "{} {}: {}", method, uri, reply.text);
    }
    listings_hide(world, count, owner, intruder).await
}

fn isolation(backend: Backend, name: &'static str) {
    let rt = runtime();
    let world = rt.block_on(World::new(backend));
    let count = CaseCount::new(name);
    let tenants = world.tenants.len();
    let pair = (0..tenants, 1..tenants).prop_map(move |(owner, offset)| (owner, (owner + offset) % tenants));
    // Three tenants make six ordered pairs, and every refused request leaves the world as
    // it was, so cases beyond a few dozen repeat themselves: the long run is capped.
    let result = runner(cases(12).min(60)).run(&pair, |(owner, intruder)| {
        count.tick();
        rt.block_on(intrude(&world, &count, &world.tenants[owner], &world.tenants[intruder]))
    });
    if let Err(error) = result {
        panic!("{name}: {error}");
    }
}

#[test]
fn another_tenants_ids_are_not_found_and_admin_routes_are_forbidden_memory() {
    isolation(Backend::Memory, "isolation (memory store)");
}

#[test]
fn another_tenants_ids_are_not_found_and_admin_routes_are_forbidden_sqlite() {
    isolation(Backend::Sqlite, "isolation (SQLite store)");
}
