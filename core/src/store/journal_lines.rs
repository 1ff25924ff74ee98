//! The journal as the SQL stores keep it (SQLite schema 5, PostgreSQL schema 2): the
//! entries one transaction writes are one row, keyed by the first entry's sequence
//! number, one line per entry:
//!
//! ```text
//! seq at campaign contact from to cause
//! ```
//!
//! numbers in decimal, statuses and causes by the names the stores use everywhere else,
//! `-` for what an entry has not (a created message has no `from`; a campaign's own
//! change has no contact and no cause). A row per entry (as JSON, or as typed columns)
//! cost about a tenth of each message move on SQLite and one more round trip per move on
//! PostgreSQL; a row per transaction costs one insert however many moves it holds.

use super::{JournalEntry, StoreError, StoreResult};
use crate::domain::{CampaignStatus, MessageStatus, TransitionCause};
use crate::{CampaignId, ContactId, MessageId, Timestamp};
use std::fmt::Write as _;

/// About the length of one line, to size a row's text once.
const LINE_BYTES: usize = 48;

/// The row that holds `entries`: its key (the least sequence number) and its text. `None`
/// for no entries, which need no row.
pub(super) fn encode(entries: &[JournalEntry]) -> Option<(u64, String)> {
    let first_seq = entries.iter().map(JournalEntry::seq).min()?;
    let mut lines = String::with_capacity(entries.len() * LINE_BYTES);
    for (index, entry) in entries.iter().enumerate() {
        if index > 0 {
            lines.push('\n');
        }
        write_line(&mut lines, entry);
    }
    Some((first_seq, lines))
}

/// The entries of `rows` (each its key and text), in sequence order; an unreadable line
/// is an error that names its row and line.
pub(super) fn decode<'a>(rows: impl IntoIterator<Item = (u64, &'a str)>) -> StoreResult<Vec<JournalEntry>> {
    let mut entries = Vec::new();
    for (first_seq, lines) in rows {
        for (number, line) in lines.split('\n').enumerate() {
            let entry = read_line(line).map_err(|why| {
                StoreError::Backend(format!("journal row {first_seq}, line {}: {why}: {line:?}", number + 1))
            })?;
            entries.push(entry);
        }
    }
    // One row's entries are in order and rows follow their first entries; the sort keeps
    // the journal's order even where two rows' entries interleave.
    entries.sort_by_key(JournalEntry::seq);
    Ok(entries)
}

/// Appends `entry` as one line.
fn write_line(line: &mut String, entry: &JournalEntry) {
    let (seq, at, campaign, contact, from, to, cause) = match *entry {
        JournalEntry::Message { seq, at, message, from, to, cause } => (
            seq,
            at,
            message.campaign,
            Some(message.contact.0),
            from.map_or("-", MessageStatus::as_str),
            to.as_str(),
            cause.as_str(),
        ),
        JournalEntry::Campaign { seq, at, campaign, from, to } => {
            (seq, at, campaign, None, from.as_str(), to.as_str(), "-")
        }
    };
    let _ = write!(line, "{seq} {} {} ", at.0, campaign.0);
    let _ = match contact {
        Some(contact) => write!(line, "{contact}"),
        None => write!(line, "-"),
    };
    let _ = write!(line, " {from} {to} {cause}");
}

