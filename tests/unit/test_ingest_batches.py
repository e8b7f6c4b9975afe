"""Batched shapes of cluster.log and cluster.resource_status (pure)."""
from services.cluster.domain import reports
from services.cluster.logship import events_for, merge
from services.deploy.domain import records


def lines(n, record_id=7):
    return [{"record_id": record_id, "cluster": "test-1", "level": "info", "line": f"line {i}",
             "time": "2026-01-01T00:00:00.000001Z"} for i in range(n)]


def test_a_line_keeps_its_identity_whether_it_travels_staged_or_merged():
    staged = events_for(lines(7), size=3) + events_for(lines(4, record_id=8), size=3)
    assert [len(e["data"]["lines"]) for e in staged] == [3, 3, 1, 3, 1]
    merged = merge(staged, size=5)
    assert [len(e["data"]["lines"]) for e in merged] == [5, 5, 1]
    as_staged = records.log_rows(staged)
    as_merged = records.log_rows(merged)
    assert len({row[0] for row in as_staged}) == 11
    assert sorted(as_staged) == sorted(as_merged)
    # Redelivered or re-sent either way: the same identities, so INSERT IGNORE adds nothing.
    assert {row[0] for row in records.log_rows(staged + merged + merged)} == {row[0] for row in as_staged}


def test_old_shapes_keep_their_identities():
    one = {"event_id": "e1", "type": "cluster.log", "data": lines(1)[0]}
    many = {"event_id": "e2", "type": "deploy.log", "data": {"lines": lines(2)}}
    assert [r[0] for r in records.log_rows([one, many])] == ["e1", "e2:0", "e2:1"]
    forged = {"event_id": "e3", "type": "cluster.log", "data": {"lines": [{**lines(1)[0], "line_id": "x" * 200}]}}
    assert [r[0] for r in records.log_rows([forged])] == ["e3:0"]  # an unusable line_id is not taken


def report(name, rv):
    return {"namespace": "shop", "kind": "Deployment", "name": name, "uid": "u", "resource_version": str(rv)}


def test_status_batches_flatten_to_reports_in_order_and_keep_their_cluster():
    batch = {"type": "cluster.resource_status",
             "data": {"cluster": "test-1", "reports": [report("a", 2), report("b", 3), {"kind": "Service", "name": "s"}]}}
    single = {"type": "cluster.resource_status", "data": {**report("a", 1), "cluster": "test-2"}}
    result = {"type": "cluster.apply_result", "data": {"record_id": 4, "cluster": "test-1", "ok": True}}
    flat = records.flatten([batch, single, result, {"type": "cluster.resource_status", "data": "junk"}])
    assert [(k, d.get("name"), d.get("cluster")) for k, d in flat] == [
        ("resource_status", "a", "test-1"), ("resource_status", "b", "test-1"),
        ("resource_status", "a", "test-2"), ("apply_result", None, "test-1")]


def test_an_intake_announces_in_bounded_events_with_ids_derived_from_their_reports():
    accepted = [report(f"d{i}", 10 + i) for i in range(reports.REPORTS_PER_EVENT + 5)]
    events = reports.batch_events("test-1", accepted)
    assert [len(data["reports"]) for _, data in events] == [reports.REPORTS_PER_EVENT, 5]
    assert all(r["cluster"] == "test-1" for _, data in events for r in data["reports"])
    assert [i for i, _ in events] == [i for i, _ in reports.batch_events("test-1", accepted)]
    assert events[0][0] != reports.batch_events("test-2", accepted)[0][0]
