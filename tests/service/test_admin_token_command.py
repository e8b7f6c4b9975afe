"""`python -m services.auth.admin_token`: the first admin's token where there is no `make`
(k8s/README.md: `kubectl exec deploy/mae-auth -- python -m services.auth.admin_token`)."""
import os
import subprocess
import sys

import pytest
from nameko.standalone.rpc import ServiceRpcProxy

from shared.config import ROOT
from shared.errors import Unauthorized


def run_command(config, *args):
    env = {**os.environ, "MAE_CONFIG": str(ROOT / "config" / "test.yaml"), "AMQP_URI": config["AMQP_URI"]}
    return subprocess.run([sys.executable, "-m", "services.auth.admin_token", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_prints_the_first_admins_token_once_and_rotates_on_request(container_factory, config):
    from services.auth.service import AuthService

    # An admin of its own: the e2e layer's stack shares this run's database and its "admin".
    config = {**config, "BOOTSTRAP_ADMIN": "cluster-admin"}
    container_factory(AuthService, config).start()
    first = run_command(config)
    assert first.returncode == 0, first.stderr
    lines = dict(line.split(":", 1) for line in first.stdout.splitlines())
    token = lines["token"].strip()
    assert lines["user"].strip() == "cluster-admin"

    with ServiceRpcProxy("auth", config) as auth:
        assert auth.verify_token(token)["user"]["username"] == lines["user"].strip()

    again = run_command(config)  # shown once: a second call prints no token
    assert again.returncode == 1 and "issued already" in again.stderr and token not in again.stdout

    rotated = run_command(config, "--rotate")
    assert rotated.returncode == 0, rotated.stderr
    new = dict(line.split(":", 1) for line in rotated.stdout.splitlines())["token"].strip()
    assert new != token
    with ServiceRpcProxy("auth", config) as auth:
        assert auth.verify_token(new)["user"]["username"] == lines["user"].strip()
        with pytest.raises(Unauthorized):  # the first one no longer works
            auth.verify_token(token)
