"""MAE itself on Kubernetes: k8s/ rendered by kustomize, applied by kubectl, rolled out.

kubectl and its built-in kustomize are clients nobody here wrote: what they render and
what a cluster accepts from them is what an admin gets from `k8s/README.md`. The
sandbox stands in for the cluster (its kubelet runs any image that is not ``:missing``
and does not execute probes, so "rolled out" means the Deployments are valid and the
controller brought every replica up, not that MAE's processes started in a container;
that the image holds what the manifests run is checked separately below, without Docker).
"""
import json
import re
import shutil
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
import yaml

from sandbox.testing import start_sandbox
from tests.kube import kubectl, kubectl_json

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = ["gateway", "auth", "org", "deploy", "cluster", "server", "notify"]
# What each process may read: the gateway no database password, only sealing services the key.
BASE = {"mae-broker", "mae-redis"}
SECRETS_OF = {"mae-gateway": BASE, "mae-auth": BASE | {"mae-database", "mae-oauth"},
              "mae-org": BASE | {"mae-database"}, "mae-migrate": {"mae-database", "mae-secret-key"},
              **{f"mae-{p}": BASE | {"mae-database", "mae-secret-key"} for p in ("deploy", "cluster", "server", "notify")}}


def render(overlay: str) -> list[dict]:
    out = kubectl("kustomize", ROOT / "k8s" / "overlays" / overlay, timeout=60)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def by_kind(objects, kind):
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def containers(objects):
    for obj in objects:
        spec = obj.get("spec", {}).get("template", {}).get("spec")
        if spec:
            for c in spec["containers"]:
                yield obj, spec, c


@pytest.fixture(scope="module")
def production():
    return render("production")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with start_sandbox("mae-on-k8s", tmp_path_factory.mktemp("mae-on-k8s"), ready_delay=0.2,
                       no_persist=True) as sb:
        yield sb


