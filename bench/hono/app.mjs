// Reference app for bench/run.sh, bench/run-pg.sh and bench/run-users.sh: the specification's own stack (Node 20 +
// Hono 4 + @hono/node-server + pino, postgres.js) serving GET /health behind the same global
// middleware as the specification's src/app.ts, in the same order: requestId, timing,
// secureHeaders, cors (same origin function, credentials), then a request logger writing one
// JSON line per request. With DATABASE_URL set it also serves GET /bench/users/:id (one user by
// primary key, scoped to the X-Tenant-ID header) through postgres.js, as the specification's
// src/db/index.ts sets it up (pool of DATABASE_POOL_MAX, default 10).
//
//   PORT=3001 HOST=127.0.0.1 NODE_ENV=production node app.mjs > /dev/null
//   DATABASE_URL=postgres://… PORT=3001 NODE_ENV=production node app.mjs > /dev/null
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { cors } from 'hono/cors';
import { requestId } from 'hono/request-id';
import { secureHeaders } from 'hono/secure-headers';
import { timing } from 'hono/timing';
import pino from 'pino';

const VERSION = '0.1.0';

// src/lib/logger.ts: pino to stdout (its default destination: synchronous writes to fd 1).
const logger = pino({ level: process.env.LOG_LEVEL || 'info' });

// src/middleware/logger.ts: one line per request, the fields zygo logs.
const loggerMiddleware = async (c, next) => {
  const start = performance.now();
  await next();
  const status = c.res.status;
  const fields = {
    reqId: c.get('requestId'),
    method: c.req.method,
    path: c.req.path,
    status,
    duration: Math.round((performance.now() - start) * 1000) / 1000,
  };
  if (status >= 500) logger.error(fields, 'request completed');
  else if (status >= 400) logger.warn(fields, 'request completed');
  else logger.info(fields, 'request completed');
};

export const app = new Hono();

// Global middleware, as in the specification's src/app.ts. BENCH_BARE=1 leaves all of it out
// (the route alone), only to show what the middleware costs; it is not the reference.
if (process.env.BENCH_BARE !== '1') {
  app.use('*', requestId());
  app.use('*', timing());
  app.use('*', secureHeaders());
  app.use(
    '*',
    cors({
      origin: (origin) => {
        const allowed = ['https://app.zygo.tech', 'https://admin.zygo.tech'];
        if (process.env.NODE_ENV === 'development') {
          allowed.push('http://localhost:5173');
        }
        return allowed.includes(origin) ? origin : null;
      },
      credentials: true,
    }),
  );
  app.use('*', loggerMiddleware);
}

// src/routes/health.ts
app.get('/health', (c) =>
  c.json({
    status: 'ok',
    version: VERSION,
    uptime: process.uptime(),
    timestamp: new Date().toISOString(),
  }),
);

// bench/run-pg.sh: the counterpart of bench/pg_server.c's GET /bench/users/:id. Only registered
// when DATABASE_URL is set, so that bench/run.sh measures exactly the /health app as before.
// Raw SQL rather than the specification's Drizzle query builder (which would only add work on
// Node's side), selecting the columns of the API's User object; postgres.js turns timestamptz
// into Date, which c.json() writes as ISO-8601 UTC with milliseconds, as zygo does.
if (process.env.DATABASE_URL) {
  const { default: postgres } = await import('postgres');
  // src/db/index.ts of the specification.
  const sql = postgres(process.env.DATABASE_URL, {
    // DATABASE_SOCKET: the server's Unix-domain socket file, instead of the URL's host and port
    path: process.env.DATABASE_SOCKET || undefined,
    max: Number(process.env.DATABASE_POOL_MAX || 10),
    idle_timeout: 20,
    connect_timeout: 10,
  });
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  const fail = (c, status, error, message) =>
    c.json(
      {
        error,
        message,
        statusCode: status,
        timestamp: new Date().toISOString(),
        requestId: c.get('requestId'),
      },
      status,
    );
  app.get('/bench/users/:id', async (c) => {
    const tenantId = c.req.header('X-Tenant-ID');
    if (!tenantId) return fail(c, 401, 'AUTH_UNAUTHORIZED', 'X-Tenant-ID required');
    const id = c.req.param('id');
    // zygo answers 404 for an id or tenant that is not a UUID (PostgreSQL would refuse the cast).
    const rows =
      UUID.test(id) && UUID.test(tenantId)
        ? await sql`
            SELECT id, tenant_id, email, first_name, last_name, display_name, avatar, phone,
                   status, email_verified, phone_verified, mfa_enabled, last_login_at,
                   created_at, updated_at
            FROM users
            WHERE id = ${id} AND tenant_id = ${tenantId} AND deleted_at IS NULL`
        : [];
    if (rows.length === 0) {
      return fail(c, 404, 'RESOURCE_NOT_FOUND', `User with ID ${id} not found`);
    }
    const u = rows[0];
    return c.json({
      id: u.id,
      tenantId: u.tenant_id,
      email: u.email,
      firstName: u.first_name,
      lastName: u.last_name,
      displayName: u.display_name,
      avatar: u.avatar,
      phone: u.phone,
      status: u.status,
      emailVerified: u.email_verified,
      phoneVerified: u.phone_verified,
      mfaEnabled: u.mfa_enabled,
      lastLoginAt: u.last_login_at,
      createdAt: u.created_at,
      updatedAt: u.updated_at,
    });
  });
}

