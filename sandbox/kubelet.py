"""A simulated scheduler + kubelet: binds pods to the one node and runs their containers.

Containers are simulated one by one as small timer-driven state machines (``podsim.py``, no
threads, no processes: ``loop.call_later``).  The image tag picks the behaviour:

* ``:missing`` - the pull fails: ``ErrImagePull``, then ``ImagePullBackOff`` with a
  growing back-off, retried forever.  The pod stays ``Pending``.
* ``:crash``   - the container starts and exits 1 before it is ever ready:
  ``CrashLoopBackOff`` with ``restartCount`` growing and a growing back-off.  The pod
  is ``Running`` but never Ready.  (A real app without a readiness probe would flap
  Ready for an instant; dying before readiness keeps rollouts deterministic.)
* ``:slow``    - the container runs but becomes ready only after ``slow_delay``.
* anything else - ready after ``ready_delay``.

Back-off follows the kubelet's shape: ``backoff * 2**n`` capped at ``30 * backoff``
(10 s doubling to 300 s with the real default of 10 s).

Status and Events look like a real kubelet's (Scheduled, Pulling, Pulled, Created,
Started, Failed, BackOff; conditions PodReadyToStartContainers, Initialized, Ready,
ContainersReady, PodScheduled; containerStatuses with waiting/running/terminated and
lastState).  After a restart from a snapshot, ``resume()`` re-arms timers from the
pods' stored status: readiness deadlines count from the pod's ``startTime``, so a pod
that should already be ready becomes ready at once.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from .controllers import PACER, EventRecorder
from .podsim import Container, ContainerSimulator
from .registry import ApiError, Registry, rfc3339
from .resources import PODS
from .store import ADDED, DELETED

log = logging.getLogger("sandbox.kubelet")


class PodRuntime:
    __slots__ = ("ns", "name", "uid", "containers", "init_containers", "ip", "start", "restart_policy")

    def __init__(self, ns: str, name: str, uid: str, restart_policy: str = "Always"):
        self.ns, self.name, self.uid = ns, name, uid
        # Always: a crash loops; Never/OnFailure (Jobs): containers complete (exit 0) after
        # --ready-delay, and under Never a crashed container stays terminated.
        self.restart_policy = restart_policy or "Always"
        self.containers: list[Container] = []
        self.init_containers: list[Container] = []
        self.ip = ""
        self.start = time.time()


class Kubelet(ContainerSimulator):
    def __init__(self, registry: Registry, recorder: EventRecorder, node: str,
                 ready_delay: float = 0.5, slow_delay: float = 60.0, backoff: float = 10.0):
        self.registry = registry
        self.store = registry.store
        self.recorder = recorder
        self.node = node
        self.ready_delay = max(0.0, ready_delay)
        self.slow_delay = max(self.ready_delay, slow_delay)
        self.backoff = max(0.01, backoff)
        self.pods: dict[str, PodRuntime] = {}
        self.ip_next = 2
        self.loop = asyncio.get_event_loop()
        self.pending_bind: dict[str, tuple[str, str]] = {}
        # Timers only *enqueue* steps; one task runs them under the shared Pacer so
        # the kubelet, like the controllers, yields to API traffic.
        self.steps: deque = deque()
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.store.listeners.append(self.on_change)

    def start(self) -> None:
        self.task = asyncio.ensure_future(self.run())

    def _enqueue(self, fn, *args) -> None:
        self.steps.append((fn, args))
        self.wakeup.set()

    async def run(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.steps:
                await PACER.turn()
                start = time.perf_counter()
                while self.steps and time.perf_counter() - start < 0.003:
                    fn, args = self.steps.popleft()
                    self._safe(fn, *args)
                PACER.spent(time.perf_counter() - start)
                await asyncio.sleep(0)

    # ------------------------------------------------------------------ plumbing

    def on_change(self, res: str, etype: str, obj: dict, old: dict | None) -> None:
        if res != PODS.key:
            return
        uid = obj["metadata"]["uid"]
        if etype == ADDED and not obj["spec"].get("nodeName") and \
                obj["spec"].get("schedulerName", "default-scheduler") == "default-scheduler":
            # Bind on the next loop iteration: the pod's creator gets its response
            # first, and a burst of creations is bound in one go.
            if not self.pending_bind:
                self._enqueue(self._bind_pending)
            self.pending_bind[uid] = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        elif etype == DELETED:
            self.pending_bind.pop(uid, None)
            rt = self.pods.pop(uid, None)
            if rt:
                for c in rt.containers + rt.init_containers:
                    if c.timer:
                        c.timer.cancel()

    # -- the hooks of ContainerSimulator
    def after(self, delay: float, fn, *args) -> asyncio.TimerHandle:
        return self.loop.call_later(max(0.0, delay), self._enqueue, fn, *args)

    def live(self, rt: PodRuntime) -> bool:
        return self._pod(rt) is not None

    def container_event(self, rt: PodRuntime, etype: str, reason: str, msg: str, c: Container | None = None) -> None:
        e = self._pod(rt)
        if e is not None:
            self._event(e.obj, etype, reason, msg, c)

    def write(self, rt: PodRuntime) -> None:
        e = self._pod(rt)
        if e is None:
            return
        pod = e.shallow(status=dict(e.obj.get("status") or {}))  # _fill_status replaces, never mutates, values
        self._fill_status(rt, pod)
        self.registry.write_status(PODS, pod, old=e)

    def run_time(self, rt: PodRuntime, c) -> float | None:
        return None if rt.restart_policy == "Always" else self.ready_delay

    def _safe(self, fn, *args) -> None:
        try:
            fn(*args)
        except ApiError as exc:
            log.debug("kubelet: %s", exc.message)
        except Exception:  # noqa: BLE001 - timers must not kill the loop
            log.exception("kubelet step failed")

    def _pod(self, rt: PodRuntime):
        e = self.store.get(PODS.key, rt.ns, rt.name)
        if e is None or e.obj["metadata"]["uid"] != rt.uid:
            self.pods.pop(rt.uid, None)
            return None
        return e

    def _event(self, pod: dict, etype: str, reason: str, msg: str, c: Container | None = None) -> None:
        fp = None
        if c is not None:
            fp = f"spec.{'initContainers' if c.init else 'containers'}{{{c.name}}}"
        self.recorder.event(pod, etype, reason, msg, "kubelet", field_path=fp)

    def _new_ip(self) -> str:
        self.ip_next += 1
        n = self.ip_next
        return f"10.244.{(n >> 8) & 255}.{n & 255}"

    # ------------------------------------------------------------------ lifecycle

    def _bind_pending(self) -> None:
        pending, self.pending_bind = self.pending_bind, {}
        for uid, (ns, name) in pending.items():
            self._enqueue(self._bind, ns, name, uid)

    def _bind(self, ns: str, name: str, uid: str) -> None:
        e = self.store.get(PODS.key, ns, name)
        if e is None or e.obj["metadata"]["uid"] != uid or e.obj["spec"].get("nodeName"):
            return
        now = rfc3339()
        pod = e.copy()
        pod["spec"]["nodeName"] = self.node
        rt = PodRuntime(ns, name, uid, pod["spec"].get("restartPolicy"))
        rt.ip = self._new_ip()
        rt.containers = [Container(c["name"], c.get("image", "")) for c in pod["spec"].get("containers") or []]
        rt.init_containers = [Container(c["name"], c.get("image", ""), init=True)
                              for c in pod["spec"].get("initContainers") or []]
        self.pods[uid] = rt
        st = pod.setdefault("status", {})
        st["phase"] = "Pending"
        st["hostIP"] = "10.0.0.10"
        st["hostIPs"] = [{"ip": "10.0.0.10"}]
        st["startTime"] = now
        st["conditions"] = [{"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                             "lastTransitionTime": now}]
        self._fill_status(rt, pod)
        e = self.registry.write(PODS, pod, old=e)  # the binding: spec.nodeName + first status
        self.recorder.event(e.obj, "Normal", "Scheduled",
                            f"Successfully assigned {ns}/{name} to {self.node}", "default-scheduler")
        for c in rt.init_containers + rt.containers:
            self._event(e.obj, "Normal", "Pulling", f'Pulling image "{c.image}"', c)
            c.timer = self.after(self.ready_delay, self.pulled, rt, c)

    # ------------------------------------------------------------------ status

    def _fill_status(self, rt: PodRuntime, pod: dict) -> None:
        st = pod.setdefault("status", {})
        now = rfc3339()
        current = {c["type"]: c for c in st.get("conditions") or []}
        conds = self.pod_conditions(rt, current, now)
        prev = current.get("PodScheduled")
        st["conditions"] = conds + [{
            "type": "PodScheduled", "status": "True", "lastProbeTime": None,
            "lastTransitionTime": prev["lastTransitionTime"] if prev and prev.get("status") == "True"
            and prev.get("lastTransitionTime") else now}]
        any_started = any(("running" in c.state) or c.restarts or ("terminated" in c.state) for c in rt.containers)
        st["phase"] = "Running" if any_started else "Pending"
        if rt.restart_policy != "Always" and rt.containers and all("terminated" in c.state for c in rt.containers):
            failed = any(c.state["terminated"].get("exitCode") for c in rt.containers)
            st["phase"] = "Failed" if failed else "Succeeded"
        if any_started or any(c.container_id for c in rt.containers):
            st["podIP"] = rt.ip
            st["podIPs"] = [{"ip": rt.ip}]
        st["containerStatuses"] = [self.container_status(c) for c in rt.containers]
        if rt.init_containers:
            st["initContainerStatuses"] = [self.container_status(c) for c in rt.init_containers]

    def start_ns(self, uid: str, container_id: str) -> int | None:
        """When the run ``container_id`` of pod ``uid`` started, to the nanosecond (pods/log)."""
        return self.start_ns_of(self.pods.get(uid), container_id)

    # ------------------------------------------------------------------ restart

    def resume(self) -> None:
        """Re-arm timers for pods restored from a snapshot."""
        now = time.time()
        for e in list(self.store.iter(PODS.key)):
            pod = e.obj
            uid = pod["metadata"]["uid"]
            if not pod["spec"].get("nodeName"):
                if pod["spec"].get("schedulerName", "default-scheduler") == "default-scheduler":
                    self.pending_bind[uid] = (e.ns, e.name)
                continue
            rt = PodRuntime(e.ns, e.name, uid, pod["spec"].get("restartPolicy"))
            rt.ip = (pod.get("status") or {}).get("podIP") or self._new_ip()
            self.restore_containers(rt, pod, now)
            self.pods[uid] = rt
        if self.pending_bind:
            self._enqueue(self._bind_pending)
