-- Which consumers are running, as each one reports it every few seconds
-- (eventpulse-api's GET /pipeline/status and the dashboard's health panel).
-- Written outside the batch transactions: it is a status report, not part of
-- the exactly-once protocol. A member that stops cleanly deletes its row; one
-- killed leaves it behind, and readers judge it by `seen_at`.
CREATE TABLE consumer_members (
    member_id      uuid        PRIMARY KEY,
    group_id       text        NOT NULL,
    host           text        NOT NULL,
    pid            integer     NOT NULL,
    partitions     integer     NOT NULL,
    redis_degraded boolean     NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT now(),
    seen_at        timestamptz NOT NULL DEFAULT now()
);
