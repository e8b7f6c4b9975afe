"""The clock a service reads "now" and "today" from, as a nameko dependency.

Rules that depend on the calendar (which servers expire within N days, which
reminder is due today) take the time from ``self.clock`` instead of calling
``datetime.now()``, so a test can run them at any date by handing the service a
``FixedClock`` (``nameko.testing.services.replace_dependencies(container,
clock=FixedClock(...))``) instead of waiting for, or depending on, today's date.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from nameko.extensions import DependencyProvider

from shared.timeutil import utcnow


class SystemClock:
    """The real time, naive UTC like every DATETIME column."""

    def now(self) -> datetime:
        return utcnow()

    def today(self) -> date:
        return self.now().date()


class FixedClock(SystemClock):
    """A clock that stands at one moment until moved (tests)."""

    def __init__(self, at: datetime):
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta) -> None:
        self.at += timedelta(**delta)


SYSTEM = SystemClock()


class Clock(DependencyProvider):
    def get_dependency(self, worker_ctx) -> SystemClock:
        return SYSTEM
