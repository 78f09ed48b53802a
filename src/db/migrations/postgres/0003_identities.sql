-- 0003_identities — sign-in identities at OAuth/OIDC providers: a repeat sign-in finds its
-- user by (provider, subject), never by an address the provider may let change.
CREATE TABLE user_identities (
    id uuid NOT NULL PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    user_id uuid NOT NULL REFERENCES users (id),
    provider varchar(50) NOT NULL,
    subject varchar(255) NOT NULL,
    email varchar(255),
    created_at timestamptz(3) NOT NULL DEFAULT now(),
    last_sign_in_at timestamptz(3)
);
CREATE UNIQUE INDEX user_identities_provider_subject_uniq ON user_identities (provider, subject);
CREATE INDEX user_identities_user_idx ON user_identities (user_id);

ALTER TABLE user_identities ENABLE ROW LEVEL SECURITY;
ALTER TABLE user_identities FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON user_identities
    USING (app_rls_bypass() OR tenant_id = app_current_tenant())
    WITH CHECK (app_rls_bypass() OR tenant_id = app_current_tenant());

GRANT SELECT, INSERT, UPDATE, DELETE ON user_identities TO zygo_app;
