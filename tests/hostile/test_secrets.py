"""Secrets stay secret: a journey plants every kind of secret MAE is given (a cluster's
credentials, a cloud account's key, notification URLs that carry tokens and signing
secrets, a CI token and webhook secret, the OAuth client secret) and every kind it
hands out (report tokens, session and personal tokens), then reads every API answer
of the journey and every log line the stack's processes wrote, and finds none of them,
except a handed-out token in the one answer that hands it out."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.conftest import Api, oauth_login
from tests.waiting import poller


def planted(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex}{uuid.uuid4().hex[:8]}"


class RecordingApi(Api):
    """An Api that keeps every answer it got, to be searched afterwards."""

    def __init__(self, base, token, answers):
        super().__init__(base, token)
        self.answers = answers

    def request(self, method, path, **kwargs):
        answer = super().request(method, path, **kwargs)
        self.answers.append((f"{method} {path}", answer.status_code, answer.text, dict(answer.headers)))
        return answer

wait_for = poller(timeout=60.0, interval=0.5, fail=False)


@dataclass
class Journey:
    """What the journey planted and heard: every answer, the secrets people gave MAE
    (never shown again), the ones MAE handed out (only in the answer that hands them
    out, at ``handed_in``: an index into ``answers``)."""
    stack: object
    api: RecordingApi
    answers: list = field(default_factory=list)
    given: dict[str, str] = field(default_factory=dict)
    handed: dict[str, str] = field(default_factory=dict)
    handed_in: dict[str, int] = field(default_factory=dict)
    user: RecordingApi | None = None

    def recorder(self, token: str) -> RecordingApi:
        return RecordingApi(self.stack.url, token, self.answers)


def log_in(j: Journey) -> None:
    """OAuth login: the client secret MAE holds, and the session token it hands out."""
    j.given["oauth client secret"] = (j.stack.run_dir / "oauth-client.secret").read_text().strip()
    session = oauth_login(j.stack, "vault-keeper")
    j.handed["session token"] = session["token"]
    j.user = j.recorder(session["token"])
    j.user.get("/me")


def register_a_cluster(j: Journey) -> None:
    """A cluster registered with its ServiceAccount token; MAE hands out a report token."""
    api = j.api
    info = j.stack.start_sandbox("vault", 0, ready_delay=0.2)
    j.given["cluster token"] = info["token"]
    ca = Path(info["ca_path"]).read_text()
    wrong = api.post("/clusters", json={"name": "vault", "env": "test", "server": info["url"],
                                        "ca_cert": ca, "token": info["token"] + "x"})
    assert wrong.status_code == 422, wrong.text
    registered = api.post("/clusters", json={"name": "vault", "env": "test", "server": info["url"],
                                             "ca_cert": ca, "token": info["token"]})
    assert registered.status_code == 201, registered.text
    j.handed["report token"] = registered.json()["report_token"]
    j.handed_in["report token"] = len(j.answers) - 1
    api.get("/clusters")
    api.get("/clusters/vault")


def add_a_cloud_account_and_servers(j: Journey) -> None:
    """A cloud account with its key; its sync fails (nothing listens at the ECS endpoint)."""
    api = j.api
    j.given["cloud key secret"] = planted("ak-secret")
    account = api.post("/cloud-accounts", json={"name": "vault account", "access_key_id": "LTAI5tVault",
                                                "access_key_secret": j.given["cloud key secret"],
                                                "regions": ["cn-hangzhou"]})
    assert account.status_code == 201, account.text
    api.post(f"/cloud-accounts/{account.json()['id']}/sync")
    wait_for(lambda: api.get("/cloud-accounts").json()["items"],
             lambda items: all(a["last_sync_status"] != "syncing" for a in items))
    server = api.post("/servers", json={"name": "vault-01", "ip": "10.1.2.3", "notes": "keys in the vault"})
    assert server.status_code == 201, server.text
    api.patch(f"/servers/{server.json()['id']}", json={"owner": "ops"})
    api.get("/servers")


def add_channels(j: Journey, app: str) -> None:
    """An application with channels whose URLs carry tokens, and signing secrets."""
    api, given = j.api, j.given
    assert api.post("/apps", json={"name": app}).status_code == 201
    given["dingtalk access token"] = planted("dtoken")
    given["dingtalk sign secret"] = "SEC" + planted("dsign")
    given["feishu hook id"] = planted("fhook")
    given["feishu sign secret"] = planted("fsign")
    given["webhook url token"] = planted("wtoken")
    given["webhook secret"] = planted("wsecret")
    channels = [
        {"name": "dd", "type": "dingtalk", "secret": given["dingtalk sign secret"],
         "url": f"http://127.0.0.1:9/robot/send?access_token={given['dingtalk access token']}"},
        {"name": "fs", "type": "feishu", "secret": given["feishu sign secret"],
         "url": f"http://127.0.0.1:9/open-apis/bot/v2/hook/{given['feishu hook id']}"},
        {"name": "hook", "type": "webhook", "secret": given["webhook secret"],
         "url": f"http://127.0.0.1:9/hook?token={given['webhook url token']}"},  # no user:pw@ (url_not_allowed)
    ]
    ids = []
    for channel in channels:
        created = api.post(f"/apps/{app}/channels", json={**channel, "events": ["deploy.succeeded", "deploy.failed"]})
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    api.get(f"/apps/{app}/channels")
    for channel_id in ids:
        assert api.post(f"/apps/{app}/channels/{channel_id}/test").status_code == 503


def link_ci(j: Journey, app: str) -> None:
    """CI: a token for the CI's API and the webhook secret."""
    api = j.api
    j.given["ci token"] = planted("drone-token")
    j.given["ci webhook secret"] = planted("drone-hook")
    assert api.post(f"/apps/{app}/services", json={"name": "web"}).status_code == 201
    link = api.put(f"/apps/{app}/services/web/ci", json={
        "provider": "drone", "server": "http://127.0.0.1:9", "repo": "team/vault", "token": j.given["ci token"],
        "image": "registry.local/team/vault", "webhook_secret": j.given["ci webhook secret"]})
    assert link.status_code == 200, link.text
    api.get(f"/apps/{app}/services/web/builds")
    api.post(f"/apps/{app}/services/web/builds", json={"ref": "main"})


