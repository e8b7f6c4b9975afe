"""Entrypoints of the org service (applications, their members and roles). Kept thin: logic lives in `domain`."""
from __future__ import annotations

from shared.service import ServiceBase


class OrgService(ServiceBase):
    name = "org"
