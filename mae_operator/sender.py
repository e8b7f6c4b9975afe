"""Batch the changed reports and POST them to MAE until it answers 202.

Only changes are sent: a report whose digest equals the last one MAE accepted
for that Deployment is dropped. While a POST is failing, newer reports for the
same Deployment replace the queued ones (coalescing); the pause between tries
grows exponentially with jitter (shared.retry.backoff_delays) up to a cap.
A heartbeat (an empty batch) keeps MAE's ``last_report_at`` fresh when nothing changes.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time

import requests

from mae_operator import reports as rep
from mae_operator.state import State
from shared.retry import backoff_delays

log = logging.getLogger("mae_operator.sender")

MAX_BATCH = 100


class Sender:
    def __init__(self, state: State, url: str, cluster: str, token: str, stop: threading.Event, *,
                 batch_seconds: float = 0.5, heartbeat_seconds: float = 30.0,
                 backoff_base: float = 0.5, backoff_cap: float = 30.0, timeout: float = 10.0,
                 stats_file: str | None = None, extra_stats=None, token_source=None):
        self.state, self.stop_event = state, stop
        # Where the report token comes from (its file, a mounted Secret that kubelet updates):
        # read again when MAE answers 401, so a rotated token (POST /clusters/{name}/report-token,
        # the old one kept for 10 minutes) is picked up without a restart.
        self.token, self.token_source = token, token_source
        self.endpoint = f"{url.rstrip('/')}/api/v1/clusters/{cluster}/reports"
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {token}",
                                     "Content-Type": "application/json"})
        self.batch_seconds, self.heartbeat_seconds = batch_seconds, heartbeat_seconds
        self.backoff_base, self.backoff_cap, self.timeout = backoff_base, backoff_cap, timeout
        self.sent_digest: dict[tuple, str] = {}
        self.queue: dict[tuple, dict] = {}
        self.bytes_sent = 0
        self.posts = 0
        self.last_post = 0.0
        # --stats-file: what the operator cost the link so far, rewritten after every
        # delivery and at exit (bench/report_traffic.py reads it while the operator runs).
        self.stats_file, self.extra_stats = stats_file, extra_stats

    def stats(self) -> dict:
        return {"bytes_sent": self.bytes_sent, "posts": self.posts, **(self.extra_stats() if self.extra_stats else {})}

    def write_stats(self) -> None:
        if not self.stats_file:
            return
        tmp = f"{self.stats_file}.tmp"
        with open(tmp, "w") as fh:
            json.dump(self.stats(), fh)
        os.replace(tmp, self.stats_file)  # a reader never sees half a file

    def _token_changed(self) -> bool:
        """Whether the token source now holds another token (then it is used from here on)."""
        if self.token_source is None:
            return False
        try:
            token = self.token_source()
        except OSError as exc:
            log.warning("the report token could not be read again: %s", exc)
            return False
        if not token or token == self.token:
            return False
        self.token = token
        self.session.headers["Authorization"] = f"Bearer {token}"
        return True

    def _collect(self) -> None:
        for report in self.state.take():
            key = (report["namespace"], report["name"])
            if self.sent_digest.get(key) == rep.digest(report):
                self.queue.pop(key, None)  # back to what MAE already has
                continue
            self.queue[key] = report

    def _post(self, batch: list[dict], full_state: dict | None = None) -> int:
        payload = {"reports": batch}
        if full_state is not None:
            payload["full_state"] = full_state
        body = json.dumps(payload, separators=(",", ":")).encode()
        resp = self.session.post(self.endpoint, data=body, timeout=self.timeout)
        self.bytes_sent += len(body)
        self.posts += 1
        return resp.status_code

    def deliver(self, batch: list[dict], full_state: dict | None = None) -> bool:
        """POST until 202 (True), or until told to stop (False). 4xx other than 401/429
        means MAE will never take this batch: log it and drop it."""
        delays = backoff_delays(10 ** 9, base=self.backoff_base, cap=self.backoff_cap)
        while not self.stop_event.is_set():
            try:
                status = self._post(batch, full_state)
            except requests.RequestException as exc:
                status, reason = 0, str(exc)
            else:
                reason = f"HTTP {status}"
            if status == 202:
                self.last_post = time.monotonic()
                self.write_stats()
                return True
            if status == 401 and self._token_changed():
                log.info("the report token changed; sending again with the new one")
                continue
            if 400 <= status < 500 and status not in (401, 408, 429):
                log.error("MAE refused %d report(s) for good (%s); dropping them", len(batch), reason)
                return True
            pause = next(delays)
            log.warning("reports not delivered (%s); again in %.1f s", reason, pause)
            self.stop_event.wait(pause)
            self._collect()  # coalesce what changed meanwhile into the queue
            for report in batch:
                key = (report["namespace"], report["name"])
                newer = self.queue.pop(key, None)
                if newer is not None:
                    report.clear()
                    report.update(newer)
        return False

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.state.wait_dirty(min(self.batch_seconds * 4, 1.0))
            # Let a burst (a rollout touches many pods) settle into one batch.
            self.stop_event.wait(self.batch_seconds)
            self._collect()
            while self.queue and not self.stop_event.is_set():
                keys = list(self.queue)[:MAX_BATCH]
                batch = [self.queue.pop(k) for k in keys]
                if self.deliver(batch):
                    for report in batch:
                        key = (report["namespace"], report["name"])
                        if report.get("deleted"):
                            self.sent_digest.pop(key, None)
                        else:
                            self.sent_digest[key] = rep.digest(report)
                self._collect()
            # After a full list of Deployments (start, 410) and once the reports from it are
            # out: tell MAE what exists, so it marks what vanished meanwhile as deleted.
            full_state = None if self.queue else self.state.take_full_state()
            if full_state is not None and self.deliver([], full_state):
                log.info("full state sent: %d Deployment(s) at resourceVersion %s",
                         len(full_state["deployments"]), full_state["resource_version"])
            if time.monotonic() - self.last_post >= self.heartbeat_seconds:
                self.deliver([])
