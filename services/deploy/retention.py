"""What the deploy service trims after ``RETENTION_DAYS`` (shared/retention.py).

Records and their targets stay, for audit. What goes:

* ``log_lines``: lines older than that; each record that lost lines gets one line saying
  so (``retention:<record id>``), so its log does not just look empty;
* ``manifests``: the stored manifests of a target that finished before then and was
  superseded (a newer target for the same object on that cluster exists) — the latest
  per object stays, since restart, scale, routing and ingress hosts read it; a record
  whose manifests are gone can no longer be rolled back to (a clear 409);
* ``builds``: CI builds received before then;
* ``processed_events``: event ids kept for deduplication.
"""
from __future__ import annotations

from sqlalchemy import bindparam, text

from shared.retention import RetentionEntrypoints, Rule, delete_older, processed_events

def BY_IDS(statement: str):  # noqa: N802
    return text(f"{statement} WHERE id IN :ids").bindparams(bindparam("ids", expanding=True))


NOTE = "Earlier lines of this log were removed: deploy logs are kept {days} days."


def trim_log_lines(conn, cutoff, batch, state) -> int:
    rows = conn.execute(text("SELECT id, record_id, line_id FROM deploy_log_lines WHERE time < :cutoff "
                             "ORDER BY time LIMIT :batch"), {"cutoff": cutoff, "batch": batch}).all()
    if not rows:
        return 0
    conn.execute(BY_IDS("DELETE FROM deploy_log_lines"), {"ids": [r.id for r in rows]})
    # The note is trimmed in its turn, a retention period later, and not noted again.
    noted = sorted({r.record_id for r in rows if not r.line_id.startswith("retention:")})
    if noted:
        conn.execute(text("INSERT IGNORE INTO deploy_log_lines (line_id, record_id, time, cluster, level, line) "
                          "VALUES (:line_id, :record_id, :now, '', 'info', :line)"),
                     [{"line_id": f"retention:{rid}", "record_id": rid, "now": state["now"],
                       "line": NOTE.format(days=state["days"])} for rid in noted])
    return len(rows)


SUPERSEDED = text(
    "SELECT t.id FROM deploy_targets t WHERE t.id > :after AND t.manifests IS NOT NULL "
    "AND t.finished_at < :cutoff AND EXISTS (SELECT 1 FROM deploy_targets n WHERE n.cluster = t.cluster "
    "AND n.namespace = t.namespace AND n.object_name = t.object_name AND n.id > t.id) "
    "ORDER BY t.id LIMIT :batch")


def trim_manifests(conn, cutoff, batch, state) -> int:
    ids = list(conn.execute(SUPERSEDED, {"after": state.get("after", 0), "cutoff": cutoff, "batch": batch})
               .scalars())
    if ids:
        state["after"] = ids[-1]  # one pass over the targets per run
        conn.execute(BY_IDS("UPDATE deploy_targets SET manifests = NULL"), {"ids": ids})
    return len(ids)


class Retention(RetentionEntrypoints):
    retention_rules = (Rule("log_lines", "deploy_log_lines", trim_log_lines),
                       Rule("manifests", "deploy_targets.manifests", trim_manifests),
                       Rule("builds", "deploy_ci_builds", delete_older("deploy_ci_builds", "created_at")),
                       processed_events("deploy"))
