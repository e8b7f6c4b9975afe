"""The simulated container runtime both kubelets share: the sandbox's (``kubelet.py``, in
process) and the real-control-plane tier's hollow node (``tests/realkube/hollow_node.py``,
over HTTP).

``ContainerSimulator`` holds the per-container state machine - image pull (``:missing``:
ErrImagePull, then ImagePullBackOff with a growing back-off), start, readiness (``:slow``),
crash loop (``:crash``: exit 1 before ever being ready, CrashLoopBackOff, ``restartCount``
growing) - plus the container statuses and pod conditions it reports, and how a restarted
kubelet carries on from a pod's stored status.  A kubelet subclasses it and provides four
hooks: ``after`` (a timer), ``live`` (is the pod still there), ``container_event`` (record
an Event) and ``write`` (report the pod's status); ``status_image`` says how the runtime
names an image in ``containerStatuses`` (containerd qualifies it fully).

Back-off follows the kubelet's shape: ``backoff * 2**n`` capped at ``30 * backoff``.
"""
from __future__ import annotations

import hashlib
import time

from .registry import parse_time, rfc3339
from .resources import image_tag


def image_digest(image: str) -> str:
    return "sha256:" + hashlib.sha256(image.encode()).hexdigest()


def image_id(image: str) -> str:
    repo = image.split("@", 1)[0]
    last = repo.rsplit("/", 1)
    if ":" in last[-1]:
        repo = repo[: repo.rfind(":")]
    if "/" not in repo:
        repo = "docker.io/library/" + repo
    elif "." not in repo.split("/", 1)[0] and ":" not in repo.split("/", 1)[0]:
        repo = "docker.io/" + repo
    return f"{repo}@{image_digest(image)}"


def full_image(image: str) -> str:
    """How containerd reports ``status.containerStatuses[].image``: fully qualified."""
    ref = image
    if "/" not in ref.split("@", 1)[0]:
        ref = "docker.io/library/" + ref
    elif "." not in ref.split("/", 1)[0] and ":" not in ref.split("/", 1)[0] and ref.split("/", 1)[0] != "localhost":
        ref = "docker.io/" + ref
    if "@" not in ref and not image_tag(ref):
        ref += ":latest"
    return ref


class Container:
    """Runtime state of one container of one pod."""

    __slots__ = ("name", "image", "mode", "state", "ready", "started", "restarts", "last_state",
                 "container_id", "attempt", "timer", "init", "start_ns")

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
        self.timer = None  # the pending step's timer (has .cancel())
        self.start_ns = 0  # when the current run started (status startedAt has whole seconds)