def test_production_runs_two_probed_sized_non_root_replicas_of_every_process(production):
    deployments = by_kind(production, "Deployment")
    assert set(deployments) == {f"mae-{p}" for p in PROCESSES} | {"mae-operator"}
    budgets = by_kind(production, "PodDisruptionBudget")
    for name in PROCESSES:
        d = deployments[f"mae-{name}"]
        assert d["metadata"]["namespace"] == "mae"
        assert d["spec"]["replicas"] == 2, name
        assert d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        pod = d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        (c,) = pod["containers"]
        assert c["image"] == "registry.example.com/mae/mae:0.1.0"
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        # services are ready when their own dependencies answer; the gateway when it serves
        assert c["readinessProbe"]["httpGet"]["path"] == ("/healthz" if name == "gateway" else "/readyz")
        # Shutdown outlasts the longest wait inside a worker (a cluster call, ~80 s) plus preStop.
        assert c["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
        assert pod["terminationGracePeriodSeconds"] >= 5 + 80
        # Replicas of one component spread over hosts and zones, against their own kind only.
        spread = {t["topologyKey"]: t for t in pod["topologySpreadConstraints"]}
        assert set(spread) == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
        assert all(t["matchLabelKeys"] == ["app.kubernetes.io/component"] for t in spread.values())
        if name == "gateway":  # the pool the benchmarks measure; no schema to wait for
            assert {e["name"]: e.get("value") for e in c["env"]}["MAX_WORKERS"] == "40"
            assert "initContainers" not in pod
        else:  # a new version waits for the migration Job's schema before it serves
            (init,) = pod["initContainers"]
            assert init["args"] == ["python", "-m", "shared.migrate", "--wait", "600"]
            assert init["image"] == c["image"]
        requests = c["resources"]["requests"]
        assert requests["cpu"] and requests["memory"], name
        assert "memory" in c["resources"]["limits"]
        # every Deployment has a budget that selects exactly its pods
        labels = d["spec"]["template"]["metadata"]["labels"]
        selector = budgets[f"mae-{name}"]["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items() and budgets[f"mae-{name}"]["spec"]["minAvailable"] == 1
        assert labels["app.kubernetes.io/part-of"] == "mae"


def test_production_wires_config_secrets_ingress_and_the_migration_job(production):
    (config,) = by_kind(production, "ConfigMap").values()
    assert config["metadata"]["name"].startswith("mae-config-")  # hashed: a change rolls the pods
    assert config["data"]["PUBLIC_URL"] == "https://mae.example.com"
    assert config["data"]["WEB_SERVER_ADDRESS"] == "0.0.0.0:8000"
    for obj, spec, c in containers(production):
        if obj["metadata"]["namespace"] != "mae":
            continue
        sources = {next(iter(s.values()))["name"] for s in c["envFrom"]}
        assert sources == {config["metadata"]["name"], *SECRETS_OF[obj["metadata"]["name"]]}, obj["metadata"]["name"]
    # no secret values in the repository: the Secrets are the admin's, not rendered here
    assert not [s for s in by_kind(production, "Secret").values() if s.get("data") or s.get("stringData")]
    ingress = by_kind(production, "Ingress")["mae"]
    assert ingress["spec"]["tls"][0]["secretName"] == "mae-tls"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    service = by_kind(production, "Service")[backend["name"]]
    assert service["spec"]["selector"].items() <= \
        by_kind(production, "Deployment")["mae-gateway"]["spec"]["template"]["metadata"]["labels"].items()
    job = by_kind(production, "Job")["mae-migrate"]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["python", "-m", "shared.migrate"]
    operator = by_kind(production, "Deployment")["mae-operator"]
    op_pod = operator["spec"]["template"]["spec"]
    (op,) = op_pod["containers"]
    assert op_pod["securityContext"]["runAsNonRoot"] is True
    assert op["securityContext"]["readOnlyRootFilesystem"] is True and op["securityContext"]["capabilities"]["drop"] == ["ALL"]
    port = op["command"][op["command"].index("--health-port") + 1]
    assert op["livenessProbe"]["httpGet"]["path"] == "/healthz" and op["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {p["name"]: str(p["containerPort"]) for p in op["ports"]}["health"] == port
    env = {e["name"]: e.get("value") for e in operator["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MAE_URL"] == f"http://{backend['name']}.mae.svc.cluster.local"


def test_small_overlay_runs_one_replica_without_blocking_drains():
    small = render("small")
    deployments = by_kind(small, "Deployment")
    assert set(deployments) == {f"mae-{p}" for p in PROCESSES}
    assert all(d["spec"]["replicas"] == 1 for d in deployments.values())
    # Fits a default MariaDB (max_connections 151, 20 % kept free): 12 pods at most in a rollout.
    (config,) = by_kind(small, "ConfigMap").values()
    workers, pool, processes = (int(config["data"][k]) for k in ("MAX_WORKERS", "DB_POOL_SIZE", "DB_BUDGET_PROCESSES"))
    assert processes == 2 * 6 and processes * (max(workers, pool) + 4) <= 151 * 0.8
    assert not by_kind(small, "PodDisruptionBudget")


def test_kubectl_applies_the_production_overlay_and_everything_rolls_out(sandbox, production):
    admin = partial(kubectl, kubeconfig=sandbox.kubeconfig_path, timeout=90)
    read = partial(kubectl_json, kubeconfig=sandbox.kubeconfig_path, timeout=90, check=True)
    # The admin's first step (k8s/README.md): the namespaces' secrets, as YAML through apply.
    secrets = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mae"}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mae-system"}},
        *[{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "mae"},
           "stringData": data} for name, data in (
            ("mae-database", {"DB_URL": "mysql+pymysql://mae:pw@mariadb:3306/mae"}),
            ("mae-broker", {"AMQP_URI": "pyamqp://mae:pw@rabbitmq/"}),
            ("mae-redis", {"REDIS_URL": "redis://redis:6379/0"}),
            ("mae-secret-key", {"MAE_SECRET_KEY": "x" * 44}))],
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "mae-operator", "namespace": "mae-system"},
         "stringData": {"report-token": "mae_r_example"}},
    ]
    first = admin("apply", "-f", "-", stdin=yaml.safe_dump_all(secrets))
    assert first.returncode == 0, first.stderr

    # The command the issue names, as an admin types it.
    applied = subprocess.run(
        f"kubectl kustomize {ROOT / 'k8s/overlays/production'} | "
        f"kubectl --kubeconfig {sandbox.kubeconfig_path} apply -f -",
        shell=True, capture_output=True, text=True, timeout=120)
    assert applied.returncode == 0, applied.stderr
    for obj in production:
        assert f"/{obj['metadata']['name']} " in applied.stdout, (obj["kind"], obj["metadata"]["name"])

    for name in [f"mae-{p}" for p in PROCESSES]:
        out = admin("rollout", "status", f"deployment/{name}", "-n", "mae", "--timeout=90s")
        assert out.returncode == 0 and "successfully rolled out" in out.stdout, (name, out.stdout, out.stderr)
    out = admin("rollout", "status", "deployment/mae-operator", "-n", "mae-system", "--timeout=90s")
    assert out.returncode == 0, out.stderr
    pods = read("get", "pods", "-n", "mae")["items"]
    running = [p for p in pods if p["status"].get("phase") == "Running"]
    assert len(running) == 2 * len(PROCESSES)
    assert {p["spec"]["containers"][0]["image"] for p in running} == {"registry.example.com/mae/mae:0.1.0"}
    job = read("get", "job", "mae-migrate", "-n", "mae")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["python", "-m", "shared.migrate"]

    # Re-applying the same render starts no rollout: no Deployment's generation moves.
    def generations():
        items = read("get", "deployments", "-A")["items"]
        return {d["metadata"]["name"]: d["metadata"]["generation"] for d in items}

    before = generations()
    again = subprocess.run(
        f"kubectl kustomize {ROOT / 'k8s/overlays/production'} | "
        f"kubectl --kubeconfig {sandbox.kubeconfig_path} apply -f -",
        shell=True, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "created" not in again.stdout
    assert generations() == before


# -- the image: what the Dockerfile puts in /app is what the manifests run ----------------

def dockerfile_final_stage() -> list[str]:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.split(r"(?m)^FROM ", text)
    return [line.strip() for line in stages[-1].splitlines() if line.strip() and not line.startswith("#")]


def test_image_is_non_root_and_its_user_matches_the_manifests(production):
    final = dockerfile_final_stage()
    (user,) = [line.split()[1] for line in final if line.startswith("USER ")]
    uid = int(user.split(":")[0])
    assert uid != 0
    for obj, spec, c in containers(production):
        if obj["metadata"]["namespace"] == "mae":
            assert spec["securityContext"]["runAsUser"] == uid


def test_image_holds_every_module_and_file_the_manifests_run(production, tmp_path):
    """Lay out /app as the Dockerfile's COPY lines do, then import each container's entry
    point from there (not from the checkout), with the project's dependencies."""
    app = tmp_path / "app"
    app.mkdir()
    for line in dockerfile_final_stage():
        if line.startswith("COPY ") and "--from=" not in line:
            *sources, dest = line.split()[1:]
            for src in sources:
                target = app / (dest if dest not in ("./", ".") else Path(src).name)
                if (ROOT / src).is_dir():
                    shutil.copytree(ROOT / src, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(ROOT / src, target)
    operator = yaml.safe_load_all((ROOT / "k8s/operator/operator.yaml").read_text())
    commands = [c.get("command", []) + c.get("args", []) for _, _, c in containers(production)]
    commands += [c["command"] for o in operator if o and o["kind"] == "Deployment"
                 for c in o["spec"]["template"]["spec"]["containers"]]
    modules, files = set(), set()
    for argv in commands:
        if argv[:2] == ["nameko", "run"]:
            files.add(argv[argv.index("--config") + 1])
            modules.add(argv[-1].split(":")[0])
        elif argv[:2] == ["python", "-m"]:
            modules.add(argv[2])
            if (ROOT / argv[2]).is_dir():  # a package run with -m: its __main__ must be there too
                files.add(f"{argv[2]}/__main__.py")
        else:
            raise AssertionError(f"unknown entry point {argv}")
    assert {"gateway.service", "services.deploy.service", "shared.migrate", "mae_operator"} <= modules
    for f in files | {"alembic.ini", "migrations/env.py", "gateway/console/index.html"}:
        assert (app / f).is_file(), f
    probe = (
        "import importlib, sys, json\n"
        "from shared.config import ROOT\n"
        "mods = json.loads(sys.argv[1])\n"
        "where = {m: importlib.import_module(m).__file__ for m in mods}\n"
        "print(json.dumps({'root': str(ROOT), 'where': where}))\n")
    out = subprocess.run([sys.executable, "-c", probe, json.dumps(sorted(modules))],
                         cwd=app, env={"PYTHONPATH": str(app), "PATH": "/usr/bin:/bin", "MAE_CONFIG": str(app / "config/production.yaml")},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout.splitlines()[-1])
    assert found["root"] == str(app)
    for module, path in found["where"].items():
        assert path.startswith(str(app)), f"{module} came from {path}, not the image"
