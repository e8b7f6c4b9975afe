"""Entrypoints of the notify service (notification channels, subscriptions and deliveries (MUMS)). Kept thin: logic lives in `domain`."""
from __future__ import annotations

from shared.service import ServiceBase


class NotifyService(ServiceBase):
    name = "notify"
