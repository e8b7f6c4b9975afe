"""An application's own templates previewed, changed and deleted, on the deploy service
over RPC (real MariaDB, Redis, RabbitMQ; the render workers of the service itself).

A preview renders exactly as a save does: the same refusals (the reason in words, a policy
rule with its object and path), and Secret values never in the answer. A change or a
delete never leaves a version or an ingress that uses the template unable to deploy.
"""
import uuid

import pytest

from services.deploy.domain import templates
from shared.errors import Conflict, Invalid, NotFound, PolicyViolation
# the deploy service with its stand-ins for the cluster and org services
from tests.service.test_deploy_service import ACTOR, deploy, deploy_config  # noqa: F401

BUILTIN = templates.BUILTINS["default-version"]
INGRESS = templates.BUILTINS["default-ingress"]
PASSWORD = "hunter2-" + uuid.uuid4().hex[:8]
WITH_SECRET = BUILTIN["body"] + (
    "\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: '{{ name }}-db'}\n"
    "stringData: {password: {{ values.password | tojson }}}\n")
SECRET_FIELDS = BUILTIN["fields"] + [{"name": "password", "type": "string", "default": "sample"}]
PRIVILEGED = BUILTIN["body"].replace("          image: {{ image | tojson }}\n",
                                     "          image: {{ image | tojson }}\n"
                                     "          securityContext: {privileged: {{ values.privileged | tojson }}}\n", 1)
SWITCH_FIELDS = BUILTIN["fields"] + [{"name": "privileged", "type": "boolean", "default": False}]


def new_app() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def test_a_preview_renders_with_sample_values_and_the_values_given_and_stores_nothing(deploy):
    app = new_app()
    shown = deploy.preview_template(app, {"kind": "version", "body": BUILTIN["body"], "fields": BUILTIN["fields"],
                                          "values": {"service_port": 8081}})
    assert sorted(m["kind"] for m in shown["manifests"]) == ["Deployment", "Service"]
    service = next(m for m in shown["manifests"] if m["kind"] == "Service")
    deployment = next(m for m in shown["manifests"] if m["kind"] == "Deployment")
    assert service["spec"]["ports"][0]["port"] == 8081
    assert deployment["spec"]["progressDeadlineSeconds"] == 600  # the field's default
    assert deployment["metadata"]["namespace"] == app
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.com/sample:1.0"
    assert shown["values"] == {"progress_deadline_seconds": 600, "service_port": 8081}
    assert [t["name"] for t in deploy.list_templates([app])["items"] if t["app"] == app] == []

    ingress = deploy.preview_template(app, {"kind": "ingress", "body": INGRESS["body"],
                                            "fields": INGRESS["fields"]})
    assert [m["kind"] for m in ingress["manifests"]] == ["Ingress"]
    assert ingress["manifests"][0]["spec"]["rules"][0]["host"] == "sample.example.com"


def test_a_template_that_does_not_render_is_refused_with_the_reason_in_words(deploy):
    app = new_app()
    with pytest.raises(Invalid) as caught:
        deploy.preview_template(app, {"kind": "version", "body": "kind: {{ name"})
    assert caught.value.code == "invalid" and "not valid jinja2 (line 1)" in caught.value.message
    with pytest.raises(Invalid) as caught:
        deploy.preview_template(app, {"kind": "version", "body": BUILTIN["body"]})  # its fields missing
    assert "progress_deadline_seconds" in caught.value.message
    with pytest.raises(Invalid) as caught:
        deploy.preview_template(app, {"kind": "version", "body": BUILTIN["body"], "fields": BUILTIN["fields"],
                                      "values": {"service_port": "eighty"}})
    assert caught.value.details == {"field": "values.service_port"}
    with pytest.raises(Invalid) as caught:
        deploy.preview_template(app, {"kind": "version", "body": BUILTIN["body"], "name": "x"})
    assert "name" in caught.value.message


def test_a_policy_refusal_names_its_rule_object_and_path_as_a_save_does(deploy):
    app = new_app()
    body = {"kind": "version", "body": PRIVILEGED, "fields": SWITCH_FIELDS}
    assert deploy.preview_template(app, body)["values"]["privileged"] is False
    with pytest.raises(PolicyViolation) as previewed:
        deploy.preview_template(app, {**body, "values": {"privileged": True}})
    assert previewed.value.details["rule"] == "privileged"
    assert previewed.value.details["object"] == "Deployment/sample-v1"
    assert previewed.value.details["path"] == "spec.template.spec.containers[0].securityContext.privileged"
    hostile = {"kind": "version", "body": PRIVILEGED.replace("{{ values.privileged | tojson }}", "true"),
               "fields": SWITCH_FIELDS}
    with pytest.raises(PolicyViolation) as saved:
        deploy.create_template(app, {"name": "root", **hostile}, ACTOR)
    with pytest.raises(PolicyViolation) as again:
        deploy.preview_template(app, hostile)
    assert again.value.message == saved.value.message
    assert again.value.details == saved.value.details


