-- smsim schema, version 2: message indexes that only hold the messages they serve, and
-- the order in which provider ids were given out.
--
-- Version 1 indexed every message by status, lease and provider id, so every status
-- change rewrote several index entries — a delivery report on an accepted message moved
-- it between regions of three indexes. Each index here is partial on the one status its
-- readers ask for, so a message enters an index when it reaches that status and leaves
-- it when it moves on, and a move between two other statuses touches none of them.
--
-- Every entry of an index on a WITHOUT ROWID table ends with the primary key
-- (campaign_id, contact_id), so each index below also yields its rows in (…, id) order,
-- the order the store semantics ask for, without a sort.

DROP INDEX messages_claimable;
DROP INDEX messages_by_lease;
DROP INDEX messages_by_token;
DROP INDEX messages_unknown;

-- Claim: the oldest due queued message overall, and an account's due queued messages in
-- (next_attempt_at, id) order, read only as far as the claim takes.
CREATE INDEX messages_queued ON messages (next_attempt_at) WHERE status = 'queued';
CREATE INDEX messages_queued_by_account ON messages (traffic_account_id, next_attempt_at) WHERE status = 'queued';

-- The reaper (expired leases) and lease renewal (by fencing token).
CREATE INDEX messages_submitting_by_expiry ON messages (lease_expires_at) WHERE status = 'submitting';
CREATE INDEX messages_submitting_by_token ON messages (lease_token) WHERE status = 'submitting';

-- Reconciliation: unknown messages, oldest first.
CREATE INDEX messages_unknown ON messages (updated_at) WHERE status = 'unknown';

-- A delivery report names its message by (account, provider id). Providers give each id
-- once, but if one ever came back twice the report goes to the message that received it
-- last, so the store counts assignments (messages accepted before this version keep NULL,
-- which sorts as the oldest).
ALTER TABLE messages ADD COLUMN provider_id_assigned INTEGER;
INSERT INTO meta (key, value) VALUES ('provider_id_assigned', 0);
DROP INDEX messages_by_provider_id;
CREATE INDEX messages_by_provider_id ON messages (traffic_account_id, provider_message_id, provider_id_assigned)
    WHERE provider_message_id IS NOT NULL;
