"""Defaulting and validation of the workload kinds the controllers of ``workloads.py`` and
``jobs.py`` run - Jobs, CronJobs, DaemonSets, StatefulSets, ReplicationControllers - and of
Nodes, as the API server's strategies and ``SetDefaults_*`` functions do (pkg/apis/batch,
pkg/apis/apps, pkg/apis/core).  ``resources.py`` registers them in its tables.
"""
from __future__ import annotations

from croniter import croniter

from .resources import Causes, _default_template, validate_pod_spec, validate_selector_template

JOB_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"
RESTART_NEVER = ("OnFailure", "Never")


def default_job(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    meta = obj["metadata"]
    uid, name = meta.get("uid"), meta.get("name")
    if not spec.get("manualSelector") and uid and name:
        # The job strategy's generateSelector: the Job's uid selects its pods.
        tpl = spec.setdefault("template", {})
        if isinstance(tpl, dict):
            labels = tpl.setdefault("metadata", {}).setdefault("labels", {})
            labels.update({JOB_UID: uid, JOB_NAME: name, "controller-uid": uid, "job-name": name})
        spec.setdefault("selector", {"matchLabels": {JOB_UID: uid}})
    _default_template(obj)
    obj.setdefault("status", {})


def default_cronjob(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    jt = spec.setdefault("jobTemplate", {})
    if isinstance(jt, dict):
        jt.setdefault("metadata", {})
        _default_template(jt)
    obj.setdefault("status", {})


def default_rc(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    _default_template(obj)
    labels = (spec["template"].get("metadata") or {}).get("labels") if isinstance(spec["template"], dict) else None
    if labels:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        if not obj["metadata"].get("labels"):
            obj["metadata"]["labels"] = dict(labels)
    obj.setdefault("status", {"replicas": 0})


def default_daemonset(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("revisionHistoryLimit", 10)
    us = spec.setdefault("updateStrategy", {})
    us.setdefault("type", "RollingUpdate")
    if us["type"] == "RollingUpdate":
        ru = us.setdefault("rollingUpdate", {})
        ru.setdefault("maxUnavailable", 1)
        ru.setdefault("maxSurge", 0)
    _default_template(obj)
    obj.setdefault("status", {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0,
                              "numberReady": 0})


def default_statefulset(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    spec.setdefault("revisionHistoryLimit", 10)
    us = spec.setdefault("updateStrategy", {})
    us.setdefault("type", "RollingUpdate")
    if us["type"] == "RollingUpdate":
        us.setdefault("rollingUpdate", {}).setdefault("partition", 0)
    spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
    _default_template(obj)
    obj.setdefault("status", {"replicas": 0, "availableReplicas": 0})


def default_node(obj: dict) -> None:
    obj.setdefault("spec", {})
    obj.setdefault("status", {})


def _nonnegative(c: Causes, spec: dict, *fields: str) -> None:
    for f in fields:
        v = spec.get(f)
        if v is not None and (not isinstance(v, int) or v < 0):
            c.invalid(f"spec.{f}", v, "must be greater than or equal to 0")


def validate_job(c: Causes, obj: dict, old: dict | None) -> None:
    spec = obj.get("spec") or {}
    _nonnegative(c, spec, "parallelism", "completions", "backoffLimit", "activeDeadlineSeconds",
                 "ttlSecondsAfterFinished")
    validate_selector_template(c, obj, old, RESTART_NEVER)
    if old is not None and spec.get("template") != (old.get("spec") or {}).get("template") and \
            not (old.get("spec") or {}).get("suspend"):
        c.invalid("spec.template", "...", "field is immutable")
    if spec.get("completionMode") not in ("NonIndexed", "Indexed"):
        c.unsupported("spec.completionMode", spec.get("completionMode"), ["NonIndexed", "Indexed"])


def validate_cronjob(c: Causes, obj: dict, old: dict | None) -> None:
    spec = obj.get("spec") or {}
    schedule = spec.get("schedule")
    if not schedule:
        c.required("spec.schedule")
    elif not isinstance(schedule, str) or not croniter.is_valid(schedule):
        fields = len(str(schedule).split())
        why = f"Expected exactly 5 fields, found {fields}: {schedule}" if fields != 5 else \
            f"unparseable schedule: {schedule}"
        c.invalid("spec.schedule", schedule, why)
    policy = spec.get("concurrencyPolicy")
    if policy not in ("Allow", "Forbid", "Replace"):
        c.unsupported("spec.concurrencyPolicy", policy, ["Allow", "Forbid", "Replace"])
    _nonnegative(c, spec, "startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit")
    tz = spec.get("timeZone")
    if tz:
        try:
            import zoneinfo
            zoneinfo.ZoneInfo(tz)
        except (ValueError, KeyError, OSError):
            c.invalid("spec.timeZone", tz, "unknown time zone " + str(tz))
    tpl = (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {})
    validate_pod_spec(c, "spec.jobTemplate.spec.template.spec", tpl.get("spec"))
    rp = (tpl.get("spec") or {}).get("restartPolicy") if isinstance(tpl.get("spec"), dict) else None
    if rp not in RESTART_NEVER:
        c.unsupported("spec.jobTemplate.spec.template.spec.restartPolicy", rp, list(RESTART_NEVER))


def validate_rc(c: Causes, obj: dict, old: dict | None) -> None:
    spec = obj.get("spec") or {}
    _nonnegative(c, spec, "replicas")
    sel = spec.get("selector") or {}
    if not sel:
        c.required("spec.selector")
    tpl = spec.get("template")
    if not isinstance(tpl, dict):
        c.required("spec.template")
        return
    labels = (tpl.get("metadata") or {}).get("labels") or {}
    if any(labels.get(k) != v for k, v in sel.items()):
        c.invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`")
    validate_pod_spec(c, "spec.template.spec", tpl.get("spec"))


def validate_daemonset(c: Causes, obj: dict, old: dict | None) -> None:
    spec = obj.get("spec") or {}
    validate_selector_template(c, obj, old, ("Always",))
    stype = (spec.get("updateStrategy") or {}).get("type")
    if stype not in ("RollingUpdate", "OnDelete"):
        c.unsupported("spec.updateStrategy.type", stype, ["OnDelete", "RollingUpdate"])


_STS_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
                "minReadySeconds")


def validate_statefulset(c: Causes, obj: dict, old: dict | None) -> None:
    spec = obj.get("spec") or {}
    _nonnegative(c, spec, "replicas")
    validate_selector_template(c, obj, old, ("Always",))
    if spec.get("podManagementPolicy") not in ("OrderedReady", "Parallel"):
        c.unsupported("spec.podManagementPolicy", spec.get("podManagementPolicy"), ["OrderedReady", "Parallel"])
    stype = (spec.get("updateStrategy") or {}).get("type")
    if stype not in ("RollingUpdate", "OnDelete"):
        c.unsupported("spec.updateStrategy.type", stype, ["OnDelete", "RollingUpdate"])
    if old is not None:
        ospec = old.get("spec") or {}
        if {k: v for k, v in spec.items() if k not in _STS_MUTABLE} != \
                {k: v for k, v in ospec.items() if k not in _STS_MUTABLE}:
            c.forbidden("spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                                "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                                "'minReadySeconds' are forbidden")


DEFAULTERS = {
    "batch/jobs": default_job,
    "batch/cronjobs": default_cronjob,
    "replicationcontrollers": default_rc,
    "apps/daemonsets": default_daemonset,
    "apps/statefulsets": default_statefulset,
    "nodes": default_node,
}

VALIDATORS = {
    "batch/jobs": validate_job,
    "batch/cronjobs": validate_cronjob,
    "replicationcontrollers": validate_rc,
    "apps/daemonsets": validate_daemonset,
    "apps/statefulsets": validate_statefulset,
}
