-- Per-tenant custom schema extensions (RFC 7643 §7 documents declared through the admin API).
-- tenants.schema_version changes with every declaration change, so every process sees on the tenant
-- row it already reads per request whether its cached schemas are current.
CREATE TABLE tenant_schemas (
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    urn TEXT NOT NULL,
    urn_ci TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    required BOOLEAN NOT NULL DEFAULT FALSE,
    document JSONB NOT NULL,
    created TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    PRIMARY KEY (tenant_id, urn_ci)
);
ALTER TABLE tenants ADD COLUMN schema_version INTEGER NOT NULL DEFAULT 0;

-- Filters and sorts on a JSON-stored xsd:dateTime compare instants: offsets applied, a value without
-- one read as UTC (as the Python evaluator does), NULL for anything that is not a valid dateTime, so a
-- value stored before its extension was declared can never make a query fail.
CREATE OR REPLACE FUNCTION scim_timestamp(t text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
BEGIN
    IF t IS NULL OR t !~ '^-?[0-9]{4,}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})?$' THEN
        RETURN NULL;
    END IF;
    IF t !~ '([Zz]|[+-][0-9]{2}:[0-9]{2})$' THEN
        t := t || 'Z';
    END IF;
    RETURN t::timestamptz;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$fn$;
