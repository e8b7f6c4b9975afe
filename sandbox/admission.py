"""Admission of pods, as the real API server's plugins do it on create: Pod Security
(the namespace's ``pod-security.kubernetes.io/enforce`` level, the common checks of the
baseline and restricted policies), LimitRange (defaults, then per-container min/max)
and ResourceQuota (``pods``, ``count/pods`` and CPU/memory requests and limits).

A refusal is a 403 ``Forbidden`` with the real plugins' message, so a ReplicaSet whose
pods are refused records ``FailedCreate`` and a ``ReplicaFailure`` condition exactly as
the real controllers do (``controllers.ReplicaSetController``).
"""
from __future__ import annotations

from decimal import Decimal

from .registry import ApiError
from .resources import BY_KEY, PODS

ENFORCE = "pod-security.kubernetes.io/enforce"
ENFORCE_VERSION = "pod-security.kubernetes.io/enforce-version"
LEVELS = ("privileged", "baseline", "restricted")
BASELINE_CAPS = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                 "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                      "projected", "secret"}
VOLUME_SOURCES = ("hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi",
                  "glusterfs", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile",
                  "vsphereVolume", "quobyte", "azureDisk", "portworxVolume", "photonPersistentDiskVolume",
                  "scaleIO", "storageos", "image", *sorted(RESTRICTED_VOLUMES))


def forbidden(pod_name: str, message: str) -> ApiError:
    return ApiError(403, "Forbidden", f'pods "{pod_name}" is forbidden: {message}',
                    {"name": pod_name, "kind": "pods"})


def admit_pod(store, ns: str, pod: dict) -> None:
    """Raise the real API server's 403 if the pod may not be created in ``ns``."""
    name = pod["metadata"].get("name") or pod["metadata"].get("generateName") or ""
    namespace = store.get(BY_KEY["namespaces"].key, "", ns)
    labels = ((namespace.obj if namespace else {}).get("metadata") or {}).get("labels") or {}
    level = labels.get(ENFORCE, "privileged")
    if level in LEVELS[1:]:
        problems = pod_security(pod.get("spec") or {}, level, pod["metadata"].get("annotations"))
        if problems:
            version = labels.get(ENFORCE_VERSION) or "latest"
            raise forbidden(name, f'violates PodSecurity "{level}:{version}": ' + ", ".join(problems))
    limit_ranges(store, ns, name, pod)
    quotas(store, ns, name, pod)


# -- Pod Security ------------------------------------------------------------------------

def _containers(spec: dict) -> list[dict]:
    return [c for key in ("initContainers", "containers", "ephemeralContainers")
            for c in spec.get(key) or [] if isinstance(c, dict)]


def _who(names: list[str]) -> str:
    quoted = ", ".join(f'"{n}"' for n in names)
    return f"container {quoted}" if len(names) == 1 else f"containers {quoted}"


def _sc(obj: dict) -> dict:
    return obj.get("securityContext") or {}


