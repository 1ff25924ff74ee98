-- smsim schema, version 5: the journal as one row per write, its entries as lines.
--
-- Versions 1 to 4 inserted each journal entry as a row of its own holding one JSON text.
-- Every move of every message writes an entry, so a claim of 200 messages inserted 200
-- journal rows beside its 200 message updates, and the row inserts cost about a tenth of
-- each move (callgrind, `benches/examples/store_phases.rs`; the same entries as rows of
-- seven columns cost nearly as much as the JSON). Here the entries a transaction writes go
-- in as one row, keyed by the first entry's sequence number, one line per entry:
--
--     seq at campaign contact from to cause
--
-- numbers in decimal, statuses and causes by the names the store uses everywhere else,
-- `-` for what an entry has not (a created message has no `from`; a campaign's own change
-- has no contact and no cause). The entries already written are carried over, one row
-- each; ids become their numbers (`cmp_7` is 7, `msg_7_42` is campaign 7, contact 42).

CREATE TABLE journal_lines (
    first_seq INTEGER PRIMARY KEY,
    entries   TEXT NOT NULL
);

INSERT INTO journal_lines (first_seq, entries)
SELECT seq,
       seq || ' ' || json_extract(entry, '$.at') || ' ' ||
       CASE WHEN message IS NULL
            THEN CAST(substr(json_extract(entry, '$.campaign'), 5) AS INTEGER) || ' -'
            ELSE CAST(substr(message, 5, instr(substr(message, 5), '_') - 1) AS INTEGER) || ' ' ||
                 CAST(substr(message, 5 + instr(substr(message, 5), '_')) AS INTEGER)
       END || ' ' ||
       coalesce(json_extract(entry, '$.from'), '-') || ' ' ||
       json_extract(entry, '$.to') || ' ' ||
       coalesce(json_extract(entry, '$.cause'), '-')
FROM (SELECT seq, entry, json_extract(entry, '$.message') AS message FROM journal);

DROP TABLE journal;
ALTER TABLE journal_lines RENAME TO journal;
