//! How a webhook's delivery reports reach the store: inline, or by group commit.
//!
//! # Why group commit
//!
//! Providers such as Twilio call back once per report. Applied inline, every such
//! webhook is its own store transaction, and a transaction's fixed cost (taking the
//! writer lock, the commit, on SQLite the WAL append) is many times the cost of the one
//! report in it: serve mode ingests single-report webhooks at a fraction of the rate it
//! ingests the same reports sent as arrays. In serve mode ([`ReportIngest::Grouped`]) a
//! webhook hands its reports to one [`ReportCommitter`] over a bounded channel instead;
//! the committer takes whatever webhooks are waiting, applies all their reports with one
//! [`Store::apply_reports`] call — one transaction — and answers each webhook with its
//! own slice of the outcomes. While one group commits, the next one queues, so the
//! group size follows the load by itself: one webhook at a time when they come one at a
//! time, up to [`GroupLimits::max_group_reports`] under a burst.
//!
//! The simulator keeps [`ReportIngest::Inline`] (what [`ApiState::new`](super::ApiState::new)
//! chooses): the handler calls the store itself, in the request's own task, so a
//! simulation's schedule — and so its trace — is unchanged.
//!
//! # Invariants
//!
//! - **Durable before acknowledged.** A webhook's answer is sent only after the
//!   transaction that holds its reports returned from the store, committed; a failed
//!   transaction answers with its error (a passing failure is a 503, so the provider
//!   retries). Nothing answers 2xx from the queue.
//! - **Order within a webhook kept.** A webhook's reports stay together and in the
//!   order its adapter parsed them, and groups are applied in the order their webhooks
//!   were queued: the store sees exactly the sequence it would see inline, only with
//!   fewer commits in it. A webhook is never split across transactions, so its answer
//!   always describes one transaction.
//! - **Bounded.** A group holds at most [`GroupLimits::max_group_reports`] reports,
//!   except that a single webhook larger than that is a group of its own. At most
//!   [`GroupLimits::max_queued_webhooks`] webhooks wait for the committer; the next
//!   waits in its HTTP handler (backpressure on the provider's connection) instead of
//!   growing a queue.
//! - **One member's failure is its own.** When a group's transaction fails (rolled back
//!   as a whole), every member is applied again alone, so only the webhook whose reports
//!   cannot be applied gets the error. A passing failure ([`StoreError::Transient`]) of
//!   one of those retries means the store is down rather than a member bad: the members
//!   not yet retried get that error at once (503) instead of one failed transaction
//!   each.
//! - **Webhooks do not wait on the store's lock.** In serve mode the handler reads a
//!   webhook's account through [`ReportIngest::account`], which keeps each account once
//!   read (accounts never change once created; the adapter cache relies on the same).
//!   Otherwise every webhook would read it in a transaction of its own, queueing on the
//!   store behind the group being committed, and on SQLite would hold a runtime worker
//!   thread while it waits: the webhooks that should form the next group would not get
//!   parsed until the current one had committed.
//! - **Supervised.** The committer is one of serve mode's tasks; if it ends or panics,
//!   serve mode ends, and the webhooks waiting on it are answered 503.

use crate::clock::Clock;
use crate::domain::records::TrafficAccount;
use crate::ids::TrafficAccountId;
use crate::store::{InboundReport, ReportOutcome, Store, StoreError, StoreResult};
use crate::Timestamp;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// How the webhook handler applies the reports it parsed.
pub enum ReportIngest {
    /// The handler calls [`Store::apply_reports`] itself: one transaction per webhook.
    /// The simulator's path, and the default.
    Inline,
    /// The handler queues the reports for a [`ReportCommitter`] and waits for the
    /// transaction that holds them (serve mode).
    Grouped(ReportQueue),
}

impl ReportIngest {
    /// The traffic account a webhook is addressed to: read from the store inline, kept
    /// once read when grouped (see the module doc). A missing account is not kept, so
    /// one created later is found. Kept accounts are shared, not copied: a webhook
    /// needs only a few of an account's fields, and copying its strings and
    /// credentials on every call cost more than the lookup.
    pub fn account(&self, store: &dyn Store, id: TrafficAccountId) -> StoreResult<Arc<TrafficAccount>> {
        let ReportIngest::Grouped(queue) = self else { return store.traffic_account(id).map(Arc::new) };
        if let Some(account) = queue.accounts.lock().expect("account cache poisoned").get(&id) {
            return Ok(account.clone());
        }
        let account = Arc::new(store.traffic_account(id)?);
        queue.accounts.lock().expect("account cache poisoned").insert(id, account.clone());
        Ok(account)
    }

