"""Wiring: one ``Sandbox`` = store + registry + controllers + kubelet + HTTPS server.

Start-up order matters: the snapshot is loaded before the controllers subscribe, then
controllers and the kubelet ``resume()`` (re-enqueue everything, re-arm pod timers), and
only then does the listener open - so the first request already sees a converging
cluster.  ``ready.json`` and the kubeconfig are written after the socket is bound, so
whoever polls for them (``sandbox.testing``) can connect immediately.
"""
from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import json
import logging
import os
import ssl

import yaml
from aiohttp import web

from . import admission  # noqa: F401 - the registry imports it lazily; load it before the first pod
from .api import Api
from .certs import TLSFiles, ensure_tls, ensure_token
from .controllers import (DeploymentController, EventReaper, EventRecorder, GarbageCollector,
                          NamespaceController, ReplicaSetController)
from .jobs import CronJobController, JobController
from .kubelet import Kubelet
from .nodes import register_node
from .registry import Registry
from .resources import NAMESPACES, SERVICES
from .store import Store, write_snapshot
from .workloads import DaemonSetController, ReplicationControllerController, StatefulSetController

log = logging.getLogger("sandbox")

SNAPSHOT = "snapshot.jsonl"
KUBECONFIG = "kubeconfig"
READY = "ready.json"