def test_a_secret_a_template_renders_is_shown_without_its_values(deploy):
    app = new_app()
    shown = deploy.preview_template(app, {"kind": "version", "body": WITH_SECRET, "fields": SECRET_FIELDS,
                                          "values": {"password": PASSWORD}})
    secret = next(m for m in shown["manifests"] if m["kind"] == "Secret")
    assert secret["data"] == {"password": "<redacted>"} and "stringData" not in secret
    assert PASSWORD not in repr(shown["manifests"])


def test_a_change_is_checked_as_a_save_and_kept_from_what_uses_the_template(deploy):
    app = new_app()
    deploy.create_template(app, {"name": "mine", "kind": "version", "body": PRIVILEGED, "fields": SWITCH_FIELDS},
                           ACTOR)
    changed = deploy.update_template(app, "mine", {"kind": "version", "body": WITH_SECRET,
                                                   "fields": SECRET_FIELDS}, ACTOR)
    assert changed["body"] == WITH_SECRET and [f["name"] for f in changed["fields"]][-1] == "password"
    listed = {t["name"]: t for t in deploy.list_templates([app])["items"] if t["app"] == app}
    assert listed["mine"]["body"] == WITH_SECRET
    with pytest.raises(PolicyViolation):  # refused as a save is: the template stays as it was
        deploy.update_template(app, "mine", {"kind": "version", "fields": SWITCH_FIELDS,
                                             "body": PRIVILEGED.replace("{{ values.privileged | tojson }}", "true")},
                               ACTOR)
    with pytest.raises(Invalid) as caught:
        deploy.update_template(app, "mine", {"name": "other", "kind": "version", "body": WITH_SECRET,
                                             "fields": SECRET_FIELDS}, ACTOR)
    assert caught.value.details == {"field": "name"}
    with pytest.raises(Invalid):
        deploy.update_template(app, "default-version", {"kind": "version", "body": BUILTIN["body"]}, ACTOR)
    with pytest.raises(NotFound):
        deploy.update_template(new_app(), "mine", {"kind": "version", "body": WITH_SECRET,
                                                   "fields": SECRET_FIELDS}, ACTOR)

    deploy.create_service(app, {"name": "web"}, ACTOR)
    deploy.create_version(app, "web", {"name": "v1", "image": "x:1", "port": 80, "template": "mine",
                                       "values": {"password": "p"}}, ACTOR)
    with pytest.raises(Conflict) as caught:  # another kind: the version could not render with it
        deploy.update_template(app, "mine", {"kind": "ingress",
                                             "body": INGRESS["body"],
                                             "fields": INGRESS["fields"]}, ACTOR)
    assert "version web/v1" in caught.value.message
    retyped = [f if f["name"] != "password" else {**f, "type": "integer", "default": 1} for f in SECRET_FIELDS]
    with pytest.raises(Conflict) as caught:  # the version's value no longer fits the field
        deploy.update_template(app, "mine", {"kind": "version", "body": WITH_SECRET, "fields": retyped}, ACTOR)
    assert caught.value.details["used_by"] == ["version web/v1"]
    assert listed["mine"]["fields"] == [t for t in deploy.list_templates([app])["items"]
                                        if t["name"] == "mine"][0]["fields"]


def test_a_template_is_deleted_once_nothing_uses_it(deploy):
    app = new_app()
    deploy.create_template(app, {"name": "mine", "kind": "version", "body": BUILTIN["body"],
                                 "fields": BUILTIN["fields"]}, ACTOR)
    deploy.create_service(app, {"name": "web"}, ACTOR)
    deploy.create_version(app, "web", {"name": "v1", "image": "x:1", "port": 80, "template": "mine"}, ACTOR)
    with pytest.raises(Conflict) as caught:
        deploy.delete_template(app, "mine", ACTOR)
    assert caught.value.details == {"template": "mine", "used_by": ["version web/v1"]}
    deploy.update_version(app, "web", "v1", {"template": None}, ACTOR)
    deploy.delete_template(app, "mine", ACTOR)
    assert "mine" not in [t["name"] for t in deploy.list_templates([app])["items"]]
    with pytest.raises(NotFound):
        deploy.delete_template(app, "mine", ACTOR)
    with pytest.raises(Invalid):
        deploy.delete_template(app, "default-ingress", ACTOR)
    # the name is free again; an ingress that uses a template keeps it too
    deploy.create_template(app, {"name": "mine", "kind": "ingress", "body": INGRESS["body"],
                                 "fields": INGRESS["fields"]}, ACTOR)
    deploy.create_ingress(app, {"name": "www", "host": f"www.{app}.example.test", "template": "mine",
                                "routes": [{"path": "/", "service": "web"}]}, ACTOR)
    with pytest.raises(Conflict) as caught:
        deploy.delete_template(app, "mine", ACTOR)
    assert caught.value.details["used_by"] == ["ingress www"]
