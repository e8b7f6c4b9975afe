"""Login providers: the ``OAuthProvider`` interface and its three kinds.

The authorization-code flow with ``state`` and PKCE (S256) is run with
requests-oauthlib. What must survive between the redirect and the callback
(the PKCE verifier, the OIDC nonce, which provider) is kept by the caller in
Redis under the single-use ``state``; a provider object is stateless and can be
built per request from config.

* ``oauth2``: a plain OAuth2 server with a userinfo endpoint (localauth, Gitea…).
* ``github``: GitHub's API.
* ``oidc``: an OpenID Provider configured by its ``issuer`` alone; the ID token is
  validated (services/auth/domain/oidc.py) and its ``sub`` is who logged in.

A provider says who logged in (``ProviderUser``); which MAE account that is, is
decided by services/auth/domain/accounts.py from (provider, subject) alone.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from oauthlib.oauth2 import OAuth2Error
from requests_oauthlib import OAuth2Session

from services.auth.domain import oidc
from shared.errors import BadRequest, Unavailable

log = logging.getLogger(__name__)

HTTP_TIMEOUT = 10


@dataclass
class ProviderUser:
    """What a provider tells us about the person who logged in."""

    subject: str
    username: str
    display_name: str
    email: str


@dataclass
class AuthorizationRequest:
    url: str
    state: str
    code_verifier: str
    nonce: str = ""


class OAuthProvider:
    """Authorize URL → code → token → user. Subclasses say how to read the user."""

    kind = "oauth2"

    def __init__(self, name: str, settings: dict, redirect_uri: str):
        self.name = name
        self.display_name = settings.get("display_name") or name
        self.client_id = settings["client_id"]
        self.client_secret = settings.get("client_secret") or ""
        self.authorize_url = settings["authorize_url"]
        self.token_url = settings["token_url"]
        self.userinfo_url = settings.get("userinfo_url") or ""
        self.scope = (settings.get("scope") or "").split()
        self.redirect_uri = redirect_uri

    def _session(self, **kwargs) -> OAuth2Session:
        return OAuth2Session(self.client_id, redirect_uri=self.redirect_uri,
                             scope=self.scope or None, pkce="S256", **kwargs)

    def authorization_request(self) -> AuthorizationRequest:
        session = self._session()
        url, state = session.authorization_url(self.authorize_url)
        return AuthorizationRequest(url=url, state=state, code_verifier=session._code_verifier)

    def complete(self, code: str, saved: dict, nonce_store: oidc.NonceStore | None = None,
                 iss: str | None = None) -> ProviderUser:
        """The callback's code (and what ``authorization_request`` saved) → who logged in."""
        return self.fetch_user(self.exchange(code, saved["code_verifier"]))

    def exchange(self, code: str, code_verifier: str) -> dict:
        """Trade the code for the provider's access token."""
        session = self._session()
        session._code_verifier = code_verifier
        try:
            return session.fetch_token(
                self.token_url, code=code, client_secret=self.client_secret,
                include_client_id=self._secret_in_body(), timeout=HTTP_TIMEOUT,
                headers={"Accept": "application/json"})
        except OAuth2Error as exc:
            raise BadRequest(f"The login provider refused the code: {exc.description or exc.error}.",
                             {"provider": self.name, "error": exc.error})
        except requests.RequestException as exc:
            raise Unavailable(f"The login provider {self.name} cannot be reached.",
                              {"provider": self.name, "error": type(exc).__name__})

    def _secret_in_body(self) -> bool:
        """client_secret_post (True) or HTTP Basic (False) at the token endpoint."""
        return True

    def fetch_user(self, token: dict) -> ProviderUser:
        data = self._get(token, self.userinfo_url)
        subject = str(data.get("sub") or data.get("id") or "")
        username = data.get("preferred_username") or data.get("username") or data.get("login") \
            or data.get("nickname") or (data.get("email") or "").split("@")[0]
        if not subject or not username:
            raise BadRequest("The login provider did not say who you are (no subject or username).",
                             {"provider": self.name})
        return ProviderUser(subject=subject, username=str(username),
                            display_name=str(data.get("name") or username),
                            email=str(data.get("email") or ""))

    def _get(self, token: dict, url: str):
        session = OAuth2Session(self.client_id, token=token)
        try:
            resp = session.get(url, timeout=HTTP_TIMEOUT, headers={"Accept": "application/json"})
        except requests.RequestException as exc:
            raise Unavailable(f"The login provider {self.name} cannot be reached.",
                              {"provider": self.name, "error": type(exc).__name__})
        if resp.status_code != 200:
            raise BadRequest(f"The login provider answered {resp.status_code} when asked who you are.",
                             {"provider": self.name})
        return resp.json()


class GenericOAuth2Provider(OAuthProvider):
    """Any OAuth2/OIDC server with a userinfo endpoint: the team's own, Gitea, Keycloak."""


class GitHubProvider(OAuthProvider):
    """GitHub: the user from ``/user``; a private email from ``/user/emails``."""

    kind = "github"

    def fetch_user(self, token: dict) -> ProviderUser:
        api = self.userinfo_url.rstrip("/")
        data = self._get(token, f"{api}/user")
        email = data.get("email") or ""
        if not email:
            try:
                emails = self._get(token, f"{api}/user/emails")
                email = next((e["email"] for e in emails if e.get("primary") and e.get("verified")), "")
            except BadRequest:
                email = ""  # the scope may not allow it; a user without email is fine
        return ProviderUser(subject=str(data["id"]), username=data["login"],
                            display_name=data.get("name") or data["login"], email=email)