class Sandbox:
    def __init__(self, name: str, state_dir: str, port: int = 6443, host: str = "127.0.0.1",
                 token: str | None = None, ready_delay: float = 0.5, slow_delay: float = 60.0,
                 backoff: float = 10.0, snapshot_interval: float = 5.0, persist: bool = True,
                 watch_history: int = 20_000, tls: TLSFiles | None = None, log_rate: float = 1.0):
        self.name = name
        self.state_dir = os.path.abspath(state_dir)
        self.port = port
        self.host = host
        self.given_token = token
        self.ready_delay = ready_delay
        self.slow_delay = slow_delay
        self.backoff = backoff
        self.snapshot_interval = snapshot_interval
        self.persist = persist
        self.watch_history = watch_history
        self.tls = tls
        self.log_rate = log_rate
        self.runner: web.AppRunner | None = None
        self._snap_task: asyncio.Task | None = None
        # Periodic snapshot files are written (and fsynced) here, off the event loop.
        self._snap_writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sandbox-snapshot")

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"https://{host}:{self.port}"

    def _bootstrap(self) -> None:
        """Objects every cluster has."""
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.registry.create(NAMESPACES, "", {"metadata": {"name": ns}}, internal=True)
        self.registry.create(SERVICES, "default", {
            "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"clusterIP": "10.96.0.1",
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": self.port}]}},
            internal=True)
        # Nothing before this point is watchable history: a watch from resourceVersion
        # "1" gets 410 like on any real, compacted cluster.
        self.store.history.clear()
        self.store.compacted_rv = self.store.rv

    async def start(self) -> None:
        os.makedirs(self.state_dir, exist_ok=True)
        if self.tls is None:
            self.tls = ensure_tls(self.state_dir, self.name)
        self.token = ensure_token(self.state_dir, self.name, self.given_token)
        self.store = Store(history=self.watch_history)
        snap = os.path.join(self.state_dir, SNAPSHOT)
        restored = False
        if self.persist and os.path.exists(snap):
            self.store.load(snap)
            restored = True
            log.info("restored %s objects at resourceVersion %s from %s",
                     sum(self.store.count(r) for r in self.store.data), self.store.rv, snap)
        self.registry = Registry(self.store)
        self.recorder = EventRecorder(self.registry, host=f"{self.name}-node")
        self.controllers = [
            DeploymentController(self.registry, self.recorder),
            ReplicaSetController(self.registry, self.recorder),
            GarbageCollector(self.registry),
            NamespaceController(self.registry),
            *(c(self.registry, self.recorder) for c in (ReplicationControllerController, DaemonSetController,
                                                         StatefulSetController, JobController, CronJobController)),
        ]
        self.kubelet = Kubelet(self.registry, self.recorder, f"{self.name}-node", self.ready_delay,
                               self.slow_delay, self.backoff)
        if not restored:
            self._bootstrap()
        self.controllers.append(register_node(self.registry, self.recorder, self.kubelet.node))
        reaper = EventReaper(self.registry)
        self.controllers.append(reaper)
        for c in self.controllers:
            if hasattr(c, "resume"):
                c.resume()
            c.start()
        reaper.enqueue("sweep")
        self.kubelet.resume()
        self.kubelet.start()

        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.tls.server_cert, self.tls.server_key)
        self.api = Api(self.registry, self.token, f"{self.host}:{self.port}", self.kubelet,
                       log_interval=1.0 / self.log_rate)
        self.runner = web.AppRunner(self.api.app(), access_log=None, handle_signals=False,
                                    shutdown_timeout=1.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, self.port, ssl_context=ctx, backlog=1024,
                           reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # resolves --port 0
        self.api.server_address = f"{self.host}:{self.port}"
        self._write_files()
        if self.persist and self.snapshot_interval > 0:
            self._snap_task = asyncio.ensure_future(self._snapshot_loop())
        log.info("sandbox %r serving %s (kubeconfig %s)", self.name, self.url, self.kubeconfig_path)

    @property
    def kubeconfig_path(self) -> str:
        return os.path.join(self.state_dir, KUBECONFIG)

    def kubeconfig(self) -> dict:
        with open(self.tls.ca_cert, "rb") as fh:
            ca = base64.b64encode(fh.read()).decode()
        cname = f"sandbox-{self.name}"
        return {"apiVersion": "v1", "kind": "Config", "preferences": {},
                "clusters": [{"name": cname, "cluster": {"server": self.url, "certificate-authority-data": ca}}],
                "users": [{"name": f"{cname}-admin", "user": {"token": self.token}}],
                "contexts": [{"name": cname, "context": {"cluster": cname, "user": f"{cname}-admin",
                                                        "namespace": "default"}}],
                "current-context": cname}

    def _write_files(self) -> None:
        def write(name: str, data: str) -> None:
            path = os.path.join(self.state_dir, name)
            with open(path + ".tmp", "w") as fh:
                fh.write(data)
            os.chmod(path + ".tmp", 0o600)
            os.replace(path + ".tmp", path)

        write(KUBECONFIG, yaml.safe_dump(self.kubeconfig(), sort_keys=False))
        write(READY, json.dumps({"name": self.name, "url": self.url, "port": self.port, "pid": os.getpid(),
                                 "token": self.token, "ca_path": self.tls.ca_cert,
                                 "kubeconfig": self.kubeconfig_path}))

    def snapshot(self) -> None:
        if self.persist:
            self.store.snapshot(os.path.join(self.state_dir, SNAPSHOT), {"name": self.name})

    async def _snapshot_loop(self) -> None:
        loop = asyncio.get_running_loop()
        path = os.path.join(self.state_dir, SNAPSHOT)
        while True:
            await asyncio.sleep(self.snapshot_interval)
            if self.store.dirty:
                data = self.store.snapshot_data({"name": self.name})  # the state of this instant
                try:
                    await loop.run_in_executor(self._snap_writer, write_snapshot, path, data)
                except OSError:
                    self.store.dirty = True
                    log.exception("snapshot failed")

    async def stop(self) -> None:
        if self._snap_task:
            self._snap_task.cancel()
        for c in self.controllers + [self.kubelet]:
            if c.task:
                c.task.cancel()
        self.api.stopping.set()
        self.store.close_watchers()
        try:
            os.unlink(os.path.join(self.state_dir, READY))
        except OSError:
            pass
        self._snap_writer.shutdown(wait=True)  # a periodic write in flight lands before the final one
        self.snapshot()
        if self.runner:
            await self.runner.cleanup()
