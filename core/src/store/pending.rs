//! The additive writes of an SQL store's transaction, summed in memory instead of one
//! statement each (used by the SQLite and the PostgreSQL store alike).
//!
//! A batch of 200 moves would otherwise run 200 updates of the same campaign row, the
//! same tenant row and the same two `meta` rows — on SQLite 200 statements, on PostgreSQL
//! 200 round trips each. Each of these is a sum (or, for `meta`, a counter this
//! transaction alone advances: both stores serialize writers, SQLite by its one writer,
//! PostgreSQL by the store's advisory lock), so writing the total once gives the same
//! rows, and nothing outside the transaction can see the difference. A store writes what
//! [`Pending::take_writes`] hands it before anything reads those rows back and before the
//! commit, so a transaction reads its own writes.

use super::{JournalEntry, StoreResult};
use crate::domain::ledger::LedgerDelta;
use crate::domain::MessageStatus;
use crate::{CampaignId, TenantId, TrafficAccountId};
use std::collections::BTreeMap;

/// What one transaction owes the database, besides the rows it writes at once.
#[derive(Default)]
pub(super) struct Pending {
    /// `meta` counters read in this transaction: key, last value taken, whether advanced
    /// since last written.
    meta: Vec<(&'static str, u64, bool)>,
    /// Campaign counter shifts by (campaign, the status counted).
    counters: BTreeMap<(CampaignId, MessageStatus), i64>,
    /// Ledger deltas by tenant.
    ledger: BTreeMap<TenantId, LedgerDelta>,
    /// Whether each account met so far has parked reports (an acceptance looks for
    /// reports parked under its provider id only when its account has any).
    parked: BTreeMap<TrafficAccountId, bool>,
    /// Journal entries not yet inserted: nothing reads the journal inside a transaction
    /// that writes it, so they go in together, as one row.
    journal: Vec<JournalEntry>,
}

/// The sums to write, each once: `meta` values to set, campaign counters to shift and
/// ledger deltas to add, in key order, none of them zero.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Writes {
    pub meta: Vec<(&'static str, u64)>,
    pub counters: Vec<((CampaignId, MessageStatus), i64)>,
    pub ledger: Vec<(TenantId, LedgerDelta)>,
}

impl Pending {
    /// Takes `count` consecutive values of the counter `key` and returns the first; the
    /// counter's stored value is read with `read` the first time this transaction asks.
    pub fn take_meta(
        &mut self,
        key: &'static str,
        count: u64,
        read: impl FnOnce() -> StoreResult<u64>,
    ) -> StoreResult<u64> {
        let index = match self.meta.iter().position(|(cached, _, _)| *cached == key) {
            Some(index) => index,
            None => {
                self.meta.push((key, read()?, false));
                self.meta.len() - 1
            }
        };
        let (_, last, advanced) = &mut self.meta[index];
        *last += count;
        *advanced = true;
        Ok(*last + 1 - count)
    }

    /// One message of `campaign` leaves the counter of `from` for that of `to`.
    pub fn shift(&mut self, campaign: CampaignId, from: MessageStatus, to: MessageStatus) {
        *self.counters.entry((campaign, from)).or_default() -= 1;
        *self.counters.entry((campaign, to)).or_default() += 1;
    }

    /// Adds one to `campaign`'s counter of `status`.
    pub fn count(&mut self, campaign: CampaignId, status: MessageStatus) {
        *self.counters.entry((campaign, status)).or_default() += 1;
    }

    /// Adds `delta` to `tenant`'s books.
    pub fn add_ledger(&mut self, tenant: TenantId, delta: LedgerDelta) {
        let sum = self.ledger.entry(tenant).or_default();
        sum.balance += delta.balance;
        sum.reserved += delta.reserved;
        sum.charged += delta.charged;
    }

    /// Whether `account` has parked reports, if this transaction knows.
    pub fn parked(&self, account: TrafficAccountId) -> Option<bool> {
        self.parked.get(&account).copied()
    }

    /// Remembers whether `account` has parked reports.
    pub fn set_parked(&mut self, account: TrafficAccountId, any: bool) {
        self.parked.insert(account, any);
    }

    /// Queues a journal entry.
    pub fn journal(&mut self, entry: JournalEntry) {
        self.journal.push(entry);
    }

    /// The journal entries queued so far, taken.
    pub fn take_journal(&mut self) -> Vec<JournalEntry> {
        std::mem::take(&mut self.journal)
    }

    /// The sums to write now; afterwards nothing is owed, and the `meta` values stay
    /// known for the rest of the transaction.
    pub fn take_writes(&mut self) -> Writes {
        let meta = self
            .meta
            .iter_mut()
            .filter(|(_, _, advanced)| *advanced)
            .map(|(key, value, advanced)| {
                *advanced = false;
                (*key, *value)
            })
            .collect();
        let counters = std::mem::take(&mut self.counters).into_iter().filter(|(_, shift)| *shift != 0).collect();
        let ledger =
            std::mem::take(&mut self.ledger).into_iter().filter(|(_, delta)| *delta != LedgerDelta::NONE).collect();
        Writes { meta, counters, ledger }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Credits;

    #[test]
    fn meta_is_read_once_and_written_once_per_advance() {
        let mut pending = Pending::default();
        let mut reads = 0;
        let mut read = || {
            reads += 1;
            Ok(10)
        };
        assert_eq!(pending.take_meta("journal_seq", 1, &mut read).unwrap(), 11);
        assert_eq!(pending.take_meta("journal_seq", 3, &mut read).unwrap(), 12);
        assert_eq!(reads, 1, "the stored value is read the first time only");
        assert_eq!(pending.take_writes().meta, [("journal_seq", 14)]);
        assert!(pending.take_writes().meta.is_empty(), "written once");
        assert_eq!(pending.take_meta("journal_seq", 1, || panic!("known already")).unwrap(), 15);
        assert_eq!(pending.take_writes().meta, [("journal_seq", 15)]);
    }

    #[test]
    fn counters_and_ledger_are_summed_and_zero_sums_are_left_out() {
        let mut pending = Pending::default();
        let (one, two) = (CampaignId(1), CampaignId(2));
        use MessageStatus::{Accepted, Delivered, Queued, Submitting};
        pending.shift(one, Queued, Submitting);
        pending.shift(one, Queued, Submitting);
        pending.shift(one, Submitting, Accepted);
        pending.count(two, Delivered);
        let reserve = LedgerDelta { balance: Credits(-5), reserved: Credits(5), charged: Credits::ZERO };
        let release = LedgerDelta { balance: Credits(5), reserved: Credits(-5), charged: Credits::ZERO };
        pending.add_ledger(TenantId(1), reserve);
        pending.add_ledger(TenantId(1), release);
        pending.add_ledger(TenantId(2), reserve);
        let writes = pending.take_writes();
        assert_eq!(
            writes.counters,
            [((one, Queued), -2), ((one, Submitting), 1), ((one, Accepted), 1), ((two, Delivered), 1)]
        );
        assert_eq!(writes.ledger, [(TenantId(2), reserve)], "tenant 1's changes cancel out");
        assert_eq!(pending.take_writes(), Writes::default(), "nothing is owed twice");
    }
}
