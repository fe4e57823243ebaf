-- Retention marks a partition before it starts dropping it, so that a
-- drop a crash interrupted is finished by the next run (whatever the
-- retention setting is by then), while a partition an operator detached by
-- hand (to archive it, say) is left alone.
ALTER TABLE event_partitions ADD COLUMN dropping_since timestamptz;
