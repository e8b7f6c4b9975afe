"""The request and answer shapes of the deploy routes (gateway/routes/deploys.py), for
validation and the OpenAPI document."""
from __future__ import annotations

from gateway.schemas import LABEL, PAGING, json_response, nullable, obj

TAGS = ["deploy"]
STR = {"type": "string"}
NSTR = {"type": ["string", "null"]}
INT = {"type": "integer"}
ANY_OBJ = {"type": "object"}
STATUS = {"type": "string", "enum": ["pending", "applying", "applied", "progressing", "succeeded",
                                     "failed", "superseded"]}
REPLICAS = obj(["desired", "updated", "ready", "available"], desired=INT, updated=INT, ready=INT, available=INT)
TARGET = obj(["cluster", "env", "status", "reason", "message", "replicas"], cluster=STR, env=STR,
             status=STATUS, reason=NSTR, message=NSTR, replicas=REPLICAS, image=NSTR)
RECORD = obj(["id", "action", "app", "status", "created_by", "created_at", "finished_at"],
             id=INT, action={"type": "string", "enum": ["deploy", "rollback", "delete"]}, app=STR,
             service=NSTR, version=NSTR, ingress=NSTR, status=STATUS, reason=NSTR, created_by=STR,
             created_at=STR, finished_at=NSTR, rollback_of={"type": ["integer", "null"]},
             targets={"type": "array", "items": TARGET})
LOG_LINE = obj(["seq", "time", "cluster", "level", "line"], seq=INT, time=STR, cluster=STR,
               level={"type": "string", "enum": ["info", "warning", "error"]}, line=STR)
NLABEL = nullable(LABEL)
# A template name, or nothing (null or "": the built-in default).
TEMPLATE_NAME = {"anyOf": [LABEL, {"type": "null"}, {"const": ""}]}
DESCRIPTION = nullable({"type": "string", "maxLength": 4000})
SERVICE = obj(["name"], name=LABEL, app=STR, description=STR, created_by=STR, created_at=STR,
              versions={"type": "array", "items": ANY_OBJ},
              routed={"type": "object", "additionalProperties": {"type": ["string", "null"]},
                      "description": "per cluster, the version that gets the service's traffic (null: "
                                     "routing stopped there); absent clusters were never routed"})
SERVICE_BODY = obj(["name"], name=LABEL, description=DESCRIPTION)
ENV_NAME = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}
ENV_VALUE = {"type": ["string", "number"], "maxLength": 32768}
# Sent as {"NAME": "value"} or [{"name", "value"}]; stored and answered as the list.
ENV_PAIR = obj(["name"], name=ENV_NAME, value=ENV_VALUE)
ENV_LIST = {"type": "array", "items": ENV_PAIR, "maxItems": 200}
ENV_IN = {"anyOf": [{"type": "object", "additionalProperties": ENV_VALUE, "maxProperties": 200,
                     "propertyNames": ENV_NAME}, ENV_LIST, {"type": "null"}]}
# What answers show of env: a viewer of the app gets each value as null (developers and up see them).
ENV_SHOWN = {"type": "array", "items": obj(["name"], name=ENV_NAME, value={"type": ["string", "number", "null"]})}
STRINGS = nullable({"type": "array", "items": {"type": "string", "maxLength": 4096}, "maxItems": 100})
SECRET_ENV_NAME = {**ENV_NAME, "maxLength": 253}
# Write-only (services/deploy/domain/secret_env.py): taken as NAME: value, answered as the names.
SECRET_ENV_IN = nullable({
    "type": "object", "maxProperties": 100, "propertyNames": SECRET_ENV_NAME,
    "additionalProperties": {"type": ["string", "null"], "maxLength": 65536},
    "description": "Environment variables whose values are write-only: sealed at rest, delivered to the "
                   "pods through a Kubernetes Secret MAE renders beside the Deployment (the built-in "
                   "template reads each key with env valueFrom secretKeyRef), never shown in answers, previews, records or logs. "
                   "Values are text of at most 64 KiB (512 KiB in all); a name may not also be in 'env'. "
                   "On PATCH the object is merged (JSON merge patch): a name with a value is set, a name "
                   "with null is removed, names not given are kept; 'secret_env': null removes them all."})
