"""Idempotency keys for the requests that create a deploy record.

A client that lost the answer to ``POST …/deploy`` (a timeout, a 503 while the broker
restarted) cannot know whether the deploy was recorded. Sending the same
``Idempotency-Key`` header again gets the first answer back instead of a second
record (the IETF httpapi draft's semantics, as Stripe's API has them):

* same caller, same key, same request → the stored answer, marked replayed;
* same caller, same key, another request → 422, nothing done;
* the same key while its first request is still being recorded → 409, retry.

Keys are kept for ``KEEP`` and belong to the caller (two people's keys never meet).
The key row is written in the record's own transaction, so there is never a
remembered key without its record, nor two records for one key.
"""
from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta

from typing import Callable

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.deploy.models import RequestKey
from shared.errors import Conflict, Invalid

KEEP = timedelta(hours=24)
# Printable ASCII without spaces, as HTTP header values allow; long enough for a UUID or more.
KEY = re.compile(r"[\x21-\x7e]{1,255}\Z")


def check_key(key) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not KEY.match(key):
        raise Invalid("The Idempotency-Key header must be 1 to 255 visible ASCII characters (a UUID is usual).",
                      {"field": "Idempotency-Key"})
    return key


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint(**request) -> str:
    return _hash(json.dumps(request, sort_keys=True, default=str))


def recall(db: Session, actor: str, key: str, fingerprint: str) -> dict | None:
    """The answer given the first time this caller sent ``key``, or None if it is new."""
    row = db.get(RequestKey, (actor, _hash(key)))
    if row is None:
        return None
    if row.fingerprint != fingerprint:
        raise Invalid("This Idempotency-Key was already used for a different request; "
                      "use a new key for a new request.", {"field": "Idempotency-Key"})
    return dict(row.answer)


def remember(db: Session, actor: str, key: str, fingerprint: str, answer: dict, now: datetime) -> RequestKey:
    row = RequestKey(actor=actor, key_hash=_hash(key), fingerprint=fingerprint, answer=answer, created_at=now)
    db.add(row)
    try:
        db.flush()
    except IntegrityError:
        # Another replica is recording the same request right now; its answer wins.
        raise Conflict("A request with this Idempotency-Key is still being processed; "
                       "send it again in a moment to get its answer.", {"field": "Idempotency-Key"}) from None
    return row


def answer_once(db: Session, actor: str, key, request: dict, create: Callable[[], dict], now: datetime) -> dict:
    """``create()``'s answer, made once per caller and ``key`` (no key: made every time).

    The key is written first, in the record's transaction: a concurrent twin waits on
    its row and gets 409 instead of making a second record."""
    key = check_key(key)
    if key is None:
        return create()
    request_print = fingerprint(**request)
    answer = recall(db, actor, key, request_print)
    if answer is not None:
        return {**answer, "replayed": True}
    remembered = remember(db, actor, key, request_print, {}, now)
    answer = create()
    remembered.answer = answer
    return answer


def forget_expired(db: Session, now: datetime) -> int:
    return db.execute(delete(RequestKey).where(RequestKey.created_at < now - KEEP)).rowcount or 0
