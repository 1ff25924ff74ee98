-- smsim schema, version 7: the queue indexed once, by account.
--
-- Versions 2 to 6 indexed every queued message three times: by due time (the first due
-- message on any account), by account and due time (a claim's walk), and by tenant and
-- due time (a tenant's queue figures). Each enqueue inserted three entries per message and
-- each claim deleted three. The claim's walk is the one hot reader, and it needs the
-- account's order; the other two are answered from the same index now:
--
-- * the first due message on any account is the first of each account that has a sending
--   campaign (a short list, read through `campaigns_by_status`), the earliest of them;
-- * a tenant's queued and due messages are counted along the account index, whose entries
--   now end with the tenant, so the count reads no message row — a read of the whole
--   queue, for a figure asked for by hand, instead of an index written on every enqueue.
--
-- Measured with callgrind (`benches/examples/store_phases.rs`, 5 000 messages): the
-- tenant index alone cost 5% of an enqueue and 11% of a claim.

DROP INDEX messages_queued;
DROP INDEX messages_queued_by_tenant;
DROP INDEX messages_queued_by_account;
CREATE INDEX messages_queued_by_account ON messages (traffic_account_id, next_attempt_at, campaign_id, contact_id, tenant_id)
    WHERE status = 'queued';
