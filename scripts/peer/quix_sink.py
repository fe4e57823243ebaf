"""The peer in `scripts/bench.sh --peer`: Quix Streams' PostgreSQLSink
draining one pre-filled eventpulse topic into a database of its own.

It is what a plain Quix Streams application would do with our events: read
each record, turn the JSON into a flat row and let the sink write it. Like the
sink itself it neither validates nor deduplicates: duplicates and invalid
events that still parse as JSON are stored; records that do not parse (or are
not UTF-8) are skipped, since the sink only takes dictionaries.

Quix's defaults are kept (5 s checkpoints, at-least-once), except that it
stops by itself once it has processed `--messages` records, so its last
checkpoint (sink flush, then the Kafka offset commit) runs at once instead of
up to 5 s later. Prints one JSON line: when the first record was consumed,
when the last batch was written, and its own CPU time and peak RSS, which the
harness turns into figures measured the same way as our consumer's.
"""

import argparse
import json
import resource
import tempfile
import time
from datetime import datetime
from importlib.metadata import version
from urllib.parse import unquote, urlsplit

from quixstreams import Application
from quixstreams.sinks.community.postgresql import PostgreSQLSink


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--table", default="events")
    parser.add_argument("--messages", type=int, required=True)
    # A safety net only: the run normally ends at --messages.
    parser.add_argument("--idle-timeout", type=float, default=60.0)
    return parser.parse_args()


def text(value):
    """Scalars as text: the sink types a column by its first value, and our
    invalid records put numbers or lists where strings belong."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def occurred_at(value):
    # Python 3.11 reads RFC 3339, `Z` included; anything else is left out.
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def to_row(raw):
    """One event as the columns our own table has; None if it is not a JSON object."""
    try:
        event = json.loads(raw)
    except ValueError:  # UnicodeDecodeError is one too
        return None
    if not isinstance(event, dict):
        return None
    payload = event.get("payload")
    if not isinstance(payload, dict):
        payload = None
    return {
        "event_id": text(event.get("eventId")),
        "event_type": text(event.get("type")),
        "user_id": text(payload.get("userId")) if payload else None,
        "occurred_at": occurred_at(event.get("timestamp")),
        # A dict: the sink makes it a JSONB column (psycopg2's Json adapter).
        "payload": payload,
    }


class TimedSink(PostgreSQLSink):
    """The sink as it is, noting when its last batch transaction committed."""

    last_write = None

    def write(self, batch):
        super().write(batch)
        self.last_write = time.time()


class Progress:
    """Counts processed records; stops the app at the last one."""

    def __init__(self, expected):
        self.expected = expected
        self.processed = 0
        self.first = None
        self.app = None

    def on_processed(self, topic, partition, offset):
        if self.first is None:
            self.first = time.time()
        self.processed += 1
        if self.processed >= self.expected:
            self.app.stop()


def sink_for(database_url, table):
    url = urlsplit(database_url)
    return TimedSink(
        host=url.hostname,
        port=url.port or 5432,
        dbname=url.path.lstrip("/"),
        user=unquote(url.username or "postgres"),
        password=unquote(url.password or ""),
        table_name=table,
        # Our rows carry the user id themselves; the Kafka key and timestamp
        # columns would only add work to the peer's side.
        include_metadata=False,
    )


def main():
    args = parse_args()
    progress = Progress(args.messages)
    sink = sink_for(args.database_url, args.table)
    with tempfile.TemporaryDirectory(prefix="quix-state-") as state_dir:
        app = Application(
            broker_address=args.brokers,
            consumer_group=args.group,
            auto_offset_reset="earliest",
            loglevel="WARNING",
            state_dir=state_dir,
            on_message_processed=progress.on_processed,
        )
        progress.app = app
        # Bytes in, so a record that is not JSON is skipped by to_row rather
        # than stopping the app in the deserializer.
        topic = app.topic(args.topic, key_deserializer="bytes", value_deserializer="bytes")
        rows = app.dataframe(topic).apply(to_row).filter(lambda row: row is not None)
        rows.sink(sink)
        app.run(timeout=args.idle_timeout)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "quixstreams_version": version("quixstreams"),
                "processed": progress.processed,
                "first_consumed_at": progress.first,
                "last_write_at": sink.last_write,
                "exited_at": time.time(),
                "cpu_seconds": usage.ru_utime + usage.ru_stime,
                "peak_rss_kib": usage.ru_maxrss,
            }
        )
    )


if __name__ == "__main__":
    main()
