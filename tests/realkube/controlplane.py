"""Start a REAL Kubernetes control plane for tests: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler (binaries from ``scripts/kube-bin.sh``) plus "hollow nodes" (``hollow_node.py``,
one subprocess each) that register a Node and play the kubelet for the pods bound to it.

    from tests.realkube.controlplane import start_control_plane

    with start_control_plane(tmp_path / "kube", hollow_nodes=1, ready_delay=0.2) as kp:
        kp.url, kp.token, kp.ca_path, kp.ca_pem, kp.kubeconfig_path, kp.name
        kp.api_client()                       # a configured kubernetes.client.ApiClient
        kp.token_for("alice", ["devs"])       # declared up front: users={"alice": ["devs"]}
        kp.nodes                              # ["hollow-1", ...]

The handle shares ``sandbox.testing.ClusterHandle`` with the sandbox's handle (``url``, ``token``,
``ca_path``, ``ca_pem``, ``kubeconfig_path``, ``api_client()``, ``ssl_context()``) and has its other
attributes where they make sense (``name``, ``pid``, ``log_path``, ``stop()``, ``kill()``); there is no
``restart()``: the etcd data directory is removed on stop.

Differences from the sandbox worth knowing:

* etcd (the shared archive's build) always listens on localhost:2379 (clients) and :2380 (peers),
  so ONE control plane per machine at a time; starting a second one fails with a clear message.
* The admin token belongs to user ``realkube-admin`` in group ``system:masters``.  The API server
  reads ``--token-auth-file`` only at start, so extra identities for ``token_for`` must be declared
  with ``users=`` when starting.
* Hollow nodes authenticate as ``system:node:<name>`` (group ``system:nodes``) under the real Node
  authorizer and NodeRestriction admission, like a kubelet.  Each serves the kubelet's
  ``/containerLogs`` on 127.0.0.1 (its Node's InternalIP; the API server runs with
  ``--kubelet-preferred-address-types=InternalIP`` and no kubelet CA, so it does not verify that
  certificate), so ``pods/log`` and ``kubectl logs [-f]`` work with the sandbox's simulated lines.
* The scheduler, Deployment/ReplicaSet controllers, garbage collector, namespace controller, Pod
  Security Admission, RBAC ... are the real ones.

Waiting is done with ``time.sleep`` polling (the suite's pytest process is eventlet-patched); every
child runs in its own session and, when started from the main OS thread, dies with its parent
(``PR_SET_PDEATHSIG``), so a killed test run leaves no etcd behind holding port 2379.
"""
from __future__ import annotations

import base64
import ctypes
import errno
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import yaml

from sandbox.testing import ClusterHandle

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(os.path.dirname(_HERE))
KUBE_BIN_SCRIPT = os.path.join(_ROOT, "scripts", "kube-bin.sh")

ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
ADMIN_USER = "realkube-admin"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_CIDR = "10.96.0.0/16"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


class ControlPlaneError(RuntimeError):
    pass


# ---------------------------------------------------------------------- helpers

