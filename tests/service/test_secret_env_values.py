"""A version's secret_env: checked by name (never echoing a value), sealed bound to the
version's row id, rendered as MAE's own Opaque Secret with placeholders, its values
joining an apply request only sealed for that request, and shown to nobody."""
from __future__ import annotations

import base64
import json

import uuid

import pytest

from gateway.routes.deploys import shown_to
from services.deploy.domain import catalog, manifests, policy, rendering, secret_env, templates
from services.deploy.domain.templates import TemplateRefused
from services.deploy.models import Record, Service
from shared import redact, secret_delivery
from shared.errors import Conflict, Invalid
from shared.secretbox import SecretBox, SecretBoxError, generate_key

APP = "shop-" + uuid.uuid4().hex[:6]  # rows of its own in the shared database
VALUE = "hunter2-" + "s3cr3t-value-7f1c"
OTHER = "correct-horse-battery-staple-42"


@pytest.fixture
def db(db_session):
    """The run's MariaDB, everything rolled back after the test."""
    db_session.add(Service(app=APP, name="web", description=""))
    db_session.flush()
    return db_session


@pytest.fixture
def box():
    return SecretBox(generate_key())


def create(db, box, name="v1", **extra):
    return catalog.create_version(db, APP, "web", {"name": name, "image": "nginx:1.25", "port": 80, **extra},
                                  "alice", box=box)


def update(db, box, name="v1", **data):
    return catalog.update_version(db, APP, "web", name, data, box=box)


def refusal(call) -> Invalid:
    with pytest.raises(Invalid) as caught:
        call()
    return caught.value


# -- what a body may say -------------------------------------------------------------

@pytest.mark.parametrize("given, field", [
    ({"1ABC": VALUE}, "secret_env"),
    ({"DB-PASSWORD": VALUE}, "secret_env"),
    ({"A" * 254: VALUE}, "secret_env"),
    ({"": VALUE}, "secret_env"),
    ({"DB_PASSWORD": 42}, "secret_env.DB_PASSWORD"),
    ({"DB_PASSWORD": [VALUE]}, "secret_env.DB_PASSWORD"),
    ({"DB_PASSWORD": VALUE + "x" * (64 * 1024)}, "secret_env.DB_PASSWORD"),
    ({f"K{i}": VALUE for i in range(101)}, "secret_env"),
    ({f"K{i}": VALUE + "x" * (60 * 1024) for i in range(9)}, "secret_env"),
    ([{"name": "DB_PASSWORD", "value": VALUE}], "secret_env"),
    (VALUE, "secret_env"),
])
def test_bad_sets_are_refused_naming_the_field_and_never_a_value(given, field):
    error = refusal(lambda: secret_env.check(given))
    assert error.details["field"] == field
    assert VALUE not in error.message and VALUE not in json.dumps(error.details)


def test_good_sets_are_taken_and_a_null_value_leaves_the_name_out():
    assert secret_env.check(None) == {}
    assert secret_env.check({"DB_PASSWORD": VALUE, "_X1": "", "GONE": None}) == {"DB_PASSWORD": VALUE, "_X1": ""}
    assert len(secret_env.check({"A" * 253: "x" * (64 * 1024)})) == 1
    assert len(secret_env.check({f"K{i}": "v" for i in range(100)})) == 100


def test_a_name_in_both_env_and_secret_env_is_refused(db, box):
    error = refusal(lambda: create(db, box, env={"DB_PASSWORD": "plain"}, secret_env={"DB_PASSWORD": VALUE}))
    assert error.details["field"] == "secret_env.DB_PASSWORD"
    assert "both in 'env' and in 'secret_env'" in error.message and VALUE not in error.message
    create(db, box, secret_env={"DB_PASSWORD": VALUE})
    error = refusal(lambda: update(db, box, env={"DB_PASSWORD": "plain"}))  # against the kept set
    assert error.details["field"] == "secret_env.DB_PASSWORD"
    # moved from secret_env to env in one change
    update(db, box, env={"DB_PASSWORD": "plain"}, secret_env={"API_KEY": OTHER, "DB_PASSWORD": None})


# -- at rest --------------------------------------------------------------------------

