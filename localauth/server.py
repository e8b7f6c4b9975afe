"""The authorization server: oauthlib's protocol engine, in-memory storage, a WSGI app."""
from __future__ import annotations

import html
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from oauthlib.oauth2 import RequestValidator, WebApplicationServer
from oauthlib.oauth2.rfc6749.errors import OAuth2Error
from werkzeug.wrappers import Request, Response

CODE_TTL = 60
TOKEN_TTL = 3600
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


@dataclass
class Client:
    client_id: str
    client_secret: str
    redirect_uris: list[str]


@dataclass
class Store:
    clients: dict[str, Client] = field(default_factory=dict)
    users: dict[str, dict] = field(default_factory=dict)
    codes: dict[str, dict] = field(default_factory=dict)
    tokens: dict[str, dict] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def user(self, username: str) -> dict:
        with self.lock:
            if username not in self.users:
                self.users[username] = {"sub": f"local-{username}", "preferred_username": username,
                                        "name": username.replace(".", " ").title(),
                                        "email": f"{username}@example.test"}
            return self.users[username]


class Validator(RequestValidator):
    def __init__(self, store: Store):
        self.store = store

    # clients
    def _client(self, client_id):
        return self.store.clients.get(client_id)

    def validate_client_id(self, client_id, request, *args, **kwargs):
        return self._client(client_id) is not None

    def authenticate_client(self, request, *args, **kwargs):
        client_id, secret = request.client_id, request.client_secret
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            import base64
            from urllib.parse import unquote

            try:
                raw = base64.b64decode(auth[6:]).decode()
                client_id, _, secret = raw.partition(":")
                client_id, secret = unquote(client_id), unquote(secret)
            except ValueError:
                return False
        client = self._client(client_id)
        if client is None or not secret or not secrets.compare_digest(client.client_secret, secret):
            return False
        request.client = client
        request.client_id = client_id
        return True

    def authenticate_client_id(self, client_id, request, *args, **kwargs):
        return False  # confidential clients only

    def client_authentication_required(self, request, *args, **kwargs):
        return True

    def validate_redirect_uri(self, client_id, redirect_uri, request, *args, **kwargs):
        client = self._client(client_id)
        return client is not None and redirect_uri in client.redirect_uris

    def get_default_redirect_uri(self, client_id, request, *args, **kwargs):
        client = self._client(client_id)
        return client.redirect_uris[0] if client else None

    def validate_response_type(self, client_id, response_type, client, request, *args, **kwargs):
        return response_type == "code"

    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs):
        return set(scopes) <= {"openid", "profile", "email"}

    def get_default_scopes(self, client_id, request, *args, **kwargs):
        return ["openid", "profile"]

    def is_pkce_required(self, client_id, request):
        return True

    # codes
    def save_authorization_code(self, client_id, code, request, *args, **kwargs):
        with self.store.lock:
            self.store.codes[code["code"]] = {
                "client_id": client_id, "user": request.user, "scopes": request.scopes,
                "redirect_uri": request.redirect_uri, "expires": time.time() + CODE_TTL,
                "challenge": request.code_challenge, "method": request.code_challenge_method,
            }

    def _code(self, code):
        saved = self.store.codes.get(code)
        if saved is None or saved["expires"] < time.time():
            return None
        return saved

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        saved = self._code(code)
        if saved is None or saved["client_id"] != client_id:
            return False  # a code issued to another client is no code at all
        request.user = saved["user"]
        request.scopes = saved["scopes"]
        return True

    def get_code_challenge(self, code, request):
        saved = self._code(code)
        return saved["challenge"] if saved else None

    def get_code_challenge_method(self, code, request):
        saved = self._code(code)
        return saved["method"] if saved else None

    def confirm_redirect_uri(self, client_id, code, redirect_uri, client, request, *args, **kwargs):
        saved = self._code(code)
        return saved is not None and saved["redirect_uri"] == redirect_uri

    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs):
        return grant_type == "authorization_code"

    def invalidate_authorization_code(self, client_id, code, request, *args, **kwargs):
        with self.store.lock:
            self.store.codes.pop(code, None)

    # tokens
    def save_bearer_token(self, token, request, *args, **kwargs):
        with self.store.lock:
            self.store.tokens[token["access_token"]] = {
                "user": request.user, "client_id": request.client_id,
                "expires": time.time() + token.get("expires_in", TOKEN_TTL)}


