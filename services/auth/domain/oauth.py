"""Login providers: the ``OAuthProvider`` interface and its two kinds.

The authorization-code flow with ``state`` and PKCE (S256) is run with
requests-oauthlib. What must survive between the redirect and the callback
(the PKCE verifier, which provider, when) is kept by the caller in Redis
under the single-use ``state``; a provider object is stateless and can be
built per request from config.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from oauthlib.oauth2 import OAuth2Error
from requests_oauthlib import OAuth2Session

from shared.errors import BadRequest, Unavailable

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

    def exchange(self, code: str, code_verifier: str) -> dict:
        """Trade the code for the provider's access token."""
        session = self._session()
        session._code_verifier = code_verifier
        try:
            return session.fetch_token(
                self.token_url, code=code, client_secret=self.client_secret,
                include_client_id=True, timeout=HTTP_TIMEOUT,
                headers={"Accept": "application/json"})
        except OAuth2Error as exc:
            raise BadRequest(f"The login provider refused the code: {exc.description or exc.error}.",
                             {"provider": self.name, "error": exc.error})
        except requests.RequestException as exc:
            raise Unavailable(f"The login provider {self.name} cannot be reached.",
                              {"provider": self.name, "error": type(exc).__name__})

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


KINDS = {"oauth2": GenericOAuth2Provider, "oidc": GenericOAuth2Provider, "github": GitHubProvider}


def configured_providers(config: dict) -> dict[str, OAuthProvider]:
    """The providers that have a client id, keyed by name."""
    base = str(config.get("PUBLIC_URL") or "http://127.0.0.1:8080").rstrip("/")
    providers = {}
    for name, settings in (config.get("OAUTH_PROVIDERS") or {}).items():
        if not settings or not settings.get("client_id"):
            continue
        if all(_loopback_http(settings.get(k)) for k in ("authorize_url", "token_url")):
            # oauthlib insists on HTTPS; a provider on this very machine (the local
            # authorization server of `make up` and the tests) is the one exception.
            os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
        cls = KINDS.get(settings.get("kind", "oauth2"), GenericOAuth2Provider)
        providers[name] = cls(name, settings, f"{base}/api/v1/auth/callback/{name}")
    return providers


def _loopback_http(url) -> bool:
    parts = urlsplit(url or "")
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
