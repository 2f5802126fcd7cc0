-- Every tenant-owned row carries tenant_id, and every query names it.
CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    idp TEXT NOT NULL DEFAULT 'auto',
    scim_enabled BOOLEAN NOT NULL DEFAULT FALSE,
    log_successful_events BOOLEAN NOT NULL DEFAULT FALSE,
    role_mapping JSONB NOT NULL DEFAULT '{"source": "portal"}',
    settings JSONB NOT NULL DEFAULT '{}',
    created TEXT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created TEXT NOT NULL,
    last_used TEXT,
    revoked TEXT
);
CREATE INDEX api_keys_tenant ON api_keys(tenant_id);

CREATE TABLE users (
    seq BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    user_name_ci TEXT NOT NULL,
    external_id TEXT,
    display_name TEXT,
    display_name_ci TEXT,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    email_ci TEXT,
    roles JSONB NOT NULL DEFAULT '[]',
    provisioned_by TEXT NOT NULL DEFAULT 'scim',
    data JSONB NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    created TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, user_name_ci)
);
CREATE INDEX users_external_id ON users(tenant_id, external_id);
CREATE INDEX users_display_name ON users(tenant_id, display_name_ci);
CREATE INDEX users_active ON users(tenant_id, active);
CREATE INDEX users_email ON users(tenant_id, email_ci);

CREATE TABLE user_emails (
    tenant_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    value_ci TEXT NOT NULL,
    type TEXT,
    is_primary BOOLEAN NOT NULL DEFAULT FALSE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX user_emails_value ON user_emails(tenant_id, value_ci);
CREATE INDEX user_emails_user ON user_emails(tenant_id, user_id);

CREATE TABLE groups (
    seq BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    display_name_ci TEXT NOT NULL,
    external_id TEXT,
    data JSONB NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    created TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE INDEX groups_display_name ON groups(tenant_id, display_name_ci);
CREATE INDEX groups_external_id ON groups(tenant_id, external_id);

CREATE TABLE group_members (
    tenant_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    member_type TEXT NOT NULL DEFAULT 'User',
    PRIMARY KEY (tenant_id, group_id, member_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES groups(tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX group_members_member ON group_members(tenant_id, member_id);

CREATE TABLE activity (
    seq BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    type TEXT NOT NULL,
    created TEXT NOT NULL,
    data JSONB NOT NULL
);
CREATE INDEX activity_tenant ON activity(tenant_id, seq);
CREATE INDEX activity_tenant_type ON activity(tenant_id, type, seq);
