"""The cluster service holds no database transaction while it waits for Kubernetes.

A deploy's apply may wait seconds for an API server (or its timeout). A transaction kept open
meanwhile pins a connection of the pool and an InnoDB read view (purge waits, row locks
stay) for that long. Here the sandbox's API server is reached through a proxy that holds
every request for a few seconds; while an apply waits there, ``information_schema.innodb_trx``
shows no transaction of a connection to this run's database that is older than a second,
and the apply still completes (the ConfigMap is on the cluster).
"""
import time
import uuid

import pytest
from kubernetes import client as k8s
from nameko.standalone.events import event_dispatcher
from sqlalchemy import text
from sqlalchemy.orm import Session

from sandbox.testing import start_sandbox
from services.cluster.domain import registry
from services.cluster.service import ClusterService
from services.deploy import schemas as deploy_schemas
from shared.events import envelope
from shared.secretbox import SecretBox
from tests.conftest import free_port
from tests.tcp_proxy import Proxy
from tests.waiting import waiter

DELAY = 3.0
wait_for = waiter(timeout=30.0, interval=0.05)


class SlowProxy(Proxy):
    """A TCP proxy that, while ``delay`` is set, holds each chunk a client sends for that long;
    ``held`` counts the chunks being held now."""

    def __init__(self, target_port: int):
        self.delay, self.held = 0.0, 0
        super().__init__(target_port)

    def _pump(self, src, dst):
        # the client's side is the one whose peer is not the server
        Proxy._pump(_Held(src, self) if src.getpeername() != self.target else src, dst)


class _Held:
    """A client socket whose every chunk the proxy holds for ``proxy.delay`` first."""

    def __init__(self, sock, proxy: SlowProxy):
        self.sock, self.proxy = sock, proxy

    def recv(self, size: int) -> bytes:
        data = self.sock.recv(size)
        if data and self.proxy.delay:
            self.proxy.held += 1
            time.sleep(self.proxy.delay)
            self.proxy.held -= 1
        return data

    def shutdown(self, how) -> None:
        self.sock.shutdown(how)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with start_sandbox("slowapi", tmp_path_factory.mktemp("slow-sandbox"), ready_delay=0.2) as sb:
        yield sb


@pytest.fixture
def slow_cluster(sandbox, config, db_engine):
    """A cluster registered at the sandbox's address behind a ``SlowProxy``: (name, proxy)."""
    proxy = SlowProxy(int(sandbox.url.rsplit(":", 1)[1]))
    name = f"slow-{uuid.uuid4().hex[:6]}"
    with Session(db_engine) as session:
        registry.create(session, SecretBox.from_config(config),
                        {"name": name, "env": "test", "server": f"https://127.0.0.1:{proxy.port}",
                         "ca_cert": sandbox.ca_pem, "token": sandbox.token})
        session.commit()
    yield name, proxy
    proxy.cut()
    with Session(db_engine) as session:
        registry.remove(session, registry.get(session, name))
        session.commit()


def old_transactions(db_engine, database: str) -> list:
    """InnoDB transactions open for more than a second on connections to ``database``."""
    with db_engine.connect() as conn:
        return list(conn.execute(text(
            "SELECT t.trx_id, t.trx_started, p.id, p.info FROM information_schema.innodb_trx t "
            "JOIN information_schema.processlist p ON p.id = t.trx_mysql_thread_id "
            "WHERE p.db = :db AND p.id <> CONNECTION_ID() "
            "AND t.trx_started < NOW() - INTERVAL 1 SECOND"), {"db": database}))


def test_no_transaction_is_open_while_an_apply_waits_for_the_api_server(
        container_factory, config, infra, db_engine, sandbox, slow_cluster):
    name, proxy = slow_cluster
    namespace = f"slow-{uuid.uuid4().hex[:6]}"
    core = k8s.CoreV1Api(sandbox.api_client())
    core.create_namespace({"metadata": {"name": namespace}})
    container_factory(ClusterService, {**config, "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}"}).start()

    proxy.delay = DELAY
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": namespace},
                 "data": {"greeting": "hello"}}
    data = deploy_schemas.apply_requested(4242, name, 1, namespace, "apply", [configmap])
    event_dispatcher(config)("deploy", "apply_requested", envelope("deploy", "apply_requested", data))

    wait_for(lambda: proxy.held > 0, what="the apply to reach the API server")
    watched_until = time.monotonic() + DELAY * 1.5
    seen, waiting = [], []
    while time.monotonic() < watched_until:
        seen += old_transactions(db_engine, infra.database)
        waiting.append(proxy.held > 0)
        time.sleep(0.1)
    assert sum(waiting) > len(waiting) / 2, "the apply was not waiting for the API server meanwhile"
    assert seen == [], f"transactions held open across a Kubernetes call: {seen[:3]}"

    proxy.delay = 0.0
    stored = wait_for(lambda: {c.metadata.name: c.data for c in
                               core.list_namespaced_config_map(namespace).items}.get("settings"),
                      what="the ConfigMap to be applied")
    assert stored == {"greeting": "hello"}
