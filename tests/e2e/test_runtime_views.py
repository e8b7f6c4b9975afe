"""Pods, logs and events of a version through MAE (issue 21, item 5), end to end.

A team's version runs on the sandbox clusters ``test`` and ``prod``; its pods, their
logs (tail, one pod, ``follow`` streaming that ends when the client leaves) and the
app's Kubernetes events are read through the gateway, checked against what kubectl
sees on the cluster. Failure paths: a pod of another app or version (404, never
proxied), a user of another app (404), a viewer asking for prod logs (403), bad
parameters (422 with a message), a cluster that is down (503). Warning events of MAE's
objects reach a deploy record's log through the operator, once each.

Sandbox clusters only: logs on the real control plane need a kubelet.
"""
import os
import signal
import socket
import time
import uuid

import pytest
import requests

from tests.kube import kubectl_json
from tests.waiting import waiter

wait_for = waiter(timeout=60.0, interval=0.2)


def finished(client, record_id):
    return wait_for(lambda: (lambda r: r if r.get("finished_at") else None)(client.get(f"/records/{record_id}").json()),
                    what=f"record {record_id} to finish")


def deploy(client, app, svc, ver, clusters):
    sent = client.post(f"/apps/{app}/services/{svc}/versions/{ver}/deploy", json={"clusters": clusters})
    assert sent.status_code == 202, sent.text
    return sent.json()["record_id"]


def make_version(client, app, svc, ver, **extra):
    made = client.post(f"/apps/{app}/services/{svc}/versions",
                       json={"name": ver, "image": "nginx:1.25", "port": 80, "replicas": 2, **extra})
    assert made.status_code == 201, made.text


def pods_on(info, app, selector):
    return sorted(p["metadata"]["name"] for p in
                  kubectl_json("-n", app, "get", "pods", "-l", selector, kubeconfig=info["kubeconfig"], timeout=30)["items"])


@pytest.fixture(scope="module")
def team(stack, clusters, login):
    run = uuid.uuid4().hex[:4]
    people = {role: login(f"rt-{role}-{run}") for role in ("owner", "developer", "viewer", "outsider")}
    app, other = f"rt-{uuid.uuid4().hex[:6]}", f"rt-out-{run}"
    assert people["owner"].post("/apps", json={"name": app}).status_code == 201
    for role in ("developer", "viewer"):
        assert people["owner"].put(f"/apps/{app}/members/rt-{role}-{run}", json={"role": role}).status_code == 200
    assert people["outsider"].post("/apps", json={"name": other}).status_code == 201
    for who, name in (("owner", app), ("outsider", other)):
        client = people[who]
        assert client.post(f"/apps/{name}/services", json={"name": "web"}).status_code == 201
        make_version(client, name, "web", "v1")
    make_version(people["owner"], app, "web", "v2", replicas=1)
    records = [(people["owner"], deploy(people["owner"], app, "web", "v1", ["test", "prod"])),
               (people["owner"], deploy(people["owner"], app, "web", "v2", ["test"])),
               (people["outsider"], deploy(people["outsider"], other, "web", "v1", ["test"]))]
    for client, record_id in records:
        assert finished(client, record_id)["status"] == "succeeded"
    return {**people, "app": app, "other": other, "clusters": clusters, "stack": stack}


def logs(client, app, ver="v1", **params):
    return client.get(f"/apps/{app}/services/web/versions/{ver}/logs", params=params)


def test_a_versions_pods_on_every_cluster_and_on_one(team):
    owner, app, clusters = team["owner"], team["app"], team["clusters"]
    answer = owner.get(f"/apps/{app}/services/web/versions/v1/pods")
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    selector = f"mae.io/app={app},mae.io/service=web,mae.io/version=v1"
    for cluster in ("test", "prod"):
        mine = [p for p in items if p["cluster"] == cluster]
        assert sorted(p["name"] for p in mine) == pods_on(clusters[cluster], app, selector)
        for pod in mine:
            assert pod["phase"] == "Running" and pod["ready"] is True and pod["restarts"] == 0
            assert pod["reason"] is None and pod["started_at"]
    only = team["viewer"].get(f"/apps/{app}/services/web/versions/v1/pods", params={"cluster": "prod"}).json()["items"]
    assert {p["cluster"] for p in only} == {"prod"} and len(only) == 2
    v2 = owner.get(f"/apps/{app}/services/web/versions/v2/pods").json()["items"]
    assert len(v2) == 1 and v2[0]["cluster"] == "test" and v2[0]["name"] not in {p["name"] for p in items}


