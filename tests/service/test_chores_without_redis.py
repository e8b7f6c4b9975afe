"""The periodic chores — the deploy service's sweep, the cluster service's tend — go on
while Redis is away: which replica does one is decided by a lease row in the database
(shared/db_lease.py), not a Redis lock. Two replicas of each run with a ``REDIS_URL``
nothing answers on; the stand-ins that watch what they do use the real Redis."""
from __future__ import annotations

import eventlet
from sqlalchemy import text

from services.cluster.service import ClusterService
from services.deploy.service import DeployService
from tests.conftest import free_port
from tests.service.test_cluster_rotation import UnreachableListener
from tests.service.test_deploy_service import ACTOR, CLUSTERS, ClusterSide, OrgSide, app_with_version
from tests.service.test_ingest_reports import registered
from tests.service.test_server import run_on
from tests.waiting import poller

__all__ = ["registered"]  # a fixture, used by name
wait_for = poller(timeout=30.0, interval=0.1)


def without_redis(config: dict) -> dict:
    return {**config, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}


def lease_rows(db_engine, table: str, name: str) -> list:
    with db_engine.connect() as conn:
        return conn.execute(text(f"SELECT holder, until FROM {table} WHERE name = :n"), {"n": name}).all()


def test_the_deploy_sweep_gives_up_an_unanswered_apply_while_redis_is_away(
        serve, container_factory, config, redis_client, db_engine):
    settings = {**config, "DEPLOY_SWEEP_SECONDS": 0.5, "DEPLOY_APPLY_TIMEOUT_SECONDS": 1,
                "DEPLOY_APPLY_ATTEMPTS": 3}
    deploy = serve(DeployService, without_redis(settings), replicas=2)
    container_factory(ClusterSide, settings).start()   # hears the apply requests (real Redis)
    container_factory(OrgSide, settings).start()
    prefix = settings["REDIS_PREFIX"]

    app = app_with_version(deploy)
    record_id = deploy.deploy_version(app, "web", "v1", CLUSTERS[:1], ACTOR)["record_id"]
    # Nobody answers: the sweep asks again (attempts 2 and 3, once each across both
    # replicas), then gives the target up — all of it with Redis unreachable.
    record = wait_for(lambda: deploy.get_record(record_id), lambda r: r["status"] == "failed")
    assert "did not answer after 3 attempts" in record["targets"][0]["reason"]
    asked = redis_client.lrange(f"{prefix}:test:apply:{record_id}", 0, -1)
    assert asked == [f"{record_id}:test-1:{n}" for n in (1, 2, 3)]
    assert lease_rows(db_engine, "deploy_leases", "deploy-sweep")


def test_the_cluster_tend_probes_and_announces_an_unreachable_cluster_while_redis_is_away(
        container_factory, config, registered, heard_on, db_engine):
    heard = heard_on("unreachable")
    name, _ = registered
    container_factory(UnreachableListener, config).start()
    settings = {**without_redis(config), "CLUSTER_UNREACHABLE_SECONDS": 0, "NAMESPACE_HEAL_SECONDS": 1}
    replicas = [container_factory(ClusterService, settings) for _ in range(2)]
    for replica in replicas:
        replica.start()

    for _ in range(2):  # each replica's timer firing at once, a few times over
        threads = [eventlet.spawn(run_on, r, "tend") for r in replicas for _ in range(3)]
        for thread in threads:
            thread.wait()
    events = wait_for(lambda: [e for e in heard() if e["data"]["cluster"] == name], lambda found: found)
    eventlet.sleep(0.5)
    assert len([e for e in heard() if e["data"]["cluster"] == name]) == 1, events
    with db_engine.connect() as conn:
        reachable, error = conn.execute(text("SELECT reachable, probe_error FROM cluster_clusters WHERE name = :n"),
                                        {"n": name}).one()
    assert not reachable and error
    assert lease_rows(db_engine, "cluster_leases", f"cluster-tend:{name}")
