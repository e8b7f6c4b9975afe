"""The workload policy through the API, as a plain user trying to run more than their app
should (SECURITY.md): refused when a template is saved, when a version is created or
changed, at preview and at deploy — 422 ``policy_violation`` naming the rule, the object and
the path — and nothing reaches the clusters (checked with kubectl). Only a platform admin
may raise an app to ``privileged``, and that is audited."""
import uuid

import pytest

from services.deploy.domain import templates
from tests.kube import on_cluster
from tests.e2e.test_tenant_boundary import get
from tests.waiting import waiter

wait_for = waiter(timeout=40.0, interval=0.2)
FIELDS = templates.BUILTINS["default-version"]["fields"]
BODY = templates.BUILTINS["default-version"]["body"]
IMAGE_LINE = "          image: {{ image | tojson }}\n"


def pod_field(text: str) -> str:
    """The built-in version template with ``text`` added to the pod spec."""
    return BODY.replace("    spec:\n      containers:\n", f"    spec:\n      {text}\n      containers:\n", 1)


# rule → a template that breaks it (saved with sample values: refused at save)
HOSTILE_TEMPLATES = {
    "privileged": (BODY.replace(IMAGE_LINE, IMAGE_LINE + "          securityContext: {privileged: true}\n", 1),
                   "spec.template.spec.containers[0].securityContext.privileged"),
    "host_path": (pod_field("volumes: [{name: root, hostPath: {path: /}}]"), "spec.template.spec.volumes[0].hostPath"),
    "host_namespaces": (pod_field("hostPID: true"), "spec.template.spec.hostPID"),
    "service_account": (pod_field("serviceAccountName: cluster-admin"), "spec.template.spec.serviceAccountName"),
    "node_name": (pod_field("nodeName: control-plane-1"), "spec.template.spec.nodeName"),
    "control_plane_toleration": (pod_field("tolerations: [{operator: Exists}]"), "spec.template.spec.tolerations[0]"),
    "token_secret": (BODY + "\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: steal, annotations: "
                            "{kubernetes.io/service-account.name: default}}\n"
                            "type: kubernetes.io/service-account-token\n", "type"),
    "external_ips": (BODY.replace("spec:\n  selector: {{ selector | tojson }}",
                                  "spec:\n  externalIPs: [10.96.0.1]\n  selector: {{ selector | tojson }}", 1),
                     "spec.externalIPs"),
    "kind": (BODY + "\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: me}\n"
                    "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n",
             "kind"),
}


@pytest.fixture(scope="module")
def team(mae):
    owner = mae.login(f"pol-owner-{uuid.uuid4().hex[:4]}")
    app = f"pol-{uuid.uuid4().hex[:6]}"
    assert owner.post("/apps", json={"name": app}).status_code == 201
    assert owner.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
    for info in mae.clusters.values():
        wait_for(lambda: get(info, "namespace", app), what="the app's namespaces")
    return owner, app


def nothing_but_mae_defaults_in(mae, app):
    for info in mae.clusters.values():
        for kind in ("deployments", "secrets", "services", "rolebindings"):
            listed = get(info, kind, "-n", app)
            names = [i["metadata"]["name"] for i in listed["items"]]
            assert names == [], f"{kind} in {app}: {names}"


@pytest.mark.parametrize("rule", list(HOSTILE_TEMPLATES))
def test_a_hostile_template_is_refused_when_saved(mae, team, rule):
    owner, app = team
    body, path = HOSTILE_TEMPLATES[rule]
    resp = owner.post(f"/apps/{app}/templates", json={"name": f"t-{rule.replace('_', '-')}", "kind": "version",
                                                      "body": body, "fields": FIELDS})
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "policy_violation"
    assert (error["details"]["rule"], error["details"]["path"]) == (rule, path)
    assert error["details"]["object"].split("/")[0] in ("Deployment", "Secret", "Service", "RoleBinding")
    assert rule.split("_")[0] in error["message"] or "not allowed" in error["message"]
    names = [t["name"] for t in owner.get("/templates", params={"app": app}).json()["items"]]
    assert f"t-{rule.replace('_', '-')}" not in names
    nothing_but_mae_defaults_in(mae, app)


def switchable_template(owner, app):
    """A template that passes with its sample values and breaks the policy with others."""
    body = pod_field("hostNetwork: {{ values.host_network | tojson }}").replace(
        "spec:\n  selector: {{ selector | tojson }}",
        "spec:\n  type: {{ values.service_type | tojson }}\n  selector: {{ selector | tojson }}", 1)
    fields = FIELDS + [{"name": "host_network", "type": "boolean", "default": False},
                       {"name": "service_type", "type": "string", "default": "ClusterIP"}]
    resp = owner.post(f"/apps/{app}/templates", json={"name": "switch", "kind": "version", "body": body,
                                                      "fields": fields})
    assert resp.status_code in (201, 409), resp.text


