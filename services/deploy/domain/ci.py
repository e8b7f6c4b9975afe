"""CI hand-off: the ``CIProvider`` interface and its Drone implementation.

The seed's flow: push a tag to Gitea → Drone builds and pushes the image → MAE
makes a version of it (and deploys it when the link says so). A provider can
trigger a build of a ref, list recent builds, and verify and parse a webhook.
Drone signs its system webhooks with HTTP Signatures (draft-cavage): a
``Digest: SHA-256=<base64 sha256(body)>`` header and a ``Signature`` header
naming the signed headers, HMAC-SHA256 with the shared DRONE_WEBHOOK_SECRET.
Gitea Actions or GitHub Actions would be further providers of the same shape.
"""
from __future__ import annotations

import base64
from abc import ABC, abstractmethod
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import quote

from shared import outbound
from shared.errors import BadRequest, Invalid, Unauthorized, Unavailable, UrlNotAllowed
from shared.retry import retry_call

HTTP_TIMEOUT = 10
# Drone's answers MAE reads (a page of builds, one build); anything longer is cut off.
MAX_ANSWER_BYTES = 1024 * 1024
# A signed request older (or newer) than this is refused, which bounds replays.
MAX_CLOCK_SKEW_SECONDS = 300


@dataclass
class Build:
    number: int
    status: str          # pending | running | success | failure | error | killed ...
    event: str           # push | tag | pull_request | custom | promote ...
    ref: str
    link: str
    commit: str
    message: str
    created_at: str | None

    @property
    def tag(self) -> str | None:
        return self.ref[len("refs/tags/"):] if self.ref.startswith("refs/tags/") else None

    @property
    def finished(self) -> bool:
        return self.status in ("success", "failure", "error", "killed", "declined", "skipped")

    def to_dict(self) -> dict:
        return {"number": self.number, "status": self.status, "event": self.event, "ref": self.ref,
                "tag": self.tag, "link": self.link, "commit": self.commit, "message": self.message,
                "created_at": self.created_at}


@dataclass
class WebhookEvent:
    repo: str            # "namespace/name"
    action: str          # created | updated | completed
    build: Build


class CIProvider(ABC):
    name = "ci"

    @abstractmethod
    def trigger(self, repo: str, ref: str) -> Build:
        """Ask the CI to build ``ref`` of ``repo``."""

    @abstractmethod
    def builds(self, repo: str, limit: int = 25) -> list[Build]:
        """The most recent builds of ``repo``, newest first."""

    @staticmethod
    @abstractmethod
    def parse_webhook(headers: dict, body: bytes, secrets: list[str],
                      now: datetime | None = None) -> WebhookEvent | None:
        """The build event in a webhook, if it is authentic; ``Unauthorized`` if not."""


def _build(data: dict) -> Build:
    created = data.get("created")
    return Build(number=int(data.get("number") or 0), status=str(data.get("status") or ""),
                 event=str(data.get("event") or ""), ref=str(data.get("ref") or ""),
                 link=str(data.get("link") or ""), commit=str(data.get("after") or ""),
                 message=str(data.get("message") or "")[:500],
                 created_at=datetime.fromtimestamp(created, timezone.utc).isoformat().replace("+00:00", "Z")
                 if isinstance(created, (int, float)) and created else None)


def check_repo(repo) -> str:
    if not isinstance(repo, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repo):
        raise Invalid("'repo' must be 'namespace/name', as Drone shows it.", {"field": "repo"})
    return repo


