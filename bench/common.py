"""What every whole-stack bench needs first: an empty database and vhost of its own."""
from __future__ import annotations

import subprocess


def fresh_backends(database: str, vhost: str) -> tuple[str, str]:
    """Drop and recreate ``database`` (migrated to every head) and ``vhost``; their URLs."""
    from shared.migrate import upgrade

    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
                   check=True, capture_output=True)
    subprocess.run(["mysql", "-uroot", "-h127.0.0.1", "-e", f"DROP DATABASE IF EXISTS `{database}`"], check=True)
    db_url = f"mysql+pymysql://root:@127.0.0.1:3306/{database}?charset=utf8mb4"
    upgrade(db_url)
    return db_url, f"pyamqp://guest:guest@127.0.0.1:5672/{vhost}"


def bench_stack(database: str, vhost: str, port_offset: int, run_prefix: str):
    """A ``Stack`` as ``make up`` starts it, on fresh backends of its own (``fresh_backends``),
    its own Redis prefix (the vhost's name) and ports, logging warnings only; not started."""
    import tempfile
    from pathlib import Path

    from bench.rpc_floor import free_port
    from scripts.stack import ROOT, Stack
    from shared.secretbox import generate_key

    db_url, amqp_uri = fresh_backends(database, vhost)
    return Stack(run_dir=Path(tempfile.mkdtemp(prefix=run_prefix)), config=ROOT / "config" / "test.yaml",
                 gateway_port=free_port(), localauth_port=free_port(), port_offset=port_offset,
                 env={"DB_URL": db_url, "AMQP_URI": amqp_uri, "REDIS_URL": "redis://127.0.0.1:6379/2",
                      "REDIS_PREFIX": vhost, "MAE_SECRET_KEY": generate_key(), "LOG_LEVEL": "WARNING"})