def test_values_are_sealed_bound_to_the_row_id_and_answers_name_them_only(db, box):
    version = create(db, box, env={"MODE": "prod"}, secret_env={"DB_PASSWORD": VALUE, "API_KEY": OTHER})
    assert VALUE not in version.secret_env_sealed and OTHER not in version.secret_env_sealed
    assert VALUE not in json.dumps(version.config) and "secret_env" not in version.config
    assert version.secret_env_keys == ["API_KEY", "DB_PASSWORD"]
    plain = json.loads(box.decrypt(version.secret_env_sealed, f"deploy-version:{version.id}:secret_env"))
    assert plain == {"DB_PASSWORD": VALUE, "API_KEY": OTHER}
    for context in (f"deploy-version:{version.id + 1}:secret_env", f"deploy-version:{APP}/web/v1:secret_env", ""):
        with pytest.raises(SecretBoxError):
            box.decrypt(version.secret_env_sealed, context)
    shown = catalog.version_dict(version)
    assert shown["secret_env"] == ["API_KEY", "DB_PASSWORD"]
    assert VALUE not in json.dumps(shown) and OTHER not in json.dumps(shown)
    assert shown["env"] == [{"name": "MODE", "value": "prod"}]


def test_updates_merge_null_deletes_absence_keeps_and_null_set_clears(db, box):
    version = create(db, box, secret_env={"A": "1", "B": "2"})
    sealed = version.secret_env_sealed
    update(db, box, replicas=3)  # absent: kept, not even re-sealed (no rollout)
    assert version.secret_env_sealed == sealed and secret_env.values(box, version) == {"A": "1", "B": "2"}
    update(db, box, secret_env={"A": "1", "B": "2"})  # the same values: the same blob
    assert version.secret_env_sealed == sealed
    update(db, box, secret_env={"B": None, "C": "3"})  # merged: A kept, B deleted, C added
    assert secret_env.values(box, version) == {"A": "1", "C": "3"} and version.secret_env_sealed != sealed
    assert catalog.version_dict(version)["secret_env"] == ["A", "C"]
    update(db, box, secret_env={"A": "one"})
    assert secret_env.values(box, version) == {"A": "one", "C": "3"}
    update(db, box, secret_env={})  # nothing named: nothing changes
    assert secret_env.values(box, version) == {"A": "one", "C": "3"}
    update(db, box, secret_env=None)  # all gone, but the (now empty) Secret stays rendered
    assert secret_env.values(box, version) == {} and version.secret_env_sealed is not None
    assert catalog.version_dict(version)["secret_env"] == []
    assert secret_env.shape(version, "web", "v1")["keys"] == []


def test_a_version_made_without_secrets_has_none_and_renders_no_secret(db, box):
    version = create(db, box)
    assert version.secret_env_sealed is None and version.secret_env_keys is None
    assert catalog.version_dict(version)["secret_env"] == []
    assert secret_env.shape(version, "web", "v1") is None
    update(db, box, secret_env={})
    assert version.secret_env_sealed is None


def test_a_deleted_name_made_again_starts_without_the_old_secrets(db, box):
    version = create(db, box, secret_env={"DB_PASSWORD": VALUE})
    row_id = version.id
    secret_env.forget(version)  # what delete_version does
    from shared.timeutil import utcnow
    version.deleted_at = utcnow()
    db.flush()
    again = create(db, box)
    assert again.id == row_id  # the row is reused: nothing of the old values is in it
    assert again.secret_env_sealed is None and catalog.version_dict(again)["secret_env"] == []


# -- rendering -------------------------------------------------------------------------

DEFAULT = templates.BUILTINS["default-version"]
CONFIG = {"image": "nginx:1.25", "port": 80, "replicas": 1, "env": [{"name": "MODE", "value": "x"}], "values": {}}
SECRET = {"name": "web-v1-secret-env", "keys": ["API_KEY", "DB_PASSWORD"], "checksum": "c" * 32}


def test_the_default_template_reads_mae_s_opaque_secret_which_passes_the_policy():
    objects = rendering.render_version(DEFAULT, APP, "web", "v1", CONFIG, policy.Context(), SECRET)
    secret = next(o for o in objects if o["kind"] == "Secret")
    assert secret["type"] == "Opaque" and secret["metadata"]["name"] == "web-v1-secret-env"
    assert secret["metadata"]["namespace"] == APP
    assert secret["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "mae"
    assert secret["metadata"]["labels"]["mae.io/app"] == APP
    assert secret["stringData"] == {"API_KEY": "<sealed>", "DB_PASSWORD": "<sealed>"}
    assert secret_delivery.is_marked(secret)
    deployment = manifests.deployment_of(objects)
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["annotations"]["mae.io/secret-env-checksum"] == "c" * 32
    container = pod["spec"]["containers"][0]
    assert "envFrom" not in container  # each key by secretKeyRef
    assert [e for e in container["env"] if "valueFrom" in e] == [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": "web-v1-secret-env", "key": key}}}
        for key in ("API_KEY", "DB_PASSWORD")]
    assert [o["kind"] for o in objects][0] == "Secret"  # applied before the Deployment that reads it
    plain = rendering.render_version(DEFAULT, APP, "web", "v1", CONFIG, policy.Context(), None)
    assert [o["kind"] for o in plain] == ["Service", "Deployment"]
    plain_container = manifests.deployment_of(plain)["spec"]["template"]["spec"]["containers"][0]
    assert not [e for e in plain_container.get("env") or [] if "valueFrom" in e]


def custom(pod_env: str = "") -> dict:
    body = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ name }}\nspec:\n"
            "  selector:\n    matchLabels: {{ selector | tojson }}\n  template:\n"
            "    metadata:\n      labels: {{ selector | tojson }}\n    spec:\n      containers:\n"
            "        - name: app\n          image: {{ image }}\n" + pod_env)
    return {"name": "mine", "body": body, "fields": []}


