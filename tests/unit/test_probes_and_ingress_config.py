"""A version's probes and an ingress's hosts, TLS and routes: checked with 422s naming the
field, and rendered by the built-in templates as Kubernetes expects them."""
import pytest

from services.deploy.domain import manifests, policy, rendering, templates
from services.deploy.domain.config import check_probes, check_version, merge_version
from services.deploy.domain.ingress_config import check_ingress
from shared.errors import Invalid

GOOD = {"name": "v1", "image": "registry.example.com/shop/web:1.2.3", "port": 8080}
INGRESS = {"name": "www", "host": "shop.example.com", "routes": [{"path": "/", "service": "web", "version": "v1"}]}
FULL = {"path": "/live", "period_seconds": 20, "timeout_seconds": 2, "failure_threshold": 4,
        "initial_delay_seconds": 7}


def refused(check, *args, **kw) -> Invalid:
    with pytest.raises(Invalid) as caught:
        check(*args, **kw)
    assert caught.value.message
    return caught.value


def test_probes_get_kubernetes_defaults_and_readiness_every_5_seconds():
    checked = check_version({**GOOD, "probes": {"liveness": {"path": "/live"}, "startup": FULL}})
    assert checked["probes"]["liveness"] == {"path": "/live", "period_seconds": 10, "timeout_seconds": 1,
                                             "failure_threshold": 3, "initial_delay_seconds": 0}
    assert checked["probes"]["startup"] == FULL and "readiness" not in checked["probes"]
    assert checked["health_path"] == ""
    ready = check_version({**GOOD, "health_path": "/ready"})
    assert ready["probes"] == {"readiness": {"path": "/ready", "period_seconds": 5, "timeout_seconds": 1,
                                             "failure_threshold": 3, "initial_delay_seconds": 0}}


def test_health_path_is_the_readiness_path_in_short():
    both = check_version({**GOOD, "health_path": "/ready", "probes": {"readiness": {"path": "/ready",
                                                                                    "period_seconds": 3}}})
    assert both["health_path"] == "/ready" and both["probes"]["readiness"]["period_seconds"] == 3
    only_probe = check_version({**GOOD, "probes": {"readiness": {"path": "/r"}}})
    assert only_probe["health_path"] == "/r"
    error = refused(check_version, {**GOOD, "health_path": "/a", "probes": {"readiness": {"path": "/b"}}})
    assert error.details["field"] == "health_path" and "'/a'" in error.message and "'/b'" in error.message


def test_a_patch_of_one_keeps_the_other_in_step():
    stored = check_version({**GOOD, "probes": {"readiness": {"path": "/r", "period_seconds": 9}}})
    moved = merge_version(stored, check_version({"health_path": "/new"}, partial=True))
    assert moved["health_path"] == "/new" and moved["probes"]["readiness"] == {
        "path": "/new", "period_seconds": 9, "timeout_seconds": 1, "failure_threshold": 3, "initial_delay_seconds": 0}
    gone = merge_version(stored, check_version({"health_path": ""}, partial=True))
    assert gone["health_path"] == "" and gone["probes"] == {}
    changed = merge_version(stored, check_version({"probes": {"liveness": {"path": "/l"}}}, partial=True))
    assert changed["health_path"] == "" and set(changed["probes"]) == {"liveness"}
    assert merge_version(stored, check_version({"replicas": 2}, partial=True))["probes"] == stored["probes"]


@pytest.mark.parametrize("probes,field", [
    ("yes", "probes"), ({"alive": {"path": "/"}}, "probes.alive"), ({"liveness": "/l"}, "probes.liveness"),
    ({"liveness": {}}, "probes.liveness.path"), ({"liveness": {"path": "live"}}, "probes.liveness.path"),
    ({"liveness": {"path": "/", "period_seconds": 0}}, "probes.liveness.period_seconds"),
    ({"liveness": {"path": "/", "period_seconds": 301}}, "probes.liveness.period_seconds"),
    ({"startup": {"path": "/", "timeout_seconds": 61}}, "probes.startup.timeout_seconds"),
    ({"startup": {"path": "/", "timeout_seconds": 6, "period_seconds": 5}}, "probes.startup.timeout_seconds"),
    ({"startup": {"path": "/", "failure_threshold": 0}}, "probes.startup.failure_threshold"),
    ({"startup": {"path": "/", "failure_threshold": 121}}, "probes.startup.failure_threshold"),
    ({"readiness": {"path": "/", "initial_delay_seconds": -1}}, "probes.readiness.initial_delay_seconds"),
    ({"readiness": {"path": "/", "initial_delay_seconds": 3601}}, "probes.readiness.initial_delay_seconds"),
    ({"readiness": {"path": "/", "period_seconds": "5"}}, "probes.readiness.period_seconds"),
    ({"readiness": {"path": "/", "period_seconds": True}}, "probes.readiness.period_seconds"),
    ({"readiness": {"path": "/", "port": 9}}, "port"),
])
def test_bad_probes_name_the_field(probes, field):
    assert refused(check_probes, probes).details["field"] == field


def test_the_builtin_template_renders_each_probe_on_the_container_port():
    config = check_version({**GOOD, "health_path": "/ready", "probes": {"liveness": FULL, "startup": {"path": "/s"}}})
    objects = rendering.render_version(templates.BUILTINS["default-version"], "shop", "web", "v1", config)
    container = manifests.deployment_of(objects)["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"] == {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 5,
                                           "timeoutSeconds": 1, "failureThreshold": 3, "initialDelaySeconds": 0}
    assert container["livenessProbe"] == {"httpGet": {"path": "/live", "port": 8080}, "periodSeconds": 20,
                                          "timeoutSeconds": 2, "failureThreshold": 4, "initialDelaySeconds": 7}
    assert container["startupProbe"]["httpGet"] == {"path": "/s", "port": 8080}
    plain = rendering.render_version(templates.BUILTINS["default-version"], "shop", "web", "v1", check_version(GOOD))
    container = manifests.deployment_of(plain)["spec"]["template"]["spec"]["containers"][0]
    assert not {"readinessProbe", "livenessProbe", "startupProbe"} & set(container)


def test_a_version_saved_before_probes_keeps_its_readiness_probe():
    old = {"image": "nginx:1.25", "port": 80, "health_path": "/healthz"}  # no "probes" key
    objects = rendering.render_version(templates.BUILTINS["default-version"], "shop", "web", "v1", old)
    container = manifests.deployment_of(objects)["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 80}
    assert container["readinessProbe"]["periodSeconds"] == 5 and "livenessProbe" not in container


def test_secret_env_reaches_the_pods_by_secret_key_ref_per_key():
    secret = {"name": "web-v1-secret-env", "keys": ["API_KEY", "DB_PASSWORD"], "checksum": "c"}
    config = check_version({**GOOD, "env": {"MODE": "prod"}})
    objects = rendering.render_version(templates.BUILTINS["default-version"], "shop", "web", "v1", config,
                                       secret=secret)
    container = manifests.deployment_of(objects)["spec"]["template"]["spec"]["containers"][0]
    assert "envFrom" not in container
    assert container["env"] == [{"name": "MODE", "value": "prod"}] + [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": "web-v1-secret-env", "key": key}}}
        for key in ("API_KEY", "DB_PASSWORD")]


# -- ingresses ----------------------------------------------------------------------------

def test_an_ingress_takes_a_host_per_env_and_routes_without_a_version():
    checked = check_ingress({**INGRESS, "hosts": {"prod": "Shop.Example.com", "test": "test.shop.example.com"},
                             "routes": [{"path": "/", "service": "web"}]})
    assert checked["hosts"] == {"prod": "shop.example.com", "test": "test.shop.example.com"}
    assert checked["routes"] == [{"path": "/", "service": "web", "version": None, "port": None}]
    assert check_ingress({"hosts": None}, partial=True, name="www") == {"hosts": {}}
    assert check_ingress({"routes": [{"service": "web"}]}, partial=True, name="www")["routes"][0]["path"] == "/"


def test_tls_by_a_secret_or_by_a_configured_cert_manager_issuer():
    issuers = {"issuers": ("letsencrypt",), "cluster_issuers": ("corp-ca",)}
    assert check_ingress({**INGRESS, "tls": {"secret_name": "own"}}, **issuers)["tls"] == {"secret_name": "own"}
    assert check_ingress({**INGRESS, "tls": {"issuer": "letsencrypt"}}, **issuers)["tls"] == \
        {"secret_name": "www-tls", "issuer": "letsencrypt"}
    assert check_ingress({"tls": {"cluster_issuer": "corp-ca", "secret_name": "c"}}, partial=True, name="api",
                         **issuers)["tls"] == {"secret_name": "c", "cluster_issuer": "corp-ca"}
    error = refused(check_ingress, {**INGRESS, "tls": {"cluster_issuer": "letsencrypt"}}, **issuers)
    assert error.details["field"] == "tls.cluster_issuer" and "'corp-ca'" in error.message
    assert refused(check_ingress, {**INGRESS, "tls": {"issuer": "x"}}).details["field"] == "tls.issuer"
    assert refused(check_ingress, {**INGRESS, "tls": {"issuer": "letsencrypt", "cluster_issuer": "corp-ca"}},
                   **issuers).details["field"] == "tls"


@pytest.mark.parametrize("data,field", [
    ({"hosts": {"staging": "a.example.com"}}, "hosts.staging"), ({"hosts": ["a.example.com"]}, "hosts"),
    ({"hosts": {"prod": "not a host"}}, "hosts.prod"), ({"tls": {"secret": "x"}}, "tls"),
    ({"routes": [{"path": "/", "service": "web", "version": "V1"}]}, "routes[0].version"),
    ({"name": "x"}, "name"),
])
def test_bad_ingress_changes_name_the_field(data, field):
    assert refused(check_ingress, data, partial=True, name="www").details["field"] == field


def test_the_builtin_ingress_serves_the_env_host_with_cert_manager_and_the_stable_service():
    ingress = {"name": "www", "host": "shop.example.com", "hosts": {"prod": "shop.example.org"},
               "tls": {"secret_name": "www-tls", "cluster_issuer": "corp-ca"},
               "routes": [{"path": "/", "service": "web", "version": None, "port": 8081},
                          {"path": "/v1", "service": "web", "version": "v1", "port": None}], "values": {}}
    ctx = policy.Context.from_config({"CERT_MANAGER_CLUSTER_ISSUERS": ["corp-ca"]}, envs=["prod"])
    [prod] = rendering.render_ingress(templates.BUILTINS["default-ingress"], "shop", ingress, ctx, "prod")
    assert prod["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "corp-ca"}
    assert prod["spec"]["tls"] == [{"hosts": ["shop.example.org"], "secretName": "www-tls"}]
    assert [r["host"] for r in prod["spec"]["rules"]] == ["shop.example.org"]
    paths = prod["spec"]["rules"][0]["http"]["paths"]
    assert [p["backend"]["service"] for p in paths] == [{"name": "web", "port": {"number": 8081}},
                                                        {"name": "web-v1", "port": {"number": 80}}]
    [test] = rendering.render_ingress(templates.BUILTINS["default-ingress"], "shop", ingress, ctx, "test")
    assert test["spec"]["rules"][0]["host"] == "shop.example.com"


def test_cert_manager_annotations_are_allowed_with_exactly_the_configured_issuers():
    def ingress(annotations):
        return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": "i", "namespace": "shop", "annotations": annotations}, "spec": {}}
    # the list of annotations leaves cert-manager out; the issuers config lets exactly its names in
    ctx = policy.Context.from_config({"INGRESS_ANNOTATIONS": ["example.com/*"],
                                      "CERT_MANAGER_ISSUERS": ["letsencrypt"]})
    assert policy.violations([ingress({"cert-manager.io/issuer": "letsencrypt"})], ctx) == []
    assert policy.violations([ingress({"cert-manager.io/issuer": "someone-elses"})], ctx)
    assert policy.violations([ingress({"cert-manager.io/cluster-issuer": "letsencrypt"})], ctx), \
        "no cluster issuers configured: the list decides, and it leaves them out"
    assert policy.Context.from_config({"CERT_MANAGER_ISSUERS": ["letsencrypt"]}).issuers(
        "cert-manager.io/issuer") == ("letsencrypt",)
    with_issuer = {"name": "www", "host": "shop.example.com", "tls": {"secret_name": "www-tls", "issuer": "x"},
                   "routes": [{"path": "/", "service": "web", "version": "v1"}], "values": {}}
    with pytest.raises(policy.PolicyRefused):
        rendering.render_ingress(templates.BUILTINS["default-ingress"], "shop", with_issuer, ctx)
