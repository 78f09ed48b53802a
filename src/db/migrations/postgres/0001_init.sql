-- 0001_init — tenants and users (the specification's Drizzle schema), with row-level security.
--
-- Same tables, columns, defaults, indexes and constraints as sqlite/0001_init.sql, in native
-- types: uuid (default gen_random_uuid(), like defaultRandom()), varchar(N), boolean, jsonb,
-- timestamptz(3) — millisecond precision, so that what the API returns
-- ("2026-11-25T17:45:49.123Z", the form SQLite stores) is exactly the stored value and
-- compares equal to it.
--
-- Roles. Three, with the application never owning what it queries:
--   * the owner role (e.g. zygo_owner: LOGIN, NOSUPERUSER) runs the migrations
--     (DATABASE_MIGRATION_URL, or `zygo migrate`) and owns every table;
--   * zygo_app, a NOLOGIN group role holding the application's privileges: USAGE on the
--     schema, SELECT/INSERT/UPDATE/DELETE on the tables (granted below, and by default
--     privileges on tables and sequences the owner role creates later — later migrations
--     should still GRANT explicitly, which is harmless and survives a change of owner), SELECT
--     on schema_migrations so the application can check that nothing is pending;
--   * the application's LOGIN role (e.g. zygo_api: NOSUPERUSER, NOBYPASSRLS, not the owner) is
--     a member of zygo_app: `CREATE ROLE zygo_api LOGIN PASSWORD '…' IN ROLE zygo_app`.
-- zygo_app is created here when missing, which needs CREATEROLE on the migrating role; an
-- administrator may create it beforehand instead (CREATE ROLE zygo_app NOLOGIN).
--
-- Row-level security. Every tenant-scoped table has RLS enabled and FORCED (so it holds for
-- the owner too; only superusers and BYPASSRLS roles skip it) with one policy for all commands,
-- USING and WITH CHECK: the row's tenant is the one set for the session
-- (app.tenant_id, set by db_set_tenant; unset or '' → no row at all), or the explicit bypass
-- app.rls_bypass = 'on' (db_set_rls_bypass: global-admin and system work — jobs, migrations).
-- A tenants row is its own tenant: visible when its id is the tenant set. The settings are
-- plain session settings that the application's own SQL could change: RLS is the second wall,
-- behind the tenant filter every repository query carries, against a query that forgot it —
-- not a defence against SQL injection.
--
-- Applied inside a transaction by src/db/migrate.c: no BEGIN/COMMIT here.

-- The tenant set for this session (NULL when none), and whether the bypass is on. Inlined by
-- the planner into the policies below; later tenant-scoped tables use them the same way.
CREATE FUNCTION app_current_tenant() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$;

CREATE FUNCTION app_rls_bypass() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT coalesce(current_setting('app.rls_bypass', true), '') = 'on' $$;

CREATE TABLE tenants (
    id uuid NOT NULL PRIMARY KEY DEFAULT gen_random_uuid(),
    slug text NOT NULL UNIQUE,
    name text NOT NULL,
    plan text NOT NULL DEFAULT 'free',
    settings jsonb NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at timestamptz(3) NOT NULL DEFAULT now(),
    updated_at timestamptz(3) NOT NULL DEFAULT now(),
    deleted_at timestamptz(3) NULL
);

CREATE TABLE users (
    id uuid NOT NULL PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    email varchar(255) NOT NULL,
    first_name varchar(100),
    last_name varchar(100),
    display_name varchar(200),
    avatar text,
    phone varchar(20),
    status varchar(20) NOT NULL DEFAULT 'pending',
    email_verified boolean NOT NULL DEFAULT false,
    phone_verified boolean NOT NULL DEFAULT false,
    mfa_enabled boolean NOT NULL DEFAULT false,
    last_login_at timestamptz(3),
    created_at timestamptz(3) NOT NULL DEFAULT now(),
    updated_at timestamptz(3) NOT NULL DEFAULT now(),
    deleted_at timestamptz(3)
);

CREATE INDEX users_tenant_idx ON users (tenant_id);
CREATE INDEX users_email_idx ON users (email);
CREATE INDEX users_status_idx ON users (status);

-- Not in the Drizzle schema: an email is unique within a tenant among users that are not
-- soft-deleted (sign-up and invitations rely on it; a deleted user's address can be reused).
-- The comparison is case-sensitive: whoever writes users must store emails in one case.
CREATE UNIQUE INDEX users_tenant_email_uniq ON users (tenant_id, email) WHERE deleted_at IS NULL;

-- ---- row-level security -----------------------------------------------------------------

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (app_rls_bypass() OR id = app_current_tenant())
    WITH CHECK (app_rls_bypass() OR id = app_current_tenant());

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON users
    USING (app_rls_bypass() OR tenant_id = app_current_tenant())
    WITH CHECK (app_rls_bypass() OR tenant_id = app_current_tenant());

-- ---- the application's role ---------------------------------------------------------------

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'zygo_app') THEN
        BEGIN
            CREATE ROLE zygo_app NOLOGIN;
        EXCEPTION
            -- Roles are cluster-wide: a migration of another database may have just made it.
            WHEN duplicate_object OR unique_violation THEN
                NULL;
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'role zygo_app does not exist and % may not create it',
                    current_user
                    USING HINT = 'As a superuser: CREATE ROLE zygo_app NOLOGIN; or give the '
                                 'migrating role CREATEROLE.';
        END;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO zygo_app', current_schema());
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I'
                   ' GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO zygo_app',
                   current_schema());
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I'
                   ' GRANT USAGE, SELECT ON SEQUENCES TO zygo_app', current_schema());
END
$$;

GRANT SELECT, INSERT, UPDATE, DELETE ON tenants, users TO zygo_app;
GRANT SELECT ON schema_migrations TO zygo_app;
