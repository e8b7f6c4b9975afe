"""The deploy status machine: transitions, reasons, and its behaviour under duplicated, reordered and stale reports."""
from datetime import datetime, timedelta

import pytest

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from services.deploy.domain import status
from services.deploy.domain.status import Target

T0 = datetime(2026, 1, 1, 12, 0, 0)


def report(rv, *, record_id=7, uid="u1", generation=2, observed=2, desired=2, updated=2, ready=2,
           available=None, pods=(), conditions=(), deadline=600, deleted=False):
    available = ready if available is None else available
    return {"cluster": "test-1", "namespace": "shop", "kind": "Deployment", "name": "web-v1", "uid": uid,
            "generation": generation, "observed_generation": observed, "resource_version": str(rv),
            "deleted": deleted, "annotations": {"mae.io/record-id": str(record_id)},
            "replicas": {"desired": desired, "updated": updated, "ready": ready, "available": available,
                         "unavailable": desired - available},
            "conditions": list(conditions), "progress_deadline_seconds": deadline, "pods": list(pods),
            "events": []}


def applied_target(generation=2):
    target = Target(record_id=7, cluster="test-1")
    status.requested(target, T0)
    status.apply_result(target, {"ok": True, "action": "apply", "objects": [
        {"kind": "Deployment", "name": "web-v1", "uid": "u1", "generation": generation, "resource_version": "10"}]},
        T0)
    return target


def test_a_good_rollout_walks_every_state_in_order():
    target = Target(record_id=7, cluster="test-1")
    seen = [target.status]
    status.requested(target, T0)
    seen.append(target.status)
    status.apply_result(target, {"ok": True, "objects": [{"kind": "Deployment", "uid": "u1", "generation": 2}]}, T0)
    seen.append(target.status)
    status.report(target, report(11, ready=0, updated=1), T0)
    seen.append(target.status)
    lines = status.report(target, report(12), T0)
    seen.append(target.status)
    assert seen == ["pending", "applying", "applied", "progressing", "succeeded"]
    assert target.replicas["ready"] == 2 and lines[-1] == ("info", "progressing → succeeded")


def test_a_report_that_overtakes_the_apply_answer_still_walks_through_applied():
    target = Target(record_id=7, cluster="test-1")
    status.requested(target, T0)
    lines = status.report(target, report(11, ready=0, updated=2), T0)
    assert target.status == "progressing"
    assert [line for _, line in lines if "→" in line] == ["applying → applied", "applied → progressing"]
    status.apply_result(target, {"ok": True, "objects": [{"kind": "Deployment", "uid": "u1", "generation": 2}]}, T0)
    assert target.status == "progressing"  # the late answer moves nothing back


def test_an_apply_refused_by_the_api_server_fails_with_what_it_said():
    target = Target(record_id=7, cluster="test-1")
    status.requested(target, T0)
    status.apply_result(target, {"ok": False, "objects": [], "error": {
        "reason": "Invalid", "code": 422, "message": "spec.replicas: Invalid value: -1"}}, T0)
    assert target.status == "failed"
    assert target.reason == "The cluster's API server refused the manifest: spec.replicas: Invalid value: -1"


def test_reasons_people_can_act_on():
    pull = applied_target()
    status.report(pull, report(11, ready=0, pods=[{"name": "p", "waiting_reason": "ImagePullBackOff",
                                                   "restart_count": 0, "message": "Back-off pulling image"}]), T0)
    assert pull.status == "failed" and pull.reason.startswith("The image cannot be pulled")
    crash = applied_target()
    status.report(crash, report(11, ready=0, pods=[{"name": "p", "waiting_reason": "CrashLoopBackOff",
                                                    "restart_count": 4}]), T0)
    assert crash.status == "failed" and "keeps crashing" in crash.reason and "4 times" in crash.reason
    slow = applied_target()
    status.report(slow, report(11, ready=0, deadline=5, conditions=[
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "timed out"}]), T0)
    assert slow.status == "failed" and slow.reason.startswith("Not ready before the progress deadline (5 s)")
    refused = Target(record_id=7, cluster="c")
    status.apply_result(refused, {"ok": False, "error": {"reason": "Forbidden", "message": "exceeded quota: q"}}, T0)
    assert refused.reason.startswith("Quota exceeded")


PSA = ('pods "web-v1-5d9f7-x2k" is forbidden: violates PodSecurity "restricted:latest": '
       'allowPrivilegeEscalation != false (container "web" must set '
       'securityContext.allowPrivilegeEscalation=false), runAsNonRoot != true')