def test_a_crashing_versions_pods_say_why(team):
    owner, app = team["owner"], team["app"]
    make_version(owner, app, "web", "boom", image="nginx:crash", replicas=1)
    deploy(owner, app, "web", "boom", ["test"])

    def crashing():
        items = owner.get(f"/apps/{app}/services/web/versions/boom/pods").json()["items"]
        return items if items and items[0]["reason"] == "CrashLoopBackOff" and items[0]["restarts"] >= 1 else None
    [pod] = wait_for(crashing, what="the pod to crash-loop")
    assert pod["ready"] is False


def test_logs_tail_one_pod_and_prefixes(team):
    owner, app = team["owner"], team["app"]
    names = [p["name"] for p in owner.get(f"/apps/{app}/services/web/versions/v1/pods",
                                          params={"cluster": "test"}).json()["items"]]
    answer = logs(owner, app, cluster="test", tail=1)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/plain")
    lines = answer.text.splitlines()
    assert sorted(line.split(" ", 1)[0] for line in lines) == sorted(names)   # one line per pod, prefixed
    whole = logs(owner, app, cluster="test", pod=names[0]).text.splitlines()
    assert whole and all(line.startswith(names[0] + " ") for line in whole)
    assert "sandbox: container" in whole[0] and "started on" in whole[0]
    assert len(logs(owner, app, cluster="test", pod=names[0], tail=2).text.splitlines()) == min(2, len(whole))
    recent = logs(owner, app, cluster="test", pod=names[0], since_seconds=1).text.splitlines()
    assert len(recent) <= len(whole)
    # a version on one cluster needs no cluster named; the viewer reads test logs
    assert team["viewer"].get(f"/apps/{app}/services/web/versions/v2/logs", params={"tail": 5}).status_code == 200


def test_follow_streams_new_lines_until_the_client_leaves(team):
    owner, app, stack = team["owner"], team["app"], team["stack"]
    [name, *_] = [p["name"] for p in owner.get(f"/apps/{app}/services/web/versions/v1/pods",
                                               params={"cluster": "test"}).json()["items"]]
    url = f"{owner.base}/apps/{app}/services/web/versions/v1/logs"
    started = time.monotonic()
    with requests.get(url, params={"cluster": "test", "pod": name, "tail": 1, "follow": 1}, stream=True,
                      headers={"Authorization": f"Bearer {owner.token}"}, timeout=(5, 10)) as resp:
        assert resp.status_code == 200, resp.text
        got = []
        for line in resp.iter_lines():
            got.append(line.decode())
            if sum("seq=" in g for g in got) >= 3:
                break
        assert streams_open(stack) >= 1   # while it streams, the gateway reads from the cluster service
    # lines arrived as they were written (one a second), not at the end of a finished answer
    assert time.monotonic() - started < 10
    assert all(g.startswith(name + " ") for g in got)
    seqs = [int(g.rsplit("seq=", 1)[1]) for g in got if "seq=" in g]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # The client left: the gateway closes its stream from the cluster service, and the cluster
    # service, at its next write, closes its end (and with it the cluster's pods/log stream).
    # No connection to its port stays established or half-closed (CLOSE_WAIT).
    wait_for(lambda: streams_open(stack) == 0, timeout=15, what="the relayed streams to close")


def streams_open(stack) -> int:
    """TCP connections to the cluster service's port (the gateway's log relays) still held by it."""
    from scripts.stack import METRICS_PORTS

    port = METRICS_PORTS["cluster"] + stack.port_offset
    with open("/proc/net/tcp") as fh:
        rows = [row.split() for row in fh.readlines()[1:]]
    # 01 ESTABLISHED, 08 CLOSE_WAIT (the peer left, this end not closed yet)
    return sum(1 for row in rows if int(row[1].split(":")[1], 16) == port and row[3] in ("01", "08"))


