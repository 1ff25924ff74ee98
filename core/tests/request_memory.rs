//! One request's memory, measured: a campaign preview over 10 000 contacts whose bodies
//! render near the ten-segment cap holds one rendered body at a time, not the campaign's.
//! The heap profiler (dhat) is this binary's allocator; it counts only while a profiler
//! runs, so each case measures the preview alone, after its store is built.
//!
//! The bound is O(request + one page): a fixed allowance plus a few bytes per contact for
//! the audience list of references — far below what holding every rendered body would take
//! (contacts × body length, 2.6 MB to 14 MB in these cases).

use proptest::prelude::*;
use smsim_core::domain::records::{Audience, ProviderKind};
use smsim_core::store::memory::MemoryStore;
use smsim_core::store::{sha256_hex, NewCampaign, NewContact, NewTenant, NewTrafficAccount, Store};
use smsim_core::{Credits, Timestamp};
use std::collections::BTreeMap;

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

/// The allowance of one preview beyond its audience list: one body and the answer.
const FIXED_BYTES: u64 = 256 * 1024;
/// Per contact: a reference and the sort's scratch space.
const PER_CONTACT_BYTES: u64 = 32;

/// A store with one tenant of `contacts` contacts, each with a `note` of `note_length`
/// characters, and a draft campaign whose body is the note twice; its ids.
fn store_with(contacts: u32, note_length: usize) -> (MemoryStore, smsim_core::TenantId, smsim_core::CampaignId) {
    let store = MemoryStore::new();
    let t0 = Timestamp(0);
    let tenant = store
        .create_tenant(
            NewTenant {
                name: "acme".into(),
                api_key_hash: sha256_hex(b"acme"),
                credits: Credits(1_000_000_000),
                rate_limit_per_s: None,
            },
            t0,
        )
        .unwrap();
    let account = store
        .create_traffic_account(NewTrafficAccount {
            owner: None,
            name: "main".into(),
            provider: ProviderKind::Mitto,
            base_url: "http://provider".into(),
            credentials: BTreeMap::from([("api_key".to_owned(), "secret".to_owned())]),
            sender: "SMSIM".into(),
            rate_limit_per_s: None,
            price_per_segment: Credits(1),
            idempotent_submissions: false,
        })
        .unwrap();
    let note = "n".repeat(note_length);
    let rows: Vec<NewContact> = (0..contacts)
        .map(|n| NewContact {
            phone: format!("+30691{:07}", n),
            attributes: BTreeMap::from([("note".to_owned(), note.clone())]),
            opted_out: false,
        })
        .collect();
    let report = store.import_contacts(tenant.id, rows, t0).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors.first());
    let campaign = NewCampaign {
        name: "spring".into(),
        body_template: "{{note}}{{note}}".into(),
        sender: None,
        audience: Audience::All,
        traffic_account: account.id,
        schedule_at: None,
    };
    let campaign = store.create_campaign(tenant.id, campaign, t0).unwrap();
    (store, tenant.id, campaign.id)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]

    #[test]
    fn a_preview_holds_one_rendered_body_at_a_time(contacts in 2_000u32..=10_000, note_length in 300usize..=700) {
        let (store, tenant, campaign) = store_with(contacts, note_length);
        let profiler = dhat::Profiler::builder().testing().build();
        let preview = store.preview(tenant, campaign).unwrap();
        let peak = dhat::HeapStats::get().max_bytes as u64;
        drop(profiler);
        prop_assert_eq!(preview.recipients, contacts);
        let bodies = u64::from(contacts) * 2 * note_length as u64;
        let bound = FIXED_BYTES + PER_CONTACT_BYTES * u64::from(contacts);
        prop_assert!(peak <= bound, "peak {} bytes over the bound {} (all bodies: {} bytes)", peak, bound, bodies);
        // The bound is worth something: holding every body would break it.
        prop_assert!(bodies > 2 * bound);
    }
}
