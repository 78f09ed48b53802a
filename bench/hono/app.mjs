// Reference app for bench/run.sh: the specification's own stack (Node 20 + Hono 4 +
// @hono/node-server + pino) serving GET /health behind the same global middleware as the
// specification's src/app.ts, in the same order: requestId, timing, secureHeaders, cors
// (same origin function, credentials), then a request logger writing one JSON line per request.
//
//   PORT=3001 HOST=127.0.0.1 NODE_ENV=production node app.mjs > /dev/null
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
