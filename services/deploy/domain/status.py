"""The deploy status machine: what an apply result, a status report or the clock does to a target.

A target (one cluster of one record) walks

    pending → applying → applied → progressing → succeeded | failed,   or superseded.

Rules that keep it exact when messages are duplicated, reordered or late:

* It never moves backwards (``RANK``) and a final status never changes.
* A report counts only if it is about the object this record applied (the
  Deployment's ``mae.io/record-id`` annotation), of the incarnation the apply
  produced (uid), no older than the generation the apply produced, and newer
  than the last report the target accepted — compared in the report order of
  ``shared/reportorder.py`` (resourceVersion, then the operator's per-stream
  versions), then by ``observed_generation``; anything else changes nothing.
* Each decision is computed from the report alone plus what the target knows
  (level-triggered), so a re-sent report heals a lost one.

Functions here take any object with the ``Target`` attributes (the
SQLAlchemy row has them too) and return the log lines of what changed.
Times are naive UTC datetimes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.deploy.domain import names
from services.deploy.domain.refusals import pods_refused_reason, refusal, refused_reason
from shared import reportorder

PENDING, APPLYING, APPLIED, PROGRESSING = "pending", "applying", "applied", "progressing"
SUCCEEDED, FAILED, SUPERSEDED = "succeeded", "failed", "superseded"
STATUSES = (PENDING, APPLYING, APPLIED, PROGRESSING, SUCCEEDED, FAILED, SUPERSEDED)
RANK = {PENDING: 0, APPLYING: 1, APPLIED: 2, PROGRESSING: 3, SUCCEEDED: 4, FAILED: 4, SUPERSEDED: 4}
FINAL = frozenset({SUCCEEDED, FAILED, SUPERSEDED})
UNFINISHED = (PENDING, APPLYING, APPLIED, PROGRESSING)

DEFAULT_DEADLINE = 600
# How long the cluster may refuse a rollout's pods before the target fails (the
# service's DEPLOY_REFUSED_SECONDS); some refusals clear by themselves, e.g. a new
# namespace's service account not yet created, or quota freed by a finishing rollout.
DEFAULT_REFUSED_SECONDS = 10
ZERO_REPLICAS = {"desired": 0, "updated": 0, "ready": 0, "available": 0, "unavailable": 0}


@dataclass
class Target:
    record_id: int
    cluster: str
    status: str = PENDING
    reason: str | None = None
    message: str | None = None
    action: str = "apply"                 # "apply" or "delete"
    has_deployment: bool = True           # runtime reports decide only when there is a Deployment
    image: str | None = None
    applied_uid: str | None = None
    applied_generation: int | None = None
    seen_rv: int | None = None
    seen_version: str | None = None
    seen_observed_generation: int | None = None
    replicas: dict = field(default_factory=dict)
    progress_deadline_seconds: int = DEFAULT_DEADLINE
    last_progress_at: datetime | None = None
    refused_since: datetime | None = None
    refusal: str | None = None
    finished_at: datetime | None = None


Line = tuple[str, str]  # (level, text)


def _move(target, status: str, now: datetime, reason: str | None = None,
          message: str | None = None) -> list[Line]:
    """Forward only; returns the log line of the transition (or nothing)."""
    if target.status in FINAL or RANK[status] < RANK[target.status] or status == target.status:
        return []
    old = target.status
    target.status = status
    target.reason = reason
    target.message = message
    if status in FINAL:
        target.finished_at = now
    else:
        target.last_progress_at = now
    level = "error" if status == FAILED else "info"
    text = f"{old} → {status}" + (f": {reason}" if reason else "")
    return [(level, text)]


def requested(target, now: datetime) -> list[Line]:
    """The apply request left for the cluster service."""
    return _move(target, APPLYING, now)


def supersede(target, by_record: int, now: datetime) -> list[Line]:
    if target.status in FINAL:
        return []
    return _move(target, SUPERSEDED, now, f"a newer deploy (record {by_record}) replaced this one on "
                                          f"{target.cluster}")


# -- cluster.apply_result ------------------------------------------------------------

def apply_result(target, result: dict, now: datetime) -> list[Line]:
    if target.status in FINAL:
        return []
    if not result.get("ok"):
        error = result.get("error") or {}
        return _move(target, FAILED, now, refused_reason(error), error.get("message"))
    if result.get("action") == "delete" or target.action == "delete":
        return _move(target, SUCCEEDED, now, "removed from the cluster")
    deployment = next((o for o in result.get("objects") or [] if o.get("kind") == "Deployment"), None)
    if deployment is not None:
        target.applied_uid = deployment.get("uid") or target.applied_uid
        generation = deployment.get("generation")
        if isinstance(generation, int):
            target.applied_generation = generation
    if not target.has_deployment:
        # Services, Ingresses, ConfigMaps are done once the API server took them.
        return _move(target, SUCCEEDED, now, "applied")
    lines = _move(target, APPLIED, now)
    target.last_progress_at = now
    return lines


# -- cluster.resource_status ---------------------------------------------------------

def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def is_for(target, report: dict) -> bool:
    """Whether ``report`` is about the object this target's record applied."""
    annotations = report.get("annotations") or {}
    return annotations.get(names.RECORD_ID) == str(target.record_id)


