"""The stable Service a route applies (services/deploy/domain/shipping.py): it selects exactly the
routed version's pods and serves the ports that version's own Service serves."""
from services.deploy.domain import names, shipping


def version_objects(service_ports=None, container_port=8080, template_selector=None):
    selector = template_selector or names.selector("shop", "web", "v2")
    objects = [{"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web-v2", "namespace": "shop"},
                "spec": {"selector": {"matchLabels": selector},
                         "template": {"metadata": {"labels": selector},
                                      "spec": {"containers": [{"name": "web", "image": "nginx",
                                                               "ports": [{"containerPort": container_port}]}]}}}}]
    if service_ports is not None:
        objects.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-v2", "namespace": "shop"},
                        "spec": {"selector": selector, "ports": service_ports}})
    return objects


def test_it_selects_the_versions_pods_and_serves_its_services_ports():
    ports = [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 30080},
             {"name": "metrics", "port": 9090, "targetPort": 9090}]
    svc = shipping.stable_service("shop", "web", "v2", version_objects(ports))
    assert svc["metadata"]["name"] == names.routed_name("web") == "web"
    assert svc["metadata"]["namespace"] == "shop"
    assert svc["spec"]["selector"] == {names.APP: "shop", names.SERVICE: "web", names.VERSION: "v2"}
    assert svc["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": 8080},
                                    {"name": "metrics", "port": 9090, "targetPort": 9090}]  # never a nodePort
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["metadata"]["annotations"][shipping.ROUTED_VERSION] == "v2"
    assert svc["metadata"]["labels"][names.MANAGED_BY] == "mae"
    assert names.VERSION not in svc["metadata"]["labels"]  # not one version's object


def test_without_a_service_of_its_own_port_80_reaches_the_containers_port():
    svc = shipping.stable_service("shop", "web", "v2", version_objects(None, container_port=3000))
    assert svc["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": 3000}]


def test_a_templates_own_pod_selector_is_followed():
    own = {"app": "web", "track": "v2"}
    svc = shipping.stable_service("shop", "web", "v2", version_objects(None, template_selector=own))
    assert svc["spec"]["selector"] == own


def test_replicas_are_checked():
    for good in (0, 3, 50):
        assert shipping.check_replicas(good) == good
    for bad in (-1, 51, "3", 2.5, True, None):
        try:
            shipping.check_replicas(bad)
        except shipping.Invalid as exc:
            assert exc.details == {"field": "replicas"}
        else:
            raise AssertionError(f"{bad!r} was accepted")
