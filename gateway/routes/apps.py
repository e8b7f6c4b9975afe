"""Applications and members.

``GET /apps`` is the console's first request and the busiest read: its first
page is kept in Redis per user (and view: admin or member), as the JSON sent,
tagged like the RBAC answers (``gateway.auth.tagged_read``): any application
created, changed or deleted, and any change to the user's memberships, makes
the next request ask org again. Without Redis every request asks org.
"""
from __future__ import annotations

import json

from werkzeug.wrappers import Response

from gateway.auth import PerUserKey, authenticate, authenticate_with, require_app_role, tagged_write
from gateway.schemas import APP, APP_POLICY, LABEL, MEMBER, PAGING, ROLE, json_response, obj, page_of
from shared.errors import Forbidden, Invalid
from shared.keys import Keys
from shared.names import is_label
from shared.paging import clamp_limit
from shared.web import JSON, read_object, route

TAGS = ["applications"]
LIST_CACHE_SECONDS = 120


class AppRoutes:
    @route("POST", "/api/v1/apps", summary="Create an application (you become its owner)", tags=TAGS,
           auth=True, body=obj(["name"], name=LABEL, display_name={"type": ["string", "null"], "maxLength": 128},
                               description={"type": ["string", "null"], "maxLength": 4000}),
           responses=json_response(APP, 201, "Created"), errors=[400, 401, 403, 409, 422])
    def create_app(self, request):
        caller = authenticate(self, request)
        body = read_object(request)
        # MAE never takes over a namespace it did not create: where one of that name exists on
        # a reachable cluster, the app is refused (409 namespace_exists, after the name's checks).
        name = body.get("name")
        taken = self.cluster.namespace_taken(name) if is_label(name) else []
        return 201, self.org.create_app(body, caller.actor, caller.source_ip, taken_on=taken)

    @route("GET", "/api/v1/apps", summary="Applications you can see", tags=TAGS, auth=True,
           query=PAGING, responses=json_response(page_of(APP)), errors=[401, 422])
    def list_apps(self, request):
        cursor = request.args.get("cursor")
        if cursor:  # later pages are read rarely, and the cursor is the client's to vary
            caller = authenticate(self, request)
            return self.org.list_apps(caller.id, caller.is_admin, request.args.get("limit"), cursor)
        try:
            limit = clamp_limit(request.args.get("limit"))
        except Invalid:
            authenticate(self, request)  # who asks comes first: 401 before 422
            raise
        keys = Keys.from_config(self.config)
        entry = PerUserKey(lambda user_id, is_admin: keys.app_list(user_id, "admin" if is_admin else "member",
                                                                   limit))
        caller, tag, body = authenticate_with(self, request, entry)
        if body is None:
            body = json.dumps(self.org.list_apps(caller.id, caller.is_admin, limit, None), default=str)
            tagged_write(self, entry.key(caller), tag, body, LIST_CACHE_SECONDS)
        return Response(body, mimetype=JSON)

    @route("GET", "/api/v1/apps/<app>", summary="An application, with your role", tags=TAGS, auth=True,
           responses=json_response(APP), errors=[401, 404])
    def get_app(self, request, app):
        caller, role = require_app_role(self, request, app, "apps.get")
        return {**self.org.get_app(app), "role": role}

    @route("PATCH", "/api/v1/apps/<app>", summary="Change an application's display name or description",
           tags=TAGS, auth=True, body=obj([], display_name={"type": ["string", "null"], "maxLength": 128},
                                          description={"type": ["string", "null"], "maxLength": 4000}),
           responses=json_response(APP), errors=[400, 401, 403, 404, 422])
    def update_app(self, request, app):
        caller, role = require_app_role(self, request, app, "apps.update")
        return {**self.org.update_app(app, read_object(request), caller.actor, caller.source_ip), "role": role}

    @route("DELETE", "/api/v1/apps/<app>", summary="Delete an application (owner)", tags=TAGS, auth=True,
           responses={204: {"description": "Deleted"}}, errors=[401, 403, 404])
    def delete_app(self, request, app):
        caller, _ = require_app_role(self, request, app, "apps.delete")
        self.org.delete_app(app, caller.actor, caller.source_ip)
        return 204, None

    @route("GET", "/api/v1/apps/<app>/members", summary="Members and their roles", tags=TAGS, auth=True,
           query=PAGING, responses=json_response(page_of(MEMBER)), errors=[401, 404, 422])
    def list_members(self, request, app):
        require_app_role(self, request, app, "members.list")
        return self.org.list_members(app, request.args.get("limit"), request.args.get("cursor"))

    @route("PUT", "/api/v1/apps/<app>/members/<username>", summary="Add a member or change their role (owner)",
           tags=TAGS, auth=True, body=obj(["role"], role=ROLE), responses=json_response(MEMBER),
           errors=[400, 401, 403, 404, 409, 422])
    def set_member(self, request, app, username):
        caller, _ = require_app_role(self, request, app, "members.set")
        body = read_object(request)
        user = self.auth.get_user_by_username(username)
        return self.org.set_member(app, user["id"], user["username"], body.get("role"),
                                   caller.actor, caller.source_ip)

    @route("DELETE", "/api/v1/apps/<app>/members/<username>", summary="Remove a member (owner)", tags=TAGS,
           auth=True, responses={204: {"description": "Removed"}}, errors=[401, 403, 404, 409])
    def remove_member(self, request, app, username):
        caller, _ = require_app_role(self, request, app, "members.remove")
        self.org.remove_member(app, username, caller.actor, caller.source_ip)
        return 204, None

    @route("GET", "/api/v1/apps/<app>/policy", summary="What the application may run: its Pod Security level "
           "and namespace quota/limits (null: the platform's default)", tags=TAGS, auth=True,
           responses=json_response(APP_POLICY), errors=[401, 404])
    def get_policy(self, request, app):
        require_app_role(self, request, app, "apps.policy.get")
        return self.org.app_policy(app)

    @route("PUT", "/api/v1/apps/<app>/policy", summary="Override an application's policy (platform admins; "
           "audited): pod_security baseline|privileged, quota, limits", tags=TAGS, auth=True,
           body=APP_POLICY, responses=json_response(APP_POLICY), errors=[400, 401, 403, 404, 422])
    def set_policy(self, request, app):
        caller, _ = require_app_role(self, request, app, "apps.policy.get")  # outsiders: 404, as everywhere
        if not caller.is_admin:
            raise Forbidden("Only a platform administrator may change an application's policy.", {"app": app})
        return self.org.set_app_policy(app, read_object(request), caller.actor, caller.source_ip)
