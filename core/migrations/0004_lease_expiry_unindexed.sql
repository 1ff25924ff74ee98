-- smsim schema, version 4: a claim writes one lease index entry per message, not two.
--
-- Version 2 indexed the messages in flight twice, by lease token (renewal, the tenant's
-- in-flight count) and by lease expiry (the reaper), so each claim inserted two index
-- entries per message and each acceptance deleted both. The set in flight is bounded by
-- the claims out (workers times the claim batch), so the reaper reads it whole through
-- the token index and keeps the expired, instead of keeping an index of its own on the hot
-- path. A lease renewal, which moves every expiry of its claim, now touches no index.

DROP INDEX messages_submitting_by_expiry;