/// The entry one line holds, or what in it is unreadable.
fn read_line(line: &str) -> Result<JournalEntry, String> {
    let fields: Vec<&str> = line.split(' ').collect();
    let [seq, at, campaign, contact, from, to, cause] = fields[..] else {
        return Err(format!("{} fields where 7 belong", fields.len()));
    };
    let number = |what: &str, text: &str| text.parse::<u64>().map_err(|_| format!("{what} {text:?} is not a number"));
    let message_status =
        |text: &str| MessageStatus::parse(text).ok_or_else(|| format!("unknown message status {text:?}"));
    let campaign_status =
        |text: &str| CampaignStatus::parse(text).ok_or_else(|| format!("unknown campaign status {text:?}"));
    let (seq, at, campaign) =
        (number("seq", seq)?, Timestamp(number("at", at)?), CampaignId(number("campaign", campaign)?));
    match (contact, cause) {
        ("-", "-") => {
            Ok(JournalEntry::Campaign { seq, at, campaign, from: campaign_status(from)?, to: campaign_status(to)? })
        }
        ("-", _) | (_, "-") => Err("a contact without a cause, or a cause without a contact".into()),
        (contact, cause) => Ok(JournalEntry::Message {
            seq,
            at,
            message: MessageId::new(campaign, ContactId(number("contact", contact)?)),
            from: if from == "-" { None } else { Some(message_status(from)?) },
            to: message_status(to)?,
            cause: TransitionCause::parse(cause).ok_or_else(|| format!("unknown cause {cause:?}"))?,
        }),
    }
}

/// Entries of every shape, numbered 1 to 3: a campaign's change, a message created, a
/// message retried by an operator (for the stores' migration tests too).
#[cfg(test)]
pub(super) fn sample_entries() -> Vec<JournalEntry> {
    vec![
        JournalEntry::Campaign {
            seq: 1,
            at: Timestamp(1_000),
            campaign: CampaignId(7),
            from: CampaignStatus::Draft,
            to: CampaignStatus::Sending,
        },
        JournalEntry::Message {
            seq: 2,
            at: Timestamp(1_001),
            message: MessageId::new(CampaignId(7), ContactId(42)),
            from: None,
            to: MessageStatus::Queued,
            cause: TransitionCause::Engine,
        },
        JournalEntry::Message {
            seq: 3,
            at: Timestamp(1_700_000_000_123),
            message: MessageId::new(CampaignId(12_345), ContactId(9_876_543)),
            from: Some(MessageStatus::Failed),
            to: MessageStatus::Queued,
            cause: TransitionCause::OperatorRetry,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<JournalEntry> {
        let mut entries = sample_entries();
        // The largest numbers a line holds.
        entries.push(JournalEntry::Message {
            seq: 4,
            at: Timestamp(u64::MAX),
            message: MessageId::new(CampaignId(u64::MAX), ContactId(u64::MAX)),
            from: Some(MessageStatus::Accepted),
            to: MessageStatus::Delivered,
            cause: TransitionCause::Engine,
        });
        entries
    }

    #[test]
    fn a_row_reads_back_as_the_entries_it_was_given() {
        let (first_seq, lines) = encode(&entries()).expect("a row");
        assert_eq!(first_seq, 1);
        assert_eq!(lines.lines().next(), Some("1 1000 7 - draft sending -"));
        assert_eq!(decode([(first_seq, lines.as_str())]).expect("readable"), entries());
        assert_eq!(encode(&[]), None, "no entries, no row");
    }

    #[test]
    fn rows_are_merged_in_sequence_order() {
        let all = entries();
        let (late_key, late) = encode(&all[2..]).expect("a row");
        let (early_key, early) = encode(&all[..2]).expect("a row");
        assert_eq!(decode([(late_key, late.as_str()), (early_key, early.as_str())]).expect("readable"), all);
    }

    #[test]
    fn an_unreadable_line_names_its_row_and_line() {
        for (text, why) in [
            ("8 0 1 2 - queued engine\n9 0 1 2 queued sent-ish engine", "line 2: unknown message status \"sent-ish\""),
            ("8 0 1 2 - queued", "line 1: 6 fields where 7 belong"),
            ("8 0 1 - - queued engine", "line 1: a contact without a cause"),
            ("8 0 x 2 - queued engine", "line 1: campaign \"x\" is not a number"),
            ("8 0 1 - draft finished -", "line 1: unknown campaign status \"finished\""),
            ("8 0 1 2 - queued operator", "line 1: unknown cause \"operator\""),
        ] {
            let refused = decode([(8, text)]).expect_err(text);
            assert!(
                matches!(&refused, StoreError::Backend(message) if message.contains(&format!("journal row 8, {why}"))),
                "{text}: {refused:?}"
            );
        }
    }
}