def is_news(target, report: dict) -> bool:
    """Newer than anything the target accepted, of the right object and generation."""
    if target.applied_uid and report.get("uid") and report["uid"] != target.applied_uid:
        return False  # an older (deleted) or foreign incarnation of the name
    if target.applied_generation is not None and _int(report.get("generation")) < target.applied_generation:
        return False  # the object as it was before this record's apply
    if target.seen_rv is None and target.seen_version is None:
        return True
    key = (reportorder.key(report), _int(report.get("observed_generation")))
    seen = target.seen_version or reportorder.of_version(target.seen_rv)
    return key > (seen, target.seen_observed_generation or -1)


def judge(report: dict, applied_generation: int | None, image: str | None = None) -> tuple[str, str | None, str | None]:
    """(status, reason, message) that this report alone says."""
    replicas = {**ZERO_REPLICAS, **(report.get("replicas") or {})}
    generation = _int(report.get("generation"))
    observed = _int(report.get("observed_generation"))
    target_generation = max(generation, applied_generation or 0)
    # Pods speak for this rollout only once the controller has seen its template, and
    # only those of the current revision: a pod of the previous (say, failing) rollout
    # that is still being scaled down says nothing about this one.
    pods = [p for p in report.get("pods") or [] if not p.get("old")] if observed >= target_generation else []
    for pod in pods:
        waiting = pod.get("waiting_reason")
        if waiting in ("ImagePullBackOff", "ErrImagePull"):
            if waiting == "ImagePullBackOff" or "not found" in (pod.get("message") or "").lower():
                what = f"The image {image} cannot be pulled" if image else "The image cannot be pulled"
                return FAILED, (f"{what}: check the image name and tag, and that "
                                "the cluster can reach its registry"), pod.get("message")
    for pod in pods:
        if pod.get("waiting_reason") == "CrashLoopBackOff":
            restarts = pod.get("restart_count") or 0
            return FAILED, (f"The container keeps crashing (CrashLoopBackOff, restarted {restarts} times): "
                            "look at its logs"), pod.get("message")
    conditions = {c.get("type"): c for c in report.get("conditions") or []}
    progressing = conditions.get("Progressing") or {}
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        deadline = report.get("progress_deadline_seconds") or DEFAULT_DEADLINE
        return FAILED, (f"Not ready before the progress deadline ({deadline} s): "
                        f"{replicas['ready']}/{replicas['desired']} replicas ready"), progressing.get("message")
    desired = replicas["desired"]
    if (observed >= target_generation and replicas["updated"] == desired and replicas["ready"] == desired
            and replicas["available"] == desired and not replicas.get("unavailable")
            and replicas.get("total", desired) == desired):
        return SUCCEEDED, None, f"{desired}/{desired} replicas ready"
    return PROGRESSING, None, (f"{replicas['ready']}/{desired} ready, {replicas['updated']} updated, "
                               f"{replicas['available']} available")


