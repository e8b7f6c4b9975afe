"""Server-side printing: ``meta.k8s.io/v1 Table`` responses for ``kubectl get``.

kubectl asks for ``application/json;as=Table;v=v1;g=meta.k8s.io`` and prints whatever
columns the server returns; without a Table it can only print NAME and AGE.  The
columns and cell formats here follow the API server's printers
(pkg/printers/internalversion) for the kinds the sandbox serves, so ``kubectl get pods``
shows READY/STATUS/RESTARTS - including ``ImagePullBackOff`` and ``CrashLoopBackOff`` -
as on a real cluster.
"""
from __future__ import annotations

import time

from .nodes import node_row
from .registry import parse_time
from .selectors import selector_object_to_string


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(seconds)
    if s < 0:
        return "<invalid>"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = s // 3600
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    if h < 24 * 8:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    if d < 365 * 2:
        return f"{d}d"
    if d < 365 * 8:
        return f"{d // 365}y{d % 365}d" if d % 365 else f"{d // 365}y"
    return f"{d // 365}y"


def _age(obj: dict) -> str:
    ts = obj["metadata"].get("creationTimestamp")
    return human_duration(time.time() - parse_time(ts)) if ts else "<unknown>"


def _col(name: str, typ: str = "string", fmt: str = "", priority: int = 0, desc: str = "") -> dict:
    return {"name": name, "type": typ, "format": fmt, "description": desc or name, "priority": priority}


NAME_COL = _col("Name", fmt="name", desc="Name must be unique within a namespace.")
AGE_COL = _col("Age", desc="CreationTimestamp is a timestamp representing the server time when this object was created.")


def _pod_row(p: dict) -> list:
    st = p.get("status") or {}
    statuses = st.get("containerStatuses") or []
    total = len((p.get("spec") or {}).get("containers") or [])
    ready = sum(1 for c in statuses if c.get("ready"))
    reason = st.get("reason") or st.get("phase") or "Unknown"
    restarts = 0
    last_restart = 0.0
    init = False
    for i, c in enumerate(st.get("initContainerStatuses") or []):
        state = c.get("state") or {}
        if "terminated" in state and state["terminated"].get("exitCode") == 0:
            continue
        init = True
        if "waiting" in state and state["waiting"].get("reason") not in (None, "PodInitializing"):
            reason = "Init:" + state["waiting"]["reason"]
        else:
            reason = f"Init:{i}/{len(st.get('initContainerStatuses') or [])}"
        break
    if not init:
        has_running = False
        for c in reversed(statuses):
            restarts += c.get("restartCount", 0)
            term = (c.get("lastState") or {}).get("terminated")
            if term and term.get("finishedAt"):
                last_restart = max(last_restart, parse_time(term["finishedAt"]))
            state = c.get("state") or {}
            if state.get("waiting", {}).get("reason"):
                reason = state["waiting"]["reason"]
            elif state.get("terminated", {}).get("reason"):
                reason = state["terminated"]["reason"]
            elif "terminated" in state:
                reason = f"ExitCode:{state['terminated'].get('exitCode', 0)}"
            elif "running" in state and c.get("ready"):
                has_running = True
        if reason == "Completed" and has_running:
            reason = "Running"
    if p["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    rs = str(restarts)
    if restarts and last_restart:
        rs = f"{restarts} ({human_duration(time.time() - last_restart)} ago)"
    return [p["metadata"]["name"], f"{ready}/{total}", reason, rs, _age(p), st.get("podIP") or "<none>",
            (p.get("spec") or {}).get("nodeName") or "<none>", "<none>", "<none>"]


def _containers(spec: dict) -> tuple[str, str]:
    cs = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    return ",".join(c.get("name", "") for c in cs), ",".join(c.get("image", "") for c in cs)


def _deploy_row(d: dict) -> list:
    spec, st = d.get("spec") or {}, d.get("status") or {}
    names, images = _containers(spec)
    return [d["metadata"]["name"], f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
            st.get("updatedReplicas", 0), st.get("availableReplicas", 0), _age(d), names, images,
            selector_object_to_string(spec.get("selector"))]


def _rs_row(r: dict) -> list:
    spec, st = r.get("spec") or {}, r.get("status") or {}
    names, images = _containers(spec)
    return [r["metadata"]["name"], spec.get("replicas", 0), st.get("replicas", 0), st.get("readyReplicas", 0),
            _age(r), names, images, selector_object_to_string(spec.get("selector"))]


def _svc_row(s: dict) -> list:
    spec = s.get("spec") or {}
    ports = []
    for p in spec.get("ports") or []:
        port = f"{p.get('port')}/{p.get('protocol', 'TCP')}"
        if p.get("nodePort"):
            port = f"{p.get('port')}:{p['nodePort']}/{p.get('protocol', 'TCP')}"
        ports.append(port)
    ext = spec.get("externalName") or ",".join(spec.get("externalIPs") or []) or (
        "<pending>" if spec.get("type") == "LoadBalancer" else "<none>")
    sel = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items())) or "<none>"
    return [s["metadata"]["name"], spec.get("type", "ClusterIP"), spec.get("clusterIP") or "<none>", ext,
            ",".join(ports) or "<none>", _age(s), sel]


