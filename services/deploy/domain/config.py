"""What a version and a service may say (an ingress: ``ingress_config``): checked before anything is stored.

Every refusal is ``Invalid`` (422) whose ``details.field`` names the field, with
a sentence a person can act on. Checked values come back normalised (defaults
filled, env as a list of ``{"name", "value"}``) so templates see one shape.
"""
from __future__ import annotations

import json
import re

from shared.errors import Invalid
from shared.names import check_label

MAX_REPLICAS = 50
# Kubernetes resource.Quantity: a number with an optional binary/decimal suffix.
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?\Z")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
# registry/path:tag@digest — loose on purpose (registries differ), strict on what breaks YAML or shells.
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/:@]*\Z")
HOST = re.compile(r"^(\*\.)?([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
URL_PATH = re.compile(r"^/[^\s]*\Z")
MAX_VALUES_BYTES = 16 * 1024

VERSION_FIELDS = {"name", "image", "port", "replicas", "env", "command", "args", "resources",
                  "health_path", "probes", "template", "values", "description"}
# Probes: kind → Kubernetes field; timing → (Kubernetes field, lowest, highest). The
# defaults are Kubernetes' own, but a readiness probe is asked every 5 s (as health_path
# always was).
PROBES = {"readiness": "readinessProbe", "liveness": "livenessProbe", "startup": "startupProbe"}
PROBE_TIMINGS = {"period_seconds": ("periodSeconds", 1, 300), "timeout_seconds": ("timeoutSeconds", 1, 60),
                 "failure_threshold": ("failureThreshold", 1, 120),
                 "initial_delay_seconds": ("initialDelaySeconds", 0, 3600)}
PROBE_DEFAULTS = {"period_seconds": 10, "timeout_seconds": 1, "failure_threshold": 3, "initial_delay_seconds": 0}
READINESS_PERIOD = 5


def invalid(field: str, message: str, **extra) -> Invalid:
    return Invalid(message, {"field": field, **extra})


def whole_number(value, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(field, f"'{field}' must be a whole number from {low} to {high}.")
    if not low <= value <= high:
        raise invalid(field, f"'{field}' must be from {low} to {high}.")
    return value


def text_field(value, field: str, limit: int, required: bool = False) -> str:
    if value is None or value == "":
        if required:
            raise invalid(field, f"'{field}' is required.")
        return ""
    if not isinstance(value, str):
        raise invalid(field, f"'{field}' must be text.")
    if len(value) > limit:
        raise invalid(field, f"'{field}' must be at most {limit} characters.")
    return value


def check_object(data) -> dict:
    if not isinstance(data, dict):
        raise Invalid("The body must be a JSON object.")
    return data


def check_unknown(data: dict, known: set[str]) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise invalid(unknown[0], f"Unknown field(s): {', '.join(unknown)}.", fields=unknown)


def check_image(value) -> str:
    image = text_field(value, "image", 255, required=True)
    if not _IMAGE.match(image):
        raise invalid("image", "'image' must be an image reference like 'registry/name:tag' "
                                "(no spaces or quotes).")
    return image


def check_quantity(value, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise invalid(field, f"'{field}' must be a Kubernetes quantity such as '250m' or '512Mi'.")
    text = str(value)
    if not _QUANTITY.match(text) or text.count(".") > 1:
        raise invalid(field, f"'{field}' must be a Kubernetes quantity such as '250m' or '512Mi', "
                              f"not {text[:40]!r}.")
    return text


def check_resources(value) -> dict:
    """``{"requests": {"cpu", "memory"}, "limits": {...}}``; a flat ``{"cpu", "memory"}`` means requests."""
    if value in (None, {}):
        return {}
    if not isinstance(value, dict):
        raise invalid("resources", "'resources' must be an object with 'requests' and/or 'limits'.")
    if set(value) & {"cpu", "memory"} and not set(value) & {"requests", "limits"}:
        value = {"requests": value}
    out = {}
    for part, amounts in value.items():
        field = f"resources.{part}"
        if part not in ("requests", "limits"):
            raise invalid(field, f"'{field}' is not known; use 'requests' and 'limits'.")
        if not isinstance(amounts, dict):
            raise invalid(field, f"'{field}' must be an object with 'cpu' and/or 'memory'.")
        checked = {}
        for name, amount in amounts.items():
            if name not in ("cpu", "memory"):
                raise invalid(f"{field}.{name}", f"'{field}.{name}' is not known; use 'cpu' and 'memory'.")
            checked[name] = check_quantity(amount, f"{field}.{name}")
        if checked:
            out[part] = checked
    return out


def check_env(value) -> list[dict]:
    """``{"NAME": "value"}`` or ``[{"name", "value"}]`` → a list, in a stable order."""
    if value in (None, {}, []):
        return []
    if isinstance(value, dict):
        items = [{"name": k, "value": v} for k, v in value.items()]
    elif isinstance(value, list):
        items = value
    else:
        raise invalid("env", "'env' must be an object of NAME: value pairs.")
    out, seen = [], set()
    for item in items:
        if not isinstance(item, dict) or set(item) - {"name", "value"}:
            raise invalid("env", "Each of 'env' must be {\"name\", \"value\"}.")
        name, val = item.get("name"), item.get("value", "")
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            raise invalid(f"env.{name}", f"{name!r} is not a valid environment variable name "
                                          "(letters, digits and '_', not starting with a digit).")
        if name in seen:
            raise invalid(f"env.{name}", f"Environment variable {name!r} is given twice.")
        seen.add(name)
        if isinstance(val, bool) or not isinstance(val, (str, int, float)):
            raise invalid(f"env.{name}", f"The value of {name!r} must be text.")
        if len(str(val)) > 32768:
            raise invalid(f"env.{name}", f"The value of {name!r} is longer than 32768 characters.")
        out.append({"name": name, "value": str(val)})
    if len(out) > 200:
        raise invalid("env", "'env' may hold at most 200 variables.")
    return out


def check_strings(value, field: str) -> list[str]:
    if value in (None, []):
        return []
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise invalid(field, f"'{field}' must be a list of strings.")
    if len(value) > 100 or any(len(x) > 4096 for x in value):
        raise invalid(field, f"'{field}' is too long (at most 100 items of 4096 characters).")
    return list(value)


def check_health_path(value) -> str:
    path = text_field(value, "health_path", 1024)
    if path and not URL_PATH.match(path):
        raise invalid("health_path", "'health_path' must be a URL path starting with '/' (no spaces).")
    return path


def check_probe(kind: str, value) -> dict:
    """One probe: ``{"path", "period_seconds"?, "timeout_seconds"?, "failure_threshold"?,
    "initial_delay_seconds"?}`` → every timing filled in (an HTTP GET on the container port)."""
    field = f"probes.{kind}"
    if not isinstance(value, dict):
        raise invalid(field, f"'{field}' must be an object with 'path' and optional timings "
                              f"({', '.join(PROBE_TIMINGS)}).")
    check_unknown(value, {"path", *PROBE_TIMINGS})
    path = text_field(value.get("path"), f"{field}.path", 1024, required=True)
    if not URL_PATH.match(path):
        raise invalid(f"{field}.path", f"'{field}.path' must be a URL path starting with '/' (no spaces).")
    out = {"path": path}
    for timing, (_, low, high) in PROBE_TIMINGS.items():
        given = value.get(timing)
        default = READINESS_PERIOD if (kind, timing) == ("readiness", "period_seconds") else PROBE_DEFAULTS[timing]
        out[timing] = default if given is None else whole_number(given, f"{field}.{timing}", low, high)
    if out["timeout_seconds"] > out["period_seconds"]:
        raise invalid(f"{field}.timeout_seconds", f"'{field}.timeout_seconds' must not be longer than its "
                                                   f"period_seconds ({out['period_seconds']}).")
    return out


def keyed(value, field: str, known, shape: str) -> dict:
    """``value``: an object whose keys are among ``known`` (null or {}: an empty one);
    ``shape`` says what it must be."""
    if value in (None, {}):
        return {}
    if not isinstance(value, dict):
        raise invalid(field, shape)
    unknown = sorted(set(value) - set(known))
    if unknown:
        raise invalid(f"{field}.{unknown[0]}", f"'{field}.{unknown[0]}' is not known; use "
                                               f"{' or '.join(map(repr, known))}.")
    return value


def check_fields(data: dict, checks: dict, partial: bool, out: dict) -> dict:
    """``out`` with each field of ``checks`` checked (``partial``: only those given)."""
    for field, check in checks.items():
        if field in data or not partial:
            out[field] = check(data.get(field))
    return out


def check_probes(value) -> dict:
    """``{"readiness"?, "liveness"?, "startup"?}``, each ``check_probe``; null or {} for none."""
    value = keyed(value, "probes", PROBES, "'probes' must be an object with 'readiness', 'liveness' and/or "
                                           "'startup'.")
    return {kind: check_probe(kind, probe) for kind, probe in value.items() if probe is not None}


def _probes_with_health_path(out: dict, data: dict) -> None:
    """``health_path`` is the readiness probe's path in short: given both, they must agree;
    given one, the other follows (``merge_version`` does it for a PATCH)."""
    if "probes" not in out or "health_path" not in out:
        return
    readiness = out["probes"].get("readiness")
    if "health_path" in data and data.get("health_path") and "probes" in data and readiness \
            and readiness["path"] != out["health_path"]:
        raise invalid("health_path", "'health_path' is the readiness probe's path: give one of them, or the "
                                      f"same path in both (not {out['health_path']!r} and {readiness['path']!r}).")
    if readiness:
        out["health_path"] = readiness["path"]
    elif out["health_path"]:
        out["probes"] = {**out["probes"], "readiness": check_probe("readiness", {"path": out["health_path"]})}


def merge_version(config: dict, changes: dict) -> dict:
    """A version's config after a PATCH of ``changes`` (``check_version(partial=True)``):
    a new ``health_path`` alone moves the readiness probe (keeping its timings) or, empty,
    removes it; new ``probes`` alone set ``health_path`` to the readiness path."""
    merged = {**config, **changes}
    probes = dict(merged.get("probes") or {})
    if "health_path" in changes and "probes" not in changes:
        if changes["health_path"]:
            timings = probes.get("readiness") or check_probe("readiness", {"path": changes["health_path"]})
            probes["readiness"] = {**timings, "path": changes["health_path"]}
        else:
            probes.pop("readiness", None)
        merged["probes"] = probes
    elif "probes" in changes and "health_path" not in changes:
        merged["health_path"] = (probes.get("readiness") or {}).get("path", "")
    return merged


def check_values(value) -> dict:
    if value in (None, {}):
        return {}
    if not isinstance(value, dict):
        raise invalid("values", "'values' must be an object.")
    if len(json.dumps(value)) > MAX_VALUES_BYTES:
        raise invalid("values", f"'values' must be at most {MAX_VALUES_BYTES} bytes as JSON.")
    return value


def check_template_name(value) -> str | None:
    if value in (None, ""):
        return None
    return check_label(value, "template")


def check_version(data, partial: bool = False) -> dict:
    """A version's config; ``partial`` for PATCH (only the given fields)."""
    data = check_object(data)
    check_unknown(data, VERSION_FIELDS - ({"name"} if partial else set()))
    out: dict = {}
    if not partial:
        out["name"] = check_label(data.get("name"), "name")
    checks = {
        "image": check_image,
        "port": lambda v: whole_number(v, "port", 1, 65535),
        "replicas": lambda v: 1 if v is None else whole_number(v, "replicas", 0, MAX_REPLICAS),
        "env": check_env,
        "command": lambda v: check_strings(v, "command"),
        "args": lambda v: check_strings(v, "args"),
        "resources": check_resources,
        "health_path": check_health_path,
        "probes": check_probes,
        "template": check_template_name,
        "values": check_values,
        "description": lambda v: text_field(v, "description", 4000),
    }
    for field in ("image", "port"):
        if not partial and data.get(field) is None:
            raise invalid(field, f"'{field}' is required.")
    _probes_with_health_path(check_fields(data, checks, partial, out), data)
    return out


def check_service(data) -> dict:
    data = check_object(data)
    check_unknown(data, {"name", "description"})
    return {"name": check_label(data.get("name"), "name"),
            "description": text_field(data.get("description"), "description", 4000)}
