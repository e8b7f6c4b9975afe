"""A stand-in for a Drone server's API, and a sender of Drone-signed webhooks.

Like Drone it wants ``Authorization: Bearer <token>`` (401 otherwise), answers
``GET /api/repos/{ns}/{name}/builds`` with the newest builds first, and creates a
build on ``POST …/builds?branch=`` (404 for an unknown repository).
"""
from __future__ import annotations

import json
import time
from email.utils import formatdate

import requests

from services.deploy.domain.ci import sign_http_request
from tests.fakes import FakeHTTPServer, Received


class FakeDrone(FakeHTTPServer):
    def __init__(self, token: str, repo: str = "team/web"):
        super().__init__()
        self.token = token
        self.repo = repo
        self.builds: list[dict] = []

    def add_build(self, number: int, status: str, ref: str, event: str = "tag") -> dict:
        build = {"id": 1000 + number, "number": number, "status": status, "event": event, "ref": ref,
                 "after": f"{number:040x}", "message": f"build {number}",
                 "link": f"{self.base_url}/{self.repo}/{number}", "created": int(time.time())}
        self.builds.insert(0, build)
        return build

    def answer(self, request: Received):
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"message": "Unauthorized"}
        if request.path != f"/api/repos/{self.repo}/builds":
            return 404, {"message": "Not Found"}
        if request.method == "GET":
            return 200, self.builds
        if request.method == "POST":
            branch = request.query.get("branch") or "main"
            number = (self.builds[0]["number"] + 1) if self.builds else 1
            return 200, {**self.add_build(number, "pending", f"refs/heads/{branch}", "custom")}
        return 405, {"message": "Method Not Allowed"}


def build_payload(repo: str, build: dict, action: str = "completed") -> dict:
    namespace, name = repo.split("/", 1)
    return {"action": action,
            "repo": {"id": 42, "namespace": namespace, "name": name, "slug": repo},
            "build": build}


def send_webhook(url: str, payload: dict, secret: str, date: str | None = None,
                 tamper: bool = False) -> requests.Response:
    """POST ``payload`` to MAE as Drone would, signed with ``secret``."""
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "X-Drone-Event": "build",
               **sign_http_request(body, secret, date or formatdate(usegmt=True))}
    if tamper:
        body = body.replace(b'"success"', b'"failure"')
    return requests.post(url, data=body, headers=headers, timeout=30)
