"""OpenID Connect: a provider configured by its ``issuer`` alone, and the ID token checked.

* Discovery: ``{issuer}/.well-known/openid-configuration`` is fetched when first needed
  and kept for an hour per process; the document must name the configured issuer
  exactly (OIDC Discovery 4.3), and its endpoints must be HTTPS (plain HTTP only for a
  provider on this very machine, as the tests and `make up` run one).
* The login is the authorization code flow with ``state`` (single use, kept by the
  auth service in Redis), PKCE S256 and a ``nonce`` per login.
* The ID token is checked with PyJWT against the provider's JWKS (fetched from the
  discovered ``jwks_uri``, kept for an hour, fetched again when a token names a key
  it has not seen): an asymmetric signature (never ``none``, never an HMAC keyed by
  something public), ``iss``, ``aud`` (and ``azp``), ``exp``, ``iat`` (not in the
  future, not older than ``max_id_token_age``), and ``nonce``: the one this login
  sent, and only once (``NonceStore``: a replayed token is refused).
* Who logged in is the ID token's ``sub``; the name, email and display name come from
  the claims the provider's settings name (``username_claim``, ``email_claim``,
  ``name_claim``), from the ID token or else from the userinfo endpoint (whose ``sub``
  must be the same).
"""
from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Iterable
from typing import Protocol
from urllib.parse import urlsplit

import jwt
import requests
from jwt import PyJWK
from jwt.exceptions import (DecodeError, ExpiredSignatureError, ImmatureSignatureError, InvalidAlgorithmError,
                            InvalidAudienceError, InvalidIssuedAtError, InvalidIssuerError, InvalidKeyError,
                            InvalidSignatureError, InvalidTokenError, MissingRequiredClaimError, PyJWKError)

from shared.errors import Unavailable

HTTP_TIMEOUT = 10
CACHE_SECONDS = 3600
REFETCH_KEYS_AFTER = 30          # an unknown key id fetches the JWKS again, at most this often
DEFAULT_LEEWAY = 60              # seconds of clock difference tolerated on exp / iat / nbf
DEFAULT_MAX_AGE = 600            # an ID token is used right after it is issued
# Asymmetric algorithms only: "none" is no signature, and HS* would be keyed by the
# client secret, which this check does not use (RFC 8725 2.1: fixed, not from the token).
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp", "iat"]


