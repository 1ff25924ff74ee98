//! The judge's messages, by (campaign, contact).
//!
//! A simulated campaign holds a million of them, so they are kept per campaign in one
//! vector sorted by contact rather than in one B-tree: the journal creates a campaign's
//! messages in contact order, so each is appended, and a B-tree filled in key order is
//! left about half full, twice the room. One created out of order is inserted in place.

use crate::observation::MessageRef;
use std::collections::BTreeMap;
use std::ops::Index;

/// Values of type `V` by message, iterated in (campaign, contact) order.
pub(crate) struct MessageTable<V> {
    campaigns: BTreeMap<u64, Vec<(MessageRef, V)>>,
}

impl<V> Default for MessageTable<V> {
    fn default() -> Self {
        MessageTable { campaigns: BTreeMap::new() }
    }
}

impl<V> MessageTable<V> {
    fn position(rows: &[(MessageRef, V)], message: &MessageRef) -> Result<usize, usize> {
        rows.binary_search_by_key(message, |(known, _)| *known)
    }

    pub(crate) fn get(&self, message: &MessageRef) -> Option<&V> {
        let rows = self.campaigns.get(&message.0)?;
        Self::position(rows, message).ok().map(|index| &rows[index].1)
    }

    pub(crate) fn get_mut(&mut self, message: &MessageRef) -> Option<&mut V> {
        let rows = self.campaigns.get_mut(&message.0)?;
        let index = Self::position(rows, message).ok()?;
        Some(&mut rows[index].1)
    }

    /// Adds `value` for `message`, or replaces the one it had. The first of a campaign
    /// makes room for `expected` of them at once, when known.
    pub(crate) fn insert(&mut self, message: MessageRef, value: V, expected: Option<u64>) {
        let rows = self.campaigns.entry(message.0).or_insert_with(|| {
            // A hint, not a promise: bounded, so a wrong one cannot take the memory.
            let room = expected.map_or(0, |expected| expected.min(1 << 24) as usize);
            Vec::with_capacity(room)
        });
        match rows.last() {
            Some((last, _)) if *last >= message => match Self::position(rows, &message) {
                Ok(index) => rows[index].1 = value,
                Err(index) => rows.insert(index, (message, value)),
            },
            _ => rows.push((message, value)),
        }
    }

    /// Every message with its value, in (campaign, contact) order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&MessageRef, &V)> {
        self.campaigns.values().flatten().map(|(message, value)| (message, value))
    }
}

impl<V> Index<&MessageRef> for MessageTable<V> {
    type Output = V;

    fn index(&self, message: &MessageRef) -> &V {
        self.get(message).unwrap_or_else(|| panic!("judge bug: no message {message:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_in_and_out_of_order_are_found_and_listed_in_key_order() {
        let mut table = MessageTable::default();
        for (message, value) in [((2, 1), "a"), ((1, 5), "b"), ((1, 7), "c"), ((1, 6), "d"), ((2, 0), "e")] {
            table.insert(message, value, Some(3));
        }
        table.insert((1, 7), "C", None);
        let listed: Vec<_> = table.iter().map(|(message, value)| (*message, *value)).collect();
        assert_eq!(listed, [((1, 5), "b"), ((1, 6), "d"), ((1, 7), "C"), ((2, 0), "e"), ((2, 1), "a")]);
        assert_eq!((table[&(2, 0)], table.get(&(3, 0)), table.get(&(1, 8))), ("e", None, None));
        *table.get_mut(&(1, 5)).unwrap() = "B";
        assert_eq!(table.get(&(1, 5)), Some(&"B"));
    }
}
