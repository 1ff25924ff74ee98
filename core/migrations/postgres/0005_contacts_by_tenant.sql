-- Enqueue and preview read a tenant's contacts a page at a time, in id order.
CREATE INDEX IF NOT EXISTS contacts_by_tenant ON contacts (tenant_id, id);
