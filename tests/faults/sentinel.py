"""A Redis primary, its replica and three sentinels on free localhost ports, for tests
that fail the primary over (tests/integration/test_redis_sentinel.py, the fault waves).

Every process is a plain child of the test run (``redis-server``, ``redis-server
sentinel-N.conf --sentinel``) with its files in a directory of its own, stopped at the
end by its pid. ``url`` is the ``redis+sentinel://`` URL MAE's clients take
(shared/redis.py). ``kill_primary`` is a SIGKILL of whichever server is the primary
now; the sentinels (quorum 2, down after 1 s) promote the other one.
"""
from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import redis

from tests.faults.infra import _listening, _wait, free_port

MASTER = "mae"


class RedisSentinelSet:
    def __init__(self, base: Path, down_after_ms: int = 1000):
        self.dir = Path(base) / "redis-sentinel"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.down_after_ms = down_after_ms
        self.server_ports = [free_port(), free_port()]      # [first primary, first replica]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.procs: dict[int, subprocess.Popen] = {}
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        self.url = f"redis+sentinel://{hosts}/{MASTER}/0"

    # -- processes ---------------------------------------------------------------------------
    def _spawn(self, port: int, args: list[str]) -> None:
        with open(self.dir / f"{port}.log", "ab") as log:
            self.procs[port] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, start_new_session=True)
        _wait(lambda: _listening(port), 20, f"redis on {port} did not listen")

    def start_server(self, port: int, replica_of: int | None = None) -> None:
        args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.dir), "--dbfilename", f"{port}.rdb",
                "--protected-mode", "no"]
        if replica_of is not None:
            args += ["--replicaof", "127.0.0.1", str(replica_of)]
        self._spawn(port, args)

    def start(self) -> None:
        primary, replica = self.server_ports
        self.start_server(primary)
        self.start_server(replica, replica_of=primary)
        _wait(lambda: self._replica_in_sync(primary), 30, "the replica did not sync")
        for port in self.sentinel_ports:
            conf = self.dir / f"sentinel-{port}.conf"   # the sentinel rewrites it: a file of its own
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {self.dir}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {primary} 2\n"
                f"sentinel down-after-milliseconds {MASTER} {self.down_after_ms}\n"
                f"sentinel failover-timeout {MASTER} 10000\n"
                f"sentinel parallel-syncs {MASTER} 1\n")
            self._spawn(port, ["redis-server", str(conf), "--sentinel"])
        # Every sentinel knows the replica and the other sentinels before a test fails anything.
        _wait(self.sentinels_agree, 30, "the sentinels did not discover each other and the replica")

    def _replica_in_sync(self, primary: int) -> bool:
        info = redis.Redis(port=primary, socket_timeout=1).info("replication")
        return info.get("connected_slaves", 0) >= 1 and info.get("slave0", {}).get("state") == "online"

    def sentinels_agree(self) -> bool:
        for port in self.sentinel_ports:
            state = redis.Redis(port=port, socket_timeout=1, decode_responses=True).sentinel_master(MASTER)
            if int(state.get("num-slaves", 0)) < 1 or int(state.get("num-other-sentinels", 0)) < 2:
                return False
        return True

    def primary_port(self) -> int:
        """The primary's port, as the sentinels say."""
        for port in self.sentinel_ports:
            try:
                _, found = redis.Redis(port=port, socket_timeout=1).sentinel_get_master_addr_by_name(MASTER)
                return int(found)
            except (redis.RedisError, TypeError):
                continue
        raise RuntimeError("no sentinel answered")

    def kill_primary(self) -> int:
        """SIGKILL the primary (no goodbye to anyone); its port."""
        port = self.primary_port()
        proc = self.procs.pop(port)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        return port

    def wait_failover(self, old: int, timeout: float = 60) -> int:
        _wait(lambda: self.primary_port() != old, timeout, f"the sentinels did not replace primary {old}")
        return self.primary_port()

    def rejoin(self, port: int) -> None:
        """Start a killed server again as a replica of today's primary (as an operator would)."""
        self.start_server(port, replica_of=self.primary_port())

    def stop(self) -> None:
        for port, proc in list(self.procs.items()):
            proc.send_signal(signal.SIGKILL if port in self.server_ports else signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.procs.clear()


def write_until_it_works(client, key: str, timeout: float) -> float:
    """Seconds until ``client`` can SET again (each failed try counted from the start)."""
    started = time.monotonic()
    last = None
    while time.monotonic() - started < timeout:
        try:
            client.set(key, "after")
            return time.monotonic() - started
        except redis.RedisError as exc:
            last = exc
            time.sleep(0.2)
    raise AssertionError(f"writes did not work again within {timeout:g} s: {last!r}")
