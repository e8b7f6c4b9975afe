"""A hollow node: registers a Node with a real API server and plays the kubelet for its pods.

    python -m tests.realkube.hollow_node --kubeconfig K --name hollow-1 [--index 1]
        [--ready-delay 0.2] [--slow-delay 60] [--backoff 10] [--lease-interval 5] [--heartbeat 10]
        [--log-rate 1] [--kubelet-port 0]

It authenticates as the kubelet would (``system:node:<name>``, group ``system:nodes``) and:

* registers the Node (Ready; capacity cpu 8 / memory 32Gi / pods 110, allocatable, nodeInfo,
  addresses, podCIDR), renews its Lease in ``kube-node-lease`` every ``--lease-interval`` seconds and
  refreshes the NodeReady heartbeat every ``--heartbeat`` seconds;
* watches the pods bound to it (``fieldSelector=spec.nodeName=<name>``; 410 Gone -> relist) and
  patches ``pods/status`` like a kubelet, with the container simulation of the sandbox's kubelet
  (``sandbox/podsim.py``, shared):

  - ``:missing`` - ``ErrImagePull`` then ``ImagePullBackOff`` with a growing back-off; the pod stays
    ``Pending``, never ready.
  - ``:crash``   - starts and exits 1 before it is ever ready: ``CrashLoopBackOff``, ``restartCount``
    growing, ``lastState.terminated.exitCode`` 1; the pod is ``Running`` but never Ready
    (``restartPolicy: Never``: the container stays terminated and the pod is ``Failed``).
  - ``:slow``    - ready ``--slow-delay`` seconds after the pod started.
  - anything else - ready after ``--ready-delay``.

  Back-off is ``backoff * 2**n`` capped at ``30 * backoff`` (the kubelet's 10 s .. 300 s by default);
* writes the kubelet's core/v1 Events (Pulling, Pulled, Created, Started, Failed, BackOff, Killing;
  source component ``kubelet``), aggregating repeats into ``count`` like client-go's recorder;
* serves the kubelet's ``/containerLogs`` over HTTPS on 127.0.0.1 (``hollow_logs.py``; the Node's
  InternalIP and ``daemonEndpoints.kubeletEndpoint.Port`` say where), so the API server's ``pods/log``
  works, with the sandbox's simulated lines (``--log-rate`` access-log lines a second);
* finalises pods being deleted (``deletionTimestamp`` set): containers terminated, then a delete
  with ``gracePeriodSeconds=0`` and a UID precondition, so ReplicaSets scale down and rollouts finish.

One thread watches; the main thread owns all state and does every write from a timer heap; the
log server's threads only read it.
No eventlet here.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import heapq
import itertools
import json
import logging
import os
import platform
import queue
import signal
import threading
import time
import uuid

import requests
import yaml

from sandbox.podsim import Container, ContainerSimulator, full_image
from sandbox.registry import micro_time, rfc3339
from tests.realkube.hollow_logs import KubeletServer, state_dir_for

log = logging.getLogger("hollow-node")

CAPACITY = {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi", "hugepages-2Mi": "0"}
# The kubelet's defaults take the eviction thresholds off: memory.available<100Mi, nodefs.available<10%.
ALLOCATABLE = {"cpu": "8", "memory": "33452032Ki", "pods": "110", "ephemeral-storage": "96636764160",
               "hugepages-2Mi": "0"}


# ====================================================================== API access

class ApiError(Exception):
    def __init__(self, status: int, body: str):
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status


class Api:
    def __init__(self, kubeconfig: str):
        with open(kubeconfig) as fh:
            cfg = yaml.safe_load(fh)
        ctx_name = cfg.get("current-context")
        ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in cfg["users"] if u["name"] == ctx["user"])
        self.server = cluster["server"].rstrip("/")
        if cluster.get("certificate-authority-data"):  # requests wants a file: keep it beside the kubeconfig
            self.ca_file = os.path.abspath(kubeconfig) + ".ca.crt"
            with open(self.ca_file + ".tmp", "wb") as fh:
                fh.write(base64.b64decode(cluster["certificate-authority-data"]))
            os.replace(self.ca_file + ".tmp", self.ca_file)
        else:
            self.ca_file = cluster.get("certificate-authority") or True
        self.token = user["token"]
        self.local = threading.local()

    def session(self) -> requests.Session:  # one per thread
        s = getattr(self.local, "session", None)
        if s is None:
            s = requests.Session()
            # Not from the environment: REQUESTS_CA_BUNDLE would even override Session.verify.
            s.trust_env = False
            s.verify = self.ca_file
            s.headers["Authorization"] = "Bearer " + self.token
            s.headers["User-Agent"] = "hollow-node (kubelet simulation)"
            self.local.session = s
        return s

    def call(self, method: str, path: str, body=None, params=None, patch: str | None = None,
             timeout: float = 15.0) -> dict:
        headers = {}
        data = None
        if body is not None:
            headers["Content-Type"] = {"merge": "application/merge-patch+json",
                                       "strategic": "application/strategic-merge-patch+json"}.get(
                patch or "", "application/json")
            data = json.dumps(body)
        resp = self.session().request(method, self.server + path, data=data, params=params, headers=headers,
                                      timeout=(5, timeout), verify=self.ca_file)
        if resp.status_code >= 400:
            raise ApiError(resp.status_code, resp.text)
        return resp.json() if resp.content else {}

    def stream(self, path: str, params: dict, timeout: float):
        """Yield the JSON objects of a watch as they arrive (chunk by chunk, no read-ahead)."""
        resp = self.session().get(self.server + path, params=params, stream=True, timeout=(5, timeout),
                                  verify=self.ca_file)
        try:
            if resp.status_code >= 400:
                raise ApiError(resp.status_code, resp.text)
            buf = b""
            chunks = resp.raw.read_chunked(decode_content=True) if resp.raw.chunked else resp.iter_content(None)
            for chunk in chunks:
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        finally:
            resp.close()


# ====================================================================== pod runtime

class Timer:
    __slots__ = ("when", "seq", "fn", "args", "alive")

    def __init__(self, when: float, seq: int, fn, args):
        self.when, self.seq, self.fn, self.args, self.alive = when, seq, fn, args, True

    def __lt__(self, other: "Timer") -> bool:
        return (self.when, self.seq) < (other.when, other.seq)

    def cancel(self) -> None:
        self.alive = False


class PodRuntime:
    __slots__ = ("ns", "name", "uid", "containers", "init_containers", "ip", "start", "pod", "conditions",
                 "restart_policy", "finalizing", "phase")

    def __init__(self, pod: dict):
        meta = pod["metadata"]
        self.ns, self.name, self.uid = meta["namespace"], meta["name"], meta["uid"]
        self.pod = pod
        self.containers: list[Container] = []
        self.init_containers: list[Container] = []
        self.ip = ""
        self.start = time.time()
        self.conditions: dict[str, dict] = {}
        self.restart_policy = pod["spec"].get("restartPolicy") or "Always"
        self.finalizing = False
        self.phase = "Pending"

    def all(self) -> list[Container]:
        return self.init_containers + self.containers


# ====================================================================== the node

class HollowNode(ContainerSimulator):
    def __init__(self, api: Api, name: str, index: int = 1, ready_delay: float = 0.2, slow_delay: float = 60.0,
                 backoff: float = 10.0, lease_interval: float = 5.0, heartbeat: float = 10.0,
                 log_rate: float = 1.0):
        self.api = api
        self.name = name
        self.index = index
        self.ready_delay = max(0.0, ready_delay)
        self.slow_delay = max(self.ready_delay, slow_delay)
        self.backoff = max(0.01, backoff)
        self.lease_interval = lease_interval
        self.heartbeat = heartbeat
        self.host_ip = f"10.0.0.{9 + index}"  # the pods' hostIP
        # The Node's InternalIP: where the API server reaches its kubelet API (pods/log), on the port
        # the log server got (10250 is the real kubelet's).
        self.node_ip, self.kubelet_port = "127.0.0.1", 10250
        self.log_interval = 1.0 / log_rate
        self.pod_net = f"10.{243 + index}"
        self.ip_next = 2
        self.pods: dict[str, PodRuntime] = {}
        self.timers: list[Timer] = []
        self.seq = itertools.count()
        self.inbox: queue.Queue = queue.Queue()
        self.stopping = threading.Event()
        self.event_names: dict[tuple, tuple[str, int]] = {}
        self.node_uid = ""
        self.ready_since = rfc3339()

    # ------------------------------------------------------------------ plumbing

    def after(self, delay: float, fn, *args) -> Timer:
        t = Timer(time.monotonic() + max(0.0, delay), next(self.seq), fn, args)
        heapq.heappush(self.timers, t)
        return t

    def safe(self, fn, *args) -> None:
        try:
            fn(*args)
        except ApiError as exc:  # a pod (or its namespace) going away is normal; anything else is worth a line
            log.log(logging.DEBUG if exc.status in (404, 409) else logging.WARNING, "%s: %s",
                    getattr(fn, "__name__", fn), exc)
        except requests.RequestException as exc:
            log.warning("%s: %s", getattr(fn, "__name__", fn), exc)
        except Exception:  # noqa: BLE001 - one bad step must not kill the node
            log.exception("step %s failed", getattr(fn, "__name__", fn))

    def run(self) -> None:
        self.register()
        self.after(self.lease_interval, self.renew_lease)
        self.after(self.heartbeat, self.post_status)
        watcher = threading.Thread(target=self.watch_loop, name="watch", daemon=True)
        watcher.start()
        log.info("node %s registered; watching its pods", self.name)
        while not self.stopping.is_set():
            now = time.monotonic()
            while self.timers and self.timers[0].when <= now:
                t = heapq.heappop(self.timers)
                if t.alive:
                    self.safe(t.fn, *t.args)
                now = time.monotonic()
            wait = min(self.timers[0].when - now, 0.5) if self.timers else 0.5
            try:
                item = self.inbox.get(timeout=max(0.0, wait))
            except queue.Empty:
                continue
            self.safe(self.on_watch, *item)
            # drain what else arrived, but keep timers punctual
            deadline = time.monotonic() + 0.05
            while time.monotonic() < deadline:
                try:
                    item = self.inbox.get_nowait()
                except queue.Empty:
                    break
                self.safe(self.on_watch, *item)

    # ------------------------------------------------------------------ node + lease

    def _version(self) -> str:
        try:
            v = self.api.call("GET", "/version")
        except Exception:  # noqa: BLE001
            return "v1.36.2"
        git = v.get("gitVersion") or ""
        if git.startswith("v1."):
            return git.split("+", 1)[0]
        major, minor = (v.get("major") or "").strip("+"), (v.get("minor") or "").strip("+")
        return f"v{major}.{minor}.0" if major.isdigit() and minor.isdigit() else "v1.36.2"

    def _conditions(self) -> list[dict]:
        now = rfc3339()

        def cond(ctype: str, status: str, reason: str, message: str) -> dict:
            return {"type": ctype, "status": status, "lastHeartbeatTime": now,
                    "lastTransitionTime": self.ready_since, "reason": reason, "message": message}

        return [cond("MemoryPressure", "False", "KubeletHasSufficientMemory",
                     "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status")]

    def node_status(self) -> dict:
        seed = hashlib.sha256(self.name.encode()).hexdigest()
        version = self.version
        return {
            "capacity": dict(CAPACITY), "allocatable": dict(ALLOCATABLE), "conditions": self._conditions(),
            "addresses": [{"type": "InternalIP", "address": self.node_ip}, {"type": "Hostname", "address": self.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.kubelet_port}},
            "nodeInfo": {"machineID": seed[:32], "systemUUID": str(uuid.UUID(seed[:32])), "bootID": self.boot_id,
                         "kernelVersion": platform.release(), "osImage": "Hollow Node (MAE realkube tests)",
                         "containerRuntimeVersion": "containerd://1.7.24", "kubeletVersion": version,
                         "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"},
            "images": [],
        }

    def register(self) -> None:
        self.boot_id = str(uuid.uuid4())
        self.version = self._version()
        body = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.name,
                         "labels": {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux",
                                    "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                                    "beta.kubernetes.io/arch": "amd64", "node.kubernetes.io/instance-type": "hollow"},
                         "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                         "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
            "spec": {"podCIDR": f"{self.pod_net}.0.0/16", "podCIDRs": [f"{self.pod_net}.0.0/16"]},
            "status": self.node_status(),
        }
        deadline = time.monotonic() + 60
        while True:
            if self.stopping.is_set():
                raise SystemExit(0)
            try:
                node = self.api.call("POST", "/api/v1/nodes", body)
                break
            except ApiError as exc:
                if exc.status == 409:
                    node = self.api.call("GET", f"/api/v1/nodes/{self.name}")
                    break
                if time.monotonic() > deadline:
                    raise
            except requests.exceptions.SSLError:
                raise
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.2)
        self.node_uid = node["metadata"]["uid"]
        self.post_status(reschedule=False)
        self.renew_lease(reschedule=False)

    def post_status(self, reschedule: bool = True) -> None:
        try:
            self.api.call("PATCH", f"/api/v1/nodes/{self.name}/status", {"status": self.node_status()},
                          patch="strategic")
        finally:
            if reschedule:
                self.after(self.heartbeat, self.post_status)

    def renew_lease(self, reschedule: bool = True) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.name}"
        try:
            try:
                self.api.call("PATCH", path, {"spec": {"holderIdentity": self.name, "renewTime": micro_time()}},
                              patch="merge")
            except ApiError as exc:
                if exc.status != 404:
                    raise
                self.api.call("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", {
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": "kube-node-lease",
                                 "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": self.name,
                                                      "uid": self.node_uid}]},
                    "spec": {"holderIdentity": self.name, "leaseDurationSeconds": 40, "renewTime": micro_time()}})
        finally:
            if reschedule:
                self.after(self.lease_interval, self.renew_lease)

    # ------------------------------------------------------------------ watch (its own thread)

    def watch_loop(self) -> None:
        rv = None
        selector = f"spec.nodeName={self.name}"
        while not self.stopping.is_set():
            try:
                if rv is None:
                    lst = self.api.call("GET", "/api/v1/pods", params={"fieldSelector": selector}, timeout=30)
                    rv = lst["metadata"]["resourceVersion"]
                    self.inbox.put(("SYNC", lst.get("items") or []))
                params = {"watch": "1", "fieldSelector": selector, "resourceVersion": rv,
                          "allowWatchBookmarks": "true", "timeoutSeconds": "240"}
                for ev in self.api.stream("/api/v1/pods", params, timeout=300):
                    etype, obj = ev.get("type"), ev.get("object") or {}
                    if etype == "ERROR":
                        if obj.get("code") == 410:
                            log.info("watch expired (410 Gone): relisting")
                        else:
                            log.warning("watch error: %s", obj.get("message"))
                            time.sleep(0.5)
                        rv = None
                        break
                    rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                    if etype in ("ADDED", "MODIFIED", "DELETED"):
                        self.inbox.put((etype, obj))
            except ApiError as exc:
                log.warning("watch: %s", exc)
                if exc.status == 410:
                    rv = None
                time.sleep(0.5)
            except Exception as exc:  # noqa: BLE001 - connection reset, stream cut (urllib3), bad JSON ...
                if not self.stopping.is_set():
                    log.info("watch interrupted (%s: %s); resuming", type(exc).__name__, exc)
                    time.sleep(0.5)

    def on_watch(self, etype: str, obj) -> None:
        if etype == "SYNC":
            present = {p["metadata"]["uid"] for p in obj}
            for uid in list(self.pods):
                if uid not in present:
                    self.forget(uid)
            for pod in obj:
                self.on_pod(pod)
        elif etype == "DELETED":
            self.forget(obj["metadata"]["uid"])
        else:
            self.on_pod(obj)

    def forget(self, uid: str) -> None:
        rt = self.pods.pop(uid, None)
        if rt:
            for c in rt.all():
                if c.timer:
                    c.timer.cancel()

    def on_pod(self, pod: dict) -> None:
        meta = pod["metadata"]
        uid = meta["uid"]
        rt = self.pods.get(uid)
        if rt is not None:
            rt.pod = pod
        if meta.get("deletionTimestamp"):
            self.finalize(pod, rt)
            return
        if rt is not None:
            return
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            return
        if (pod.get("status") or {}).get("containerStatuses"):
            self.resume(pod)
        else:
            self.admit(pod)

    # ------------------------------------------------------------------ events

    def event(self, rt: PodRuntime, etype: str, reason: str, msg: str, c: Container | None = None) -> None:
        fp = None
        if c is not None:
            fp = f"spec.{'initContainers' if c.init else 'containers'}{{{c.name}}}"
        key = (rt.uid, etype, reason, msg, fp)
        now = rfc3339()
        seen = self.event_names.get(key)
        if seen is not None:
            name, count = seen
            try:
                self.api.call("PATCH", f"/api/v1/namespaces/{rt.ns}/events/{name}",
                              {"count": count + 1, "lastTimestamp": now}, patch="strategic")
                self.event_names[key] = (name, count + 1)
                return
            except ApiError as exc:
                if exc.status != 404:
                    raise
        involved = {"kind": "Pod", "namespace": rt.ns, "name": rt.name, "uid": rt.uid, "apiVersion": "v1",
                    "resourceVersion": rt.pod["metadata"].get("resourceVersion", "")}
        if fp:
            involved["fieldPath"] = fp
        name = f"{rt.name}.{time.time_ns():x}"
        ev = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": rt.ns},
              "involvedObject": involved, "reason": reason, "message": msg,
              "source": {"component": "kubelet", "host": self.name}, "firstTimestamp": now, "lastTimestamp": now,
              "count": 1, "type": etype, "eventTime": None, "reportingComponent": "kubelet",
              "reportingInstance": self.name}
        self.api.call("POST", f"/api/v1/namespaces/{rt.ns}/events", ev)
        if len(self.event_names) > 20_000:
            self.event_names.clear()
        self.event_names[key] = (name, 1)

    def safe_event(self, *args, **kw) -> None:
        try:
            self.event(*args, **kw)
        except (ApiError, requests.RequestException) as exc:
            log.log(logging.DEBUG if getattr(exc, "status", 0) in (403, 404, 409) else logging.WARNING,
                    "event: %s", exc)

    # ------------------------------------------------------------------ pod lifecycle

    def _new_ip(self) -> str:
        self.ip_next += 1
        n = self.ip_next % 65000 + 2
        return f"{self.pod_net}.{(n >> 8) & 255}.{n & 255}"

    def admit(self, pod: dict) -> None:
        rt = PodRuntime(pod)
        rt.ip = self._new_ip()
        rt.containers = [Container(c["name"], c.get("image", "")) for c in pod["spec"].get("containers") or []]
        rt.init_containers = [Container(c["name"], c.get("image", ""), init=True)
                              for c in pod["spec"].get("initContainers") or []]
        self.pods[rt.uid] = rt
        self.write(rt, first=True)
        for c in rt.all():
            self.safe_event(rt, "Normal", "Pulling", f'Pulling image "{c.image}"', c)
            c.timer = self.after(self.ready_delay, self.pulled, rt, c)

    # -- the hooks of ContainerSimulator (after, write: above and below)
    def live(self, rt: PodRuntime) -> bool:
        return self.pods.get(rt.uid) is rt and not rt.finalizing

    def container_event(self, rt: PodRuntime, etype: str, reason: str, msg: str, c: Container | None = None) -> None:
        self.safe_event(rt, etype, reason, msg, c)

    def status_image(self, image: str) -> str:
        return full_image(image)

    # -- read by the log server's threads (hollow_logs.py)
    def log_source(self, ns: str, name: str):
        """(runtime, pod with the runtime's container statuses) of a pod this node runs, or None."""
        rt = next((r for r in list(self.pods.values()) if r.ns == ns and r.name == name), None)
        if rt is None:
            return None
        status = {"containerStatuses": [self.container_status(c) for c in list(rt.containers)],
                  "initContainerStatuses": [self.container_status(c) for c in list(rt.init_containers)]}
        return rt, {"metadata": rt.pod["metadata"], "spec": rt.pod["spec"], "status": status}

    def still_runs(self, rt: PodRuntime, container_id: str) -> bool:
        if self.pods.get(rt.uid) is not rt or rt.finalizing:
            return False
        return any(c.container_id == container_id and "running" in c.state for c in rt.containers)

    def finalize(self, pod: dict, rt: PodRuntime | None) -> None:
        """The pod is being deleted: stop its containers, report them terminated, delete it for good."""
        meta = pod["metadata"]
        if rt is None:
            rt = PodRuntime(pod)
            self.pods[rt.uid] = rt
        elif rt.finalizing:
            return
        for c in rt.all():
            if c.timer:
                c.timer.cancel()
                c.timer = None
        rt.finalizing = True
        now = rfc3339()
        statuses = []
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            running = (cs.get("state") or {}).get("running")
            if running:
                self.safe_event(rt, "Normal", "Killing", f"Stopping container {cs['name']}")
                cs = dict(cs, ready=False, started=False,
                          state={"terminated": {"exitCode": 0, "reason": "Completed",
                                                "startedAt": running.get("startedAt") or now, "finishedAt": now,
                                                "containerID": cs.get("containerID", "")}})
            statuses.append(cs)
        if statuses:
            try:
                conds = [dict(c) for c in (pod.get("status") or {}).get("conditions") or []]
                for cond in conds:
                    if cond.get("type") in ("Ready", "ContainersReady") and cond.get("status") == "True":
                        cond.update(status="False", lastTransitionTime=now, reason="PodCompleted")
                self.api.call("PATCH", f"/api/v1/namespaces/{rt.ns}/pods/{rt.name}/status",
                              {"metadata": {"uid": rt.uid},
                               "status": {"containerStatuses": statuses, "conditions": conds}}, patch="merge")
            except ApiError as exc:
                log.debug("final status of %s/%s: %s", rt.ns, rt.name, exc)
        try:
            self.api.call("DELETE", f"/api/v1/namespaces/{rt.ns}/pods/{rt.name}",
                          {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                           "preconditions": {"uid": meta["uid"]}})
        except ApiError as exc:
            if exc.status not in (404, 409):
                raise

    # ------------------------------------------------------------------ status

    def write(self, rt: PodRuntime, first: bool = False) -> None:
        if not self.live(rt):
            return
        now = rfc3339()
        pod_status = rt.pod.get("status") or {}
        gen = rt.pod["metadata"].get("generation")
        current = {c["type"]: c for c in pod_status.get("conditions") or []}
        current.update(rt.conditions)
        conds = self.pod_conditions(rt, current, now, gen)
        sched = current.get("PodScheduled") or {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                                                 "lastTransitionTime": now}
        conds.append(sched)
        rt.conditions = {c["type"]: c for c in conds}
        any_started = any(("running" in c.state) or c.restarts or ("terminated" in c.state) for c in rt.containers)
        all_failed = rt.containers and all("terminated" in c.state and c.state["terminated"]["exitCode"]
                                           for c in rt.containers)
        rt.phase = "Failed" if (all_failed and rt.restart_policy == "Never") else \
            ("Running" if any_started else "Pending")
        status = {"phase": rt.phase, "conditions": conds, "hostIP": self.host_ip, "hostIPs": [{"ip": self.host_ip}],
                  "startTime": rfc3339(rt.start), "containerStatuses": [self.container_status(c) for c in rt.containers]}
        if gen:
            status["observedGeneration"] = gen
        if rt.init_containers:
            status["initContainerStatuses"] = [self.container_status(c) for c in rt.init_containers]
        if any_started or any(c.container_id for c in rt.containers):
            status["podIP"] = rt.ip
            status["podIPs"] = [{"ip": rt.ip}]
        try:
            pod = self.api.call("PATCH", f"/api/v1/namespaces/{rt.ns}/pods/{rt.name}/status",
                                {"metadata": {"uid": rt.uid}, "status": status}, patch="merge")
        except ApiError as exc:
            if exc.status == 404:
                self.forget(rt.uid)
                return
            raise
        if self.pods.get(rt.uid) is rt:
            rt.pod = pod

    # ------------------------------------------------------------------ restart of this process

    def resume(self, pod: dict) -> None:
        """A pod that already has a status (this hollow node was restarted): carry on from it."""
        rt = PodRuntime(pod)
        rt.ip = (pod.get("status") or {}).get("podIP") or self._new_ip()
        self.pods[rt.uid] = rt
        self.restore_containers(rt, pod, time.time())


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.realkube.hollow_node",
                                description="A hollow node: a Node and a simulated kubelet against a real API server.")
    p.add_argument("--kubeconfig", required=True, help="kubeconfig of the node's identity (system:node:NAME)")
    p.add_argument("--name", default="hollow-1", help="node name")
    p.add_argument("--index", type=int, default=1, help="node number: pods get hostIP 10.0.0.(9+N), IPs 10.(243+N).x.y")
    p.add_argument("--ready-delay", type=float, default=0.2, help="seconds until a normal pod is Ready")
    p.add_argument("--slow-delay", type=float, default=60.0, help="seconds until a ':slow' image pod is Ready")
    p.add_argument("--backoff", type=float, default=10.0, help="base of the image-pull and crash-loop back-off")
    p.add_argument("--lease-interval", type=float, default=5.0, help="seconds between Lease renewals")
    p.add_argument("--heartbeat", type=float, default=10.0, help="seconds between NodeReady heartbeats")
    p.add_argument("--log-rate", type=float, default=1.0,
                   help="simulated access-log lines a second of a running container (pods/log)")
    p.add_argument("--kubelet-port", type=int, default=0, help="port of the kubelet API (logs); 0: a free one")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    api = Api(args.kubeconfig)
    node = HollowNode(api, args.name, args.index, args.ready_delay, args.slow_delay, args.backoff,
                      args.lease_interval, args.heartbeat, args.log_rate)
    server = KubeletServer(node, state_dir_for(args.kubeconfig, args.name), args.kubelet_port).start()
    node.kubelet_port = server.port
    signal.signal(signal.SIGTERM, lambda *_: node.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: node.stopping.set())
    try:
        node.run()
    finally:
        server.stop()
        log.info("node %s stopped", args.name)


if __name__ == "__main__":
    main()
