"""``scripts/infra.sh``, what `make up` and `make test` run first, on machines unlike this one.

Each case runs the real script with a PATH of its own: the system tools it needs, and in place
of the servers, apt-get and docker, small programs that write down how they were called (a
"server" that starts opens a listening socket on the port it was given). The ports are free
ports of this machine, so the real MariaDB, Redis and RabbitMQ are never in play; each case
checks what the script said and that it touched nothing it should not have.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "infra.sh"
TOOLS = ["env", "bash", "sh", "timeout", "id", "seq", "sleep", "install", "cat", "start-stop-daemon"]

# A daemon stand-in: notes its call, and (when asked to come up) listens on the port it was given
# from a detached child, as the real one does after it daemonizes.
STUB = """#!/bin/sh
echo "$(basename "$0") $*" >> "{log}"
[ -e "{dead}" ] && exit 0
port=$(echo "$*" | sed -n 's/.*--port[ =]\\([0-9]*\\).*/\\1/p')
[ -z "$port" ] && port={default_port}
setsid "{python}" -c 'import socket,sys,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); open(sys.argv[2], "a").write(str(__import__("os").getpid()) + "\\n"); time.sleep(120)' "$port" "{pids}" </dev/null >/dev/null 2>&1 &
exit 0
"""


class Machine:
    """A PATH with the system tools the script uses and stand-ins for what a case names."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.bin = tmp / "bin"
        self.bin.mkdir()
        self.log = tmp / "calls.log"
        self.pids = tmp / "listeners.pids"
        self.dead = tmp / "servers-never-come-up"
        self.ports = {"mariadb": free_port(), "redis": free_port(), "rabbitmq": free_port()}
        self.listeners: list[socket.socket] = []
        for tool in TOOLS + ["sed", "setsid", "basename", "cp"]:
            found = shutil.which(tool, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            assert found, tool
            (self.bin / tool).symlink_to(found)

    def server(self, name: str, default_port: int = 0) -> None:
        binary = {"mariadb": "mariadbd", "redis": "redis-server", "rabbitmq": "rabbitmq-server"}[name]
        self.stub(binary, STUB.format(log=self.log, dead=self.dead, python=sys.executable, pids=self.pids,
                                      default_port=default_port or self.ports[name]))

    def stub(self, name: str, text: str) -> None:
        path = self.bin / name
        path.write_text(text)
        path.chmod(0o755)

    def recorder(self, name: str, then: str = "exit 0") -> None:
        self.stub(name, f'#!/bin/sh\necho "{name} $*" >> "{self.log}"\n{then}\n')

    def running(self, name: str) -> None:
        """Something already answers on ``name``'s port."""
        sock = socket.socket()
        sock.bind(("127.0.0.1", self.ports[name]))
        sock.listen()
        self.listeners.append(sock)

    def run(self, mode: str, uid: int = 1000, wait: int = 5) -> subprocess.CompletedProcess:
        env = {"PATH": str(self.bin), "HOME": str(self.tmp), "MAE_INFRA_SBIN": "", "MAE_INFRA_UID": str(uid),
               "MAE_INFRA_WAIT": str(wait), "MAE_MARIADB_PORT": str(self.ports["mariadb"]),
               "MAE_REDIS_PORT": str(self.ports["redis"]), "MAE_RABBITMQ_PORT": str(self.ports["rabbitmq"])}
        return subprocess.run(["bash", str(SCRIPT), mode], env=env, capture_output=True, text=True, timeout=120)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def close(self) -> None:
        for sock in self.listeners:
            sock.close()
        for pid in self.pids.read_text().split() if self.pids.exists() else []:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def machine(tmp_path):
    m = Machine(tmp_path)
    yield m
    m.close()


def test_check_says_what_is_down_and_how_to_start_it_and_starts_nothing(machine):
    for name in ("mariadb", "redis", "rabbitmq"):
        machine.server(name)
    machine.running("redis")
    result = machine.run("check")
    assert result.returncode == 1
    p = machine.ports
    assert f"mariadb is not reachable on 127.0.0.1:{p['mariadb']}. Start it with: start-stop-daemon --start " \
           f"--oknodo --background --exec {machine.bin}/mariadbd -- --port={p['mariadb']}" in result.stderr
    assert f"rabbitmq is not reachable on 127.0.0.1:{p['rabbitmq']}. Start it with: {machine.bin}/rabbitmq-server " \
           f"-detached" in result.stderr
    assert "redis is not" not in result.stderr  # the one that answers is not mentioned
    assert machine.calls() == []


def test_start_starts_only_what_is_down_and_waits_until_it_answers(machine):
    for name in ("mariadb", "redis", "rabbitmq"):
        machine.server(name)
    machine.running("mariadb")
    machine.running("rabbitmq")
    result = machine.run("start")
    assert result.returncode == 0, result.stderr
    assert "infra: starting redis" in result.stderr and "infra: up: redis" in result.stderr
    assert machine.calls() == [f"redis-server --daemonize yes --bind 127.0.0.1 --port {machine.ports['redis']} "
                               "--save  --appendonly no"]  # the running MariaDB and RabbitMQ left alone
    with socket.create_connection(("127.0.0.1", machine.ports["redis"]), timeout=2):
        pass
    assert "apt-get" not in result.stderr


def test_a_server_that_does_not_come_up_is_named_with_its_command(machine):
    machine.server("rabbitmq")
    machine.dead.touch()
    machine.running("mariadb")
    machine.running("redis")
    result = machine.run("start", wait=1)
    assert result.returncode == 1
    assert f"rabbitmq did not come up on 127.0.0.1:{machine.ports['rabbitmq']} (started with: " \
           f"{machine.bin}/rabbitmq-server -detached)" in result.stderr
    assert machine.calls() == ["rabbitmq-server -detached"]


def test_missing_servers_without_root_or_docker_get_one_paragraph_of_what_to_install(machine):
    machine.recorder("apt-get")
    result = machine.run("start", uid=1000)
    assert result.returncode == 1
    assert "MAE needs MariaDB (or MySQL 8)" in result.stderr
    assert "not installed here: mariadb redis rabbitmq" in result.stderr
    assert "run this again as root" in result.stderr and "docker compose up -d rabbitmq mariadb redis" in result.stderr
    assert machine.calls() == []  # apt-get is not run by someone who is not root


def test_missing_servers_with_docker_are_pointed_at_compose(machine):
    machine.recorder("docker")  # `docker info` answers: an engine is there
    machine.running("mariadb")
    machine.running("rabbitmq")
    result = machine.run("start", uid=1000)
    assert result.returncode == 1
    assert "redis not installed here; Docker is: run `docker compose up -d rabbitmq mariadb redis`" in result.stderr
    assert machine.calls() == ["docker info"]  # offered, not run


def test_as_root_on_debian_missing_servers_are_installed_with_apt_then_started(machine):
    machine.running("mariadb")
    # apt-get "installs" the package by putting its daemon on PATH, as the real one does.
    machine.recorder("apt-get", then="\n".join(
        f'case "$*" in *install*{binary}*) cp "{machine.tmp}/{name}-stub" "{machine.bin}/{binary}";; esac'
        for name, binary in (("redis", "redis-server"), ("rabbitmq", "rabbitmq-server"))))
    for name, binary in (("redis", "redis-server"), ("rabbitmq", "rabbitmq-server")):
        machine.server(name)
        (machine.bin / binary).rename(machine.tmp / f"{name}-stub")
    result = machine.run("start", uid=0)
    assert result.returncode == 0, result.stderr
    assert "installing redis-server rabbitmq-server with apt-get" in result.stderr
    calls = machine.calls()
    assert calls[:2] == ["apt-get update -qq",
                         "apt-get install -y -qq --no-install-recommends redis-server rabbitmq-server"]
    assert sorted(calls[2:]) == sorted([f"redis-server --daemonize yes --bind 127.0.0.1 --port "
                                        f"{machine.ports['redis']} --save  --appendonly no",
                                        "rabbitmq-server -detached"])
    assert not any("mariadb" in c for c in calls)  # installed and running already: untouched


def test_everything_up_is_a_quiet_success(machine):
    for name in ("mariadb", "redis", "rabbitmq"):
        machine.running(name)
    for mode in ("check", "start"):
        result = machine.run(mode)
        assert (result.returncode, result.stderr) == (0, "")
