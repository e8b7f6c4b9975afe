"""Pods' logs from the cluster, relayed as one stream of lines each prefixed ``<pod> ``.

Every pod's ``pods/log`` is opened before the answer starts (so a cluster that cannot
be reached is a 503, not an empty 200). Without ``follow`` the pods are read one after
the other; with it, one green thread per pod reads its stream into a bounded queue
(a slow reader slows the cluster's streams instead of filling memory) and the
relay yields whatever is there. Lines are cut at newlines and prefixed a chunk at a
time. Closing the relay (the reader left: the web server closes the iterator) kills
the readers and closes every upstream connection.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Iterator

import eventlet
import urllib3
from eventlet.queue import Empty, LightQueue

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
# A line longer than this is cut (a log is for reading; a runaway line must not fill memory).
MAX_LINE = 256 * 1024
_END = object()


def _close(resp, finished: bool) -> None:
    try:
        if not finished:
            resp.close()  # unread data: the connection cannot go back to the pool as it is
        resp.release_conn()
    except Exception:  # closing must never fail the relay
        pass


def lines_of(resp, pod: str) -> Iterator[bytes]:
    """The upstream body as blocks of whole lines, each line prefixed ``<pod> ``."""
    prefix, joiner = pod.encode() + b" ", b"\n" + pod.encode() + b" "
    rest, finished = b"", False
    try:
        for chunk in resp.stream(CHUNK, decode_content=True):
            data = rest + chunk if rest else chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data if len(data) < MAX_LINE else b""
                if not rest:
                    yield prefix + data[:MAX_LINE] + b"\n"
                continue
            rest = data[cut + 1:]
            yield prefix + data[:cut].replace(b"\n", joiner) + b"\n"
        if rest:
            yield prefix + rest + b"\n"
        finished = True
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        # The cluster ended or stalled the stream (idle timeout, API server restart): this pod's part ends.
        log.info("log stream of pod %s ended: %s", pod, exc)
    finally:
        _close(resp, finished)


def relay(opened: list[tuple[str, object]], follow: bool, notes: list[bytes] = (),
          max_seconds: float | None = None) -> Iterator[bytes]:
    """One stream from ``opened`` = [(pod, upstream response)], after ``notes`` (lines about
    pods whose log could not be opened); a follow ends after ``max_seconds`` (None: never)."""
    yield from notes
    if not follow:
        pending = list(opened)
        try:
            while pending:
                pod, resp = pending.pop(0)
                yield from lines_of(resp, pod)
        finally:
            for _, resp in pending:
                _close(resp, False)
        return
    queue: LightQueue = LightQueue(maxsize=256)

    def read(pod, resp):
        try:
            for block in lines_of(resp, pod):
                queue.put(block)
        finally:
            queue.put(_END)

    readers = [eventlet.spawn(read, pod, resp) for pod, resp in opened]
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    try:
        running = len(readers)
        while running:
            try:
                block = queue.get(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
            except Empty:
                return  # the longest follow allowed: the reader may ask again
            if block is _END:
                running -= 1
                continue
            blocks = [block]
            try:  # whatever else is waiting goes out in the same write
                while len(blocks) < 64:
                    more = queue.get_nowait()
                    if more is _END:
                        running -= 1
                    else:
                        blocks.append(more)
            except Empty:
                pass
            yield b"".join(blocks)
    finally:
        for reader in readers:
            reader.kill()  # its finally closes its upstream
        for _, resp in opened:
            _close(resp, False)


def open_all(pods: list[dict], open_one: Callable[[dict], object], error_type) -> tuple[list, list[bytes]]:
    """Open each pod's log: ``([(pod, resp)], notes)``. A pod the cluster refuses (its container
    waits to start, it is gone) becomes a note line; when no pod could be opened because the
    cluster is unreachable, ``error_type`` propagates (the caller answers 503)."""
    opened, notes, failures = [], [], []
    for pod in pods:
        try:
            opened.append((pod["name"], open_one(pod)))
        except error_type as exc:
            if getattr(exc, "transient", False):
                failures.append(exc)
            notes.append(f"{pod['name']} [MAE] the cluster did not give this pod's log: {exc}\n".encode())
    if failures and not opened:
        raise failures[0]
    return opened, notes