SECRET_ENV_OUT = {"type": "array", "items": SECRET_ENV_NAME,
                  "description": "The names of the version's secret_env, sorted; never a value."}
PROBE = nullable(obj(["path"], path={"type": "string", "maxLength": 1024},
                     period_seconds={"type": "integer", "minimum": 1, "maximum": 300},
                     timeout_seconds={"type": "integer", "minimum": 1, "maximum": 60},
                     failure_threshold={"type": "integer", "minimum": 1, "maximum": 120},
                     initial_delay_seconds={"type": "integer", "minimum": 0, "maximum": 3600}))
PROBES = {**obj([], readiness=PROBE, liveness=PROBE, startup=PROBE), "additionalProperties": False,
          "description": "HTTP GET probes on the container port. Defaults: period 10 s (readiness 5 s), timeout "
                         "1 s (at most the period), failure threshold 3, initial delay 0. health_path is "
                         "readiness's path in short (both given: the same path)."}
VERSION_BODY = dict(name=LABEL, image={"type": "string", "maxLength": 255},
                    port={"type": "integer", "minimum": 1, "maximum": 65535},
                    replicas=nullable({"type": "integer", "minimum": 0, "maximum": 50}), env=ENV_IN,
                    secret_env=SECRET_ENV_IN,
                    command=STRINGS, args=STRINGS, resources=nullable(ANY_OBJ),
                    health_path=nullable({"type": "string", "maxLength": 1024,
                                          "description": "the readiness probe's path, in short"}),
                    probes=nullable(PROBES),
                    template=TEMPLATE_NAME, values=nullable(ANY_OBJ), description=DESCRIPTION)
VERSION = obj(["name", "image", "port"], name=LABEL, image=STR, port=INT, replicas=INT, env=ENV_SHOWN,
              secret_env=SECRET_ENV_OUT,
              command={"type": "array", "items": STR}, args={"type": "array", "items": STR},
              resources=ANY_OBJ, health_path=STR, probes=ANY_OBJ, template=NLABEL, values=ANY_OBJ, description=STR,
              service=STR, app=STR, created_by=STR, created_at=STR, updated_at=NSTR, deleted_at=NSTR,
              clusters={"type": "array", "items": TARGET})
ROUTE = obj(["path", "service"], path=STR, service=LABEL, version=NLABEL, port={"type": ["integer", "null"]})
HOSTS = {"type": "object", "additionalProperties": False,
         "properties": {env: nullable({"type": "string", "maxLength": 253}) for env in ("test", "prod")},
         "description": "A host per environment: a cluster of that env serves it instead of 'host' (each "
                        "claimed like 'host'). A PATCH replaces the whole object; null or {} removes them."}
TLS_OUT = nullable(obj(["secret_name"], secret_name=STR, issuer=NSTR, cluster_issuer=NSTR))
INGRESS = obj(["name", "host", "routes"], name=LABEL, host=STR, hosts=HOSTS, tls=TLS_OUT,
              routes={"type": "array", "items": ROUTE}, template=NLABEL, values=ANY_OBJ,
              app=STR, description=STR, created_by=STR, created_at=STR,
              clusters={"type": "array", "items": obj(["name", "env"], name=STR, env=STR),
                        "description": "where the ingress was last applied (detail only)"})
ROUTE_BODY = obj(["service"], path=nullable({"type": "string", "maxLength": 1024}),
                 service=LABEL, version={**NLABEL, "description": "none: the service's routed version "
                                                                  "(its stable Service) gets the traffic"},
                 port=nullable({"type": "integer", "minimum": 1, "maximum": 65535}))
