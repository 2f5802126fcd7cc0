-- Per-tenant custom schema extensions (RFC 7643 §7 documents declared through the admin API).
-- tenants.schema_version changes with every declaration change, so every process sees on the tenant
-- row it already reads per request whether its cached schemas are current.
CREATE TABLE tenant_schemas (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    urn TEXT NOT NULL,
    urn_ci TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    required INTEGER NOT NULL DEFAULT 0,
    document TEXT NOT NULL,
    created TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    PRIMARY KEY (tenant_id, urn_ci)
);
ALTER TABLE tenants ADD COLUMN schema_version INTEGER NOT NULL DEFAULT 0;
