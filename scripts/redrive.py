"""Move parked messages back to the queue they came from.

A message that went past its queue's delivery limit (``AMQP_DELIVERY_LIMIT``) waits
in ``parking-<service>`` (``shared/queues.py``). Once the cause is fixed — a
deployed fix, a repaired row — this puts each one back on the queue it was
dead-lettered from (its ``x-first-death-queue`` header), through the default
exchange, so it reaches that queue's handler only and not every handler of the
event. The moved copy starts with a fresh delivery count; it keeps its body,
properties and headers except the dead-lettering ones, and counts its redrives in
``x-mae-redriven``.

    python -m scripts.redrive deploy              # every parked message of deploy
    python -m scripts.redrive notify --limit 10   # the ten oldest
    python -m scripts.redrive notify --dry-run    # list them, move nothing

In Kubernetes: ``kubectl -n mae exec deploy/mae-<service> -- python -m scripts.redrive <service>``.
The broker is the one of ``AMQP_URI`` in the config (``MAE_CONFIG``) or ``--amqp-uri``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from kombu import Connection

from shared.config import load_config
from shared.queues import parking_queue

DEAD_LETTER_HEADERS = ("x-death", "x-first-death-queue", "x-first-death-reason", "x-first-death-exchange",
                       "x-last-death-queue", "x-last-death-reason", "x-last-death-exchange", "x-delivery-count")


def origin(headers: dict) -> tuple[str | None, str | None]:
    """(queue the message was parked from, why)."""
    queue = headers.get("x-first-death-queue")
    reason = headers.get("x-first-death-reason")
    deaths = headers.get("x-death") or []
    if queue is None and deaths:
        queue, reason = deaths[0].get("queue"), deaths[0].get("reason")
    return _text(queue), _text(reason)


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


def describe(message) -> str:
    try:
        body = json.loads(message.body)
        what = body.get("type") or body.get("event_id") if isinstance(body, dict) else None
        ident = body.get("event_id") if isinstance(body, dict) else None
    except (ValueError, TypeError):
        what, ident = None, None
    return " ".join(part for part in (what, f"event_id={ident}" if ident else None) if part) or \
        f"{len(message.body)} bytes"


def _settle(parking, count: int, timeout: float = 5.0) -> None:
    """Wait until the broker counts the ``count`` returned messages again: a quorum queue takes a
    requeue asynchronously, and whoever looks right after us (an operator, a test) would otherwise
    see the messages as gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, ready, _ = parking.queue_declare(passive=True)
        if ready >= count:
            return
        time.sleep(0.05)


def redrive(amqp_uri: str, service: str, limit: int | None = None, dry_run: bool = False,
            out=sys.stdout) -> int:
    """Move (or, ``dry_run``, list) up to ``limit`` parked messages of ``service``; how many."""
    moved = 0
    held = []
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        parking = parking_queue(service)(channel)
        parking.declare()
        publish_channel = conn.channel()
        while limit is None or moved < limit:
            message = parking.get(no_ack=False)
            if message is None:
                break
            headers = dict(message.headers or {})
            queue, reason = origin(headers)
            if not queue:
                print(f"skipped (no x-death header: not dead-lettered by a queue): {describe(message)}", file=out)
                held.append(message)
                continue
            if dry_run:
                print(f"would move to {queue} ({reason}): {describe(message)}", file=out)
                held.append(message)
                moved += 1
                continue
            for name in DEAD_LETTER_HEADERS:
                headers.pop(name, None)
            headers["x-mae-redriven"] = int(headers.get("x-mae-redriven", 0)) + 1
            properties = {key: value for key, value in message.properties.items()
                          if key not in ("application_headers", "content_type", "content_encoding", "priority")}
            prepared = publish_channel.prepare_message(message.body, message.properties.get("priority") or 0,
                                                       message.content_type, message.content_encoding,
                                                       headers, properties)
            # Mandatory: a queue that is gone (renamed in a new version) keeps its message parked.
            returned = []
            publish_channel.events["basic_return"].add(lambda *args: returned.append(args))
            publish_channel.basic_publish_confirm(prepared, exchange="", routing_key=queue, mandatory=True)
            publish_channel.events["basic_return"].clear()
            if returned:
                print(f"kept parked (queue {queue} does not exist): {describe(message)}", file=out)
                held.append(message)
                continue
            message.ack()
            moved += 1
            print(f"moved to {queue} ({reason}): {describe(message)}", file=out)
        for message in held:  # back to the parking queue, in their order
            message.reject(requeue=True)
        if held:
            _settle(parking, len(held))
    verb = "would move" if dry_run else "moved"
    print(f"{verb} {moved} message(s) of parking-{service}", file=out)
    return moved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.redrive", description=__doc__.split("\n")[0])
    parser.add_argument("service", help="the service whose parking queue to empty (parking-<service>)")
    parser.add_argument("--limit", type=int, default=None, help="move at most this many (oldest first)")
    parser.add_argument("--dry-run", action="store_true", help="list what would move; move nothing")
    parser.add_argument("--amqp-uri", default=None, help="the broker (default: AMQP_URI of the config)")
    args = parser.parse_args(argv)
    amqp_uri = args.amqp_uri or load_config()["AMQP_URI"]
    redrive(amqp_uri, args.service, args.limit, args.dry_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
