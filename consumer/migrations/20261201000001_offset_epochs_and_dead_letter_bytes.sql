-- Offset epochs. Kafka can hand out the same offsets twice: a topic deleted
-- and recreated, a log truncated by an unclean leader election, offsets reset
-- by an operator. When the consumer sees a partition's offsets go back, it
-- starts a new epoch for that partition instead of skipping the "already
-- stored" offsets. Positions compare as (epoch, next_offset), so offsets still
-- only move forward and a zombie of an older epoch cannot move them back.
ALTER TABLE consumer_offsets ADD COLUMN epoch integer NOT NULL DEFAULT 0;

-- A dead letter is one message: (topic, partition, offset) within an epoch.
-- The message itself is kept here too (key and value as they arrived), so a
-- record too large to re-produce whole to the dead-letter topic, which then
-- gets a truncated copy, still has its full bytes somewhere.
ALTER TABLE dead_letters ADD COLUMN epoch integer NOT NULL DEFAULT 0;
ALTER TABLE dead_letters ADD COLUMN message_key bytea;
ALTER TABLE dead_letters ADD COLUMN message_value bytea;
ALTER TABLE dead_letters DROP CONSTRAINT dead_letters_pkey;
ALTER TABLE dead_letters ADD PRIMARY KEY (topic, kafka_partition, epoch, kafka_offset);
