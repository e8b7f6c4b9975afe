"""What an application may run on a shared cluster: the one table of workload rules.

Every rendered object passes ``check`` before MAE stores or applies it — when a
template is saved (rendered from sample values), when a version or ingress is
created or changed, and again on the manifests of a deploy and a preview. A
refusal names its rule, the object and the path to the field
(``PolicyRefused`` → 422 ``policy_violation``).

``RULES`` is the table. Each row is a rule name, the level it belongs to and a
finder that yields ``(path, sentence)`` for each offending field:

* level ``baseline`` — Kubernetes' Pod Security Standard *baseline*, the same
  checks the namespace's Pod Security Admission label makes in the cluster
  (k8s.io/pod-security-admission/policy/check_*.go). An admin may raise one app
  to ``privileged`` (``PUT /apps/{app}/policy``, audited), which waives these;
* level ``platform`` — what PSS leaves open on a shared cluster (other service
  accounts and their tokens, node pinning, control-plane tolerations, Service
  exposure, ingress snippets, kinds and namespaces MAE does not manage). No
  override waives them.

What may vary by installation comes from config (``Context.from_config``):
``SERVICE_TYPES`` (env → Service types allowed there; ClusterIP everywhere by
default) and ``INGRESS_ANNOTATIONS`` (the allowed annotation keys; a trailing
``*`` allows a prefix; nothing containing ``snippet`` is ever allowed).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from services.deploy.domain.templates import TemplateRefused

# kind → apiVersions the clusters MAE targets serve for it
KINDS = {
    "Deployment": ("apps/v1",),
    "Service": ("v1",),
    "Ingress": ("networking.k8s.io/v1",),
    "ConfigMap": ("v1",),
    "Secret": ("v1",),
    "HorizontalPodAutoscaler": ("autoscaling/v2",),
}

LEVELS = ("baseline", "privileged")

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
DEFAULT_SERVICE_TYPES = ("ClusterIP",)
DEFAULT_INGRESS_ANNOTATIONS = (
    "cert-manager.io/cluster-issuer", "cert-manager.io/issuer",
    "kubernetes.io/ingress.class", "ingress.kubernetes.io/ssl-redirect",
    "nginx.ingress.kubernetes.io/rewrite-target", "nginx.ingress.kubernetes.io/ssl-redirect",
    "nginx.ingress.kubernetes.io/force-ssl-redirect", "nginx.ingress.kubernetes.io/proxy-body-size",
    "nginx.ingress.kubernetes.io/proxy-connect-timeout", "nginx.ingress.kubernetes.io/proxy-read-timeout",
    "nginx.ingress.kubernetes.io/proxy-send-timeout", "nginx.ingress.kubernetes.io/backend-protocol",
    "nginx.ingress.kubernetes.io/use-regex", "nginx.ingress.kubernetes.io/enable-cors",
    "nginx.ingress.kubernetes.io/cors-allow-origin", "nginx.ingress.kubernetes.io/cors-allow-methods",
    "nginx.ingress.kubernetes.io/cors-allow-headers", "nginx.ingress.kubernetes.io/limit-rps",
    "nginx.ingress.kubernetes.io/limit-connections", "nginx.ingress.kubernetes.io/affinity",
    "traefik.ingress.kubernetes.io/router.entrypoints", "traefik.ingress.kubernetes.io/router.tls",
)


class PolicyRefused(TemplateRefused):
    """A rendered object breaks a rule of the table."""

    def __init__(self, rule: str, obj: str, path: str, sentence: str):
        super().__init__(f"{obj}: {sentence} (rule {rule}, at {path})")
        self.rule, self.object, self.path, self.sentence = rule, obj, path, sentence

    @property
    def details(self) -> dict:
        return {"rule": self.rule, "object": self.object, "path": self.path}


@dataclass(frozen=True)
class Context:
    """What the rules depend on besides the object: the app's level (an admin override),
    the environments of the clusters it goes to (``None``: not known yet, at save time —
    then what *some* environment allows passes, and the deploy checks again), and config."""
    level: str = "baseline"
    envs: frozenset | None = None
    service_types: dict = field(default_factory=dict)      # env → allowed Service types
    ingress_annotations: tuple = DEFAULT_INGRESS_ANNOTATIONS

    @classmethod
    def from_config(cls, config: dict, level: str | None = None, envs: Iterable[str] | None = None) -> "Context":
        types = config.get("SERVICE_TYPES") or {}
        allowed = config.get("INGRESS_ANNOTATIONS")
        return cls(level=level if level in LEVELS else "baseline",
                   envs=frozenset(envs) if envs is not None else None,
                   service_types={str(k): tuple(v or ()) for k, v in types.items()} if isinstance(types, dict)
                   else {},
                   ingress_annotations=tuple(allowed) if isinstance(allowed, list) else DEFAULT_INGRESS_ANNOTATIONS)

    def service_type_allowed(self, kind: str) -> bool:
        if kind in DEFAULT_SERVICE_TYPES:
            return True
        envs = self.envs if self.envs is not None else set(self.service_types)
        verdicts = [kind in self.service_types.get(env, DEFAULT_SERVICE_TYPES) for env in envs]
        if self.envs is None:
            return any(verdicts)
        return bool(verdicts) and all(verdicts)

    def annotation_allowed(self, key: str) -> bool:
        if "snippet" in key.lower():
            return False
        return any(key == a or (a.endswith("*") and key.startswith(a[:-1])) for a in self.ingress_annotations)


Finding = Iterator[tuple[str, str]]


@dataclass(frozen=True)
class Rule:
    name: str
    level: str                       # "baseline" (PSS; waived for privileged apps) | "platform"
    kinds: tuple[str, ...]
    find: Callable[[dict, Context], Finding]
    why: str                         # one line for the docs and the rule listing


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


def _pods(find):
    """A finder over the pod spec (if the object has one) as ``find(spec, base, obj, ctx)``."""
    def run(obj: dict, ctx: Context) -> Finding:
        found = _pod(obj)
        if found is not None:
            base, spec = found
            yield from find(spec, base, obj, ctx)
    return run


# -- Pod Security Standard: baseline ------------------------------------------------

@_pods
def _host_namespaces(spec, base, obj, ctx):
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            yield f"{base}.{key}", f"{key} shares the node's namespaces with the pod, which is not allowed"


@_pods
def _privileged(spec, base, obj, ctx):
    for where, c in _containers(spec, base):
        if _sc(c).get("privileged"):
            yield f"{where}.securityContext.privileged", \
                "privileged containers have the node's full power and are not allowed"


@_pods
def _capabilities(spec, base, obj, ctx):
    for where, c in _containers(spec, base):
        added = (_sc(c).get("capabilities") or {}).get("add") if isinstance(_sc(c).get("capabilities"), dict) else None
        for i, cap in enumerate(added or []):
            if str(cap).upper().removeprefix("CAP_") not in BASELINE_CAPABILITIES:
                yield f"{where}.securityContext.capabilities.add[{i}]", \
                    f"adding capability {cap} is not allowed (only the Pod Security baseline set may be added)"


@_pods
def _host_path(spec, base, obj, ctx):
    for i, volume in enumerate(spec.get("volumes") or []):
        if isinstance(volume, dict) and volume.get("hostPath") is not None:
            yield f"{base}.volumes[{i}].hostPath", "hostPath volumes reach into the node's files and are not allowed"


@_pods
def _host_ports(spec, base, obj, ctx):
    for where, c in _containers(spec, base):
        for i, port in enumerate(c.get("ports") or []):
            if isinstance(port, dict) and port.get("hostPort"):
                yield f"{where}.ports[{i}].hostPort", "host ports bind the node's network and are not allowed"


@_pods
def _apparmor(spec, base, obj, ctx):
    meta_path, meta = _pod_meta(obj)
    for key, value in (meta.get("annotations") or {}).items():
        if str(key).startswith(APPARMOR_ANNOTATION) and value != "runtime/default" \
                and not str(value).startswith("localhost/"):
            yield f"{meta_path}.annotations[{key}]", f"AppArmor profile {value!r} is not allowed"
    holders = [(f"{base}.securityContext", _sc(spec))] + \
        [(f"{where}.securityContext", _sc(c)) for where, c in _containers(spec, base)]
    for where, sc in holders:
        profile = sc.get("appArmorProfile")
        if isinstance(profile, dict) and profile.get("type") not in APPARMOR_TYPES:
            yield f"{where}.appArmorProfile.type", f"AppArmor profile type {profile.get('type')!r} is not allowed"


@_pods
def _selinux(spec, base, obj, ctx):
    holders = [(f"{base}.securityContext", _sc(spec))] + \
        [(f"{where}.securityContext", _sc(c)) for where, c in _containers(spec, base)]
    for where, sc in holders:
        options = sc.get("seLinuxOptions")
        if not isinstance(options, dict):
            continue
        if options.get("type", "") not in SELINUX_TYPES:
            yield f"{where}.seLinuxOptions.type", f"SELinux type {options.get('type')!r} is not allowed"
        for key in ("user", "role"):
            if options.get(key):
                yield f"{where}.seLinuxOptions.{key}", f"setting a custom SELinux {key} is not allowed"


@_pods
def _proc_mount(spec, base, obj, ctx):
    for where, c in _containers(spec, base):
        if _sc(c).get("procMount") not in (None, "Default"):
            yield f"{where}.securityContext.procMount", "an unmasked /proc mount is not allowed"


@_pods
def _seccomp(spec, base, obj, ctx):
    holders = [(f"{base}.securityContext", _sc(spec))] + \
        [(f"{where}.securityContext", _sc(c)) for where, c in _containers(spec, base)]
    for where, sc in holders:
        profile = sc.get("seccompProfile")
        if isinstance(profile, dict) and profile.get("type") == "Unconfined":
            yield f"{where}.seccompProfile.type", "an Unconfined seccomp profile is not allowed"


@_pods
def _sysctls(spec, base, obj, ctx):
    for i, sysctl in enumerate(_sc(spec).get("sysctls") or []):
        name = sysctl.get("name") if isinstance(sysctl, dict) else sysctl
        if name not in SAFE_SYSCTLS:
            yield f"{base}.securityContext.sysctls[{i}].name", f"sysctl {name!r} is not one of the safe ones"


@_pods
def _host_process(spec, base, obj, ctx):
    holders = [(f"{base}.securityContext", _sc(spec))] + \
        [(f"{where}.securityContext", _sc(c)) for where, c in _containers(spec, base)]
    for where, sc in holders:
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            yield f"{where}.windowsOptions.hostProcess", "Windows host-process containers are not allowed"


# -- what PSS leaves open on a shared cluster -----------------------------------------

@_pods
def _service_account(spec, base, obj, ctx):
    for key in ("serviceAccountName", "serviceAccount"):
        if spec.get(key) not in (None, "", "default"):
            yield f"{base}.{key}", (f"pods run as the namespace's default service account; "
                                    f"{spec[key]!r} is not allowed")


@_pods
def _projected_tokens(spec, base, obj, ctx):
    for i, volume in enumerate(spec.get("volumes") or []):
        sources = ((volume or {}).get("projected") or {}).get("sources") if isinstance(volume, dict) else None
        for j, source in enumerate(sources or []):
            if isinstance(source, dict) and source.get("serviceAccountToken") is not None:
                yield f"{base}.volumes[{i}].projected.sources[{j}].serviceAccountToken", \
                    "projected service-account tokens are not allowed"


def _token_secret(obj, ctx):
    if obj.get("kind") != "Secret":
        return
    if obj.get("type") == "kubernetes.io/service-account-token":
        yield "type", "Secrets of type kubernetes.io/service-account-token mint API credentials and are not allowed"
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if "kubernetes.io/service-account.name" in annotations:
        yield "metadata.annotations[kubernetes.io/service-account.name]", \
            "a Secret bound to a service account is not allowed"


@_pods
def _node_name(spec, base, obj, ctx):
    if spec.get("nodeName"):
        yield f"{base}.nodeName", "pinning pods to a node by name bypasses the scheduler and is not allowed"


@_pods
def _tolerations(spec, base, obj, ctx):
    for i, toleration in enumerate(spec.get("tolerations") or []):
        if not isinstance(toleration, dict):
            continue
        if toleration.get("key") in CONTROL_PLANE_TAINTS:
            yield f"{base}.tolerations[{i}]", "tolerating the control plane's taint is not allowed"
        elif not toleration.get("key") and toleration.get("operator") == "Exists":
            yield f"{base}.tolerations[{i}]", "a toleration of every taint (operator Exists, no key) is not allowed"


def _external_ips(obj, ctx):
    if obj.get("kind") == "Service" and (obj.get("spec") or {}).get("externalIPs"):
        yield "spec.externalIPs", "externalIPs can capture another tenant's traffic and are not allowed"


def _service_type(obj, ctx):
    if obj.get("kind") != "Service":
        return
    kind = (obj.get("spec") or {}).get("type") or "ClusterIP"
    if not ctx.service_type_allowed(kind):
        where = "here" if ctx.envs is None else f"on {', '.join(sorted(ctx.envs))} clusters"
        yield "spec.type", f"Services of type {kind} are not allowed {where} (SERVICE_TYPES)"


def _ingress_annotations(obj, ctx):
    if obj.get("kind") != "Ingress":
        return
    for key in ((obj.get("metadata") or {}).get("annotations") or {}):
        if not ctx.annotation_allowed(key):
            yield f"metadata.annotations[{key}]", (f"the ingress annotation {key!r} is not allowed "
                                                   "(snippets never; others only from INGRESS_ANNOTATIONS)")


RULES: tuple[Rule, ...] = (
    Rule("host_namespaces", "baseline", ("Deployment",), _host_namespaces, "no hostNetwork, hostPID, hostIPC"),
    Rule("privileged", "baseline", ("Deployment",), _privileged, "no privileged containers"),
    Rule("capabilities", "baseline", ("Deployment",), _capabilities, "add only the baseline capabilities"),
    Rule("host_path", "baseline", ("Deployment",), _host_path, "no hostPath volumes"),
    Rule("host_ports", "baseline", ("Deployment",), _host_ports, "no hostPort"),
    Rule("apparmor", "baseline", ("Deployment",), _apparmor, "AppArmor runtime/default or localhost only"),
    Rule("selinux", "baseline", ("Deployment",), _selinux, "no custom SELinux user, role or type"),
    Rule("proc_mount", "baseline", ("Deployment",), _proc_mount, "default /proc mount"),
    Rule("seccomp", "baseline", ("Deployment",), _seccomp, "no Unconfined seccomp"),
    Rule("sysctls", "baseline", ("Deployment",), _sysctls, "safe sysctls only"),
    Rule("host_process", "baseline", ("Deployment",), _host_process, "no Windows host-process"),
    Rule("service_account", "platform", ("Deployment",), _service_account, "the default service account only"),
    Rule("service_account_token", "platform", ("Deployment",), _projected_tokens, "no projected SA tokens"),
    Rule("token_secret", "platform", ("Secret",), _token_secret, "no service-account-token Secrets"),
    Rule("node_name", "platform", ("Deployment",), _node_name, "no nodeName"),
    Rule("control_plane_toleration", "platform", ("Deployment",), _tolerations, "no control-plane tolerations"),
    Rule("external_ips", "platform", ("Service",), _external_ips, "no Service externalIPs"),
    Rule("service_type", "platform", ("Service",), _service_type, "LoadBalancer/NodePort per env (SERVICE_TYPES)"),
    Rule("ingress_annotation", "platform", ("Ingress",), _ingress_annotations, "annotations from the allowlist"),
)
RULE_NAMES = tuple(r.name for r in RULES) + ("kind", "namespace")


def object_ref(obj: dict) -> str:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    return f"{obj.get('kind', '?')}/{meta.get('name') or '?'}"


def check_kind(obj: dict, namespace: str, ref: str) -> None:
    """Kinds and namespaces first (before the object is trusted enough to walk)."""
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    if kind not in KINDS:
        raise PolicyRefused("kind", ref, "kind", f"kind {kind!r} is not allowed; templates may create "
                                                 f"{', '.join(KINDS)} in the application's namespace only "
                                                 "(cluster-scoped kinds never)")
    if api_version not in KINDS[kind]:
        raise PolicyRefused("kind", ref, "apiVersion", f"apiVersion {api_version!r} is not served for {kind}; "
                                                       f"use {' or '.join(KINDS[kind])}")
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    if meta.get("namespace") not in (None, "", namespace):
        raise PolicyRefused("namespace", ref, "metadata.namespace",
                            f"it is for namespace {meta['namespace']!r}; objects may only go into the "
                            f"application's namespace {namespace!r}")


def violations(objects: list[dict], ctx: Context) -> list[PolicyRefused]:
    out = []
    for obj in objects:
        for rule in RULES:
            if obj.get("kind") not in rule.kinds or (rule.level == "baseline" and ctx.level == "privileged"):
                continue
            out.extend(PolicyRefused(rule.name, object_ref(obj), path, sentence)
                       for path, sentence in rule.find(obj, ctx))
    return out


def check(objects: list[dict], ctx: Context | None = None) -> None:
    """Raise the first violation (``PolicyRefused``); all of them are in ``violations``."""
    found = violations(objects, ctx or Context())
    if found:
        raise found[0]
