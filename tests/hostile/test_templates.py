"""Jinja2 sandbox-escape payloads in user templates, through the API: each is refused
when it is saved (422 with the reason), also hidden in a branch the sample values do
not reach, nothing is stored, and nothing ran (payloads that would touch a marker
file leave none)."""
from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pytest

from services.deploy.domain import templates

APP = "tpl-hostile"


def payloads(marker: Path) -> list[str]:
    touch = f"popen('touch {marker}').read()"
    return [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
        # CVE-2016-10745: str.format walks attributes named in the format string
        "{{ '{0.__class__.__mro__[1].__subclasses__}'.format(1) }}",
        "{{ 'x{0.__init__.__globals__}'.format(values) }}",
        # CVE-2019-10906: str.format_map
        "{{ '{x.__class__}'.format_map({'x': values}) }}",
        # CVE-2024-56326: str.format reached indirectly
        "{% set f = 'a{0.__class__}'.format %}{{ f(values) }}",
        "{% set s = 'a' %}{{ s.format }}",
        # CVE-2025-27516: |attr picks up format
        "{{ 'a{0.__class__}'|attr('format')(values) }}",
        "{{ values|attr('__class__') }}",
        "{{ values|attr(values.name) }}",
        f"{{{{ cycler.__init__.__globals__.os.{touch} }}}}",
        f"{{{{ lipsum.__globals__['os'].{touch} }}}}",
        f"{{{{ joiner.__init__.__globals__.os.{touch} }}}}",
        "{{ namespace.__init__.__globals__ }}",
        f"{{{{ self._TemplateReference__context.cycler.__init__.__globals__.os.{touch} }}}}",
        "{{ self }}",
        f"{{{{ request.application.__globals__.__builtins__.__import__('os').{touch} }}}}",
        "{{ request.environ }}",
        "{{ config.items() }}",
        f"{{{{ config.__class__.__init__.__globals__['os'].{touch} }}}}",
        "{{ ''['__class__'] }}",
        "{{ values['__class__'] }}",
        "{% include '/etc/passwd' %}",
        "{% extends '../../../etc/passwd' %}",
        "{% import 'os' as os %}",
    ]


# Not escapes but exhaustion: refused when the sample render reaches them; in a branch
# it does not reach they are stopped when they render (call_binop in the sandbox).
EXHAUSTION = ["{{ 'x' * 100000000 }}", "{{ 2 ** 100000000 }}", "{{ [1] * 100000000 }}"]


def _body(payload: str, guarded: bool) -> str:
    base = templates.BUILTINS["default-version"]["body"]
    if guarded:  # the sample values never take this branch
        payload = "{% if values.trigger == 'go' %}" + payload + "{% endif %}"
    return base + "\n# " + payload + "\n"


FIELDS = templates.BUILTINS["default-version"]["fields"] + [
    {"name": "trigger", "type": "string", "default": "no"}]


def test_the_pinned_jinja2_has_those_cves_fixed():
    # 3.1.6 fixes CVE-2025-27516; 3.1.5 CVE-2024-56326; 2.10.1 CVE-2019-10906; 2.8.1 CVE-2016-10745.
    major, minor, patch = (int(x) for x in version("jinja2").split(".")[:3])
    assert (major, minor, patch) >= (3, 1, 6)
    text = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"Jinja2==3.1.6"' in text


@pytest.fixture(scope="module")
def app(admin):
    created = admin.post("/apps", json={"name": APP})
    assert created.status_code == 201, created.text
    return APP


def test_the_harmless_template_is_saved(admin, app):
    # so each refusal below is for its payload, not for the body around it
    answer = admin.post(f"/apps/{app}/templates", json={
        "name": "harmless", "kind": "version", "body": _body("{{ image }} {{ values.trigger }}", True),
        "fields": FIELDS})
    assert answer.status_code == 201, answer.text


@pytest.mark.parametrize("guarded", [False, True], ids=["plain", "in-an-untaken-branch"])
def test_escape_payloads_are_refused_at_save_time(admin, app, tmp_path, guarded):
    marker = tmp_path / "escaped"
    refused = []
    for i, payload in enumerate(payloads(marker)):
        answer = admin.post(f"/apps/{app}/templates", json={
            "name": f"evil-{int(guarded)}-{i}", "kind": "version", "body": _body(payload, guarded),
            "fields": FIELDS})
        assert answer.status_code == 422, (payload, answer.status_code, answer.text)
        error = answer.json()["error"]
        assert error["code"] == "invalid" and error["details"].get("reason"), (payload, error)
        assert "refused" in error["message"], (payload, error)
        refused.append(payload)
    if not guarded:
        for i, payload in enumerate(EXHAUSTION):
            answer = admin.post(f"/apps/{app}/templates", json={
                "name": f"big-{i}", "kind": "version", "body": _body(payload, False), "fields": FIELDS})
            assert answer.status_code == 422, (payload, answer.status_code, answer.text)
            assert "not allowed" in answer.json()["error"]["message"], answer.text
    assert len(refused) == len(payloads(marker))
    assert not marker.exists(), "a payload ran"
    names = {t["name"] for t in admin.get("/templates").json()["items"]}
    assert not {n for n in names if n.startswith(("evil-", "big-"))}, names


def test_a_version_cannot_smuggle_a_payload_through_its_config(admin, app):
    """Config is data: a template expression in an env value is printed, never run."""
    assert admin.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
    evil = "{{ ''.__class__.__mro__ }}{% for c in [].__class__.__base__.__subclasses__() %}{% endfor %}"
    answer = admin.post(f"/apps/{app}/services/web/versions", json={
        "name": "v1", "image": "nginx:1.27", "port": 80, "env": {"EVIL": evil}})
    assert answer.status_code == 201, answer.text
    preview = admin.post(f"/apps/{app}/services/web/versions/v1/preview", json={})
    assert preview.status_code == 200, preview.text
    manifests = preview.json()["manifests"]
    deployment = next(m for m in manifests if m.get("kind") == "Deployment")
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "EVIL", "value": evil} in env
    assert "<class" not in preview.text