def test_events_of_the_app_newest_first_and_filtered(team):
    owner, app = team["owner"], team["app"]
    answer = owner.get(f"/apps/{app}/events")
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert {i["cluster"] for i in items} == {"test", "prod"}
    assert [i["last_seen"] for i in items] == sorted((i["last_seen"] for i in items), reverse=True)
    assert any(i["reason"] == "ScalingReplicaSet" and i["object"].startswith("Deployment/web-v1") for i in items)
    assert all(i["type"] in ("Normal", "Warning") and i["count"] >= 1 for i in items)
    v2 = owner.get(f"/apps/{app}/events", params={"service": "web", "version": "v2", "cluster": "test"}).json()["items"]
    assert v2 and all(i["cluster"] == "test" and "web-v2" in i["object"] for i in v2)
    assert not any("web-v1" in i["object"] for i in v2)
    boom = wait_for(lambda: [i for i in owner.get(f"/apps/{app}/events", params={"version": "boom"}).json()["items"]
                             if i["type"] == "Warning"], what="a Warning event of the crashing version")
    assert any(i["reason"] == "BackOff" for i in boom)


def test_outsiders_and_other_apps_pods_are_404_never_proxied(team):
    owner, outsider, app, other = team["owner"], team["outsider"], team["app"], team["other"]
    for path in (f"/apps/{app}/services/web/versions/v1/pods", f"/apps/{app}/services/web/versions/v1/logs",
                 f"/apps/{app}/events"):
        assert outsider.get(path, params={"cluster": "test"}).status_code == 404
    foreign = outsider.get(f"/apps/{other}/services/web/versions/v1/pods").json()["items"][0]["name"]
    refused = logs(owner, app, cluster="test", pod=foreign)
    assert refused.status_code == 404 and foreign in refused.json()["error"]["message"]
    v2 = owner.get(f"/apps/{app}/services/web/versions/v2/pods").json()["items"][0]["name"]
    assert logs(owner, app, cluster="test", pod=v2).status_code == 404           # another version's pod
    assert logs(owner, app, "v2", cluster="prod").status_code == 404              # not where it runs
    assert owner.get(f"/apps/{app}/events", params={"cluster": "nowhere"}).status_code == 404
    make_version(owner, app, "web", "idle")
    assert logs(owner, app, "idle").status_code == 404                          # never deployed
    assert owner.get(f"/apps/{app}/services/web/versions/idle/pods").json()["items"] == []


def test_a_viewer_reads_test_logs_but_not_prod_logs(team):
    app = team["app"]
    assert logs(team["viewer"], app, cluster="test", tail=1).status_code == 200
    refused = logs(team["viewer"], app, cluster="prod", tail=1)
    assert refused.status_code == 403 and "production" in refused.json()["error"]["message"]
    assert logs(team["developer"], app, cluster="prod", tail=1).status_code == 200
    # pods and events of prod are for every member
    assert team["viewer"].get(f"/apps/{app}/services/web/versions/v1/pods", params={"cluster": "prod"}).status_code == 200


@pytest.mark.parametrize("params,field", [({"tail": 0}, "tail"), ({"tail": 10001}, "tail"), ({"tail": "x"}, "tail"),
                                          ({"since_seconds": 0}, "since_seconds"), ({"follow": "yes"}, "follow"),
                                          ({}, "cluster")])
def test_bad_log_parameters_are_422_with_a_message(team, params, field):
    answer = logs(team["owner"], team["app"], **({"cluster": "test"} if field != "cluster" else {}), **params)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["details"]["field"] == field and field in error["message"]


