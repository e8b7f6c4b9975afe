"""`mae tokens|sessions|audit|blacklist|channels|templates|completion`, `mae apps update|delete`,
`mae servers add|update|delete`, `-o yaml` and `mae logout` (mae_cli/account.py, app_config.py,
admin.py) against the e2e stack, each change checked through the API."""
import json
import os
import subprocess
import uuid

import yaml

from tests.conftest import free_port
from tests.e2e.conftest import Api
from tests.e2e.test_cli import MAE, run
from tests.fakes.feishu import FakeFeishu


def uid() -> str:
    return uuid.uuid4().hex[:6]


def cli(tmp_path, url, token):
    def mae(*args, token=token):
        return run(tmp_path, *args, url=url, token=token)
    return mae


def doc(result):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_tokens_create_use_revoke_and_yaml_equals_json(stack, login, tmp_path):
    user = login("cli-tok-" + uid(), fresh=True)
    mae = cli(tmp_path, stack.url, user.token)
    made = doc(mae("tokens", "create", "--name", "ci", "--scope", "read", "--expires-in-days", "7", "-o", "json"))
    assert made["scope"] == "read" and made["token"].startswith("mae_p_")
    personal = Api(stack.url, made["token"])
    assert personal.get("/me").status_code == 200
    assert personal.post("/apps", json={"name": "cli-ro-" + uid()}).status_code == 403  # a read token only GETs

    as_json = doc(mae("tokens", "list", "-o", "json"))
    assert made["id"] in [t["id"] for t in as_json["items"]] and made["token"] not in json.dumps(as_json)
    as_yaml = mae("tokens", "list", "-o", "yaml")
    assert as_yaml.returncode == 0 and as_yaml.stderr == ""
    assert yaml.safe_load(as_yaml.stdout) == as_json
    assert yaml.safe_load(mae("-o", "yaml", "whoami").stdout) == doc(mae("-o", "json", "whoami"))

    assert mae("tokens", "revoke", str(made["id"])).returncode == 0
    assert personal.get("/me").status_code == 401
    gone = mae("tokens", "revoke", str(made["id"]))
    assert gone.returncode == 1 and "HTTP 404" in gone.stderr
    assert mae("tokens", "create", "--name", "x", "--scope", "admin").returncode == 2


def test_sessions_end_one_and_the_others(stack, login, tmp_path):
    name = "cli-ses-" + uid()
    first, second, third = (login(name, fresh=True) for _ in range(3))
    mae = cli(tmp_path, stack.url, first.token)
    listed = doc(mae("sessions", "list", "-o", "json"))["items"]
    assert len(listed) == 3 and [s["current"] for s in listed].count(True) == 1
    current = next(s["id"] for s in listed if s["current"])
    newest_other = max(s["id"] for s in listed if not s["current"])
    assert mae("sessions", "end", str(newest_other)).returncode == 0
    assert [a.get("/me").status_code for a in (first, second, third)] == [200, 200, 401]
    assert mae("sessions", "end-others").returncode == 0
    assert [a.get("/me").status_code for a in (first, second)] == [200, 401]
    assert [s["id"] for s in doc(mae("sessions", "list", "-o", "json"))["items"]] == [current]


def test_blacklist_and_audit_for_admins_only(stack, admin, login, tmp_path):
    name = "cli-blk-" + uid()
    user = login(name, fresh=True)
    mae = cli(tmp_path, stack.url, admin.token)
    blocked = doc(mae("blacklist", "add", name, "--reason", "cli test", "-o", "json"))
    assert blocked == {"username": name, "blocked": True}
    assert user.get("/me").status_code == 401
    entries = doc(mae("audit", "--action", "user_blocked", "-o", "json"))["items"]
    assert any(e["target"] == f"user:{name}" for e in entries)
    shown = mae("audit", "--action", "user_blocked")
    assert shown.returncode == 0 and f"user:{name}" in shown.stdout
    assert mae("blacklist", "remove", name).returncode == 0
    assert user.get("/me").status_code == 200

    refused = mae("audit", token=user.token)
    assert refused.returncode == 1 and "HTTP 403" in refused.stderr
    api_message = user.get("/admin/audit").json()["error"]["message"]
    assert api_message in refused.stderr
    assert mae("blacklist", "add", "someone", token=user.token).returncode == 1
    missing = mae("blacklist", "add", "no-such-" + uid())
    assert missing.returncode == 1 and "HTTP 404" in missing.stderr


