-- smsim schema, version 1.
--
-- Money is INTEGER credits; times are INTEGER milliseconds since the Unix epoch.
-- A campaign's counters are kept in the same transaction as every message status change
-- and must always equal a count of its messages by status.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO meta (key, value) VALUES ('journal_seq', 0), ('fencing_token', 0), ('parked_seq', 0);

CREATE TABLE tenants (
    id               INTEGER PRIMARY KEY,
    name             TEXT NOT NULL,
    api_key_hash     TEXT NOT NULL,
    balance          INTEGER NOT NULL,
    reserved         INTEGER NOT NULL CHECK (reserved >= 0),
    charged          INTEGER NOT NULL,
    funded           INTEGER NOT NULL,
    rate_limit_per_s INTEGER,
    CHECK (reserved <= balance)
);
CREATE INDEX tenants_by_key ON tenants (api_key_hash);

CREATE TABLE traffic_accounts (
    id                     INTEGER PRIMARY KEY,
    owner                  INTEGER REFERENCES tenants (id),
    name                   TEXT NOT NULL,
    provider               TEXT NOT NULL,
    base_url               TEXT NOT NULL,
    credentials            TEXT NOT NULL,
    sender                 TEXT NOT NULL,
    rate_limit_per_s       INTEGER,
    price_per_segment      INTEGER NOT NULL,
    idempotent_submissions INTEGER NOT NULL
);

CREATE TABLE contacts (
    id         INTEGER PRIMARY KEY,
    tenant_id  INTEGER NOT NULL REFERENCES tenants (id),
    phone      TEXT NOT NULL,
    attributes TEXT NOT NULL,
    opted_out  INTEGER NOT NULL,
    UNIQUE (tenant_id, phone)
);

CREATE TABLE campaigns (
    id                 INTEGER PRIMARY KEY,
    tenant_id          INTEGER NOT NULL REFERENCES tenants (id),
    name               TEXT NOT NULL,
    body_template      TEXT NOT NULL,
    sender             TEXT,
    audience           TEXT NOT NULL,
    traffic_account_id INTEGER NOT NULL REFERENCES traffic_accounts (id),
    status             TEXT NOT NULL,
    pause_reason       TEXT,
    schedule_at        INTEGER,
    n_queued           INTEGER NOT NULL DEFAULT 0,
    n_submitting       INTEGER NOT NULL DEFAULT 0,
    n_accepted         INTEGER NOT NULL DEFAULT 0,
    n_delivered        INTEGER NOT NULL DEFAULT 0,
    n_undelivered      INTEGER NOT NULL DEFAULT 0,
    n_expired          INTEGER NOT NULL DEFAULT 0,
    n_rejected         INTEGER NOT NULL DEFAULT 0,
    n_failed           INTEGER NOT NULL DEFAULT 0,
    n_unknown          INTEGER NOT NULL DEFAULT 0,
    n_skipped          INTEGER NOT NULL DEFAULT 0,
    n_cancelled        INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    enqueued_at        INTEGER,
    completed_at       INTEGER
);
CREATE INDEX campaigns_by_tenant ON campaigns (tenant_id);
CREATE INDEX campaigns_by_status ON campaigns (status);

CREATE TABLE messages (
    campaign_id         INTEGER NOT NULL REFERENCES campaigns (id),
    contact_id          INTEGER NOT NULL,
    tenant_id           INTEGER NOT NULL,
    traffic_account_id  INTEGER NOT NULL,
    destination         TEXT NOT NULL,
    sender              TEXT NOT NULL,
    body                TEXT NOT NULL,
    encoding            TEXT NOT NULL,
    segments            INTEGER NOT NULL,
    cost                INTEGER NOT NULL,
    status              TEXT NOT NULL,
    attempts            INTEGER NOT NULL,
    next_attempt_at     INTEGER NOT NULL,
    lease_worker        TEXT,
    lease_expires_at    INTEGER,
    lease_token         INTEGER,
    provider_message_id TEXT,
    bulk_id             TEXT,
    error_code          TEXT,
    error_retryable     INTEGER,
    error_detail        TEXT,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, contact_id)
) WITHOUT ROWID;
CREATE INDEX messages_claimable ON messages (status, traffic_account_id, next_attempt_at);
CREATE INDEX messages_by_provider_id ON messages (traffic_account_id, provider_message_id) WHERE provider_message_id IS NOT NULL;
CREATE INDEX messages_by_lease ON messages (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
CREATE INDEX messages_by_token ON messages (lease_token) WHERE lease_token IS NOT NULL;
CREATE INDEX messages_by_tenant ON messages (tenant_id, status);
CREATE INDEX messages_unknown ON messages (status, updated_at);

CREATE TABLE parked_reports (
    seq                 INTEGER PRIMARY KEY,
    traffic_account_id  INTEGER NOT NULL,
    provider_message_id TEXT NOT NULL,
    report              TEXT NOT NULL,
    received_at         INTEGER NOT NULL
);
CREATE INDEX parked_by_provider_id ON parked_reports (traffic_account_id, provider_message_id);

CREATE TABLE rate_buckets (
    kind         TEXT NOT NULL,
    id           INTEGER NOT NULL,
    milli_tokens INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;

CREATE TABLE idempotency_keys (
    tenant_id    INTEGER NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    receipt      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, key)
) WITHOUT ROWID;

CREATE TABLE journal (
    seq   INTEGER PRIMARY KEY,
    entry TEXT NOT NULL
);
