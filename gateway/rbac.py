"""RBAC: the one table of who may call which endpoint inside an application.

Each endpoint names the weakest role allowed; ``allowed(endpoint, role)`` reads
the table. A platform admin is allowed everything. Whoever has no role in an
application cannot see it at all: the gateway answers 404, never 403, so the
existence of other teams' applications does not leak.
"""
from __future__ import annotations

from shared.roles import ADMIN, ROLES, at_least

# endpoint → weakest role that may call it
PERMISSIONS: dict[str, str] = {
    # applications and members
    "apps.get": "viewer",
    "apps.update": "maintainer",
    "apps.delete": "owner",
    "apps.policy.get": "viewer",      # changing it is for platform admins only (require_admin)
    "members.list": "viewer",
    "members.set": "owner",
    "members.remove": "owner",
    # notification channels
    "channels.list": "viewer",
    "channels.create": "maintainer",
    "channels.delete": "maintainer",
    "channels.test": "maintainer",
    "deliveries.list": "viewer",
    # services, versions, ingresses, templates
    "services.create": "developer",
    "services.list": "viewer",
    "services.get": "viewer",
    "services.delete": "developer",
    "versions.create": "developer",
    "versions.list": "viewer",
    "versions.get": "viewer",
    "versions.update": "developer",
    "versions.delete": "developer",   # and deploy.test/deploy.prod for the clusters it runs on
    "versions.preview": "developer",
    "ingresses.create": "developer",
    "ingresses.list": "viewer",
    "ingresses.get": "viewer",
    "ingresses.update": "developer",  # stored only; deploying it is deploy.test/deploy.prod
    "ingresses.delete": "developer",  # and deploy.test/deploy.prod for the clusters it is on
    "templates.create": "maintainer",
    # deploys, rollbacks and deletes, by the env of the clusters they reach
    "deploy.test": "developer",       # also route, restart, scale, retire (the clusters decide)
    "deploy.prod": "maintainer",
    # deploy records and their logs
    "records.read": "viewer",
    # what runs: pods and events; pod logs by the env of the cluster (a prod log may hold users' data)
    "pods.list": "viewer",
    "events.list": "viewer",
    "logs.test": "viewer",
    "logs.prod": "developer",
    # CI hand-off: the link holds the CI's credentials
    "ci.link": "maintainer",          # and unlink
    "ci.get": "viewer",
    "ci.builds": "viewer",
    "ci.build": "developer",
}


def allowed(endpoint: str, role: str | None) -> bool:
    if role == ADMIN:
        return True
    return at_least(role, PERMISSIONS[endpoint])


def matrix() -> dict[tuple[str, str], bool]:
    """The table spelled out, (endpoint, role) → allowed: for docs and tests."""
    return {(endpoint, role): allowed(endpoint, role)
            for endpoint in PERMISSIONS for role in (*ROLES, ADMIN)}
