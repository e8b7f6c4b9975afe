"""Entrypoints of the server service (the server inventory, cloud accounts and expiry reminders). Kept thin: logic lives in `domain`."""
from __future__ import annotations

from shared.service import ServiceBase


class ServerService(ServiceBase):
    name = "server"
