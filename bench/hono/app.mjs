// Reference app for bench/run.sh and bench/run-pg.sh: the specification's own stack (Node 20 +
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
