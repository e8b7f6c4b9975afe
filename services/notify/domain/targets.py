"""Sending one notice to one target, and judging its answer.

A Feishu or DingTalk reply with HTTP 200 may still be a refusal: a non-zero
``code`` (Feishu; older bots ``StatusCode``) or ``errcode`` (DingTalk) in the
body is a failure. What ``last_error`` and the API say about it is MAE's own
words — the status, the provider's code and what that code is documented to
mean — never the remote body: a channel's URL is a person's, and what answers
there must not be readable through MAE (shared/outbound.py).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

import requests

from services.notify.domain import render, signing
from shared import outbound


class DeliveryError(Exception):
    """The target did not accept the notice; the message says why, in MAE's words."""


class NotAllowedError(Exception):
    """The guard refuses the channel's URL: not a ``DeliveryError``, so never retried."""

    def __init__(self, refusal: outbound.NotAllowed):
        super().__init__(f"not allowed: {refusal.words}")
        self.reason = refusal.reason


# What the providers document their refusal codes to mean (ours to show, unlike their bodies).
FEISHU_CODES = {
    9499: "bad request",
    11232: "frequency limited",
    19001: "param invalid: incoming webhook access token invalid",
    19021: "sign match fail or timestamp is not within one hour from current time",
    19022: "IP not allowed",
    19024: "key words not found",
}
DINGTALK_CODES = {
    130101: "send too fast (rate limited)",
    300001: "token is not exist (invalid access_token)",
    310000: "security settings refused it (sign not match, keywords not in content, "
            "or IP not in whitelist)",
}


def _code_words(provider: str, code, table: dict) -> str:
    if isinstance(code, bool) or not isinstance(code, int):
        return f"{provider} answered with an error code MAE cannot read"
    meaning = table.get(code)
    return f"{provider} code {code}" + (f": {meaning}" if meaning else "")


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
    """Raise ``DeliveryError`` unless the answer means "accepted"; the message never
    quotes the answer."""
    if 300 <= status < 400:
        raise DeliveryError(f"HTTP {status}: a redirect, which MAE does not follow")
    if not 200 <= status < 300:
        raise DeliveryError(f"HTTP {status}")
    if channel_type == "webhook":
        return
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        raise DeliveryError(f"HTTP {status} with an answer that is not JSON")
    if not isinstance(body, dict):
        raise DeliveryError(f"HTTP {status} with an answer that is not a JSON object")
    if channel_type == "feishu":
        code = body.get("code", body.get("StatusCode", 0))
        if code not in (0, None):
            raise DeliveryError(_code_words("Feishu", code, FEISHU_CODES))
    elif channel_type == "dingtalk":
        code = body.get("errcode", 0)
        if code not in (0, None):
            raise DeliveryError(_code_words("DingTalk", code, DINGTALK_CODES))


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
    """One attempt through the outbound guard (``http``: a ``shared.outbound.Guard``, or a
    stand-in with its ``post``); raises ``NotAllowedError`` when the guard refuses the
    URL, ``DeliveryError`` on any refusal, timeout or network error.

    Its message goes to ``last_error``, the API and the logs: it says what happened in
    words and names at most the URL, whose secrets are scrubbed out."""
    http = http or outbound.default_guard()
    try:
        try:
            response = http.post(outgoing.url, data=outgoing.body, headers=outgoing.headers,
                                 timeout=timeout, allow_redirects=False)
        except outbound.NotAllowed as exc:
            raise NotAllowedError(exc) from None
        except (outbound.TimedOut, requests.Timeout):
            raise DeliveryError(f"no answer within {timeout:g} s")
        except outbound.OutboundError as exc:
            raise DeliveryError(f"{exc} ({outgoing.url})")
        except requests.RequestException as exc:
            raise DeliveryError(f"{type(exc).__name__}: could not reach {outgoing.url}")
        judge(channel_type, response.status_code, response.text)
    except DeliveryError as exc:
        raise DeliveryError(scrub(str(exc), outgoing.url)) from None
