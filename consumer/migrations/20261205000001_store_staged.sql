-- Step 11: the batch statement fed by binary COPY.
--
-- Each session stages a batch in its own temporary table, emptied at every
-- commit. It is created by the first batch of the session, checked by every
-- batch (a catalogue lookup), never assumed: behind a pooler in transaction
-- mode, the server session under a transaction may be a new one.
CREATE FUNCTION eventpulse_prepare_staging()
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('pg_temp.eventpulse_staged') IS NULL THEN
        CREATE TEMPORARY TABLE eventpulse_staged (
            event_id uuid, event_type text, user_id text, occurred_at timestamptz, payload jsonb,
            kafka_partition integer, kafka_offset bigint, ord integer) ON COMMIT DELETE ROWS;
    END IF;
END
$$;

-- The same statement as `eventpulse_store_events` (Step 10), which
-- `--write-method unnest` still calls with arrays: a change to one is a
-- change to both (consumer/tests/it/write_methods.rs compares them).
--
-- The consumer streams a batch into `eventpulse_staged` in binary COPY,
-- then calls this function, which takes the rows out of it and stores them:
-- ids first into `event_ids`, rows for the new ids, rollups from the rows
-- actually inserted, and returns how many rows of each type it inserted
-- (a few rows, not one per event). Within the batch the first copy of an
-- id (lowest `ord`) wins. Emptying the staging table here (not only at
-- commit) lets the bisection of a refused batch stage and store several
-- slices in one transaction.
CREATE FUNCTION eventpulse_store_staged(p_partition_days integer DEFAULT 1)
RETURNS TABLE (event_type text, events bigint) LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM eventpulse_ensure_partitions(
        ARRAY(SELECT DISTINCT date_trunc('day', occurred_at, 'UTC') FROM pg_temp.eventpulse_staged),
        p_partition_days);
    RETURN QUERY
    WITH taken AS (
        DELETE FROM pg_temp.eventpulse_staged RETURNING *
    ), batch AS (
        SELECT DISTINCT ON (t.event_id) t.* FROM taken t ORDER BY t.event_id, t.ord
    ), fresh AS (
        INSERT INTO event_ids (event_id, occurred_at)
        SELECT event_id, occurred_at FROM batch
        ON CONFLICT (event_id) DO NOTHING
        RETURNING event_id
    ), stored AS (
        INSERT INTO events (event_id, event_type, user_id, occurred_at, payload, kafka_partition, kafka_offset)
        SELECT b.event_id, b.event_type, b.user_id, b.occurred_at, b.payload, b.kafka_partition, b.kafka_offset
        FROM batch b JOIN fresh f ON f.event_id = b.event_id
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
    SELECT s.event_type, count(*) FROM stored s GROUP BY 1;
END
$$;
