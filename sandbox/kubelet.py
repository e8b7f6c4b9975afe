"""A simulated scheduler + kubelet: binds pods to the one node and runs their containers.

Containers are simulated one by one as small timer-driven state machines (no
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
import hashlib
import logging
import time
from collections import deque

from .controllers import PACER, EventRecorder
from .registry import ApiError, Registry, parse_time, rfc3339
from .resources import PODS, image_tag
from .store import ADDED, DELETED

log = logging.getLogger("sandbox.kubelet")


def _digest(image: str) -> str:
    return "sha256:" + hashlib.sha256(image.encode()).hexdigest()


def _image_id(image: str) -> str:
    repo = image.split("@", 1)[0]
    last = repo.rsplit("/", 1)
    if ":" in last[-1]:
        repo = repo[: repo.rfind(":")]
    if "/" not in repo:
        repo = "docker.io/library/" + repo
    elif "." not in repo.split("/", 1)[0] and ":" not in repo.split("/", 1)[0]:
        repo = "docker.io/" + repo
    return f"{repo}@{_digest(image)}"


class Container:
    """Runtime state of one container of one pod."""

    __slots__ = ("name", "image", "mode", "state", "ready", "started", "restarts", "last_state",
                 "container_id", "attempt", "timer", "init")

    def __init__(self, name: str, image: str, init: bool = False):
        self.name, self.image, self.init = name, image, init
        tag = image_tag(image)
        self.mode = tag if tag in ("missing", "crash", "slow") else "ok"
        self.state: dict = {"waiting": {"reason": "ContainerCreating"}}
        self.ready = False
        self.started = False
        self.restarts = 0
        self.last_state: dict = {}
        self.container_id = ""
        self.attempt = 0  # back-off exponent
        self.timer: asyncio.TimerHandle | None = None


class PodRuntime:
    __slots__ = ("ns", "name", "uid", "containers", "init_containers", "ip", "start")

    def __init__(self, ns: str, name: str, uid: str):
        self.ns, self.name, self.uid = ns, name, uid
        self.containers: list[Container] = []
        self.init_containers: list[Container] = []
        self.ip = ""
        self.start = time.time()


class Kubelet:
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
        if etype == ADDED and not obj["spec"].get("nodeName"):
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

    def _after(self, delay: float, fn, *args) -> asyncio.TimerHandle:
        return self.loop.call_later(max(0.0, delay), self._enqueue, fn, *args)

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
        rt = PodRuntime(ns, name, uid)
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
            c.timer = self._after(self.ready_delay, self._pulled, rt, c)

    def _pulled(self, rt: PodRuntime, c: Container) -> None:
        e = self._pod(rt)
        if e is None:
            return
        c.timer = None
        if c.mode == "missing":
            c.state = {"waiting": {"reason": "ErrImagePull",
                                   "message": f'failed to pull and unpack image "{c.image}": failed to resolve reference "{c.image}": {c.image}: not found'}}
            self._event(e.obj, "Warning", "Failed",
                        f'Failed to pull image "{c.image}": rpc error: code = NotFound desc = failed to pull and unpack image "{c.image}": failed to resolve reference "{c.image}": {c.image}: not found', c)
            self._event(e.obj, "Warning", "Failed", "Error: ErrImagePull", c)
            self._write(rt)
            c.timer = self._after(min(self.backoff, max(self.ready_delay, 0.05)), self._pull_backoff, rt, c)
            return
        took = f"{self.ready_delay:.3f}s"
        self._event(e.obj, "Normal", "Pulled",
                    f'Successfully pulled image "{c.image}" in {took} ({took} including waiting). Image size: 4194304 bytes.', c)
        self._start(rt, c, e)

    def _pull_backoff(self, rt: PodRuntime, c: Container) -> None:
        e = self._pod(rt)
        if e is None:
            return
        c.state = {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{c.image}"'}}
        self._event(e.obj, "Normal", "BackOff", f'Back-off pulling image "{c.image}"', c)
        self._event(e.obj, "Warning", "Failed", "Error: ImagePullBackOff", c)
        self._write(rt)
        delay = min(self.backoff * (2 ** c.attempt), self.backoff * 30)
        c.attempt += 1
        c.timer = self._after(delay, self._retry_pull, rt, c)

    def _retry_pull(self, rt: PodRuntime, c: Container) -> None:
        e = self._pod(rt)
        if e is None:
            return
        self._event(e.obj, "Normal", "Pulling", f'Pulling image "{c.image}"', c)
        c.timer = self._after(self.ready_delay, self._pulled, rt, c)

    def _start(self, rt: PodRuntime, c: Container, e) -> None:
        c.container_id = "containerd://" + hashlib.sha256(f"{rt.uid}/{c.name}/{c.restarts}".encode()).hexdigest()
        self._event(e.obj, "Normal", "Created", f"Created container: {c.name}", c)
        self._event(e.obj, "Normal", "Started", f"Started container {c.name}", c)
        now = rfc3339()
        c.state = {"running": {"startedAt": now}}
        c.started = True
        if c.init:
            c.state = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now,
                                      "containerID": c.container_id}}
            c.ready = True
            c.started = False
        elif c.mode == "crash":
            c.ready = False
            c.timer = self._after(max(self.ready_delay, 0.05), self._crashed, rt, c)
        elif c.mode == "slow":
            c.ready = False
            left = rt.start + self.slow_delay - time.time()
            c.timer = self._after(left, self._became_ready, rt, c)
        else:
            c.ready = True
        self._write(rt)

    def _became_ready(self, rt: PodRuntime, c: Container) -> None:
        if self._pod(rt) is None:
            return
        c.timer = None
        c.ready = True
        self._write(rt)

    def _crashed(self, rt: PodRuntime, c: Container) -> None:
        e = self._pod(rt)
        if e is None:
            return
        started = (c.state.get("running") or {}).get("startedAt") or rfc3339()
        c.last_state = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": started,
                                       "finishedAt": rfc3339(), "containerID": c.container_id}}
        c.restarts += 1
        c.started = False
        c.ready = False
        delay = min(self.backoff * (2 ** c.attempt), self.backoff * 30)
        c.attempt += 1
        shown = int(round(delay)) or 1
        c.state = {"waiting": {"reason": "CrashLoopBackOff",
                               "message": f"back-off {shown}s restarting failed container={c.name} pod={rt.name}_{rt.ns}({rt.uid})"}}
        self._event(e.obj, "Warning", "BackOff",
                    f"Back-off restarting failed container {c.name} in pod {rt.name}_{rt.ns}({rt.uid})", c)
        self._write(rt)
        c.timer = self._after(delay, self._restart, rt, c)

    def _restart(self, rt: PodRuntime, c: Container) -> None:
        e = self._pod(rt)
        if e is None:
            return
        self._event(e.obj, "Normal", "Pulled", f'Container image "{c.image}" already present on machine', c)
        self._start(rt, c, e)

    # ------------------------------------------------------------------ status

    def _cstatus(self, c: Container) -> dict:
        pulled = not ("waiting" in c.state and c.state["waiting"]["reason"] in
                      ("ContainerCreating", "ErrImagePull", "ImagePullBackOff"))
        out = {"name": c.name, "state": c.state, "lastState": c.last_state, "ready": c.ready,
               "restartCount": c.restarts, "image": c.image, "imageID": _image_id(c.image) if pulled else "",
               "started": c.started}
        if c.container_id:
            out["containerID"] = c.container_id
        return out

    def _write(self, rt: PodRuntime) -> None:
        e = self._pod(rt)
        if e is None:
            return
        pod = e.shallow(status=dict(e.obj.get("status") or {}))  # _fill_status replaces, never mutates, values
        self._fill_status(rt, pod)
        self.registry.write_status(PODS, pod, old=e)

    def _fill_status(self, rt: PodRuntime, pod: dict) -> None:
        st = pod.setdefault("status", {})
        now = rfc3339()
        old_conds = {c["type"]: c for c in st.get("conditions") or []}

        def cond(ctype: str, ok: bool, reason: str | None = None, msg: str | None = None) -> dict:
            prev = old_conds.get(ctype)
            status = "True" if ok else "False"
            c = {"type": ctype, "status": status, "lastProbeTime": None,
                 "lastTransitionTime": prev["lastTransitionTime"] if (prev and prev["status"] == status) else now}
            if not ok and reason:
                c["reason"], c["message"] = reason, msg
            return c

        init_done = all(c.ready for c in rt.init_containers)
        unready = [c.name for c in rt.containers if not c.ready]
        msg = f"containers with unready status: [{' '.join(unready)}]"
        st["conditions"] = [
            cond("PodReadyToStartContainers", True),
            cond("Initialized", init_done, "ContainersNotInitialized",
                 f"containers with incomplete status: [{' '.join(c.name for c in rt.init_containers if not c.ready)}]"),
            cond("Ready", not unready and init_done, "ContainersNotReady", msg),
            cond("ContainersReady", not unready and init_done, "ContainersNotReady", msg),
            cond("PodScheduled", True),
        ]
        any_started = any(("running" in c.state) or c.restarts or ("terminated" in c.state) for c in rt.containers)
        st["phase"] = "Running" if any_started else "Pending"
        if any_started or any(c.container_id for c in rt.containers):
            st["podIP"] = rt.ip
            st["podIPs"] = [{"ip": rt.ip}]
        st["containerStatuses"] = [self._cstatus(c) for c in rt.containers]
        if rt.init_containers:
            st["initContainerStatuses"] = [self._cstatus(c) for c in rt.init_containers]

    # ------------------------------------------------------------------ restart

    def resume(self) -> None:
        """Re-arm timers for pods restored from a snapshot."""
        now = time.time()
        for e in list(self.store.iter(PODS.key)):
            pod = e.obj
            uid = pod["metadata"]["uid"]
            if not pod["spec"].get("nodeName"):
                self.pending_bind[uid] = (e.ns, e.name)
                continue
            st = pod.get("status") or {}
            rt = PodRuntime(e.ns, e.name, uid)
            rt.start = parse_time(st.get("startTime")) or now
            rt.ip = st.get("podIP") or self._new_ip()
            saved = {c["name"]: c for c in st.get("containerStatuses") or []}
            saved.update({c["name"]: c for c in st.get("initContainerStatuses") or []})
            for spec, init in [(c, False) for c in pod["spec"].get("containers") or []] + \
                              [(c, True) for c in pod["spec"].get("initContainers") or []]:
                c = Container(spec["name"], spec.get("image", ""), init=init)
                s = saved.get(c.name) or {}
                c.restarts = s.get("restartCount", 0)
                c.attempt = c.restarts
                c.ready = bool(s.get("ready"))
                c.started = bool(s.get("started"))
                c.last_state = s.get("lastState") or {}
                c.container_id = s.get("containerID", "")
                if s.get("state"):
                    c.state = s["state"]
                (rt.init_containers if init else rt.containers).append(c)
                if c.ready:
                    continue
                # Not ready yet: continue where it would be now.
                if c.mode == "ok" or c.mode == "slow":
                    if "running" in c.state:
                        left = rt.start + (self.slow_delay if c.mode == "slow" else self.ready_delay) - now
                        c.timer = self._after(left, self._became_ready, rt, c)
                    else:
                        c.timer = self._after(rt.start + self.ready_delay - now, self._pulled, rt, c)
                elif c.mode == "missing":
                    c.timer = self._after(self.backoff, self._retry_pull, rt, c)
                else:  # crash
                    c.timer = self._after(self.backoff, self._restart, rt, c)
            self.pods[uid] = rt
        if self.pending_bind:
            self._enqueue(self._bind_pending)