class DroneProvider(CIProvider):
    """Drone's API at ``server``, called through the outbound guard: the server's host is
    resolved and checked on every call, redirects are not followed, and what goes wrong
    is said in words — never with what the server answered (it is a person's URL)."""

    name = "drone"

    def __init__(self, server: str, token: str, attempts: int = 3, retry_base: float = 0.5,
                 guard: "outbound.Guard | None" = None):
        self.server = server.rstrip("/")
        self.token = token
        self.attempts = attempts
        self.retry_base = retry_base
        self.guard = guard or outbound.default_guard()

    def _call(self, method: str, path: str, params: dict | None = None):
        def once():
            answer = self.guard.request(method, self.server + path, params=params, timeout=HTTP_TIMEOUT,
                                        headers={"Authorization": f"Bearer {self.token}",
                                                 "Accept": "application/json"},
                                        max_body=MAX_ANSWER_BYTES)
            if answer.status_code >= 500:
                raise outbound.OutboundError(f"it answered HTTP {answer.status_code}")
            return answer

        try:
            answer = retry_call(once, attempts=self.attempts, base=self.retry_base,
                                retry_on=(outbound.OutboundError,))
        except outbound.NotAllowed as exc:
            raise UrlNotAllowed(f"The CI server is not allowed: {exc.words}.",
                                {"field": "server", "reason": exc.reason}) from None
        except outbound.TimedOut:
            raise Unavailable(f"Drone at {self.server} did not answer within {HTTP_TIMEOUT} s.",
                              {"server": self.server}) from None
        except outbound.OutboundError as exc:
            raise Unavailable(f"Drone at {self.server} cannot be reached: {exc}.", {"server": self.server}) from None
        status = answer.status_code
        if 300 <= status < 400:
            raise Unavailable(f"Drone at {self.server} answered HTTP {status} (a redirect, which MAE does "
                              f"not follow: give the server's own address).", {"server": self.server, "status": status})
        if status in (401, 403):
            raise Unavailable("Drone refused MAE's token for this repository; check the link's token.",
                              {"server": self.server, "status": status})
        if status == 404:
            raise Invalid("Drone does not know this repository (or the token cannot see it).",
                          {"field": "repo"})
        if status >= 400 or status < 200:
            raise BadRequest(f"Drone refused the request: HTTP {status}.", {"status": status})
        try:
            return answer.json()
        except ValueError:
            raise Unavailable(f"Drone at {self.server} answered HTTP {status} with something that is "
                              f"not JSON{' (or too long)' if answer.truncated else ''}.",
                              {"server": self.server}) from None

    def trigger(self, repo: str, ref: str) -> Build:
        branch = ref[len("refs/heads/"):] if ref.startswith("refs/heads/") else ref
        if not branch or branch.startswith("refs/"):
            raise Invalid("Drone builds a branch: give a branch name (tags build when pushed).",
                          {"field": "ref"})
        owner, name = check_repo(repo).split("/", 1)
        data = self._call("POST", f"/api/repos/{quote(owner)}/{quote(name)}/builds", params={"branch": branch})
        if not isinstance(data, dict):
            raise Unavailable(f"Drone at {self.server} answered with something that is not a build.",
                              {"server": self.server})
        return _build(data)

    def builds(self, repo: str, limit: int = 25) -> list[Build]:
        owner, name = check_repo(repo).split("/", 1)
        data = self._call("GET", f"/api/repos/{quote(owner)}/{quote(name)}/builds",
                          params={"per_page": limit})
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise Unavailable(f"Drone at {self.server} answered with something that is not a list of builds.",
                              {"server": self.server})
        return [_build(item) for item in data[:limit]]

    @staticmethod
    def parse_webhook(headers: dict, body: bytes, secrets: list[str], now: datetime | None = None,
                      method: str = "POST", path: str = "/") -> WebhookEvent | None:
        """The build event in a Drone webhook, if one of ``secrets`` signed it.

        Raises ``Unauthorized`` for a missing or wrong signature, a digest that
        does not match the body, or a date too far off; returns ``None`` for a
        signed event that is not about a build.
        """
        verify_http_signature(headers, body, secrets, now, method, path)
        try:
            payload = json.loads(body)
        except ValueError:
            raise BadRequest("The webhook body is not JSON.")
        if not isinstance(payload, dict) or not isinstance(payload.get("build"), dict):
            return None
        repo = (payload.get("repo") or {}).get("slug") or ""
        return WebhookEvent(repo=str(repo), action=str(payload.get("action") or ""),
                            build=_build(payload["build"]))


def _header(headers: dict, name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _signature_params(value: str) -> dict:
    return dict(re.findall(r'(\w+)="([^"]*)"', value or ""))


def verify_http_signature(headers: dict, body: bytes, secrets: list[str], now: datetime | None = None,
                          method: str = "POST", path: str = "/") -> None:
    signature = _signature_params(_header(headers, "signature") or "")
    if not signature.get("signature"):
        raise Unauthorized("The webhook is not signed.")
    if signature.get("algorithm", "hmac-sha256").lower() != "hmac-sha256":
        raise Unauthorized("The webhook is signed with an algorithm MAE does not accept.")
    signed = (signature.get("headers") or "date").lower().split()
    if "digest" not in signed or "date" not in signed:
        raise Unauthorized("The webhook signature must cover its date and digest.")
    digest = _header(headers, "digest") or ""
    expected_digest = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
    if not hmac.compare_digest(digest, expected_digest):
        raise Unauthorized("The webhook body does not match its digest.")
    try:
        sent = parsedate_to_datetime(_header(headers, "date") or "")
    except (TypeError, ValueError):
        raise Unauthorized("The webhook has no valid Date header.")
    now = now or datetime.now(timezone.utc)
    if abs((now - sent).total_seconds()) > MAX_CLOCK_SKEW_SECONDS:
        raise Unauthorized("The webhook is too old (or its clock is off); it may be a replay.")
    lines = []
    for name in signed:
        if name == "(request-target)":
            lines.append(f"(request-target): {method.lower()} {path}")
        else:
            lines.append(f"{name}: {_header(headers, name) or ''}")
    message = "\n".join(lines).encode()
    for secret in secrets:
        computed = base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()
        if hmac.compare_digest(computed, signature["signature"]):
            return
    raise Unauthorized("The webhook signature does not match.")


def sign_http_request(body: bytes, secret: str, date: str) -> dict:
    """The headers Drone sends (used by MAE's tests' Drone stand-in and by `mae` tools)."""
    digest = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
    message = f"date: {date}\ndigest: {digest}".encode()
    signature = base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()
    return {"Date": date, "Digest": digest,
            "Signature": f'keyId="hmac-key",algorithm="hmac-sha256",signature="{signature}",headers="date digest"'}


def version_name(tag: str) -> str:
    """A tag as a version name: a DNS label (``v1.2.0`` → ``v1-2-0``)."""
    name = re.sub(r"[^a-z0-9-]+", "-", tag.lower()).strip("-")
    name = re.sub(r"-{2,}", "-", name)[:63].strip("-")
    if not name:
        raise Invalid(f"The tag {tag!r} cannot be made into a version name.", {"field": "ref"})
    return name


PROVIDERS = {"drone": DroneProvider}
