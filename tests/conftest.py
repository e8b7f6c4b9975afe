"""Test plumbing shared by every layer.

The process is monkey-patched by eventlet first, as ``nameko run`` does, so
nameko containers behave in tests as in production. Each test run gets its
own MariaDB database and RabbitMQ vhost (created with ``rabbitmqctl``; nameko's
stock ``rabbit_config`` needs the management API, which we do not require),
and drops them at the end.
"""
import eventlet

eventlet.monkey_patch()  # noqa: E402  (must precede every other import)


from shared.compat import repair_urllib3_ssl  # noqa: E402

# pytest plugins (schemathesis) import urllib3 before this conftest patches ssl.
repair_urllib3_ssl()

import os
import subprocess
import uuid
import warnings

import pytest

warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", message=".*Eventlet is deprecated.*")

RUN_ID = uuid.uuid4().hex[:8]


def _rabbitmqctl(*args):
    subprocess.run(["rabbitmqctl", "-q", *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)


class Infra:
    """Names and URLs of this run's database and vhost."""

    def __init__(self, run_id):
        self.run_id = run_id
        self.database = f"mae_test_{run_id}"
        self.vhost = f"mae-test-{run_id}"
        self.db_url = f"mysql+pymysql://root:@127.0.0.1:3306/{self.database}?charset=utf8mb4"
        self.amqp_uri = f"pyamqp://guest:guest@127.0.0.1:5672/{self.vhost}"
        self.redis_url = "redis://127.0.0.1:6379/1"
        self.redis_prefix = f"mae-test-{run_id}"
        self.extra_vhosts = []

    def new_vhost(self, suffix):
        name = f"{self.vhost}-{suffix}"
        _rabbitmqctl("add_vhost", name)
        _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        self.extra_vhosts.append(name)
        return name, f"pyamqp://guest:guest@127.0.0.1:5672/{name}"


@pytest.fixture(scope="session")
def infra():
    from sqlalchemy import create_engine, text

    from shared.migrate import upgrade

    infra = Infra(RUN_ID)
    _rabbitmqctl("add_vhost", infra.vhost)
    _rabbitmqctl("set_permissions", "-p", infra.vhost, "guest", ".*", ".*", ".*")
    upgrade(infra.db_url)
    yield infra
    for vhost in [infra.vhost, *infra.extra_vhosts]:
        _rabbitmqctl("delete_vhost", vhost)
    engine = create_engine("mysql+pymysql://root:@127.0.0.1:3306/")
    with engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{infra.database}`"))
    engine.dispose()


@pytest.fixture(scope="session")
def secret_key():
    from shared.secretbox import generate_key

    return generate_key()


@pytest.fixture
def config(infra, secret_key):
    """The test config file, pointed at this run's database and vhost."""
    from shared.config import ROOT, load_config

    cfg = load_config(ROOT / "config" / "test.yaml")
    cfg.update({
        "AMQP_URI": infra.amqp_uri,
        "DB_URL": infra.db_url,
        "REDIS_URL": infra.redis_url,
        "REDIS_PREFIX": infra.redis_prefix,
        "SECRET_KEY": secret_key,
        "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
    })
    return cfg


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def rabbit_config(config):
    """nameko's fixture name, our vhost (nameko's own needs the management API)."""
    return config


@pytest.fixture
def db_engine(infra):
    from sqlalchemy import create_engine

    engine = create_engine(infra.db_url, pool_pre_ping=True)
    yield engine
    engine.dispose()


@pytest.fixture
def redis_client(infra):
    from shared.redis import make_client

    client = make_client(infra.redis_url)
    yield client
    client.close()


@pytest.fixture
def span_exporter(monkeypatch):
    """Tracing on for this test only (``shared.tracing``), its spans kept in memory — no
    global provider, nothing exported; the exporter's ``get_finished_spans()`` lists them."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from shared import tracing

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "ENABLED", True)
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("test"))
    return exporter


@pytest.fixture(scope="session")
def real_kube(tmp_path_factory):
    """A real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
    kube-scheduler) with one hollow node, for the whole session (tests/realkube/).
    The binaries come from ``scripts/kube-bin.sh``; when it finds none this FAILS with its
    message (set ``KUBE_BIN`` or provide the archive) — the tier is never skipped."""
    from tests.realkube.controlplane import start_control_plane

    # backoff 0.3 s (the kubelet's is 10 s) so CrashLoopBackOff / ImagePullBackOff show within a second;
    # 20 simulated log lines a second (pods/log), like the sandbox's tests;
    # a declared extra identity for token_for (the API server reads its token file only at start).
    with start_control_plane(tmp_path_factory.mktemp("realkube"), hollow_nodes=1, ready_delay=0.2,
                             slow_delay=30, backoff=0.3, log_rate=20,
                             users={"realkube-viewer": ["realkube-viewers"]}) as kp:
        yield kp


@pytest.fixture(scope="session")
def real_kube_mae(real_kube, tmp_path_factory):
    """MAE's access to the real control plane as k8s/operator/ grants it: the deployer
    token of mke-rbac.yaml and the operator's service-account token."""
    from tests.realkube.mae_access import install

    return install(real_kube, str(tmp_path_factory.mktemp("realkube-mae")))


def pytest_addoption(parser):
    parser.addoption("--mae-shard", default=None, metavar="K/N",
                     help="run the K-th of N parts of the suite (scripts/test-shards.sh runs them at once)")


def pytest_configure(config):
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    from tests import run_summary

    run_summary.start()


def pytest_terminal_summary(terminalreporter):
    """What the fault waves measured, the sandbox's conformance score and how many cases the
    fuzzer ran (tests/run_summary.py)."""
    from tests import run_summary

    for section in ("fault suite", "sandbox conformance"):
        lines = run_summary.read(section)
        if lines:
            terminalreporter.section(section)
            for line in lines:
                terminalreporter.write_line(line)
    counts = {"member": 0, "admin": 0}
    for line in run_summary.read("hostile-counts"):
        who, n = line.split()
        counts[who] += int(n)
    if sum(counts.values()):
        failed = len([r for r in terminalreporter.stats.get("failed", []) if "test_fuzz" in r.nodeid])
        terminalreporter.section("hostile input")
        terminalreporter.write_line(f"schemathesis: {sum(counts.values())} generated cases ({counts['member']} "
                                    f"as a member, {counts['admin']} as an admin), {failed} failed")


def _on_the_real_control_plane(item) -> bool:
    """Whether ``item`` uses the real control plane: there is one per machine (etcd always
    listens on :2379, tests/realkube/controlplane.py), so they all go to the first part."""
    if item.nodeid.startswith("tests/realkube/"):
        return True
    if {"real_kube", "real_kube_mae", "real_mae"} & set(getattr(item, "fixturenames", ())):
        return True
    params = getattr(getattr(item, "callspec", None), "params", {})
    return any(value == "real" for value in params.values())


def _weight(item) -> float:
    """A rough cost of a test, for balancing parts: a whole system or a browser costs more."""
    path = item.nodeid.split("::")[0]
    if path.startswith(("tests/faults/", "tests/e2e/test_console")):
        return 6.0
    if path.startswith(("tests/e2e/", "tests/hostile/", "tests/service/", "tests/integration/")):
        return 2.0
    return 0.3


def pytest_collection_modifyitems(config, items):
    """``--mae-shard K/N``: keep the K-th of N parts. A test file stays whole (its module
    fixtures start once) and every test on the real control plane is in part 1; the files are
    dealt out by weight, heaviest first, to the lightest part."""
    shard = config.getoption("--mae-shard")
    if not shard:
        return
    k, n = (int(x) for x in shard.split("/"))
    files: dict[str, float] = {}
    load = [0.0] * n
    for item in items:
        if _on_the_real_control_plane(item):
            load[0] += _weight(item)
        else:
            path = item.nodeid.split("::")[0]
            files[path] = files.get(path, 0.0) + _weight(item)
    part_of: dict[str, int] = {}
    for path, weight in sorted(files.items(), key=lambda kv: (-kv[1], kv[0])):
        lightest = min(range(n), key=lambda i: load[i])
        part_of[path] = lightest
        load[lightest] += weight
    keep, drop = [], []
    for item in items:
        part = 0 if _on_the_real_control_plane(item) else part_of[item.nodeid.split("::")[0]]
        (keep if part == k - 1 else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep
