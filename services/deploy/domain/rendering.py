"""A version or an ingress + its template → checked Kubernetes objects.

What a template sees (all plain data):

* version: ``app``, ``namespace``, ``service``, ``version``, ``name`` (the
  Deployment/Service name), ``image``, ``port``, ``replicas``, ``env`` (list of
  ``{name, value}``), ``command``, ``args``, ``resources``, ``health_path``, ``probes``
  (``{readiness, liveness, startup}``, each null or ``{path, period_seconds,
  timeout_seconds, failure_threshold, initial_delay_seconds}``; readiness's path is
  ``health_path``),
  ``labels`` (MAE's), ``selector`` (pod labels the Deployment selects by), ``values``,
  ``secret_env_name`` (the Secret MAE renders beside the Deployment for the version's
  ``secret_env``, or ``""`` when it has none) and ``secret_env_keys`` (its names, sorted;
  never a value). When the version has secret_env the pods must read that Secret
  (``env[].valueFrom.secretKeyRef`` per key as the built-in template does,
  ``envFrom: [{secretRef: {name: ...}}]`` or a ``secret`` volume), or the version is
  refused; MAE adds the Secret itself and a checksum annotation on the pod template
  (``domain/secret_env.py``);
* ingress: ``app``, ``namespace``, ``name``, ``env`` (of the clusters it renders for, ""
  when not known), ``host`` (that env's from ``hosts``, else ``host``), ``tls``
  (``{secret_name, issuer, cluster_issuer}`` — the last two cert-manager's names or null —
  or null), ``routes`` (``{path, service, version, port, backend}``: ``backend`` is the
  version's Service, or the service's stable Service when the route names no version),
  ``labels``, ``values``.
"""
from __future__ import annotations

from services.deploy.domain import config as checks
from services.deploy.domain import manifests, names, policy, secret_env, templates
from services.deploy.domain.templates import TemplateRefused
from shared.errors import Invalid, PolicyViolation

SAMPLE_VERSION = {"image": "registry.example.com/sample:1.0", "port": 8080, "replicas": 1,
                  "env": [{"name": "SAMPLE", "value": "1"}], "command": [], "args": [],
                  "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                  "health_path": "/healthz",
                  "probes": {kind: {"path": "/healthz", "period_seconds": 10, "timeout_seconds": 1,
                                    "failure_threshold": 3, "initial_delay_seconds": 0}
                             for kind in ("readiness", "liveness", "startup")}}


def version_context(app: str, service: str, version: str, config: dict, values: dict,
                    secret: dict | None = None) -> dict:
    return {
        "app": app, "namespace": app, "service": service, "version": version,
        "name": names.object_name(service, version),
        "image": config["image"], "port": config["port"], "replicas": config.get("replicas", 1),
        "env": config.get("env") or [], "command": config.get("command") or [],
        "args": config.get("args") or [], "resources": config.get("resources") or {},
        "health_path": config.get("health_path") or "",
        "probes": probes_of(config),
        "labels": names.version_labels(app, service, version),
        "selector": names.selector(app, service, version),
        "values": values,
        "secret_env_name": secret["name"] if secret else "",
        "secret_env_keys": list(secret["keys"]) if secret else [],
    }


def probes_of(config: dict) -> dict:
    """The version's probes as templates see them (a version saved before probes existed
    has its ``health_path`` as the readiness probe, asked every 5 s)."""
    probes = dict(config.get("probes") or {})
    if "readiness" not in probes and config.get("health_path"):
        probes["readiness"] = checks.check_probe("readiness", {"path": config["health_path"]})
    return {kind: probes.get(kind) for kind in checks.PROBES}


def host_for(ingress: dict, env: str | None) -> str:
    """The host the clusters of ``env`` serve: ``hosts[env]``, else ``host``."""
    return (ingress.get("hosts") or {}).get(env or "") or ingress["host"]


def ingress_context(app: str, ingress: dict, values: dict, service_port: int = 80, env: str | None = None) -> dict:
    routes = [{**r, "version": r.get("version"), "port": r.get("port") or service_port,
               "backend": names.object_name(r["service"], r["version"]) if r.get("version")
               else names.routed_name(r["service"])} for r in ingress["routes"]]
    tls = ingress.get("tls")
    return {"app": app, "namespace": app, "name": ingress["name"], "env": env or "", "host": host_for(ingress, env),
            "tls": {"issuer": None, "cluster_issuer": None, **tls} if tls else None, "routes": routes,
            "labels": names.ingress_labels(app, ingress["name"]), "values": values}


