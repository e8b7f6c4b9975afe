"""Reserved names and the mark that makes a namespace or object an app's: pure rules."""
import pytest

from services.cluster.domain.namespaces import mark, owned
from services.cluster.mke.engine import is_ours
from shared.errors import ReservedName
from shared.names import check_not_reserved


@pytest.mark.parametrize("name", ["default", "kube-system", "kube-public", "kube-node-lease", "kube-x",
                                  "mae", "mae-system", "openshift-config", "vault"])
def test_reserved(name):
    with pytest.raises(ReservedName) as caught:
        check_not_reserved(name, extra="vault, consul")
    assert caught.value.code == "reserved_name" and caught.value.details["field"] == "name"


@pytest.mark.parametrize("name", ["shop", "kubelet-ui", "defaults", "maestro", "my-kube-system"])
def test_not_reserved(name):
    assert check_not_reserved(name, extra=["vault"]) == name


def test_a_namespace_is_an_apps_only_with_its_mark_and_id():
    ours = {"metadata": {"name": "shop", **mark("shop", 7)}}
    assert owned(ours, "shop", 7)
    assert not owned(ours, "shop", 8)                       # another app of the same name (deleted, re-made)
    assert not owned({"metadata": {"name": "shop"}}, "shop", 7)                       # someone else's
    assert not owned({"metadata": {"labels": {"app.kubernetes.io/managed-by": "mae",
                                              "mae.io/app": "other"}}}, "shop", 7)
    legacy = {"metadata": {"labels": {"app.kubernetes.io/managed-by": "mae", "mae.io/app": "shop"}}}
    assert owned(legacy, "shop", 7)  # made before ids were marked
    assert not owned(None, "shop", 7)


def test_an_object_is_mae_s_only_with_its_label_and_app():
    manifest = {"metadata": {"labels": {"app.kubernetes.io/managed-by": "mae", "mae.io/app": "shop"}}}
    assert is_ours({"metadata": {"labels": {"app.kubernetes.io/managed-by": "mae", "mae.io/app": "shop"}}},
                   manifest)
    assert not is_ours({"metadata": {"labels": {"app.kubernetes.io/managed-by": "helm"}}}, manifest)
    assert not is_ours({"metadata": {"labels": {"app.kubernetes.io/managed-by": "mae", "mae.io/app": "x"}}},
                       manifest)
    assert not is_ours({"metadata": {}}, manifest)


def test_namespaces_carry_pod_security_levels_from_config():
    labels = mark("shop", 7)["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["pod-security.kubernetes.io/warn"] == "restricted"
    assert labels["pod-security.kubernetes.io/audit-version"] == "latest"
    stricter = mark("shop", 7, {"enforce": "restricted", "version": "v1.30"})["labels"]
    assert stricter["pod-security.kubernetes.io/enforce"] == "restricted"
    assert stricter["pod-security.kubernetes.io/enforce-version"] == "v1.30"