def test_a_user_template_gets_the_names_and_must_read_the_secret():
    with pytest.raises(TemplateRefused, match="do not read Secret 'web-v1-secret-env'"):
        rendering.render_version(custom(), APP, "web", "v1", CONFIG, None, SECRET)
    keyed = custom("          env:\n{% for key in secret_env_keys %}"
                   "            - name: {{ key }}\n              valueFrom:\n                secretKeyRef:\n"
                   "                  name: {{ secret_env_name }}\n                  key: {{ key }}\n{% endfor %}")
    objects = rendering.render_version(keyed, APP, "web", "v1", CONFIG, None, SECRET)
    env = manifests.deployment_of(objects)["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e["name"] for e in env] == ["API_KEY", "DB_PASSWORD"]
    # without secret_env the same template renders (no keys), and saving it checks the names it uses
    rendering.render_version(keyed, APP, "web", "v1", CONFIG, None, None)
    rendering.check_with_samples("version", keyed["body"], [], APP)
    # an empty set (all removed) does not need reading
    rendering.render_version(custom(), APP, "web", "v1", CONFIG, None, {**SECRET, "keys": []})


def test_a_template_cannot_render_a_secret_of_the_same_name_nor_a_token_secret():
    clash = custom("          envFrom: [{secretRef: {name: '{{ secret_env_name }}'}}]\n---\n"
                   "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ secret_env_name }}\n"
                   "stringData: {X: stolen}\n")
    with pytest.raises(TemplateRefused, match="rendered twice"):
        rendering.render_version(clash, APP, "web", "v1", CONFIG, None, SECRET)
    token = custom("---\napiVersion: v1\nkind: Secret\ntype: kubernetes.io/service-account-token\n"
                   "metadata:\n  name: tok\n")
    with pytest.raises(policy.PolicyRefused):
        rendering.render_version(token, APP, "web", "v1", CONFIG, None, None)


# -- delivery ----------------------------------------------------------------------------

def request_for(objects, request_id="7:test:1", namespace=APP) -> dict:
    return {"request_id": request_id, "record_id": 7, "cluster": "test", "namespace": namespace,
            "action": "apply", "manifests": objects}


def test_values_travel_sealed_for_one_request_and_are_filled_just_before_the_apply(box):
    objects = manifests.stamp_record(rendering.render_version(DEFAULT, APP, "web", "v1", CONFIG, None, SECRET), 7)
    stored = json.dumps(objects)
    assert VALUE not in stored and base64.b64encode(VALUE.encode()).decode() not in stored
    request = secret_delivery.seal(box, request_for(objects), "web-v1-secret-env",
                                   {"API_KEY": OTHER, "DB_PASSWORD": VALUE})
    assert VALUE not in json.dumps(request) and OTHER not in json.dumps(request)
    filled = secret_delivery.fill(box, request)
    secret = next(o for o in filled if o["kind"] == "Secret")
    assert "stringData" not in secret
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == \
        {"API_KEY": OTHER, "DB_PASSWORD": VALUE}
    assert json.dumps(request["manifests"]) == stored  # the request's own manifests are untouched
    # sealed for that request, namespace and Secret only
    for moved in ({**request, "request_id": "7:test:2"}, {**request, "namespace": "other"},
                  {**request, "secret_env": {**request["secret_env"], "name": "x"}}):
        with pytest.raises(secret_delivery.Undeliverable) as caught:
            secret_delivery.fill(box, moved)
        assert VALUE not in str(caught.value)
    with pytest.raises(secret_delivery.Undeliverable, match="did not come with the request"):
        secret_delivery.fill(box, request_for(objects))
    with pytest.raises(secret_delivery.Undeliverable):
        secret_delivery.fill(SecretBox(generate_key()), request)
    plain = rendering.render_version(DEFAULT, APP, "web", "v1", CONFIG, None, None)
    assert secret_delivery.fill(box, request_for(plain)) == plain


def test_attach_uses_the_version_s_values_as_they_are_now_and_nothing_once_it_is_gone(db, box):
    version = create(db, box, secret_env={"DB_PASSWORD": VALUE})
    record = Record(app=APP, action="deploy", subject="version", service="web", version="v1", status="pending")
    db.add(record)
    db.flush()
    secret = secret_env.shape(version, "web", "v1")
    objects = rendering.render_version(DEFAULT, APP, "web", "v1", CONFIG, None, secret)
    request = {**request_for(objects, f"{record.id}:test:1"), "record_id": record.id}
    attached = secret_env.attach(db, box, request)
    assert VALUE not in json.dumps(attached)
    secret_of = lambda filled: next(o for o in filled if o["kind"] == "Secret")["data"]  # noqa: E731
    assert base64.b64decode(secret_of(secret_delivery.fill(box, attached))["DB_PASSWORD"]).decode() == VALUE
    update(db, box, secret_env={"DB_PASSWORD": OTHER})  # a re-sent or rolled-back request: today's value
    assert base64.b64decode(secret_of(secret_delivery.fill(box, secret_env.attach(db, box, request)))
                            ["DB_PASSWORD"]).decode() == OTHER
    assert secret_env.attach(db, box, {**request, "action": "delete"}) == {**request, "action": "delete"}
    record.deleted_app_id = 99  # a deleted app's record: nothing of a later app's versions
    assert "secret_env" not in secret_env.attach(db, box, request)
    record.deleted_app_id = None
    secret_env.forget(version)
    assert "secret_env" not in secret_env.attach(db, box, request)


def test_a_rollback_takes_today_s_names_and_checksum_and_is_refused_once_the_secrets_are_gone():
    old = rendering.render_version(DEFAULT, APP, "web", "v1", CONFIG, None, SECRET)
    now = {"name": SECRET["name"], "keys": ["TOKEN"], "checksum": "d" * 32}
    fresh = secret_env.refresh(old, now)
    secret = next(o for o in fresh if o["kind"] == "Secret")
    assert secret["stringData"] == {"TOKEN": "<sealed>"}
    assert secret["metadata"]["annotations"]["mae.io/secret-env-checksum"] == "d" * 32
    pod = manifests.deployment_of(fresh)["spec"]["template"]
    assert pod["metadata"]["annotations"]["mae.io/secret-env-checksum"] == "d" * 32
    assert next(o for o in old if o["kind"] == "Secret")["stringData"] != secret["stringData"]  # a copy
    with pytest.raises(Conflict):
        secret_env.refresh(old, None)
    plain = rendering.render_version(DEFAULT, APP, "web", "v1", CONFIG, None, None)
    assert secret_env.refresh(plain, None) == plain


# -- what people see ------------------------------------------------------------------------

def test_previews_show_no_value_and_tell_a_changed_secret_by_its_checksum():
    secret = next(o for o in rendering.render_version(DEFAULT, APP, "web", "v1", CONFIG, None, SECRET)
                  if o["kind"] == "Secret")
    assert redact.desired(secret)["data"] == {"API_KEY": "<redacted>", "DB_PASSWORD": "<redacted>"}
    assert "stringData" not in redact.desired(secret)
    encoded = base64.b64encode(VALUE.encode()).decode()
    live = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET["name"], "annotations": {
        "mae.io/secret-env-checksum": "c" * 32, "mae.io/last-applied": json.dumps({"data": {"API_KEY": encoded}})}},
        "data": {"API_KEY": encoded, "DB_PASSWORD": encoded}}
    shown = redact.live(live, secret)
    assert shown["data"] == {"API_KEY": "<redacted>", "DB_PASSWORD": "<redacted>"}
    assert encoded not in json.dumps(shown)
    live["metadata"]["annotations"]["mae.io/secret-env-checksum"] = "e" * 32
    assert set(redact.live(live, secret)["data"].values()) == {redact.CHANGED}


def test_a_viewer_sees_env_names_without_values_and_everyone_else_sees_them():
    version = {"name": "v1", "image": "nginx", "port": 80, "env": [{"name": "MODE", "value": "prod"},
                                                                    {"name": "TOKEN", "value": VALUE}],
               "secret_env": ["DB_PASSWORD"], "replicas": 1}
    seen = shown_to("viewer", version)
    assert seen["env"] == [{"name": "MODE", "value": None}, {"name": "TOKEN", "value": None}]
    assert {k: v for k, v in seen.items() if k != "env"} == {k: v for k, v in version.items() if k != "env"}
    for role in ("developer", "maintainer", "owner", "admin"):
        assert shown_to(role, version) == version
