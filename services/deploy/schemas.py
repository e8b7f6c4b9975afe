"""Message shapes of the deploy service: the events it publishes, each built by one function
here (used by the service and by the tests that play its part; docs/contracts.md).

Published (envelope from ``shared.events``, source ``deploy``):

* ``apply_requested`` — ``ApplyRequested``: the cluster service applies (or deletes) one
  target's manifests; ``request_id`` names the attempt, so a redelivery is recognised.
* ``log`` — ``LogLines``: lines of deploy records' logs (``LogLine`` each), stored by this
  service's own log consumer in one INSERT per batch.
* ``succeeded`` / ``failed`` — ``RecordFinished``: a deploy record reached its end
  (``record_finished_kind`` names the event); notify tells people.
* ``build_succeeded`` / ``build_failed`` — ``BuildFinished`` (``shared/build_event.py``, the
  shape notify reads too): a linked CI build became a version (or could not); notify tells people.

RPC answers are plain dicts from the ``domain`` modules' ``*_dict`` functions.
"""
from __future__ import annotations

from typing import Iterable, TypedDict

from shared.build_event import BuildFinished

APPLY_REQUESTED = "apply_requested"
LOG = "log"
SUCCEEDED = "succeeded"
FAILED = "failed"
BUILD_SUCCEEDED = "build_succeeded"
BUILD_FAILED = "build_failed"


class ApplyRequested(TypedDict, total=False):
    request_id: str
    record_id: int
    cluster: str
    namespace: str
    action: str          # "apply" | "delete"
    manifests: list
    sealed: dict         # only a version's Secret, sealed for this request (domain/secret_delivery.py)


class LogLine(TypedDict):
    record_id: int
    cluster: str | None
    level: str
    line: str
    time: str            # RFC 3339 UTC


class LogLines(TypedDict):
    lines: list[LogLine]


class TargetOutcome(TypedDict):
    cluster: str
    env: str | None
    status: str
    reason: str | None
    message: str | None


class RecordFinished(TypedDict):
    record_id: int
    app: str
    service: str | None
    version: str | None
    ingress: str | None
    action: str
    status: str
    reason: str | None
    targets: list[TargetOutcome]
    created_by: str


def apply_requested(record_id: int, cluster: str, attempt: int, namespace: str, action: str,
                    manifests: list) -> ApplyRequested:
    """One target's current attempt; ``request_id`` is ``<record>:<cluster>:<attempt>``."""
    return {"request_id": f"{record_id}:{cluster}:{attempt}", "record_id": record_id, "cluster": cluster,
            "namespace": namespace, "action": action, "manifests": manifests}


def log_line(record_id: int, cluster: str | None, level: str, line: str, time: str) -> LogLine:
    return {"record_id": record_id, "cluster": cluster, "level": level, "line": line, "time": time}


def log_lines(lines: Iterable[LogLine]) -> LogLines:
    return {"lines": list(lines)}


def target_outcome(cluster: str, env: str | None, status: str, reason: str | None,
                   message: str | None) -> TargetOutcome:
    return {"cluster": cluster, "env": env, "status": status, "reason": reason, "message": message}


def record_finished(record_id: int, app: str, service: str | None, version: str | None, ingress: str | None,
                    action: str, status: str, reason: str | None, targets: Iterable[TargetOutcome],
                    created_by: str) -> RecordFinished:
    """The ``succeeded`` / ``failed`` payload (the event is named by ``status``)."""
    return {"record_id": record_id, "app": app, "service": service, "version": version, "ingress": ingress,
            "action": action, "status": status, "reason": reason, "targets": list(targets),
            "created_by": created_by}


def record_finished_id(record_id: int) -> str:
    """The event id of a record's finished notice: one per record, so a consumer that sees
    it twice (the outbox relay resends after a crash) knows it is the same notice."""
    return f"deploy-record-{record_id}-finished"


def build_finished(app: str, service: str, ref: str, image: str | None, build_number, status: str,
                   link: str | None, reason: str) -> BuildFinished:
    """The ``build_succeeded`` / ``build_failed`` payload."""
    return {"app": app, "service": service, "ref": ref, "image": image, "build_number": build_number,
            "status": status, "link": link, "reason": reason}