class OIDCProvider(OAuthProvider):
    """An OpenID Provider from its ``issuer``: endpoints by discovery, the user from the ID token."""

    kind = "oidc"

    def __init__(self, name: str, settings: dict, redirect_uri: str):
        self.name = name
        self.display_name = settings.get("display_name") or name
        self.issuer = str(settings["issuer"])
        self.client_id = settings["client_id"]
        self.client_secret = settings.get("client_secret") or ""
        scope = (settings.get("scope") or "openid profile email").split()
        self.scope = scope if "openid" in scope else ["openid", *scope]
        self.username_claim = settings.get("username_claim") or "preferred_username"
        self.email_claim = settings.get("email_claim") or "email"
        self.name_claim = settings.get("name_claim") or "name"
        self.leeway = float(settings.get("leeway_seconds") or oidc.DEFAULT_LEEWAY)
        self.max_age = float(settings.get("max_id_token_age") or oidc.DEFAULT_MAX_AGE)
        self.redirect_uri = redirect_uri

    @property
    def metadata(self) -> dict:
        return oidc.discover(self.issuer, self.name)

    @property
    def authorize_url(self) -> str:
        return self.metadata["authorization_endpoint"]

    @property
    def token_url(self) -> str:
        return self.metadata["token_endpoint"]

    @property
    def userinfo_url(self) -> str:
        return self.metadata.get("userinfo_endpoint") or ""

    def authorization_request(self) -> AuthorizationRequest:
        session = self._session()
        nonce = oidc.new_nonce()
        url, state = session.authorization_url(self.authorize_url, nonce=nonce)
        return AuthorizationRequest(url=url, state=state, code_verifier=session._code_verifier, nonce=nonce)

    def _secret_in_body(self) -> bool:
        methods = self.metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        return "client_secret_post" in methods and "client_secret_basic" not in methods

    def complete(self, code: str, saved: dict, nonce_store: oidc.NonceStore | None = None,
                 iss: str | None = None) -> ProviderUser:
        if iss is not None and iss != self.issuer:
            # RFC 9207: the answer came from another provider (a mix-up attack).
            raise BadRequest(f"This login was answered by {iss!r}, not by {self.name}'s issuer.",
                             {"provider": self.name, "reason": "iss"})
        if nonce_store is None or not saved.get("nonce"):
            raise BadRequest("This login was started without a nonce; start the login again.",
                             {"provider": self.name, "reason": "nonce"})
        token = self.exchange(code, saved["code_verifier"])
        claims = self.validate(token.get("id_token"), saved["nonce"], nonce_store)
        if self.userinfo_url and token.get("access_token"):
            info = self._get(token, self.userinfo_url)
            if not isinstance(info, dict) or info.get("sub") != claims["sub"]:
                raise BadRequest("The login provider's userinfo is about someone else than its ID token.",
                                 {"provider": self.name, "reason": "sub"})
            claims = {**info, **claims}  # the signed claims win
        return self.person(claims)

    def validate(self, id_token, nonce: str, nonce_store: oidc.NonceStore) -> dict:
        """The ID token's claims; refused with a 400 that says why."""
        meta = self.metadata
        algorithms = meta.get("id_token_signing_alg_values_supported") or ["RS256"]
        check = dict(issuer=self.issuer, client_id=self.client_id, nonce=nonce, nonce_store=nonce_store,
                     algorithms=algorithms, leeway=self.leeway, max_age=self.max_age)
        try:
            try:
                return oidc.validate_id_token(id_token, jwks=oidc.signing_keys(meta["jwks_uri"], self.name), **check)
            except oidc.IdTokenError as exc:
                if exc.claim != "kid":
                    raise
                # A key we have not seen: the provider may have rotated its keys.
                keys = oidc.signing_keys(meta["jwks_uri"], self.name, refresh=True)
                return oidc.validate_id_token(id_token, jwks=keys, **check)
        except oidc.IdTokenError as exc:
            raise BadRequest(f"The login provider's ID token was refused: {exc.reason}.",
                             {"provider": self.name, "reason": exc.claim or "id_token"})

    def person(self, claims: dict) -> ProviderUser:
        def text(claim):
            value = claims.get(claim)
            return value if isinstance(value, str) else ""

        email = text(self.email_claim)
        username = text(self.username_claim) or text("preferred_username") or text("nickname") \
            or email.split("@")[0]
        return ProviderUser(subject=claims["sub"], username=username,
                            display_name=text(self.name_claim) or username, email=email)


KINDS = {"oauth2": GenericOAuth2Provider, "oidc": OIDCProvider, "github": GitHubProvider}


def configured_providers(config: dict) -> dict[str, OAuthProvider]:
    """The providers that have a client id, keyed by name."""
    base = str(config.get("PUBLIC_URL") or "http://127.0.0.1:8080").rstrip("/")
    providers = {}
    for name, settings in (config.get("OAUTH_PROVIDERS") or {}).items():
        if not settings or not settings.get("client_id"):
            continue
        kind = settings.get("kind", "oauth2")
        if kind == "oidc":
            if not settings.get("issuer"):
                log.warning("login provider %s is kind oidc but has no issuer: not offered", name)
                continue
            if _loopback_http(settings["issuer"]):
                os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
        elif all(_loopback_http(settings.get(k)) for k in ("authorize_url", "token_url")):
            # oauthlib insists on HTTPS; a provider on this very machine (the local
            # authorization server of `make up` and the tests) is the one exception.
            os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
        cls = KINDS.get(kind, GenericOAuth2Provider)
        providers[name] = cls(name, settings, f"{base}/api/v1/auth/callback/{name}")
    return providers


def _loopback_http(url) -> bool:
    parts = urlsplit(url or "")
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
