"""Idempotency keys remembered and recalled on MariaDB (services/deploy/domain/request_keys.py).

The deploy service runs ``recall`` then ``remember`` in the transaction that creates the
record (``DeployService._once``); these tests drive the same functions on the run's
database: the same caller and key get the stored answer back, another request under
that key is refused, a twin racing the first is told to retry, and keys expire.
"""
from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import eventlet
import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from services.deploy.domain import request_keys
from services.deploy.models import RequestKey
from shared.errors import Conflict, Invalid
from shared.timeutil import utcnow

REQUEST = {"action": "deploy", "app": "shop", "service": "web", "version": "v1", "clusters": ["test"]}


@pytest.fixture
def actors(db_engine):
    """Two callers of this test's own; whatever was committed for them is deleted afterwards
    (a test asks for this before ``db_session``, whose open transaction would hold the rows)."""
    tag = uuid.uuid4().hex[:8]
    names = (f"alice-{tag}", f"bob-{tag}")
    yield names
    with db_engine.begin() as conn:
        conn.execute(delete(RequestKey).where(RequestKey.actor.in_(names)))


def recorded(engine, actor, key, answer, fingerprint=None):
    """What ``_once`` leaves committed: the key, then the record's answer on its row."""
    with Session(engine) as db:
        row = request_keys.remember(db, actor, key, fingerprint or request_keys.fingerprint(**REQUEST), {}, utcnow())
        row.answer = answer
        db.commit()


def test_a_new_key_recalls_nothing(actors, db_session):
    assert request_keys.recall(db_session, actors[0], str(uuid.uuid4()), request_keys.fingerprint(**REQUEST)) is None


def test_the_same_caller_key_and_request_get_the_first_answer_back(db_engine, actors):
    alice, _ = actors
    key = str(uuid.uuid4())
    recorded(db_engine, alice, key, {"record_id": 41, "status": "pending"})
    with Session(db_engine) as db:
        answer = request_keys.recall(db, alice, key, request_keys.fingerprint(**dict(reversed(list(REQUEST.items())))))
        assert answer == {"record_id": 41, "status": "pending"}
        answer["status"] = "changed by the caller"  # a copy: the stored answer stays as it was
        assert request_keys.recall(db, alice, key, request_keys.fingerprint(**REQUEST)) == {"record_id": 41, "status": "pending"}


def test_the_same_key_for_another_request_is_refused(db_engine, actors):
    alice, _ = actors
    key = str(uuid.uuid4())
    recorded(db_engine, alice, key, {"record_id": 42})
    with Session(db_engine) as db:
        with pytest.raises(Invalid) as caught:
            request_keys.recall(db, alice, key, request_keys.fingerprint(**{**REQUEST, "version": "v2"}))
        assert caught.value.details == {"field": "Idempotency-Key"}
        # ... and that refusal left the first answer where it was.
        assert request_keys.recall(db, alice, key, request_keys.fingerprint(**REQUEST)) == {"record_id": 42}


def test_keys_belong_to_their_caller(db_engine, actors):
    alice, bob = actors
    key = "shared-key-" + uuid.uuid4().hex
    recorded(db_engine, alice, key, {"record_id": 43})
    with Session(db_engine) as db:
        assert request_keys.recall(db, bob, key, request_keys.fingerprint(**REQUEST)) is None
        assert request_keys.recall(db, bob, key, request_keys.fingerprint(**{**REQUEST, "app": "other"})) is None
    recorded(db_engine, bob, key, {"record_id": 44}, request_keys.fingerprint(**{**REQUEST, "app": "other"}))
    with Session(db_engine) as db:
        assert request_keys.recall(db, alice, key, request_keys.fingerprint(**REQUEST)) == {"record_id": 43}
        assert request_keys.recall(db, bob, key, request_keys.fingerprint(**{**REQUEST, "app": "other"})) == {"record_id": 44}


def test_only_a_hash_of_the_key_is_stored(db_engine, actors):
    alice, _ = actors
    key = "secret-looking-" + uuid.uuid4().hex
    recorded(db_engine, alice, key, {"record_id": 45})
    with Session(db_engine) as db:
        [row] = db.scalars(select(RequestKey).where(RequestKey.actor == alice)).all()
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest() != key
    assert row.fingerprint == request_keys.fingerprint(**REQUEST)


def test_a_twin_of_a_request_already_recorded_is_told_to_retry(db_engine, actors):
    alice, _ = actors
    key = str(uuid.uuid4())
    recorded(db_engine, alice, key, {"record_id": 46})
    with Session(db_engine) as db:
        with pytest.raises(Conflict) as caught:
            request_keys.remember(db, alice, key, request_keys.fingerprint(**REQUEST), {}, utcnow())
        assert caught.value.details == {"field": "Idempotency-Key"}


@pytest.mark.parametrize("first_commits", [True, False], ids=["first-commits", "first-rolls-back"])
def test_a_twin_racing_the_first_waits_for_it(db_engine, actors, first_commits):
    """Two replicas record the same key at once: the second waits on the first's row; if
    the first commits the second gets 409 (retry: it will then recall the answer), if
    the first rolls back the second records the request itself."""
    alice, _ = actors
    key, fingerprint = str(uuid.uuid4()), request_keys.fingerprint(**REQUEST)
    first, second = Session(db_engine), Session(db_engine)
    try:
        request_keys.remember(first, alice, key, fingerprint, {"record_id": 47}, utcnow())

        def twin():
            try:
                request_keys.remember(second, alice, key, fingerprint, {"record_id": 48}, utcnow())
                second.commit()
                return "recorded"
            except Conflict:
                second.rollback()
                return "conflict"
        racing = eventlet.spawn(twin)
        eventlet.sleep(0.5)
        assert not racing.dead, "the twin should wait on the first's uncommitted row"
        (first.commit if first_commits else first.rollback)()
        outcome = racing.wait()
    finally:
        first.close()
        second.close()
    with Session(db_engine) as db:
        answer = request_keys.recall(db, alice, key, fingerprint)
    if first_commits:
        assert (outcome, answer) == ("conflict", {"record_id": 47})
    else:
        assert (outcome, answer) == ("recorded", {"record_id": 48})


def test_keys_older_than_a_day_are_forgotten(actors, db_session):  # the session ends first
    alice, _ = actors
    now = utcnow()
    fingerprint = request_keys.fingerprint(**REQUEST)
    request_keys.remember(db_session, alice, "old", fingerprint, {"record_id": 1}, now - request_keys.KEEP - timedelta(minutes=1))
    request_keys.remember(db_session, alice, "recent", fingerprint, {"record_id": 2}, now - request_keys.KEEP + timedelta(minutes=1))
    assert request_keys.forget_expired(db_session, now) >= 1
    db_session.expire_all()
    assert request_keys.recall(db_session, alice, "old", fingerprint) is None  # the key may be used afresh
    assert request_keys.recall(db_session, alice, "recent", fingerprint) == {"record_id": 2}
