"""Prints the demo's figures: what the producer says it sent (its summary JSON),
what Postgres gained, and what the consumer's /metrics counted.

Usage: demo_report.py SUMMARY_JSON METRICS_URL STORED_DELTA DEAD_DELTA SECONDS P50_MS P99_MS
"""
import json
import sys
import urllib.request


def metric(body: str, name: str, label: str = "") -> float:
    total = 0.0
    for line in body.splitlines():
        if line.startswith(name) and line[len(name)] in " {" and label in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def main() -> int:
    summary_path, url, stored, dead, seconds, p50, p99 = sys.argv[1:8]
    summary = json.load(open(summary_path))
    body = urllib.request.urlopen(url, timeout=5).read().decode()
    stored, dead, seconds = int(stored), int(dead), float(seconds)
    expected, invalid = summary["valid_unique"], summary["invalid_total"]
    rows = [
        ("produced (acked by the broker)", summary["acked"]),
        ("  distinct valid events", expected),
        ("  duplicates injected", summary["duplicates"]),
        ("  invalid injected", invalid),
        ("stored in Postgres", stored),
        ("duplicates dropped (in-batch / redis / postgres)", "{:.0f} / {:.0f} / {:.0f}".format(
            metric(body, "eventpulse_duplicates_total", 'layer="in_batch"'),
            metric(body, "eventpulse_duplicates_total", 'layer="redis"'),
            metric(body, "eventpulse_duplicates_total", 'layer="postgres"'))),
        ("dead-lettered (events.dlq, with reason)", dead),
        ("lost (valid sent - stored)", expected - stored),
        ("producer rate (events/s)", "{:.0f}".format(summary["rate_achieved"])),
        ("consumer throughput (stored events/s)", "{:.0f}".format(stored / seconds if seconds else 0)),
        ("produce-to-row latency p50 / p99 (ms)", "{} / {}".format(p50, p99)),
        ("consumer resident memory (MiB)", "{:.1f}".format(metric(body, "process_resident_memory_bytes") / 2**20)),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    ok = stored == expected and dead == invalid
    print("demo: OK, every valid event stored once, every invalid one dead-lettered" if ok
          else "demo: MISMATCH, see the figures above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
