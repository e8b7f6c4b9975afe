"""Servers and cloud accounts (platform admins only)."""
from __future__ import annotations

from gateway.auth import require_admin
from gateway.schemas import PAGING, json_response, nullable, obj, page_of
from shared.web import read_object, route

TAGS = ["servers"]

STR = {"type": "string"}
NSTR = {"type": ["string", "null"]}
PROVIDER_LABEL = {"type": "string", "pattern": r"^\s*[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?\s*$"}
# What a request may set; null (or "") in an optional field means "not given" / "clear it".
# services/server/domain/fields.py NAME: no quotes, semicolons, slashes or control characters.
NAME = {"type": "string", "maxLength": 128, "pattern": r"^\s*[^\W_][\w .:#@()+&-]*\s*$"}
SERVER_FIELDS = dict(name=NAME,
                     ip={"type": "string", "maxLength": 64, "description": "IPv4 or IPv6"},
                     provider={"anyOf": [PROVIDER_LABEL, {"type": "null"}, {"const": ""}],
                               "description": "default 'manual'"},
                     region=nullable({"type": "string", "maxLength": 64}),
                     instance_id=nullable({"type": "string", "maxLength": 128}),
                     cpu=nullable({"type": "integer", "minimum": 1, "maximum": 4096}),
                     memory_gb=nullable({"type": "number", "exclusiveMinimum": 0, "maximum": 65536}),
                     expires_at=nullable({"type": "string", "description": "RFC 3339 or YYYY-MM-DD"}),
                     owner=nullable({"type": "string", "maxLength": 128}),
                     notes=nullable({"type": "string", "maxLength": 4000}))
SERVER = obj(["id", "name", "ip", "provider"], id={"type": "integer"}, name=STR, ip=STR, provider=STR,
             region=NSTR, instance_id=NSTR, cloud_account_id={"type": ["integer", "null"]},
             cloud_status=NSTR, cpu={"type": ["integer", "null"]}, memory_gb={"type": ["number", "null"]},
             expires_at=NSTR,
             expired={"type": "boolean", "description": "expires_at has passed"},
             days_left={"type": ["integer", "null"],
                        "description": "calendar days (UTC) to expires_at: 0 today, negative once expired"},
             owner=NSTR, notes=NSTR, created_at=NSTR, updated_at=NSTR)
ACCOUNT = obj(["id", "name", "provider", "regions", "last_sync_status"], id={"type": "integer"},
              name=STR, provider=STR, access_key_id=STR, regions={"type": "array", "items": STR},
              last_sync_status={"type": "string", "enum": ["never", "syncing", "ok", "failed"]},
              last_sync_error=NSTR, last_sync_at=NSTR, last_sync_count={"type": ["integer", "null"]},
              sync_every_hours={"type": ["integer", "null"], "description": "scheduled import; null: none"},
              next_sync_at=NSTR, created_at=NSTR)
REGION = {"type": "string", "pattern": "^[a-z]{2}(-[a-z0-9]+){1,3}$"}