def _ns_row(n: dict) -> list:
    return [n["metadata"]["name"], (n.get("status") or {}).get("phase", "Active"), _age(n)]


def _event_row(e: dict) -> list:
    last = e.get("lastTimestamp") or e.get("eventTime") or e["metadata"].get("creationTimestamp")
    io = e.get("involvedObject") or {}
    return [human_duration(time.time() - parse_time(last)) if last else "<unknown>", e.get("type", ""),
            e.get("reason", ""), f"{(io.get('kind') or '').lower()}/{io.get('name', '')}", e.get("message", "")]


def _secret_row(s: dict) -> list:
    return [s["metadata"]["name"], s.get("type", "Opaque"), len(s.get("data") or {}), _age(s)]


def _cm_row(c: dict) -> list:
    return [c["metadata"]["name"], len(c.get("data") or {}) + len(c.get("binaryData") or {}), _age(c)]


def _sa_row(s: dict) -> list:
    return [s["metadata"]["name"], len(s.get("secrets") or []), _age(s)]


def _ing_row(i: dict) -> list:
    spec = i.get("spec") or {}
    hosts = ",".join(r.get("host", "*") for r in spec.get("rules") or []) or "*"
    lb = ",".join(x.get("ip") or x.get("hostname", "") for x in ((i.get("status") or {}).get("loadBalancer") or {}).get("ingress") or [])
    ports = "80, 443" if spec.get("tls") else "80"
    return [i["metadata"]["name"], spec.get("ingressClassName") or "<none>", hosts, lb, ports, _age(i)]


def _hpa_row(h: dict) -> list:
    spec, st = h.get("spec") or {}, h.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    return [h["metadata"]["name"], f"{ref.get('kind', '')}/{ref.get('name', '')}", "<unknown>",
            spec.get("minReplicas", 1), spec.get("maxReplicas", 0), st.get("currentReplicas", 0), _age(h)]


def _node_row(n: dict) -> list:
    return node_row(n, _age(n))


def _since(ts: str | None) -> str:
    return human_duration(time.time() - parse_time(ts)) if ts else "<none>"


def _job_row(j: dict) -> list:
    spec, st = j.get("spec") or {}, j.get("status") or {}
    succeeded = st.get("succeeded", 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif (spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    status = "Running"
    for c in st.get("conditions") or []:
        if c.get("status") == "True" and c.get("type") in ("Complete", "Failed", "Suspended", "FailureTarget",
                                                           "SuccessCriteriaMet"):
            status = c["type"]
            if status in ("Complete", "Failed"):
                break
    start, end = st.get("startTime"), st.get("completionTime")
    duration = human_duration((parse_time(end) if end else time.time()) - parse_time(start)) if start else ""
    names, images = _containers(spec)
    return [j["metadata"]["name"], status, completions, duration, _age(j), names, images,
            selector_object_to_string(spec.get("selector"))]


def _cronjob_row(c: dict) -> list:
    spec, st = c.get("spec") or {}, c.get("status") or {}
    names, images = _containers((spec.get("jobTemplate") or {}).get("spec") or {})
    selector = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("selector")
    return [c["metadata"]["name"], spec.get("schedule", ""), spec.get("timeZone") or "<none>",
            "True" if spec.get("suspend") else "False", len(st.get("active") or []), _since(st.get("lastScheduleTime")),
            _age(c), names, images, selector_object_to_string(selector) if selector else "<none>"]


def _ds_row(d: dict) -> list:
    spec, st = d.get("spec") or {}, d.get("status") or {}
    node_sel = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
    names, images = _containers(spec)
    return [d["metadata"]["name"], st.get("desiredNumberScheduled", 0), st.get("currentNumberScheduled", 0),
            st.get("numberReady", 0), st.get("updatedNumberScheduled", 0), st.get("numberAvailable", 0),
            ",".join(f"{k}={v}" for k, v in sorted(node_sel.items())) or "<none>", _age(d), names, images,
            selector_object_to_string(spec.get("selector"))]


def _sts_row(s: dict) -> list:
    spec, st = s.get("spec") or {}, s.get("status") or {}
    names, images = _containers(spec)
    return [s["metadata"]["name"], f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 0)}", _age(s), names, images]


def _rc_row(r: dict) -> list:
    spec, st = r.get("spec") or {}, r.get("status") or {}
    names, images = _containers(spec)
    sel = ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items()))
    return [r["metadata"]["name"], spec.get("replicas", 0), st.get("replicas", 0), st.get("readyReplicas", 0),
            _age(r), names, images, sel]


def _cr_row(r: dict) -> list:
    owner = next((o for o in r["metadata"].get("ownerReferences") or [] if o.get("controller")), None)
    ctrl = f"{owner['kind'].lower()}.{owner['apiVersion'].split('/')[0]}/{owner['name']}" if owner else "<none>"
    return [r["metadata"]["name"], ctrl, r.get("revision", 0), _age(r)]


