-- Events, stored exactly once: the primary key on event_id makes a second
-- insert of the same event a no-op (INSERT ... ON CONFLICT DO NOTHING).
CREATE TABLE events (
    event_id        uuid        PRIMARY KEY,
    event_type      text        NOT NULL CHECK (event_type IN ('login', 'logout', 'page_view', 'button_click', 'form_submit')),
    user_id         text        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    payload         jsonb       NOT NULL,
    ingested_at     timestamptz NOT NULL DEFAULT now(),
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL
);
CREATE INDEX events_type_time_idx ON events (event_type, occurred_at);
CREATE INDEX events_user_time_idx ON events (user_id, occurred_at);

-- The next offset to process per group/topic/partition, written in the same
-- transaction as the rows it covers: this, not Kafka's committed offset, is
-- the source of truth on partition assignment.
CREATE TABLE consumer_offsets (
    group_id    text        NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    next_offset bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);

-- One row per message sent to the dead-letter topic, written with the offsets
-- that cover it. The DLQ itself is at-least-once (a crash between its ack and
-- this commit re-sends); this table counts each rejected message exactly once.
CREATE TABLE dead_letters (
    topic           text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    reason          text        NOT NULL,
    detail          text        NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, kafka_partition, kafka_offset)
);
CREATE INDEX dead_letters_reason_idx ON dead_letters (reason, recorded_at);

-- A random identity for this database. Redis dedup keys are scoped by it, so a
-- Redis shared by several databases (test runs, staging and production) never
-- vouches in one database for an event stored in another.
CREATE TABLE eventpulse_instance (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    instance_id uuid    NOT NULL DEFAULT gen_random_uuid()
);
INSERT INTO eventpulse_instance DEFAULT VALUES;
