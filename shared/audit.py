"""The audit trail: who did what to what, when, from where.

Any service records an entry with ``AuditLog`` (``self.audit.record(...)``);
the entry travels as an ``audit.recorded`` event (after the action's commit,
when the service is transactional) and the auth service appends it to its
append-only table, idempotently by event id. The auth service writes its own
entries (logins, tokens, blacklist) directly in the same transaction.
"""
from __future__ import annotations

from shared.events import EventPublisher

AUDIT_SOURCE = "audit"


class AuditLog(EventPublisher):
    def __init__(self):
        # One exchange for every service's entries: the consumer binds once.
        super().__init__(source=AUDIT_SOURCE)

    def get_dependency(self, worker_ctx):
        publisher = super().get_dependency(worker_ctx)

        class Recorder:
            @staticmethod
            def record(actor: str | None, action: str, target: str = "", details: dict | None = None,
                       source_ip: str | None = None) -> None:
                publisher.publish("recorded", {
                    "actor": actor, "action": action, "target": target,
                    "details": details or {}, "source_ip": source_ip,
                })

        return Recorder()
