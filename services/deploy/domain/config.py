"""What a version, an ingress and a service may say: checked before anything is stored.

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
_HOST = re.compile(r"^(\*\.)?([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_PATH = re.compile(r"^/[^\s]*\Z")
MAX_VALUES_BYTES = 16 * 1024

VERSION_FIELDS = {"name", "image", "port", "replicas", "env", "command", "args", "resources",
                  "health_path", "template", "values", "description"}
INGRESS_FIELDS = {"name", "host", "tls", "routes", "template", "values", "description"}


def _invalid(field: str, message: str, **extra) -> Invalid:
    return Invalid(message, {"field": field, **extra})


def _int(value, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(field, f"'{field}' must be a whole number from {low} to {high}.")
    if not low <= value <= high:
        raise _invalid(field, f"'{field}' must be from {low} to {high}.")
    return value


def _text(value, field: str, limit: int, required: bool = False) -> str:
    if value is None or value == "":
        if required:
            raise _invalid(field, f"'{field}' is required.")
        return ""
    if not isinstance(value, str):
        raise _invalid(field, f"'{field}' must be text.")
    if len(value) > limit:
        raise _invalid(field, f"'{field}' must be at most {limit} characters.")
    return value


def check_object(data) -> dict:
    if not isinstance(data, dict):
        raise Invalid("The body must be a JSON object.")
    return data


def check_unknown(data: dict, known: set[str]) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise _invalid(unknown[0], f"Unknown field(s): {', '.join(unknown)}.", fields=unknown)


def check_image(value) -> str:
    image = _text(value, "image", 255, required=True)
    if not _IMAGE.match(image):
        raise _invalid("image", "'image' must be an image reference like 'registry/name:tag' "
                                "(no spaces or quotes).")
    return image


def check_quantity(value, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _invalid(field, f"'{field}' must be a Kubernetes quantity such as '250m' or '512Mi'.")
    text = str(value)
    if not _QUANTITY.match(text) or text.count(".") > 1:
        raise _invalid(field, f"'{field}' must be a Kubernetes quantity such as '250m' or '512Mi', "
                              f"not {text[:40]!r}.")
    return text


def check_resources(value) -> dict:
    """``{"requests": {"cpu", "memory"}, "limits": {...}}``; a flat ``{"cpu", "memory"}`` means requests."""
    if value in (None, {}):
        return {}
    if not isinstance(value, dict):
        raise _invalid("resources", "'resources' must be an object with 'requests' and/or 'limits'.")
    if set(value) & {"cpu", "memory"} and not set(value) & {"requests", "limits"}:
        value = {"requests": value}
    out = {}
    for part, amounts in value.items():
        field = f"resources.{part}"
        if part not in ("requests", "limits"):
            raise _invalid(field, f"'{field}' is not known; use 'requests' and 'limits'.")
        if not isinstance(amounts, dict):
            raise _invalid(field, f"'{field}' must be an object with 'cpu' and/or 'memory'.")
        checked = {}
        for name, amount in amounts.items():
            if name not in ("cpu", "memory"):
                raise _invalid(f"{field}.{name}", f"'{field}.{name}' is not known; use 'cpu' and 'memory'.")
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
        raise _invalid("env", "'env' must be an object of NAME: value pairs.")
    out, seen = [], set()
    for item in items:
        if not isinstance(item, dict) or set(item) - {"name", "value"}:
            raise _invalid("env", "Each of 'env' must be {\"name\", \"value\"}.")
        name, val = item.get("name"), item.get("value", "")
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            raise _invalid(f"env.{name}", f"{name!r} is not a valid environment variable name "
                                          "(letters, digits and '_', not starting with a digit).")
        if name in seen:
            raise _invalid(f"env.{name}", f"Environment variable {name!r} is given twice.")
        seen.add(name)
        if isinstance(val, bool) or not isinstance(val, (str, int, float)):
            raise _invalid(f"env.{name}", f"The value of {name!r} must be text.")
        if len(str(val)) > 32768:
            raise _invalid(f"env.{name}", f"The value of {name!r} is longer than 32768 characters.")
        out.append({"name": name, "value": str(val)})
    if len(out) > 200:
        raise _invalid("env", "'env' may hold at most 200 variables.")
    return out


def check_strings(value, field: str) -> list[str]:
    if value in (None, []):
        return []
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise _invalid(field, f"'{field}' must be a list of strings.")
    if len(value) > 100 or any(len(x) > 4096 for x in value):
        raise _invalid(field, f"'{field}' is too long (at most 100 items of 4096 characters).")
    return list(value)


def check_health_path(value) -> str:
    path = _text(value, "health_path", 1024)
    if path and not _PATH.match(path):
        raise _invalid("health_path", "'health_path' must be a URL path starting with '/' (no spaces).")
    return path


def check_values(value) -> dict:
    if value in (None, {}):
        return {}
    if not isinstance(value, dict):
        raise _invalid("values", "'values' must be an object.")
    if len(json.dumps(value)) > MAX_VALUES_BYTES:
        raise _invalid("values", f"'values' must be at most {MAX_VALUES_BYTES} bytes as JSON.")
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
        "port": lambda v: _int(v, "port", 1, 65535),
        "replicas": lambda v: 1 if v is None else _int(v, "replicas", 0, MAX_REPLICAS),
        "env": check_env,
        "command": lambda v: check_strings(v, "command"),
        "args": lambda v: check_strings(v, "args"),
        "resources": check_resources,
        "health_path": check_health_path,
        "template": check_template_name,
        "values": check_values,
        "description": lambda v: _text(v, "description", 4000),
    }
    for field, check in checks.items():
        if field in data or not partial:
            if field in ("image", "port") and not partial and data.get(field) is None:
                raise _invalid(field, f"'{field}' is required.")
            out[field] = check(data.get(field))
    return out


def check_ingress(data) -> dict:
    data = check_object(data)
    check_unknown(data, INGRESS_FIELDS)
    name = check_label(data.get("name"), "name")
    host = _text(data.get("host"), "host", 253, required=True).lower()
    if not _HOST.match(host):
        raise _invalid("host", "'host' must be a DNS name such as 'shop.example.com'.")
    tls = data.get("tls")
    if tls not in (None, {}):
        if not isinstance(tls, dict) or set(tls) - {"secret_name"}:
            raise _invalid("tls", "'tls' must be {\"secret_name\": ...}.")
        tls = {"secret_name": check_label(tls.get("secret_name"), "tls.secret_name")}
    else:
        tls = None
    routes = data.get("routes")
    if not isinstance(routes, list) or not routes:
        raise _invalid("routes", "'routes' must be a non-empty list of {path, service, version, port?}.")
    if len(routes) > 50:
        raise _invalid("routes", "'routes' may hold at most 50 routes.")
    checked_routes, paths = [], set()
    for i, route in enumerate(routes):
        field = f"routes[{i}]"
        if not isinstance(route, dict) or set(route) - {"path", "service", "version", "port"}:
            raise _invalid(field, f"'{field}' must be {{path, service, version, port?}}.")
        path = _text(route.get("path") or "/", f"{field}.path", 1024)
        if not _PATH.match(path):
            raise _invalid(f"{field}.path", f"'{field}.path' must start with '/' (no spaces).")
        if path in paths:
            raise _invalid(f"{field}.path", f"The path {path!r} is routed twice.")
        paths.add(path)
        checked_routes.append({
            "path": path,
            "service": check_label(route.get("service"), f"{field}.service"),
            "version": check_label(route.get("version"), f"{field}.version"),
            "port": None if route.get("port") is None else _int(route.get("port"), f"{field}.port", 1, 65535),
        })
    return {"name": name, "host": host, "tls": tls, "routes": checked_routes,
            "template": check_template_name(data.get("template")),
            "values": check_values(data.get("values")),
            "description": _text(data.get("description"), "description", 4000)}


def check_service(data) -> dict:
    data = check_object(data)
    check_unknown(data, {"name", "description"})
    return {"name": check_label(data.get("name"), "name"),
            "description": _text(data.get("description"), "description", 4000)}