_WIDE = [_col("Containers", priority=1), _col("Images", priority=1)]
_SELECTOR = _col("Selector", priority=1)

TABLES = {
    "pods": ([NAME_COL, _col("Ready"), _col("Status"), _col("Restarts"), AGE_COL, _col("IP", priority=1),
              _col("Node", priority=1), _col("Nominated Node", priority=1), _col("Readiness Gates", priority=1)],
             _pod_row),
    "apps/deployments": ([NAME_COL, _col("Ready"), _col("Up-to-date", "integer"), _col("Available", "integer"),
                          AGE_COL, _col("Containers", priority=1), _col("Images", priority=1),
                          _col("Selector", priority=1)], _deploy_row),
    "apps/replicasets": ([NAME_COL, _col("Desired", "integer"), _col("Current", "integer"), _col("Ready", "integer"),
                          AGE_COL, _col("Containers", priority=1), _col("Images", priority=1),
                          _col("Selector", priority=1)], _rs_row),
    "services": ([NAME_COL, _col("Type"), _col("Cluster-IP"), _col("External-IP"), _col("Port(s)"), AGE_COL,
                  _col("Selector", priority=1)], _svc_row),
    "namespaces": ([NAME_COL, _col("Status"), AGE_COL], _ns_row),
    "events": ([_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"), _col("Message")], _event_row),
    "secrets": ([NAME_COL, _col("Type"), _col("Data", "integer"), AGE_COL], _secret_row),
    "configmaps": ([NAME_COL, _col("Data", "integer"), AGE_COL], _cm_row),
    "serviceaccounts": ([NAME_COL, _col("Secrets", "integer"), AGE_COL], _sa_row),
    "networking.k8s.io/ingresses": ([NAME_COL, _col("Class"), _col("Hosts"), _col("Address"), _col("Ports"), AGE_COL],
                                    _ing_row),
    "autoscaling/horizontalpodautoscalers": ([NAME_COL, _col("Reference"), _col("Targets"), _col("MinPods", "integer"),
                                              _col("MaxPods", "integer"), _col("Replicas", "integer"), AGE_COL], _hpa_row),
    "nodes": ([NAME_COL, _col("Status"), _col("Roles"), AGE_COL, _col("Version"), _col("Internal-IP", priority=1),
               _col("External-IP", priority=1), _col("OS-Image", priority=1), _col("Kernel-Version", priority=1),
               _col("Container-Runtime", priority=1)], _node_row),
    "batch/jobs": ([NAME_COL, _col("Status"), _col("Completions"), _col("Duration"), AGE_COL, *_WIDE, _SELECTOR],
                   _job_row),
    "batch/cronjobs": ([NAME_COL, _col("Schedule"), _col("Timezone"), _col("Suspend"), _col("Active", "integer"),
                        _col("Last Schedule"), AGE_COL, *_WIDE, _SELECTOR], _cronjob_row),
    "apps/daemonsets": ([NAME_COL, _col("Desired", "integer"), _col("Current", "integer"), _col("Ready", "integer"),
                         _col("Up-to-date", "integer"), _col("Available", "integer"), _col("Node Selector"), AGE_COL,
                         *_WIDE, _SELECTOR], _ds_row),
    "apps/statefulsets": ([NAME_COL, _col("Ready"), AGE_COL, *_WIDE], _sts_row),
    "replicationcontrollers": ([NAME_COL, _col("Desired", "integer"), _col("Current", "integer"),
                                _col("Ready", "integer"), AGE_COL, *_WIDE, _SELECTOR], _rc_row),
    "apps/controllerrevisions": ([NAME_COL, _col("Controller"), _col("Revision", "integer"), AGE_COL], _cr_row),
    "coordination.k8s.io/leases": ([NAME_COL, _col("Holder"), AGE_COL],
                                   lambda x: [x["metadata"]["name"], (x.get("spec") or {}).get("holderIdentity", ""),
                                              _age(x)]),
}


def _partial(obj: dict) -> dict:
    meta = dict(obj["metadata"])
    meta.pop("managedFields", None)
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}


def table(res_key: str, objs: list[dict], rv: str, include_object: str = "Metadata",
          cont: str | None = None, with_columns: bool = True) -> dict:
    cols, row_fn = TABLES.get(res_key, ([NAME_COL, AGE_COL], lambda o: [o["metadata"]["name"], _age(o)]))
    rows = []
    for o in objs:
        row = {"cells": row_fn(o)}
        if include_object == "Object":
            row["object"] = o
        elif include_object != "None":
            row["object"] = _partial(o)
        rows.append(row)
    meta = {"resourceVersion": rv}
    if cont:
        meta["continue"] = cont
    out = {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "rows": rows}
    if with_columns:
        out["columnDefinitions"] = cols
    else:
        out["columnDefinitions"] = None
    return out
