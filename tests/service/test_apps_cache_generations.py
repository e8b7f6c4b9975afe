"""org makes the gateway's per-user caches stale, on real MariaDB, Redis and RabbitMQ.

The gateway tags cached RBAC answers and ``GET /apps`` pages with generations
(``shared.keys``); these tests check that org bumps the right ones on every
change, and that without Redis a change is refused (503) and nothing changes.
"""
import uuid

import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import text

from services.org.service import OrgService
from shared.errors import Unavailable
from shared.keys import Keys
from tests.conftest import free_port

OWNER = {"id": 7101, "username": "gen-owner", "is_admin": False}
MEMBER_ID = 7102


@pytest.fixture
def org(serve, config):
    return serve(OrgService, config)


@pytest.fixture
def generations(config, redis_client):
    keys = Keys.from_config(config)

    def read():
        return {"apps": redis_client.get(keys.apps_generation),
                "owner": redis_client.get(keys.member_generation(OWNER["id"])),
                "member": redis_client.get(keys.member_generation(MEMBER_ID))}

    return read


def changed(before, after):
    return {name for name in before if before[name] != after[name]}


def test_each_change_bumps_the_generations_of_whom_it_concerns(org, generations):
    app = f"gen-{uuid.uuid4().hex[:8]}"
    steps = [
        (lambda: org.create_app({"name": app}, OWNER), {"apps"}),
        (lambda: org.update_app(app, {"display_name": "Renamed"}, OWNER), {"apps"}),
        (lambda: org.set_member(app, MEMBER_ID, "gen-member", "viewer", OWNER), {"member"}),
        (lambda: org.set_member(app, MEMBER_ID, "gen-member", "maintainer", OWNER), {"member"}),
        (lambda: org.remove_member(app, "gen-member", OWNER), {"member"}),
        (lambda: org.delete_app(app, OWNER), {"apps"}),
    ]
    for step, expected in steps:
        before = generations()
        step()
        assert changed(before, generations()) == expected


def test_reads_bump_nothing(org, generations):
    app = f"gen-{uuid.uuid4().hex[:8]}"
    org.create_app({"name": app}, OWNER)
    before = generations()
    org.list_apps(OWNER["id"])
    org.get_app(app, OWNER["id"])
    org.role_of(app, MEMBER_ID)
    assert generations() == before


def test_without_redis_a_change_is_refused_and_nothing_changes(container_factory, config, infra, db_engine, org):
    app = f"gen-{uuid.uuid4().hex[:8]}"
    org.create_app({"name": app}, OWNER)
    # A second org whose Redis is a port nobody listens on, on a vhost of its own.
    with socket_nobody_listens_on() as port:
        _, vhost_uri = infra.new_vhost("noredis-" + uuid.uuid4().hex[:4])
        broken = {**config, "AMQP_URI": vhost_uri, "REDIS_URL": f"redis://127.0.0.1:{port}/1",
                  "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}"}
        container_factory(OrgService, broken).start()
        with ServiceRpcProxy("org", broken) as cut_off:
            attempts = [
                lambda: cut_off.create_app({"name": app + "-x"}, OWNER),
                lambda: cut_off.update_app(app, {"display_name": "Never"}, OWNER),
                lambda: cut_off.set_member(app, MEMBER_ID, "gen-member", "viewer", OWNER),
                lambda: cut_off.delete_app(app, OWNER),
            ]
            for attempt in attempts:
                with pytest.raises(Unavailable):
                    attempt()
    with db_engine.connect() as conn:
        names = set(conn.execute(text("SELECT name FROM org_applications WHERE name LIKE :p"),
                                 {"p": app + "%"}).scalars())
        display = conn.execute(text("SELECT display_name FROM org_applications WHERE name = :n"),
                               {"n": app}).scalar()
        members = conn.execute(text("SELECT COUNT(*) FROM org_members m JOIN org_applications a "
                                    "ON a.id = m.app_id WHERE a.name = :n"), {"n": app}).scalar()
    assert names == {app}
    assert display == app
    assert members == 1  # the owner alone


class socket_nobody_listens_on:
    """A port that refuses connections: bound, never listening."""

    def __enter__(self):
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    def __exit__(self, *exc):
        self.sock.close()