// bench/run-users.sh: the counterpart of zygo's GET /api/v1/users?page=&limit= on SQLite, only
// registered when SQLITE_PATH is set (the same database file zygo uses, opened read-only with
// better-sqlite3). The same steps as zygo's route: hono/jwt verifies the HS256 access token
// (JWT_SECRET; issuer API_URL and audience "authenticated" checked as zygo does), the session
// must exist, belong to the token's user and tenant, be unrevoked and unexpired (joined with the
// user and the tenant, as zygo's auth middleware does), the user's roles give the permissions,
// canViewUsers is required, then a count and a page of the tenant's users, as the API's
// { data: User[], pagination } with camelCase fields and booleans. Prepared statements, once.
if (process.env.SQLITE_PATH) {
  const { default: Database } = await import('better-sqlite3');
  const { jwt } = await import('hono/jwt');
  const db = new Database(process.env.SQLITE_PATH, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  const sessionStmt = db.prepare(`
    SELECT u.status AS user_status, t.status AS tenant_status,
           s.revoked_at IS NULL AND s.not_after > ? AS live
    FROM sessions s JOIN users u ON u.id = s.user_id JOIN tenants t ON t.id = s.tenant_id
    WHERE s.id = ? AND s.user_id = ? AND s.tenant_id = ? AND u.deleted_at IS NULL`);
  const rolesStmt = db.prepare(`
    SELECT r.name, r.permissions FROM user_roles ur JOIN roles r ON r.id = ur.role_id
    WHERE ur.user_id = ? AND ur.tenant_id = ? ORDER BY r.name`);
  const countStmt = db.prepare(
    'SELECT count(*) AS n FROM users WHERE tenant_id = ? AND deleted_at IS NULL',
  );
  const pageStmt = db.prepare(`
    SELECT id, tenant_id, email, first_name, last_name, display_name, avatar, phone, status,
           email_verified, phone_verified, mfa_enabled, last_login_at, created_at, updated_at
    FROM users WHERE tenant_id = ? AND deleted_at IS NULL
    ORDER BY created_at, id LIMIT ? OFFSET ?`);
  const fail = (c, status, error, message) =>
    c.json(
      {
        error,
        message,
        statusCode: status,
        timestamp: new Date().toISOString(),
        requestId: c.get('requestId'),
      },
      status,
    );
  const auth = async (c, next) => {
    const p = c.get('jwtPayload');
    if (p.iss !== process.env.API_URL || p.aud !== 'authenticated' || !p.tid || !p.sid) {
      return fail(c, 401, 'AUTH_UNAUTHORIZED', 'Invalid or expired token');
    }
    const s = sessionStmt.get(new Date().toISOString(), p.sid, p.sub, p.tid);
    if (!s || !s.live) {
      return fail(c, 401, 'AUTH_UNAUTHORIZED', 'Session has been revoked or has expired');
    }
    if (s.user_status === 'suspended') return fail(c, 403, 'AUTH_FORBIDDEN', 'User is suspended');
    if (s.tenant_status !== 'active') return fail(c, 403, 'AUTH_FORBIDDEN', 'Tenant is not active');
    const perms = new Set();
    for (const r of rolesStmt.all(p.sub, p.tid)) for (const x of JSON.parse(r.permissions)) perms.add(x);
    c.set('user', { id: p.sub, tenantId: p.tid, permissions: perms });
    await next();
  };
  const can = (permission) => async (c, next) => {
    if (!c.get('user').permissions.has(permission)) {
      return fail(c, 403, 'AUTH_FORBIDDEN', 'Insufficient permissions');
    }
    await next();
  };
  const secret = process.env.JWT_SECRET;
  app.get('/api/v1/users', jwt({ secret, alg: 'HS256' }), auth, can('canViewUsers'), (c) => {
    const page = Math.max(1, Number.parseInt(c.req.query('page') || '1', 10) || 1);
    const limit = Math.min(100, Math.max(1, Number.parseInt(c.req.query('limit') || '20', 10) || 20));
    const tenantId = c.get('user').tenantId;
    const total = countStmt.get(tenantId).n;
    const data = pageStmt.all(tenantId, limit, (page - 1) * limit).map((u) => ({
      id: u.id,
      tenantId: u.tenant_id,
      email: u.email,
      firstName: u.first_name,
      lastName: u.last_name,
      displayName: u.display_name,
      avatar: u.avatar,
      phone: u.phone,
      status: u.status,
      emailVerified: u.email_verified === 1,
      phoneVerified: u.phone_verified === 1,
      mfaEnabled: u.mfa_enabled === 1,
      lastLoginAt: u.last_login_at,
      createdAt: u.created_at,
      updatedAt: u.updated_at,
    }));
    return c.json({ data, pagination: { page, limit, total, totalPages: Math.ceil(total / limit) } });
  });
}

app.notFound((c) =>
  c.json(
    {
      error: 'ROUTE_NOT_FOUND',
      message: `Route ${c.req.method} ${c.req.path} not found`,
      statusCode: 404,
      timestamp: new Date().toISOString(),
      requestId: c.get('requestId'),
    },
    404,
  ),
);

app.onError((err, c) => {
  logger.error({ err, requestId: c.get('requestId') }, 'Unhandled error');
  return c.json(
    {
      error: 'INTERNAL_ERROR',
      message: 'An unexpected error occurred',
      statusCode: 500,
      timestamp: new Date().toISOString(),
      requestId: c.get('requestId'),
    },
    500,
  );
});

const port = Number(process.env.PORT || 3001);
const hostname = process.env.HOST || '127.0.0.1';
serve({ fetch: app.fetch, port, hostname }, (info) => {
  logger.info(`Server running on http://${hostname}:${info.port}`);
  logger.info(`Environment: ${process.env.NODE_ENV || 'development'}`);
});

const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
