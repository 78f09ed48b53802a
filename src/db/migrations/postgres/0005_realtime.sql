-- 0005_realtime — the real-time bus's relay between processes (src/services/realtime.c).
--
-- On PostgreSQL messages travel by NOTIFY on the channel zygo_realtime, received on one
-- dedicated LISTEN connection per process. A message too long for a notification payload
-- (8000 bytes) is stored here and the notification carries its id ("@<id>"); the row is
-- written in the same transaction as the NOTIFY, so it is visible when the notification
-- arrives.
--
-- Rows live about a minute (pruned by the publishers). created_at is milliseconds since the
-- Unix epoch, as in 0004_jobs. No tenant_id: a row is a message for a room or user id, read
-- only by the relay by its id, never by an API route.
CREATE TABLE realtime_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    origin text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('room', 'user')),
    target text NOT NULL,
    payload text NOT NULL,
    created_at bigint NOT NULL
);

CREATE INDEX realtime_events_created_idx ON realtime_events (created_at);
