"""The workload policy table (services/deploy/domain/policy.py), rule by rule.

``CASES`` holds, for every rule in the table, an object that breaks it and the path the
refusal must name; the first test fails when a rule is added without a case. Every
baseline case is also refused by the sandbox's Pod Security Admission (the same checks
a real API server makes for a namespace labelled ``enforce: baseline``), so MAE refuses
at save time what the cluster would refuse at deploy time, and no less.
"""
import copy

import pytest

from sandbox.admission import pod_security
from services.deploy.domain import manifests, policy, rendering, templates
from services.deploy.domain.policy import Context, PolicyRefused

BASE = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web-v1"},
        "spec": {"selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}}
C0 = "spec.template.spec.containers[0]"


def deployment(pod=None, container=None, meta=None) -> dict:
    obj = copy.deepcopy(BASE)
    obj["spec"]["template"]["spec"].update(pod or {})
    obj["spec"]["template"]["spec"]["containers"][0].update(container or {})
    obj["spec"]["template"]["metadata"].update(meta or {})
    return obj


def service(**spec) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-v1"},
            "spec": {"selector": {"a": "b"}, "ports": [{"port": 80}], **spec}}


def ingress(annotations) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "www", "annotations": annotations},
            "spec": {"rules": [{"host": "shop.example.com"}]}}


