"""A small client for MAE's REST API: JSON in and out, the API's errors as exceptions."""
from __future__ import annotations

import time
import uuid

import requests

from mae_cli.config import Settings


class ApiError(Exception):
    """The API answered with an error body: its message is what the person sees."""

    def __init__(self, status: int, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or {}


class ConnectionFailed(Exception):
    pass


class Client:
    def __init__(self, settings: Settings, timeout: float = 30):
        self.settings = settings
        self.base = settings.url + "/api/v1"
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"
        self.session.headers["User-Agent"] = "mae-cli"
        if settings.token:
            self.session.headers["Authorization"] = f"Bearer {settings.token}"

    def request(self, method: str, path: str, json=None, params=None, headers=None):
        try:
            response = self.session.request(method, self.base + path, json=json, params=params,
                                            headers=headers, timeout=self.timeout)
        except requests.exceptions.Timeout:
            raise ConnectionFailed(f"MAE at {self.settings.url} did not answer within {self.timeout:g} s.")
        except requests.exceptions.ConnectionError as exc:
            raise ConnectionFailed(f"Cannot connect to MAE at {self.settings.url} ({_why(exc)}). "
                                   f"Is the server running and is the URL right? "
                                   f"(set MAE_URL or run `mae login --url URL`)")
        if response.status_code == 204 or not response.content:
            if response.ok:
                return None
        try:
            data = response.json()
        except ValueError:
            data = None
        if not response.ok:
            error = (data or {}).get("error") if isinstance(data, dict) else None
            if isinstance(error, dict) and error.get("message"):
                raise ApiError(response.status_code, error.get("code", ""), error["message"],
                               error.get("details"))
            raise ApiError(response.status_code, f"http_{response.status_code}",
                           f"MAE answered HTTP {response.status_code} {response.reason}.")
        return data

    def get(self, path, **params):
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path, body=None):
        return self.request("POST", path, json=body if body is not None else {})

    def create(self, path, body=None, attempts: int = 4, pause: float = 1.0):
        """POST a request that creates a deploy record, safely repeatable: every attempt carries
        the same Idempotency-Key, so when an answer is lost (no connection, a timeout, 503 while
        MAE restarts a part, 409 while the first attempt is still being recorded) the retry
        gets the first record back instead of starting a second deploy."""
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                return self.request("POST", path, json=body if body is not None else {}, headers=headers)
            except ConnectionFailed:
                if last:
                    raise
            except ApiError as exc:
                # 409 "conflict": the first attempt is still being recorded; another 409
                # (version_not_ready, version_routed) is the answer and is not retried
                if exc.status not in (409, 502, 503, 504) or (exc.status == 409 and exc.code != "conflict") or last:
                    raise
            time.sleep(pause * 2 ** attempt)

    def patch(self, path, body=None):
        return self.request("PATCH", path, json=body)

    def put(self, path, body=None):
        return self.request("PUT", path, json=body)

    def delete(self, path):
        return self.request("DELETE", path)

    def list_all(self, path, limit: int = 1000, **params) -> list:
        items, cursor = [], None
        while True:
            page = self.get(path, limit=200, cursor=cursor, **params)
            items.extend(page.get("items", []))
            cursor = page.get("next_cursor")
            if not cursor or len(items) >= limit:
                return items


def _why(exc: Exception) -> str:
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return "unknown host"
    return "connection failed"
