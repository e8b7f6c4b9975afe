"""An application's policy overrides as an admin sets them (pure; services/org/domain/policy.py).

A PUT changes only the fields it names; every quantity is a Kubernetes quantity; quota
keys are resources a ResourceQuota can limit; ``null`` means the platform's default.
"""
from __future__ import annotations

import pytest

from services.org.domain import policy
from shared.errors import Invalid

QUOTA = {"pods": "20", "requests.cpu": "4", "limits.memory": "8Gi", "count/deployments.apps": 10}
LIMITS = {"default": {"cpu": "500m", "memory": "512Mi"}, "max": {"ephemeral-storage": "2Gi"}}


def refused(data, current=None) -> str:
    with pytest.raises(Invalid) as caught:
        policy.check(data, current)
    return caught.value.details["field"]


def test_an_empty_put_changes_nothing_and_a_partial_one_only_what_it_names():
    current = {"pod_security": "privileged", "quota": {"pods": "5"}, "limits": None}
    assert policy.check({}, current) == current
    assert policy.check({}, None) == {}
    assert policy.check({"quota": QUOTA}, current) == {
        "pod_security": "privileged", "quota": {**QUOTA, "count/deployments.apps": "10"}, "limits": None}
    assert policy.check({"pod_security": "baseline"}, current)["quota"] == {"pods": "5"}
    assert current == {"pod_security": "privileged", "quota": {"pods": "5"}, "limits": None}  # not changed in place


def test_null_returns_a_field_to_the_platforms_default():
    current = {"pod_security": "baseline", "quota": {"pods": "5"}, "limits": LIMITS}
    assert policy.check({"quota": None, "limits": None}, current) == {
        "pod_security": "baseline", "quota": None, "limits": None}


def test_limits_keep_their_items_and_numbers_become_quantities():
    assert policy.check({"limits": LIMITS}, None) == {"limits": LIMITS}
    assert policy.check({"limits": {"min": {"cpu": 0.25, "memory": 64}}}, None) == \
        {"limits": {"min": {"cpu": "0.25", "memory": "64"}}}


@pytest.mark.parametrize("qty", ["500m", "2", "0.5", ".5", "512Mi", "4Gi", "1k", "3E", 2, 1.5])
def test_kubernetes_quantities_are_accepted(qty):
    assert policy.check({"quota": {"requests.memory": qty}}, None)["quota"]["requests.memory"] == str(qty)


@pytest.mark.parametrize("qty", ["", "-1", "1.", "lots", "4 Gi", "4gb", "1e3", None, True, [], {"v": 1}])
def test_anything_else_is_not_a_quantity(qty):
    assert refused({"quota": {"pods": qty}}) == "quota.pods"
    assert refused({"limits": {"max": {"cpu": qty}}}) == "limits.max.cpu"


@pytest.mark.parametrize("data, field", [
    ("baseline", "body"),
    (["pod_security"], "body"),
    ({"pod_security": "restricted"}, "pod_security"),
    ({"pod_security": None}, "pod_security"),
    ({"pod_security": "baseline", "labels": {}, "annotations": {}}, "annotations"),
    ({"quota": "4Gi"}, "quota"),
    ({"quota": {f"count/thing{i}": "1" for i in range(31)}}, "quota"),
    ({"quota": {"gpus": "1"}}, "quota.gpus"),
    ({"quota": {"count/": "1"}}, "quota.count/"),
    ({"quota": {"count/Deployments": "1"}}, "quota.count/Deployments"),
    ({"limits": {"maximum": {"cpu": "1"}}}, "limits"),
    ({"limits": "1"}, "limits"),
    ({"limits": {"max": "1"}}, "limits.max"),
    ({"limits": {"max": {"pods": "1"}}}, "limits.max"),
])
def test_what_a_policy_cannot_hold_is_refused_naming_the_field(data, field):
    assert refused(data) == field


def test_at_most_thirty_quota_entries():
    thirty = {f"count/thing{i}": "1" for i in range(30)}
    assert policy.check({"quota": thirty}, None)["quota"] == thirty


def test_the_view_shows_every_field_with_the_defaults_filled_in():
    assert policy.view(None) == {"pod_security": "baseline", "quota": None, "limits": None}
    assert policy.view({}) == {"pod_security": "baseline", "quota": None, "limits": None}
    assert policy.view({"pod_security": "privileged", "quota": {"pods": "5"}}) == \
        {"pod_security": "privileged", "quota": {"pods": "5"}, "limits": None}
