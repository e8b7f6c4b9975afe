"""Auth and users: login over OAuth2, the caller, tokens, user search, blacklist, audit."""
from __future__ import annotations

import re
from urllib.parse import urlencode

from werkzeug.wrappers import Response

from gateway.auth import authenticate, require_admin, source_ip
from gateway.schemas import AUDIT, NEW_TOKEN, PAGING, TOKEN, USER, USER_FOUND, json_response, obj, page_of
from shared.errors import BadRequest, Forbidden, Invalid, NotFound
from shared.web import read_json, route

TAGS = ["auth"]
# What a user search may contain: no quotes, wildcards, slashes or control characters,
# which no name, login or email needs (and which injected SQL and paths are made of).
USER_QUERY = re.compile(r"^[\w .@+-]{0,100}\Z")
CONSOLE_STATE = re.compile(r"^[A-Za-z0-9_-]{16,128}\Z")
SESSION = obj(["id", "device", "created_at", "last_used_at", "expires_at", "current"],
              id={"type": "integer"}, device={"type": "string"}, source_ip={"type": "string"},
              created_at={"type": "string", "format": "date-time"},
              last_used_at={"type": ["string", "null"], "format": "date-time"},
              expires_at={"type": ["string", "null"], "format": "date-time"},
              current={"type": "boolean"})
PROVIDERS = obj(["items"], items={"type": "array", "items": obj(
    ["name", "display_name"], name={"type": "string"}, display_name={"type": "string"})})


def _int_id(value: str, what: str) -> int:
    if not value.isdigit() or len(value) > 18:
        raise NotFound(f"No such {what}.")
    return int(value)


def _wants_html(request) -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html" and request.accept_mimetypes["text/html"] > request.accept_mimetypes["application/json"]


