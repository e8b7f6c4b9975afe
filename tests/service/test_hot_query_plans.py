"""Every hot read runs from an index: the statements the domain functions really send, on a
database of this module's own filled like a busy installation (10,000 apps, 200 users,
40,000 records, 200,000 log lines, straight from MariaDB's sequence engine), are EXPLAINed.
A plan that reads the whole table, or sorts an app's whole history to show one page,
fails here before it slows down production (migrations 0028-0033 added what was missing).
"""
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from services.auth.domain import accounts, sessions
from services.auth.models import AuditEntry
from services.deploy.domain.records import logstore, views
from services.notify.models import Delivery
from services.org.models import Application, Member
from shared.paging import page
from tests.private_mariadb import own_database

SEED = [
    "INSERT INTO org_applications (name, display_name, description, created_by, created_at, updated_at) "
    "SELECT CONCAT('app-', seq), '', '', 'x', NOW(), NOW() FROM seq_1_to_10000",
    "INSERT INTO org_members (app_id, user_id, username, role, created_at) "
    "SELECT id, 1 + (id % 200), 'u', 'owner', NOW() FROM org_applications",
    "INSERT INTO deploy_records (app, action, subject, service, version, status, created_by, created_at) "
    "SELECT CONCAT('app-', 1 + (seq % 500)), 'deploy', 'version', CONCAT('svc', seq % 3), CONCAT('v', seq % 7), "
    "'succeeded', 'x', NOW() FROM seq_1_to_40000",
    "INSERT INTO deploy_targets (record_id, cluster, env, namespace, object_name, action, has_deployment, manifests, "
    "status, attempt, replicas, progress_deadline_seconds, updated_at) SELECT id, 'c1', 'test', app, "
    "CONCAT(service, '-', version), 'apply', 1, '[]', 'succeeded', 1, '{}', 600, NOW() FROM deploy_records",
    "INSERT INTO deploy_log_lines (line_id, record_id, time, cluster, level, line) "
    "SELECT CONCAT('l', seq), 1 + (seq % 40000), NOW(), 'c1', 'info', 'hello' FROM seq_1_to_200000",
    "INSERT INTO auth_audit (actor, action, target, details, source_ip, created_at) "
    "SELECT CONCAT('u', seq % 200), 'x', '', '{}', '', NOW() - INTERVAL seq SECOND FROM seq_1_to_50000",
    "INSERT INTO auth_users (username, username_key, display_name, email, is_admin, created_at, updated_at) "
    "SELECT CONCAT('u', seq), CONCAT('u', seq), '', '', 0, NOW(), NOW() FROM seq_1_to_200",
    "INSERT INTO auth_tokens (user_id, kind, name, token_hash, prefix, created_at, expires_at) "
    "SELECT 1 + (seq % 200), 'session', '', SHA2(seq, 256), 'p', NOW(), NOW() + INTERVAL (CAST(seq % 30 AS SIGNED) - 15) DAY "
    "FROM seq_1_to_20000",
    "INSERT INTO notify_channels (app, name, type, url, events, enabled, created_at) "
    "SELECT CONCAT('app-', seq), 'c', 'webhook', 'x', '[]', 1, NOW() FROM seq_1_to_500",
    "INSERT INTO notify_deliveries (channel_id, app, event_id, event, payload, status, attempts, created_at, "
    "updated_at) SELECT 1 + (seq % 500), CONCAT('app-', 1 + (seq % 500)), seq, 'deploy.failed', '{}', 'delivered', 1, "
    "NOW(), NOW() FROM seq_1_to_50000",
    "ANALYZE TABLE org_applications, org_members, deploy_records, deploy_targets, deploy_log_lines, auth_audit, "
    "auth_tokens, notify_deliveries",
]


@pytest.fixture(scope="module")
def busy(infra):
    with own_database(infra, "plans") as (_, engine):
        with engine.begin() as conn:
            for statement in SEED:
                conn.execute(text(statement))
        yield engine


