"""A live follower of a record's log (``GET /records/{id}/logs?after=<seq>``, the console and
``mae logs -f``) sees every line, also when two deploy replicas store lines of that record at
the same moment — on real MariaDB, with the deploy service's own storing function.

Two transactions stand for the two replicas: the first has inserted its lines and not yet
committed when the second stores more lines of the same record. Before, the second took
higher ids and committed first; a follower that read them moved ``after`` past the first's
lines, which it then never saw.
"""
import threading
import time
import uuid

from sqlalchemy import text
from sqlalchemy.orm import Session

from services.deploy.domain import records
from services.deploy.models import Record
from shared.timeutil import utcnow


def lines(record_id, tag, n):
    return [(f"{tag}-{uuid.uuid4().hex}", record_id, utcnow(), "test-1", "info", f"{tag} {i}") for i in range(n)]


def follow(db_engine, record_id, after):
    with Session(db_engine) as db:
        page = records.logs(db, record_id, after, 200)
    return [item["line"] for item in page["items"]], page["next_after"]


def test_a_follower_misses_no_line_when_two_replicas_store_lines_of_one_record_at_once(db_engine):
    with Session(db_engine) as db:
        record = Record(app="follow", action="deploy", subject="version", status="progressing",
                        created_by="t", created_at=utcnow())
        db.add(record)
        db.commit()
        record_id = record.id

    first = db_engine.connect()
    first.begin()
    records.store_log_lines(first, lines(record_id, "first", 3))  # not committed yet

    second_done = threading.Event()

    def second_replica():
        with db_engine.connect() as conn:
            with conn.begin():
                records.store_log_lines(conn, lines(record_id, "second", 2))
        second_done.set()

    worker = threading.Thread(target=second_replica)
    worker.start()
    time.sleep(0.5)
    seen, after = follow(db_engine, record_id, 0)  # the follower polls meanwhile
    first.commit()
    first.close()
    worker.join(30)
    assert second_done.is_set()
    more, after = follow(db_engine, record_id, after)
    seen += more
    assert sorted(seen) == sorted([f"first {i}" for i in range(3)] + [f"second {i}" for i in range(2)]), seen
    assert len(seen) == 5
    with db_engine.connect() as conn:
        order = [row[0] for row in conn.execute(text(
            "SELECT line FROM deploy_log_lines WHERE record_id = :r ORDER BY id"), {"r": record_id})]
    assert order[:3] == ["first 0", "first 1", "first 2"]  # seq follows commit order for the record
