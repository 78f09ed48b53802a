-- 0001_init — tenants and users (the specification's Drizzle schema, in SQLite terms).
--
-- Mapping of PostgreSQL types: uuid → TEXT (lowercase canonical; the application passes
-- UUIDv7s, the DEFAULT makes a random v4 like defaultRandom()); varchar(N) → TEXT with
-- CHECK(length(x) <= N) (length counts characters, as varchar does); boolean → INTEGER 0/1
-- with a CHECK; timestamptz → TEXT ISO-8601 UTC with milliseconds (2026-11-25T17:45:49.123Z),
-- which sorts in time order; jsonb → TEXT with CHECK(json_valid(...)).
-- STRICT tables reject values of the wrong type, as PostgreSQL does.
-- Applied inside a transaction by src/db/migrate.c: no BEGIN/COMMIT here.

CREATE TABLE tenants (
    id TEXT NOT NULL PRIMARY KEY DEFAULT (lower(
        hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' ||
        substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + (random() & 3), 1) ||
        substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))),
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    plan TEXT NOT NULL DEFAULT 'free',
    settings TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(settings)),
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    deleted_at TEXT NULL
) STRICT;

CREATE TABLE users (
    id TEXT NOT NULL PRIMARY KEY DEFAULT (lower(
        hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' ||
        substr(hex(randomblob(2)), 2) || '-' || substr('89ab', 1 + (random() & 3), 1) ||
        substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))),
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    email TEXT NOT NULL CHECK (length(email) <= 255),
    first_name TEXT CHECK (length(first_name) <= 100),
    last_name TEXT CHECK (length(last_name) <= 100),
    display_name TEXT CHECK (length(display_name) <= 200),
    avatar TEXT,
    phone TEXT CHECK (length(phone) <= 20),
    status TEXT NOT NULL DEFAULT 'pending' CHECK (length(status) <= 20),
    email_verified INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
    phone_verified INTEGER NOT NULL DEFAULT 0 CHECK (phone_verified IN (0, 1)),
    mfa_enabled INTEGER NOT NULL DEFAULT 0 CHECK (mfa_enabled IN (0, 1)),
    last_login_at TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    deleted_at TEXT
) STRICT;

CREATE INDEX users_tenant_idx ON users (tenant_id);
CREATE INDEX users_email_idx ON users (email);
CREATE INDEX users_status_idx ON users (status);

-- Not in the Drizzle schema: an email is unique within a tenant among users that are not
-- soft-deleted (sign-up and invitations rely on it; a deleted user's address can be reused).
-- The comparison is case-sensitive: whoever writes users must store emails in one case.
CREATE UNIQUE INDEX users_tenant_email_uniq ON users (tenant_id, email) WHERE deleted_at IS NULL;
