-- smsim's PostgreSQL schema, version 3: the message indexes SQLite's schemas 3, 4 and 7
-- dropped, dropped here too.
--
-- On PostgreSQL a change of a message's status is never a HOT update (the status is in
-- every partial index's predicate), so it writes a new entry in every full index and in
-- every partial index the new row belongs to. Version 2 kept three indexes that only
-- reads off the hot path used, each written by every enqueue, claim or status change:
--
-- * `messages_by_tenant (tenant_id, status)`, a full index, an entry per change of every
--   message: a tenant's recount reads its campaigns' messages by the primary key's
--   campaign prefix instead, and a tenant's queue figures count along the partial index of
--   each status (the messages in flight, the unknown, the queue: short lists);
-- * `messages_queued (next_attempt_at, …)`, the queue by due time alone: the first due
--   message on any account is the earliest of each sending campaign's account's first,
--   read along `messages_queued_by_account`;
-- * `messages_submitting_by_expiry`: the reaper reads the messages in flight (bounded by
--   the claims out) through `messages_submitting_by_token`.
--
-- `IF EXISTS`: a database taken back to an earlier version by hand (as a test of version
-- 2's journal migration does) may have lost them already.

DROP INDEX IF EXISTS messages_by_tenant;
DROP INDEX IF EXISTS messages_queued;
DROP INDEX IF EXISTS messages_submitting_by_expiry;
