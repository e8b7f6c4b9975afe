"""Rotating a cluster's credentials and report token without registering it again, and
``cluster.unreachable`` once per outage — the cluster service on real MariaDB/Redis/RabbitMQ,
two replicas, against a sandbox cluster (its API server checks the token)."""
import json

import pytest
from nameko.dependency_providers import Config
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import text

from sandbox.testing import start_sandbox
from services.cluster.service import ClusterService
from shared.errors import Invalid, NotFound, Unauthorized
from shared.events import handle_event
from shared.redis import Redis
from tests.service.test_ingest_reports import CA, registered, report
from tests.service.test_server import run_on
from tests.waiting import poller

__all__ = ["registered"]  # a fixture used by name: a cluster row whose credentials no longer work
wait_for = poller(timeout=20.0, interval=0.1)
OVERLAP = 2.0


class UnreachableListener:
    name = "unreachable_listener"
    redis = Redis()
    config = Config()

    @handle_event("cluster", "unreachable")
    def on_unreachable(self, event):
        self.redis.rpush(f"{self.config['REDIS_PREFIX']}:test:unreachable", json.dumps(event))


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with start_sandbox("rotation", tmp_path_factory.mktemp("rotation-sandbox"), ready_delay=0.2) as sb:
        yield sb


@pytest.fixture
def replicas(container_factory, config):
    settings = {**config, "REPORT_TOKEN_OVERLAP_SECONDS": OVERLAP, "CLUSTER_UNREACHABLE_SECONDS": 0,
                "NAMESPACE_HEAL_SECONDS": 0}
    container_factory(UnreachableListener, config).start()
    started = [container_factory(ClusterService, settings) for _ in range(2)]
    for container in started:
        container.start()
    return started


def row(db_engine, name):
    with db_engine.connect() as conn:
        return conn.execute(text("SELECT server, token_sealed, credentials_generation, reachable "
                                 "FROM cluster_clusters WHERE name = :n"), {"n": name}).one()


def test_credentials_are_checked_against_the_cluster_before_they_replace_the_old_ones(
        replicas, config, registered, sandbox, db_engine):
    name, _ = registered
    with ServiceRpcProxy("cluster", config) as cluster:
        assert cluster.reconcile(name)["reachable"] is False          # the stored ones fail
        before = row(db_engine, name)
        refusals = [
            ({"server": sandbox.url, "ca_cert": sandbox.ca_pem, "token": "not-the-token"}, "Unauthorized"),
            ({"server": sandbox.url, "ca_cert": CA, "token": sandbox.token}, None),      # a CA that is not its
            ({"server": "http://" + sandbox.url[8:], "token": sandbox.token}, "server"),  # not https
            ({"server": sandbox.url, "ca_cert": sandbox.ca_pem}, "token"),
            ({"server": sandbox.url, "ca_cert": sandbox.ca_pem, "token": sandbox.token, "env": "prod"}, "env"),
        ]
        for body, why in refusals:
            with pytest.raises(Invalid) as refused:
                cluster.rotate_credentials(name, body, {"username": "root"})
            if why:
                assert why in str(refused.value) or refused.value.details.get("field") == why, refused.value
            assert row(db_engine, name) == before                       # the old ones kept
        with pytest.raises(NotFound):
            cluster.rotate_credentials("no-such-cluster", {"token": sandbox.token})

        answer = cluster.rotate_credentials(
            name, {"server": sandbox.url + "/", "ca_cert": sandbox.ca_pem, "token": sandbox.token},
            {"username": "root"}, "192.0.2.9")
        assert answer["server"] == sandbox.url and answer["credentials_generation"] == 2
        assert answer["version"] and "token" not in json.dumps(answer).replace("report_token", "")
        after = row(db_engine, name)
        assert after.credentials_generation == 2 and after.token_sealed != before.token_sealed
        assert sandbox.token not in after.token_sealed                 # sealed at rest
        # every replica builds its client anew from the new credentials: all of them reach it
        for replica in replicas:
            assert run_on(replica, "reconcile", name)["reachable"] is True
        assert cluster.get_cluster(name)["reachable"] is True


def test_a_rotated_report_token_takes_over_and_the_old_one_works_ten_minutes(
        replicas, config, registered):
    import time

    name, first = registered
    with ServiceRpcProxy("cluster", config) as cluster:
        assert cluster.ingest_reports(name, first, [report("web", 1)])["accepted"] == 1
        rotated = cluster.rotate_report_token(name, {"username": "root"})
        second = rotated["report_token"]
        assert second.startswith("mae_r_") and second != first and rotated["previous_valid_until"]
        # both work during the overlap
        assert cluster.ingest_reports(name, second, [report("web", 2)])["accepted"] == 1
        assert cluster.ingest_reports(name, first, [report("web", 3)])["accepted"] == 1
        time.sleep(OVERLAP + 0.5)
        with pytest.raises(Unauthorized):
            cluster.ingest_reports(name, first, [report("web", 4)])
        assert cluster.ingest_reports(name, second, [report("web", 5)])["accepted"] == 1
        # rotating again ends the oldest at once; the one just replaced has its own overlap
        third = cluster.rotate_report_token(name)["report_token"]
        with pytest.raises(Unauthorized):
            cluster.ingest_reports(name, first, [report("web", 6)])
        assert cluster.ingest_reports(name, second, [report("web", 7)])["accepted"] == 1
        assert cluster.ingest_reports(name, third, [report("web", 8)])["accepted"] == 1
        with pytest.raises(NotFound):
            cluster.rotate_report_token("no-such-cluster")


def test_an_unreachable_cluster_is_announced_once_per_outage_across_replicas(
        replicas, config, registered, tmp_path, heard_on):
    import eventlet

    heard = heard_on("unreachable")
    name, _ = registered

    def tend_everywhere():
        threads = [eventlet.spawn(run_on, r, "tend") for r in replicas for _ in range(3)]
        for thread in threads:
            thread.wait()

    def mine():
        return [e for e in heard() if e["data"]["cluster"] == name]

    tend_everywhere()
    tend_everywhere()
    events = wait_for(mine, lambda found: len(found) >= 1)
    eventlet.sleep(0.5)
    events = mine()
    assert len(events) == 1, events
    data = events[0]["data"]
    assert events[0]["type"] == "cluster.unreachable"
    assert (data["env"], data["server"]) == ("test", "https://127.0.0.1:9") and data["since"] and data["error"]

    # it comes back (new credentials, a cluster that answers), then goes away again: a new outage
    with start_sandbox("comeback", tmp_path / "sb", ready_delay=0.2) as sb:
        with ServiceRpcProxy("cluster", config) as cluster:
            cluster.rotate_credentials(name, {"server": sb.url, "ca_cert": sb.ca_pem, "token": sb.token})
        tend_everywhere()
        assert len(mine()) == 1
    tend_everywhere()
    tend_everywhere()
    wait_for(mine, lambda found: len(found) == 2)
    eventlet.sleep(0.5)
    assert len(mine()) == 2
