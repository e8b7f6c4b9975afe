"""Start sandbox clusters from tests (and from ``make up`` scripts).

    from sandbox.testing import start_sandbox

    with start_sandbox("test", tmp_path / "cluster", ready_delay=0.2) as sb:
        sb.url, sb.token, sb.ca_path, sb.kubeconfig_path
        sb.api_client()          # a configured kubernetes.client.ApiClient
        sb.restart()             # SIGTERM (snapshot) + start again on the same port
        sb.kill()                # SIGKILL, no snapshot (a crash)

Each sandbox is a ``python -m sandbox`` subprocess: a test cannot corrupt the
cluster's event loop, several clusters run side by side, and ``kill()`` is a real
crash.  The helper asks the sandbox for a free port (``--port 0``) and reads the
chosen one from ``STATE_DIR/ready.json``, so there is no race on free ports; a
``restart()`` keeps that port so URLs and kubeconfigs stay valid.
"""
from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)


class SandboxError(RuntimeError):
    pass


class ClusterHandle:
    """What every test cluster's handle offers its clients (the sandbox's here, the real control
    plane's in tests/realkube/controlplane.py): ``url``, ``token``, ``ca_path`` (set by the
    subclass), ``ca_pem``, ``kubeconfig_path``, ``ssl_context()`` and ``api_client()``."""

    state_dir = ""
    url = ""
    token = ""
    ca_path = ""

    @property
    def ca_pem(self) -> str:
        with open(self.ca_path) as fh:
            return fh.read()

    @property
    def kubeconfig_path(self) -> str:
        return os.path.join(self.state_dir, "kubeconfig")

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_path)

    def api_client(self, token: str | None = None):
        """A ``kubernetes.client.ApiClient`` for this cluster (admin unless ``token`` is given;
        imported lazily)."""
        from kubernetes import client
        cfg = client.Configuration()
        cfg.host = self.url
        cfg.ssl_ca_cert = self.ca_path
        cfg.api_key = {"authorization": "Bearer " + (token or self.token)}
        return client.ApiClient(cfg)


class SandboxHandle(ClusterHandle):
    """A running (or stopped) sandbox subprocess."""

    def __init__(self, name: str, state_dir: str, port: int | None = None, start_timeout: float = 20.0,
                 **opts):
        self.name = name
        self.state_dir = os.path.abspath(str(state_dir))
        self.port = port or 0
        self.opts = opts
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.token = ""
        self.log_path = os.path.join(self.state_dir, "sandbox.log")

    # -------------------------------------------------------------- properties

    @property
    def ca_path(self) -> str:
        return os.path.join(self.state_dir, "ca.crt") if not self.opts.get("ca_cert") else self.opts["ca_cert"]

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    # -------------------------------------------------------------- lifecycle

    def _argv(self) -> list[str]:
        argv = [sys.executable, "-m", "sandbox", "--name", self.name, "--state-dir", self.state_dir,
                "--port", str(self.port)]
        for key, value in self.opts.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                argv.append(flag)
            elif value is False or value is None:
                continue
            else:
                argv += [flag, str(value)]
        return argv

    def start(self) -> "SandboxHandle":
        if self.proc and self.proc.poll() is None:
            raise SandboxError("sandbox already running")
        os.makedirs(self.state_dir, exist_ok=True)
        ready = os.path.join(self.state_dir, "ready.json")
        try:
            os.unlink(ready)
        except OSError:
            pass
        env = dict(os.environ)
        env["PYTHONPATH"] = _ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self._argv(), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=_ROOT,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + self.start_timeout
        info = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SandboxError(f"sandbox {self.name!r} exited with {self.proc.returncode}; see {self.log_path}:\n"
                                   + self._tail())
            try:
                with open(ready) as fh:
                    info = json.load(fh)
                if info.get("pid") == self.proc.pid:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        else:
            self.kill()
            raise SandboxError(f"sandbox {self.name!r} did not become ready in {self.start_timeout}s:\n" + self._tail())
        self.url, self.port, self.token = info["url"], info["port"], info["token"]
        self._wait_answering(deadline)
        return self

    def _wait_answering(self, deadline: float) -> None:
        ctx = self.ssl_context()
        while True:
            try:
                req = urllib.request.Request(self.url + "/api", headers={"Authorization": "Bearer " + self.token})
                with urllib.request.urlopen(req, context=ctx, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                if time.monotonic() > deadline:
                    raise SandboxError(f"sandbox {self.name!r} does not answer on {self.url}")
                time.sleep(0.02)

    def _tail(self) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                return fh.read()[-3000:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> int | None:
        """Clean shutdown (SIGTERM): the sandbox snapshots its state first."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return self.kill()

    def kill(self) -> int | None:
        """SIGKILL: no snapshot, like a crashed control plane."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.kill()
        return self.proc.wait()

    def restart(self, clean: bool = True) -> "SandboxHandle":
        """Stop (cleanly unless ``clean=False``) and start again on the same port."""
        if clean:
            self.stop()
        else:
            self.kill()
        return self.start()

    def __enter__(self) -> "SandboxHandle":
        if not self.proc:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<SandboxHandle {self.name} {self.url or 'stopped'} pid={self.pid}>"


def start_sandbox(name: str, state_dir, port: int | None = None, **opts) -> SandboxHandle:
    """Start ``python -m sandbox`` and wait until it answers.

    ``opts`` become CLI flags: ``ready_delay=0.2`` -> ``--ready-delay 0.2``, ``no_persist=True``
    -> ``--no-persist``.  ``start_timeout`` (seconds) is consumed by the helper.
    """
    return SandboxHandle(name, state_dir, port, **opts).start()
