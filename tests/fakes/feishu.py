"""A stand-in for a Feishu group's custom bot webhook (``/open-apis/bot/v2/hook/<token>``).

Like Feishu it answers HTTP 200 with ``{"code": 0, "msg": "success", "data": {}}``
when it takes a message, and HTTP 200 with a non-zero ``code`` when it does not:
19021 for a bad signature or a timestamp more than an hour off, 19024 for a
bad body. The signature check is Feishu's documented one: HMAC-SHA256 with
``f"{timestamp}\\n{secret}"`` as the key over an empty message, base64.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from tests.fakes import FakeHTTPServer, Received

TOKEN = "9f1c2d3e-4b5a-6789-abcd-ef0123456789"


class FakeFeishu(FakeHTTPServer):
    def __init__(self, secret: str | None = None):
        super().__init__()
        self.secret = secret
        self.url = f"{self.base_url}/open-apis/bot/v2/hook/{TOKEN}"

    def accepted(self, answer) -> bool:
        return answer.get("code") == 0

    def answer(self, request: Received):
        if request.path != f"/open-apis/bot/v2/hook/{TOKEN}":
            return 200, {"code": 19001, "msg": "param invalid: incoming webhook access token invalid", "data": {}}
        try:
            body = json.loads(request.body)
        except ValueError:
            return 200, {"code": 19024, "msg": "Bad Request", "data": {}}
        if self.secret:
            ts, sign = str(body.get("timestamp", "")), body.get("sign", "")
            if not ts.isdigit() or abs(time.time() - int(ts)) > 3600:
                return 200, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time", "data": {}}
            key = f"{ts}\n{self.secret}".encode()
            expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
            if not hmac.compare_digest(sign, expected):
                return 200, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time", "data": {}}
        if body.get("msg_type") not in ("text", "post", "interactive", "share_chat", "image"):
            return 200, {"code": 19024, "msg": "Key Words Not Found", "data": {}}
        return 200, {"code": 0, "msg": "success", "data": {}}
