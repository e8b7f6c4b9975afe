"""What a transaction has to say once it commits: apply requests, log lines, finished records.

The state-changing functions of this package return these instead of publishing,
so the caller publishes only what was committed. (Not the transactional outbox of
``shared/outbox.py``: that is the table the caller stages them in.)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from services.deploy import schemas
from shared.timeutil import rfc3339, utcnow

# Longest log line kept: a line is for a person to read, not a dump.
MAX_LINE = 8000


@dataclass
class PendingEvents:
    """What to publish once the transaction committed."""
    apply_requests: list[dict] = field(default_factory=list)
    lines: list[dict] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)

    def line(self, record_id: int, cluster: str, level: str, text: str, now: datetime | None = None) -> None:
        self.lines.append(schemas.log_line(record_id, cluster, level, text[:MAX_LINE], rfc3339(now or utcnow())))

    def extend(self, other: "PendingEvents") -> None:
        self.apply_requests += other.apply_requests
        self.lines += other.lines
        self.finished += other.finished
