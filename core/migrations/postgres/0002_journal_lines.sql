-- smsim's PostgreSQL schema, version 2: the journal as one row per write, its entries as
-- lines — the layout of SQLite's schema 5 (see `core/src/store/journal_lines.rs`).
--
-- Version 1 inserted each entry as a row of its own, one round trip per status change on
-- top of the change itself; the entries a transaction writes now go in as one row at its
-- end. The entries already written are carried over, one row each; ids become their
-- numbers (`cmp_7` is 7, `msg_7_42` is campaign 7, contact 42).

CREATE TABLE journal_lines (
    first_seq BIGINT PRIMARY KEY,
    entries   TEXT NOT NULL
);

INSERT INTO journal_lines (first_seq, entries)
SELECT seq,
       concat_ws(' ',
           seq,
           e ->> 'at',
           CASE WHEN e ? 'message' THEN split_part(substr(e ->> 'message', 5), '_', 1) ELSE substr(e ->> 'campaign', 5) END,
           CASE WHEN e ? 'message' THEN split_part(substr(e ->> 'message', 5), '_', 2) ELSE '-' END,
           coalesce(e ->> 'from', '-'),
           e ->> 'to',
           coalesce(e ->> 'cause', '-'))
FROM (SELECT seq, entry::jsonb AS e FROM journal) AS old;

DROP TABLE journal;
ALTER TABLE journal_lines RENAME TO journal;
