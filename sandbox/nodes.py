"""The sandbox's node as a core/v1 Node object.

The simulated kubelet (``kubelet.py``) binds every pod of the default scheduler to one node,
``<sandbox name>-node``; this module registers that node the way a kubelet does on start-up
(``Ready`` with the pressure conditions, capacity/allocatable, ``nodeInfo`` whose
``kubeletVersion`` is the API server's version, addresses, ``podCIDR``), so ``kubectl get
nodes``/``describe node`` and the DaemonSet controller see it.  A restart from a snapshot
re-registers it: the status is refreshed (heartbeat, version), the spec - ``kubectl cordon``'s
``unschedulable``, labels, taints - is kept.
"""
from __future__ import annotations

import hashlib
import uuid

from .controllers import Controller, EventRecorder, pod_is_ready
from .discovery import K8S_VERSION
from .registry import ApiError, Registry, micro_time, rfc3339
from .resources import LEASES, NODES

NODE_IP = "10.0.0.10"  # the hostIP the kubelet writes into its pods' status
POD_CIDR = "10.244.0.0/16"  # where the kubelet takes pod IPs from
CAPACITY = {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi", "hugepages-2Mi": "0"}
# The kubelet's default eviction thresholds (memory.available<100Mi, nodefs.available<10%) taken off.
ALLOCATABLE = {"cpu": "8", "memory": "33452032Ki", "pods": "110", "ephemeral-storage": "96636764160",
               "hugepages-2Mi": "0"}
ROLE_PREFIX = "node-role.kubernetes.io/"
LEASE_NS = "kube-node-lease"


def _conditions(now: str, since: str) -> list[dict]:
    def cond(ctype: str, status: str, reason: str, message: str) -> dict:
        return {"type": ctype, "status": status, "lastHeartbeatTime": now, "lastTransitionTime": since,
                "reason": reason, "message": message}

    return [cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            cond("Ready", "True", "KubeletReady", "kubelet is posting ready status")]


def node_status(name: str, since: str) -> dict:
    seed = hashlib.sha256(name.encode()).hexdigest()
    return {
        "capacity": dict(CAPACITY), "allocatable": dict(ALLOCATABLE),
        "conditions": _conditions(rfc3339(), since),
        "addresses": [{"type": "InternalIP", "address": NODE_IP}, {"type": "Hostname", "address": name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {"machineID": seed[:32], "systemUUID": str(uuid.UUID(seed[:32])), "bootID": str(uuid.uuid4()),
                     "kernelVersion": "6.1.0-sandbox", "osImage": "MAE sandbox (simulated node)",
                     "containerRuntimeVersion": "containerd://1.7.24", "kubeletVersion": K8S_VERSION["gitVersion"],
                     "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"},
        "images": [],
    }


def node_labels(name: str) -> dict:
    return {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
            ROLE_PREFIX + "control-plane": ""}


class NodeLease(Controller):
    """Renews the node's Lease in ``kube-node-lease`` every ``interval`` seconds, as the kubelet
    does (``kubectl describe node`` shows it)."""

    name = "node-lease"
    interval = 10.0
    duration = 40

    def __init__(self, registry: Registry, node: dict):
        super().__init__(registry)
        self.node = node

    def sync(self, key) -> None:
        self.enqueue_after(key, self.interval)
        name = self.node["metadata"]["name"]
        e = self.store.get(LEASES.key, LEASE_NS, name)
        if e is None:
            self.registry.create(LEASES, LEASE_NS, {
                "metadata": {"name": name, "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Node", "name": name, "uid": self.node["metadata"]["uid"]}]},
                "spec": {"holderIdentity": name, "leaseDurationSeconds": self.duration,
                         "renewTime": micro_time()}}, internal=True)
        else:
            self.registry.write(LEASES, e.shallow(spec={**e.obj["spec"], "renewTime": micro_time()}), old=e)


def register_node(registry: Registry, recorder: EventRecorder, name: str) -> NodeLease:
    """Create the node (or refresh its status after a restart), as a starting kubelet does;
    returns the (unstarted) controller that renews its Lease."""
    now = rfc3339()
    e = registry.store.get(NODES.key, "", name)
    if e is None:
        body = {"metadata": {"name": name, "labels": node_labels(name),
                             "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                             "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
                "spec": {"podCIDR": POD_CIDR, "podCIDRs": [POD_CIDR]}}
        e = registry.create(NODES, "", body, internal=True)
        e = registry.write_status(NODES, e.shallow(status=node_status(name, now)), old=e)
        recorder.event(e.obj, "Normal", "RegisteredNode", f"Node {name} event: Registered Node {name} in Controller",
                       "node-controller", kind="Node", api_version="v1")
    else:
        ready = [c for c in (e.obj.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"]
        since = ready[0].get("lastTransitionTime") if ready and ready[0].get("status") == "True" else now
        try:
            e = registry.write_status(NODES, e.shallow(status=node_status(name, since or now)), old=e)
        except ApiError:
            return
    recorder.event(e.obj, "Normal", "Starting", "Starting kubelet.", "kubelet", kind="Node", api_version="v1")
    lease = NodeLease(registry, e.obj)
    lease.enqueue("renew")
    return lease


def node_ready(node: dict) -> bool:
    return pod_is_ready(node)  # the same Ready condition


def node_roles(node: dict) -> str:
    labels = node["metadata"].get("labels") or {}
    roles = sorted(k[len(ROLE_PREFIX):] for k in labels if k.startswith(ROLE_PREFIX) and k[len(ROLE_PREFIX):])
    if labels.get("kubernetes.io/role"):
        roles = sorted(set(roles) | {labels["kubernetes.io/role"]})
    return ",".join(roles) or "<none>"


def node_row(node: dict, age: str) -> list:
    """``kubectl get nodes``: NAME STATUS ROLES AGE VERSION, wide: the addresses and nodeInfo."""
    st = node.get("status") or {}
    status = "Ready" if node_ready(node) else ("NotReady" if any(
        c.get("type") == "Ready" for c in st.get("conditions") or []) else "Unknown")
    if (node.get("spec") or {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    info = st.get("nodeInfo") or {}
    addr = {a.get("type"): a.get("address") for a in st.get("addresses") or []}
    return [node["metadata"]["name"], status, node_roles(node), age, info.get("kubeletVersion", ""),
            addr.get("InternalIP") or "<none>", addr.get("ExternalIP") or "<none>", info.get("osImage") or "<unknown>",
            info.get("kernelVersion") or "<unknown>", info.get("containerRuntimeVersion") or "<unknown>"]