def render_version(template: dict, app: str, service: str, version: str, config: dict,
                   ctx: policy.Context | None = None, secret: dict | None = None) -> list[dict]:
    """``template`` is ``{"body", "fields"}``; ``secret`` what ``secret_env.shape`` says of the
    version's secret_env (names and a checksum, never values). Raises ``TemplateRefused``
    (``PolicyRefused`` when the workload policy refuses an object, under ``ctx``: baseline,
    any env by default) or ``Invalid`` (values)."""
    values = templates.resolve_values(template["fields"], config.get("values"))
    text = templates.render(template["body"], version_context(app, service, version, config, values, secret))
    parsed = manifests.parse(text)
    if secret:  # MAE's own Secret, checked like the rest (a template's object of its name is refused)
        parsed.append(secret_env.manifest(app, secret))
    objects = manifests.check(parsed, app, names.version_labels(app, service, version))
    manifests.check_version_objects(objects, names.object_name(service, version))
    if secret:
        secret_env.wire(objects, secret)
    policy.check(objects, ctx)
    return manifests.ordered(objects)


def render_ingress(template: dict, app: str, ingress: dict, ctx: policy.Context | None = None,
                   env: str | None = None) -> list[dict]:
    """For the clusters of ``env`` (their host); each route's ``port`` filled in already
    (``ingresses.with_ports``) or 80."""
    values = templates.resolve_values(template["fields"], ingress.get("values"))
    text = templates.render(template["body"], ingress_context(app, ingress, values, env=env))
    ingress = {**ingress, "host": host_for(ingress, env)}
    objects = manifests.check(manifests.parse(text), app, names.ingress_labels(app, ingress["name"]))
    if not any(o["kind"] == "Ingress" for o in objects):
        raise TemplateRefused("an ingress template must render an Ingress")
    for obj in objects:  # the host is the app's (claimed when the ingress was made): no other
        if obj["kind"] == "Ingress":
            spec = obj.get("spec") or {}
            hosts = [r.get("host") for r in spec.get("rules") or [] if isinstance(r, dict)] + \
                [h for t in spec.get("tls") or [] if isinstance(t, dict) for h in t.get("hosts") or []]
            others = [h for h in hosts if h != ingress["host"]]  # None: a rule for every host
            if spec.get("defaultBackend") is not None:
                raise TemplateRefused(f"Ingress {obj['metadata']['name']}: spec.defaultBackend would serve "
                                      "hosts that are not the app's; route paths of the ingress's host instead")
            if others or not hosts:
                other = others[0] if others else None
                raise TemplateRefused(f"Ingress {obj['metadata']['name']} must serve only the ingress's host "
                                      f"{ingress['host']!r} (it renders {other!r})")
    policy.check(objects, ctx)
    return manifests.ordered(objects)


def check_with_samples(kind: str, body: str, fields: list[dict], app: str,
                       ctx: policy.Context | None = None, values: dict | None = None) -> list[dict]:
    """Refuse a template at save time unless it renders allowed objects from sample values
    (``values``: the fields' values to render with, their defaults when not given — a preview's)."""
    template, values = {"body": body, "fields": fields}, dict(values or {})
    templates.compile_template(body)  # the static checks first, with their reasons
    templates.check_names(body, set(version_context("a", "s", "v", SAMPLE_VERSION, {})) if kind == "version"
                          else set(ingress_context("a", {"name": "i", "host": "h", "routes": []}, {})))
    if kind == "version":
        return render_version(template, app, "sample", "v1", {**SAMPLE_VERSION, "values": values}, ctx)
    sample = {"name": "sample", "host": "sample.example.com", "tls": {"secret_name": "sample-tls"},
              "routes": [{"path": "/", "service": "sample", "version": "v1", "port": 80}], "values": values}
    return render_ingress(template, app, sample, ctx)


def refusal(exc: TemplateRefused, message: str, details: dict) -> Invalid:
    """The API's error for a refused render: 422 ``policy_violation`` with ``{rule, object, path}``
    when the policy refused it, else 422 ``invalid``."""
    if isinstance(exc, policy.PolicyRefused):
        return PolicyViolation(f"The workload policy refuses {exc.object}: {exc.sentence} "
                               f"(rule '{exc.rule}', at {exc.path}).", {**details, **exc.details})
    return Invalid(f"{message} {exc}.", details)


__all__ = ["TemplateRefused", "render_version", "render_ingress", "check_with_samples"]
