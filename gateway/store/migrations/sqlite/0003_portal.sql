-- Portal access (issue 9). Only hashes are stored: a database dump holds no usable link or session.
-- A link is single-use: redeeming it sets used in the same transaction that creates the session.
CREATE TABLE portal_links (
    token_hash TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    created TEXT NOT NULL,
    expires TEXT NOT NULL,
    used TEXT
);
CREATE INDEX portal_links_expires ON portal_links(expires);

-- tenant_id NULL is an operator session (signed in with the admin token).
CREATE TABLE portal_sessions (
    id_hash TEXT PRIMARY KEY,
    tenant_id TEXT REFERENCES tenants(id) ON DELETE CASCADE,
    created TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    expires TEXT NOT NULL
);
CREATE INDEX portal_sessions_expires ON portal_sessions(expires);
