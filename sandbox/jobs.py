"""Job and CronJob controllers (pkg/controller/job, pkg/controller/cronjob), plus the
TTL-after-finished controller's one job.

Job pods run to completion on the sandbox's kubelet (``restartPolicy`` Never/OnFailure: a
container exits 0 after ``--ready-delay``; a ``:crash`` image exits 1).  The Job controller
keeps ``min(parallelism, completions - succeeded)`` pods active, counts ``succeeded``/
``failed``, and finishes the Job as 1.31+ does: ``SuccessCriteriaMet`` then ``Complete``
(``CompletionsReached``) with ``completionTime``, or ``FailureTarget`` then ``Failed``
(``BackoffLimitExceeded`` - more failed pods than ``backoffLimit``, or with OnFailure that
many container restarts -, ``DeadlineExceeded`` after ``activeDeadlineSeconds``), deleting the
pods still active.  ``suspend`` deletes the active pods (``Suspended``).

The CronJob controller creates ``NAME-<scheduled unix minutes>`` Jobs at the times a
``croniter`` schedule gives (in ``timeZone``, UTC by default), honours
``concurrencyPolicy``/``startingDeadlineSeconds``/``suspend``, records ``active``,
``lastScheduleTime``/``lastSuccessfulTime`` and deletes finished Jobs beyond
``successfulJobsHistoryLimit``/``failedJobsHistoryLimit``.  Its clock is injectable
(``clock=``) so a schedule can be tested without waiting for the minute.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from croniter import croniter

from .controllers import EventRecorder, OwnerController, controller_ref, owner_ref, pod_is_ready
from .registry import ApiError, Registry, parse_time, rfc3339
from .resources import CRONJOBS, JOBS
from .workloads import PodOwnerController

SCHEDULED_AT = "batch.kubernetes.io/cronjob-scheduled-timestamp"
BURST = 500


def job_finished(job: dict) -> str | None:
    """"Complete" or "Failed" when the Job has that condition, else None."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return c["type"]
    return None


def _condition(ctype: str, reason: str, message: str, now: str) -> dict:
    return {"type": ctype, "status": "True", "lastProbeTime": now, "lastTransitionTime": now,
            "reason": reason, "message": message}


