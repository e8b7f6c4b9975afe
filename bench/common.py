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
