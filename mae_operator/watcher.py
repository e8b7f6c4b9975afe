"""List, then watch from the last resourceVersion; on 410 Gone, list again.

One thread per kind. Calls go through the official client's ApiClient (its
auth, TLS and pool) as raw JSON, so a watch line is decoded once and the
bytes received can be counted (bench/operator_reports.py).
"""
from __future__ import annotations

import json
import logging
import threading

import urllib3

from mae_operator import SELECTOR
from mae_operator.reports import rv_of
from mae_operator.state import State
from shared.retry import backoff_delays

log = logging.getLogger("mae_operator.watcher")

PATHS = {"Deployment": "/apis/apps/v1/deployments", "ReplicaSet": "/apis/apps/v1/replicasets",
         "Pod": "/api/v1/pods", "Event": "/api/v1/events"}
# MAE's objects by their label; events cannot be selected by their object's labels, so only
# Warning events are watched (the state keeps those of objects it knows).
QUERIES = {"Event": {"fieldSelector": "type=Warning"}}


class Gone(Exception):
    """The resourceVersion we watch from is compacted away: list again."""


class Watcher(threading.Thread):
    def __init__(self, api, kind: str, state: State, stop: threading.Event,
                 watch_seconds: int = 240, connect_timeout: float = 5.0):
        super().__init__(name=f"watch-{kind}", daemon=True)
        self.api, self.kind, self.state, self.stop_event = api, kind, state, stop
        self.path = PATHS[kind]
        self.selection = QUERIES.get(kind, {"labelSelector": SELECTOR})
        self.watch_seconds, self.connect_timeout = watch_seconds, connect_timeout
        self.rv: str | None = None
        self.bytes_received = 0
        self.lists = 0

    def _call(self, query: dict, read_timeout: float):
        params = self.api.param_serialize("GET", self.path, query_params=list(query.items()),
                                          header_params={"Accept": "application/json"},
                                          auth_settings=["BearerToken"])
        return self.api.call_api(*params, _request_timeout=(self.connect_timeout, read_timeout))

    def relist(self) -> None:
        resp = self._call(self.selection, 60)
        raw = resp.read()
        self.bytes_received += len(raw)
        if resp.status != 200:
            raise RuntimeError(f"list {self.kind}: HTTP {resp.status}: {raw[:200]!r}")
        body = json.loads(raw)
        items = body.get("items") or []
        self.rv = (body.get("metadata") or {}).get("resourceVersion")
        self.lists += 1
        self.state.relisted(self.kind, items, int(self.rv or 0))

    def watch_once(self) -> None:
        resp = self._call({**self.selection, "watch": "true", "resourceVersion": self.rv,
                           "allowWatchBookmarks": "true", "timeoutSeconds": str(self.watch_seconds)},
                          self.watch_seconds + 30)
        stream = resp.response
        try:
            if resp.status == 410:
                raise Gone()
            if resp.status != 200:
                raise RuntimeError(f"watch {self.kind}: HTTP {resp.status}")
            buffer = b""
            for chunk in stream.stream(16384, decode_content=True):
                self.bytes_received += len(chunk)
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        self._handle(json.loads(line))
                if self.stop_event.is_set():
                    return
        finally:
            stream.release_conn()

    def _handle(self, event: dict) -> None:
        type_, obj = event.get("type"), event.get("object") or {}
        if type_ == "ERROR":
            if obj.get("code") == 410:
                raise Gone()
            raise RuntimeError(f"watch {self.kind}: {obj.get('message')}")
        if type_ == "BOOKMARK":
            self.rv = (obj.get("metadata") or {}).get("resourceVersion") or self.rv
            return
        self.state.event(self.kind, type_, obj)
        if rv_of(obj):
            self.rv = str(rv_of(obj))

    def run(self) -> None:
        delays = None
        while not self.stop_event.is_set():
            try:
                if self.rv is None:
                    self.relist()
                self.watch_once()
                delays = None  # a watch that ended normally (timeoutSeconds): resume at once
            except Gone:
                log.info("watch of %s expired (410); listing again", self.kind)
                self.rv = None
            except (urllib3.exceptions.HTTPError, OSError, RuntimeError, ValueError) as exc:
                delays = delays or backoff_delays(10 ** 9, base=0.5, cap=15.0)
                pause = next(delays)
                log.warning("watch of %s failed (%s); again in %.1f s from resourceVersion %s",
                            self.kind, exc, pause, self.rv)
                self.stop_event.wait(pause)
