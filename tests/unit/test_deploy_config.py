"""A version's and an ingress's config: 422 naming the field."""
import pytest

from services.deploy.domain.config import check_version
from services.deploy.domain.ingress_config import check_ingress
from shared.errors import Invalid

GOOD = {"name": "v1", "image": "registry.example.com/shop/web:1.2.3", "port": 8080}


def field_of(data, **kw):
    with pytest.raises(Invalid) as caught:
        check_version({**GOOD, **data}, **kw)
    assert caught.value.message
    return caught.value.details["field"]


def test_a_minimal_version_gets_defaults():
    checked = check_version(GOOD)
    assert checked == {"name": "v1", "image": GOOD["image"], "port": 8080, "replicas": 1, "env": [],
                       "command": [], "args": [], "resources": {}, "health_path": "", "probes": {},
                       "template": None, "values": {}, "description": ""}


@pytest.mark.parametrize("data,field", [
    ({"name": "V1"}, "name"), ({"name": "a" * 64}, "name"),
    ({"image": ""}, "image"), ({"image": "nginx latest"}, "image"), ({"image": 5}, "image"),
    ({"image": "nginx\"; rm -rf /"}, "image"),
    ({"port": 0}, "port"), ({"port": 65536}, "port"), ({"port": "80"}, "port"), ({"port": True}, "port"),
    ({"port": None}, "port"),
    ({"replicas": -1}, "replicas"), ({"replicas": 51}, "replicas"), ({"replicas": 1.5}, "replicas"),
    ({"env": {"1BAD": "x"}}, "env.1BAD"), ({"env": {"BAD-NAME": "x"}}, "env.BAD-NAME"),
    ({"env": {"OK": {"nested": 1}}}, "env.OK"), ({"env": "A=1"}, "env"),
    ({"env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}, "env.A"),
    ({"command": "run"}, "command"), ({"args": ["a", 1]}, "args"),
    ({"resources": {"requests": {"cpu": "lots"}}}, "resources.requests.cpu"),
    ({"resources": {"limits": {"memory": "1.2.3Gi"}}}, "resources.limits.memory"),
    ({"resources": {"limits": {"gpu": "1"}}}, "resources.limits.gpu"),
    ({"resources": {"burst": {}}}, "resources.burst"),
    ({"health_path": "healthz"}, "health_path"), ({"health_path": "/a b"}, "health_path"),
    ({"template": "Bad_Name"}, "template"), ({"values": [1]}, "values"),
    ({"colour": "red"}, "colour"),
])
def test_invalid_version_config_names_the_field(data, field):
    assert field_of(data) == field


def test_valid_quantities_and_env_forms():
    checked = check_version({**GOOD, "env": {"A_1": 5, "_B": "x"},
                             "resources": {"cpu": "250m", "memory": "512Mi"}})
    assert checked["env"] == [{"name": "A_1", "value": "5"}, {"name": "_B", "value": "x"}]
    assert checked["resources"] == {"requests": {"cpu": "250m", "memory": "512Mi"}}
    assert check_version({**GOOD, "resources": {"limits": {"cpu": 2, "memory": "1e3"}}})["resources"] == \
        {"limits": {"cpu": "2", "memory": "1e3"}}


def test_partial_updates_check_only_what_is_given():
    assert check_version({"replicas": 3}, partial=True) == {"replicas": 3}
    with pytest.raises(Invalid) as caught:
        check_version({"name": "v2"}, partial=True)
    assert caught.value.details["field"] == "name"


@pytest.mark.parametrize("data,field", [
    ({"host": "not a host"}, "host"), ({"host": ""}, "host"),
    ({"tls": {"secret_name": "Bad"}}, "tls.secret_name"), ({"tls": "yes"}, "tls"),
    ({"routes": []}, "routes"), ({"routes": [{"path": "x", "service": "web", "version": "v1"}]}, "routes[0].path"),
    ({"routes": [{"path": "/", "service": "Web", "version": "v1"}]}, "routes[0].service"),
    ({"routes": [{"path": "/", "service": "web", "version": "v1", "port": 0}]}, "routes[0].port"),
    ({"routes": [{"path": "/", "service": "web", "version": "v1"}, {"path": "/", "service": "web",
                                                                    "version": "v2"}]}, "routes[1].path"),
])
def test_invalid_ingress_names_the_field(data, field):
    good = {"name": "www", "host": "shop.example.com", "routes": [{"path": "/", "service": "web", "version": "v1"}]}
    with pytest.raises(Invalid) as caught:
        check_ingress({**good, **data})
    assert caught.value.details["field"] == field
