"""Templates: the built-ins render, user templates are refused for sandbox escapes and forbidden objects."""
import pytest
from jinja2.exceptions import SecurityError

from services.deploy.domain import manifests, names, rendering, templates
from services.deploy.domain.templates import TemplateRefused

VERSION = {"image": "nginx:1.25", "port": 8080, "replicas": 3, "env": [{"name": "MODE", "value": "prod"}],
           "command": ["/bin/app"], "args": ["--x"], "resources": {"limits": {"memory": "256Mi"}},
           "health_path": "/healthz", "values": {"progress_deadline_seconds": 30}}

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ ''['__class__'] }}",
    "{{ values|attr('__class__') }}",
    "{{ (values|attr('__cla' ~ 'ss__')) }}",
    "{{ values.__class__.__base__.__subclasses__() }}",
    "{% include 'x' %}",
    "{% import 'x' as y %}",
    "{% extends 'base' %}",
    "{% for i in range(10**8) %}{% endfor %}",
    "{{ 'x' * 100000000 }}",
    "{{ 2 ** 100000000 }}",
]


FIELDS = templates.BUILTINS["default-version"]["fields"]


def test_the_sample_body_itself_is_accepted():
    # so that each refusal below is for its payload, not for the body around it
    assert len(rendering.check_with_samples("version", sample_body("{{ image }} {{ values.service_port }}"),
                                            FIELDS, "shop")) == 2


def sample_body(extra: str) -> str:
    return templates.BUILTINS["default-version"]["body"] + "\n# " + extra + "\n"


@pytest.mark.parametrize("payload", ESCAPES)
def test_sandbox_escape_payloads_are_refused(payload):
    with pytest.raises(TemplateRefused):
        rendering.check_with_samples("version", sample_body(payload), FIELDS, "shop")


@pytest.mark.parametrize("payload", ["{{ values|attr('__class__') }}", "{{ (values|attr('__cla' ~ 'ss__')) }}"])
def test_the_sandbox_itself_refuses_what_the_static_check_cannot_see(payload):
    # The static check refuses |attr outright; behind it the sandbox stops the same
    # payload at render time, so one layer failing does not open the way.
    with pytest.raises(TemplateRefused, match="'attr' filter"):
        templates._static_check(payload)
    with pytest.raises(SecurityError):
        templates._ENV.from_string(payload).render(values={})


def test_only_plain_data_reaches_a_template():
    class Secret:
        password = "hunter2"

    with pytest.raises(TypeError):
        templates.render("{{ x.password }}", {"x": Secret()})


def test_the_builtin_version_template_renders_a_deployment_and_a_service_with_maes_labels():
    objects = rendering.render_version(templates.BUILTINS["default-version"], "shop", "web", "v1", VERSION)
    assert [o["kind"] for o in objects] == ["Service", "Deployment"]
    deployment = manifests.deployment_of(objects)
    assert deployment["metadata"]["name"] == "web-v1" and deployment["metadata"]["namespace"] == "shop"
    assert deployment["metadata"]["labels"] == names.version_labels("shop", "web", "v1")
    assert deployment["spec"]["progressDeadlineSeconds"] == 30
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nginx:1.25" and container["env"] == [{"name": "MODE", "value": "prod"}]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert deployment["spec"]["selector"]["matchLabels"].items() <= \
        deployment["spec"]["template"]["metadata"]["labels"].items()
    stamped = manifests.stamp_record(objects, 42)
    assert manifests.deployment_of(stamped)["metadata"]["annotations"]["mae.io/record-id"] == "42"
    assert "mae.io/record-id" not in deployment["metadata"]["annotations"]  # the original is untouched


