"""The `mae` commands of platform admins (mae_cli/admin.py) against the e2e stack: platform
channels, a cloud account's schedule, a cluster's report token and credentials — and what a
plain user gets from each."""
import json
import uuid

from tests.e2e.test_cli import run
from tests.fakes.feishu import TOKEN, FakeFeishu


def test_admin_commands_and_a_plain_users_refusals(stack, admin, login, clusters, tmp_path):
    user = login("cli-plain-" + uuid.uuid4().hex[:4])

    def mae(*args, token=admin.token):
        return run(tmp_path, *args, url=stack.url, token=token)

    listed = mae("clusters", "list", "-o", "json")
    assert listed.returncode == 0 and {"test", "prod"} <= {c["name"] for c in json.loads(listed.stdout)["items"]}

    with FakeFeishu() as feishu:
        url_file = tmp_path / "url"
        url_file.write_text(feishu.url)
        made = mae("admin", "channels", "create", "ops", "--type", "feishu", "--url-file", str(url_file),
                   "--event", "server.expiring", "--event", "cluster.unreachable", "-o", "json")
        assert made.returncode == 0, made.stderr
        channel = json.loads(made.stdout)
        assert channel["app"] is None and TOKEN not in made.stdout
        mine = mae("admin", "channels", "list")
        assert mine.returncode == 0 and "ops" in mine.stdout and "cluster.unreachable" in mine.stdout
        denied = mae("admin", "channels", "list", token=user.token)
        assert denied.returncode == 1 and "HTTP 403" in denied.stderr
        assert mae("admin", "channels", "delete", str(channel["id"]), token=user.token).returncode == 1
        assert mae("admin", "channels", "delete", str(channel["id"])).returncode == 0
        assert str(channel["id"]) not in mae("admin", "channels", "list", "-o", "json").stdout

    account = admin.post("/cloud-accounts", json={"name": "cli-" + uuid.uuid4().hex[:4], "access_key_id": "LTAI-cli",
                                                  "access_key_secret": "s3cret", "regions": ["cn-hangzhou"]}).json()
    scheduled = mae("cloud-accounts", "schedule", str(account["id"]), "--every-hours", "12", "-o", "json")
    assert scheduled.returncode == 0, scheduled.stderr
    assert json.loads(scheduled.stdout)["sync_every_hours"] == 12
    assert mae("cloud-accounts", "schedule", str(account["id"]), "--every-hours", "200").returncode == 2
    assert mae("cloud-accounts", "schedule", str(account["id"]), "--every-hours", "1",
               token=user.token).returncode == 1
    assert mae("cloud-accounts", "schedule", str(account["id"]), "--every-hours", "0").returncode == 0
    assert "12h" not in mae("cloud-accounts", "list").stdout.split(account["name"])[1].splitlines()[0]

    # the refusals only: rotating the shared clusters' tokens would cut their operators off
    rotate = mae("clusters", "report-token", "test", token=user.token)
    assert rotate.returncode == 1 and "HTTP 403" in rotate.stderr
    token_file = tmp_path / "token"
    token_file.write_text("not-the-token")
    bad = mae("clusters", "rotate-credentials", "test", "--token-file", str(token_file))
    assert bad.returncode == 1 and "HTTP 422" in bad.stderr and "Unauthorized" in bad.stderr
    assert mae("clusters", "report-token", "no-such").returncode == 1
