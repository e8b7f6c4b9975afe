"""A stand-in for a DingTalk group's custom robot (``/robot/send?access_token=...``).

DingTalk answers HTTP 200 always; ``{"errcode": 0, "errmsg": "ok"}`` means
taken, anything else is a refusal (310000 for a bad signature or stale
timestamp). With 加签 on, ``timestamp`` (ms) and ``sign`` arrive as query
parameters; ``sign`` is base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")),
URL-encoded once (the query parsing here undoes exactly that encoding).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from tests.fakes import FakeHTTPServer, Received

ACCESS_TOKEN = "b6f0d0c1e2a3b4c5d6e7f8091a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"


class FakeDingTalk(FakeHTTPServer):
    def __init__(self, secret: str | None = None):
        super().__init__()
        self.secret = secret
        self.url = f"{self.base_url}/robot/send?access_token={ACCESS_TOKEN}"

    def accepted(self, answer) -> bool:
        return answer.get("errcode") == 0

    def answer(self, request: Received):
        if request.path != "/robot/send" or request.query.get("access_token") != ACCESS_TOKEN:
            return 200, {"errcode": 300001, "errmsg": "token is not exist"}
        if self.secret:
            ts, sign = request.query.get("timestamp", ""), request.query.get("sign", "")
            if not ts.isdigit() or abs(time.time() * 1000 - int(ts)) > 3600 * 1000:
                return 200, {"errcode": 310000, "errmsg": "sign not match, more: [timestamp expired]"}
            digest = hmac.new(self.secret.encode(), f"{ts}\n{self.secret}".encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(sign, base64.b64encode(digest).decode()):
                return 200, {"errcode": 310000, "errmsg": "sign not match, more: [sign mismatch]"}
        try:
            body = json.loads(request.body)
        except ValueError:
            return 200, {"errcode": 40035, "errmsg": "缺少参数 json"}
        if body.get("msgtype") not in ("text", "link", "markdown", "actionCard", "feedCard"):
            return 200, {"errcode": 40035, "errmsg": "缺少参数 msgtype"}
        return 200, {"errcode": 0, "errmsg": "ok"}