def pod_security(spec: dict, level: str, annotations: dict | None = None) -> list[str]:
    """The violated checks, worded and ordered like pod-security-admission's."""
    out: list[str] = []
    apparmor = [f'{k}="{v}"' for k, v in (annotations or {}).items()
                if k.startswith("container.apparmor.security.beta.kubernetes.io/")
                and v != "runtime/default" and not str(v).startswith("localhost/")]
    if apparmor:
        out.append(f"forbidden AppArmor profile{'s' if len(apparmor) > 1 else ''} ({', '.join(apparmor)})")
    pod_sc = spec.get("securityContext") or {}
    containers = _containers(spec)
    hosts = [f"{k}=true" for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]
    if hosts:
        out.append(f"host namespaces ({', '.join(hosts)})")
    privileged = [c["name"] for c in containers if _sc(c).get("privileged")]
    if privileged:
        out.append(f"privileged ({_who(privileged)} must not set securityContext.privileged=true)")
    added = {}
    for c in containers:
        extra = [cap for cap in (_sc(c).get("capabilities") or {}).get("add") or [] if cap not in BASELINE_CAPS]
        if extra:
            added[c["name"]] = extra
    if added:
        caps = sorted({cap for v in added.values() for cap in v})
        out.append(f"non-default capabilities ({_who(list(added))} must not include "
                   f"{', '.join(repr(x).replace(chr(39), chr(34)) for x in caps)} in securityContext.capabilities.add)")
    host_path = [v.get("name") for v in spec.get("volumes") or [] if isinstance(v, dict) and "hostPath" in v]
    if host_path:
        vols = ", ".join(f'"{n}"' for n in host_path)
        out.append(f"hostPath volumes (volume{'s' if len(host_path) > 1 else ''} {vols})")
    ports = [(c["name"], p.get("hostPort")) for c in containers for p in c.get("ports") or []
             if isinstance(p, dict) and p.get("hostPort")]
    if ports:
        out.append("hostPort (" + ", ".join(f'container "{n}" uses hostPort {p}' for n, p in ports) + ")")
    out.extend(_baseline_rest(spec, pod_sc, containers))
    if (pod_sc.get("seccompProfile") or {}).get("type") == "Unconfined" or any(
            (_sc(c).get("seccompProfile") or {}).get("type") == "Unconfined" for c in containers):
        out.append('seccompProfile (pod or containers must not set securityContext.seccompProfile.type '
                   'to "Unconfined")')
    if level != "restricted":
        return out
    restricted = []
    for v in spec.get("volumes") or []:
        if isinstance(v, dict):
            kind = next((k for k in v if k != "name"), None)
            if kind and kind not in RESTRICTED_VOLUMES:
                restricted.append((v.get("name"), kind))
    if restricted:
        out.append("restricted volume types (" + ", ".join(
            f'volume "{n}" uses restricted volume type "{k}"' for n, k in restricted) + ")")
    escalating = [c["name"] for c in containers if _sc(c).get("allowPrivilegeEscalation") is not False]
    if escalating:
        out.append(f"allowPrivilegeEscalation != false ({_who(escalating)} must set "
                   "securityContext.allowPrivilegeEscalation=false)")
    no_drop = [c["name"] for c in containers
               if "ALL" not in ((_sc(c).get("capabilities") or {}).get("drop") or [])]
    if no_drop:
        out.append(f'unrestricted capabilities ({_who(no_drop)} must set securityContext.capabilities.drop=["ALL"])')
    if pod_sc.get("runAsNonRoot") is not True:
        root = [c["name"] for c in containers if _sc(c).get("runAsNonRoot") is not True]
        if root:
            what = "pod or " + _who(root) if len(root) == len(containers) else _who(root)
            out.append(f"runAsNonRoot != true ({what} must set securityContext.runAsNonRoot=true)")
    as_root = [c["name"] for c in containers if _sc(c).get("runAsUser") == 0]
    if pod_sc.get("runAsUser") == 0:
        out.append("runAsUser=0 (pod must not set runAsUser=0)")
    elif as_root:
        out.append(f"runAsUser=0 ({_who(as_root)} must not set runAsUser=0)")
    if (pod_sc.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
        unset = [c["name"] for c in containers
                 if (_sc(c).get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost")]
        if unset:
            what = "pod or " + _who(unset) if len(unset) == len(containers) else _who(unset)
            out.append(f'seccompProfile ({what} must set securityContext.seccompProfile.type to '
                       '"RuntimeDefault" or "Localhost")')
    return out


SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"}
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}


def _baseline_rest(spec: dict, pod_sc: dict, containers: list[dict]) -> list[str]:
    """Baseline's other checks: AppArmor, SELinux, /proc mount, sysctls, Windows host process."""
    out = []
    apparmor = [c["name"] for c in containers
                if (_sc(c).get("appArmorProfile") or {}).get("type") not in (None, "RuntimeDefault", "Localhost")]
    if (pod_sc.get("appArmorProfile") or {}).get("type") not in (None, "RuntimeDefault", "Localhost") or apparmor:
        out.append("forbidden AppArmor profile (" + (_who(apparmor) if apparmor else "pod") +
                   ' must not set securityContext.appArmorProfile.type to "Unconfined")')
    selinux = []
    for who, sc in [("pod", pod_sc)] + [(f'container "{c["name"]}"', _sc(c)) for c in containers]:
        options = sc.get("seLinuxOptions") or {}
        bad = [f'{k} "{options[k]}"' for k in ("user", "role") if options.get(k)]
        if options.get("type", "") not in SELINUX_TYPES:
            bad.insert(0, f'type "{options["type"]}"')
        if bad:
            selinux.append(f"{who} set forbidden securityContext.seLinuxOptions: {', '.join(bad)}")
    if selinux:
        out.append(f"seLinuxOptions ({'; '.join(selinux)})")
    unmasked = [c["name"] for c in containers if _sc(c).get("procMount") not in (None, "Default")]
    if unmasked:
        out.append(f'procMount ({_who(unmasked)} must not set securityContext.procMount to "Unmasked")')
    sysctls = [s.get("name") for s in pod_sc.get("sysctls") or [] if isinstance(s, dict)
               and s.get("name") not in SAFE_SYSCTLS]
    if sysctls:
        out.append(f"forbidden sysctls ({', '.join(sysctls)})")
    host_process = [c["name"] for c in containers if (_sc(c).get("windowsOptions") or {}).get("hostProcess")]
    if (pod_sc.get("windowsOptions") or {}).get("hostProcess") or host_process:
        out.append("hostProcess (" + (_who(host_process) if host_process else "pod") +
                   " must not set securityContext.windowsOptions.hostProcess=true)")
    return out


# -- LimitRange ----------------------------------------------------------------------------

def _q(value) -> Decimal:
    # Imported on first use: ``kubernetes`` is a large package (~0.3 s to import) that only
    # LimitRange/ResourceQuota checks need, and the first pod create must not pay for it.
    from kubernetes.utils.quantity import parse_quantity
    return parse_quantity(value)


def limit_ranges(store, ns: str, name: str, pod: dict) -> None:
    """Container defaults, then min/max per container (the LimitRanger plugin)."""
    problems = []
    for entry in store.iter(BY_KEY["limitranges"].key, ns):
        for item in (entry.obj.get("spec") or {}).get("limits") or []:
            if item.get("type") != "Container":
                continue
            for c in (pod.get("spec") or {}).get("containers") or []:
                res = c.setdefault("resources", {})
                for key, default in (("limits", item.get("default")), ("requests", item.get("defaultRequest"))):
                    for rname, value in (default or {}).items():
                        res.setdefault(key, {}).setdefault(rname, value)
                for rname, value in (res.get("limits") or {}).items():
                    res.setdefault("requests", {}).setdefault(rname, value)
                for rname, bound in (item.get("max") or {}).items():
                    limit = (res.get("limits") or {}).get(rname)
                    if limit is None:
                        problems.append(f"maximum {rname} usage per Container is {bound}.  No limit is specified")
                    elif _q(limit) > _q(bound):
                        problems.append(f"maximum {rname} usage per Container is {bound}, but limit is {limit}")
                for rname, bound in (item.get("min") or {}).items():
                    request = (res.get("requests") or {}).get(rname)
                    if request is None:
                        problems.append(f"minimum {rname} usage per Container is {bound}.  No request is specified")
                    elif _q(request) < _q(bound):
                        problems.append(f"minimum {rname} usage per Container is {bound}, but request is {request}")
    if problems:
        raise forbidden(name, "[" + ", ".join(problems) + "]" if len(problems) > 1 else problems[0])


# -- ResourceQuota -------------------------------------------------------------------------

def _pod_usage(pod: dict) -> dict[str, Decimal]:
    usage = {"pods": Decimal(1), "count/pods": Decimal(1)}
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = c.get("resources") or {}
        for kind in ("requests", "limits"):
            for rname in ("cpu", "memory"):
                value = (res.get(kind) or {}).get(rname)
                if value is not None:
                    key = f"{kind}.{rname}"
                    usage[key] = usage.get(key, Decimal(0)) + _q(value)
                    if kind == "requests":
                        usage[rname] = usage.get(rname, Decimal(0)) + _q(value)
    return usage


def _declared(pod: dict, key: str) -> bool:
    kind, _, rname = key.rpartition(".")
    kind = kind or "requests"
    return all(((c.get("resources") or {}).get(kind) or {}).get(rname) is not None
               for c in (pod.get("spec") or {}).get("containers") or [])


def _fmt(key: str, value: Decimal) -> str:
    if key.endswith("cpu") or key == "cpu":
        milli = value * 1000
        return f"{int(milli)}m" if milli != milli.to_integral_value() or milli % 1000 else str(int(value))
    return str(int(value)) if value == value.to_integral_value() else str(value)


def quotas(store, ns: str, name: str, pod: dict) -> None:
    want = _pod_usage(pod)
    active = None  # the namespace's pods that count, gathered once a quota needs them
    for entry in store.iter(BY_KEY["resourcequotas"].key, ns):
        hard = (entry.obj.get("spec") or {}).get("hard") or {}
        qname = entry.obj["metadata"]["name"]
        tracked = [k for k in sorted(hard) if k in ("pods", "count/pods", "cpu", "memory", "requests.cpu",
                                                   "requests.memory", "limits.cpu", "limits.memory")]
        missing = [k for k in tracked if k not in ("pods", "count/pods") and not _declared(pod, k)]
        if missing:
            raise forbidden(name, f"failed quota: {qname}: must specify {','.join(missing)}")
        used = {k: Decimal(0) for k in tracked}
        if active is None:
            active = [e.obj for e in store.iter(PODS.key, ns)
                      if (e.obj.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
                      and not e.obj["metadata"].get("deletionTimestamp")]
        for other in active:
            for k, v in _pod_usage(other).items():
                if k in used:
                    used[k] += v
        over = [k for k in tracked if used[k] + want.get(k, Decimal(0)) > _q(hard[k])]
        if over:
            raise forbidden(name, f"exceeded quota: {qname}, "
                                  f"requested: {','.join(f'{k}={_fmt(k, want.get(k, Decimal(0)))}' for k in over)}, "
                                  f"used: {','.join(f'{k}={_fmt(k, used[k])}' for k in over)}, "
                                  f"limited: {','.join(f'{k}={hard[k]}' for k in over)}")
