-- The live feed's cursor (eventpulse-api's GET /events/live). Each row records
-- the transaction that wrote it and a sequence number in insert order. A
-- reader takes rows in (feed_xid, feed_seq) order but only those written by
-- transactions older than every transaction still running (the snapshot's
-- xmin): a row can then no longer appear behind the reader's cursor, so a
-- client resuming from its last cursor misses nothing and sees nothing twice.
-- Rows from before the feed existed have NULL here and are not streamed.
ALTER TABLE events ADD COLUMN feed_xid xid8;
ALTER TABLE events ADD COLUMN feed_seq bigint;
-- Cached per session: one consumer's rows still number in insert order.
CREATE SEQUENCE events_feed_seq CACHE 1000;
ALTER TABLE events ALTER COLUMN feed_xid SET DEFAULT pg_current_xact_id();
ALTER TABLE events ALTER COLUMN feed_seq SET DEFAULT nextval('events_feed_seq');
CREATE INDEX events_feed_idx ON events (feed_xid, feed_seq) WHERE feed_xid IS NOT NULL;