def test_values_that_break_the_policy_are_refused_when_a_version_is_made_or_changed(mae, team):
    owner, app = team
    switchable_template(owner, app)
    version = {"name": "v-host", "image": "nginx:1.25", "port": 80, "template": "switch",
               "values": {"host_network": True}}
    resp = owner.post(f"/apps/{app}/services/web/versions", json=version)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["details"] == {"field": "template", "template": "switch", "rule": "host_namespaces",
                                               "object": "Deployment/web-v-host",
                                               "path": "spec.template.spec.hostNetwork"}
    assert owner.get(f"/apps/{app}/services/web/versions/v-host").status_code == 404
    ok = owner.post(f"/apps/{app}/services/web/versions", json={**version, "values": {}})
    assert ok.status_code == 201, ok.text
    changed = owner.patch(f"/apps/{app}/services/web/versions/v-host", json={"values": {"host_network": True}})
    assert changed.status_code == 422 and changed.json()["error"]["code"] == "policy_violation"
    kept = owner.get(f"/apps/{app}/services/web/versions/v-host").json()
    assert kept["values"] == {}, "a refused change changes nothing"


def test_service_types_are_checked_against_the_environment_at_preview_and_deploy(mae, team):
    """config/test.yaml allows NodePort on test clusters only: a version with one is saved
    (some environment allows it), refused for prod at preview and deploy, deployed to test."""
    owner, app = team
    switchable_template(owner, app)
    made = owner.post(f"/apps/{app}/services/web/versions", json={
        "name": "v-np", "image": "nginx:1.25", "port": 80, "template": "switch",
        "values": {"service_type": "NodePort"}})
    assert made.status_code == 201, made.text
    for attempt in (lambda: owner.post(f"/apps/{app}/services/web/versions/v-np/preview", json={"clusters": ["prod"]}),
                    lambda: owner.post(f"/apps/{app}/services/web/versions/v-np/deploy", json={"env": "prod"})):
        resp = attempt()
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"]["details"]["rule"] == "service_type"
        assert resp.json()["error"]["details"]["path"] == "spec.type"
        assert "prod" in resp.json()["error"]["message"]
    assert get(mae.clusters["prod"], "service", "web-v-np", "-n", app) is None
    records = owner.get(f"/apps/{app}/records").json()["items"]
    assert not [r for r in records if r.get("version") == "v-np"], "a refused deploy leaves no record"
    resp = owner.post(f"/apps/{app}/services/web/versions/v-np/deploy", json={"env": "test"})
    assert resp.status_code == 202, resp.text
    live = wait_for(lambda: get(mae.clusters["test"], "service", "web-v-np", "-n", app), what="the Service on test")
    assert live["spec"]["type"] == "NodePort"


def test_only_a_platform_admin_may_raise_an_app_to_privileged_and_it_is_audited(mae, team):
    owner, app = team
    assert owner.get(f"/apps/{app}/policy").json() == {"pod_security": "baseline", "quota": None, "limits": None}
    refused = owner.put(f"/apps/{app}/policy", json={"pod_security": "privileged"})
    assert refused.status_code == 403
    stranger = mae.login(f"pol-stranger-{uuid.uuid4().hex[:4]}")
    assert stranger.get(f"/apps/{app}/policy").status_code == 404
    assert stranger.put(f"/apps/{app}/policy", json={"pod_security": "privileged"}).status_code == 404
    assert owner.get(f"/apps/{app}/policy").json()["pod_security"] == "baseline"
    bad = mae.admin.put(f"/apps/{app}/policy", json={"pod_security": "root"})
    assert bad.status_code == 422 and bad.json()["error"]["details"]["field"] == "pod_security"
    bad = mae.admin.put(f"/apps/{app}/policy", json={"quota": {"pods": "lots"}})
    assert bad.status_code == 422 and "quantity" in bad.json()["error"]["message"]

    body, _ = HOSTILE_TEMPLATES["privileged"]
    granted = mae.admin.put(f"/apps/{app}/policy", json={"pod_security": "privileged"})
    assert granted.status_code == 200, granted.text
    assert granted.json()["pod_security"] == "privileged"
    saved = owner.post(f"/apps/{app}/templates", json={"name": "node-agent", "kind": "version", "body": body,
                                                       "fields": FIELDS})
    assert saved.status_code == 201, saved.text
    # the platform rules still hold for a privileged app
    body, _ = HOSTILE_TEMPLATES["service_account"]
    still = owner.post(f"/apps/{app}/templates", json={"name": "sa", "kind": "version", "body": body,
                                                       "fields": FIELDS})
    assert still.status_code == 422 and still.json()["error"]["details"]["rule"] == "service_account"
    audit = mae.admin.get("/admin/audit", params={"action": "app_policy_changed"}).json()["items"]
    entry = next(e for e in audit if e["target"] == f"app:{app}")
    assert entry["actor"] == mae.admin.get("/me").json()["username"]
    assert entry["details"]["old"]["pod_security"] == "baseline"
    assert entry["details"]["new"]["pod_security"] == "privileged"

    # back to baseline: a version that needs privileged is refused again at deploy
    assert owner.post(f"/apps/{app}/services/web/versions", json={
        "name": "v-agent", "image": "nginx:1.25", "port": 80, "template": "node-agent"}).status_code == 201
    assert mae.admin.put(f"/apps/{app}/policy", json={"pod_security": "baseline"}).status_code == 200
    resp = owner.post(f"/apps/{app}/services/web/versions/v-agent/deploy", json={"env": "test"})
    assert resp.status_code == 422 and resp.json()["error"]["details"]["rule"] == "privileged"
    assert get(mae.clusters["test"], "deployment", "web-v-agent", "-n", app) is None
    assert on_cluster(mae.clusters["test"], "get", "ns", app).returncode == 0
