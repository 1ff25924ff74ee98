-- smsim schema on PostgreSQL, version 1: the SQLite schema at its version 2, in
-- PostgreSQL's types.
--
-- Money is BIGINT credits; times are BIGINT milliseconds since the Unix epoch. A
-- campaign's counters are kept in the same transaction as every message status change
-- and must always equal a count of its messages by status. Ids are given out by the
-- store (the largest plus one, under the store's writer lock), as SQLite gives out rowids,
-- so both backends number records alike and a rolled-back insert leaves no gap.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

INSERT INTO meta (key, value)
VALUES ('journal_seq', 0), ('fencing_token', 0), ('parked_seq', 0), ('provider_id_assigned', 0);

CREATE TABLE tenants (
    id               BIGINT PRIMARY KEY,
    name             TEXT NOT NULL,
    api_key_hash     TEXT NOT NULL,
    balance          BIGINT NOT NULL,
    reserved         BIGINT NOT NULL CHECK (reserved >= 0),
    charged          BIGINT NOT NULL,
    funded           BIGINT NOT NULL,
    rate_limit_per_s BIGINT,
    CHECK (reserved <= balance)
);
CREATE INDEX tenants_by_key ON tenants (api_key_hash);

CREATE TABLE traffic_accounts (
    id                     BIGINT PRIMARY KEY,
    owner                  BIGINT REFERENCES tenants (id),
    name                   TEXT NOT NULL,
    provider               TEXT NOT NULL,
    base_url               TEXT NOT NULL,
    credentials            TEXT NOT NULL,
    sender                 TEXT NOT NULL,
    rate_limit_per_s       BIGINT,
    price_per_segment      BIGINT NOT NULL,
    idempotent_submissions BOOLEAN NOT NULL
);

CREATE TABLE contacts (
    id         BIGINT PRIMARY KEY,
    tenant_id  BIGINT NOT NULL REFERENCES tenants (id),
    phone      TEXT NOT NULL,
    attributes TEXT NOT NULL,
    opted_out  BOOLEAN NOT NULL,
    UNIQUE (tenant_id, phone)
);

CREATE TABLE campaigns (
    id                 BIGINT PRIMARY KEY,
    tenant_id          BIGINT NOT NULL REFERENCES tenants (id),
    name               TEXT NOT NULL,
    body_template      TEXT NOT NULL,
    sender             TEXT,
    audience           TEXT NOT NULL,
    traffic_account_id BIGINT NOT NULL REFERENCES traffic_accounts (id),
    status             TEXT NOT NULL,
    pause_reason       TEXT,
    schedule_at        BIGINT,
    n_queued           BIGINT NOT NULL DEFAULT 0,
    n_submitting       BIGINT NOT NULL DEFAULT 0,
    n_accepted         BIGINT NOT NULL DEFAULT 0,
    n_delivered        BIGINT NOT NULL DEFAULT 0,
    n_undelivered      BIGINT NOT NULL DEFAULT 0,
    n_expired          BIGINT NOT NULL DEFAULT 0,
    n_rejected         BIGINT NOT NULL DEFAULT 0,
    n_failed           BIGINT NOT NULL DEFAULT 0,
    n_unknown          BIGINT NOT NULL DEFAULT 0,
    n_skipped          BIGINT NOT NULL DEFAULT 0,
    n_cancelled        BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL,
    enqueued_at        BIGINT,
    completed_at       BIGINT
);
CREATE INDEX campaigns_by_tenant ON campaigns (tenant_id);
CREATE INDEX campaigns_by_status ON campaigns (status);

CREATE TABLE messages (
    campaign_id          BIGINT NOT NULL REFERENCES campaigns (id),
    contact_id           BIGINT NOT NULL,
    tenant_id            BIGINT NOT NULL,
    traffic_account_id   BIGINT NOT NULL,
    destination          TEXT NOT NULL,
    sender               TEXT NOT NULL,
    body                 TEXT NOT NULL,
    encoding             TEXT NOT NULL,
    segments             BIGINT NOT NULL,
    cost                 BIGINT NOT NULL,
    status               TEXT NOT NULL,
    attempts             BIGINT NOT NULL,
    next_attempt_at      BIGINT NOT NULL,
    lease_worker         TEXT,
    lease_expires_at     BIGINT,
    lease_token          BIGINT,
    provider_message_id  TEXT,
    bulk_id              TEXT,
    error_code           TEXT,
    error_retryable      BOOLEAN,
    error_detail         TEXT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    provider_id_assigned BIGINT,
    PRIMARY KEY (campaign_id, contact_id)
);
-- Each message index is partial on the one status its readers ask for (as SQLite's
-- version 2), so a status change between two other statuses touches none of them.
CREATE INDEX messages_queued ON messages (next_attempt_at, campaign_id, contact_id) WHERE status = 'queued';
CREATE INDEX messages_queued_by_account ON messages (traffic_account_id, next_attempt_at, campaign_id, contact_id)
    WHERE status = 'queued';
CREATE INDEX messages_submitting_by_expiry ON messages (lease_expires_at) WHERE status = 'submitting';
CREATE INDEX messages_submitting_by_token ON messages (lease_token) WHERE status = 'submitting';
CREATE INDEX messages_unknown ON messages (updated_at, campaign_id, contact_id) WHERE status = 'unknown';
CREATE INDEX messages_by_provider_id ON messages (traffic_account_id, provider_message_id, provider_id_assigned)
    WHERE provider_message_id IS NOT NULL;
CREATE INDEX messages_by_tenant ON messages (tenant_id, status);

CREATE TABLE parked_reports (
    seq                 BIGINT PRIMARY KEY,
    traffic_account_id  BIGINT NOT NULL,
    provider_message_id TEXT NOT NULL,
    report              TEXT NOT NULL,
    received_at         BIGINT NOT NULL
);
CREATE INDEX parked_by_provider_id ON parked_reports (traffic_account_id, provider_message_id);

CREATE TABLE rate_buckets (
    kind         TEXT NOT NULL,
    id           BIGINT NOT NULL,
    milli_tokens BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);

CREATE TABLE idempotency_keys (
    tenant_id    BIGINT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    receipt      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

CREATE TABLE journal (
    seq   BIGINT PRIMARY KEY,
    entry TEXT NOT NULL
);
