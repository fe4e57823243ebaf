-- The Kafka timestamp of the record just before each stored position. A
-- partition that starts checks that the record at next_offset - 1 still has
-- this timestamp: a topic deleted and recreated (or a log replaced) holds
-- other records at the same offsets, even once it has grown past the stored
-- one. NULL: unknown (written before this check existed, or a new epoch).
ALTER TABLE consumer_offsets ADD COLUMN last_record_ms bigint;
