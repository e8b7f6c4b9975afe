"""The one retry helper: bounded attempts with exponential backoff and jitter.

Every call to something outside MAE (a cluster API, Feishu, DingTalk, a cloud
SDK, a CI server) goes through ``retry_call`` or uses ``backoff_delays`` for
its own schedule, so "how long do we keep trying" is answered in one place.
"""
from __future__ import annotations

import random
import time
from typing import Callable, Iterator, TypeVar

T = TypeVar("T")


def backoff_delay(n: int, base: float = 0.5, cap: float = 30.0, jitter: float = 0.0) -> float:
    """The pause after the ``n``-th failure (0-based): base·2ⁿ, capped, ±jitter (a fraction)."""
    delay = min(cap, base * (2 ** min(n, 64)))
    if jitter:
        delay *= 1 + random.uniform(-jitter, jitter)
    return max(0.0, delay)


def backoff_delays(attempts: int, base: float = 0.5, cap: float = 30.0,
                   jitter: float = 0.2) -> Iterator[float]:
    """The pauses between ``attempts`` tries: base, 2·base, 4·base … capped, ±jitter."""
    for n in range(max(0, attempts - 1)):
        yield backoff_delay(n, base, cap, jitter)


def retry_call(fn: Callable[[], T], *, attempts: int = 3, base: float = 0.5, cap: float = 30.0,
               retry_on: tuple[type[BaseException], ...] = (Exception,),
               sleep: Callable[[float], None] = time.sleep,
               on_retry: Callable[[int, BaseException, float], None] | None = None) -> T:
    """Call ``fn`` until it succeeds or ``attempts`` are spent; the last error is raised.

    ``sleep`` is ``time.sleep``, which eventlet's monkey patch makes cooperative
    inside services.
    """
    delays = backoff_delays(attempts, base, cap)
    attempt = 1
    while True:
        try:
            return fn()
        except retry_on as exc:
            delay = next(delays, None)
            if delay is None:
                raise
            if on_retry is not None:
                on_retry(attempt, exc, delay)
            sleep(delay)
            attempt += 1