class JobController(PodOwnerController):
    name = "job-controller"
    rt = JOBS

    def sync(self, key) -> None:
        entry = self.live(key)
        if entry is None:
            return
        job = entry.obj
        if job_finished(job):
            self._ttl(entry)
            return
        spec, prev = job["spec"], job.get("status") or {}
        now = time.time()
        stamp = rfc3339(now)
        pods = self.owned_pods(job)
        phase = {p.name: (p.obj.get("status") or {}).get("phase") for p in pods}
        active = [p for p in pods if phase[p.name] not in ("Succeeded", "Failed")]
        succeeded = max(prev.get("succeeded", 0), sum(1 for v in phase.values() if v == "Succeeded"))
        failed = max(prev.get("failed", 0), sum(1 for v in phase.values() if v == "Failed"))
        completions, parallelism = spec.get("completions"), spec.get("parallelism", 1)
        backoff = spec.get("backoffLimit", 6)
        conds = [c for c in prev.get("conditions") or [] if c.get("type") != "Suspended"]
        status = {"startTime": prev.get("startTime") or stamp} if not spec.get("suspend") else {}
        restarts = 0
        if ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") == "OnFailure":
            restarts = sum(c.get("restartCount", 0) for p in active
                           for c in ((p.obj.get("status") or {}).get("containerStatuses") or []))
        deadline = spec.get("activeDeadlineSeconds")
        failure = None
        if failed > backoff or (restarts and restarts >= backoff):
            failure = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
        elif deadline is not None and status.get("startTime") and parse_time(status["startTime"]) + deadline <= now:
            failure = ("DeadlineExceeded", "Job was active longer than specified deadline")
        done = (completions is not None and succeeded >= completions) or \
            (completions is None and succeeded > 0 and not active)
        if failure is not None:
            failed += sum(1 for p in active if self.delete_pod(job, p))
            active = []
            conds += [_condition("FailureTarget", *failure, stamp), _condition("Failed", *failure, stamp)]
            self.recorder.event(job, "Warning", failure[0], failure[1], self.name)
        elif done:
            active = [p for p in active if not self.delete_pod(job, p)]
            why = ("CompletionsReached", "Reached expected number of succeeded pods")
            conds += [_condition("SuccessCriteriaMet", *why, stamp), _condition("Complete", *why, stamp)]
            status["completionTime"] = stamp
            self.recorder.event(job, "Normal", "Completed", "Job completed", self.name)
        elif spec.get("suspend"):
            active = [p for p in active if not self.delete_pod(job, p)]
            conds.append(_condition("Suspended", "JobSuspended", "Job suspended", stamp))
        else:
            want = parallelism if completions is None and not succeeded else (
                0 if completions is None else min(parallelism, completions - succeeded))
            for _ in range(min(want - len(active), BURST)):
                p = self.create_pod(job, spec.get("template") or {})
                if p is None:
                    break
                active.append(p)
            for p in active[want:] if len(active) > want else []:
                if self.delete_pod(job, p):
                    active.remove(p)
        status.update({"active": len(active), "ready": sum(1 for p in active if pod_is_ready(p.obj)),
                       "terminating": 0, "uncountedTerminatedPods": {}, "succeeded": succeeded, "failed": failed})
        status = {k: v for k, v in status.items() if v not in (0, None) or k in ("ready", "terminating")}
        if conds:
            status["conditions"] = conds
        self.write_status(entry, status)
        if deadline is not None and not job_finished({"status": status}) and status.get("startTime"):
            self.enqueue_after(key, parse_time(status["startTime"]) + deadline - now + 0.05)
        if job_finished({"status": status}):
            self.enqueue(key)  # the TTL

    def _ttl(self, entry) -> None:
        """ttlSecondsAfterFinished: the finished Job (and, in the background, its pods) is deleted."""
        ttl = entry.obj["spec"].get("ttlSecondsAfterFinished")
        if ttl is None:
            return
        st = entry.obj.get("status") or {}
        finished_at = max((parse_time(c.get("lastTransitionTime")) for c in st.get("conditions") or []
                           if c.get("type") in ("Complete", "Failed")), default=time.time())
        left = finished_at + ttl - time.time()
        if left > 0:
            self.enqueue_after((entry.ns, entry.name), left + 0.05)
            return
        try:
            self.registry.delete(JOBS, entry.ns, entry.name, {"propagationPolicy": "Background",
                                                              "preconditions": {"uid": entry.obj["metadata"]["uid"]}})
        except ApiError:
            pass


