-- The portal's activity chart counts a tenant's events per hour over a time window
-- (hourly_event_counts in gateway/store/portal.py): tenant and time range from an index, not from a
-- walk over every activity row the tenant has.
CREATE INDEX IF NOT EXISTS activity_tenant_created ON activity(tenant_id, created);
