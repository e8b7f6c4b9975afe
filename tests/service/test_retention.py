"""Retention (shared/retention.py, services/*/retention.py): rows older than ``RETENTION_DAYS``
are trimmed in batches by one replica at a time; newer rows, and rows that are still work,
stay. The services run on a database of this module's own (the timer trims whole tables),
with a clock standing at ``NOW`` (shared/clock.py), and each trim is run through the
timer's entrypoint.
"""
from datetime import datetime, timedelta

import eventlet
import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_hook, replace_dependencies
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.auth.service import AuthService
from services.cluster.service import ClusterService
from services.deploy.domain.records import rollback_source
from services.deploy.models import CIBuild, CILink, LogLine, Record, Target
from services.deploy.service import DeployService
from services.notify.service import NotifyService
from services.org.service import OrgService
from services.server.service import ServerService
from shared.clock import FixedClock
from shared.errors import Conflict
from tests.conftest import free_port
from tests.private_mariadb import own_database

NOW = datetime(2031, 1, 15, 12, 0)
OLD, NEW = NOW - timedelta(days=400), NOW - timedelta(days=2)   # beyond / within every window
DAYS = {"log_lines": 30, "manifests": 180, "builds": 90, "reports": 30, "audit": 365, "deliveries": 30,
        "sessions": 7, "processed_events": 14}


@pytest.fixture(scope="module")
def own_db(infra):
    with own_database(infra, "retention") as db:
        yield db


@pytest.fixture(scope="module")
def own_vhost(infra):
    """A vhost of the module's own too: events other tests left in the run's queues would
    otherwise be handled here, and their processed-event rows and log lines (older than
    NOW) trimmed along with the seeded ones."""
    return infra.new_vhost("retention")[1]


@pytest.fixture
def replicas(container_factory, config, own_db, own_vhost):
    """``replicas(Service, n, **settings)``: n containers on the module's database, clock at NOW."""
    def start(service_cls, n=1, **settings):
        started = []
        for _ in range(n):
            container = container_factory(service_cls, {
                **config, "DB_URL": own_db[0], "AMQP_URI": own_vhost, "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
                "RETENTION_DAYS": DAYS, "RETENTION_BATCH": 1000, "RETENTION_PAUSE_SECONDS": 0.0, **settings})
            replace_dependencies(container, clock=FixedClock(NOW))
            container.start()
            started.append(container)
        return started
    return start


def trim(container) -> dict:
    with entrypoint_hook(container, "trim_old_rows") as run:
        return run()


def count(engine, sql, **params) -> int:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def seed_processed_events(engine, service):
    with engine.begin() as conn:
        conn.execute(text(f"DELETE FROM {service}_processed_events"))
        conn.execute(text(f"INSERT INTO {service}_processed_events (event_id, event_type, processed_at) "
                          "VALUES ('old', 'x', :old), ('new', 'x', :new)"), {"old": OLD, "new": NEW})


@pytest.mark.parametrize("service_cls", [AuthService, OrgService, ServerService, NotifyService, ClusterService],
                         ids=lambda cls: cls.name)
def test_every_service_trims_its_processed_events(replicas, own_db, service_cls):
    engine = own_db[1]
    seed_processed_events(engine, service_cls.name)
    [replica] = replicas(service_cls)
    answer = trim(replica)
    assert answer["trimmed"][f"{service_cls.name}_processed_events"] == {"rows": 1, "batches": 1}
    assert count(engine, f"SELECT GROUP_CONCAT(event_id) FROM {service_cls.name}_processed_events") == "new"