def refused_report(rv, message, **kw):
    return report(rv, ready=0, updated=0, available=0, conditions=[
        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetCreated"},
        {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": message}], **kw)


@pytest.mark.parametrize("message, reason", [
    (PSA, "The namespace's Pod Security level (restricted:latest) forbids these pods: allowPrivilegeEscalation"),
    ('pods "x" is forbidden: exceeded quota: compute, requested: pods=1, used: pods=2, limited: pods=2',
     "Quota exceeded: the namespace's resource quota does not allow these pods"),
    ('pods "x" is forbidden: failed quota: compute: must specify limits.cpu,requests.cpu',
     "The namespace's resource quota requires CPU and memory requests and limits"),
    ('pods "x" is forbidden: status unknown for quota: compute, resource: pods',
     "The namespace's resource quota refused the pods"),
    ('pods "x" is forbidden: maximum cpu usage per Container is 500m, but limit is 2',
     "The namespace's LimitRange does not allow these pods' CPU or memory"),
    ('pods "x" is forbidden: error looking up service account shop/robot: serviceaccount "robot" not found',
     "The pods' service account does not exist in the namespace"),
])
def test_pods_the_cluster_refuses_fail_once_the_refusal_has_held(message, reason):
    target = applied_target()
    lines = status.report(target, refused_report(11, message), T0)
    # at once: still progressing, but the log and the target's message say why
    assert target.status == "progressing" and target.refusal == message and target.refused_since == T0
    assert ("warning", f"the cluster refuses to create the pods: {message}") in lines
    assert target.message.startswith(reason)
    # a later report still refused keeps the first moment
    status.report(target, refused_report(12, message), T0 + timedelta(seconds=4))
    assert target.refused_since == T0
    assert status.refused_too_long(target, T0 + timedelta(seconds=9), 10) == []
    lines = status.refused_too_long(target, T0 + timedelta(seconds=10), 10)
    assert target.status == "failed" and target.reason.startswith(reason) and target.message == message
    assert lines and lines[0][0] == "error"


def test_an_immutable_field_says_what_to_do():
    target = Target(record_id=7, cluster="c")
    status.apply_result(target, {"ok": False, "error": {"reason": "Invalid", "code": 422, "message": (
        'Deployment.apps "web-v1" is invalid: spec.selector: Invalid value: {"matchLabels":{"app":"x"}}: '
        "field is immutable")}}, T0)
    assert target.status == "failed"
    assert target.reason.startswith("The cluster does not allow this change to an existing object")
    assert "remove the version from the cluster and deploy it again" in target.reason
    assert "spec.selector" in target.reason and "field is immutable" in target.message


def test_a_refusal_that_clears_by_itself_does_not_fail_the_rollout():
    target = applied_target()
    status.report(target, refused_report(11, 'pods "x" is forbidden: error looking up service account '
                                             'shop/default: serviceaccount "default" not found'), T0)
    lines = status.report(target, report(12, ready=1, updated=2), T0 + timedelta(seconds=3))
    assert ("info", "the cluster creates the pods again") in lines
    assert target.refusal is None and target.refused_since is None
    assert status.refused_too_long(target, T0 + timedelta(seconds=60), 10) == []
    status.report(target, report(13), T0 + timedelta(seconds=4))
    assert target.status == "succeeded"


def test_a_failed_create_event_without_the_condition_counts_too():
    rep = report(11, ready=0, updated=0, available=0)
    rep["events"] = [{"reason": "FailedCreate", "type": "Warning",
                      "message": 'Error creating: pods "x" is forbidden: exceeded quota: q'}]
    target = applied_target()
    status.report(target, rep, T0)
    assert target.refusal and "exceeded quota" in target.refusal


def test_reports_about_another_record_an_older_generation_or_another_object_change_nothing():
    target = applied_target(generation=3)
    assert status.report(target, report(11, record_id=6, generation=3, observed=3), T0) == []
    assert status.report(target, report(12, generation=2, observed=2), T0) == []
    assert status.report(target, report(13, uid="old-uid", generation=3, observed=3), T0) == []
    assert target.status == "applied" and target.seen_rv is None
    status.report(target, report(14, generation=3, observed=3), T0)
    assert target.status == "succeeded"


def test_a_stale_generation_is_not_taken_for_success():
    # The controller has not yet seen generation 3: the counters are the old rollout's.
    target = applied_target(generation=3)
    status.report(target, report(11, generation=3, observed=2), T0)
    assert target.status == "progressing"


def test_the_clock_fails_a_stalled_rollout_and_asks_again_for_a_lost_apply():
    target = applied_target()
    status.report(target, report(11, ready=1, deadline=30), T0)
    assert status.deadline_passed(target, T0 + timedelta(seconds=35), grace_seconds=10) == []
    lines = status.deadline_passed(target, T0 + timedelta(seconds=41), grace_seconds=10)
    assert target.status == "failed" and "progress deadline (30 s)" in target.reason and lines
    waiting = Target(record_id=8, cluster="c")
    status.requested(waiting, T0)
    assert not status.apply_overdue(waiting, T0, T0 + timedelta(seconds=5), 10)
    assert status.apply_overdue(waiting, T0, T0 + timedelta(seconds=11), 10)


def test_record_status_is_the_least_advanced_target_and_failed_if_any_failed():
    assert status.record_status(["succeeded", "progressing", "applied"]) == "applied"
    assert status.record_status(["succeeded", "failed", "applying"]) == "failed"
    assert status.record_status(["superseded", "succeeded"]) == "succeeded"
    assert status.record_status(["superseded", "superseded"]) == "superseded"
    assert not status.record_finished(["succeeded", "progressing"])
    assert status.record_finished(["succeeded", "superseded", "failed"])


def test_superseded_is_final():
    target = applied_target()
    status.supersede(target, 9, T0)
    assert target.status == "superseded" and "record 9" in target.reason
    assert status.report(target, report(20), T0) == []
    assert status.apply_result(target, {"ok": False, "error": {"reason": "Invalid"}}, T0) == []


# -- the property: duplicated, reordered and stale reports -------------------------------

POD_STATES = [None, "ImagePullBackOff", "CrashLoopBackOff", "ContainerCreating"]


@st.composite
def rollouts(draw):
    """A plausible stream of reports for one Deployment: rising resource versions,
    generations around the applied one, counters moving up and down, now and then a failure."""
    count = draw(st.integers(1, 12))
    reports = []
    rv = 10
    for _ in range(count):
        rv += draw(st.integers(1, 3))
        generation = draw(st.sampled_from([1, 2, 2, 3]))
        observed = draw(st.integers(max(0, generation - 1), generation))
        desired = 2
        ready = draw(st.integers(0, 2))
        waiting = draw(st.sampled_from(POD_STATES))
        pods = [{"name": "p", "waiting_reason": waiting, "restart_count": 1}] if waiting else []
        reports.append(report(rv, generation=generation, observed=observed, desired=desired,
                              updated=draw(st.integers(ready, 2)), ready=ready,
                              record_id=draw(st.sampled_from([7, 7, 7, 6])), pods=pods,
                              uid=draw(st.sampled_from(["u1", "u1", "u1", "u0"]))))
    return reports


def run(reports, with_apply_first=True):
    target = Target(record_id=7, cluster="test-1")
    status.requested(target, T0)
    history = [target.status]
    if with_apply_first:
        status.apply_result(target, {"ok": True, "objects": [{"kind": "Deployment", "uid": "u1", "generation": 2}]},
                            T0)
        history.append(target.status)
    for r in reports:
        status.report(target, r, T0)
        history.append(target.status)
    return target, history


@settings(max_examples=150, deadline=None)
@given(rollouts(), st.data())
def test_duplicated_reordered_and_stale_reports_never_move_a_target_backwards_or_change_a_final_state(
        reports, data):
    delivered = data.draw(st.lists(st.sampled_from(reports), min_size=len(reports), max_size=3 * len(reports)))
    delivered = data.draw(st.permutations(reports + delivered))
    target, history = run(delivered)
    ranks = [status.RANK[s] for s in history]
    assert ranks == sorted(ranks), history
    first_final = next((i for i, s in enumerate(history) if s in status.FINAL), None)
    if first_final is not None:
        assert set(history[first_final:]) == {history[first_final]}
    # Replaying everything again, in any order, is a no-op.
    before = (target.status, target.reason, target.seen_rv, dict(target.replicas))
    for r in data.draw(st.permutations(delivered)):
        status.report(target, r, T0)
    assert (target.status, target.reason, target.seen_rv, dict(target.replicas)) == before


@settings(max_examples=100, deadline=None)
@given(rollouts(), st.data())
def test_in_order_delivery_with_duplicates_gives_the_same_final_state(reports, data):
    """Duplicates (each report any number of times, still in order) change nothing."""
    repeated = [r for r in reports for _ in range(data.draw(st.integers(1, 3)))]
    once, _ = run(reports)
    many, _ = run(repeated)
    assert (many.status, many.reason, many.replicas, many.seen_rv) == \
        (once.status, once.reason, once.replicas, once.seen_rv)


@settings(max_examples=100, deadline=None)
@given(rollouts())
def test_the_newest_report_alone_decides_when_it_comes_first(reports):
    """Level-triggered: if the newest report arrives first, older ones are ignored and
    the state is what that report says — a lost report heals itself."""
    ours = [r for r in reports if r["uid"] == "u1" and r["generation"] >= 2
            and r["annotations"]["mae.io/record-id"] == "7"]
    assume(ours)
    newest = max(ours, key=lambda r: int(r["resource_version"]))
    alone, _ = run([newest])
    first, _ = run([newest] + reports)
    assert (first.status, first.reason) == (alone.status, alone.reason)


def test_a_report_of_the_same_resource_version_but_a_fresher_deployment_is_news():
    """The operator's Pod stream can run ahead of its Deployment stream: the stale and the
    fresh report share resource_version 909 and only ``versions`` orders them. The fresh one
    must be taken (the target succeeds), the stale one arriving after it must not be."""
    def at(dep_rv, **kw):
        return {**report(909, **kw), "versions": {"deployment": dep_rv, "replicasets": 0, "pods": 909}}

    target = applied_target()
    status.report(target, at(907, ready=1, available=1), T0)
    assert target.status == "progressing"
    status.report(target, at(908), T0)
    assert target.status == "succeeded"

    target = applied_target()
    status.report(target, at(908, ready=1, available=1), T0)
    status.report(target, at(907), T0)  # older, though it says more
    assert target.status == "progressing"
    # A report without versions (an older operator) of that resource_version is not newer either.
    status.report(target, report(909), T0)
    assert target.status == "progressing"
    status.report(target, report(910), T0)
    assert target.status == "succeeded"
