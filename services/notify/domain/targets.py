"""Sending one notice to one target, and judging its answer.

A Feishu or DingTalk reply with HTTP 200 may still be a refusal: a non-zero
``code`` (Feishu; older bots ``StatusCode``) or ``errcode`` (DingTalk) in the
body is a failure, with the provider's message kept for ``last_error``.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

import requests

from services.notify.domain import render, signing


class DeliveryError(Exception):
    """The target did not accept the notice; the message says why, in its words."""


@dataclass
class Outgoing:
    url: str
    headers: dict
    body: bytes


def _json(data: dict) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def build(channel_type: str, url: str, secret: str | None, event_name: str, envelope: dict,
          console_url: str, now: float | None = None) -> Outgoing:
    now = time.time() if now is None else now
    summary = render.summarize(event_name, envelope, console_url)
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if channel_type == "feishu":
        payload = render.feishu_card(summary)
        if secret:
            ts = int(now)
            payload = {"timestamp": str(ts), "sign": signing.feishu_sign(secret, ts), **payload}
        return Outgoing(url, headers, _json(payload))
    if channel_type == "dingtalk":
        payload = render.dingtalk_markdown(summary)
        if secret:
            sep = "&" if "?" in url else "?"
            url = f"{url}{sep}{signing.dingtalk_query(secret, int(now * 1000))}"
        return Outgoing(url, headers, _json(payload))
    if channel_type == "webhook":
        body = _json(render.webhook_body(event_name, envelope, summary))
        headers.update({"X-MAE-Event": event_name, "X-MAE-Delivery": str(envelope.get("event_id"))})
        if secret:
            headers["X-MAE-Signature"] = signing.webhook_signature(secret, body)
        return Outgoing(url, headers, body)
    raise ValueError(f"unknown channel type {channel_type!r}")


def judge(channel_type: str, status: int, text: str) -> None:
    """Raise ``DeliveryError`` unless the answer means "accepted"."""
    snippet = (text or "")[:300]
    if not 200 <= status < 300:
        raise DeliveryError(f"HTTP {status}: {snippet}".strip())
    if channel_type == "webhook":
        return
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        raise DeliveryError(f"HTTP {status} with a body that is not JSON: {snippet}")
    if not isinstance(body, dict):
        raise DeliveryError(f"unexpected answer: {snippet}")
    if channel_type == "feishu":
        code = body.get("code", body.get("StatusCode", 0))
        if code not in (0, None):
            raise DeliveryError(f"Feishu code {code}: {body.get('msg') or body.get('StatusMessage') or snippet}")
    elif channel_type == "dingtalk":
        code = body.get("errcode", 0)
        if code not in (0, None):
            raise DeliveryError(f"DingTalk errcode {code}: {body.get('errmsg') or snippet}")


def url_secrets(url: str) -> list[str]:
    """The parts of a target URL that work like a password: query values (DingTalk's
    access_token, a signature), a long last path segment (Feishu's hook id) and a
    password in the address; longest first, so none is replaced only in part."""
    parts = urlsplit(url)
    found = {v for _, v in parse_qsl(parts.query, keep_blank_values=True) if len(v) >= 4}
    # and as written, since decoding turns '+' into a space that the URL never had
    found |= {v for v in (p.partition("=")[2] for p in parts.query.split("&")) if len(v) >= 4}
    last = parts.path.rstrip("/").rsplit("/", 1)[-1]
    if len(last) >= 8:
        found.add(last)
    if parts.password:
        found.add(parts.password)
    return sorted(found, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """``text`` (an error message, a reply) without the URL's secrets, as sent or encoded."""
    for secret in url_secrets(url):
        for form in {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}:
            text = text.replace(form, "****")
    return text


def send(outgoing: Outgoing, channel_type: str, timeout: float, http=None) -> None:
    """One attempt; raises ``DeliveryError`` on any refusal, timeout or network error.

    Its message goes to ``last_error``, the API and the logs: network errors name the
    URL they failed on, so the URL's secrets are scrubbed out of every message."""
    http = http or requests
    try:
        try:
            response = http.post(outgoing.url, data=outgoing.body, headers=outgoing.headers,
                                 timeout=timeout, allow_redirects=False)
        except requests.Timeout:
            raise DeliveryError(f"no answer within {timeout:g} s")
        except requests.RequestException as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}"[:500])
        judge(channel_type, response.status_code, response.text)
    except DeliveryError as exc:
        raise DeliveryError(scrub(str(exc), outgoing.url)) from None
