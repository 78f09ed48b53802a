-- The users list (GET /api/v1/users) walks a tenant's live users in created_at order: with
-- this index the page is a range scan that stops after `limit` rows, and the total is counted
-- from the index alone, instead of reading and sorting every user of the tenant.
CREATE INDEX users_tenant_created_idx ON users (tenant_id, created_at, id) WHERE deleted_at IS NULL;
