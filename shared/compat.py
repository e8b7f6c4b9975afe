"""Repairs for running today's libraries under eventlet's monkey patch.

urllib3 binds ``ssl.SSLContext`` when it is first imported. When that happens
before eventlet patches ``ssl`` (pytest plugins, or any import ahead of the
patch), urllib3 keeps the unpatched class, whose property setters then recurse
into eventlet's GreenSSLContext on every HTTPS call (the kubernetes client,
requests). Pointing urllib3 at the current class is harmless when nothing is
patched, so every process that imports ``shared`` gets it.
"""
from __future__ import annotations

import ssl


def repair_urllib3_ssl() -> None:
    try:
        import urllib3.util.ssl_ as u3ssl
    except ImportError:  # pragma: no cover - urllib3 comes with requests
        return
    if u3ssl.SSLContext is not ssl.SSLContext:
        u3ssl.SSLContext = ssl.SSLContext