def report(target, report: dict, now: datetime) -> list[Line]:
    if target.status in FINAL or target.action == "delete" or not is_for(target, report):
        return []
    if not is_news(target, report):
        return []
    target.seen_rv = _int(report.get("resource_version"))
    target.seen_version = reportorder.key(report)
    target.seen_observed_generation = _int(report.get("observed_generation"))
    if report.get("progress_deadline_seconds"):
        target.progress_deadline_seconds = int(report["progress_deadline_seconds"])
    replicas = {**ZERO_REPLICAS, **{k: v for k, v in (report.get("replicas") or {}).items()
                                    if k in ZERO_REPLICAS}}
    lines: list[Line] = []
    if report.get("deleted"):
        return _move(target, FAILED, now, "The Deployment was deleted from the cluster before it was ready")
    if replicas != (target.replicas or {}):
        target.replicas = replicas
        target.last_progress_at = now
        if target.status == PROGRESSING:
            lines.append(("info", f"replicas: {replicas['ready']}/{replicas['desired']} ready, "
                                  f"{replicas['updated']} updated, {replicas['available']} available"))
    status, reason, message = judge(report, target.applied_generation, target.image)
    if RANK[target.status] < RANK[APPLIED]:
        # The cluster reports our object before our own apply answer arrived (the two
        # travel on different queues): it was applied, so walk through the states in order.
        lines = _move(target, APPLIED, now) + lines
    refused = refusal(report) if status == PROGRESSING else None
    if refused != target.refusal:
        if refused:
            lines.append(("warning", f"the cluster refuses to create the pods: {refused}"))
            target.refused_since = target.refused_since if target.refusal else now
        elif target.refusal:
            lines.append(("info", "the cluster creates the pods again"))
            target.refused_since = None
        target.refusal = refused
    if status == PROGRESSING:
        if refused:
            message = f"{pods_refused_reason(refused)} ({message})"
        moved = _move(target, PROGRESSING, now, None, message)
        if not moved:
            target.message = message
        return lines + moved
    if status == SUCCEEDED and target.status != PROGRESSING:
        lines += _move(target, PROGRESSING, now)
    return lines + _move(target, status, now, reason, message)


# -- the clock -----------------------------------------------------------------------

def deadline_passed(target, now: datetime, grace_seconds: float = 0.0) -> list[Line]:
    """No progress within the Deployment's progress deadline: failed, even without a report saying so."""
    if target.status not in (APPLIED, PROGRESSING) or not target.has_deployment or target.last_progress_at is None:
        return []
    deadline = target.progress_deadline_seconds or DEFAULT_DEADLINE
    if now - target.last_progress_at <= timedelta(seconds=deadline + grace_seconds):
        return []
    replicas = {**ZERO_REPLICAS, **(target.replicas or {})}
    return _move(target, FAILED, now,
                 f"Not ready before the progress deadline ({deadline} s): "
                 f"{replicas['ready']}/{replicas['desired']} replicas ready",
                 "no progress was reported within the deadline")


def refused_too_long(target, now: datetime, hold_seconds: float) -> list[Line]:
    """The cluster has refused the rollout's pods for ``hold_seconds``: failed, with its words."""
    if (target.status not in (APPLIED, PROGRESSING) or not target.refusal or target.refused_since is None
            or now - target.refused_since < timedelta(seconds=hold_seconds)):
        return []
    return _move(target, FAILED, now, pods_refused_reason(target.refusal), target.refusal)


def apply_overdue(target, requested_at: datetime | None, now: datetime, timeout_seconds: float) -> bool:
    """Still waiting for the cluster service's answer after ``timeout_seconds``: ask again."""
    return (target.status in (PENDING, APPLYING) and requested_at is not None
            and now - requested_at > timedelta(seconds=timeout_seconds))


def give_up(target, attempts: int, now: datetime) -> list[Line]:
    return _move(target, FAILED, now, f"The cluster service did not answer after {attempts} attempts; "
                                      "the cluster may be unreachable or MAE's cluster service down")


# -- the record ------------------------------------------------------------------------

def record_status(statuses: list[str]) -> str:
    """The least advanced target's status; ``failed`` if any failed; superseded only if all were."""
    if not statuses:
        return PENDING
    if FAILED in statuses:
        return FAILED
    live = [s for s in statuses if s != SUPERSEDED]
    if not live:
        return SUPERSEDED
    return min(live, key=lambda s: RANK[s])


def record_finished(statuses: list[str]) -> bool:
    return bool(statuses) and all(s in FINAL for s in statuses)