def test_values_that_would_break_yaml_stay_strings():
    hostile = {**VERSION, "env": [{"name": "X", "value": "a\nkind: ClusterRole\n---\n{x: 1}"}]}
    objects = rendering.render_version(templates.BUILTINS["default-version"], "shop", "web", "v1", hostile)
    assert len(objects) == 2
    assert manifests.deployment_of(objects)["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == \
        "a\nkind: ClusterRole\n---\n{x: 1}"


def test_the_builtin_ingress_renders_routes_to_versions_services():
    ingress = {"name": "www", "host": "shop.example.com", "tls": {"secret_name": "shop-tls"},
               "routes": [{"path": "/", "service": "web", "version": "v1", "port": None}], "values": {}}
    [obj] = rendering.render_ingress(templates.BUILTINS["default-ingress"], "shop", ingress)
    path = obj["spec"]["rules"][0]["http"]["paths"][0]
    assert path["backend"]["service"] == {"name": "web-v1", "port": {"number": 80}}
    assert obj["spec"]["tls"] == [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}]


FORBIDDEN = {
    "another namespace": ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: kube-system}\n",
                          "namespace 'kube-system'"),
    "a ClusterRole": ("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: admin2}\n"
                      "rules: [{apiGroups: ['*'], resources: ['*'], verbs: ['*']}]\n", "cluster-scoped"),
    "a Namespace": ("apiVersion: v1\nkind: Namespace\nmetadata: {name: evil}\n", "cluster-scoped"),
    "a Role": ("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r}\n", "not allowed"),
    "a Pod": ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n", "not allowed"),
    "an old apiVersion": ("apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: i}\n", "apiVersion"),
}


@pytest.mark.parametrize("case", list(FORBIDDEN))
def test_forbidden_objects_are_refused_with_the_reason(case):
    extra, reason = FORBIDDEN[case]
    body = templates.BUILTINS["default-version"]["body"] + "\n---\n" + extra
    with pytest.raises(TemplateRefused, match=reason):
        rendering.check_with_samples("version", body, FIELDS, "shop")


def test_the_namespace_is_forced_when_absent_and_labels_added():
    [obj] = manifests.check(manifests.parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"),
                            "shop", {"mae.io/app": "shop"})
    assert obj["metadata"]["namespace"] == "shop" and obj["metadata"]["labels"] == {"mae.io/app": "shop"}


def test_a_version_template_must_render_its_deployment_under_the_contract_name():
    body = templates.BUILTINS["default-version"]["body"].replace("name: {{ name | tojson }}", "name: other", 1)
    with pytest.raises(TemplateRefused, match="must be named"):
        rendering.check_with_samples("version", body, FIELDS, "shop")


def test_templates_that_do_not_render_are_refused_with_the_reason():
    with pytest.raises(TemplateRefused, match="not given"):
        rendering.check_with_samples("version", sample_body("{{ nope }}"), FIELDS, "shop")
    with pytest.raises(TemplateRefused, match="not valid jinja2"):
        rendering.check_with_samples("version", sample_body("{% if %}"), FIELDS, "shop")
    with pytest.raises(TemplateRefused, match="valid YAML"):
        rendering.check_with_samples("version", "a: [\n", [], "shop")


def test_fields_are_checked_and_give_defaults():
    fields = templates.check_fields([{"name": "tier", "type": "string", "default": "web"},
                                     {"name": "replicas_max", "type": "integer"}])
    assert fields[1]["default"] == 1
    assert templates.resolve_values(fields, {"replicas_max": 5}) == {"tier": "web", "replicas_max": 5}
    from shared.errors import Invalid

    with pytest.raises(Invalid) as caught:
        templates.resolve_values(fields, {"replicas_max": "5"})
    assert caught.value.details["field"] == "values.replicas_max"
    with pytest.raises(Invalid):
        templates.check_fields([{"name": "__x", "type": "string"}])
    with pytest.raises(Invalid):
        templates.check_fields([{"name": "x", "type": "integer", "default": "1"}])


def test_long_names_are_hashed_into_a_dns_label():
    name = names.object_name("s" * 40, "v" * 40)
    assert len(name) <= 63 and name != names.object_name("s" * 40, "v" * 39 + "w")
