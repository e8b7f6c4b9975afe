"""The workload rules that read a pod spec (``policy.RULES`` lists them): Kubernetes' Pod
Security Standard *baseline* (k8s.io/pod-security-admission/policy/check_*.go) and what
it leaves open on a shared cluster (service accounts, node pinning, tolerations).

Each finder takes ``(obj, ctx)`` and yields ``(path, sentence)`` per offending field;
``_pods`` turns a function of the pod spec into one.
"""
from __future__ import annotations

from typing import Iterator

Finding = Iterator[tuple[str, str]]

# PSS baseline: capabilities a container may add (check_capabilities_baseline.go)
BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
# PSS baseline: sysctls a pod may set (check_sysctls.go, policy version latest)
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes"})
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
APPARMOR_TYPES = frozenset({"RuntimeDefault", "Localhost"})
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
CONTROL_PLANE_TAINTS = frozenset({"node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"})

# -- walking pod specs -----------------------------------------------------------

def _pod(obj: dict) -> tuple[str, dict] | None:
    if obj.get("kind") == "Deployment":
        spec = ((obj.get("spec") or {}).get("template") or {}).get("spec")
        return ("spec.template.spec", spec) if isinstance(spec, dict) else None
    return None


def _pod_meta(obj: dict) -> tuple[str, dict]:
    meta = ((obj.get("spec") or {}).get("template") or {}).get("metadata")
    return "spec.template.metadata", meta if isinstance(meta, dict) else {}


def _containers(spec: dict, base: str) -> Iterator[tuple[str, dict]]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        items = spec.get(key)
        if isinstance(items, list):
            for i, c in enumerate(items):
                if isinstance(c, dict):
                    yield f"{base}.{key}[{i}]", c


def _sc(holder: dict) -> dict:
    sc = holder.get("securityContext")
    return sc if isinstance(sc, dict) else {}


def _security_contexts(spec: dict, base: str) -> Iterator[tuple[str, dict]]:
    """The pod's security context, then each container's, with the path of each."""
    yield f"{base}.securityContext", _sc(spec)
    for where, c in _containers(spec, base):
        yield f"{where}.securityContext", _sc(c)


def _pods(find):
    """A finder over the pod spec (if the object has one) as ``find(spec, base, obj, ctx)``."""
    def run(obj: dict, ctx) -> Finding:
        found = _pod(obj)
        if found is not None:
            base, spec = found
            yield from find(spec, base, obj, ctx)
    return run


# -- Pod Security Standard: baseline ------------------------------------------------

@_pods
def host_namespaces(spec, base, obj, ctx):
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            yield f"{base}.{key}", f"{key} shares the node's namespaces with the pod, which is not allowed"


@_pods
def privileged(spec, base, obj, ctx):
    for where, c in _containers(spec, base):
        if _sc(c).get("privileged"):
            yield f"{where}.securityContext.privileged", \
                "privileged containers have the node's full power and are not allowed"


@_pods
def capabilities(spec, base, obj, ctx):
    for where, c in _containers(spec, base):
        added = (_sc(c).get("capabilities") or {}).get("add") if isinstance(_sc(c).get("capabilities"), dict) else None
        for i, cap in enumerate(added or []):
            if str(cap).upper().removeprefix("CAP_") not in BASELINE_CAPABILITIES:
                yield f"{where}.securityContext.capabilities.add[{i}]", \
                    f"adding capability {cap} is not allowed (only the Pod Security baseline set may be added)"


@_pods
def host_path(spec, base, obj, ctx):
    for i, volume in enumerate(spec.get("volumes") or []):
        if isinstance(volume, dict) and volume.get("hostPath") is not None:
            yield f"{base}.volumes[{i}].hostPath", "hostPath volumes reach into the node's files and are not allowed"


@_pods
def host_ports(spec, base, obj, ctx):
    for where, c in _containers(spec, base):
        for i, port in enumerate(c.get("ports") or []):
            if isinstance(port, dict) and port.get("hostPort"):
                yield f"{where}.ports[{i}].hostPort", "host ports bind the node's network and are not allowed"