def test_channels_templates_and_app_edits(stack, login, tmp_path):
    owner, stranger = login("cli-own-" + uid()), login("cli-str-" + uid())
    app = "cli-cfg-" + uid()
    assert owner.post("/apps", json={"name": app}).status_code == 201
    mae = cli(tmp_path, stack.url, owner.token)

    with FakeFeishu() as feishu:
        made = doc(mae("channels", "create", app, "--name", "team", "--type", "feishu", "--url", feishu.url,
                       "--event", "deploy.failed", "--event", "deploy.succeeded", "-o", "json"))
        assert made["events"] == ["deploy.failed", "deploy.succeeded"]
        listed = owner.get(f"/apps/{app}/channels").json()["items"]
        assert [c["id"] for c in listed] == [made["id"]]
        assert doc(mae("channels", "test", app, str(made["id"]), "-o", "json"))["ok"] is True
        assert feishu.wait_for(1)
    assert "team" in mae("channels", "list", app).stdout
    hidden = mae("channels", "list", app, token=stranger.token)
    assert hidden.returncode == 1 and "HTTP 404" in hidden.stderr
    assert mae("channels", "delete", app, str(made["id"]), token=stranger.token).returncode == 1
    assert mae("channels", "delete", app, str(made["id"])).returncode == 0
    assert owner.get(f"/apps/{app}/channels").json()["items"] == []

    template = tmp_path / "mine.yaml"
    template.write_text(yaml.safe_dump({
        "name": "mine", "kind": "version", "body": open("services/deploy/templates/version.yaml.j2").read(),
        "fields": [{"name": "progress_deadline_seconds", "type": "integer", "default": 60},
                   {"name": "service_port", "type": "integer", "default": 80}]}))
    created = doc(mae("templates", "create", app, "--file", str(template), "-o", "json"))
    assert created["name"] == "mine" and created["app"] == app
    mine = doc(mae("templates", "list", "--app", app, "-o", "json"))
    assert [t["name"] for t in mine["items"]] == ["mine"]
    assert yaml.safe_load(mae("templates", "list", "--app", app, "-o", "yaml").stdout) == mine
    assert any(t["app"] == app for t in owner.get("/templates").json()["items"])
    again = mae("templates", "create", app, "--file", str(template))
    assert again.returncode == 1 and "HTTP 409" in again.stderr
    assert mae("templates", "create", app, "--file", str(template), token=stranger.token).returncode == 1

    assert mae("apps", "update", app, "--display-name", "Config shop").returncode == 0
    assert owner.get(f"/apps/{app}").json()["display_name"] == "Config shop"
    assert mae("apps", "delete", app).returncode == 1  # not confirmed (no terminal): nothing deleted
    assert mae("apps", "delete", app, "--yes", token=stranger.token).returncode == 1
    assert owner.get(f"/apps/{app}").status_code == 200
    assert mae("apps", "delete", app, "--yes").returncode == 0
    assert owner.get(f"/apps/{app}").status_code == 404


def test_servers_add_update_delete(stack, admin, login, tmp_path):
    mae = cli(tmp_path, stack.url, admin.token)
    name = "cli-srv-" + uid()
    made = doc(mae("servers", "add", name, "--ip", "10.8.0.1", "--cpu", "4", "--expires-at", "2031-01-02",
                   "-o", "json"))
    assert admin.get(f"/servers/{made['id']}").json()["cpu"] == 4
    assert mae("servers", "update", str(made["id"]), "--owner", "ops").returncode == 0
    assert admin.get(f"/servers/{made['id']}").json()["owner"] == "ops"
    assert name in mae("servers", "list").stdout and name in mae("servers").stdout
    plain = login("cli-srvp-" + uid())
    assert mae("servers", "delete", str(made["id"]), token=plain.token).returncode == 1
    assert mae("servers", "delete", str(made["id"])).returncode == 0
    assert admin.get(f"/servers/{made['id']}").status_code == 404
    assert mae("servers", "add", name).returncode == 2  # no --ip


def test_logout_ends_the_session_or_revokes_the_personal_token(stack, login, tmp_path):
    user = login("cli-out-" + uid(), fresh=True)
    made = user.post("/tokens", json={"name": "laptop"}).json()
    config = tmp_path / ".config" / "mae" / "config.json"
    for token in (made["token"], user.token):
        assert run(tmp_path, "login", "--url", stack.url, "--token", token).returncode == 0
        out = run(tmp_path, "logout", "-o", "json")
        assert out.returncode == 0 and out.stderr == "", out.stderr
        assert json.loads(out.stdout)["server_told"] is True
        assert Api(stack.url, token).get("/me").status_code == 401
        assert "token" not in json.loads(config.read_text())


def test_logout_without_a_server_still_forgets(stack, login, tmp_path):
    user = login("cli-off-" + uid(), fresh=True)
    assert run(tmp_path, "login", "--url", stack.url, "--token", user.token).returncode == 0
    config = tmp_path / ".config" / "mae" / "config.json"
    config.write_text(json.dumps({"url": f"http://127.0.0.1:{free_port()}", "token": user.token}))
    out = run(tmp_path, "logout")
    assert out.returncode == 0 and "Warning" in out.stderr and "not told" in out.stderr
    assert "token" not in json.loads(config.read_text())
    assert user.get("/me").status_code == 200  # the server never heard of it


def test_completion_scripts():
    for shell in ("bash", "zsh", "fish"):
        out = subprocess.run([MAE, "completion", shell], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0 and "_MAE_COMPLETE" in out.stdout
    assert subprocess.run([MAE, "completion", "tcsh"], capture_output=True, timeout=30).returncode == 2
    env = {**os.environ, "_MAE_COMPLETE": "bash_complete", "COMP_WORDS": "mae tok", "COMP_CWORD": "1"}
    answer = subprocess.run([MAE], env=env, capture_output=True, text=True, timeout=30)
    assert answer.stdout.split() == ["plain,tokens"]  # what the script asks the CLI for completes
