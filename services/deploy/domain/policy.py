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
``*`` allows a prefix; nothing containing ``snippet`` is ever allowed) and
``CERT_MANAGER_ISSUERS`` / ``CERT_MANAGER_CLUSTER_ISSUERS`` (when set, cert-manager's
issuer annotations are allowed with exactly those names).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from services.deploy.domain import policy_pods as pods
from services.deploy.domain.policy_pods import Finding
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

CONTROL_PLANE_TAINTS = pods.CONTROL_PLANE_TAINTS
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

# cert-manager's annotation → the config setting naming the issuers it may name
CERT_MANAGER_SETTINGS = {"cert-manager.io/issuer": "CERT_MANAGER_ISSUERS",
                         "cert-manager.io/cluster-issuer": "CERT_MANAGER_CLUSTER_ISSUERS"}


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
    # cert-manager annotation → the issuer names config offers (CERT_MANAGER_ISSUERS /
    # CERT_MANAGER_CLUSTER_ISSUERS): with names configured, that annotation is allowed with
    # exactly those values (the ones MAE adds for an ingress's ``tls``), whatever the list says.
    cert_issuers: dict = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: dict, level: str | None = None, envs: Iterable[str] | None = None) -> "Context":
        types = config.get("SERVICE_TYPES") or {}
        allowed = config.get("INGRESS_ANNOTATIONS")
        return cls(level=level if level in LEVELS else "baseline",
                   envs=frozenset(envs) if envs is not None else None,
                   service_types={str(k): tuple(v or ()) for k, v in types.items()} if isinstance(types, dict)
                   else {},
                   ingress_annotations=tuple(allowed) if isinstance(allowed, list) else DEFAULT_INGRESS_ANNOTATIONS,
                   cert_issuers={key: tuple(str(n) for n in config.get(setting) or () if n)
                                 for key, setting in CERT_MANAGER_SETTINGS.items()
                                 if isinstance(config.get(setting), list) and config.get(setting)})

    def issuers(self, key: str) -> tuple:
        """The cert-manager issuer names offered for annotation ``key`` (none: empty)."""
        return self.cert_issuers.get(key, ())

    def service_type_allowed(self, kind: str) -> bool:
        if kind in DEFAULT_SERVICE_TYPES:
            return True
        envs = self.envs if self.envs is not None else set(self.service_types)
        verdicts = [kind in self.service_types.get(env, DEFAULT_SERVICE_TYPES) for env in envs]
        if self.envs is None:
            return any(verdicts)
        return bool(verdicts) and all(verdicts)

    def annotation_allowed(self, key: str, value=None) -> bool:
        if "snippet" in key.lower():
            return False
        if key in self.cert_issuers:
            return value in self.cert_issuers[key]
        return any(key == a or (a.endswith("*") and key.startswith(a[:-1])) for a in self.ingress_annotations)



@dataclass(frozen=True)
class Rule:
    name: str
    level: str                       # "baseline" (PSS; waived for privileged apps) | "platform"
    kinds: tuple[str, ...]
    find: Callable[[dict, Context], Finding]
    why: str                         # one line for the docs and the rule listing


# -- what PSS leaves open on a shared cluster: other objects ---------------------------

def _token_secret(obj, ctx):
    if obj.get("kind") != "Secret":
        return
    if obj.get("type") == "kubernetes.io/service-account-token":
        yield "type", "Secrets of type kubernetes.io/service-account-token mint API credentials and are not allowed"
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if "kubernetes.io/service-account.name" in annotations:
        yield "metadata.annotations[kubernetes.io/service-account.name]", \
            "a Secret bound to a service account is not allowed"


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
    for key, value in ((obj.get("metadata") or {}).get("annotations") or {}).items():
        if not ctx.annotation_allowed(key, value):
            yield f"metadata.annotations[{key}]", (f"the ingress annotation {key!r} is not allowed "
                                                   "(snippets never; others only from INGRESS_ANNOTATIONS)")


RULES: tuple[Rule, ...] = (
    Rule("host_namespaces", "baseline", ("Deployment",), pods.host_namespaces, "no hostNetwork, hostPID, hostIPC"),
    Rule("privileged", "baseline", ("Deployment",), pods.privileged, "no privileged containers"),
    Rule("capabilities", "baseline", ("Deployment",), pods.capabilities, "add only the baseline capabilities"),
    Rule("host_path", "baseline", ("Deployment",), pods.host_path, "no hostPath volumes"),
    Rule("host_ports", "baseline", ("Deployment",), pods.host_ports, "no hostPort"),
    Rule("apparmor", "baseline", ("Deployment",), pods.apparmor, "AppArmor runtime/default or localhost only"),
    Rule("selinux", "baseline", ("Deployment",), pods.selinux, "no custom SELinux user, role or type"),
    Rule("proc_mount", "baseline", ("Deployment",), pods.proc_mount, "default /proc mount"),
    Rule("seccomp", "baseline", ("Deployment",), pods.seccomp, "no Unconfined seccomp"),
    Rule("sysctls", "baseline", ("Deployment",), pods.sysctls, "safe sysctls only"),
    Rule("host_process", "baseline", ("Deployment",), pods.host_process, "no Windows host-process"),
    Rule("service_account", "platform", ("Deployment",), pods.service_account, "the default service account only"),
    Rule("service_account_token", "platform", ("Deployment",), pods.projected_tokens, "no projected SA tokens"),
    Rule("token_secret", "platform", ("Secret",), _token_secret, "no service-account-token Secrets"),
    Rule("node_name", "platform", ("Deployment",), pods.node_name, "no nodeName"),
    Rule("control_plane_toleration", "platform", ("Deployment",), pods.tolerations, "no control-plane tolerations"),
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
