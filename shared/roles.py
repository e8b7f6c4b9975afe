"""Roles in an application, weakest first. A platform admin stands above them all."""
from __future__ import annotations

ROLES = ("viewer", "developer", "maintainer", "owner")
ADMIN = "admin"
RANK = {role: i for i, role in enumerate(ROLES)} | {ADMIN: len(ROLES)}


def at_least(role: str | None, required: str) -> bool:
    return role is not None and RANK.get(role, -1) >= RANK[required]
