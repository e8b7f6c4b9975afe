"""The real `mae` command (the console script in the venv) against the e2e stack."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.e2e.journey import ensure_test_cluster

MAE = str(Path(sys.executable).with_name("mae"))


@pytest.fixture
def home(tmp_path):
    return tmp_path


def run(home, *args, token=None, url=None, timeout=120, env_extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAE_")}
    env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "NO_COLOR": "1",
                "COLUMNS": "200"})
    if url:
        env["MAE_URL"] = url
    if token:
        env["MAE_TOKEN"] = token
    env.update(env_extra or {})
    return subprocess.run([MAE, *args], env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def test_login_with_a_token_keeps_it_private_and_whoami_reads_it(stack, login, home):
    carol = login("cli-carol")
    r = run(home, "login", "--url", stack.url, "--token", carol.token)
    assert r.returncode == 0, r.stderr
    path = home / ".config" / "mae" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"url": stack.url, "token": carol.token}
    r = run(home, "-o", "json", "whoami")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["username"] == "cli-carol"
    # MAE_TOKEN overrides the file.
    r = run(home, "whoami", "--output", "json", token="not-a-token")
    assert r.returncode == 1 and r.stdout == ""
    assert "mae login" in r.stderr
    assert run(home, "logout").returncode == 0
    assert "token" not in json.loads(path.read_text())


def test_login_through_the_browser_hands_a_new_token_to_the_cli(stack, login, home):
    from tests.e2e.console_scenarios import CHROMIUM

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed; `make test` installs it (`make browser`)", pytrace=False)
    hugo = login("cli-hugo")
    # webbrowser runs $BROWSER with the URL and waits for it: here a headless Chromium
    # that logs in to the console and clicks Allow.
    root = Path(__file__).resolve().parents[2]
    browser_cmd = f"{sys.executable} -m tests.e2e.console_scenarios cli_login %s"
    r = run(home, "login", "--url", stack.url, "--timeout", "60", timeout=180,
            env_extra={"BROWSER": browser_cmd, "PYTHONPATH": str(root),
                       "MAE_SCENARIO_ARGS": json.dumps({"url": stack.url, "token": hugo.token})})
    assert r.returncode == 0, r.stdout + r.stderr
    kept = json.loads((home / ".config" / "mae" / "config.json").read_text())["token"]
    assert kept != hugo.token  # a personal access token made for the CLI, not the session
    names = [t["name"] for t in hugo.get("/tokens").json()["items"]]
    assert any(n.startswith("mae CLI") for n in names)
    assert json.loads(run(home, "whoami", "-o", "json").stdout)["username"] == "cli-hugo"


def test_a_bad_token_at_login_is_refused_and_not_kept(stack, home):
    r = run(home, "login", "--url", stack.url, "--token", "nonsense")
    assert r.returncode == 1
    assert "Error:" in r.stderr and "HTTP 401" in r.stderr
    path = home / ".config" / "mae" / "config.json"
    assert not path.exists() or "token" not in json.loads(path.read_text())


def test_apps_create_list_show_with_json_output(stack, login, home):
    dave = login("cli-dave")
    name = unique("cli-app")
    r = run(home, "apps", "create", name, "--display-name", "命令行 App", "-o", "json", url=stack.url, token=dave.token)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["name"] == name
    r = run(home, "-o", "json", "apps", "list", url=stack.url, token=dave.token)
    assert r.returncode == 0, r.stderr
    listed = {a["name"]: a for a in json.loads(r.stdout)["items"]}
    assert listed[name]["display_name"] == "命令行 App"
    r = run(home, "apps", "show", name, "-o", "json", url=stack.url, token=dave.token)
    shown = json.loads(r.stdout)
    assert shown["role"] == "owner"
    assert [(m["username"], m["role"]) for m in shown["members"]] == [("cli-dave", "owner")]
    # The table form is for people; it names the app too.
    r = run(home, "apps", "list", url=stack.url, token=dave.token)
    assert r.returncode == 0 and name in r.stdout


def test_api_errors_are_said_plainly_with_exit_code_1(stack, login, home):
    erin = login("cli-erin")
    missing = run(home, "apps", "show", "no-such-app-here", "-o", "json", url=stack.url, token=erin.token)
    assert missing.returncode == 1 and missing.stdout == ""
    assert "Error:" in missing.stderr and "HTTP 404" in missing.stderr
    body = erin.get("/apps/no-such-app-here").json()["error"]["message"]
    assert body in missing.stderr.replace("\n", " ")

    invalid = run(home, "apps", "create", "Not_A_Label", url=stack.url, token=erin.token)
    assert invalid.returncode == 1 and "HTTP 422" in invalid.stderr
    assert erin.post("/apps", json={"name": "Not_A_Label"}).json()["error"]["message"] in invalid.stderr.replace("\n", " ")

    unauthenticated = run(home, "apps", "list", url=stack.url)
    assert unauthenticated.returncode == 1 and "HTTP 401" in unauthenticated.stderr
    assert "mae login" in unauthenticated.stderr

    down = run(home, "apps", "list", url="http://127.0.0.1:9", token=erin.token)
    assert down.returncode == 1
    assert "Cannot connect to MAE at http://127.0.0.1:9" in down.stderr and "Traceback" not in down.stderr

    usage = run(home, "deploy", "a/b/c", url=stack.url, token=erin.token)
    assert usage.returncode == 2 and "--env or --cluster" in usage.stderr


def test_clusters_and_servers_as_json(stack, admin, home):
    r = run(home, "clusters", "-o", "json", url=stack.url, token=admin.token)
    assert r.returncode == 0, r.stderr
    assert isinstance(json.loads(r.stdout)["items"], list)
    from datetime import datetime, timedelta, timezone

    soon = (datetime.now(timezone.utc) + timedelta(days=5)).strftime("%Y-%m-%d")
    later = (datetime.now(timezone.utc) + timedelta(days=200)).strftime("%Y-%m-%d")
    a, b = unique("cli-soon"), unique("cli-later")
    assert admin.post("/servers", json={"name": a, "ip": "10.9.0.1", "expires_at": soon}).status_code == 201
    assert admin.post("/servers", json={"name": b, "ip": "10.9.0.2", "expires_at": later}).status_code == 201
    r = run(home, "servers", "--expiring", "30", "-o", "json", url=stack.url, token=admin.token)
    assert r.returncode == 0, r.stderr
    names = [s["name"] for s in json.loads(r.stdout)["items"]]
    assert a in names and b not in names
    r = run(home, "servers", url=stack.url, token=admin.token)
    assert a in r.stdout and b in r.stdout


def test_deploy_journey_wait_logs_and_rollback(request, stack, admin, login, home):
    cluster = ensure_test_cluster(request, stack, admin)
    frank = login("cli-frank")
    app = unique("cli-deploy")
    env = dict(url=stack.url, token=frank.token)
    assert run(home, "apps", "create", app, **env).returncode == 0
    r = run(home, "services", "create", f"{app}/web", "-o", "json", **env)
    assert r.returncode == 0, r.stderr
    r = run(home, "versions", "create", f"{app}/web/v1", "--image", "nginx:1.27", "--port", "80",
            "--replicas", "2", "-o", "json", **env)
    assert r.returncode == 0, r.stderr
    assert run(home, "versions", "create", f"{app}/web/bad", "--image", "nginx:missing", "--port", "80",
               **env).returncode == 0

    ok = run(home, "deploy", f"{app}/web/v1", "--env", "test", "--wait", "--timeout", "120", "-o", "json", **env)
    assert ok.returncode == 0, ok.stderr
    record = json.loads(ok.stdout)
    assert record["status"] == "succeeded"
    assert {t["cluster"] for t in record["targets"]} >= {cluster}

    # The live display goes to stderr; the exit code says how it ended.
    bad = run(home, "deploy", f"{app}/web/bad", "--cluster", cluster, "--wait", "--timeout", "120", **env)
    assert bad.returncode == 3, bad.stdout + bad.stderr
    assert "failed" in bad.stderr and "image" in bad.stderr.lower()

    logs = run(home, "logs", str(record["id"]), "-o", "json", **env)
    assert logs.returncode == 0, logs.stderr
    assert json.loads(logs.stdout)["items"], "a finished deploy has a log"
    follow = run(home, "logs", str(record["id"]), "-f", **env)
    assert follow.returncode == 0 and follow.stdout.strip()

    back = run(home, "rollback", str(record["id"]), "--wait", "--timeout", "120", "-o", "json", **env)
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["action"] == "rollback"

    history = run(home, "records", app, "-o", "json", **env)
    actions = [r["action"] for r in json.loads(history.stdout)["items"]]
    assert actions[0] == "rollback" and actions.count("deploy") == 2
