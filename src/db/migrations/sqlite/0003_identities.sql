-- 0003_identities — sign-in identities at OAuth/OIDC providers: a repeat sign-in finds its
-- user by (provider, subject), never by an address the provider may let change.
CREATE TABLE user_identities (
    id TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    provider TEXT NOT NULL CHECK (length(provider) <= 50),
    subject TEXT NOT NULL CHECK (length(subject) <= 255),
    email TEXT CHECK (length(email) <= 255),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    last_sign_in_at TEXT
) STRICT;
CREATE UNIQUE INDEX user_identities_provider_subject_uniq ON user_identities (provider, subject);
CREATE INDEX user_identities_user_idx ON user_identities (user_id);