@_pods
def apparmor(spec, base, obj, ctx):
    meta_path, meta = _pod_meta(obj)
    for key, value in (meta.get("annotations") or {}).items():
        if str(key).startswith(APPARMOR_ANNOTATION) and value != "runtime/default" \
                and not str(value).startswith("localhost/"):
            yield f"{meta_path}.annotations[{key}]", f"AppArmor profile {value!r} is not allowed"
    for where, sc in _security_contexts(spec, base):
        profile = sc.get("appArmorProfile")
        if isinstance(profile, dict) and profile.get("type") not in APPARMOR_TYPES:
            yield f"{where}.appArmorProfile.type", f"AppArmor profile type {profile.get('type')!r} is not allowed"


@_pods
def selinux(spec, base, obj, ctx):
    for where, sc in _security_contexts(spec, base):
        options = sc.get("seLinuxOptions")
        if not isinstance(options, dict):
            continue
        if options.get("type", "") not in SELINUX_TYPES:
            yield f"{where}.seLinuxOptions.type", f"SELinux type {options.get('type')!r} is not allowed"
        for key in ("user", "role"):
            if options.get(key):
                yield f"{where}.seLinuxOptions.{key}", f"setting a custom SELinux {key} is not allowed"


@_pods
def proc_mount(spec, base, obj, ctx):
    for where, c in _containers(spec, base):
        if _sc(c).get("procMount") not in (None, "Default"):
            yield f"{where}.securityContext.procMount", "an unmasked /proc mount is not allowed"


@_pods
def seccomp(spec, base, obj, ctx):
    for where, sc in _security_contexts(spec, base):
        profile = sc.get("seccompProfile")
        if isinstance(profile, dict) and profile.get("type") == "Unconfined":
            yield f"{where}.seccompProfile.type", "an Unconfined seccomp profile is not allowed"


@_pods
def sysctls(spec, base, obj, ctx):
    for i, sysctl in enumerate(_sc(spec).get("sysctls") or []):
        name = sysctl.get("name") if isinstance(sysctl, dict) else sysctl
        if name not in SAFE_SYSCTLS:
            yield f"{base}.securityContext.sysctls[{i}].name", f"sysctl {name!r} is not one of the safe ones"


@_pods
def host_process(spec, base, obj, ctx):
    for where, sc in _security_contexts(spec, base):
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            yield f"{where}.windowsOptions.hostProcess", "Windows host-process containers are not allowed"


# -- what PSS leaves open on a shared cluster: pods ---------------------------------

@_pods
def service_account(spec, base, obj, ctx):
    for key in ("serviceAccountName", "serviceAccount"):
        if spec.get(key) not in (None, "", "default"):
            yield f"{base}.{key}", (f"pods run as the namespace's default service account; "
                                    f"{spec[key]!r} is not allowed")


@_pods
def projected_tokens(spec, base, obj, ctx):
    for i, volume in enumerate(spec.get("volumes") or []):
        sources = ((volume or {}).get("projected") or {}).get("sources") if isinstance(volume, dict) else None
        for j, source in enumerate(sources or []):
            if isinstance(source, dict) and source.get("serviceAccountToken") is not None:
                yield f"{base}.volumes[{i}].projected.sources[{j}].serviceAccountToken", \
                    "projected service-account tokens are not allowed"


@_pods
def node_name(spec, base, obj, ctx):
    if spec.get("nodeName"):
        yield f"{base}.nodeName", "pinning pods to a node by name bypasses the scheduler and is not allowed"


@_pods
def tolerations(spec, base, obj, ctx):
    for i, toleration in enumerate(spec.get("tolerations") or []):
        if not isinstance(toleration, dict):
            continue
        if toleration.get("key") in CONTROL_PLANE_TAINTS:
            yield f"{base}.tolerations[{i}]", "tolerating the control plane's taint is not allowed"
        elif not toleration.get("key") and toleration.get("operator") == "Exists":
            yield f"{base}.tolerations[{i}]", "a toleration of every taint (operator Exists, no key) is not allowed"
