-- Step 10: events partitioned by event time, event ids unique across every
-- partition, and exact rollups written by the same statement as the rows.
--
-- On a database that already holds events, this migration moves them (one
-- transaction: a second copy is written, then the old table dropped). The
-- consumer refuses to run it implicitly when the old table has rows; an
-- operator runs `eventpulse-consumer migrate` with the consumers stopped.

ALTER TABLE events RENAME TO events_unpartitioned;
ALTER INDEX events_pkey RENAME TO events_unpartitioned_pkey;
ALTER INDEX events_type_time_idx RENAME TO events_unpartitioned_type_time_idx;
ALTER INDEX events_user_time_idx RENAME TO events_unpartitioned_user_time_idx;
ALTER INDEX events_feed_idx RENAME TO events_unpartitioned_feed_idx;

-- A partitioned table's unique keys must contain the partition key, so
-- `events` alone can no longer refuse a second copy of an id carrying another
-- timestamp. This narrow table can: its primary key is the id alone, and the
-- statement that stores an event inserts its id here first. It also tells
-- where an id's row lives (`occurred_at`), so a lookup by id reads one partition.
CREATE TABLE event_ids (
    event_id    uuid        PRIMARY KEY,
    occurred_at timestamptz NOT NULL
);

CREATE TABLE events (
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL CHECK (event_type IN ('login', 'logout', 'page_view', 'button_click', 'form_submit')),
    user_id         text        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    payload         jsonb       NOT NULL,
    ingested_at     timestamptz NOT NULL DEFAULT now(),
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    feed_xid        xid8                 DEFAULT pg_current_xact_id(),
    feed_seq        bigint               DEFAULT nextval('events_feed_seq')
) PARTITION BY RANGE (occurred_at);
CREATE INDEX events_type_time_idx ON events (event_type, occurred_at);
CREATE INDEX events_user_time_idx ON events (user_id, occurred_at);
CREATE INDEX events_feed_idx ON events (feed_xid, feed_seq) WHERE feed_xid IS NOT NULL;

-- The partitions that exist, with their bounds: what retention drops and what
-- a new partition must not overlap. Bounds are UTC midnights.
CREATE TABLE event_partitions (
    name    text        PRIMARY KEY,
    from_at timestamptz NOT NULL UNIQUE,
    to_at   timestamptz NOT NULL,
    CHECK (from_at < to_at)
);

-- Creates the partition holding `p_at`: `p_days` days wide, aligned on UTC
-- midnights counted from 2000-01-01, shrunk to fit between its neighbours
-- (a width changed later never makes partitions overlap). The table is
-- created empty and then attached, which takes only a SHARE UPDATE EXCLUSIVE
-- lock on `events`: inserts and queries go on, only another creator waits.
CREATE FUNCTION eventpulse_create_partition(p_at timestamptz, p_days integer)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    lo timestamptz;
    hi timestamptz;
    part text;
