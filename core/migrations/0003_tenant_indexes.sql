-- smsim schema, version 3: no message index that every move rewrites.
--
-- Version 2 still indexed every message by (tenant_id, status), so each move of each
-- message — its claim, its acceptance, every delivery report — deleted one entry of that
-- index and inserted another: two B-tree writes per move, on the hot path, for the sake
-- of one tenant's queue statistics and ledger recount. Those readers are served here
-- without it:
--
-- * a tenant's queued messages by a partial index that a message enters at enqueue and
--   leaves when claimed, as it does the two queue indexes of version 2;
-- * a tenant's unknown messages by a partial index on a status that is rare;
-- * a tenant's messages in flight by the lease-token index, which now carries the tenant
--   (an entry the claim writes anyway; the in-flight set is bounded by the claims out);
-- * a tenant's messages for the ledger recount through its campaigns, whose messages the
--   primary key (campaign_id, contact_id) reads by campaign.

DROP INDEX messages_by_tenant;

CREATE INDEX messages_queued_by_tenant ON messages (tenant_id, next_attempt_at) WHERE status = 'queued';
CREATE INDEX messages_unknown_by_tenant ON messages (tenant_id) WHERE status = 'unknown';

DROP INDEX messages_submitting_by_token;
CREATE INDEX messages_submitting_by_token ON messages (lease_token, tenant_id) WHERE status = 'submitting';