def test_a_cluster_that_is_down_is_503_with_a_message(team, admin):
    stack, owner, app = team["stack"], team["owner"], team["app"]
    name = f"gone{uuid.uuid4().hex[:4]}"
    info = stack.start_sandbox(name, 0, ready_delay=0.2)
    stack.register_cluster(admin.token, name, "prod", info)
    try:
        wait_for(lambda: kubectl_json("get", "namespace", app, kubeconfig=str(stack.sandbox_dir(name) / "kubeconfig"),
                                      timeout=30), what=f"namespace {app} on {name}")
        deploy(owner, app, "web", "v1", [name])
        wait_for(lambda: len(owner.get(f"/apps/{app}/services/web/versions/v1/pods",
                                       params={"cluster": name}).json().get("items") or []) == 2,
                 what="the pods on the new cluster")
        os.kill(int((stack.pid_dir / f"sandbox-{name}.pid").read_text()), signal.SIGTERM)   # ours
        wait_for(lambda: not _listening(info["url"]), what="the sandbox to stop")
        for answer in (logs(owner, app, cluster=name, tail=1),
                       owner.get(f"/apps/{app}/services/web/versions/v1/pods", params={"cluster": name}),
                       owner.get(f"/apps/{app}/events", params={"cluster": name})):
            assert answer.status_code == 503, answer.text
            assert name in answer.json()["error"]["message"]
        every = owner.get(f"/apps/{app}/services/web/versions/v1/pods").json()
        assert every["unreachable"] == [name] and {p["cluster"] for p in every["items"]} == {"test", "prod"}
    finally:
        assert admin.delete(f"/clusters/{name}").status_code == 204


def _listening(url: str) -> bool:
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    try:
        socket.create_connection((host, int(port.rstrip("/"))), timeout=1).close()
        return True
    except OSError:
        return False


def test_warning_events_reach_the_deploy_records_log_once_each(team):
    owner, app = team["owner"], team["app"]
    make_version(owner, app, "web", "big", replicas=1,
                 resources={"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "4", "memory": "256Mi"}})
    record_id = deploy(owner, app, "web", "big", ["test"])
    assert finished(owner, record_id)["status"] == "failed"

    def warned():
        items = owner.get(f"/records/{record_id}/logs").json()["items"]
        found = [i for i in items if i["line"].startswith("Warning from the cluster about ReplicaSet/web-big")]
        return found or None
    found = wait_for(warned, what="the FailedCreate warning in the record's log")
    assert all(i["level"] == "warning" for i in found)
    assert "FailedCreate: " in found[0]["line"] and "maximum cpu usage per Container is 2" in found[0]["line"]
    assert "LimitRange" in found[0]["line"]   # and what it means
    time.sleep(3)   # the cluster retries and repeats the event: still one line per distinct event
    again = [i["line"] for i in owner.get(f"/records/{record_id}/logs").json()["items"]
             if i["line"].startswith("Warning from the cluster")]
    assert len(again) == len(set(again))


def test_a_log_ticket_is_good_once_and_only_for_what_it_names(team):
    """The cluster service's internal log endpoint, as the gateway uses it: a ticket from RPC
    opens the log once; used again, made up, or missing, it opens nothing (401)."""
    from nameko.standalone.rpc import ClusterRpcProxy

    from scripts.stack import METRICS_PORTS, ROOT
    from shared.config import load_config

    stack, app = team["stack"], team["app"]
    config = load_config(ROOT / "config" / "test.yaml")
    config["AMQP_URI"] = stack.env["AMQP_URI"]
    with ClusterRpcProxy(config, timeout=15) as rpc:
        grant = rpc.cluster.log_ticket(app, "web", "v1", "test", None, "1", None, None)
    internal = f"http://127.0.0.1:{METRICS_PORTS['cluster'] + stack.port_offset}/internal/logs"
    first = requests.get(internal, headers={"X-MAE-Log-Ticket": grant["ticket"]}, timeout=10)
    assert first.status_code == 200 and sorted(line.split(" ", 1)[0] for line in first.text.splitlines()) == \
        sorted(grant["pods"])
    for ticket in (grant["ticket"], "x" * 43, None):
        again = requests.get(internal, headers={"X-MAE-Log-Ticket": ticket} if ticket else {}, timeout=10)
        assert again.status_code == 401 and again.json()["error"]["code"] == "unauthorized"
