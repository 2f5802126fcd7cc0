-- The change feed (events API and webhooks). outbox_heads holds each tenant's last sequence: a writer
-- takes the next numbers by updating its row, so numbers are assigned in commit order and never skip.
-- pruned_seq is the highest sequence retention has removed: a cursor below it has lost events (410).
CREATE TABLE outbox_heads (
    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
    last_seq BIGINT NOT NULL DEFAULT 0,
    pruned_seq BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE outbox (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    source TEXT NOT NULL,
    client TEXT,
    data JSONB NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX outbox_occurred ON outbox(tenant_id, occurred_at);

CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    events JSONB NOT NULL DEFAULT '[]',
    description TEXT NOT NULL DEFAULT '',
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    secret TEXT NOT NULL,
    cursor_seq BIGINT NOT NULL DEFAULT 0,
    failing BOOLEAN NOT NULL DEFAULT FALSE,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints(tenant_id, created);

CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    event_seq BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_status INTEGER,
    last_error TEXT,
    next_attempt_at TEXT NOT NULL,
    lease_until TEXT,
    lease_token TEXT,
    created TEXT NOT NULL,
    completed_at TEXT,
    UNIQUE (endpoint_id, event_seq)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries(endpoint_id, status, event_seq);