class ContainerSimulator:
    """The container state machine; see the module doc for the hooks a kubelet provides."""

    ready_delay: float
    slow_delay: float
    backoff: float

    # ------------------------------------------------------------------ hooks

    def after(self, delay: float, fn, *args):
        raise NotImplementedError

    def live(self, rt) -> bool:
        raise NotImplementedError

    def container_event(self, rt, etype: str, reason: str, msg: str, c: Container | None = None) -> None:
        raise NotImplementedError

    def write(self, rt) -> None:
        raise NotImplementedError

    def status_image(self, image: str) -> str:
        return image

    def run_time(self, rt, c: Container) -> float | None:
        """How long a ready container runs before it exits 0 (``Completed``); None: it serves
        until the pod goes.  The sandbox's kubelet completes the containers of run-to-completion
        pods (``restartPolicy`` Never/OnFailure: Jobs)."""
        return None

    # ------------------------------------------------------------------ steps

    def pulled(self, rt, c: Container) -> None:
        if not self.live(rt):
            return
        c.timer = None
        if c.mode == "missing":
            ref = self.status_image(c.image)
            why = f'failed to pull and unpack image "{ref}": failed to resolve reference "{ref}": {ref}: not found'
            c.state = {"waiting": {"reason": "ErrImagePull", "message": why}}
            self.container_event(rt, "Warning", "Failed",
                                 f'Failed to pull image "{c.image}": rpc error: code = NotFound desc = {why}', c)
            self.container_event(rt, "Warning", "Failed", "Error: ErrImagePull", c)
            self.write(rt)
            c.timer = self.after(min(self.backoff, max(self.ready_delay, 0.05)), self.pull_backoff, rt, c)
            return
        took = f"{self.ready_delay:.3f}s"
        self.container_event(rt, "Normal", "Pulled", f'Successfully pulled image "{c.image}" in {took} '
                             f'({took} including waiting). Image size: 4194304 bytes.', c)
        self.start_container(rt, c)

    def pull_backoff(self, rt, c: Container) -> None:
        if not self.live(rt):
            return
        c.state = {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{c.image}"'}}
        self.container_event(rt, "Normal", "BackOff", f'Back-off pulling image "{c.image}"', c)
        self.container_event(rt, "Warning", "Failed", "Error: ImagePullBackOff", c)
        self.write(rt)
        delay = min(self.backoff * (2 ** c.attempt), self.backoff * 30)
        c.attempt += 1
        c.timer = self.after(delay, self.retry_pull, rt, c)

    def retry_pull(self, rt, c: Container) -> None:
        if not self.live(rt):
            return
        self.container_event(rt, "Normal", "Pulling", f'Pulling image "{c.image}"', c)
        c.timer = self.after(self.ready_delay, self.pulled, rt, c)

    def start_container(self, rt, c: Container) -> None:
        c.container_id = "containerd://" + hashlib.sha256(f"{rt.uid}/{c.name}/{c.restarts}".encode()).hexdigest()
        self.container_event(rt, "Normal", "Created", f"Created container: {c.name}", c)
        self.container_event(rt, "Normal", "Started", f"Started container {c.name}", c)
        c.start_ns = time.time_ns()
        now = rfc3339(c.start_ns / 1e9)
        c.state = {"running": {"startedAt": now}}
        c.started = True
        if c.init:
            c.state = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now,
                                      "containerID": c.container_id}}
            c.ready = True
            c.started = False
        elif c.mode == "crash":
            c.ready = False
            c.timer = self.after(max(self.ready_delay, 0.05), self.crashed, rt, c)
        elif c.mode == "slow":
            c.ready = False
            c.timer = self.after(rt.start + self.slow_delay - time.time(), self.became_ready, rt, c)
        else:
            c.ready = True
            self._arm_completion(rt, c)
        self.write(rt)

    def became_ready(self, rt, c: Container) -> None:
        if not self.live(rt):
            return
        c.timer = None
        c.ready = True
        self._arm_completion(rt, c)
        self.write(rt)

    def _arm_completion(self, rt, c: Container, left: float | None = None) -> None:
        run = self.run_time(rt, c)
        if run is not None and not c.init:
            c.timer = self.after(run if left is None else left, self.completed, rt, c)

    def completed(self, rt, c: Container) -> None:
        """The container's process exits 0: terminated ``Completed``, never restarted."""
        if not self.live(rt):
            return
        c.timer = None
        started = (c.state.get("running") or {}).get("startedAt") or rfc3339()
        c.state = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started,
                                  "finishedAt": rfc3339(), "containerID": c.container_id}}
        c.ready = False
        c.started = False
        self.write(rt)

    def crashed(self, rt, c: Container) -> None:
        if not self.live(rt):
            return
        started = (c.state.get("running") or {}).get("startedAt") or rfc3339()
        terminated = {"exitCode": 1, "reason": "Error", "startedAt": started, "finishedAt": rfc3339(),
                      "containerID": c.container_id}
        c.started = False
        c.ready = False
        if rt.restart_policy == "Never":  # no restarts: the container stays terminated, the pod fails
            c.state = {"terminated": terminated}
            self.write(rt)
            return
        c.last_state = {"terminated": terminated}
        c.restarts += 1
        delay = min(self.backoff * (2 ** c.attempt), self.backoff * 30)
        c.attempt += 1
        shown = int(round(delay)) or 1
        why = f"back-off {shown}s restarting failed container={c.name} pod={rt.name}_{rt.ns}({rt.uid})"
        c.state = {"waiting": {"reason": "CrashLoopBackOff", "message": why}}
        self.container_event(rt, "Warning", "BackOff",
                             f"Back-off restarting failed container {c.name} in pod {rt.name}_{rt.ns}({rt.uid})", c)
        self.write(rt)
        c.timer = self.after(delay, self.restart, rt, c)

    def restart(self, rt, c: Container) -> None:
        if not self.live(rt):
            return
        self.container_event(rt, "Normal", "Pulled", f'Container image "{c.image}" already present on machine', c)
        self.start_container(rt, c)

    # ------------------------------------------------------------------ status

    def container_status(self, c: Container) -> dict:
        pulled = not ("waiting" in c.state and c.state["waiting"]["reason"] in
                      ("ContainerCreating", "ErrImagePull", "ImagePullBackOff"))
        out = {"name": c.name, "state": c.state, "lastState": c.last_state, "ready": c.ready,
               "restartCount": c.restarts, "image": self.status_image(c.image) if pulled else c.image,
               "imageID": image_id(c.image) if pulled else "", "started": c.started}
        if c.container_id:
            out["containerID"] = c.container_id
        return out

    @staticmethod
    def pod_conditions(rt, current: dict, now: str, generation=None) -> list[dict]:
        """PodReadyToStartContainers, Initialized, Ready and ContainersReady; a condition keeps its
        lastTransitionTime while its status stays."""

        def cond(ctype: str, ok: bool, reason: str | None = None, msg: str | None = None) -> dict:
            prev = current.get(ctype)
            status = "True" if ok else "False"
            c = {"type": ctype, "status": status, "lastProbeTime": None,
                 "lastTransitionTime": prev["lastTransitionTime"] if (prev and prev.get("status") == status
                                                                      and prev.get("lastTransitionTime")) else now}
            if generation:
                c["observedGeneration"] = generation
            if not ok and reason:
                c["reason"], c["message"] = reason, msg
            return c

        init_done = all(c.ready for c in rt.init_containers)
        unready = [c.name for c in rt.containers if not c.ready]
        msg = f"containers with unready status: [{' '.join(unready)}]"
        return [
            cond("PodReadyToStartContainers", True),
            cond("Initialized", init_done, "ContainersNotInitialized",
                 f"containers with incomplete status: [{' '.join(c.name for c in rt.init_containers if not c.ready)}]"),
            cond("Ready", not unready and init_done, "ContainersNotReady", msg),
            cond("ContainersReady", not unready and init_done, "ContainersNotReady", msg),
        ]

    def start_ns_of(self, rt, container_id: str) -> int | None:
        """When the run ``container_id`` started, to the nanosecond (pods/log)."""
        for c in (rt.containers + rt.init_containers) if rt else ():
            if c.container_id == container_id and c.start_ns:
                return c.start_ns
        return None

    # ------------------------------------------------------------------ a restarted kubelet

    def restore_containers(self, rt, pod: dict, now: float) -> None:
        """Rebuild ``rt``'s containers from the pod's stored status and re-arm their timers:
        readiness deadlines count from the pod's ``startTime``, so a container that should
        already be ready becomes ready at once."""
        st = pod.get("status") or {}
        rt.start = parse_time(st.get("startTime")) or now
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
            running = c.state.get("running") or {}
            c.start_ns = int(parse_time(running.get("startedAt")) * 1e9) if running.get("startedAt") else 0
            (rt.init_containers if init else rt.containers).append(c)
            if c.ready:
                if "running" in c.state and self.run_time(rt, c) is not None:
                    self._arm_completion(rt, c, c.start_ns / 1e9 + self.run_time(rt, c) - now)
                continue
            if "terminated" in c.state and getattr(rt, "restart_policy", "Always") != "Always":
                continue  # a run-to-completion container that has exited stays so
            # Not ready yet: continue where it would be now.
            if c.mode in ("ok", "slow"):
                if "running" in c.state:
                    left = rt.start + (self.slow_delay if c.mode == "slow" else self.ready_delay) - now
                    c.timer = self.after(left, self.became_ready, rt, c)
                else:
                    c.timer = self.after(rt.start + self.ready_delay - now, self.pulled, rt, c)
            elif c.mode == "missing":
                c.timer = self.after(self.backoff, self.retry_pull, rt, c)
            elif "terminated" not in c.state:
                c.timer = self.after(self.backoff, self.restart, rt, c)