def deploy_rows(session: Session, app: str, old_lines: int) -> dict:
    """Records of ``app``: ``old`` (its object superseded by ``newer``), ``newer``, ``recent``."""
    ids = {}
    for key, finished in (("old", OLD), ("newer", OLD + timedelta(days=1)), ("recent", NEW)):
        record = Record(app=app, action="deploy", subject="version", service="web", version=key,
                        status="succeeded", created_at=finished, finished_at=finished)
        session.add(record)
        session.flush()
        # old and newer are the same Deployment on c1; recent is another one
        session.add(Target(record_id=record.id, cluster="c1", env="test", namespace=app,
                           object_name="web-v1" if key != "recent" else "web-v2", manifests=[{"kind": "Deployment"}],
                           status="succeeded", replicas={}, finished_at=finished))
        ids[key] = record.id
    session.add_all(LogLine(line_id=f"{app}:old:{i}", record_id=ids["old"], time=OLD, line=f"old {i}")
                    for i in range(old_lines))
    session.add_all(LogLine(line_id=f"{app}:recent:{i}", record_id=ids["recent"], time=NEW, line=f"recent {i}")
                    for i in range(3))
    link = CILink(app=app, service="web", provider="drone", server="https://ci", repo=f"o/{app}", image="img",
                  token_sealed="x", webhook_secret_sealed="x")
    session.add(link)
    session.flush()
    session.add_all([CIBuild(link_id=link.id, number=1, status="success", event="push", ref="main", created_at=OLD),
                     CIBuild(link_id=link.id, number=2, status="success", event="push", ref="main", created_at=NEW)])
    session.commit()
    return ids


def test_deploy_trims_in_batches_one_replica_at_a_time_and_keeps_records(replicas, own_db, config, own_vhost):
    engine = own_db[1]
    with Session(engine) as session:
        ids = deploy_rows(session, "shop", old_lines=2500)
    # A pause between batches makes a run last long enough for the second replica to try meanwhile.
    first, second = replicas(DeployService, 2, RETENTION_PAUSE_SECONDS=0.4)
    runs = [eventlet.spawn(trim, first), eventlet.spawn(trim, second)]
    answers = [run.wait() for run in runs]
    trimmed = [a for a in answers if "trimmed" in a]
    skipped = [a for a in answers if "skipped" in a]
    assert len(trimmed) == 1 and len(skipped) == 1, answers          # never both at once
    done = trimmed[0]["trimmed"]
    assert done["deploy_log_lines"] == {"rows": 2500, "batches": 3}   # 1000 + 1000 + 500
    assert done["deploy_targets.manifests"]["rows"] == 1
    assert done["deploy_ci_builds"] == {"rows": 1, "batches": 1}

    # The records and their targets stay; the newer lines, builds and manifests too.
    assert count(engine, "SELECT COUNT(*) FROM deploy_records WHERE app = 'shop'") == 3
    assert count(engine, "SELECT COUNT(*) FROM deploy_log_lines WHERE record_id = :r", r=ids["recent"]) == 3
    assert count(engine, "SELECT COUNT(*) FROM deploy_ci_builds") == 1
    with engine.connect() as conn:
        manifests = dict(conn.execute(text("SELECT record_id, manifests IS NULL FROM deploy_targets "
                                           "WHERE record_id BETWEEN :a AND :b"),
                                      {"a": ids["old"], "b": ids["recent"]}).all())
    # only the superseded one: the newest of each object stays (restart, scale, routing read it)
    assert manifests == {ids["old"]: 1, ids["newer"]: 0, ids["recent"]: 0}

    # The trimmed record's log answers with a note, not an error.
    with ServiceRpcProxy("deploy", {**config, "AMQP_URI": own_vhost}) as deploy:
        log = deploy.record_logs(ids["old"])
    assert [item["line"] for item in log["items"]] == [
        "Earlier lines of this log were removed: deploy logs are kept 30 days."]
    # Rolling back to it is refused clearly.
    with Session(engine) as session, pytest.raises(Conflict) as refused:
        rollback_source(session, ids["old"])
    assert refused.value.details["reason"] == "manifests_trimmed"

    # The next run has nothing left to trim but keeps the note (it is not noted again).
    again = trim(first)["trimmed"]
    assert again["deploy_log_lines"] == {"rows": 0, "batches": 1}
    assert count(engine, "SELECT COUNT(*) FROM deploy_log_lines WHERE record_id = :r", r=ids["old"]) == 1


def test_a_replica_holding_the_lease_keeps_the_others_out_until_it_is_done(replicas, own_db):
    from shared.db_lease import Lease

    engine = own_db[1]
    seed_processed_events(engine, "org")
    [replica] = replicas(OrgService)
    other = Lease(engine, "org", "retention", "another-replica")
    assert other.take(60)
    assert trim(replica) == {"skipped": "another-replica"}
    assert count(engine, "SELECT COUNT(*) FROM org_processed_events") == 2        # nothing touched
    other.give_up()
    assert "trimmed" in trim(replica)
    assert count(engine, "SELECT COUNT(*) FROM org_processed_events") == 1


