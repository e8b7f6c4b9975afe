"""A database that refuses connections is a 503 at the gateway, and the connection budget is
checked when a service starts (shared/db.py; docs/architecture.md, "Database budget").

The org service runs against a MariaDB server of this test's own (``tests/private_mariadb``,
``max_connections`` 10), so filling it up — or changing its global limits — disturbs nobody
else. The three refusals MariaDB has for a new connection are tested for real, through the gateway:

* error 1040, "Too many connections": the server's ``max_connections`` is used up;
* error 1226, the account's ``MAX_USER_CONNECTIONS`` (GRANT ... WITH MAX_USER_CONNECTIONS 1);
* error 1203, the server-wide ``max_user_connections`` (SET GLOBAL, for that test only).

The service's pooled connection is killed on the server first (as a restart or a network
cut would), so its next request must open a new one — which the full server refuses.
"""
import logging

import pymysql
import pytest
import requests
from nameko.standalone.rpc import ServiceRpcProxy

from gateway.service import GatewayService
from services.auth.service import AuthService
from services.org.service import OrgService
from shared.db import BudgetExceeded, check_budget
from shared.migrate import upgrade
from tests.conftest import free_port
from tests.private_mariadb import private_mariadb, sql
from tests.waiting import waiter

wait_for = waiter(timeout=10.0, interval=0.05)

DATABASE = "mae_refusals"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with private_mariadb(tmp_path_factory.mktemp("private-mariadb"), max_connections=10,
                         max_user_connections=100) as port:
        sql(port, f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
            "CREATE USER 'svc'@'%' IDENTIFIED BY 'svc'", f"GRANT ALL ON {DATABASE}.* TO 'svc'@'%'",
            "CREATE USER 'lim'@'%' IDENTIFIED BY 'lim'",
            f"GRANT ALL ON {DATABASE}.* TO 'lim'@'%' WITH MAX_USER_CONNECTIONS 1",
            "CREATE USER 'filler'@'%' IDENTIFIED BY 'filler'",
            "CREATE USER 'glob'@'%' IDENTIFIED BY 'glob'", f"GRANT ALL ON {DATABASE}.* TO 'glob'@'%'")
        upgrade(url(port, "root", ""))
        yield port


def url(port, user, password):
    return f"mysql+pymysql://{user}:{password}@127.0.0.1:{port}/{DATABASE}?charset=utf8mb4"


@pytest.fixture
def gateway(container_factory, config):
    container_factory(AuthService, own_port(config)).start()
    address = f"127.0.0.1:{free_port()}"
    container_factory(GatewayService, {**config, "WEB_SERVER_ADDRESS": address}).start()
    with ServiceRpcProxy("auth", config) as auth:
        token = auth.issue_bootstrap_token(rotate=True)["token"]
    base = f"http://{address}/api/v1"
    return lambda path: requests.get(base + path, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def own_port(config):
    """Every container of the test serves /healthz on an address of its own."""
    return {**config, "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}"}


def kill_connections_of(port, user):
    """Kill ``user``'s connections and wait until the server has let them go."""
    query = f"SELECT id FROM information_schema.processlist WHERE user = '{user}'"
    for (conn_id,) in sql(port, query):
        try:
            sql(port, f"KILL {conn_id}")
        except pymysql.err.OperationalError:
            pass  # gone already
    wait_for(lambda: not sql(port, query), what=f"{user}'s connections to close")


def fill_up(port, user, password) -> tuple[list, int]:
    """Connections as ``user`` until the server refuses one: (the open ones, the error code)."""
    held = []
    while len(held) < 50:
        try:
            held.append(pymysql.connect(host="127.0.0.1", port=port, user=user, password=password))
        except pymysql.err.OperationalError as exc:
            return held, exc.args[0]
    raise AssertionError("the server never refused a connection")


@pytest.mark.parametrize("user,filler,code", [("svc", "filler", 1040), ("lim", "lim", 1226), ("glob", "glob", 1203)],
                         ids=["1040-too-many-connections", "1226-max-user-connections",
                              "1203-server-wide-max-user-connections"])
def test_a_database_that_refuses_connections_is_503_at_the_gateway_not_500(
        container_factory, config, server, gateway, user, filler, code):
    # (the outbox relay, which reads the database every few seconds, would take the freed slot)
    container_factory(OrgService, {**own_port(config), "DB_URL": url(server, user, user),
                                   "OUTBOX_RELAY_SECONDS": 3600}).start()
    assert gateway("/apps/not-there-1").status_code == 404          # the database answers

    if code == 1203:  # the server-wide limit for accounts without their own (this server is private)
        sql(server, "SET GLOBAL max_user_connections = 2")
    kill_connections_of(server, user)
    held, refused_with = fill_up(server, filler, filler)
    try:
        assert refused_with == code and held  # the test holds the connections the service needs
        answer = gateway("/apps/not-there-2")  # (each name once: the gateway caches answers)
        assert answer.status_code == 503, answer.text
        body = answer.json()["error"]
        assert body["code"] == "unavailable" and body["details"] == {"dependency": "database"}
    finally:
        for conn in held:
            conn.close()
        if code == 1203:
            sql(server, "SET GLOBAL max_user_connections = 100")
    assert gateway("/apps/not-there-3").status_code == 404          # and works again once it has room


def test_the_budget_is_checked_at_start_a_warning_or_in_production_a_refusal(
        container_factory, config, server, caplog):
    private = {**own_port(config), "DB_URL": url(server, "svc", "svc"), "DB_BUDGET_PROCESSES": 6}
    with caplog.at_level(logging.WARNING, logger="shared.db"):
        container_factory(OrgService, private).start()
    [warning] = [r for r in caplog.records if "budget exceeded" in r.getMessage()]
    # 6 processes x (pool 10 + overflow 4) = 84 > 8 (max_connections 10 less 20 % headroom)
    assert "6 processes" in warning.getMessage() and "= 84" in warning.getMessage()
    assert "max_connections is 10" in warning.getMessage()

    with pytest.raises(BudgetExceeded) as refused:
        container_factory(OrgService, {**own_port(config), **private, "DB_BUDGET_ENFORCE": True}).start()
    assert "Raise the database's max_connections" in str(refused.value)


def test_a_budget_that_fits_passes_quietly(config, db_engine, caplog):
    with caplog.at_level(logging.WARNING, logger="shared.db"):
        verdict = check_budget(db_engine, {**config, "DB_BUDGET_PROCESSES": 2, "DB_BUDGET_ENFORCE": True},
                               "org", 14)
    assert verdict["needed"] == 28 and verdict["needed"] <= verdict["allowed"]
    assert verdict["max_connections"] >= 36
    assert not [r for r in caplog.records if "budget" in r.getMessage()]
