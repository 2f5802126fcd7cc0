-- Insertion order within a tenant is the default sort and the cursor position: serve it from an index
-- instead of sorting the tenant's rows on every page.
CREATE INDEX users_tenant_seq ON users(tenant_id, seq);
CREATE INDEX groups_tenant_seq ON groups(tenant_id, seq);