CERT_MANAGER = {"type": "string", "maxLength": 253}
TLS_BODY = {"anyOf": [obj(["secret_name"], secret_name=LABEL),
                      obj(["issuer"], issuer=CERT_MANAGER, secret_name=NLABEL),
                      obj(["cluster_issuer"], cluster_issuer=CERT_MANAGER, secret_name=NLABEL),
                      {"type": "object", "maxProperties": 0}, {"type": "null"}],
            "description": "An existing Secret, or cert-manager: an issuer or cluster issuer this installation "
                           "offers (CERT_MANAGER_ISSUERS / CERT_MANAGER_CLUSTER_ISSUERS), whose certificate goes "
                           "to secret_name (<ingress>-tls unless given)."}
INGRESS_FIELDS = dict(host={"type": "string", "maxLength": 253}, hosts=nullable(HOSTS), tls=TLS_BODY,
                      routes={"type": "array", "items": ROUTE_BODY, "minItems": 1, "maxItems": 50},
                      template=TEMPLATE_NAME, values=nullable(ANY_OBJ), description=DESCRIPTION)
INGRESS_BODY = obj(["name", "host", "routes"], name=LABEL, **INGRESS_FIELDS)
# A change is stored, not deployed: deploy the ingress again to bring it to the clusters.
INGRESS_PATCH = obj([], **INGRESS_FIELDS)
# What a template sees: services/deploy/domain/rendering.py says it in full.
TEMPLATE_VARIABLES = (
    "Jinja2 (sandboxed). A version template sees app, namespace, service, version, name, image, port, "
    "replicas, env ([{name, value}]), command, args, resources, health_path, probes, labels, selector, values, "
    "secret_env_name (the Secret MAE renders beside the Deployment for the version's secret_env, \"\" "
    "when it has none) and secret_env_keys (its names; never a value): when the version has secret_env "
    "the pods must read that Secret (envFrom secretRef, env valueFrom secretKeyRef or a secret volume). "
    "Probes: probes.readiness / probes.liveness / probes.startup, each null or {path, period_seconds, "
    "timeout_seconds, failure_threshold, initial_delay_seconds} (readiness's path is health_path). "
    "An ingress template sees app, namespace, name, env, host (that env's), tls ({secret_name, issuer, "
    "cluster_issuer} or null), routes ({path, service, version, port, backend}), labels, values.")
FIELD = obj(["name", "type"], name=STR, type=STR, default={}, description=STR)
FIELD_BODY = obj(["name"], name={"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]*$"},
                 type={"type": "string", "enum": ["string", "integer", "number", "boolean", "object", "list"]},
                 default={}, description={"type": "string", "maxLength": 500})
TEMPLATE = obj(["name", "kind", "fields"], name=STR, kind={"type": "string", "enum": ["version", "ingress"]},
               fields={"type": "array", "items": FIELD}, body=STR, builtin={"type": "boolean"}, app=NSTR,
               description=STR, created_by=STR, created_at=STR)
DEPLOY_BODY = {"oneOf": [obj(["clusters"], clusters={"type": "array", "items": LABEL, "minItems": 1}),
                         obj(["env"], env={"type": "string", "enum": ["test", "prod"]})]}
ACCEPTED = json_response(obj(["record_id"], record_id=INT, replayed={"type": "boolean"}), 202, "Accepted")
ACCEPTED[202]["headers"] = {"Idempotent-Replayed": {
    "description": "true when this is the stored answer to an earlier request with the same Idempotency-Key",
    "schema": {"type": "string", "enum": ["true"]}}}
# Requests that create a record take an optional Idempotency-Key (services/deploy/domain/request_keys.py):
# sent again with the same key, the first answer comes back (``replayed``) instead of a second record.
IDEMPOTENCY_KEY = [{"name": "Idempotency-Key", "in": "header", "required": False,
                    "description": "Any unique string (a UUID): a retry with the same key and body gets the "
                                   "first answer instead of a second record; kept 24 hours per caller.",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"}}]


RECORD_QUERY = PAGING + [{"name": n, "in": "query", "required": False,
                          "schema": {"anyOf": [LABEL, {"const": ""}]}} for n in ("service", "version")]
