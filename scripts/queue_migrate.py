"""Drain an old vhost's classic queues into the quorum queues of a new one.

RabbitMQ cannot turn a classic queue into a quorum queue in place, so moving MAE
onto quorum queues means a new vhost (docs/operations-rabbitmq.md): the new
version starts on it, and what is left in the old vhost's queues is moved over
with this, queue by queue, to the queue of the same name in the new vhost
(through its default exchange, with publisher confirms; each message is acked in
the old queue only after the new one confirmed it).

    python -m scripts.queue_migrate --from-uri pyamqp://mae:…@rabbitmq:5672/mae           # check
    python -m scripts.queue_migrate --from-uri pyamqp://mae:…@rabbitmq:5672/mae --move    # move, check

Which queues: the ones MAE's services declare (from their code: RPC, event and
batch queues, and the parking queues). RPC requests are listed but never moved:
their callers are gone, and they expire with their timeout. A queue whose
counterpart does not exist in the new vhost yet (that service has not started
there) keeps its messages. Exit status 0 when every event, batch and parking
queue of the old vhost is empty — the old vhost is drained and can be deleted.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from amqp.exceptions import NotFound
from kombu import Connection
from nameko.events import SERVICE_POOL, EventHandler
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.rpc import RPC_QUEUE_TEMPLATE, Rpc

from shared.batching import BatchEventHandler
from shared.config import load_config


def service_classes(specs: list[str]) -> list[type]:
    """``auth`` (services.auth.service's class named auth) or ``module:Class``."""
    found = []
    for spec in specs:
        if ":" in spec:
            module, attr = spec.split(":", 1)
            found.append(getattr(importlib.import_module(module), attr))
            continue
        module = importlib.import_module(f"services.{spec}.service")
        found.append(next(v for v in vars(module).values() if isinstance(v, type)
                          and v.__module__ == module.__name__ and getattr(v, "name", None) == spec))
    return found


def declared_queues(cls) -> list[tuple[str, str]]:
    """(queue, kind) of every queue ``cls`` declares: rpc, event, batch, parking."""
    name = cls.name
    out = {f"parking-{name}": "parking"}
    for attr in dir(cls):
        for entrypoint in getattr(getattr(cls, attr, None), ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(entrypoint, Rpc):
                out[RPC_QUEUE_TEMPLATE.format(name)] = "rpc"
            elif isinstance(entrypoint, EventHandler) and entrypoint.handler_type == SERVICE_POOL:
                out[f"evt-{entrypoint.source_service}-{entrypoint.event_type}--{name}.{attr}"] = "event"
            elif isinstance(entrypoint, BatchEventHandler):
                out[entrypoint.queue_name] = "batch"
    return sorted(out.items())


def depth(channel, queue: str) -> int | None:
    """Messages in ``queue`` (None: no such queue). A failed passive declare closes the channel."""
    try:
        _, count, _ = channel.queue_declare(queue, passive=True)
        return count
    except NotFound:
        return None


def move(source, target, queue: str) -> tuple[int, bool]:
    """Move every message of ``queue``; (how many, whether the target queue exists)."""
    moved = 0
    while True:
        message = source.basic_get(queue, no_ack=False)
        if message is None:
            return moved, True
        returned = []
        target.events["basic_return"].add(lambda *args: returned.append(args))
        target.basic_publish_confirm(message, exchange="", routing_key=queue, mandatory=True)
        target.events["basic_return"].clear()
        if returned:
            source.basic_reject(message.delivery_tag, requeue=True)
            return moved, False
        source.basic_ack(message.delivery_tag)
        moved += 1


def migrate(old_uri: str, new_uri: str | None, classes: list[type], out=sys.stdout) -> bool:
    """Report (and with ``new_uri``, move) what is left in ``old_uri``; True when drained."""
    drained = True
    with Connection(old_uri) as old:
        new = Connection(new_uri) if new_uri else None
        try:
            for cls in classes:
                for queue, kind in declared_queues(cls):
                    channel = old.channel()
                    count = depth(channel, queue)
                    if count is None:  # not declared there (the broker closed that channel)
                        continue
                    note = ""
                    if kind == "rpc":
                        note = " (RPC requests: not moved, they expire)"
                    elif count and new is not None:
                        moved, exists = move(channel, new.channel(), queue)
                        note = f", moved {moved}"
                        if not exists:
                            note += "; not in the new vhost yet: start the service there"
                        count = depth(channel, queue) or 0
                    if kind != "rpc" and count:
                        drained = False
                    print(f"{queue}: {count} message(s){note}", file=out)
                    channel.close()
        finally:
            if new is not None:
                new.release()
    print("drained: the old vhost can be deleted" if drained else "not drained", file=out)
    return drained


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.queue_migrate", description=__doc__.split("\n")[0])
    parser.add_argument("--from-uri", required=True, help="the old vhost's AMQP URI")
    parser.add_argument("--move", action="store_true", help="move what is left into the new vhost")
    parser.add_argument("--to-uri", default=None, help="the new vhost's AMQP URI (default: AMQP_URI of the config)")
    parser.add_argument("--services", default=None,
                        help="comma-separated service names or module:Class (default: SERVICES of the config)")
    args = parser.parse_args(argv)
    config = load_config()
    specs = args.services.split(",") if args.services else list(config.get("SERVICES") or [])
    to_uri = (args.to_uri or config["AMQP_URI"]) if args.move else None
    if to_uri is not None and to_uri.rstrip("/") == args.from_uri.rstrip("/"):
        parser.error("--from-uri and the new AMQP URI are the same vhost")
    return 0 if migrate(args.from_uri, to_uri, service_classes(specs)) else 1


if __name__ == "__main__":
    sys.exit(main())
