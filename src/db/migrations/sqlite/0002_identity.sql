-- 0002_identity — what authentication, sessions, MFA, RBAC and the audit log keep.
-- Same tables as postgres/0002_identity.sql, in SQLite terms (see 0001_init.sql for the type
-- mapping). Every tenant-scoped table carries tenant_id so each query can filter on it.
-- Secrets are never stored in the clear: passwords as argon2id hashes, tokens and recovery
-- codes as SHA-256 hashes, TOTP secrets sealed with ENCRYPTION_KEY (src/lib/secretbox.c).

ALTER TABLE users ADD COLUMN password_hash TEXT;
ALTER TABLE users ADD COLUMN is_global_admin INTEGER NOT NULL DEFAULT 0
    CHECK (is_global_admin IN (0, 1));

-- Roles: the system roles owner/admin/member/viewer are seeded per tenant (is_system = 1, not
-- editable); custom roles per tenant. permissions is a JSON array of permission names.
CREATE TABLE roles (
    id TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 50),
    description TEXT CHECK (length(description) <= 500),
    permissions TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(permissions)),
    is_system INTEGER NOT NULL DEFAULT 0 CHECK (is_system IN (0, 1)),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
CREATE UNIQUE INDEX roles_tenant_name_uniq ON roles (tenant_id, name);

CREATE TABLE user_roles (
    user_id TEXT NOT NULL REFERENCES users (id),
    role_id TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (user_id, role_id)
) STRICT;
CREATE INDEX user_roles_role_idx ON user_roles (role_id);
CREATE INDEX user_roles_tenant_idx ON user_roles (tenant_id);

-- One row per login. aal is "aal1" (password) or "aal2" (password + second factor).
CREATE TABLE sessions (
    id TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    user_agent TEXT CHECK (length(user_agent) <= 512),
    ip TEXT CHECK (length(ip) <= 64),
    aal TEXT NOT NULL DEFAULT 'aal1' CHECK (aal IN ('aal1', 'aal2')),
    amr TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(amr)),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    refreshed_at TEXT,
    not_after TEXT NOT NULL,
    revoked_at TEXT,
    revoked_reason TEXT CHECK (length(revoked_reason) <= 50)
) STRICT;
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_tenant_idx ON sessions (tenant_id);

-- Refresh tokens rotate on every use: a used token has used_at and a successor; presenting it
-- again after the grace window revokes the whole session (reuse detection).
CREATE TABLE refresh_tokens (
    id TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    parent_id TEXT REFERENCES refresh_tokens (id),
    used_at TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

-- Single-use tokens sent by email: verification, password reset, invitation.
CREATE TABLE one_time_tokens (
    id TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    purpose TEXT NOT NULL
        CHECK (purpose IN ('email_verification', 'password_reset', 'invitation')),
    token_hash TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    expires_at TEXT NOT NULL,
    used_at TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
CREATE INDEX one_time_tokens_user_idx ON one_time_tokens (user_id, purpose);

-- TOTP factors: the secret sealed at rest; last_step refuses a code twice in its window.
CREATE TABLE mfa_factors (
    id TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    kind TEXT NOT NULL DEFAULT 'totp' CHECK (kind IN ('totp')),
    secret_sealed TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'unverified' CHECK (status IN ('unverified', 'verified')),
    last_step INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
CREATE INDEX mfa_factors_user_idx ON mfa_factors (user_id);

CREATE TABLE mfa_recovery_codes (
    id TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    code_hash TEXT NOT NULL CHECK (length(code_hash) = 64),
    used_at TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
CREATE INDEX mfa_recovery_codes_user_idx ON mfa_recovery_codes (user_id);

-- A password login of an MFA user gives a challenge, completed with a code.
CREATE TABLE mfa_challenges (
    id TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    user_agent TEXT CHECK (length(user_agent) <= 512),
    ip TEXT CHECK (length(ip) <= 64),
    expires_at TEXT NOT NULL,
    used_at TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

-- Every mutating action, written in the same transaction as the change. metadata never holds
-- tokens, passwords or secrets.
CREATE TABLE audit_logs (
    id TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT REFERENCES tenants (id),
    actor_id TEXT,
    action TEXT NOT NULL CHECK (length(action) <= 100),
    resource_type TEXT CHECK (length(resource_type) <= 50),
    resource_id TEXT CHECK (length(resource_id) <= 100),
    ip TEXT CHECK (length(ip) <= 64),
    user_agent TEXT CHECK (length(user_agent) <= 512),
    request_id TEXT CHECK (length(request_id) <= 255),
    metadata TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
CREATE INDEX audit_logs_tenant_created_idx ON audit_logs (tenant_id, created_at);
CREATE INDEX audit_logs_actor_idx ON audit_logs (actor_id);

-- OAuth authorization-code flows in progress (state → PKCE verifier); not tenant-scoped.
CREATE TABLE oauth_states (
    state TEXT NOT NULL PRIMARY KEY CHECK (length(state) <= 128),
    provider TEXT NOT NULL CHECK (length(provider) <= 50),
    code_verifier TEXT NOT NULL CHECK (length(code_verifier) <= 128),
    redirect_to TEXT CHECK (length(redirect_to) <= 2048),
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
