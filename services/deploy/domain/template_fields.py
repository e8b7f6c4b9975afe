"""A template's fields: what the deploy form asks for (name, type, default, description),
and the values a version or ingress gives them."""
from __future__ import annotations

from shared.errors import Invalid

FIELD_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool,
               "object": dict, "list": list}


def check_fields(fields) -> list[dict]:
    if fields in (None, []):
        return []
    if not isinstance(fields, list) or len(fields) > 50:
        raise Invalid("'fields' must be a list of at most 50 {name, type, default?, description?}.",
                      {"field": "fields"})
    out, seen = [], set()
    for i, field in enumerate(fields):
        where = f"fields[{i}]"
        if not isinstance(field, dict) or set(field) - {"name", "type", "default", "description"}:
            raise Invalid(f"'{where}' must be {{name, type, default?, description?}}.", {"field": where})
        name = field.get("name")
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
            raise Invalid(f"'{where}.name' must be an identifier not starting with '_'.",
                          {"field": f"{where}.name"})
        if name in seen:
            raise Invalid(f"The field {name!r} is declared twice.", {"field": f"{where}.name"})
        seen.add(name)
        kind = field.get("type", "string")
        if kind not in FIELD_TYPES:
            raise Invalid(f"'{where}.type' must be one of {', '.join(FIELD_TYPES)}.",
                          {"field": f"{where}.type"})
        default = field.get("default", sample_value(kind))
        if not _is_type(default, kind):
            raise Invalid(f"The default of {name!r} is not of type {kind}.", {"field": f"{where}.default"})
        description = field.get("description", "")
        if not isinstance(description, str) or len(description) > 500:
            raise Invalid(f"'{where}.description' must be text of at most 500 characters.",
                          {"field": f"{where}.description"})
        out.append({"name": name, "type": kind, "default": default, "description": description})
    return out


def _is_type(value, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, FIELD_TYPES[kind])


def sample_value(kind: str):
    return {"string": "sample", "integer": 1, "number": 1, "boolean": True,
            "object": {}, "list": []}[kind]


def resolve_values(fields: list[dict], values: dict | None) -> dict:
    """The template's ``values``: each field's given value or its default, type-checked."""
    values = dict(values or {})
    out = {}
    for field in fields:
        name = field["name"]
        value = values.pop(name, field["default"])
        if not _is_type(value, field["type"]):
            raise Invalid(f"'values.{name}' must be of type {field['type']}.", {"field": f"values.{name}"})
        out[name] = value
    out.update(values)  # extra values are the template's business; they are plain data anyway
    return out
