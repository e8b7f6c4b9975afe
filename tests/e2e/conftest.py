import os
import signal
from contextlib import contextmanager

import pytest

from scripts.stack import ROOT, Stack


# Another application registered at the same OAuth server: its codes must not work for MAE.
FOREIGN_CLIENT = "other-app:other-secret:http://127.0.0.1:9/callback"


# What every stack a test starts runs with, on top of its backends.
STACK_ENV = {
    "HEALTH_TIMEOUT": "2", "LOG_LEVEL": "INFO",
    # nothing listens there: a cloud sync fails at once, visibly
    "ALIYUN_ECS_ENDPOINT": "127.0.0.1:9",
    # clusters are probed and namespaces retried every 2 s, not every 10
    "CLUSTER_TEND_SECONDS": "2",
}


@contextmanager
def own_backends(infra, suffix: str):
    """A migrated database, a vhost and a Redis prefix for one stack alone (as Stack env);
    the database is dropped afterwards (the run drops its vhosts)."""
    from sqlalchemy import create_engine, text

    from shared.migrate import upgrade

    database = f"{infra.database}_{suffix}"
    db_url = infra.db_url.replace(f"/{infra.database}?", f"/{database}?")
    upgrade(db_url)
    _, amqp_uri = infra.new_vhost(suffix)
    try:
        yield {"DB_URL": db_url, "AMQP_URI": amqp_uri, "REDIS_URL": infra.redis_url,
               "REDIS_PREFIX": f"{infra.redis_prefix}-{suffix}"}
    finally:
        engine = create_engine("mysql+pymysql://root:@127.0.0.1:3306/")
        with engine.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{database}`"))
        engine.dispose()


@contextmanager
def running_stack(run_dir, env: dict, **options):
    """The whole system as `make up` starts it, with ``STACK_ENV`` + ``env``, ready; stopped after."""
    from tests.conftest import free_port

    stack = Stack(run_dir=run_dir, config=ROOT / "config" / "test.yaml", env={**STACK_ENV, **env},
                  gateway_port=free_port(), **options)
    stack.start_all()
    try:
        stack.wait_ready(90)
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture(scope="session")
def stack(infra, secret_key, tmp_path_factory):
    """The whole system as `make up` starts it, on this run's database, vhost and ports."""
    from tests.conftest import free_port

    # Its own vhost: the session-long stack must not compete for RPC queues with the
    # in-process containers of the service tests that run in the same session.
    _, amqp_uri = infra.new_vhost("e2e")
    env = {"DB_URL": infra.db_url, "AMQP_URI": amqp_uri, "REDIS_URL": infra.redis_url,
           "REDIS_PREFIX": infra.redis_prefix, "MAE_SECRET_KEY": secret_key}
    with running_stack(tmp_path_factory.mktemp("stack"), env, port_offset=free_port() % 500 + 1000,
                       localauth_port=free_port(), extra_oauth_clients=[FOREIGN_CLIENT]) as started:
        yield started


SANDBOX_OPTS = {"ready_delay": 0.2, "backoff": 0.3, "snapshot_interval": 1}
OPERATOR_OPTS = {"batch_seconds": 0.2, "heartbeat_seconds": 2, "backoff_cap": 2}


@pytest.fixture(scope="session")
def clusters(stack, admin):
    """Two sandbox clusters ``test`` and ``prod`` registered with MAE (env test / prod) as
    `make up` does it, each with its operator; processes tracked in the stack's pid dir."""
    started = stack.start_clusters(
        admin.token, clusters=[("test", "test", 0), ("prod", "prod", 0)],
        sandbox_opts=SANDBOX_OPTS, operator_opts=OPERATOR_OPTS)
    return started


class Mae:
    """One running MAE and what a test needs of it: the stack, an admin, ``login(name)``
    and its registered clusters (``{name: info}`` with ``url``, ``kubeconfig`` — an admin
    kubeconfig for kubectl, a client that shares nothing with MAE — and ``env``)."""

    def __init__(self, kind, stack, admin, login, clusters):
        self.kind, self.stack, self.admin, self.login, self.clusters = kind, stack, admin, login, clusters


@pytest.fixture(scope="session")
def real_mae(infra, secret_key, tmp_path_factory, real_kube, real_kube_mae):
    """A second MAE whose ``test`` cluster is the real control plane (tests/realkube/),
    registered with exactly the deployer token of k8s/operator/mke-rbac.yaml, its
    operator watching with the service account of k8s/operator/operator.yaml; ``prod``
    is a sandbox. Started only by the tests parametrised over both kinds of cluster."""
    from scripts.stack import admin_token
    from tests.conftest import free_port

    # Metrics ports are METRICS_PORTS + offset: 3000-3499 keeps them clear of the session
    # stack (1000-1499), the fault and traced ones (2000-2800) and the hostile one (4000-4499),
    # which run while this one is up.
    with own_backends(infra, "realkube") as env:
        with running_stack(tmp_path_factory.mktemp("stack-realkube"), {**env, "MAE_SECRET_KEY": secret_key},
                           port_offset=free_port() % 500 + 3000, localauth_port=free_port()) as started:
            token, _ = admin_token(started)
            admin = Api(started.url, token)
            test = {"name": "test", "url": real_kube.url, "token": real_kube_mae.deployer_token,
                    "ca_path": real_kube.ca_path, "kubeconfig": real_kube.kubeconfig_path}
            started.register_cluster(token, "test", "test", test)
            started.start_operator("test", kubeconfig=real_kube_mae.operator_kubeconfig, **OPERATOR_OPTS)
            prod = started.start_sandbox("prod", 0, **SANDBOX_OPTS)
            started.register_cluster(token, "prod", "prod", prod)
            started.start_operator("prod", **OPERATOR_OPTS)
            cache = {}

            def login_as(username: str, fresh: bool = False) -> "Api":
                if fresh or username not in cache:
                    cache[username] = Api(started.url, oauth_login(started, username)["token"])
                return cache[username]

            yield Mae("real", started, admin, login_as,
                      {"test": {**test, "env": "test"}, "prod": {**prod, "env": "prod"}})


@pytest.fixture(scope="session", params=["sandbox", "real"])
def mae(request):
    """MAE with sandbox clusters, then MAE whose ``test`` cluster is a real API server:
    a test that takes ``mae`` runs against both."""
    if request.param == "real":
        return request.getfixturevalue("real_mae")
    stack = request.getfixturevalue("stack")
    return Mae("sandbox", stack, request.getfixturevalue("admin"), request.getfixturevalue("login"),
               request.getfixturevalue("clusters"))


def processes_of(stack):
    alive = []
    for key, pid in stack.pids().items():
        try:
            os.kill(pid, 0)
            alive.append(key)
        except ProcessLookupError:
            pass
    return alive


@pytest.fixture(scope="session")
def api(stack):
    """An HTTP client for the stack's API, logged in as nobody."""
    return Api(stack.url)


@pytest.fixture(scope="session")
def admin(stack):
    from scripts.stack import admin_token

    token, _ = admin_token(stack)
    if token is None:
        # Issued already in this database (tests/service/test_admin_token_command.py
        # shares it when the layers run in one session): rotate for a token we know.
        token, _ = admin_token(stack, rotate=True)
    return Api(stack.url, token)


@pytest.fixture(scope="session")
def login(stack):
    """``login("alice")`` → an Api logged in as alice through the real OAuth flow."""
    cache = {}

    def login_as(username: str, fresh: bool = False) -> "Api":
        if fresh or username not in cache:
            cache[username] = Api(stack.url, oauth_login(stack, username)["token"])
        return cache[username]

    return login_as


def oauth_login(stack, username: str) -> dict:
    """MAE → localauth (answered as ``username``) → MAE's callback, without a browser."""
    import requests

    from localauth.server import login_url

    start = requests.get(stack.url + "/api/v1/auth/login/local", allow_redirects=False, timeout=10)
    assert start.status_code == 302, start.text
    at_provider = requests.get(login_url(start.headers["Location"], username), allow_redirects=False,
                               timeout=10)
    assert at_provider.status_code == 302, at_provider.text
    callback = requests.get(at_provider.headers["Location"], timeout=10,
                            headers={"Accept": "application/json"})
    assert callback.status_code == 200, callback.text
    return callback.json()


class Api:
    def __init__(self, base: str, token: str | None = None):
        import requests

        self.base = base.rstrip("/") + "/api/v1"
        self.token = token
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, **kwargs):
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.base + path, **kwargs)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.request("POST", path, json=json, **kw)

    def put(self, path, json=None, **kw):
        return self.request("PUT", path, json=json, **kw)

    def patch(self, path, json=None, **kw):
        return self.request("PATCH", path, json=json, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


__all__ = ["processes_of", "signal", "Api", "oauth_login"]