class CronJobController(OwnerController):
    name = "cronjob-controller"
    rt, child = CRONJOBS, JOBS

    def __init__(self, registry: Registry, recorder: EventRecorder, clock=time.time):
        super().__init__(registry, recorder)
        self.clock = clock

    @staticmethod
    def _zone(cj: dict):
        tz = cj["spec"].get("timeZone")
        if tz:
            import zoneinfo
            return zoneinfo.ZoneInfo(tz)
        return timezone.utc

    def sync(self, key) -> None:
        ns, _ = key
        entry = self.live(key)
        if entry is None:
            return
        cj = entry.obj
        spec, prev = cj["spec"], cj.get("status") or {}
        now = self.clock()
        uid = cj["metadata"]["uid"]
        jobs = [e for e in self.store.dependents_of(uid)
                if e.res == JOBS.key and (controller_ref(e.obj) or {}).get("uid") == uid]
        active = [e for e in jobs if not job_finished(e.obj)]
        status = {k: v for k, v in prev.items() if k in ("lastScheduleTime", "lastSuccessfulTime")}
        seen = {a.get("uid") for a in prev.get("active") or []}
        for e in jobs:
            outcome = job_finished(e.obj)
            if outcome and e.obj["metadata"]["uid"] in seen:
                self.recorder.event(cj, "Normal", "SawCompletedJob",
                                    f"Saw completed job: {e.name}, condition: {outcome}", self.name)
            done_at = (e.obj.get("status") or {}).get("completionTime")
            if outcome == "Complete" and done_at and parse_time(done_at) > parse_time(status.get("lastSuccessfulTime")):
                status["lastSuccessfulTime"] = done_at
        zone = self._zone(cj)
        if not spec.get("suspend"):
            due = croniter(spec["schedule"], datetime.fromtimestamp(now + 0.001, zone)).get_prev(datetime).timestamp()
            last = parse_time(prev.get("lastScheduleTime")) or parse_time(cj["metadata"].get("creationTimestamp"))
            late = spec.get("startingDeadlineSeconds")
            if due > last and (late is None or now - due <= late):
                policy = spec.get("concurrencyPolicy", "Allow")
                if policy == "Forbid" and active:
                    self.recorder.event(cj, "Normal", "JobAlreadyActive",
                                        "Not starting job because prior execution is running and concurrency policy is Forbid",
                                        self.name)
                else:
                    if policy == "Replace":
                        for e in active:
                            self._delete_job(cj, e, "SuccessfulDelete", f"Deleted job {e.name}")
                        active = []
                    job = self._create_job(cj, due, zone)
                    if job is not None:
                        active.append(job)
                        status["lastScheduleTime"] = rfc3339(due)
            nxt = croniter(spec["schedule"], datetime.fromtimestamp(now + 0.001, zone)).get_next(datetime).timestamp()
            self.enqueue_after(key, nxt - now + 0.01)
        self._trim(cj, jobs)
        if active:
            status["active"] = [{"kind": "Job", "namespace": ns, "name": e.name, "uid": e.obj["metadata"]["uid"],
                                 "apiVersion": JOBS.api_version, "resourceVersion": e.obj["metadata"]["resourceVersion"]}
                                for e in sorted(active, key=lambda e: e.name)]
        if status != prev:
            self.registry.write_status(CRONJOBS, entry.shallow(status=status), old=entry)

    def _create_job(self, cj: dict, due: float, zone):
        meta, tpl = cj["metadata"], cj["spec"].get("jobTemplate") or {}
        tmeta = tpl.get("metadata") or {}
        body = {"apiVersion": JOBS.api_version, "kind": "Job",
                "metadata": {"name": f"{meta['name']}-{int(due // 60)}", "namespace": meta["namespace"],
                             "labels": dict(tmeta.get("labels") or {}),
                             "annotations": {**(tmeta.get("annotations") or {}),
                                             SCHEDULED_AT: datetime.fromtimestamp(due, zone).isoformat()},
                             "ownerReferences": [owner_ref(cj, CRONJOBS)]},
                "spec": json.loads(json.dumps(tpl.get("spec") or {}))}
        try:
            job = self.registry.create(JOBS, meta["namespace"], body, internal=True)
        except ApiError as exc:
            if exc.code == 409:  # made already (a restart between create and status write)
                return self.store.get(JOBS.key, meta["namespace"], body["metadata"]["name"])
            self.recorder.event(cj, "Warning", "FailedCreate", f"Error creating job: {exc.message}", self.name)
            return None
        self.recorder.event(cj, "Normal", "SuccessfulCreate", f"Created job {job.name}", self.name)
        return job

    def _delete_job(self, cj: dict, e, reason: str, message: str) -> None:
        try:
            self.registry.delete(JOBS, e.ns, e.name, {"propagationPolicy": "Background"})
        except ApiError:
            return
        self.recorder.event(cj, "Normal", reason, message, self.name)

    def _trim(self, cj: dict, jobs: list) -> None:
        """Finished Jobs beyond the history limits go, oldest first."""
        spec = cj["spec"]
        for outcome, limit in (("Complete", spec.get("successfulJobsHistoryLimit", 3)),
                               ("Failed", spec.get("failedJobsHistoryLimit", 1))):
            done = sorted((e for e in jobs if job_finished(e.obj) == outcome),
                          key=lambda e: ((e.obj.get("status") or {}).get("startTime") or "", e.name))
            for e in done[:max(0, len(done) - (limit if limit is not None else len(done)))]:
                self._delete_job(cj, e, "SuccessfulDelete", f"Deleted job {e.name}")


__all__ = ["JobController", "CronJobController", "job_finished"]
