// bench/ws/server.mjs — the specification's WebSocket layer (src/ws/index.ts) on Node's HTTP
// server with the `ws` package, as the reference for bench/run-ws.sh. The connection handler,
// handleMessage, joinRoom, leaveRoom and broadcastToRoom are the specification's code;
// verifyWebSocketToken checks the HS256 access token (signature, exp, iss, aud) as zygo does,
// minus the database session lookup. POST /bench/publish?room=R with a JSON body calls
// broadcastToRoom(R, body): the benchmark's trigger for the fan-out latency.
//
//   PORT=3001 JWT_SECRET=… API_URL=http://127.0.0.1:3000 node bench/ws/server.mjs
import http from 'node:http';
import crypto from 'node:crypto';
import { WebSocketServer, WebSocket } from 'ws';

const PORT = Number(process.env.PORT || 3001);
const SECRET = process.env.JWT_SECRET || '';
const ISSUER = process.env.API_URL || 'http://localhost:3000';
const AUDIENCE = 'authenticated';

function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

async function verifyWebSocketToken(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  const [h, p, s] = parts;
  let header, claims;
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  if (header.alg !== 'HS256') return null;
  const want = b64url(crypto.createHmac('sha256', SECRET).update(`${h}.${p}`).digest());
  const a = Buffer.from(want);
  const b = Buffer.from(s);
  if (a.length !== b.length || !crypto.timingSafeEqual(a, b)) return null;
  const now = Math.floor(Date.now() / 1000);
  if (typeof claims.exp !== 'number' || now >= claims.exp) return null;
  if (claims.iss !== ISSUER) return null;
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!aud.includes(AUDIENCE)) return null;
  return { id: claims.sub, tenantId: claims.tid };
}

const logger = { info() {}, warn() {}, error: (o, m) => console.error(m, o) };

// ---- the specification's src/ws/index.ts ------------------------------------------------
const clients = new Map();
const rooms = new Map();

export function initializeWebSocket(server) {
  const wss = new WebSocketServer({ server, path: '/ws' });

  wss.on('connection', async (ws, req) => {
    try {
      const url = new URL(req.url, `ws://${req.headers.host}`);
      const token = url.searchParams.get('token');

      if (!token) {
        ws.close(4001, 'Missing authentication token');
        return;
      }

      const user = await verifyWebSocketToken(token);
      if (!user) {
        ws.close(4002, 'Invalid authentication token');
        return;
      }

      clients.set(ws, {
        userId: user.id,
        tenantId: user.tenantId,
        rooms: new Set(),
      });

      logger.info({ userId: user.id }, 'WebSocket client connected');

      ws.on('message', (data) => {
        try {
          const message = JSON.parse(data.toString());
          handleMessage(ws, message);
        } catch (error) {
          logger.error({ error }, 'Failed to parse WebSocket message');
        }
      });

      ws.on('close', () => {
        const client = clients.get(ws);
        if (client) {
          client.rooms.forEach((room) => leaveRoom(ws, room));
          clients.delete(ws);
          logger.info({ userId: client.userId }, 'WebSocket client disconnected');
        }
      });

      ws.send(JSON.stringify({ type: 'connected', userId: user.id }));
    } catch (error) {
      logger.error({ error }, 'WebSocket connection error');
      ws.close(4000, 'Connection error');
    }
  });

  logger.info('WebSocket server initialized');
}

function handleMessage(ws, message) {
  const client = clients.get(ws);
  if (!client) return;

  switch (message.type) {
    case 'subscribe':
      if (message.room) {
        joinRoom(ws, message.room);
      }
      break;

    case 'unsubscribe':
      if (message.room) {
        leaveRoom(ws, message.room);
      }
      break;

    case 'ping':
      ws.send(JSON.stringify({ type: 'pong' }));
      break;

    default:
      logger.warn({ type: message.type }, 'Unknown WebSocket message type');
  }
}

function joinRoom(ws, roomName) {
  const client = clients.get(ws);
  if (!client) return;

  if (!roomName.startsWith(`tenant:${client.tenantId}:`)) {
    ws.send(JSON.stringify({ type: 'error', message: 'Access denied to room' }));
    return;
  }

  if (!rooms.has(roomName)) {
    rooms.set(roomName, new Set());
  }

  rooms.get(roomName).add(ws);
  client.rooms.add(roomName);

  ws.send(JSON.stringify({ type: 'subscribed', room: roomName }));
}

function leaveRoom(ws, roomName) {
  const client = clients.get(ws);
  if (!client) return;

  rooms.get(roomName)?.delete(ws);
  client.rooms.delete(roomName);

  if (rooms.get(roomName)?.size === 0) {
    rooms.delete(roomName);
  }
}

export function broadcastToRoom(roomName, message) {
  const roomClients = rooms.get(roomName);
  if (!roomClients) return;

  const payload = JSON.stringify(message);
  roomClients.forEach((ws) => {
    if (ws.readyState === WebSocket.OPEN) {
      ws.send(payload);
    }
  });
}

export function broadcastToUser(userId, message) {
  const payload = JSON.stringify(message);
  clients.forEach((client, ws) => {
    if (client.userId === userId && ws.readyState === WebSocket.OPEN) {
      ws.send(payload);
    }
  });
}

// ---- the HTTP server with the benchmark's trigger ---------------------------------------
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'GET' && url.pathname === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"status":"ok"}');
    return;
  }
  if (req.method === 'POST' && url.pathname === '/bench/publish') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      broadcastToRoom(url.searchParams.get('room'), JSON.parse(Buffer.concat(chunks).toString()));
      res.writeHead(204);
      res.end();
    });
    return;
  }
  res.writeHead(404);
  res.end();
});
initializeWebSocket(server);
server.keepAliveTimeout = 60000;
server.listen(PORT, '127.0.0.1', () => console.log(`ws reference on ${PORT}`));
