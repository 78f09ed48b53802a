-- 0005_realtime — the real-time bus's relay between processes (src/services/realtime.c).
--
-- Every zygo process sharing this database file appends the messages it publishes here, and
-- a thread in each process that has WebSocket clients reads the rows added since its last
-- look (every 50 ms) and delivers those of other processes. AUTOINCREMENT: ids are never
-- reused after the pruning, so "id > last seen" cannot skip a row; SQLite's single writer
-- makes id order the commit order.
--
-- Rows live about a minute (pruned by the publishers). created_at is milliseconds since the
-- Unix epoch, compared with the pruning process's clock, as in 0004_jobs. No tenant_id: a row
-- is a message for a room or user id, read only by the relay, never by an API route.
CREATE TABLE realtime_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    origin TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('room', 'user')),
    target TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE INDEX realtime_events_created_idx ON realtime_events (created_at);
