"""JSON Schemas of the API's bodies and answers, for routes' OpenAPI metadata."""
from __future__ import annotations

LABEL = {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63}
ROLE = {"type": "string", "enum": ["viewer", "developer", "maintainer", "owner"]}


def obj(required=(), **props) -> dict:
    return {"type": "object", "required": list(required), "properties": props}


def page_of(item: dict) -> dict:
    return obj(["items", "next_cursor"], items={"type": "array", "items": item},
               next_cursor={"type": ["string", "null"]})


def json_response(schema: dict, status: int = 200, description: str = "OK") -> dict:
    return {status: {"description": description, "content": {"application/json": {"schema": schema}}}}


USER = obj(["id", "username", "display_name", "email", "is_admin"],
           id={"type": "integer"}, username={"type": "string"}, display_name={"type": "string"},
           email={"type": "string"}, is_admin={"type": "boolean"})
# what GET /users answers: names for members, every field for admins
USER_FOUND = obj(["id", "username", "display_name"], id={"type": "integer"}, username={"type": "string"},
                 display_name={"type": "string"}, email={"type": "string"}, is_admin={"type": "boolean"})
TOKEN = obj(["id", "name"], id={"type": "integer"}, name={"type": "string"},
            prefix={"type": "string"}, created_at={"type": "string"},
            expires_at={"type": ["string", "null"]}, last_used_at={"type": ["string", "null"]},
            scope={"type": "string", "enum": ["read", "write"]})
NEW_TOKEN = obj(["id", "name", "token"], id={"type": "integer"}, name={"type": "string"},
                token={"type": "string"}, expires_at={"type": ["string", "null"]},
                scope={"type": "string", "enum": ["read", "write"]})
APP_POLICY = obj([], pod_security={"type": "string", "enum": ["baseline", "privileged"]},
                 quota={"type": ["object", "null"], "additionalProperties": {"type": ["string", "number"]}},
                 limits={"type": ["object", "null"], "additionalProperties": {"type": "object"}})
APP = obj(["name", "display_name"], name={"type": "string"}, display_name={"type": "string"},
          description={"type": "string"}, role={"type": ["string", "null"]},
          created_by={"type": "string"}, created_at={"type": "string"})
MEMBER = obj(["username", "role"], username={"type": "string"}, role=ROLE)
AUDIT = obj(["actor", "action", "target", "time"], id={"type": "integer"}, actor={"type": "string"},
            action={"type": "string"}, target={"type": "string"}, details={"type": "object"},
            source_ip={"type": "string"}, time={"type": "string"})
PAGING = [
    {"name": "limit", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
    {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}},
]


def nullable(schema: dict) -> dict:
    """``schema`` or null: services read null in an optional field as "not given"."""
    kind = schema.get("type")
    if isinstance(kind, str):
        return {**schema, "type": [kind, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}
