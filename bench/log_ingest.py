"""Deploy log lines persisted through the bus, next to raw batched INSERTs into the same MariaDB.

1. Baseline: N rows written straight into ``deploy_log_lines`` with pymysql,
   ``INSERT IGNORE`` by executemany in batches of 2,000 (what the deploy
   service does per batch, minus everything else).
2. Through the bus: N ``cluster.log`` events (one line each, as the cluster
   service publishes them) are queued on RabbitMQ while the deploy service is
   down, then one deploy replica is started; lines/s is measured from its first
   persisted line to the last, then 10 % of the events are sent again
   (a redelivery) and the row count must not change.

Target (issue 5): ≥ 20,000 lines/s through the bus, and ≥ 0.5 × the baseline.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import fresh_backends  # noqa: E402
from bench.rpc_floor import free_port  # noqa: E402
from scripts.stack import Stack  # noqa: E402

LINES = int(os.environ.get("BENCH_LINES", 100_000))
# Lines per event: 1 is how cluster.log travels (docs/contracts.md); deploy's own
# transition lines travel as one deploy.log event with a list of lines.
PER_EVENT = int(os.environ.get("BENCH_LINES_PER_EVENT", 1))
DB = "mae_bench_logs"
VHOST = "mae-bench-logs"
INSERT = ("INSERT IGNORE INTO deploy_log_lines (line_id, record_id, time, cluster, level, line) "
          "VALUES (%s, %s, %s, %s, %s, %s)")


def connect():
    import pymysql

    return pymysql.connect(host="127.0.0.1", user="root", database=DB, autocommit=True)


def count(conn, record_id: int) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM deploy_log_lines WHERE record_id = %s", (record_id,))
        return cur.fetchone()[0]


def baseline(conn, n: int) -> float:
    record_id = 1
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    rows = [(f"base-{uuid.uuid4().hex}", record_id, now, "test", "info",
             f"pulled image registry/app:{i} for pod web-v1-{i}") for i in range(n)]
    started = time.perf_counter()
    with conn.cursor() as cur:
        for i in range(0, n, 2000):
            cur.executemany(INSERT, rows[i:i + 2000])
    elapsed = time.perf_counter() - started
    assert count(conn, record_id) == n
    return n / elapsed


def publish(amqp_uri: str, events: list[dict]) -> None:
    from kombu import Connection, Exchange, Producer, Queue

    exchange = Exchange("cluster.events", type="topic", durable=True)
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        exchange(channel).declare()
        # The deploy service's queue, declared as it declares it, so nothing is dropped
        # while it is not running yet.
        Queue("deploy-log-lines", exchange=exchange, routing_key="log", durable=True)(channel).declare()
        producer = Producer(channel, exchange=exchange, routing_key="log", serializer="json")
        for event in events:
            producer.publish(event, delivery_mode=2)


def main() -> int:
    from shared.secretbox import generate_key

    db_url, amqp_uri = fresh_backends(DB, VHOST)
    conn = connect()
    with conn.cursor() as cur:
        cur.execute("DELETE FROM deploy_log_lines")
    raw = baseline(conn, LINES)

    record_id = 2
    stamp = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    def line(i):
        return {"record_id": record_id, "cluster": "test", "level": "info", "time": stamp,
                "line": f"pulled image registry/app:{i} for pod web-v1-{i}"}
    if PER_EVENT == 1:
        events = [{"event_id": uuid.uuid4().hex, "type": "cluster.log", "source": "cluster", "occurred_at": stamp,
                   "data": line(i)} for i in range(LINES)]
    else:
        events = [{"event_id": uuid.uuid4().hex, "type": "cluster.log", "source": "cluster", "occurred_at": stamp,
                   "data": {"lines": [line(i + j) for j in range(PER_EVENT)]}} for i in range(0, LINES, PER_EVENT)]
    started = time.perf_counter()
    publish(amqp_uri, events)
    publish_rate = len(events) / (time.perf_counter() - started)

    run_dir = Path(tempfile.mkdtemp(prefix="mae-bench-logs-"))
    stack = Stack(run_dir=run_dir, config=ROOT / "config" / "test.yaml", gateway_port=free_port(),
                  localauth_port=0, port_offset=3500,
                  env={"DB_URL": db_url, "AMQP_URI": amqp_uri, "REDIS_URL": "redis://127.0.0.1:6379/2",
                       "REDIS_PREFIX": "mae-bench-logs", "MAE_SECRET_KEY": generate_key(), "LOG_LEVEL": "WARNING"})
    stack.start("deploy")
    try:
        deadline = time.monotonic() + 120
        while count(conn, record_id) == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        t0, c0 = time.perf_counter(), count(conn, record_id)
        while (c := count(conn, record_id)) < LINES and time.monotonic() < deadline:
            time.sleep(0.02)
        elapsed = time.perf_counter() - t0
        bus = (c - c0) / elapsed if elapsed > 0 else 0.0
        # A redelivery of 10 % of the events must add nothing.
        publish(amqp_uri, events[: len(events) // 10])
        time.sleep(3)
        final = count(conn, record_id)
    finally:
        stack.stop_all()
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(DISTINCT line_id) FROM deploy_log_lines WHERE record_id = %s", (record_id,))
        distinct = cur.fetchone()[0]
    ratio = bus / raw
    print(f"log_ingest: {LINES} lines, {PER_EVENT} line(s) per event, {os.cpu_count()} cores, one deploy replica")
    print(f"  raw batched INSERT (baseline)    {raw:10.0f} lines/s")
    print(f"  publish to RabbitMQ (bench side) {publish_rate:10.0f} events/s  (queued before the service starts)")
    print(f"  through the bus into MariaDB     {bus:10.0f} lines/s   (target >= 20000)")
    print(f"  bus / baseline: {ratio:.2f}  (target >= 0.50)")
    print(f"  rows after a 10 % redelivery: {final} (expected {LINES}), distinct line ids {distinct}")
    ok = bus >= 20000 and ratio >= 0.5 and final == LINES == distinct
    print("  result:", "meets the targets" if ok else "BELOW TARGET")
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