class AuthorizationServer:
    """The WSGI application."""

    def __init__(self, store: Store):
        self.store = store
        self.oauth = WebApplicationServer(Validator(store), token_expires_in=TOKEN_TTL)

    def __call__(self, environ, start_response):
        request = Request(environ)
        handler = {
            "/authorize": self.authorize,
            "/token": self.token,
            "/userinfo": self.userinfo,
            "/.well-known/openid-configuration": self.discovery,
            "/healthz": lambda r: Response("ok"),
        }.get(request.path)
        response = handler(request) if handler else Response("not found", status=404)
        return response(environ, start_response)

    def authorize(self, request: Request) -> Response:
        uri = request.url
        try:
            scopes, credentials = self.oauth.validate_authorization_request(uri, "GET", None, dict(request.headers))
        except OAuth2Error as exc:
            return _json(exc.status_code, {"error": exc.error, "error_description": exc.description})
        username = (request.args.get("username") or "").strip().lower()
        if not username:
            return self.login_page(request)
        if not USERNAME.match(username):
            return Response("A username is lower-case letters, digits, '.', '_' or '-'.", status=400)
        credentials["user"] = self.store.user(username)
        headers, body, status = self.oauth.create_authorization_response(
            uri, "GET", None, dict(request.headers), scopes, credentials)
        return Response(body or "", status=status, headers=headers)

    def login_page(self, request: Request) -> Response:
        hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in request.args.items(multi=True) if k != "username")
        page = f"""<!doctype html><meta charset="utf-8"><title>Local login</title>
<style>body{{font:16px system-ui;margin:4rem auto;max-width:28rem}}input{{font:inherit;padding:.4rem}}</style>
<h1>Local login</h1><p>This machine's stand-in for your team's login server. Who are you?</p>
<form method="get" action="/authorize">{hidden}
<input name="username" placeholder="username" autofocus required pattern="[a-z0-9][a-z0-9._-]*">
<button type="submit">Log in</button></form>"""
        return Response(page, mimetype="text/html")

    def token(self, request: Request) -> Response:
        headers, body, status = self.oauth.create_token_response(
            request.url, "POST", request.get_data(as_text=True), dict(request.headers))
        return Response(body, status=status, headers=headers)

    def userinfo(self, request: Request) -> Response:
        auth = request.headers.get("Authorization", "")
        saved = self.store.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if saved is None or saved["expires"] < time.time():
            return _json(401, {"error": "invalid_token"},
                         {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return _json(200, saved["user"])

    def discovery(self, request: Request) -> Response:
        base = request.host_url.rstrip("/")
        return _json(200, {"issuer": base, "authorization_endpoint": f"{base}/authorize",
                           "token_endpoint": f"{base}/token", "userinfo_endpoint": f"{base}/userinfo",
                           "response_types_supported": ["code"],
                           "code_challenge_methods_supported": ["S256"],
                           "token_endpoint_auth_methods_supported": ["client_secret_post",
                                                                     "client_secret_basic"]})


def _json(status, data, headers=None) -> Response:
    return Response(json.dumps(data), status=status, headers=headers, mimetype="application/json")


def login_url(authorize_url: str, username: str) -> str:
    """The provider URL MAE redirected to, answered as ``username`` (browser-less login)."""
    return authorize_url + ("&" if "?" in authorize_url else "?") + urlencode({"username": username})
