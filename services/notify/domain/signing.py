"""Each target's own signing scheme, as its documentation describes it.

* Feishu custom bot ("自定义机器人", security setting "签名校验"): the string
  ``f"{timestamp}\\n{secret}"`` is the HMAC-SHA256 *key*, the message is empty,
  ``sign`` = base64 of the digest; ``timestamp`` (seconds) and ``sign`` go into
  the JSON body. Feishu refuses timestamps more than an hour off.
* DingTalk custom robot ("加签"): HMAC-SHA256 with the secret as key over
  ``f"{timestamp}\\n{secret}"``, base64, then URL-encoded; ``timestamp``
  (milliseconds) and ``sign`` are query parameters of the webhook URL.
* Generic webhook (ours): ``X-MAE-Signature: sha256=<hex HMAC-SHA256(secret, body)>``.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote_plus


def feishu_sign(secret: str, timestamp: int) -> str:
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The base64 signature, not yet URL-encoded (``dingtalk_query`` does that)."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def dingtalk_query(secret: str, timestamp_ms: int) -> str:
    return f"timestamp={timestamp_ms}&sign={quote_plus(dingtalk_sign(secret, timestamp_ms))}"


def webhook_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