BEGIN
    -- One creator at a time; the loser then finds the partition made.
    PERFORM pg_advisory_xact_lock(hashtext('eventpulse_create_partition'));
    IF EXISTS (SELECT 1 FROM event_partitions WHERE from_at <= p_at AND p_at < to_at) THEN
        RETURN NULL;
    END IF;
    lo := date_bin(make_interval(days => p_days), p_at, timestamptz '2000-01-01 00:00:00+00');
    hi := lo + make_interval(days => p_days);
    lo := greatest(lo, (SELECT max(to_at) FROM event_partitions WHERE to_at <= p_at));
    hi := least(hi, (SELECT min(from_at) FROM event_partitions WHERE from_at > p_at));
    part := 'events_p' || to_char(lo AT TIME ZONE 'UTC', 'YYYYMMDD');
    EXECUTE format('CREATE TABLE %I (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
    EXECUTE format('ALTER TABLE events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
    INSERT INTO event_partitions (name, from_at, to_at) VALUES (part, lo, hi);
    RETURN part;
END
$$;

-- Makes sure every timestamp in `p_times` has a partition. Partition bounds
-- are UTC midnights, so checking each distinct day suffices: usually one
-- index probe per batch.
CREATE FUNCTION eventpulse_ensure_partitions(p_times timestamptz[], p_days integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    day timestamptz;
BEGIN
    FOR day IN SELECT DISTINCT date_trunc('day', t, 'UTC') FROM unnest(p_times) AS t LOOP
        IF NOT EXISTS (SELECT 1 FROM event_partitions WHERE from_at <= day AND day < to_at) THEN
            PERFORM eventpulse_create_partition(day, p_days);
        END IF;
    END LOOP;
END
$$;

-- Rollups, kept exact by the statement that stores the rows (below): what the
-- statistics endpoints read instead of counting rows. Each row is one Kafka
-- partition's share (`shard`): consumers own disjoint partitions, so two of
-- them never update the same row, and readers sum the shards.
CREATE TABLE rollup_hourly (
    hour       timestamptz NOT NULL,
    event_type text        NOT NULL,
    shard      integer     NOT NULL,
    events     bigint      NOT NULL,
    PRIMARY KEY (hour, event_type, shard)
);
-- Per user: top users and exact unique users. Hourly rows answer the hours
-- at the edges of a range, daily rows its whole days. Room is left on each
-- page so the counter updates stay HOT (no index change).
CREATE TABLE rollup_user_hourly (
    hour       timestamptz NOT NULL,
    user_id    text        NOT NULL,
    event_type text        NOT NULL,
    shard      integer     NOT NULL,
    events     bigint      NOT NULL,
    PRIMARY KEY (hour, user_id, event_type, shard)
) WITH (fillfactor = 80);
CREATE TABLE rollup_user_daily (
    day        timestamptz NOT NULL,
    user_id    text        NOT NULL,
    event_type text        NOT NULL,
    shard      integer     NOT NULL,
    events     bigint      NOT NULL,
    PRIMARY KEY (day, user_id, event_type, shard)
) WITH (fillfactor = 80);

-- Stores a batch of events, each id at most once whatever its timestamp, and
-- adds the rows actually inserted to the rollups, all in one statement (the
-- caller's transaction). Returns the type of each inserted row. Within the
-- batch the first copy of an id wins.
CREATE FUNCTION eventpulse_store_events(
    p_ids uuid[], p_types text[], p_users text[], p_times timestamptz[],
    p_payloads text[], p_partitions integer[], p_offsets bigint[],
    p_partition_days integer DEFAULT 1)
RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM eventpulse_ensure_partitions(p_times, p_partition_days);
    RETURN QUERY
    WITH batch AS (
        SELECT DISTINCT ON (b.id) b.*
        FROM unnest(p_ids, p_types, p_users, p_times, p_payloads, p_partitions, p_offsets)
             WITH ORDINALITY AS b(id, kind, user_id, at, payload, part, off, ord)
        ORDER BY b.id, b.ord
    ), fresh AS (
        INSERT INTO event_ids (event_id, occurred_at)
        SELECT id, at FROM batch
        ON CONFLICT (event_id) DO NOTHING
        RETURNING event_id
    ), stored AS (
        INSERT INTO events (event_id, event_type, user_id, occurred_at, payload, kafka_partition, kafka_offset)
        SELECT b.id, b.kind, b.user_id, b.at, b.payload::jsonb, b.part, b.off
        FROM batch b JOIN fresh f ON f.event_id = b.id
        RETURNING event_type, user_id, occurred_at, kafka_partition
    ), hourly AS (
        INSERT INTO rollup_hourly AS r (hour, event_type, shard, events)
        SELECT date_trunc('hour', occurred_at, 'UTC'), event_type, kafka_partition, count(*)
        FROM stored GROUP BY 1, 2, 3
        ON CONFLICT (hour, event_type, shard) DO UPDATE SET events = r.events + EXCLUDED.events
    ), user_hourly AS (
        INSERT INTO rollup_user_hourly AS r (hour, user_id, event_type, shard, events)
        SELECT date_trunc('hour', occurred_at, 'UTC'), user_id, event_type, kafka_partition, count(*)
        FROM stored GROUP BY 1, 2, 3, 4
        ON CONFLICT (hour, user_id, event_type, shard) DO UPDATE SET events = r.events + EXCLUDED.events
    ), user_daily AS (
        INSERT INTO rollup_user_daily AS r (day, user_id, event_type, shard, events)
        SELECT date_trunc('day', occurred_at, 'UTC'), user_id, event_type, kafka_partition, count(*)
        FROM stored GROUP BY 1, 2, 3, 4
        ON CONFLICT (day, user_id, event_type, shard) DO UPDATE SET events = r.events + EXCLUDED.events
    )
    SELECT event_type FROM stored;
END
$$;

-- Move the rows of the old table, if any, through the same path.
SELECT eventpulse_ensure_partitions(array_agg(DISTINCT date_trunc('day', occurred_at, 'UTC')), 1)
FROM events_unpartitioned;
INSERT INTO event_ids (event_id, occurred_at)
SELECT event_id, occurred_at FROM events_unpartitioned;
INSERT INTO events
SELECT event_id, event_type, user_id, occurred_at, payload, ingested_at,
       kafka_partition, kafka_offset, feed_xid, feed_seq
FROM events_unpartitioned;
INSERT INTO rollup_hourly (hour, event_type, shard, events)
SELECT date_trunc('hour', occurred_at, 'UTC'), event_type, kafka_partition, count(*)
FROM events GROUP BY 1, 2, 3;
INSERT INTO rollup_user_hourly (hour, user_id, event_type, shard, events)
SELECT date_trunc('hour', occurred_at, 'UTC'), user_id, event_type, kafka_partition, count(*)
FROM events GROUP BY 1, 2, 3, 4;
INSERT INTO rollup_user_daily (day, user_id, event_type, shard, events)
SELECT date_trunc('day', occurred_at, 'UTC'), user_id, event_type, kafka_partition, count(*)
FROM events GROUP BY 1, 2, 3, 4;
DROP TABLE events_unpartitioned;
