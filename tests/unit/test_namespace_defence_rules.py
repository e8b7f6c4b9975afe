"""What every app namespace carries besides MAE's mark (Pod Security labels, ResourceQuota
``mae-quota``, LimitRange ``mae-limits``) from the config and the app's own policy, and the
comparison the tend heals by: pure rules."""
import pytest

from services.cluster.domain import defences
from services.cluster.domain.defences import Settings, for_app
from services.cluster.domain.namespaces import app_entries, drifted, mark, reclaimable
from shared.config import ROOT, load_config

NS = "shop"


def live_namespace(namespace=NS, app_id=7, levels=None, **meta):
    return {"metadata": {"name": namespace, **mark(namespace, app_id, levels or defences.POD_SECURITY), **meta}}


def served(body):
    """The object as the API server hands it back: status, resourceVersion, quantities normalised."""
    out = {**body, "metadata": {**body["metadata"], "resourceVersion": "42", "uid": "u"}}
    if body["kind"] == "ResourceQuota":
        out["status"] = {"hard": dict(body["spec"]["hard"]), "used": {"pods": "3"}}
    return out


# -- from the config ------------------------------------------------------------------------

def test_every_config_file_gives_a_quota_and_limits_a_small_team_app_fits_in():
    for name in ("development", "production", "test"):
        want = for_app(Settings.from_config(load_config(ROOT / "config" / f"{name}.yaml")))
        assert want.quota["pods"] == "50" and want.quota["requests.cpu"] == "4"
        assert want.quota["limits.memory"] == "16Gi" and want.quota["services.loadbalancers"] == "0"
        assert want.limits == {"type": "Container", "default": {"cpu": "500m", "memory": "512Mi"},
                               "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                               "max": {"cpu": "2", "memory": "4Gi"}}
        assert want.pod_security["enforce"] == "baseline"
        assert isinstance(load_config(ROOT / "config" / f"{name}.yaml")["NAMESPACE_HEAL_SECONDS"], (int, float))


def test_what_a_test_deploy_needs_fits_the_test_quota():
    """Two replicas of a version without resources take the LimitRange's defaults; the test
    suites deploy a few such versions per app, with rolling-update surges."""
    from decimal import Decimal

    from kubernetes.utils.quantity import parse_quantity

    want = for_app(Settings.from_config(load_config(ROOT / "config" / "test.yaml")))
    pods = 12
    for key, per_pod in (("requests.cpu", want.limits["defaultRequest"]["cpu"]),
                         ("requests.memory", want.limits["defaultRequest"]["memory"]),
                         ("limits.cpu", want.limits["default"]["cpu"]),
                         ("limits.memory", want.limits["default"]["memory"])):
        assert parse_quantity(per_pod) * pods <= parse_quantity(want.quota[key]), key
    assert Decimal(want.quota["pods"]) >= pods
    assert int(want.quota["services.nodeports"]) > 0   # test.yaml lets NodePort Services onto test clusters


def test_settings_default_when_the_config_says_nothing_and_null_or_empty_turns_an_object_off():
    assert for_app(Settings.from_config({})).quota == defences.QUOTA
    assert for_app(Settings.from_config({})).limits["max"] == {"cpu": "2", "memory": "4Gi"}
    for off in (None, {}):
        want = for_app(Settings.from_config({"NAMESPACE_QUOTA": off, "NAMESPACE_LIMITS": off}))
        assert want.quota is None and want.limits is None


def test_yaml_numbers_become_quantities():
    want = for_app(Settings.from_config({"NAMESPACE_QUOTA": {"pods": 10, "requests.cpu": 0.5},
                                         "NAMESPACE_LIMITS": {"max": {"cpu": 1}}}))
    assert want.quota == {"pods": "10", "requests.cpu": "0.5"}
    with pytest.raises(ValueError):
        defences.hard({"pods": True})


def test_the_limit_item_is_written_as_the_api_server_stores_it():
    """SetDefaults_LimitRangeItem: default ← max, defaultRequest ← default, then ← min."""
    assert defences.container_item({"max": {"cpu": "1", "memory": "1Gi"}, "min": {"memory": "64Mi"}}) == {
        "type": "Container", "max": {"cpu": "1", "memory": "1Gi"}, "min": {"memory": "64Mi"},
        "default": {"cpu": "1", "memory": "1Gi"}, "defaultRequest": {"cpu": "1", "memory": "1Gi"}}
    assert defences.container_item({"min": {"cpu": "10m"}}) == {
        "type": "Container", "min": {"cpu": "10m"}, "defaultRequest": {"cpu": "10m"}}
    assert defences.container_item({"default": {"cpu": "1"}, "defaultRequest": {"cpu": "200m"}}) == {
        "type": "Container", "default": {"cpu": "1"}, "defaultRequest": {"cpu": "200m"}}
    assert defences.container_item({}) is None and defences.container_item(None) is None


# -- an app's own policy --------------------------------------------------------------------

def test_an_apps_policy_replaces_the_defaults_it_names():
    settings = Settings.from_config({"NAMESPACE_POD_SECURITY": {"enforce": "baseline", "warn": "restricted"}})
    same = for_app(settings, {"pod_security": "baseline", "quota": None, "limits": None})
    assert same == for_app(settings) and same.pod_security["enforce"] == "baseline"
    own = for_app(settings, {"pod_security": "privileged", "quota": {"pods": "5"},
                             "limits": {"max": {"memory": "1Gi"}}})
    assert own.pod_security["enforce"] == "privileged" and own.pod_security["warn"] == "restricted"
    assert own.quota == {"pods": "5"}   # the whole spec.hard, not merged with the default
    assert own.limits == {"type": "Container", "max": {"memory": "1Gi"}, "default": {"memory": "1Gi"},
                          "defaultRequest": {"memory": "1Gi"}}
    none = for_app(settings, {"quota": {}, "limits": {}})
    assert none.quota is None and none.limits is None


def test_baseline_keeps_the_configured_level_and_nonsense_is_ignored():
    strict = Settings.from_config({"NAMESPACE_POD_SECURITY": {"enforce": "restricted"}})
    assert for_app(strict, {"pod_security": "baseline"}).pod_security["enforce"] == "restricted"
    assert for_app(strict, {"pod_security": "root", "quota": "lots"}) == for_app(strict)
    assert for_app(strict, "not a policy") == for_app(strict)


def test_org_answers_pairs_triples_or_names():
    assert app_entries([[1, "a", {"pod_security": "privileged"}], [2, "b"], "c", (3, "d", {})]) == [
        (1, "a", {"pod_security": "privileged"}), (2, "b", None), (None, "c", None), (3, "d", {})]


def test_the_bodies_carry_maes_labels():
    want = for_app(Settings())
    quota = defences.quota_body(NS, want.quota)
    limits = defences.limit_range_body(NS, want.limits)
    for body, name in ((quota, "mae-quota"), (limits, "mae-limits")):
        assert body["metadata"] == {"name": name, "namespace": NS,
                                    "labels": {"app.kubernetes.io/managed-by": "mae", "mae.io/app": NS}}
    assert quota["spec"] == {"hard": want.quota} and limits["spec"] == {"limits": [want.limits]}


# -- drift ----------------------------------------------------------------------------------

WANT = for_app(Settings())


def state(**changes):
    found = {"namespaces": {NS: live_namespace()},
             "quotas": {NS: served(defences.quota_body(NS, WANT.quota))},
             "limits": {NS: served(defences.limit_range_body(NS, WANT.limits))}}
    for key, value in changes.items():
        found[key] = value
    return found


def what(found, app_id=7, policy=None):
    out = drifted([(1, NS, app_id)], found, Settings(), {app_id: policy} if policy else {})
    return out[0][2] if out else []


def test_as_made_is_no_drift_even_with_the_servers_own_fields():
    assert what(state()) == []
    normalised = served(defences.quota_body(NS, {**WANT.quota, "requests.cpu": "4000m", "pods": "50"}))
    assert what(state(quotas={NS: normalised})) == []   # 4000m == 4


def test_a_deleted_or_unlabelled_namespace_is_drift_that_enact_sorts_out():
    assert what(state(namespaces={})) == ["missing or unlabelled"]
    terminating = live_namespace(deletionTimestamp="2026-01-01T00:00:00Z")
    assert what(state(namespaces={NS: terminating})) == ["being deleted"]


def test_another_apps_id_or_a_missing_id_is_drift():
    assert what(state(namespaces={NS: live_namespace(app_id=8)})) == ["app id"]
    legacy = live_namespace(app_id=None)
    assert what(state(namespaces={NS: legacy})) == ["app id"]        # MAE adds the id it knows now
    assert what(state(namespaces={NS: legacy}), app_id=None) == []    # a row from before ids


def test_pod_security_loosened_by_hand_is_drift_tightened_is_not():
    looser = live_namespace(levels={**defences.POD_SECURITY, "enforce": "privileged"})
    assert what(state(namespaces={NS: looser})) == ["pod security enforce"]
    gone = live_namespace()
    del gone["metadata"]["labels"]["pod-security.kubernetes.io/warn"]
    assert what(state(namespaces={NS: gone})) == ["pod security warn"]
    stricter = live_namespace(levels={**defences.POD_SECURITY, "enforce": "restricted"})
    assert what(state(namespaces={NS: stricter})) == []
    old_version = live_namespace(levels={**defences.POD_SECURITY, "version": "v1.25"})
    assert what(state(namespaces={NS: old_version})) == ["pod security enforce version"]


def test_putting_the_mark_back_keeps_a_level_tightened_by_hand_but_not_a_loosened_one():
    wanted = mark(NS, 7, defences.POD_SECURITY)["labels"]
    tightened = {**wanted, "pod-security.kubernetes.io/enforce": "restricted",
                 "pod-security.kubernetes.io/enforce-version": "v1.30", "team": "x"}
    kept = defences.keep_stricter(tightened, wanted)
    assert kept["pod-security.kubernetes.io/enforce"] == "restricted"
    assert kept["pod-security.kubernetes.io/enforce-version"] == "v1.30" and "team" not in kept
    loosened = {**wanted, "pod-security.kubernetes.io/enforce": "privileged"}
    assert defences.keep_stricter(loosened, wanted) == wanted
    privileged = mark(NS, 7, {**defences.POD_SECURITY, "enforce": "privileged"})["labels"]
    assert defences.keep_stricter(tightened, privileged) == privileged   # the admin's explicit choice


def test_an_admins_privileged_app_is_not_drift_and_baseline_again_is():
    privileged = live_namespace(levels={**defences.POD_SECURITY, "enforce": "privileged"})
    assert what(state(namespaces={NS: privileged}), policy={"pod_security": "privileged"}) == []
    assert what(state(namespaces={NS: privileged}), policy={"pod_security": "baseline"}) == [
        "pod security enforce"]


def test_a_quota_or_limit_range_changed_removed_or_unlabelled_is_drift():
    raised = served(defences.quota_body(NS, {**WANT.quota, "pods": "5000"}))
    assert what(state(quotas={NS: raised})) == ["quota"]
    assert what(state(quotas={})) == ["quota"]
    unlabelled = served(defences.quota_body(NS, WANT.quota))
    unlabelled["metadata"]["labels"] = {}
    assert what(state(quotas={NS: unlabelled})) == ["quota"]
    wider = served(defences.limit_range_body(NS, {**WANT.limits, "max": {"cpu": "64", "memory": "4Gi"}}))
    assert what(state(limits={NS: wider})) == ["limits"]
    extra = served(defences.limit_range_body(NS, WANT.limits))
    extra["spec"]["limits"].append({"type": "Pod", "max": {"cpu": "64"}})
    assert what(state(limits={NS: extra}, quotas={})) == ["limits", "quota"]


def test_the_apps_own_quota_is_what_is_compared():
    own = served(defences.quota_body(NS, {"pods": "5"}))
    assert what(state(quotas={NS: own}), policy={"quota": {"pods": "5"}}) == []
    assert what(state(quotas={NS: own})) == ["quota"]                        # the default again
    assert what(state(quotas={NS: own}), policy={"quota": {}}) == ["quota"]  # none: MAE's is removed
    assert what(state(quotas={}), policy={"quota": {}}) == []
    foreign = served(defences.quota_body(NS, {"pods": "1"}))
    foreign["metadata"]["labels"] = {"team": "ops"}
    assert what(state(quotas={NS: foreign}), policy={"quota": {}}) == []      # not MAE's: left alone


def test_what_could_not_be_listed_is_not_compared():
    assert what(state(quotas=None, limits=None)) == []
    assert what(state(namespaces={}, quotas=None, limits=None)) == ["missing or unlabelled"]


def test_only_the_drifted_rows_come_back():
    found = state()
    found["namespaces"]["other"] = live_namespace("other", 9)
    rows = [(1, NS, 7), (2, "other", 9), (3, "gone", 10)]
    assert [(r, ns) for r, ns, _ in drifted(rows, found, Settings(), {})] == [(2, "other"), (3, "gone")]


def test_a_namespace_stripped_of_its_labels_is_reclaimed_only_with_the_apps_id():
    stripped = {"metadata": {"name": NS, "annotations": {"mae.io/app-id": "7"}, "labels": {"team": "x"}}}
    assert reclaimable(stripped, NS, 7)
    assert not reclaimable(stripped, NS, 8) and not reclaimable(stripped, NS, None)
    assert not reclaimable({"metadata": {"name": NS}}, NS, 7)
    other_app = {"metadata": {"annotations": {"mae.io/app-id": "7"}, "labels": {"mae.io/app": "elsewhere"}}}
    assert not reclaimable(other_app, NS, 7)