    /// Applies one webhook's reports, in order, and returns their outcomes once they are
    /// committed.
    pub async fn apply(
        &self,
        store: &dyn Store,
        clock: &dyn Clock,
        reports: Vec<InboundReport>,
    ) -> StoreResult<Vec<ReportOutcome>> {
        match self {
            ReportIngest::Inline => store.apply_reports(reports, clock.now()),
            ReportIngest::Grouped(queue) => queue.apply(reports).await,
        }
    }
}

/// Bounds of group commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupLimits {
    /// Most reports in one transaction (a larger webhook is a group of its own).
    pub max_group_reports: usize,
    /// Most webhooks waiting for the committer.
    pub max_queued_webhooks: usize,
}

impl Default for GroupLimits {
    /// Groups of up to 256 reports: past a few hundred, a larger group saves little
    /// commit cost per report and only makes a retry after a failure longer. A queue of
    /// 1 024 webhooks (each at most [`MAX_WEBHOOK_BODY_BYTES`](crate::adapter::MAX_WEBHOOK_BODY_BYTES)
    /// of parsed body) covers several groups' worth of waiting webhooks.
    fn default() -> Self {
        GroupLimits { max_group_reports: 256, max_queued_webhooks: 1_024 }
    }
}

/// One webhook waiting for its transaction.
struct Member {
    reports: Vec<InboundReport>,
    answer: oneshot::Sender<StoreResult<Vec<ReportOutcome>>>,
}

/// The handlers' side of group commit: queues a webhook's reports and waits for them
/// to be committed. Cheap to clone.
#[derive(Clone)]
pub struct ReportQueue {
    sender: mpsc::Sender<Member>,
    counts: Arc<Counts>,
    accounts: Arc<Mutex<BTreeMap<TrafficAccountId, Arc<TrafficAccount>>>>,
}

/// What the committer has done so far; read with [`ReportQueue::counts`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngestCounts {
    /// Group transactions attempted.
    pub groups: u64,
    /// Webhooks taken from the queue.
    pub webhooks: u64,
    /// Reports taken from the queue.
    pub reports: u64,
    /// Groups whose transaction failed, so that each member was applied alone.
    pub groups_split: u64,
}

#[derive(Default)]
struct Counts {
    groups: AtomicU64,
    webhooks: AtomicU64,
    reports: AtomicU64,
    groups_split: AtomicU64,
}

impl ReportQueue {
    /// Queues `reports` (waiting for room if the queue is full) and returns their
    /// outcomes once the transaction holding them has committed, or its error.
    pub async fn apply(&self, reports: Vec<InboundReport>) -> StoreResult<Vec<ReportOutcome>> {
        if reports.is_empty() {
            return Ok(Vec::new());
        }
        let (answer, answered) = oneshot::channel();
        self.sender.send(Member { reports, answer }).await.map_err(|_| committer_stopped())?;
        // A dropped answer means the committer stopped (or panicked) before answering;
        // whether the reports were applied is unknown, so the provider must retry.
        answered.await.map_err(|_| committer_stopped())?
    }

    /// Webhooks waiting for the committer, not counting those in the transaction it is
    /// running.
    pub fn queued_webhooks(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }

    /// What the committer has done so far.
    pub fn counts(&self) -> IngestCounts {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        IngestCounts {
            groups: read(&self.counts.groups),
            webhooks: read(&self.counts.webhooks),
            reports: read(&self.counts.reports),
            groups_split: read(&self.counts.groups_split),
        }
    }
}

fn committer_stopped() -> StoreError {
    StoreError::Transient("the delivery-report committer stopped".into())
}

/// The task that commits queued webhooks' reports in groups; see the module doc.
pub struct ReportCommitter {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    receiver: mpsc::Receiver<Member>,
    limits: GroupLimits,
    counts: Arc<Counts>,
}

