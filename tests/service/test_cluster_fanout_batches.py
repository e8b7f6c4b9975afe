"""A cluster gets every app's namespace in one reconcile, however many apps there are.

The cluster service enacts its namespace rows a batch at a time (``namespaces.BATCH``, 5,000);
it used to stop after the first batch, so a cluster registered when 10,000 apps existed got the
other 5,000 namespaces only at a later tend. Here the batch is 3 rows and 7 apps wait: one
``reconcile`` leaves all 7 namespaces (with their quotas) on a sandbox cluster.
"""
import uuid

import pytest
from kubernetes import client as k8s
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.cluster.domain import namespaces, registry
from services.cluster.service import ClusterService
from shared.secretbox import SecretBox
from tests.conftest import free_port
from tests.service.test_cluster_rotation import sandbox

__all__ = ["sandbox"]  # a fixture used by name: a sandbox cluster for this module

APPS = 7


@pytest.fixture
def cluster(sandbox, config, db_engine):
    """A registered cluster that should have ``APPS`` namespaces, none made yet: (name, namespaces)."""
    name, prefix = f"fb-{uuid.uuid4().hex[:6]}", f"fb{uuid.uuid4().hex[:6]}"
    wanted = [f"{prefix}-{i}" for i in range(APPS)]
    with Session(db_engine) as session:
        registry.create(session, SecretBox.from_config(config),
                        {"name": name, "env": "test", "server": sandbox.url, "ca_cert": sandbox.ca_pem,
                         "token": sandbox.token})
        namespaces.want_on_cluster(session, name, [(900_000 + i, ns) for i, ns in enumerate(wanted)])
        session.commit()
    yield name, wanted
    with Session(db_engine) as session:
        registry.remove(session, registry.get(session, name))
        session.commit()


def test_one_reconcile_enacts_every_batch_of_namespaces(container_factory, config, db_engine, sandbox, cluster,
                                                        monkeypatch):
    name, wanted = cluster
    monkeypatch.setattr(namespaces, "BATCH", 3)
    container_factory(ClusterService, {**config, "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}"}).start()

    with ServiceRpcProxy("cluster", config) as rpc:
        result = rpc.reconcile(name)

    assert result["reachable"] and result["failed"] == 0
    core = k8s.CoreV1Api(sandbox.api_client())
    present = {ns.metadata.name for ns in core.list_namespace().items}
    assert set(wanted) <= present, f"missing after one reconcile: {sorted(set(wanted) - present)}"
    quotas = {q.metadata.namespace for q in core.list_resource_quota_for_all_namespaces().items}
    assert set(wanted) <= quotas
    with db_engine.connect() as conn:
        states = dict(conn.execute(text("SELECT namespace, state FROM cluster_namespaces WHERE cluster = :c"),
                                   {"c": name}).all())
    assert states == {ns: "ok" for ns in wanted}
