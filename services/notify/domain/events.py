"""The one table of events notify consumes: (source service, event type) → public name."""
from __future__ import annotations

EVENTS: dict[tuple[str, str], str] = {
    ("deploy", "succeeded"): "deploy.succeeded",
    ("deploy", "failed"): "deploy.failed",
    ("deploy", "build_succeeded"): "build.succeeded",
    ("deploy", "build_failed"): "build.failed",
    ("server", "expiring"): "server.expiring",
    ("cluster", "unreachable"): "cluster.unreachable",
}

# Events about the platform rather than one application: only the admins'
# channel (app None) may subscribe to them.
PLATFORM_ONLY = {"server.expiring", "cluster.unreachable"}

PUBLIC_NAMES = sorted(EVENTS.values())
APP_EVENTS = sorted(set(PUBLIC_NAMES) - PLATFORM_ONLY)


def public_name(source: str, event_type: str) -> str:
    return EVENTS[(source, event_type)]


def subscribable(app: str | None) -> list[str]:
    return PUBLIC_NAMES if app is None else APP_EVENTS
