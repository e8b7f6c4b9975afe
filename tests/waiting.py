"""Polling until something holds: the one implementation the test modules share.

Each module keeps its own defaults (an e2e stack waits longer than an in-process
service), so it makes its helper here once: ``wait_for = waiter(timeout=40, interval=0.2)``.
Under the suite's eventlet monkey patch ``time.sleep`` yields to green threads too.
"""
from __future__ import annotations

import time


def waiter(timeout: float, interval: float):
    """``wait_for(check, timeout, interval, what)``: call ``check()`` until it returns something
    truthy and return that; after ``timeout`` seconds fail, naming ``what`` and the last answer."""
    default_timeout, default_interval = timeout, interval

    def wait_for(check, timeout: float = default_timeout, interval: float = default_interval,
                 what: str = "condition"):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = check()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; last: {last!r:.500}")

    return wait_for


def poller(timeout: float, interval: float, fail: bool = True):
    """``wait_for(fetch, done, timeout)``: call ``fetch()`` until ``done(value)`` holds and return
    the value. After ``timeout`` seconds: fail (``fail``), or hand back the last value for the
    caller's own assertion."""
    default_timeout = timeout

    def wait_for(fetch, done, timeout: float = default_timeout):
        deadline = time.monotonic() + timeout
        value = fetch()
        while not done(value):
            if time.monotonic() >= deadline:
                if fail:
                    raise AssertionError(f"condition not reached within {timeout:g} s: {value!r:.500}")
                return value
            time.sleep(interval)
            value = fetch()
        return value

    return wait_for
