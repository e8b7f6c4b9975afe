"""A stand-in for a team's own webhook receiver of MAE notices.

It checks what a receiver should: ``X-MAE-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>``,
``X-MAE-Event`` and ``X-MAE-Delivery`` present and matching the body; it answers
204 when satisfied and 401 when not.
"""
from __future__ import annotations

import hashlib
import hmac
import json

from tests.fakes import FakeHTTPServer, Received


class FakeWebhook(FakeHTTPServer):
    def __init__(self, secret: str | None = None):
        super().__init__()
        self.secret = secret
        self.url = f"{self.base_url}/hooks/mae"

    def answer(self, request: Received):
        if self.secret:
            expected = "sha256=" + hmac.new(self.secret.encode(), request.body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(request.headers.get("x-mae-signature", ""), expected):
                return 401, {"error": "bad signature"}
        try:
            body = json.loads(request.body)
        except ValueError:
            return 400, {"error": "not json"}
        if request.headers.get("x-mae-event") != body.get("event") or \
                request.headers.get("x-mae-delivery") != body.get("event_id"):
            return 400, {"error": "X-MAE-Event / X-MAE-Delivery do not match the body"}
        return 204, b""
