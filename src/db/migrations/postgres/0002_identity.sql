-- 0002_identity — what authentication, sessions, MFA, RBAC and the audit log keep.
-- Same tables as sqlite/0002_identity.sql in native types, with row-level security on every
-- tenant-scoped table (the policy of 0001_init.sql). Secrets are never stored in the clear:
-- passwords as argon2id hashes, tokens and recovery codes as SHA-256 hashes, TOTP secrets
-- sealed with ENCRYPTION_KEY (src/lib/secretbox.c).

ALTER TABLE users ADD COLUMN password_hash text;
ALTER TABLE users ADD COLUMN is_global_admin boolean NOT NULL DEFAULT false;

CREATE TABLE roles (
    id uuid NOT NULL PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    name varchar(50) NOT NULL CHECK (length(name) >= 1),
    description varchar(500),
    permissions jsonb NOT NULL DEFAULT '[]',
    is_system boolean NOT NULL DEFAULT false,
    created_at timestamptz(3) NOT NULL DEFAULT now(),
    updated_at timestamptz(3) NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX roles_tenant_name_uniq ON roles (tenant_id, name);

CREATE TABLE user_roles (
    user_id uuid NOT NULL REFERENCES users (id),
    role_id uuid NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    created_at timestamptz(3) NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_role_idx ON user_roles (role_id);
CREATE INDEX user_roles_tenant_idx ON user_roles (tenant_id);

CREATE TABLE sessions (
    id uuid NOT NULL PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    user_id uuid NOT NULL REFERENCES users (id),
    user_agent varchar(512),
    ip varchar(64),
    aal text NOT NULL DEFAULT 'aal1' CHECK (aal IN ('aal1', 'aal2')),
    amr jsonb NOT NULL DEFAULT '[]',
    created_at timestamptz(3) NOT NULL DEFAULT now(),
    refreshed_at timestamptz(3),
    not_after timestamptz(3) NOT NULL,
    revoked_at timestamptz(3),
    revoked_reason varchar(50)
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_tenant_idx ON sessions (tenant_id);

CREATE TABLE refresh_tokens (
    id uuid NOT NULL PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    token_hash char(64) NOT NULL UNIQUE,
    parent_id uuid REFERENCES refresh_tokens (id),
    used_at timestamptz(3),
    created_at timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

CREATE TABLE one_time_tokens (
    id uuid NOT NULL PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    user_id uuid NOT NULL REFERENCES users (id),
    purpose text NOT NULL
        CHECK (purpose IN ('email_verification', 'password_reset', 'invitation')),
    token_hash char(64) NOT NULL UNIQUE,
    expires_at timestamptz(3) NOT NULL,
    used_at timestamptz(3),
    created_at timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX one_time_tokens_user_idx ON one_time_tokens (user_id, purpose);

CREATE TABLE mfa_factors (
    id uuid NOT NULL PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    user_id uuid NOT NULL REFERENCES users (id),
    kind text NOT NULL DEFAULT 'totp' CHECK (kind IN ('totp')),
    secret_sealed text NOT NULL,
    status text NOT NULL DEFAULT 'unverified' CHECK (status IN ('unverified', 'verified')),
    last_step bigint NOT NULL DEFAULT 0,
    created_at timestamptz(3) NOT NULL DEFAULT now(),
    updated_at timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX mfa_factors_user_idx ON mfa_factors (user_id);

CREATE TABLE mfa_recovery_codes (
    id uuid NOT NULL PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    user_id uuid NOT NULL REFERENCES users (id),
    code_hash char(64) NOT NULL,
    used_at timestamptz(3),
    created_at timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX mfa_recovery_codes_user_idx ON mfa_recovery_codes (user_id);

CREATE TABLE mfa_challenges (
    id uuid NOT NULL PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    user_id uuid NOT NULL REFERENCES users (id),
    user_agent varchar(512),
    ip varchar(64),
    expires_at timestamptz(3) NOT NULL,
    used_at timestamptz(3),
    created_at timestamptz(3) NOT NULL DEFAULT now()
);

CREATE TABLE audit_logs (
    id uuid NOT NULL PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid REFERENCES tenants (id),
    actor_id uuid,
    action varchar(100) NOT NULL,
    resource_type varchar(50),
    resource_id varchar(100),
    ip varchar(64),
    user_agent varchar(512),
    request_id varchar(255),
    metadata jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX audit_logs_tenant_created_idx ON audit_logs (tenant_id, created_at);
CREATE INDEX audit_logs_actor_idx ON audit_logs (actor_id);

CREATE TABLE oauth_states (
    state varchar(128) NOT NULL PRIMARY KEY,
    provider varchar(50) NOT NULL,
    code_verifier varchar(128) NOT NULL,
    redirect_to varchar(2048),
    expires_at timestamptz(3) NOT NULL,
    created_at timestamptz(3) NOT NULL DEFAULT now()
);

-- ---- row-level security (the policy of 0001_init.sql) -------------------------------------

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['roles', 'user_roles', 'sessions', 'refresh_tokens',
                             'one_time_tokens', 'mfa_factors', 'mfa_recovery_codes',
                             'mfa_challenges', 'audit_logs']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I'
                       ' USING (app_rls_bypass() OR tenant_id = app_current_tenant())'
                       ' WITH CHECK (app_rls_bypass() OR tenant_id = app_current_tenant())', t);
    END LOOP;
END
$$;

GRANT SELECT, INSERT, UPDATE, DELETE ON roles, user_roles, sessions, refresh_tokens,
    one_time_tokens, mfa_factors, mfa_recovery_codes, mfa_challenges, audit_logs, oauth_states
    TO zygo_app;
