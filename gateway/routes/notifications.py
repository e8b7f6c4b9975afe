"""Notification channels and deliveries of an application, and the platform admins' own (the notify service)."""
from __future__ import annotations

from gateway.auth import require_admin, require_app_role
from gateway.schemas import LABEL, PAGING, json_response, nullable, obj, page_of
from shared.web import read_object, route

TAGS = ["notifications"]

STR = {"type": "string"}
APP_EVENTS = ["deploy.succeeded", "deploy.failed", "build.succeeded", "build.failed"]
# The platform admins' channels also hear what concerns the platform (services/notify/domain/events.py).
PLATFORM_EVENTS = APP_EVENTS + ["server.expiring", "cluster.unreachable"]


def events_schema(names: list[str]) -> dict:
    return {"type": "array", "minItems": 1, "items": {"type": "string", "enum": names}}


def channel_schema(events: list[str]) -> dict:
    return obj(["id", "name", "type", "events"], id={"type": "integer"}, app=nullable(LABEL), name=STR,
               type={"type": "string", "enum": ["feishu", "dingtalk", "webhook"]},
               url={"type": "string", "description": "with its token masked"},
               has_secret={"type": "boolean"}, events=events_schema(events), enabled={"type": "boolean"},
               created_at=STR)


def channel_body(events: list[str]) -> dict:
    return obj(["name", "type", "url", "events"],
               name={"type": "string", "maxLength": 128, "pattern": r"^\s*[^\W_][\w .:#@()+&-]*\s*$"},
               type={"type": "string", "enum": ["feishu", "dingtalk", "webhook"]},
               url={"type": "string", "format": "uri", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://", "maxLength": 2000},
               secret={"type": ["string", "null"], "maxLength": 256,
                       "description": "signing secret; never shown again"},
               events=events_schema(events), enabled={"type": "boolean"})


CHANNEL = channel_schema(APP_EVENTS)
PLATFORM_CHANNEL = channel_schema(PLATFORM_EVENTS)
TEST_RESULT = obj(["ok"], ok={"type": "boolean"}, attempts={"type": "integer"})
DELIVERY = obj(["id", "channel_id", "event", "status", "attempts"], id={"type": "integer"},
               channel_id={"type": "integer"}, channel_name={"type": ["string", "null"]},
               app={"type": ["string", "null"]}, event=STR, event_id=STR,
               status={"type": "string", "enum": ["pending", "sending", "retrying", "delivered", "failed"]},
               attempts={"type": "integer"}, last_error={"type": ["string", "null"]},
               created_at={"type": ["string", "null"]}, updated_at={"type": ["string", "null"]},
               delivered_at={"type": ["string", "null"]})


class PlatformChannelRoutes:
    """The platform admins' own channels (notify's channels without an app): they hear
    ``server.expiring`` and ``cluster.unreachable``, and any app's deploy and build
    events they subscribe to. Admins only; everyone else gets 403."""

    @route("POST", "/api/v1/admin/channels", summary="Add a channel of the platform admins", tags=TAGS,
           auth=True, body=channel_body(PLATFORM_EVENTS),
           responses=json_response(PLATFORM_CHANNEL, 201, "Created"), errors=[400, 401, 403, 422])
    def create_platform_channel(self, request):
        caller = require_admin(self, request)
        return 201, self.notify.create_channel(None, read_object(request), caller.actor, caller.source_ip)

    @route("GET", "/api/v1/admin/channels", summary="The platform admins' channels (never a secret)",
           tags=TAGS, auth=True, responses=json_response(page_of(PLATFORM_CHANNEL)), errors=[401, 403])
    def list_platform_channels(self, request):
        require_admin(self, request)
        return self.notify.list_channels(None)

    @route("GET", "/api/v1/admin/channels/<int:channel_id>", summary="One of the platform admins' channels",
           tags=TAGS, auth=True, responses=json_response(PLATFORM_CHANNEL), errors=[401, 403, 404])
    def get_platform_channel(self, request, channel_id):
        require_admin(self, request)
        return self.notify.get_channel(None, channel_id)

    @route("DELETE", "/api/v1/admin/channels/<int:channel_id>", summary="Remove a platform admins' channel",
           tags=TAGS, auth=True, responses={204: {"description": "Deleted"}}, errors=[401, 403, 404])
    def delete_platform_channel(self, request, channel_id):
        caller = require_admin(self, request)
        self.notify.delete_channel(None, channel_id, caller.actor, caller.source_ip)
        return 204, None

    @route("POST", "/api/v1/admin/channels/<int:channel_id>/test",
           summary="Send a test message to a platform channel; 200 when it accepted it", tags=TAGS, auth=True,
           responses=json_response(TEST_RESULT), errors=[401, 403, 404, 422, 503])
    def test_platform_channel(self, request, channel_id):
        require_admin(self, request)
        return self.notify.send_test(None, channel_id)

    @route("GET", "/api/v1/admin/deliveries", summary="Recent deliveries to the platform admins' channels",
           tags=TAGS, auth=True, query=PAGING, responses=json_response(page_of(DELIVERY)),
           errors=[401, 403, 422])
    def list_platform_deliveries(self, request):
        require_admin(self, request)
        return self.notify.list_deliveries(None, request.args.get("limit"), request.args.get("cursor"))


class NotificationRoutes(PlatformChannelRoutes):
    """An application's channels (maintainers), and the platform admins' (the base class)."""

    @route("POST", "/api/v1/apps/<app>/channels", summary="Add a Feishu, DingTalk or webhook channel",
           tags=TAGS, auth=True,
           body=channel_body(APP_EVENTS), responses=json_response(CHANNEL, 201, "Created"),
           errors=[400, 401, 403, 404, 422])
    def create_channel(self, request, app):
        caller, _ = require_app_role(self, request, app, "channels.create")
        return 201, self.notify.create_channel(app, read_object(request), caller.actor, caller.source_ip)

    @route("GET", "/api/v1/apps/<app>/channels", summary="The application's channels (never a secret)",
           tags=TAGS, auth=True, responses=json_response(page_of(CHANNEL)), errors=[401, 404])
    def list_channels(self, request, app):
        require_app_role(self, request, app, "channels.list")
        return self.notify.list_channels(app)

    @route("DELETE", "/api/v1/apps/<app>/channels/<int:channel_id>", summary="Remove a channel", tags=TAGS,
           auth=True, responses={204: {"description": "Deleted"}}, errors=[401, 403, 404])
    def delete_channel(self, request, app, channel_id):
        caller, _ = require_app_role(self, request, app, "channels.delete")
        self.notify.delete_channel(app, channel_id, caller.actor, caller.source_ip)
        return 204, None

    @route("POST", "/api/v1/apps/<app>/channels/<int:channel_id>/test",
           summary="Send a test message; 200 when the channel accepted it", tags=TAGS, auth=True,
           responses=json_response(TEST_RESULT), errors=[401, 403, 404, 422, 503])
    def test_channel(self, request, app, channel_id):
        require_app_role(self, request, app, "channels.test")
        return self.notify.send_test(app, channel_id)

    @route("GET", "/api/v1/apps/<app>/deliveries", summary="Recent deliveries with status and attempts",
           tags=TAGS, auth=True, query=PAGING, responses=json_response(page_of(DELIVERY)),
           errors=[401, 404, 422])
    def list_deliveries(self, request, app):
        require_app_role(self, request, app, "deliveries.list")
        return self.notify.list_deliveries(app, request.args.get("limit"), request.args.get("cursor"))