class IdTokenError(Exception):
    """The ID token is refused; ``reason`` says why in words a person can act on."""

    def __init__(self, reason: str, claim: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.claim = claim


class NonceStore(Protocol):
    def claim(self, nonce: str, ttl: int) -> bool:
        """Record ``nonce`` as used; False when it was used before."""


class MemoryNonceStore:
    """A process-local ``NonceStore`` (the auth service uses Redis, shared by replicas)."""

    def __init__(self):
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def claim(self, nonce: str, ttl: int) -> bool:
        now = time.time()
        with self._lock:
            self._seen = {n: t for n, t in self._seen.items() if t > now}
            if nonce in self._seen:
                return False
            self._seen[nonce] = now + ttl
            return True


def validate_id_token(id_token: str, *, jwks: dict, issuer: str, client_id: str, nonce: str,
                      nonce_store: NonceStore, algorithms: Iterable[str] = ALGORITHMS,
                      leeway: float = DEFAULT_LEEWAY, max_age: float = DEFAULT_MAX_AGE,
                      now: float | None = None) -> dict:
    """The ID token's claims, or ``IdTokenError`` naming the first check it fails."""
    if not isinstance(id_token, str) or not id_token:
        raise IdTokenError("the provider sent no ID token", "id_token")
    try:
        header = jwt.get_unverified_header(id_token)
    except DecodeError:
        raise IdTokenError("the ID token is not a signed JWT")
    alg = header.get("alg")
    allowed = [a for a in algorithms if a in ALGORITHMS]
    if not alg or str(alg).lower() == "none":
        raise IdTokenError("the ID token is not signed (alg none)", "alg")
    if alg not in allowed:
        raise IdTokenError(f"the ID token is signed with {alg}, which is not accepted "
                           f"(accepted: {', '.join(allowed)})", "alg")
    key = _signing_key(jwks, header, alg)
    now = time.time() if now is None else now
    try:
        claims = jwt.decode(
            id_token, key=key.key, algorithms=[alg], audience=client_id, issuer=issuer, leeway=leeway,
            options={"require": REQUIRED_CLAIMS, "verify_signature": True, "verify_exp": True,
                     "verify_iat": True, "verify_nbf": True, "verify_aud": True, "verify_iss": True,
                     "strict_aud": False})
    except InvalidSignatureError:
        raise IdTokenError("the ID token's signature does not verify with the provider's keys", "signature")
    except ExpiredSignatureError:
        raise IdTokenError("the ID token has expired (exp)", "exp")
    except InvalidAudienceError:
        raise IdTokenError(f"the ID token is not for this client (aud is not {client_id!r})", "aud")
    except InvalidIssuerError:
        raise IdTokenError(f"the ID token was not issued by {issuer} (iss)", "iss")
    except MissingRequiredClaimError as exc:
        raise IdTokenError(f"the ID token has no {exc.claim!r} claim", exc.claim)
    except InvalidIssuedAtError:
        raise IdTokenError("the ID token's issue time is not a time (iat)", "iat")
    except ImmatureSignatureError as exc:
        claim = "iat" if "iat" in str(exc) else "nbf"
        raise IdTokenError(f"the ID token is not valid yet ({claim} is in the future)", claim)
    except (InvalidAlgorithmError, InvalidKeyError):
        raise IdTokenError(f"the provider's key does not fit the ID token's algorithm {alg}", "alg")
    except InvalidTokenError as exc:
        raise IdTokenError(f"the ID token is malformed ({type(exc).__name__})")
    # jwt.decode does not bound the age: a token issued long ago is not this login's.
    if not isinstance(claims["iat"], (int, float)) or claims["iat"] < now - max_age - leeway:
        raise IdTokenError("the ID token was issued too long ago (iat)", "iat")
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    azp = claims.get("azp")
    if (azp is not None and azp != client_id) or (len(audiences) > 1 and azp is None):
        raise IdTokenError(f"the ID token was issued to another party (azp is not {client_id!r})", "azp")
    if not isinstance(claims["sub"], str) or not claims["sub"]:
        raise IdTokenError("the ID token names nobody (sub)", "sub")
    sent = claims.get("nonce")
    if not isinstance(sent, str) or not sent:
        raise IdTokenError("the ID token has no nonce", "nonce")
    if not nonce or not hmac.compare_digest(sent.encode(), nonce.encode()):
        raise IdTokenError("the ID token's nonce is not the one this login sent", "nonce")
    ttl = int(max(claims["exp"] - now, 0) + leeway + max_age)
    if not nonce_store.claim(nonce, ttl):
        raise IdTokenError("the ID token's nonce was used before (a replayed token)", "nonce")
    return claims


def _signing_key(jwks: dict, header: dict, alg: str) -> PyJWK:
    keys = [k for k in (jwks or {}).get("keys", []) if isinstance(k, dict) and k.get("use", "sig") == "sig"]
    kid = header.get("kid")
    if kid is not None:
        keys = [k for k in keys if k.get("kid") == kid]
    if len(keys) != 1:
        raise IdTokenError(f"the ID token is signed by a key the provider does not publish (kid {kid!r})"
                           if not keys else "the ID token names no key (kid) and the provider has several",
                           "kid")
    jwk = keys[0]
    if jwk.get("alg") and jwk["alg"] != alg:
        raise IdTokenError(f"the ID token says {alg} but its key is for {jwk['alg']}", "alg")
    try:
        return PyJWK(jwk, algorithm=alg)
    except (PyJWKError, InvalidKeyError, ValueError, TypeError):
        raise IdTokenError(f"the provider's key does not fit the ID token's algorithm {alg}", "alg")


# -- discovery and keys ------------------------------------------------------------

_cache: dict[str, tuple[float, dict]] = {}
_cache_lock = threading.Lock()


def _loopback_http(url: str) -> bool:
    parts = urlsplit(url or "")
    return parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")


def _acceptable_url(url, issuer: str) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    return _loopback_http(url) and _loopback_http(issuer)


def _fetch_json(url: str, what: str, provider: str):
    try:
        resp = requests.get(url, timeout=HTTP_TIMEOUT, allow_redirects=False,
                            headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        raise Unavailable(f"The login provider {provider} cannot be reached ({what}).",
                          {"provider": provider, "error": type(exc).__name__})
    if resp.status_code != 200:
        raise Unavailable(f"The login provider {provider} answered {resp.status_code} for its {what}.",
                          {"provider": provider})
    try:
        return resp.json()
    except ValueError:
        raise Unavailable(f"The login provider {provider} sent a {what} that is not JSON.", {"provider": provider})


def _cached(url: str, what: str, provider: str, max_age: float) -> dict:
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(url)
    if hit and now - hit[0] < max_age:
        return hit[1]
    doc = _fetch_json(url, what, provider)
    if not isinstance(doc, dict):
        raise Unavailable(f"The login provider {provider} sent a {what} that is not an object.",
                          {"provider": provider})
    with _cache_lock:
        _cache[url] = (now, doc)
    return doc


def discover(issuer: str, provider: str = "oidc") -> dict:
    """The provider's metadata, checked: it names ``issuer`` and its endpoints are HTTPS."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    doc = _cached(url, "OpenID configuration", provider, CACHE_SECONDS)
    if doc.get("issuer") != issuer:
        with _cache_lock:
            _cache.pop(url, None)
        raise Unavailable(f"The login provider {provider} says its issuer is {doc.get('issuer')!r}, "
                          f"not the configured {issuer!r}.", {"provider": provider})
    for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not _acceptable_url(doc.get(field), issuer):
            raise Unavailable(f"The login provider {provider} has no usable {field} (HTTPS is required).",
                              {"provider": provider, "field": field})
    if doc.get("userinfo_endpoint") and not _acceptable_url(doc["userinfo_endpoint"], issuer):
        raise Unavailable(f"The login provider {provider} has no usable userinfo_endpoint (HTTPS is required).",
                          {"provider": provider, "field": "userinfo_endpoint"})
    return doc


def signing_keys(jwks_uri: str, provider: str, refresh: bool = False) -> dict:
    max_age = REFETCH_KEYS_AFTER if refresh else CACHE_SECONDS
    return _cached(jwks_uri, "signing keys (JWKS)", provider, max_age)


def forget_cache() -> None:
    with _cache_lock:
        _cache.clear()


def new_nonce() -> str:
    return secrets.token_urlsafe(32)
