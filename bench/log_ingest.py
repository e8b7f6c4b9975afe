"""Deploy log lines persisted through the bus, next to raw batched INSERTs into the same MariaDB.

1. Baseline: N rows written straight into ``deploy_log_lines`` with pymysql,
   ``INSERT IGNORE`` by executemany in batches of 2,000 (what the deploy
   service does per batch, minus everything else).
2. Produced as in production: the N lines are written by applies (``APPLY_LINES``
   lines each, ``CONCURRENCY`` at a time — the cluster service's worker count)
   in a service container with the cluster service's own ``LogShipper``: each
   apply stages its lines in its transaction's outbox, and the shipper merges
   committed lines of concurrent applies into ``cluster.log`` events with
   ``lines: [...]`` (docs/contracts.md). They queue on RabbitMQ while the
   deploy service is down; the producer's lines/s is printed (not a target).
3. Through the bus: one deploy replica is started; lines/s is measured from its
   first persisted line to the last, then 10 % of the events are sent again
   (a redelivery) and the row count must not change.

Target (issue 5): ≥ 20,000 lines/s through the bus, and ≥ 0.5 × the baseline.
"""
from __future__ import annotations

import eventlet

eventlet.monkey_patch()  # noqa: E402  (the producer runs in a nameko container here)

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
# One line per object applied: a version is a Deployment and a Service; with an HPA
# and an Ingress, four.
APPLY_LINES = int(os.environ.get("BENCH_APPLY_LINES", 4))
CONCURRENCY = 10  # the cluster service's max_workers
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


def declare_queue(amqp_uri: str) -> None:
    """The deploy service's queue, declared as it declares it, so nothing is dropped
    while it is not running yet."""
    from kombu import Connection, Exchange

    from shared.queues import work_queue

    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        exchange = Exchange("cluster.events", type="topic", durable=True)
        exchange(channel).declare()
        work_queue("deploy-log-lines", {}, "deploy", exchange=exchange, routing_key="log")(channel).declare()


def publish(amqp_uri: str, events: list[dict]) -> None:
    from kombu import Connection, Exchange, Producer

    exchange = Exchange("cluster.events", type="topic", durable=True)
    with Connection(amqp_uri) as conn:
        producer = Producer(conn.channel(), exchange=exchange, routing_key="log", serializer="json")
        for event in events:
            producer.publish(event, delivery_mode=2)


def produce(config: dict, record_id: int) -> float:
    """Write LINES lines as applies do (see the module docstring); returns lines/s."""
    from nameko.containers import ServiceContainer
    from sqlalchemy import create_engine, func, select

    from services.cluster.logship import LogShipper
    from shared import outbox
    from shared.db import Database
    from shared.events import EventPublisher
    from shared.service import rpc

    class Applies:
        name = "cluster"
        db = Database()
        events = EventPublisher()
        log_lines = LogShipper()

        @rpc
        def apply(self, first, count):
            for i in range(first, first + count):
                self.log_lines.add(record_id, "test", "info", f"pulled image registry/app:{i} for pod web-v1-{i}")
                eventlet.sleep(0)  # an apply waits for the API server between objects
            self.log_lines.flush()

    container = ServiceContainer(Applies, {**config, "max_workers": CONCURRENCY})
    container.start()
    entrypoint = next(e for e in container.entrypoints if e.method_name == "apply")
    engine = create_engine(config["DB_URL"])
    table = outbox.model_for("cluster").__table__
    started = time.perf_counter()
    for first in range(0, LINES, APPLY_LINES):
        container.spawn_worker(entrypoint, (first, min(APPLY_LINES, LINES - first)), {})
    while container._worker_threads:
        eventlet.sleep(0.01)
    with engine.connect() as conn:  # shipped: nothing left in the outbox
        while conn.execute(select(func.count()).select_from(table)).scalar():
            conn.rollback()
            eventlet.sleep(0.005)
    rate = LINES / (time.perf_counter() - started)
    container.stop()
    engine.dispose()
    return rate


def queued_events(amqp_uri: str) -> list[dict]:
    """What the producer left on the queue (read back without taking it off)."""
    from kombu import Connection, Queue

    out = []
    with Connection(amqp_uri) as conn:
        queue = Queue("deploy-log-lines")(conn.channel())
        held = []
        while (message := queue.get(no_ack=False)) is not None:
            out.append(message.payload)
            held.append(message)
        for message in held:
            message.requeue()
    return out


def main() -> int:
    from shared.secretbox import generate_key

    db_url, amqp_uri = fresh_backends(DB, VHOST)
    conn = connect()
    with conn.cursor() as cur:
        cur.execute("DELETE FROM deploy_log_lines")
    raw = baseline(conn, LINES)

    # A real record: storing its lines locks its row (one record's lines commit in seq order,
    # services/deploy/domain/records.py), so every batch here — all lines of one record, the
    # worst case — waits for the one before it.
    with conn.cursor() as cur:
        cur.execute("INSERT INTO deploy_records (id, app, action, subject, status, created_by, created_at) "
                    "VALUES (2, 'bench', 'deploy', 'version', 'progressing', 'bench', NOW(6))")
    record_id = 2  # the baseline's rows are record 1's
    from shared.config import ROOT as CONFIG_ROOT, load_config

    config = load_config(CONFIG_ROOT / "config" / "test.yaml")
    config.update({"DB_URL": db_url, "AMQP_URI": amqp_uri, "REDIS_URL": "redis://127.0.0.1:6379/2",
                   "REDIS_PREFIX": "mae-bench-logs", "SECRET_KEY": generate_key(), "LOG_LEVEL": "WARNING"})
    declare_queue(amqp_uri)
    produced = produce(config, record_id)
    events = queued_events(amqp_uri)
    per_event = sum(len(e["data"]["lines"]) for e in events) / max(1, len(events))

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
    print(f"log_ingest: {LINES} lines from applies of {APPLY_LINES} lines, {CONCURRENCY} at a time, "
          f"{os.cpu_count()} cores, one deploy replica")
    print(f"  raw batched INSERT (baseline)    {raw:10.0f} lines/s")
    print(f"  produced (LogShipper → RabbitMQ) {produced:10.0f} lines/s  ({len(events)} cluster.log events, "
          f"{per_event:.1f} lines each; queued before the deploy service starts)")
    print(f"  through the bus into MariaDB     {bus:10.0f} lines/s   (target >= 20000)")
    print(f"  bus / baseline: {ratio:.2f}  (target >= 0.50)")
    print(f"  rows after a 10 % redelivery: {final} (expected {LINES}), distinct line ids {distinct}")
    ok = bus >= 20000 and ratio >= 0.5 and final == LINES == distinct
    print("  result:", "meets the targets" if ok else "BELOW TARGET")
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
