"""``python -m sandbox``: run one sandbox cluster until SIGTERM/SIGINT.

On a clean shutdown the state is snapshotted into the state dir, so the next start
with the same ``--state-dir`` resumes with the same objects, a higher
resourceVersion, the same CA and the same token.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import signal
import sys

from .certs import TLSFiles
from .server import Sandbox


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m sandbox", description="A sandbox Kubernetes API server with simulated controllers.")
    p.add_argument("--name", default="sandbox", help="cluster name (kubeconfig context is sandbox-NAME)")
    p.add_argument("--port", type=int, default=6443, help="HTTPS port; 0 picks a free one (see ready.json)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind")
    p.add_argument("--state-dir", required=True, help="certificates, token, kubeconfig and snapshot live here")
    p.add_argument("--token", default=None, help="bearer token to accept (default: generated once, kept in STATE_DIR/token)")
    p.add_argument("--ready-delay", type=float, default=0.5, help="seconds until a normal pod is Ready")
    p.add_argument("--slow-delay", type=float, default=60.0, help="seconds until a ':slow' image pod is Ready")
    p.add_argument("--backoff", type=float, default=10.0,
                   help="base of the image-pull and crash-loop back-off (doubles, capped at 30x)")
    p.add_argument("--snapshot-interval", type=float, default=5.0, help="seconds between snapshots (0: only at shutdown)")
    p.add_argument("--no-persist", action="store_true", help="neither load nor write snapshots")
    p.add_argument("--watch-history", type=int, default=20_000,
                   help="events kept for watch resumption; older resourceVersions get 410 Gone")
    p.add_argument("--log-rate", type=float, default=1.0,
                   help="simulated access-log lines per second of a running container (pods/log)")
    p.add_argument("--tls-cert", help="server certificate (PEM); default: generated in the state dir")
    p.add_argument("--tls-key", help="server key (PEM), with --tls-cert")
    p.add_argument("--ca-cert", help="CA certificate (PEM) that signed --tls-cert, written to the kubeconfig")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


async def _main(args: argparse.Namespace) -> None:
    tls = None
    if args.tls_cert or args.tls_key or args.ca_cert:
        if not (args.tls_cert and args.tls_key and args.ca_cert):
            sys.exit("--tls-cert, --tls-key and --ca-cert go together")
        tls = TLSFiles(ca_cert=args.ca_cert, server_cert=args.tls_cert, server_key=args.tls_key)
    sb = Sandbox(args.name, args.state_dir, port=args.port, host=args.host, token=args.token,
                 ready_delay=args.ready_delay, slow_delay=args.slow_delay, backoff=args.backoff,
                 snapshot_interval=args.snapshot_interval, persist=not args.no_persist,
                 watch_history=args.watch_history, tls=tls, log_rate=args.log_rate)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await sb.start()
    # What start-up built (modules, schemas, the bootstrap objects) lives as long as the process:
    # keep it out of every later full collection, which otherwise walks it each time.
    gc.collect()
    gc.freeze()
    await stop.wait()
    logging.getLogger("sandbox").info("shutting down (snapshot to %s)", sb.state_dir)
    await sb.stop()


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.log_rate <= 0:
        sys.exit("--log-rate must be greater than 0")
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
