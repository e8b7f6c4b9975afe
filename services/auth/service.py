"""Entrypoints of the auth service (users, OAuth identities, sessions, personal access tokens and the blacklist). Kept thin: logic lives in `domain`."""
from __future__ import annotations

from shared.service import ServiceBase


class AuthService(ServiceBase):
    name = "auth"
