"""The hostile-input suite's stack: the whole system as `make up` starts it, on a
database, vhost and Redis prefix of its own.

Its own backends because the fuzzer leaves hundreds of odd applications, users and
servers behind, which must not show up in the e2e suite's listings; and because the
secrets test reads every log line the stack wrote, which must all come from here.
The e2e fixtures ``admin``, ``login``, ``api`` and ``clusters`` are reused as they
are: they ask for ``stack`` by name and get this one.
"""
from __future__ import annotations

import pytest

from tests.e2e.conftest import (FOREIGN_CLIENT, Api, admin, api, clusters, login, oauth_login,  # noqa: F401
                                own_backends, running_stack)

# High enough that the fuzzer (thousands of writes a minute on one token) is never
# limited; the rate-limit test starts gateways of its own with a low limit.
FUZZ_RATE_LIMIT = "1000000"


@pytest.fixture(scope="session")
def hostile_backends(infra):
    """A database (migrated), a vhost and a Redis prefix for this suite alone."""
    with own_backends(infra, "hostile") as env:
        yield env


@pytest.fixture(scope="session")
def stack(hostile_backends, secret_key, tmp_path_factory):
    from tests.conftest import free_port

    env = {**hostile_backends, "MAE_SECRET_KEY": secret_key, "RATE_LIMIT_WRITES": FUZZ_RATE_LIMIT}
    with running_stack(tmp_path_factory.mktemp("hostile-stack"), env, port_offset=free_port() % 500 + 4000,
                       localauth_port=free_port(), extra_oauth_clients=[FOREIGN_CLIENT]) as started:
        yield started


@pytest.fixture(scope="session")
def member(login, admin):
    """A plain user (not an admin) who is a developer of one application, ``fuzz-dev``."""
    alice = login("fuzz-member")
    created = admin.post("/apps", json={"name": "fuzz-dev"})
    assert created.status_code in (201, 409), created.text
    put = admin.put("/apps/fuzz-dev/members/fuzz-member", json={"role": "developer"})
    assert put.status_code == 200, put.text
    return alice


def pytest_sessionfinish(session):
    """This process's fuzz counts, for the summary the controller prints (tests/run_summary.py)."""
    from tests import run_summary
    from tests.hostile.report import COUNTS

    if sum(COUNTS.values()):
        run_summary.add("hostile-counts", [f"{who} {n}" for who, n in COUNTS.items()])
