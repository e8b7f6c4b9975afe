"""Why the outbound guard refuses a URL, in words, and the errors a guarded request raises."""
from __future__ import annotations

# -- what each reason means, in words ----------------------------------------------
REASONS = {
    "malformed": "it is not a well-formed http(s) URL",
    "scheme": "only http and https URLs are allowed",
    "credentials": "a URL may not carry a user name or password",
    "fragment": "a URL may not carry a fragment (#...)",
    "query": "a CI server URL may not carry a query (?...)",
    "path": "a CI server URL's path must be plain segments (no '.', '..', '//', ';', '%' or '\\')",
    "host": "its host is not a valid host name or IP address",
    "port": "its port is not valid",
    "unresolvable": "its host name does not resolve",
    "denied": "the operator's OUTBOUND_DENY refuses it",
    "infrastructure": "it points at MAE's own infrastructure",
    "unspecified": "it points at an unspecified address (0.0.0.0 or ::)",
    "multicast": "it points at a multicast address",
    "reserved": "it points at a reserved address",
    "link-local": "it points at a link-local address (where cloud metadata lives)",
    "metadata": "it points at a cloud metadata address",
    "loopback": "it points at a loopback address",
    "private": "it points at a private network address",
    "shared": "it points at a carrier-grade NAT address (100.64.0.0/10)",
    "not-public": "it points at an address that is not public",
}


class NotAllowed(Exception):
    """The guard refuses a URL or an address. Deliberately not an ``OSError``: urllib3 and
    requests let it through unwrapped and never retry it."""

    def __init__(self, reason: str):
        super().__init__(REASONS.get(reason, reason))
        self.reason = reason
        self.words = REASONS.get(reason, reason)


class OutboundError(Exception):
    """A request that got no usable answer; the message says what happened, in words."""


class TimedOut(OutboundError):
    pass
