import os
import signal

import pytest

from scripts.stack import Stack


@pytest.fixture(scope="session")
def stack(infra, secret_key, tmp_path_factory):
    """The whole system as `make up` starts it, on this run's database, vhost and ports."""
    from tests.conftest import free_port

    stack = Stack(
        run_dir=tmp_path_factory.mktemp("stack"),
        env={"DB_URL": infra.db_url, "AMQP_URI": infra.amqp_uri, "REDIS_URL": infra.redis_url,
             "MAE_SECRET_KEY": secret_key, "HEALTH_TIMEOUT": "2", "LOG_LEVEL": "INFO"},
        gateway_port=free_port(),
        port_offset=free_port() % 500 + 1000,
    )
    stack.start_all()
    try:
        stack.wait_ready(90)
    except TimeoutError:
        stack.stop_all()
        raise
    yield stack
    stack.stop_all()


def processes_of(stack):
    alive = []
    for key, pid in stack.pids().items():
        try:
            os.kill(pid, 0)
            alive.append(key)
        except ProcessLookupError:
            pass
    return alive


__all__ = ["processes_of", "signal"]