def test_auth_trims_old_audit_and_ended_sessions_but_keeps_personal_tokens(replicas, own_db):
    engine = own_db[1]
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM auth_audit"))
        conn.execute(text("INSERT INTO auth_audit (actor, action, target, details, source_ip, created_at) "
                          "VALUES ('a', 'x', '', '{}', '', :old), ('a', 'y', '', '{}', '', :new)"),
                     {"old": OLD, "new": NEW})
        conn.execute(text("INSERT INTO auth_users (username, username_key, display_name, email, is_admin, "
                          "created_at, updated_at) VALUES ('ret', 'ret', '', '', 0, :new, :new)"), {"new": NEW})
        user = conn.execute(text("SELECT id FROM auth_users WHERE username = 'ret'")).scalar()
        rows = [("session", "expired-long-ago", OLD, None), ("session", "logged-out-long-ago", None, OLD),
                ("session", "live", NOW + timedelta(hours=1), None), ("session", "just-expired", NEW, None),
                ("personal", "old-personal", OLD, None)]
        for kind, name, expires, revoked in rows:
            conn.execute(text("INSERT INTO auth_tokens (user_id, kind, name, token_hash, prefix, created_at, "
                              "expires_at, revoked_at) VALUES (:u, :k, :n, :h, 'p', :old, :e, :r)"),
                         {"u": user, "k": kind, "n": name, "h": name.ljust(64, "0"), "old": OLD, "e": expires,
                          "r": revoked})
    [replica] = replicas(AuthService)
    done = trim(replica)["trimmed"]
    assert done["auth_audit"]["rows"] == 1 and done["auth_tokens.expired"]["rows"] == 1
    assert done["auth_tokens.revoked"]["rows"] == 1
    with engine.connect() as conn:
        names = sorted(conn.execute(text("SELECT name FROM auth_tokens WHERE user_id = :u"), {"u": user}).scalars())
        audit = list(conn.execute(text("SELECT action FROM auth_audit")).scalars())
    assert names == ["just-expired", "live", "old-personal"] and audit == ["y"]


def test_notify_and_cluster_trim_what_is_over_and_keep_what_is_still_work(replicas, own_db):
    engine = own_db[1]
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO notify_channels (app, name, type, url, events, enabled, created_at) "
                          "VALUES ('shop', 'c', 'webhook', 'x', '[]', 1, :old)"), {"old": OLD})
        channel = conn.execute(text("SELECT MAX(id) FROM notify_channels")).scalar()
        for event_id, status, created in (("d-old", "delivered", OLD), ("f-old", "failed", OLD),
                                          ("p-old", "pending", OLD), ("d-new", "delivered", NEW)):
            conn.execute(text("INSERT INTO notify_deliveries (channel_id, app, event_id, event, payload, status, "
                              "attempts, created_at, updated_at) VALUES (:c, 'shop', :e, 'deploy.failed', '{}', "
                              ":s, 0, :t, :t)"), {"c": channel, "e": event_id, "s": status, "t": created})
        for name, published, received in (("gone", 1, OLD), ("unannounced", 0, OLD), ("live", 1, NEW)):
            conn.execute(text("INSERT INTO cluster_reports (cluster, namespace, kind, name, uid, resource_version, "
                              "version_key, report, published, received_at) VALUES ('c1', 'shop', 'Deployment', "
                              ":n, 'u', 1, '', '{}', :p, :t)"), {"n": name, "p": published, "t": received})
    [notify] = replicas(NotifyService)
    [cluster] = replicas(ClusterService)
    assert trim(notify)["trimmed"]["notify_deliveries"]["rows"] == 2
    assert trim(cluster)["trimmed"]["cluster_reports"]["rows"] == 1
    with engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT event_id FROM notify_deliveries")).scalars()) == ["d-new", "p-old"]
        assert sorted(conn.execute(text("SELECT name FROM cluster_reports")).scalars()) == ["live", "unannounced"]