def plans(engine, read) -> list[list[dict]]:
    """EXPLAIN of every SELECT ``read(session)`` sends."""
    sent = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        with Session(engine) as session:
            read(session)
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    out = []
    with engine.connect() as conn:
        cursor = conn.connection.cursor()
        for statement, parameters in sent:
            if statement.lstrip().upper().startswith("SELECT"):
                cursor.execute("EXPLAIN " + statement, parameters)
                names = [d[0] for d in cursor.description]
                out.append([dict(zip(names, row)) for row in cursor.fetchall()])
    return out


def apps_of(user_id: int, admin: bool):
    def read(session):
        stmt = select(Application, Member.role).outerjoin(
            Member, (Member.app_id == Application.id) & (Member.user_id == user_id))
        if not admin:
            stmt = stmt.where(Member.id.is_not(None))
        page(session, stmt, Application.id, 50, None, lambda row: row, rows=True)
    return read


# (what a person does, the read behind it, {table: the index its rows must come from})
HOT = [
    ("GET /apps as admin", apps_of(1, True), {"org_applications": "PRIMARY", "org_members": "uq_member_app_user"}),
    ("GET /apps as a member", apps_of(7, False), {"org_members": "ix_members_user_app"}),
    ("an app's records", lambda s: views.list_records(s, "app-5", None, None, 50, None),
     {"deploy_records": "ix_deploy_records_app_id", "deploy_targets": "uq_deploy_target"}),
    ("a service's records", lambda s: views.list_records(s, "app-5", "svc1", None, 50, None),
     {"deploy_records": "ix_deploy_records_app_service_id"}),
    ("a record's logs", lambda s: logstore.logs(s, 1234, 0, None), {"deploy_log_lines": "ix_deploy_log_lines_record"}),
    ("the app page's status", lambda s: views.version_status(s, "app-5", "svc1"),
     {"deploy_records": "ix_deploy_records_app_service_id"}),
    ("an app's deliveries", lambda s: page(s, select(Delivery).where(Delivery.app == "app-5"), Delivery.id, 50, None,
                                           lambda r: r, descending=True), {"notify_deliveries": "ix_delivery_app_id"}),
    ("audit by actor", lambda s: page(s, accounts.audit_query("u5", None, None), AuditEntry.id, 50, None,
                                      lambda r: r, descending=True), {"auth_audit": "ix_audit_actor"}),
    ("a person's sessions", lambda s: list(s.scalars(sessions.live_sessions(5))), {"auth_tokens": "ix_tokens_user"}),
]


@pytest.mark.parametrize("read,expected", [h[1:] for h in HOT], ids=[h[0] for h in HOT])
def test_a_hot_read_comes_from_an_index(busy, read, expected):
    steps = [step for plan in plans(busy, read) for step in plan]
    used = {}
    for step in steps:
        if step["table"] in expected:
            used.setdefault(step["table"], set()).add(step["key"])
            assert step["type"] != "ALL", f"a full scan of {step['table']}: {step}"
    for table, index in expected.items():
        assert index in used.get(table, set()), f"{table} read through {used.get(table)}, not {index}: {steps}"
    # No step sorts the rows of a big table: a page is read in order from its index.
    sorted_big = [s for s in steps if "filesort" in (s["Extra"] or "") and int(s["rows"] or 0) > 200]
    assert not sorted_big, sorted_big


def test_retention_deletes_from_an_index(busy):
    """The retention batches (``ORDER BY <age> LIMIT n``) start where the old rows are."""
    cutoff = datetime(2020, 1, 1) + timedelta(days=1)
    for table, column, index in (("deploy_log_lines", "time", "ix_deploy_log_lines_time"),
                                 ("auth_audit", "created_at", "ix_audit_time"),
                                 ("notify_deliveries", "created_at", "ix_delivery_created")):
        with busy.connect() as conn:
            [plan] = conn.execute(text(f"EXPLAIN DELETE FROM {table} WHERE {column} < :c ORDER BY {column} "
                                       "LIMIT 1000"), {"c": cutoff}).mappings().all()
        assert plan["key"] == index, plan
