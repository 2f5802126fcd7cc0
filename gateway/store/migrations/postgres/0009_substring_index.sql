-- Substring filters (co, sw, ew) on userName, displayName, externalId and emails.value, and on a
-- group's displayName and externalId, compile to LIKE on these columns (gateway/core/sqlfilter.py);
-- pg_trgm GIN indexes serve them, and PostgreSQL rechecks every candidate against the predicate, so
-- results stay exact. pg_trgm ships with PostgreSQL and is a trusted extension (the database owner may
-- create it). It goes into the public schema, never into a gateway schema that may be dropped with
-- everything in it; the operator class is named with the extension's schema, wherever that is. Where
-- the extension cannot be created (no privilege), the filters still work, as scans: a notice says so.
DO $$
DECLARE
    ext_schema TEXT;
BEGIN
    SELECT n.nspname INTO ext_schema
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm';
    IF ext_schema IS NULL THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
            ext_schema := 'public';
        EXCEPTION
            WHEN unique_violation OR duplicate_object THEN  -- another process created it meanwhile
                SELECT n.nspname INTO ext_schema
                FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm';
            WHEN insufficient_privilege OR undefined_file OR invalid_schema_name THEN
                RAISE NOTICE 'pg_trgm is not available (%): substring filters will scan', SQLERRM;
                RETURN;
        END;
    END IF;
    EXECUTE format('CREATE INDEX users_user_name_trgm ON users USING gin (user_name_ci %I.gin_trgm_ops)', ext_schema);
    EXECUTE format('CREATE INDEX users_display_name_trgm ON users USING gin (display_name_ci %I.gin_trgm_ops)', ext_schema);
    EXECUTE format('CREATE INDEX users_external_id_trgm ON users USING gin (external_id %I.gin_trgm_ops)', ext_schema);
    EXECUTE format('CREATE INDEX user_emails_value_trgm ON user_emails USING gin (value_ci %I.gin_trgm_ops)', ext_schema);
    EXECUTE format('CREATE INDEX groups_display_name_trgm ON groups USING gin (display_name_ci %I.gin_trgm_ops)', ext_schema);
    EXECUTE format('CREATE INDEX groups_external_id_trgm ON groups USING gin (external_id %I.gin_trgm_ops)', ext_schema);
END
$$;
