"""Readiness: ask every service's replicas, in parallel, whether they are well."""
from __future__ import annotations

import eventlet

from shared.errors import MaeError


def probe_services(proxies: dict, timeout: float) -> dict:
    """``{service: {"ok": bool, ...}}`` — each service asked once, all at once."""

    def ask(name, proxy):
        try:
            with eventlet.Timeout(timeout):
                answer = proxy.ping.call_async().result(timeout)
        except MaeError as exc:
            return name, {"ok": False, "error": exc.message}
        except eventlet.Timeout:
            return name, {"ok": False, "error": f"no answer within {timeout:g} s"}
        except Exception as exc:  # a broken broker connection, a remote crash
            return name, {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        return name, answer

    pool = eventlet.GreenPool(len(proxies) or 1)
    return dict(pool.starmap(ask, proxies.items()))
