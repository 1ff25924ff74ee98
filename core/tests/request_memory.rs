//! One request's memory, measured: a campaign preview or enqueue over up to 10 000
//! contacts whose bodies render near the ten-segment cap holds a page of contacts and
//! their bodies at a time, not the campaign's. The heap profiler (dhat) is this binary's
//! allocator; it counts only while a profiler runs, so each case measures the one request
//! alone, after its store is built.
//!
//! The bound is O(request + one page): a fixed allowance plus one page of contacts and
//! their messages, whatever the audience's size, for the in-memory store's preview (its
//! contacts are already in memory; the store engine reads them a page at a time, as from
//! any backend) and SQLite's preview and enqueue. SQLite's own page cache is its
//! allocator's, not this one's, and bounded by its `cache_size`.
//!
//! Each bound is far below what holding every rendered body would take (contacts × body
//! length, 2.6 MB to 14 MB in these cases), which each case also checks.

use proptest::prelude::*;
use smsim_core::domain::records::{Audience, ProviderKind};
use smsim_core::store::memory::MemoryStore;
use smsim_core::store::rules::CONTACT_PAGE;
use smsim_core::store::sqlite::SqliteStore;
use smsim_core::store::{sha256_hex, NewCampaign, NewContact, NewTenant, NewTrafficAccount, Store};
use smsim_core::{Credits, Timestamp};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

/// The profiler counts every thread's allocations, and only one may run at a time: each
/// case holds this for its whole run, store building included.
static ONE_CASE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_case_at_a_time() -> MutexGuard<'static, ()> {
    ONE_CASE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The allowance of one request beyond its page: one body, the answer, the statements.
const FIXED_BYTES: u64 = 256 * 1024;

/// Per contact of a page, beyond its note and its body: the contact's and the message's
/// other fields, their attribute map and the journal entry.
const PER_PAGE_ROW_BYTES: u64 = 1536;

/// The bound of one request: the fixed allowance and one page, each
/// row holding the note (`note_length`), once in the contact and twice in the body.
fn page_bound(note_length: usize) -> u64 {
    FIXED_BYTES + u64::from(CONTACT_PAGE) * (PER_PAGE_ROW_BYTES + 3 * note_length as u64)
}

/// `store` with one tenant of `contacts` contacts, each with a `note` of `note_length`
/// characters, and a draft campaign whose body is the note twice; its ids.
fn store_with<S: Store>(
    store: S,
    contacts: u32,
    note_length: usize,
) -> (S, smsim_core::TenantId, smsim_core::CampaignId) {
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
    fn an_in_memory_preview_holds_a_page_at_a_time(contacts in 8_000u32..=10_000, note_length in 500usize..=700) {
        let _alone = one_case_at_a_time();
        let (store, tenant, campaign) = store_with(MemoryStore::new(), contacts, note_length);
        let profiler = dhat::Profiler::builder().testing().build();
        let preview = store.preview(tenant, campaign).unwrap();
        let peak = dhat::HeapStats::get().max_bytes as u64;
        drop(profiler);
        prop_assert_eq!(preview.recipients, contacts);
        let bodies = u64::from(contacts) * 2 * note_length as u64;
        let bound = page_bound(note_length);
        prop_assert!(peak <= bound, "peak {} bytes over the bound {} (all bodies: {} bytes)", peak, bound, bodies);
        // The bound is worth something: holding every body would break it.
        prop_assert!(bodies > 2 * bound, "bodies {} against the bound {}", bodies, bound);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3, ..ProptestConfig::default() })]

    #[test]
    fn an_sqlite_preview_and_enqueue_hold_a_page_at_a_time(contacts in 8_000u32..=10_000, note_length in 500usize..=700) {
        let _alone = one_case_at_a_time();
        let sqlite = SqliteStore::open_in_memory().unwrap();
        let (store, tenant, campaign) = store_with(sqlite, contacts, note_length);
        let bodies = u64::from(contacts) * 2 * note_length as u64;
        let bound = page_bound(note_length);
        // The bound is worth something: holding every body would break it.
        prop_assert!(bodies > 2 * bound, "bodies {} against the bound {}", bodies, bound);

        let profiler = dhat::Profiler::builder().testing().build();
        let preview = store.preview(tenant, campaign).unwrap();
        let peak = dhat::HeapStats::get().max_bytes as u64;
        drop(profiler);
        prop_assert_eq!(preview.recipients, contacts);
        prop_assert!(peak <= bound, "preview: peak {} bytes over the bound {} (all bodies: {} bytes)", peak, bound, bodies);

        let profiler = dhat::Profiler::builder().testing().build();
        let receipt = store.enqueue(tenant, campaign, None, Timestamp(1)).unwrap();
        let peak = dhat::HeapStats::get().max_bytes as u64;
        drop(profiler);
        prop_assert_eq!(receipt.messages, contacts);
        prop_assert!(peak <= bound, "enqueue: peak {} bytes over the bound {} (all bodies: {} bytes)", peak, bound, bodies);
    }
}
