"""A 3-node RabbitMQ cluster on this machine, for the fault suite's broker-node wave.

Three private nodes (infra.PrivateRabbit: their own node names ``mae-fault-N-<pid>@localhost``,
AMQP and distribution ports, mnesia and log directories, no plugins) start side by side;
nodes 2 and 3 then ``join_cluster`` node 1 (``stop_app``, ``join_cluster``, ``start_app``).
They share the rabbitmq user's Erlang cookie, as every node of one machine does.

Services reach the cluster through a failover AMQP URI, ``amqp://n1;amqp://n2;amqp://n3``
(kombu tries the next host when one does not answer; nameko hands the URI to kombu as is).
``kill`` is a SIGKILL of a node's Erlang VM (it never comes back: ``killed``); ``restart``
a clean stop and start that rejoins the cluster from its own mnesia directory.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from tests.faults.infra import PrivateRabbit


class RabbitCluster:
    def __init__(self, base: Path, size: int = 3):
        self.nodes = [PrivateRabbit(base, node=f"mae-fault-{i}-{os.getpid()}@localhost") for i in range(1, size + 1)]
        self.url = ";".join(n.url for n in self.nodes)
        self.killed: list[PrivateRabbit] = []
        self.start_seconds = 0.0

    # -- what the fault suite's fixtures use of a broker (infra.PrivateRabbit's interface) ------
    @property
    def alive(self) -> list[PrivateRabbit]:
        return [n for n in self.nodes if n.running]

    def consumers(self) -> dict[str, int]:
        return self.alive[-1].consumers()

    def queue_state(self) -> str:
        return self.alive[-1].queue_state()

    def queue_types(self) -> dict[str, str]:
        """{queue: type} of the default vhost (``quorum`` or ``classic``)."""
        out = self.alive[-1]._ctl("list_queues", "name", "type", "--no-table-headers", timeout=60).stdout
        return dict(line.split()[:2] for line in out.splitlines() if len(line.split()) >= 2)

    def remove(self) -> None:
        for node in self.nodes:
            node.remove()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start every node at once, then cluster them; ``start_seconds`` says how long it took."""
        started = time.monotonic()
        errors: list[BaseException] = []

        def boot(node):
            try:
                node.start()
            except BaseException as exc:  # raised below, for every node that failed
                errors.append(exc)
        threads = [threading.Thread(target=boot, args=(n,)) for n in self.nodes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise RuntimeError(f"RabbitMQ nodes did not start: {errors}")
        first = self.nodes[0]
        for node in self.nodes[1:]:
            for args in (("stop_app",), ("join_cluster", first.node), ("start_app",)):
                done = node._ctl(*args)
                if done.returncode != 0:
                    raise RuntimeError(f"{node.node}: rabbitmqctl {' '.join(args)}: {done.stderr[-500:]}")
        members = self.running_nodes()
        if members != {n.node for n in self.nodes}:
            raise RuntimeError(f"the cluster runs {members}, not every node")
        self.start_seconds = time.monotonic() - started

    def running_nodes(self) -> set[str]:
        """The cluster's running nodes, as a live node sees them."""
        out = self.alive[0]._ctl("eval", "rabbit_nodes:all_running().", timeout=60).stdout
        return {part.strip(" '[]\n") for part in out.split(",") if part.strip(" '[]\n")}

    def kill(self, index: int) -> str:
        node = self.nodes[index]
        node.kill()
        self.killed.append(node)
        return node.node

    def restart(self, index: int) -> str:
        node = self.nodes[index]
        node.restart()
        return node.node

    def stop(self) -> None:
        # The last running node stops last (a node stopped after its peers restarts alone).
        for node in self.alive:
            try:
                node.stop()
            except Exception as exc:  # keep stopping the others
                print(f"could not stop {node.node}: {exc}")
