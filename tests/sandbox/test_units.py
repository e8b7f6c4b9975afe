"""Pure-function tests of the sandbox's patch and selector implementations.

These need no cluster; they pin the semantics the API tests rely on, including
kubectl's strategic-merge directives that are awkward to provoke end to end.
"""
from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from sandbox.selectors import (SelectorError, fields_match, labels_match, parse_field_selector,
                               parse_label_selector, selector_object_to_reqs)

POD_TEMPLATE = {"spec": {"template": {"spec": {"containers": [
    {"name": "app", "image": "a:1", "env": [{"name": "X", "value": "1"}],
     "volumeMounts": [{"name": "data", "mountPath": "/data"}], "ports": [{"containerPort": 80}]},
    {"name": "side", "image": "s:1"}]}}}}


def test_smp_merges_containers_env_ports_and_mounts_by_key():
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "a:2", "env": [{"name": "Y", "value": "2"}],
         "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
         "ports": [{"containerPort": 443}]}]}}}}
    out = strategic_merge_patch(copy.deepcopy(POD_TEMPLATE), patch, "Deployment")
    app, side = out["spec"]["template"]["spec"]["containers"]
    assert app["image"] == "a:2" and side == {"name": "side", "image": "s:1"}
    assert [e["name"] for e in app["env"]] == ["X", "Y"]
    assert app["volumeMounts"] == [{"name": "data", "mountPath": "/data", "readOnly": True}]
    assert [p["containerPort"] for p in app["ports"]] == [80, 443]


def test_smp_directives_kubectl_sends():
    # $setElementOrder, $patch: delete, $retainKeys and null deletion, as in kubectl apply patches.
    patch = {"spec": {
        "strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None},
        "template": {"spec": {
            "$setElementOrder/containers": [{"name": "side"}, {"name": "app"}],
            "containers": [{"name": "app", "env": [{"name": "X", "$patch": "delete"}]}]}}}}
    orig = copy.deepcopy(POD_TEMPLATE)
    orig["spec"]["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}}
    out = strategic_merge_patch(orig, patch, "Deployment")
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    cs = out["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in cs] == ["side", "app"]
    assert cs[1]["env"] == []
    replaced = strategic_merge_patch(copy.deepcopy(POD_TEMPLATE), {"spec": {"template": {"spec": {
        "containers": [{"$patch": "replace"}, {"name": "only", "image": "o:1"}]}}}}, "Deployment")
    assert replaced["spec"]["template"]["spec"]["containers"] == [{"name": "only", "image": "o:1"}]


def test_smp_finalizers_union_and_delete_from_primitive_list():
    orig = {"metadata": {"finalizers": ["a", "b"]}}
    assert strategic_merge_patch(orig, {"metadata": {"finalizers": ["c"]}}, "ConfigMap")["metadata"]["finalizers"] == ["a", "b", "c"]
    out = strategic_merge_patch(orig, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}, "ConfigMap")
    assert out["metadata"]["finalizers"] == ["b"]


def test_smp_untagged_lists_replace_and_missing_merge_key_fails():
    orig = {"spec": {"template": {"spec": {"tolerations": [{"key": "a"}], "containers": []}}}}
    out = strategic_merge_patch(orig, {"spec": {"template": {"spec": {"tolerations": [{"key": "b"}]}}}}, "Deployment")
    assert out["spec"]["template"]["spec"]["tolerations"] == [{"key": "b"}]
    with pytest.raises(PatchError):
        strategic_merge_patch(orig, {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}, "Deployment")


def test_json_patch_operations():
    doc = {"a": {"b": [1, 2]}, "c": "x"}
    out = json_patch(doc, [{"op": "add", "path": "/a/b/-", "value": 3},
                           {"op": "add", "path": "/a/b/0", "value": 0},
                           {"op": "remove", "path": "/c"},
                           {"op": "copy", "from": "/a/b", "path": "/d"},
                           {"op": "move", "from": "/d", "path": "/e"},
                           {"op": "replace", "path": "/a/b/1", "value": 10},
                           {"op": "add", "path": "/~1slash", "value": True},
                           {"op": "test", "path": "/e", "value": [0, 1, 2, 3]}])
    assert out == {"a": {"b": [0, 10, 2, 3]}, "e": [0, 1, 2, 3], "/slash": True}
    assert doc == {"a": {"b": [1, 2]}, "c": "x"}  # the input is not mutated
    for bad in ([{"op": "remove", "path": "/nope"}], [{"op": "test", "path": "/c", "value": "y"}],
                [{"op": "frobnicate", "path": "/c"}], {"op": "add"}):
        with pytest.raises(PatchError):
            json_patch(doc, bad)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                           lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=3), kids, max_size=3),
                           max_leaves=10)
json_objects = st.dictionaries(st.text(max_size=3), json_values, max_size=4)


@settings(max_examples=200, deadline=None)
@given(json_objects, json_objects)
def test_merge_patch_rfc7386_properties(target, patch):
    out = merge_patch(copy.deepcopy(target), patch)
    for k, v in patch.items():
        if v is None:
            assert k not in out
        elif not isinstance(v, dict):
            assert out[k] == v
    for k, v in target.items():
        if k not in patch:
            assert out[k] == v
    # Applying the same patch twice changes nothing more (idempotence).
    assert merge_patch(copy.deepcopy(out), patch) == out


@pytest.mark.parametrize("selector,labels,expected", [
    ("a=b", {"a": "b"}, True), ("a==b", {"a": "c"}, False), ("a!=b", {}, True),
    ("a in (x, y)", {"a": "y"}, True), ("a notin (x,y)", {"a": "y"}, False), ("a notin (x)", {}, True),
    ("a", {"a": ""}, True), ("!a", {"a": "1"}, False), ("a,b=c", {"a": "1", "b": "c"}, True),
    ("example.com/tier in (web),!legacy", {"example.com/tier": "web"}, True),
    ("n>3", {"n": "5"}, True), ("n<3", {"n": "5"}, False), ("", {"x": "y"}, True),
])
def test_label_selector_semantics(selector, labels, expected):
    assert labels_match(parse_label_selector(selector), labels) is expected


@pytest.mark.parametrize("bad", ["a in (x", "=b", "a b", "Bad Key=1", "a=b=c=d=e(", "a=" + "x" * 64])
def test_label_selector_errors(bad):
    with pytest.raises(SelectorError):
        parse_label_selector(bad)


def test_selector_objects_and_field_selectors():
    reqs = selector_object_to_reqs({"matchLabels": {"app": "w"},
                                    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]},
                                                         {"key": "old", "operator": "DoesNotExist"}]})
    assert labels_match(reqs, {"app": "w", "tier": "b"}) and not labels_match(reqs, {"app": "w", "tier": "c"})
    obj = {"metadata": {"name": "p", "namespace": "n"}, "status": {"phase": "Running"}}
    assert fields_match(parse_field_selector("metadata.name=p,status.phase!=Pending", "pods"), obj)
    assert not fields_match(parse_field_selector("metadata.namespace==other", "pods"), obj)
    with pytest.raises(SelectorError):
        parse_field_selector("spec.nope=1", "configmaps")
