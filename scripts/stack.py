"""Start and stop MAE's processes on this machine (``make up`` / ``make down``).

Each service replica and each gateway replica is its own ``nameko run``
process in its own process group; their pids are written under the run
directory so that ``down`` stops exactly what ``up`` started, and nothing else.
Gateway replicas share one port (eventlet listens with SO_REUSEPORT, so the
kernel spreads connections); service replicas get their own metrics ports.
The end-to-end tests use the same class with their own database, vhost and ports.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SERVICES = {
    "auth": "services.auth.service:AuthService",
    "org": "services.org.service:OrgService",
    "deploy": "services.deploy.service:DeployService",
    "cluster": "services.cluster.service:ClusterService",
    "server": "services.server.service:ServerService",
    "notify": "services.notify.service:NotifyService",
}
GATEWAY = "gateway.service:GatewayService"
# The sandbox clusters `make up` starts: (name, env, port).
CLUSTERS = [("test", "test", 6443), ("prod", "prod", 6444)]
METRICS_PORTS = {name: 9101 + i * 10 for i, name in enumerate(SERVICES)}


@dataclass
class Stack:
    run_dir: Path = ROOT / ".run"
    config: Path = ROOT / "config" / "development.yaml"
    env: dict = field(default_factory=dict)
    replicas: int = 1
    gateway_port: int = 8080
    host: str = "127.0.0.1"
    port_offset: int = 0
    # The local OAuth2 server (localauth) people log in with on this machine; 0 = none.
    localauth_port: int = 8090
    # More OAuth clients for localauth ("id:secret:redirect_uri"), e.g. a foreign one in tests.
    extra_oauth_clients: list = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.gateway_port}"

    @property
    def pid_dir(self) -> Path:
        return self.run_dir / "pids"

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "logs"

    def _nameko(self) -> str:
        candidate = Path(sys.executable).with_name("nameko")
        return str(candidate) if candidate.exists() else "nameko"

    @property
    def localauth_url(self) -> str:
        return f"http://{self.host}:{self.localauth_port}"

    def _oauth_env(self) -> dict:
        if not self.localauth_port:
            return {}
        return {
            "PUBLIC_URL": self.url,
            "OAUTH_LOCAL_CLIENT_ID": "mae",
            "OAUTH_LOCAL_CLIENT_SECRET": _run_secret(self.run_dir, "oauth-client.secret"),
            "OAUTH_LOCAL_AUTHORIZE_URL": f"{self.localauth_url}/authorize",
            "OAUTH_LOCAL_TOKEN_URL": f"{self.localauth_url}/token",
            "OAUTH_LOCAL_USERINFO_URL": f"{self.localauth_url}/userinfo",
            "OAUTH_LOCAL_NAME": "Local login (this machine)",
        }

    def _spawn(self, key: str, argv: list[str], env: dict) -> int:
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{key}.log", "ab")
        proc = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        log.close()
        (self.pid_dir / f"{key}.pid").write_text(str(proc.pid))
        return proc.pid

    def start_localauth(self) -> int:
        env = self._oauth_env()
        client = f"mae:{env['OAUTH_LOCAL_CLIENT_SECRET']}:{self.url}/api/v1/auth/callback/local"
        argv = [sys.executable, "-m", "localauth", "--host", self.host,
                "--port", str(self.localauth_port), "--client", client]
        for extra in self.extra_oauth_clients:
            argv += ["--client", extra]
        return self._spawn("localauth-0", argv, {})

    def start(self, name: str, replica: int = 0) -> int:
        """Start one process: a service replica or (name == "gateway") a gateway replica."""
        if name == "localauth":
            return self.start_localauth()
        extra = {}
        if name == "gateway":
            target, address = GATEWAY, f"{self.host}:{self.gateway_port}"
            # A gateway worker mostly waits on an RPC: let more requests be in flight.
            extra["MAX_WORKERS"] = os.environ.get("GATEWAY_MAX_WORKERS", "40")
            # Pod logs are read from the cluster service's port (any replica redeems a ticket).
            extra["CLUSTER_INTERNAL_URLS"] = ",".join(
                f"http://{self.host}:{METRICS_PORTS['cluster'] + self.port_offset + r}" for r in range(self.replicas))
        else:
            target = SERVICES[name]
            address = f"{self.host}:{METRICS_PORTS[name] + self.port_offset + replica}"
        env = {**self._oauth_env(), **extra, **self.env, "WEB_SERVER_ADDRESS": address,
               "MAE_CONFIG": str(self.config)}
        return self._spawn(f"{name}-{replica}",
                           [self._nameko(), "run", "--config", str(self.config), target], env)

    def start_all(self) -> None:
        if self.localauth_port:
            self.start_localauth()
        for replica in range(self.replicas):
            for name in SERVICES:
                self.start(name, replica)
            self.start("gateway", replica)

    # -- sandbox clusters and their operators --------------------------------
    def sandbox_dir(self, name: str) -> Path:
        return self.run_dir / "sandboxes" / name

    def start_sandbox(self, name: str, port: int = 0, timeout: float = 30.0, **opts) -> dict:
        """``python -m sandbox`` as a tracked process; returns its ready.json once it answers."""
        state = self.sandbox_dir(name)
        state.mkdir(parents=True, exist_ok=True)
        ready = state / "ready.json"
        ready.unlink(missing_ok=True)
        argv = [sys.executable, "-m", "sandbox", "--name", name, "--port", str(port),
                "--state-dir", str(state)]
        for key, value in opts.items():
            argv += [f"--{key.replace('_', '-')}"] + ([] if value is True else [str(value)])
        pid = self._spawn(f"sandbox-{name}", argv, {})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                info = json.loads(ready.read_text())
                if info.get("pid") == pid:
                    return info
            except (OSError, ValueError):
                pass
            if not _alive(pid):
                break
            time.sleep(0.05)
        raise TimeoutError(f"sandbox {name} did not start; see {self.log_dir / f'sandbox-{name}.log'}")

    def report_token_path(self, name: str) -> Path:
        return self.run_dir / "operators" / f"{name}.token"

    def register_cluster(self, admin: str, name: str, env: str, info: dict) -> str:
        """Register a sandbox with MAE over the API (idempotent) and keep its report
        token in .run/operators/NAME.token (0600); returns the token."""
        import requests

        path = self.report_token_path(name)
        headers = {"Authorization": f"Bearer {admin}"}
        body = {"name": name, "env": env, "server": info["url"], "token": info["token"],
                "ca_cert": Path(info["ca_path"]).read_text()}
        api = f"{self.url}/api/v1/clusters"
        resp = requests.post(api, json=body, headers=headers, timeout=30)
        if resp.status_code == 409:
            if path.exists():
                return path.read_text().strip()
            # Registered earlier but its report token is lost: register afresh.
            requests.delete(f"{api}/{name}", headers=headers, timeout=30).raise_for_status()
            resp = requests.post(api, json=body, headers=headers, timeout=30)
        if resp.status_code != 201:
            raise RuntimeError(f"registering cluster {name} failed: {resp.status_code} {resp.text[:300]}")
        token = resp.json()["report_token"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        return token

    def start_operator(self, name: str, kubeconfig: str | Path | None = None, **opts) -> int:
        """The cluster's operator; ``kubeconfig`` defaults to the sandbox's own (a real
        cluster's gives the operator's service-account token, k8s/operator/operator.yaml)."""
        argv = [sys.executable, "-m", "mae_operator", "--cluster", name,
                "--kubeconfig", str(kubeconfig or self.sandbox_dir(name) / "kubeconfig"),
                "--mae-url", self.url, "--report-token-file", str(self.report_token_path(name))]
        for key, value in opts.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        return self._spawn(f"operator-{name}", argv, {})

    def start_clusters(self, admin: str, clusters=CLUSTERS, sandbox_opts: dict | None = None,
                       operator_opts: dict | None = None) -> dict:
        """Sandboxes, their registration with MAE, one operator each: {name: ready info}."""
        started = {}
        for name, env, port in clusters:
            info = self.start_sandbox(name, port, **(sandbox_opts or {}))
            self.register_cluster(admin, name, env, info)
            self.start_operator(name, **(operator_opts or {}))
            started[name] = {**info, "env": env}
        return started

    def pids(self) -> dict[str, int]:
        found = {}
        for path in sorted(self.pid_dir.glob("*.pid")) if self.pid_dir.exists() else []:
            try:
                found[path.stem] = int(path.read_text().strip())
            except ValueError:
                path.unlink()
        return found

    def stop(self, key: str, sig: int = signal.SIGTERM, wait: float = 10.0) -> None:
        """Stop one process by its key (e.g. ``"deploy-0"``); SIGKILL if it lingers."""
        pid = self.pids().get(key)
        path = self.pid_dir / f"{key}.pid"
        if pid is None:
            return
        _signal_group(pid, sig)
        deadline = time.monotonic() + wait
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            _signal_group(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.05)
        path.unlink(missing_ok=True)

    def stop_all(self) -> list[str]:
        keys = list(self.pids())
        for key in keys:
            pid = self.pids()[key]
            _signal_group(pid, signal.SIGTERM)
        for key in keys:
            self.stop(key)
        return keys

    def readiness(self) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(self.url + "/readyz", timeout=10) as resp:
                return resp.status, json.load(resp)
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, json.load(exc)
            except ValueError:
                return exc.code, {}
        except (OSError, ValueError):
            return 0, {}

    def wait_ready(self, timeout: float = 90.0) -> dict:
        deadline = time.monotonic() + timeout
        status, body = 0, {}
        while time.monotonic() < deadline:
            status, body = self.readiness()
            if status == 200:
                return body
            time.sleep(0.5)
        raise TimeoutError(f"MAE is not ready after {timeout:g} s: {status} {body.get('failing')}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours counts as gone
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="stack")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up")
    up.add_argument("--replicas", type=int, default=int(os.environ.get("REPLICAS", 1)))
    up.add_argument("--port", type=int, default=int(os.environ.get("MAE_PORT", 8080)))
    sub.add_parser("down")
    sub.add_parser("status")
    sub.add_parser("admin-token", help="revoke the bootstrap admin token and issue a new one")
    args = parser.parse_args(argv)

    stack = Stack()
    if args.command == "down":
        stopped = stack.stop_all()
        print(f"stopped {len(stopped)} processes" + (f": {', '.join(stopped)}" if stopped else ""))
        return 0
    if args.command == "admin-token":
        stack.env.update(_secret_env(stack.run_dir))
        token, path = admin_token(stack, rotate=True)
        print(f"admin token: {token}\n(kept in {path})")
        return 0
    if args.command == "status":
        code, body = stack.readiness()
        print(json.dumps({"http": code, **body}, indent=2))
        return 0 if code == 200 else 1

    stack.replicas, stack.gateway_port = args.replicas, args.port
    if stack.pids():
        print("MAE is already running (make down first); stopping the old processes.")
        stack.stop_all()
    stack.env.update(_secret_env(stack.run_dir))
    stack.start_all()
    try:
        body = stack.wait_ready()
    except TimeoutError as exc:
        print(f"{exc}\nlogs: {stack.log_dir}", file=sys.stderr)
        return 1
    n = len(body.get("services", {}))
    token, token_path = admin_token(stack)
    print(f"MAE is up: {stack.url}  ({n} services x {stack.replicas} replica(s), all ready)")
    print(f"  console:  {stack.url}/")
    if token:
        print(f"  admin token: {token}")
        print(f"               (kept in {token_path}, readable only by you; `make admin-token` replaces it)")
    else:
        print("  admin token: issued earlier and its file is gone; `make admin-token` issues a new one")
    if token:
        try:
            clusters = stack.start_clusters(token)
        except (RuntimeError, TimeoutError, OSError) as exc:
            print(f"  clusters: could not be started: {exc}", file=sys.stderr)
            clusters = {}
        for name, info in clusters.items():
            print(f"  cluster {name} ({info['env']}): {info['url']}  "
                  f"kubectl --kubeconfig {info['kubeconfig']} get pods -A  (operator reporting)")
    print(f"  log in:   {stack.url}/api/v1/auth/login/local  (local OAuth server at {stack.localauth_url})")
    print(f"  API:      {stack.url}/api/v1/openapi.json")
    print(f"  logs:     {stack.log_dir}")
    print("  stop:     make down")
    return 0


def _run_secret(run_dir: Path, name: str) -> str:
    """A random secret kept in the run directory, readable by its owner only."""
    import secrets

    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / name
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def admin_token(stack: Stack, rotate: bool = False) -> tuple[str | None, Path]:
    """The first admin's token: issued once by the auth service and kept in .run/admin-token."""
    from nameko.standalone.rpc import ClusterRpcProxy

    from shared.config import load_config

    path = stack.run_dir / "admin-token"
    config = load_config(stack.config)
    config["AMQP_URI"] = stack.env.get("AMQP_URI") or os.environ.get("AMQP_URI") or config["AMQP_URI"]
    with ClusterRpcProxy(config, timeout=30) as rpc:
        answer = rpc.auth.issue_bootstrap_token(rotate=rotate)
    if answer:
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(answer["token"] + "\n")
        return answer["token"], path
    if path.exists():
        return path.read_text().strip(), path
    return None, path


def _secret_env(run_dir: Path) -> dict:
    """The key for secrets at rest: from the environment, or generated once into .run/."""
    if os.environ.get("MAE_SECRET_KEY"):
        return {}
    from shared.secretbox import generate_key

    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "secret.key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(generate_key())
    return {"MAE_SECRET_KEY": path.read_text().strip()}


if __name__ == "__main__":
    sys.exit(main())