class ServerRoutes:
    @route("POST", "/api/v1/servers", summary="Add a server to the inventory", tags=TAGS, auth=True,
           body=obj(["name", "ip"], **SERVER_FIELDS), responses=json_response(SERVER, 201, "Created"),
           errors=[400, 401, 403, 409, 422])
    def create_server(self, request):
        caller = require_admin(self, request)
        return 201, self.server.create_server(read_object(request), caller.actor, caller.source_ip)

    @route("GET", "/api/v1/servers", summary="Servers, searchable; expiring_within_days=N keeps those "
           "expiring by the end of day N, already expired ones included (expired: true)", tags=TAGS,
           auth=True, query=PAGING + [
               {"name": "q", "in": "query", "required": False, "schema": {"type": "string", "maxLength": 128}},
               {"name": "expiring_within_days", "in": "query", "required": False,
                "schema": {"type": "integer", "minimum": 0, "maximum": 3650}}],
           responses=json_response(page_of(SERVER)), errors=[401, 403, 422])
    def list_servers(self, request):
        require_admin(self, request)
        args = request.args
        return self.server.list_servers(args.get("q"), args.get("expiring_within_days"),
                                        args.get("limit"), args.get("cursor"))

    @route("GET", "/api/v1/servers/<int:server_id>", summary="A server", tags=TAGS, auth=True,
           responses=json_response(SERVER), errors=[401, 403, 404])
    def get_server(self, request, server_id):
        require_admin(self, request)
        return self.server.get_server(server_id)

    @route("PATCH", "/api/v1/servers/<int:server_id>", summary="Change a server", tags=TAGS, auth=True,
           body=obj([], **SERVER_FIELDS), responses=json_response(SERVER),
           errors=[400, 401, 403, 404, 409, 422])
    def update_server(self, request, server_id):
        caller = require_admin(self, request)
        return self.server.update_server(server_id, read_object(request), caller.actor, caller.source_ip)

    @route("DELETE", "/api/v1/servers/<int:server_id>", summary="Remove a server", tags=TAGS, auth=True,
           responses={204: {"description": "Deleted"}}, errors=[401, 403, 404])
    def delete_server(self, request, server_id):
        caller = require_admin(self, request)
        self.server.delete_server(server_id, caller.actor, caller.source_ip)
        return 204, None

    @route("POST", "/api/v1/cloud-accounts", summary="Register a cloud account (its secret is never shown again)",
           tags=TAGS, auth=True,
           body=obj(["name", "access_key_id", "access_key_secret", "regions"],
                    name=NAME,
                    provider={"enum": ["aliyun", "", None]},
                    access_key_id={"type": "string", "maxLength": 128},
                    access_key_secret={"type": "string", "maxLength": 256},
                    regions={"type": "array", "items": REGION, "minItems": 1, "maxItems": 50}),
           responses=json_response(ACCOUNT, 201, "Created"), errors=[400, 401, 403, 409, 422])
    def create_cloud_account(self, request):
        caller = require_admin(self, request)
        return 201, self.server.create_cloud_account(read_object(request), caller.actor, caller.source_ip)

    @route("GET", "/api/v1/cloud-accounts", summary="Cloud accounts and how their last sync went", tags=TAGS,
           auth=True, responses=json_response(page_of(ACCOUNT)), errors=[401, 403])
    def list_cloud_accounts(self, request):
        require_admin(self, request)
        return self.server.list_cloud_accounts()

    @route("GET", "/api/v1/cloud-accounts/<int:account_id>", summary="A cloud account, its schedule and "
           "how its last sync went", tags=TAGS, auth=True, responses=json_response(ACCOUNT),
           errors=[401, 403, 404])
    def get_cloud_account(self, request, account_id):
        require_admin(self, request)
        return self.server.get_cloud_account(account_id)

    @route("PATCH", "/api/v1/cloud-accounts/<int:account_id>",
           summary="Import this account's servers every sync_every_hours (1..168; null or 0: never)",
           tags=TAGS, auth=True,
           body=obj(["sync_every_hours"], sync_every_hours={"type": ["integer", "null"], "minimum": 0,
                                                            "maximum": 168}),
           responses=json_response(ACCOUNT), errors=[400, 401, 403, 404, 422])
    def schedule_cloud_account(self, request, account_id):
        caller = require_admin(self, request)
        return self.server.schedule_cloud_account(account_id, read_object(request), caller.actor,
                                                  caller.source_ip)

    @route("POST", "/api/v1/cloud-accounts/<int:account_id>/sync",
           summary="Import or update this account's servers (runs in the background)", tags=TAGS,
           auth=True, responses=json_response(ACCOUNT, 202, "Accepted"), errors=[401, 403, 404])
    def sync_cloud_account(self, request, account_id):
        caller = require_admin(self, request)
        return 202, self.server.sync_cloud_account(account_id, caller.actor, caller.source_ip)