def use_personal_tokens(j: Journey) -> None:
    """Personal tokens: created (shown once), listed, used, revoked."""
    for name in ("laptop", "ci"):
        created = j.user.post("/tokens", json={"name": name, "expires_in_days": 1})
        assert created.status_code == 201, created.text
        j.handed[f"personal token {name}"] = created.json()["token"]
        j.handed_in[f"personal token {name}"] = len(j.answers) - 1
    j.recorder(j.handed["personal token laptop"]).get("/me")
    listed = j.user.get("/tokens").json()["items"]
    j.user.delete(f"/tokens/{listed[0]['id']}")


def deploy_with_a_secret(j: Journey, app: str) -> None:
    """A deploy, whose outcome is announced to the channels (and fails to reach them), of a
    version with a secret_env value (write-only: only the Secret on the cluster has it)."""
    api = j.api
    j.given["version secret_env value"] = planted("secret-env")
    assert api.post(f"/apps/{app}/services/web/versions", json={
        "name": "v1", "image": "nginx:1.27", "port": 80, "env": {"MODE": "prod"},
        "secret_env": {"DB_PASSWORD": j.given["version secret_env value"]}}).status_code == 201
    api.get(f"/apps/{app}/services/web/versions/v1")
    api.post(f"/apps/{app}/services/web/versions/v1/preview", json={"clusters": ["test"]})
    sent = api.post(f"/apps/{app}/services/web/versions/v1/deploy", json={"clusters": ["test"]})
    assert sent.status_code == 202, sent.text
    record_id = sent.json()["record_id"]
    record = wait_for(lambda: api.get(f"/records/{record_id}").json(),
                      lambda r: r["status"] in ("succeeded", "failed"), timeout=90)
    assert record["status"] == "succeeded", record
    api.get(f"/records/{record_id}/logs")
    api.post(f"/apps/{app}/services/web/versions/v1/preview", json={"clusters": ["test"]})  # the live Secret
    deliveries = wait_for(lambda: api.get(f"/apps/{app}/deliveries").json()["items"],
                          lambda items: len([d for d in items if d["status"] == "failed"]) >= 3, timeout=60)
    assert len([d for d in deliveries if d["status"] == "failed"]) >= 3, deliveries


def read_everything_back(j: Journey, app: str) -> None:
    j.api.get("/admin/audit", params={"limit": 200})
    j.api.get(f"/apps/{app}/records")
    j.api.get("/api/v1/openapi.json".replace("/api/v1", ""))


@pytest.fixture(scope="module")
def journey(stack, admin, clusters):
    answers: list = []
    j = Journey(stack=stack, api=RecordingApi(stack.url, admin.token, answers), answers=answers)
    app = "vault"
    log_in(j)
    register_a_cluster(j)
    add_a_cloud_account_and_servers(j)
    add_channels(j, app)
    link_ci(j, app)
    use_personal_tokens(j)
    deploy_with_a_secret(j, app)
    read_everything_back(j, app)
    return {"answers": j.answers, "given": j.given, "handed": j.handed, "handed_in": j.handed_in}


def test_no_api_answer_shows_a_secret(journey):
    leaks = []
    for i, (what, status, text, headers) in enumerate(journey["answers"]):
        for name, secret in journey["given"].items():
            if secret in text or secret in str(headers):
                leaks.append(f"{name} in {what} ({status})")
        for name, secret in journey["handed"].items():
            if journey["handed_in"].get(name) == i:
                continue  # the one answer that hands it out
            if secret in text or secret in str(headers):
                leaks.append(f"{name} in {what} ({status})")
    assert not leaks, leaks
    assert len(journey["answers"]) >= 35


def test_no_log_line_shows_a_secret(stack, journey):
    secrets = {**journey["given"], **journey["handed"]}
    logs = sorted(stack.log_dir.glob("*.log"))
    assert {"gateway-0.log", "notify-0.log", "cluster-0.log", "server-0.log", "deploy-0.log",
            "auth-0.log"} <= {p.name for p in logs}
    leaks = []
    for log in logs:
        # The sandbox is the cluster itself and localauth the OAuth provider: outside MAE,
        # each knows its own secret. Every MAE process (operators too) is searched.
        outside = {"sandbox-vault.log": {"cluster token"}, "localauth-0.log": {"oauth client secret"}}
        text = log.read_text(errors="replace")
        for name, secret in secrets.items():
            if secret in text and name not in outside.get(log.name, set()):
                leaks.append(f"{name} in {log.name}")
    assert not leaks, leaks