class AuthRoutes:
    @route("GET", "/api/v1/auth/providers", summary="Login providers", tags=TAGS,
           responses=json_response(PROVIDERS))
    def auth_providers(self, request):
        items = self.auth.providers()
        return {"items": [{"name": p["name"], "display_name": p["display_name"]} for p in items]}

    @route("GET", "/api/v1/auth/login/<provider>", summary="Start a login (302 to the provider)",
           tags=TAGS, query=[{"name": "console_state", "in": "query", "required": False,
                              "schema": {"type": "string", "pattern": r"^[A-Za-z0-9_-]{16,128}$"},
                              "description": "The console's own login state, handed back with the token"}],
           responses={302: {"description": "Redirect to the provider"}}, errors=[400, 404, 429])
    def auth_login(self, request, provider):
        console_state = request.args.get("console_state") or None
        if console_state is not None and not CONSOLE_STATE.match(console_state):
            raise BadRequest("'console_state' must be 16 to 128 letters, digits, '-' or '_'.")
        answer = self.auth.begin_login(provider, console_state)
        return Response(status=302, headers={"Location": answer["authorize_url"],
                                             "Cache-Control": "no-store"})

    @route("GET", "/api/v1/auth/callback/<provider>", summary="Finish a login", tags=TAGS,
           query=[{"name": "code", "in": "query", "required": False, "schema": {"type": "string"}},
                  {"name": "state", "in": "query", "required": False, "schema": {"type": "string"}},
                  {"name": "iss", "in": "query", "required": False, "schema": {"type": "string"}}],
           responses={**json_response(obj(["token", "user"], token={"type": "string"}, user=USER)),
                      302: {"description": "Back to the console with the token"}},
           errors=[400, 404, 503])
    def auth_callback(self, request, provider):
        if request.args.get("error"):
            raise BadRequest(f"The login provider said: {request.args.get('error_description') or request.args['error']}.")
        # ``iss`` (RFC 9207, sent by OpenID Providers that support it) must be the provider's issuer.
        answer = self.auth.complete_login(provider, request.args.get("code"), request.args.get("state"),
                                          source_ip(request), iss=request.args.get("iss"),
                                          device=request.headers.get("User-Agent", ""))
        if _wants_html(request):
            # The token travels in the fragment, which browsers never send to servers, with
            # the console's state: the console takes a token only from a login it started.
            fragment = urlencode({"token": answer["token"], "state": answer.get("console_state") or ""})
            return Response(status=302, headers={"Location": f"/#/login?{fragment}",
                                                 "Cache-Control": "no-store"})
        return {"token": answer["token"], "user": answer["user"], "expires_at": answer["expires_at"]}

    @route("GET", "/api/v1/me", summary="The caller", tags=TAGS, auth=True,
           responses=json_response(USER), errors=[401])
    def me(self, request):
        caller = authenticate(self, request)
        return self.auth.get_user(caller.id)

    @route("POST", "/api/v1/tokens", summary="Create a personal access token", tags=TAGS, auth=True,
           body=obj(["name"], name={"type": "string", "maxLength": 100},
                    expires_in_days={"type": "integer", "minimum": 0, "maximum": 3650,
                                     "description": "default 90; 0 (never) for administrators only"},
                    scope={"type": "string", "enum": ["read", "write"],
                           "description": "default write; a read token may only GET"}),
           responses=json_response(NEW_TOKEN, 201, "Created; the token is shown only now"),
           errors=[400, 401, 403, 422])
    def create_token(self, request):
        caller = authenticate(self, request)
        body = read_json(request)
        if not isinstance(body, dict):
            raise BadRequest("The body must be a JSON object.")
        token = self.auth.create_token(caller.id, body.get("name"), body.get("expires_in_days"),
                                       caller.source_ip, body.get("scope"))
        return 201, token

    @route("GET", "/api/v1/tokens", summary="Your personal access tokens (never the secret)",
           tags=TAGS, auth=True, query=PAGING, responses=json_response(page_of(TOKEN)), errors=[401, 422])
    def list_tokens(self, request):
        caller = authenticate(self, request)
        return self.auth.list_tokens(caller.id, request.args.get("limit"), request.args.get("cursor"))

    @route("DELETE", "/api/v1/tokens/<token_id>", summary="Revoke a token", tags=TAGS, auth=True,
           responses={204: {"description": "Revoked"}}, errors=[401, 404])
    def revoke_token(self, request, token_id):
        caller = authenticate(self, request)
        self.auth.revoke_token(caller.id, _int_id(token_id, "token"), caller.source_ip)
        return 204, None

    @route("GET", "/api/v1/sessions", summary="Your login sessions, newest first", tags=TAGS, auth=True,
           query=PAGING, responses=json_response(page_of(SESSION)), errors=[401, 422])
    def list_sessions(self, request):
        caller = authenticate(self, request)
        return self.auth.list_sessions(caller.id, caller.token_id, request.args.get("limit"),
                                       request.args.get("cursor"))

    @route("DELETE", "/api/v1/sessions/<session_id>", summary="End one of your sessions", tags=TAGS,
           auth=True, responses={204: {"description": "Ended"}}, errors=[401, 403, 404])
    def end_session(self, request, session_id):
        caller = authenticate(self, request)
        self.auth.end_session(caller.id, _int_id(session_id, "session"), caller.source_ip)
        return 204, None

    @route("DELETE", "/api/v1/sessions", summary="End all your sessions but the current one", tags=TAGS,
           auth=True, responses={204: {"description": "Ended"}}, errors=[401, 403])
    def end_other_sessions(self, request):
        caller = authenticate(self, request)
        self.auth.end_other_sessions(caller.id, caller.token_id, caller.source_ip)
        return 204, None

    @route("POST", "/api/v1/auth/logout", summary="Log out: the session used ends on the server",
           tags=TAGS, auth=True, responses={204: {"description": "Logged out"}}, errors=[401])
    def logout(self, request):
        caller = authenticate(self, request)
        self.auth.logout(caller.id, caller.token_id, caller.source_ip)
        return 204, None

    @route("GET", "/api/v1/users", summary="Search users (to add them as members)", tags=TAGS,
           auth=True, query=[{"name": "q", "in": "query", "required": False,
                              "schema": {"type": "string", "maxLength": 100, "pattern": r"^[\w .@+-]*$"}},
                             *PAGING],
           responses=json_response(page_of(USER_FOUND)), errors=[401, 403, 422])
    def search_users(self, request):
        caller = authenticate(self, request)
        if not caller.is_admin and not self.org.member_anywhere(caller.id):
            raise Forbidden("Only administrators and members of an application can search users.")
        q = request.args.get("q", "")
        if not USER_QUERY.match(q):
            raise Invalid("'q' is part of a name, login or email: at most 100 letters, digits, "
                          "spaces and . _ @ + -.", {"field": "q"})
        return self.auth.search_users(q, request.args.get("limit"), request.args.get("cursor"),
                                      full=caller.is_admin)

    @route("PUT", "/api/v1/admin/blacklist/<username>", summary="Block a user (all their tokens stop working)",
           tags=["admin"], auth=True, body=obj([], reason={"type": "string", "maxLength": 500}),
           responses=json_response(obj(["username", "blocked"], username={"type": "string"},
                                       blocked={"type": "boolean"})),
           errors=[400, 401, 403, 404, 422])
    def block_user(self, request, username):
        caller = require_admin(self, request)
        body = read_json(request, required=False)
        reason = body.get("reason", "") if isinstance(body, dict) else ""
        if username == caller.username:
            raise BadRequest("You cannot block yourself.")
        return self.auth.block_user(username, caller.username, reason if isinstance(reason, str) else "",
                                    caller.source_ip)

    @route("DELETE", "/api/v1/admin/blacklist/<username>", summary="Unblock a user", tags=["admin"],
           auth=True, responses={204: {"description": "Unblocked"}}, errors=[401, 403, 404])
    def unblock_user(self, request, username):
        caller = require_admin(self, request)
        self.auth.unblock_user(username, caller.username, caller.source_ip)
        return 204, None

    @route("GET", "/api/v1/admin/audit", summary="The audit log, newest first", tags=["admin"], auth=True,
           query=[{"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                  for n in ("actor", "action", "since")] + PAGING,
           responses=json_response(page_of(AUDIT)), errors=[401, 403, 422])
    def audit_log(self, request):
        require_admin(self, request)
        args = request.args
        return self.auth.list_audit(args.get("actor"), args.get("action"), args.get("since"),
                                    args.get("limit"), args.get("cursor"))