impl ReportCommitter {
    /// A committer over `store` and the queue that feeds it. Run the committer
    /// ([`ReportCommitter::run`]) and give the queue to the API
    /// ([`ReportIngest::Grouped`]).
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, limits: GroupLimits) -> (ReportQueue, ReportCommitter) {
        assert!(limits.max_group_reports > 0 && limits.max_queued_webhooks > 0, "group limits must be positive");
        let (sender, receiver) = mpsc::channel(limits.max_queued_webhooks);
        let counts = Arc::new(Counts::default());
        let queue = ReportQueue { sender, counts: counts.clone(), accounts: Arc::default() };
        (queue, ReportCommitter { store, clock, receiver, limits, counts })
    }

    /// Commits groups until every [`ReportQueue`] is dropped. Each transaction runs on
    /// tokio's blocking pool, so a slow commit holds no worker thread; the next group
    /// queues meanwhile. A panic in the store is re-raised here, so that it ends serve
    /// mode like any task's.
    pub async fn run(mut self) {
        let mut carried = None;
        while let Some(group) = self.next_group(&mut carried).await {
            self.count(&group);
            tracing::trace!(webhooks = group.len(), "committing a group of webhooks");
            let (store, now, counts) = (self.store.clone(), self.clock.now(), self.counts.clone());
            let committed = tokio::task::spawn_blocking(move || commit(store.as_ref(), now, group, &counts)).await;
            if let Err(error) = committed {
                if error.is_panic() {
                    std::panic::resume_unwind(error.into_panic());
                }
            }
        }
    }

    /// The next group: the first waiting webhook (waiting for one if none is), then as
    /// many more as are already queued and fit within the group bound. A webhook that
    /// does not fit is `carried` to head the group after.
    async fn next_group(&mut self, carried: &mut Option<Member>) -> Option<Vec<Member>> {
        let first = match carried.take() {
            Some(member) => member,
            None => self.receiver.recv().await?,
        };
        let mut size = first.reports.len();
        let mut group = vec![first];
        while size < self.limits.max_group_reports {
            let Ok(next) = self.receiver.try_recv() else { break };
            if size + next.reports.len() > self.limits.max_group_reports {
                *carried = Some(next);
                break;
            }
            size += next.reports.len();
            group.push(next);
        }
        Some(group)
    }

    fn count(&self, group: &[Member]) {
        self.counts.groups.fetch_add(1, Ordering::Relaxed);
        self.counts.webhooks.fetch_add(group.len() as u64, Ordering::Relaxed);
        let reports: usize = group.iter().map(|member| member.reports.len()).sum();
        self.counts.reports.fetch_add(reports as u64, Ordering::Relaxed);
    }
}

/// Applies `group` in one transaction and answers each member with its outcomes; if
/// that transaction fails, applies each member alone (see the module doc).
fn commit(store: &dyn Store, now: Timestamp, group: Vec<Member>, counts: &Counts) {
    if let [_] = group.as_slice() {
        let member = group.into_iter().next().expect("one member");
        let _ = member.answer.send(store.apply_reports(member.reports, now));
        return;
    }
    let reports: Vec<InboundReport> = group.iter().flat_map(|member| member.reports.iter().cloned()).collect();
    let expected = reports.len();
    match store.apply_reports(reports, now) {
        Ok(outcomes) if outcomes.len() == expected => {
            let mut outcomes = outcomes.into_iter();
            for member in group {
                let own = outcomes.by_ref().take(member.reports.len()).collect();
                // A webhook whose connection closed meanwhile has no one to answer; its
                // reports are committed all the same, and a retry finds them duplicates.
                let _ = member.answer.send(Ok(own));
            }
        }
        Ok(outcomes) => {
            // Only a store bug answers another number of outcomes than it was given
            // reports. Applying each member again is still correct (reports are
            // idempotent) and answers each with outcomes of its own.
            tracing::error!(reports = expected, outcomes = outcomes.len(), "a store answered a group wrongly");
            commit_one_by_one(store, now, group, counts);
        }
        Err(error) => {
            tracing::debug!(%error, members = group.len(), "a group of webhooks failed; applying each alone");
            commit_one_by_one(store, now, group, counts);
        }
    }
}

fn commit_one_by_one(store: &dyn Store, now: Timestamp, group: Vec<Member>, counts: &Counts) {
    counts.groups_split.fetch_add(1, Ordering::Relaxed);
    let mut store_down = None;
    for member in group {
        let answer = match &store_down {
            Some(error) => Err(StoreError::clone(error)),
            None => store.apply_reports(member.reports, now),
        };
        if let Err(error @ StoreError::Transient(_)) = &answer {
            store_down.get_or_insert_with(|| error.clone());
        }
        let _ = member.answer.send(answer);
    }
}
