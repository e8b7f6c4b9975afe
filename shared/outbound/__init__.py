"""One guard for every URL a person gives MAE: notification channels and CI servers.

Every such URL is a request MAE makes from inside its own network, so a person who can
log in could otherwise reach what only MAE should reach: its database, Redis, RabbitMQ,
the gateway, the clusters' API servers, the cloud's metadata service. The guard decides,
in this order (the first rule that decides wins):

1. The URL itself (``urls.py``): ``http`` or ``https`` only, no credentials, no fragment,
   a plain host name or IP address; a CI *server* also no query and a plain path.
2. Every address the host resolves to, with the port (``guard.py``, with what each
   address is in ``addresses.py``): some addresses are never allowed (``OUTBOUND_DENY``,
   unspecified, multicast, reserved, link-local, metadata, MAE's own infrastructure
   endpoints), ``OUTBOUND_ALLOW`` opens the rest, what is not public is refused, anything
   else is allowed.
3. The check runs when the URL is saved and again on every request, which connects only to
   an address it checked (``guard.py``, ``transport.py``).

Private ranges are refused by default: MAE runs among the things it must protect (the
database, the clusters' API servers and kubelets, the sandboxes, other internal services),
and a list derived from config can never name all of them, while anyone who can log in may
create an app and its channels. An operator whose Drone lives on 10.1.2.3 says so, as
narrowly as possible, with ``OUTBOUND_ALLOW: ["10.1.2.3:443"]``.

This module is where services get their guard: ``default_guard()``, or the ``Outbound``
dependency provider.
"""
from __future__ import annotations

from shared.outbound.addresses import parse_entries
from shared.outbound.errors import NotAllowed, OutboundError, TimedOut
from shared.outbound.guard import Guard, system_resolver
from shared.outbound.urls import parse_url

__all__ = ["Guard", "NotAllowed", "Outbound", "OutboundError", "TimedOut", "default_guard",
           "parse_entries", "parse_url", "system_resolver"]

# -- where services get their guard -----------------------------------------------------
_default: Guard | None = None


def default_guard() -> Guard:
    """The guard of this process's config file (``MAE_CONFIG``), for code that is not
    handed one by its service; built once."""
    global _default
    if _default is None:
        from shared.config import load_config

        _default = Guard.from_config(load_config())
    return _default


try:
    from nameko.extensions import DependencyProvider
except ImportError:  # pragma: no cover - only scripts without nameko
    DependencyProvider = object  # type: ignore[misc,assignment]


class Outbound(DependencyProvider):
    """``outbound = Outbound()`` on a service: the guard of the container's config."""

    def setup(self):
        self.guard = Guard.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.guard