def kube_bin_dir() -> str:
    """The directory holding the binaries, as ``scripts/kube-bin.sh`` finds (or unpacks) it."""
    try:
        proc = subprocess.run([KUBE_BIN_SCRIPT], capture_output=True, text=True, timeout=600)
    except OSError as exc:
        raise ControlPlaneError(f"cannot run {KUBE_BIN_SCRIPT}: {exc}") from exc
    if proc.returncode != 0:
        raise ControlPlaneError(proc.stderr.strip() or f"{KUBE_BIN_SCRIPT} exited with {proc.returncode}")
    lines = proc.stdout.strip().splitlines()
    if not lines or not os.path.isdir(lines[-1]):
        raise ControlPlaneError(f"{KUBE_BIN_SCRIPT} printed no directory: {proc.stdout!r}")
    return lines[-1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_in_use(port: int) -> bool:
    for family, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            with socket.socket(family) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((addr, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
    return False


def _die_with_parent() -> None:  # preexec_fn: SIGKILL when the parent (thread) dies
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort, never block the exec
        pass


def _write_private(path: str, data: str | bytes) -> None:
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path + ".tmp", mode) as fh:
        fh.write(data)
    os.chmod(path + ".tmp", 0o600)
    os.replace(path + ".tmp", path)


def _make_sa_keys(state_dir: str) -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_path, pub_path = os.path.join(state_dir, "sa.key"), os.path.join(state_dir, "sa.pub")
    _write_private(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    _write_private(pub_path, key.public_key().public_bytes(serialization.Encoding.PEM,
                                                           serialization.PublicFormat.SubjectPublicKeyInfo))
    return key_path, pub_path


class _Child:
    __slots__ = ("name", "proc", "log_path")

    def __init__(self, name: str, proc: subprocess.Popen, log_path: str):
        self.name, self.proc, self.log_path = name, proc, log_path


# ---------------------------------------------------------------------- the handle

class ControlPlaneHandle(ClusterHandle):
    """A running (or stopped) real control plane with its hollow nodes."""

    def __init__(self, state_dir, name: str = "realkube", hollow_nodes: int = 1, ready_delay: float = 0.2,
                 slow_delay: float = 60.0, backoff: float = 10.0, users: dict | None = None, log_rate: float = 1.0,
                 start_timeout: float = 120.0, controllers: bool = True, bin_dir: str | None = None,
                 apiserver_args: list[str] | None = None, controller_manager_args: list[str] | None = None):
        self.name = name
        self.state_dir = os.path.abspath(str(state_dir))
        self.hollow_nodes = hollow_nodes
        self.ready_delay, self.slow_delay, self.backoff = ready_delay, slow_delay, backoff
        self.log_rate = log_rate
        self.users = {u: list(g or ()) for u, g in (users or {}).items()}
        self.start_timeout = start_timeout
        self.controllers = controllers
        self.bin_dir = bin_dir
        self.apiserver_args = list(apiserver_args or ())
        self.controller_manager_args = list(controller_manager_args or ())
        self.port = 0
        self.url = ""
        self.token = ""
        self.nodes = [f"hollow-{i}" for i in range(1, hollow_nodes + 1)]
        self.started_in = 0.0  # seconds start() took
        self.timings: dict[str, float] = {}  # start-up milestones, seconds since start()
        self._tokens: dict[tuple[str, tuple[str, ...]], str] = {}
        self._children: list[_Child] = []
        self._ctx: ssl.SSLContext | None = None
        self.etcd_dir = os.path.join(self.state_dir, "etcd-data")
        self.cert_dir = os.path.join(self.state_dir, "pki")

    # -------------------------------------------------------------- properties

    @property
    def ca_path(self) -> str:
        """The API server's self-signed serving certificate (with its CA): what clients trust."""
        return os.path.join(self.cert_dir, "apiserver.crt")

    @property
    def log_path(self) -> str:
        return self.log_of("kube-apiserver")

    @property
    def pid(self) -> int | None:
        child = self._child("kube-apiserver")
        return child.proc.pid if child else None

    def log_of(self, component: str) -> str:
        """Log file of ``etcd``, ``kube-apiserver``, ``kube-controller-manager``, ``kube-scheduler``
        or a hollow node (``hollow-1``)."""
        return os.path.join(self.state_dir, "logs", component + ".log")

    def token_for(self, user: str, groups=()) -> str:
        """The bearer token of ``user`` in ``groups`` (declared with ``users=`` at start: the API
        server reads its token file only when it starts)."""
        key = (user, tuple(sorted(groups or ())))
        if key not in self._tokens:
            raise ControlPlaneError(
                f"no token for user {user!r} in groups {list(key[1])}: declare it when starting, "
                f"start_control_plane(..., users={{{user!r}: {list(key[1])!r}}}) - kube-apiserver reads "
                "--token-auth-file only at start")
        return self._tokens[key]

    def kubeconfig(self, token: str | None = None, user: str = "admin") -> dict:
        cname = f"realkube-{self.name}"
        with open(self.ca_path, "rb") as fh:
            ca = base64.b64encode(fh.read()).decode()
        return {"apiVersion": "v1", "kind": "Config", "preferences": {},
                "clusters": [{"name": cname, "cluster": {"server": self.url, "certificate-authority-data": ca}}],
                "users": [{"name": f"{cname}-{user}", "user": {"token": token or self.token}}],
                "contexts": [{"name": cname, "context": {"cluster": cname, "user": f"{cname}-{user}",
                                                        "namespace": "default"}}],
                "current-context": cname}

    def write_kubeconfig(self, path: str, token: str | None = None, user: str = "admin") -> str:
        _write_private(path, yaml.safe_dump(self.kubeconfig(token, user), sort_keys=False))
        return path

    # -------------------------------------------------------------- lifecycle

    def _child(self, name: str) -> _Child | None:
        for child in self._children:
            if child.name == name:
                return child
        return None

    def _spawn(self, name: str, argv: list[str], env: dict | None = None, cwd: str | None = None) -> _Child:
        log_path = self.log_of(name)
        log = open(log_path, "ab")
        main_thread = threading.get_native_id() == os.getpid()
        try:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=cwd or self.state_dir, env=env, start_new_session=True,
                                    preexec_fn=_die_with_parent if main_thread else None)
        finally:
            log.close()
        child = _Child(name, proc, log_path)
        self._children.append(child)
        return child

    def tail(self, name: str, size: int = 3000) -> str:
        try:
            with open(self.log_of(name), "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - size))
                return fh.read().decode(errors="replace")
        except OSError:
            return ""

    def _check_alive(self) -> None:
        for child in self._children:
            if child.proc.poll() is not None:
                raise ControlPlaneError(f"{child.name} exited with {child.proc.returncode} during start-up; "
                                        f"see {child.log_path}:\n{self.tail(child.name)}")

    def _request(self, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
        req = urllib.request.Request(self.url + path, headers={"Authorization": "Bearer " + self.token})
        try:
            with urllib.request.urlopen(req, context=self._ctx, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def _wait(self, what: str, check, deadline: float, interval: float = 0.1) -> None:
        last: object = None
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if check():
                    return
            except (OSError, ssl.SSLError, ValueError) as exc:
                last = exc
            time.sleep(interval)
        raise ControlPlaneError(f"control plane {self.name!r}: timed out after {self.start_timeout:g} s waiting "
                                f"for {what} (last error: {last!r}); logs in {os.path.join(self.state_dir, 'logs')}:\n"
                                + self.tail("kube-apiserver", 1500))

    def _etcd_argv(self, etcd: str) -> tuple[list[str], int]:
        flavour = ""
        try:
            with open(os.path.join(self.bin_dir, ".flavour")) as fh:
                flavour = fh.read().strip()
        except OSError:
            pass
        # A stock etcd (envtest's; mark a KUBE_BIN dir holding one with a `.flavour` file saying
        # "envtest") takes flags and any free ports.
        if flavour == "envtest":
            port, peer = free_port(), free_port()
            return [etcd, "--data-dir", self.etcd_dir, "--listen-client-urls", f"http://127.0.0.1:{port}",
                    "--advertise-client-urls", f"http://127.0.0.1:{port}",
                    "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                    "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                    "--initial-cluster", f"default=http://127.0.0.1:{peer}", "--unsafe-no-fsync"], port
        # the shared archive's etcd: its data dir is its only argument; always localhost:2379/:2380
        for port in (ETCD_CLIENT_PORT, ETCD_PEER_PORT):
            if _port_in_use(port):
                raise ControlPlaneError(
                    f"port {port} is already in use, and the real control plane's etcd always listens on "
                    f"localhost:{ETCD_CLIENT_PORT} (clients) and :{ETCD_PEER_PORT} (peers): another control plane or "
                    f"etcd is running on this machine (see `ss -ltnp 'sport = :{port}'`); stop it first")
        return [etcd, self.etcd_dir], ETCD_CLIENT_PORT

    def start(self) -> "ControlPlaneHandle":
        if self._children:
            raise ControlPlaneError("control plane already started")
        t0 = self._t0 = time.monotonic()
        deadline = t0 + self.start_timeout
        self.bin_dir = self.bin_dir or kube_bin_dir()
        self._mark("binaries")
        need = BINARIES if self.controllers else BINARIES[:2]
        missing = [b for b in need if not os.access(os.path.join(self.bin_dir, b), os.X_OK)]
        if missing:
            raise ControlPlaneError(
                f"{self.bin_dir} lacks {', '.join(missing)}" + (
                    " (envtest ships only kube-apiserver and etcd: without kube-controller-manager and "
                    "kube-scheduler no Deployment, ReplicaSet or scheduling happens; pass controllers=False "
                    "for an API-server-only plane, or set KUBE_BIN to a directory with all four)"
                    if "kube-apiserver" not in missing else ""))
        os.makedirs(os.path.join(self.state_dir, "logs"), exist_ok=True)
        os.makedirs(self.cert_dir, exist_ok=True)
        shutil.rmtree(self.etcd_dir, ignore_errors=True)
        etcd_argv, etcd_port = self._etcd_argv(os.path.join(self.bin_dir, "etcd"))
        try:
            self._start(etcd_argv, etcd_port, deadline)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - t0
        return self

    def _start(self, etcd_argv: list[str], etcd_port: int, deadline: float) -> None:
        sd, bd = self.state_dir, self.bin_dir
        sa_key, sa_pub = _make_sa_keys(sd)
        # ---- identities (token-auth-file: token,user,uid,"group1,group2")
        self.token = secrets.token_hex(24)
        self._tokens = {(ADMIN_USER, ("system:masters",)): self.token}
        rows = [(self.token, ADMIN_USER, "system:masters")]
        idents = {"kube-controller-manager": ("system:kube-controller-manager", ["system:masters"]),
                  "kube-scheduler": ("system:kube-scheduler", [])}
        idents.update({node: (f"system:node:{node}", ["system:nodes"]) for node in self.nodes})
        comp_tokens = {}
        for comp, (user, groups) in idents.items():
            comp_tokens[comp] = secrets.token_hex(24)
            rows.append((comp_tokens[comp], user, ",".join(groups)))
        for user, groups in self.users.items():
            tok = secrets.token_hex(24)
            self._tokens[(user, tuple(sorted(groups)))] = tok
            rows.append((tok, user, ",".join(groups)))
        tokens_csv = os.path.join(sd, "tokens.csv")
        _write_private(tokens_csv, "".join(f'{t},{u},{u},"{g}"\n' for t, u, g in rows))

        for stale in ("apiserver.crt", "apiserver.key"):
            try:
                os.unlink(os.path.join(self.cert_dir, stale))
            except OSError:
                pass
        self._spawn("etcd", etcd_argv)
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self._spawn("kube-apiserver", [
            os.path.join(bd, "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}", "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1", f"--secure-port={self.port}", f"--cert-dir={self.cert_dir}",
            f"--token-auth-file={tokens_csv}", "--authorization-mode=Node,RBAC", "--allow-privileged=true",
            "--enable-admission-plugins=NodeRestriction",
            f"--service-account-issuer={SA_ISSUER}", f"--service-account-key-file={sa_pub}",
            f"--service-account-signing-key-file={sa_key}", f"--api-audiences={SA_ISSUER}",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--profiling=false", "--v=1",
            # pods/log: the hollow nodes' kubelet API listens on their InternalIP, 127.0.0.1
            "--kubelet-preferred-address-types=InternalIP",
            *self.apiserver_args])

        # ---- API server ready
        self._wait("the API server's certificate", self._load_ca, deadline, 0.05)
        self._wait("kube-apiserver /readyz", lambda: self._request("/readyz")[0] == 200, deadline)
        self._mark("apiserver-ready")
        self.write_kubeconfig(self.kubeconfig_path)

        # ---- controllers, scheduler and hollow nodes
        def comp_kubeconfig(comp: str) -> str:
            return self.write_kubeconfig(os.path.join(sd, f"{comp}.kubeconfig"), comp_tokens[comp], comp)

        if self.controllers:
            kc = comp_kubeconfig("kube-controller-manager")
            self._spawn("kube-controller-manager", [
                os.path.join(bd, "kube-controller-manager"), f"--kubeconfig={kc}",
                f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}", "--leader-elect=false",
                "--bind-address=127.0.0.1", f"--secure-port={free_port()}",
                f"--service-account-private-key-file={sa_key}", f"--root-ca-file={self.ca_path}",
                "--use-service-account-credentials=false", "--kube-api-qps=100", "--kube-api-burst=200",
                "--authentication-skip-lookup=true",
                "--profiling=false", "--v=1", *self.controller_manager_args])
            ks = comp_kubeconfig("kube-scheduler")
            self._spawn("kube-scheduler", [
                os.path.join(bd, "kube-scheduler"), f"--kubeconfig={ks}", f"--authentication-kubeconfig={ks}",
                f"--authorization-kubeconfig={ks}", "--leader-elect=false", "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}", "--authentication-skip-lookup=true", "--profiling=false", "--v=1"])
        env = dict(os.environ)
        env["PYTHONPATH"] = _ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        for i, node in enumerate(self.nodes, start=1):
            kn = comp_kubeconfig(node)
            self._spawn(node, [sys.executable, "-m", "tests.realkube.hollow_node", "--kubeconfig", kn,
                               "--name", node, "--index", str(i), "--ready-delay", str(self.ready_delay),
                               "--slow-delay", str(self.slow_delay), "--backoff", str(self.backoff),
                               "--log-rate", str(self.log_rate)],
                        env=env, cwd=_ROOT)

        if self.controllers:
            self._wait("the 'default' ServiceAccount (controllers up)",
                       lambda: self._request("/api/v1/namespaces/default/serviceaccounts/default")[0] == 200,
                       deadline)
            self._mark("controllers-ready")
        for node in self.nodes:
            self._wait(f"node {node} Ready", lambda n=node: self._node_ready(n), deadline)
        self._mark("nodes-ready")

    def _mark(self, milestone: str) -> None:
        self.timings[milestone] = round(time.monotonic() - self._t0, 3)

    def _load_ca(self) -> bool:
        if not os.path.exists(self.ca_path):
            return False
        self._ctx = self.ssl_context()  # SSLError while the file is still being written: _wait retries
        return True

    def _node_ready(self, node: str) -> bool:
        code, body = self._request(f"/api/v1/nodes/{node}")
        if code != 200:
            return False
        conds = json.loads(body).get("status", {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)

    def stop(self, timeout: float = 2.0) -> None:
        """SIGTERM the hollow nodes, scheduler, controller manager and API server, SIGKILL what is left
        after ``timeout`` (the API server's graceful shutdown takes several seconds and nothing here is
        worth keeping), then the same for etcd, and remove the etcd data directory."""
        rest = [c for c in self._children if c.name != "etcd"]
        etcd = [c for c in self._children if c.name == "etcd"]
        for group in (rest, etcd):
            self._signal(group, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            for child in group:
                try:
                    child.proc.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
            self._signal(group, signal.SIGKILL)
            for child in group:
                try:
                    child.proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
        shutil.rmtree(self.etcd_dir, ignore_errors=True)
        self._children = []

    def kill(self) -> None:
        """SIGKILL every process that is still running (a crash: the etcd data directory stays)."""
        self._signal(self._children, signal.SIGKILL)
        for child in self._children:
            try:
                child.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass

    @staticmethod
    def _signal(children: list, sig: int) -> None:
        for child in reversed(children):
            if child.proc.poll() is None:
                try:
                    child.proc.send_signal(sig)
                except OSError:
                    pass

    def __enter__(self) -> "ControlPlaneHandle":
        if not self._children:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<ControlPlaneHandle {self.name} {self.url or 'stopped'} pid={self.pid}>"


def start_control_plane(state_dir, hollow_nodes: int = 1, ready_delay: float = 0.2, **opts) -> ControlPlaneHandle:
    """Start etcd, kube-apiserver, kube-controller-manager, kube-scheduler and ``hollow_nodes`` hollow
    nodes, wait until the API server is ready, the controllers created the ``default`` ServiceAccount
    and every node is Ready; returns the handle (a context manager that stops everything on exit).

    ``opts``: ``name``, ``slow_delay`` (s until a ``:slow`` image is ready, default 60), ``backoff``
    (base of image-pull and crash-loop back-off, default 10 s like the kubelet), ``log_rate``
    (simulated access-log lines a second in pods/log, default 1), ``users``
    ({user: [groups]} for ``token_for``), ``start_timeout`` (default 120 s), ``controllers`` (False:
    API server + etcd only), ``bin_dir``, ``apiserver_args``, ``controller_manager_args``.
    """
    return ControlPlaneHandle(state_dir, hollow_nodes=hollow_nodes, ready_delay=ready_delay, **opts).start()
