"""Who may create applications, and how many: APP_CREATORS and APPS_PER_USER on the
org service (real MariaDB and RabbitMQ), as a plain user reaching further and as an admin."""
import random
import uuid

import pytest

from services.org.service import OrgService
from shared.errors import Forbidden, QuotaExceeded, ReservedName


def person(is_admin=False):
    n = random.randint(10**8, 10**9)
    return {"id": n, "username": f"lim-{n}", "is_admin": is_admin}


def name():
    return f"lim-{uuid.uuid4().hex[:8]}"


def test_a_person_owns_at_most_apps_per_user_and_admins_are_exempt(serve, config):
    org = serve(OrgService, {**config, "APPS_PER_USER": 2})
    alice, admin = person(), person(is_admin=True)
    first = org.create_app({"name": name()}, alice)
    org.create_app({"name": name()}, alice)
    with pytest.raises(QuotaExceeded) as caught:
        org.create_app({"name": name()}, alice)
    assert caught.value.code == "quota_exceeded"
    assert {k: int(v) for k, v in caught.value.details.items()} == {"limit": 2, "owned": 2}
    # deleting one makes room again
    org.delete_app(first["name"], alice)
    org.create_app({"name": name()}, alice)
    for _ in range(3):
        org.create_app({"name": name()}, admin)


def test_app_creators_admins_leaves_creation_to_admins(serve, config):
    org = serve(OrgService, {**config, "APP_CREATORS": "admins"})
    with pytest.raises(Forbidden) as caught:
        org.create_app({"name": name()}, person())
    assert "Only platform admins" in caught.value.message
    assert org.create_app({"name": name()}, person(is_admin=True))["role"] == "owner"


def test_reserved_names_from_config_join_the_built_in_ones(serve, config):
    org = serve(OrgService, {**config, "RESERVED_NAMESPACES": ["vault", "monitoring"]})
    for reserved in ("vault", "monitoring", "kube-system", "default", "mae-system"):
        with pytest.raises(ReservedName):
            org.create_app({"name": reserved}, person(is_admin=True))  # admins too