# rule → [(object, path named in the refusal)]
CASES = {
    "host_namespaces": [(deployment(pod={"hostNetwork": True}), "spec.template.spec.hostNetwork"),
                        (deployment(pod={"hostPID": True}), "spec.template.spec.hostPID"),
                        (deployment(pod={"hostIPC": True}), "spec.template.spec.hostIPC")],
    "privileged": [(deployment(container={"securityContext": {"privileged": True}}),
                    f"{C0}.securityContext.privileged"),
                   (deployment(pod={"initContainers": [{"name": "i", "image": "x",
                                                        "securityContext": {"privileged": True}}]}),
                    "spec.template.spec.initContainers[0].securityContext.privileged")],
    "capabilities": [(deployment(container={"securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}),
                      f"{C0}.securityContext.capabilities.add[0]"),
                     (deployment(container={"securityContext": {"capabilities": {"add": ["NET_RAW"]}}}),
                      f"{C0}.securityContext.capabilities.add[0]")],
    "host_path": [(deployment(pod={"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}),
                   "spec.template.spec.volumes[0].hostPath")],
    "host_ports": [(deployment(container={"ports": [{"containerPort": 80, "hostPort": 80}]}),
                    f"{C0}.ports[0].hostPort")],
    "apparmor": [(deployment(meta={"annotations": {
                     "container.apparmor.security.beta.kubernetes.io/web": "unconfined"}}),
                  "spec.template.metadata.annotations[container.apparmor.security.beta.kubernetes.io/web]"),
                 (deployment(container={"securityContext": {"appArmorProfile": {"type": "Unconfined"}}}),
                  f"{C0}.securityContext.appArmorProfile.type")],
    "selinux": [(deployment(container={"securityContext": {"seLinuxOptions": {"type": "spc_t"}}}),
                 f"{C0}.securityContext.seLinuxOptions.type"),
                (deployment(pod={"securityContext": {"seLinuxOptions": {"user": "system_u"}}}),
                 "spec.template.spec.securityContext.seLinuxOptions.user")],
    "proc_mount": [(deployment(container={"securityContext": {"procMount": "Unmasked"}}),
                    f"{C0}.securityContext.procMount")],
    "seccomp": [(deployment(pod={"securityContext": {"seccompProfile": {"type": "Unconfined"}}}),
                 "spec.template.spec.securityContext.seccompProfile.type")],
    "sysctls": [(deployment(pod={"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}}),
                 "spec.template.spec.securityContext.sysctls[0].name")],
    "host_process": [(deployment(pod={"securityContext": {"windowsOptions": {"hostProcess": True}}}),
                      "spec.template.spec.securityContext.windowsOptions.hostProcess")],
    "service_account": [(deployment(pod={"serviceAccountName": "kube-admin"}),
                         "spec.template.spec.serviceAccountName")],
    "service_account_token": [(deployment(pod={"volumes": [{"name": "t", "projected": {"sources": [
                                  {"serviceAccountToken": {"path": "token"}}]}}]}),
                               "spec.template.spec.volumes[0].projected.sources[0].serviceAccountToken")],
    "token_secret": [({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
                       "metadata": {"name": "t", "annotations": {"kubernetes.io/service-account.name": "default"}}},
                      "type")],
    "node_name": [(deployment(pod={"nodeName": "master-1"}), "spec.template.spec.nodeName")],
    "control_plane_toleration": [
        (deployment(pod={"tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                                          "effect": "NoSchedule"}]}), "spec.template.spec.tolerations[0]"),
        (deployment(pod={"tolerations": [{"operator": "Exists"}]}), "spec.template.spec.tolerations[0]")],
    "external_ips": [(service(externalIPs=["10.0.0.1"]), "spec.externalIPs")],
    "service_type": [(service(type="LoadBalancer"), "spec.type"), (service(type="ExternalName"), "spec.type")],
    "ingress_annotation": [(ingress({"nginx.ingress.kubernetes.io/configuration-snippet": "lua"}),
                            "metadata.annotations[nginx.ingress.kubernetes.io/configuration-snippet]"),
                           (ingress({"nginx.ingress.kubernetes.io/auth-url": "http://10.0.0.1"}),
                            "metadata.annotations[nginx.ingress.kubernetes.io/auth-url]")],
}
BASELINE = {r.name for r in policy.RULES if r.level == "baseline"}


def test_every_rule_in_the_table_has_cases_and_every_case_a_rule():
    assert set(CASES) == {r.name for r in policy.RULES}


@pytest.mark.parametrize("rule,index", [(rule, i) for rule, cases in CASES.items() for i in range(len(cases))])
def test_each_rule_refuses_its_case_naming_the_rule_object_and_path(rule, index):
    obj, path = CASES[rule][index]
    with pytest.raises(PolicyRefused) as caught:
        policy.check([obj], Context())
    assert (caught.value.rule, caught.value.path) == (rule, path)
    assert caught.value.object == f"{obj['kind']}/{obj['metadata']['name']}"
    assert caught.value.details == {"rule": rule, "object": caught.value.object, "path": path}
    # the object stripped of the offending part passes: the rule refuses that field, not the kind
    assert policy.violations([BASE, service()], Context()) == []


@pytest.mark.parametrize("rule,index", [(rule, i) for rule in sorted(BASELINE) for i in range(len(CASES[rule]))])
def test_what_the_baseline_rules_refuse_the_cluster_refuses_too(rule, index):
    obj, _ = CASES[rule][index]
    template = obj["spec"]["template"]
    assert pod_security(template["spec"], "baseline", template["metadata"].get("annotations")), \
        f"the sandbox's Pod Security baseline lets the {rule} case through"
    assert pod_security(BASE["spec"]["template"]["spec"], "baseline") == []


@pytest.mark.parametrize("rule", sorted(BASELINE))
def test_an_admins_privileged_override_waives_the_pod_security_rules_only(rule):
    for obj, _ in CASES[rule]:
        assert policy.violations([obj], Context(level="privileged")) == []
    for platform_rule in ("service_account", "node_name", "token_secret", "external_ips"):
        obj, _ = CASES[platform_rule][0]
        assert {v.rule for v in policy.violations([obj], Context(level="privileged"))} == {platform_rule}


def test_service_types_are_allowed_per_environment():
    config = {"SERVICE_TYPES": {"test": ["ClusterIP", "NodePort"], "prod": ["ClusterIP", "LoadBalancer"]}}
    node_port, lb = service(type="NodePort"), service(type="LoadBalancer")
    assert policy.violations([node_port], Context.from_config(config, envs=["test"])) == []
    assert [v.rule for v in policy.violations([node_port], Context.from_config(config, envs=["prod"]))] == \
        ["service_type"]
    # a deploy to both needs both to allow it
    assert policy.violations([lb], Context.from_config(config, envs=["test", "prod"]))
    # at save time (no environment yet) what some environment allows passes; the deploy checks again
    assert policy.violations([node_port, lb], Context.from_config(config)) == []
    assert policy.violations([service(type="ExternalName")], Context.from_config(config))
    # nothing configured: ClusterIP only
    assert policy.violations([node_port], Context.from_config({}))
    assert policy.violations([service()], Context.from_config({}, envs=["prod"])) == []


def test_ingress_annotations_come_from_an_allowlist_and_never_a_snippet():
    ctx = Context.from_config({"INGRESS_ANNOTATIONS": ["example.com/*", "x.io/server-snippet"]})
    assert policy.violations([ingress({"example.com/anything": "1"})], ctx) == []
    assert policy.violations([ingress({"x.io/server-snippet": "1"})], ctx), "snippets even when listed"
    assert policy.violations([ingress({"cert-manager.io/cluster-issuer": "le"})], ctx), "the list replaces"
    assert policy.violations([ingress({"cert-manager.io/cluster-issuer": "le",
                                       "nginx.ingress.kubernetes.io/rewrite-target": "/"})], Context()) == []


def test_the_builtin_templates_pass_and_pods_get_no_token_unless_asked():
    fields = templates.BUILTINS["default-version"]["fields"]
    objects = rendering.check_with_samples("version", templates.BUILTINS["default-version"]["body"], fields, "shop")
    pod = manifests.deployment_of(objects)["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    [checked] = manifests.check([deployment(pod={"automountServiceAccountToken": True})], "shop", {})
    assert checked["spec"]["template"]["spec"]["automountServiceAccountToken"] is True


def test_kinds_and_namespaces_are_policy_refusals_too():
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "r"}}
    with pytest.raises(PolicyRefused) as caught:
        manifests.check([role], "shop", {})
    assert (caught.value.rule, caught.value.path) == ("kind", "kind")
    elsewhere = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "kube-system"}}
    with pytest.raises(PolicyRefused) as caught:
        manifests.check([elsewhere], "shop", {})
    assert (caught.value.rule, caught.value.path) == ("namespace", "metadata.namespace")


def test_a_template_is_refused_at_save_with_the_rule_as_the_api_shows_it():
    body = templates.BUILTINS["default-version"]["body"].replace(
        "image: {{ image | tojson }}", "image: {{ image | tojson }}\n          securityContext: {privileged: true}")
    with pytest.raises(PolicyRefused) as caught:
        rendering.check_with_samples("version", body, templates.BUILTINS["default-version"]["fields"], "shop")
    error = rendering.refusal(caught.value, "The template is refused:", {"field": "body"})
    assert error.code == "policy_violation"
    assert error.details == {"field": "body", "rule": "privileged", "object": "Deployment/sample-v1",
                             "path": "spec.template.spec.containers[0].securityContext.privileged"}
    assert "privileged" in error.message
