"""``python -m mae_operator --cluster NAME --kubeconfig PATH --mae-url URL --report-token-file FILE``

Without ``--kubeconfig`` it uses the in-cluster ServiceAccount (k8s/operator/).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading

from kubernetes import client, config


def api_client(kubeconfig: str | None) -> client.ApiClient:
    cfg = client.Configuration()
    if kubeconfig:
        config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    else:
        config.load_incluster_config(client_configuration=cfg)
    cfg.retries = 0  # the watcher's own backoff decides
    return client.ApiClient(cfg)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="mae_operator")
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    parser.add_argument("--mae-url", required=True)
    parser.add_argument("--report-token-file", required=True)
    parser.add_argument("--batch-seconds", type=float, default=0.5)
    parser.add_argument("--heartbeat-seconds", type=float, default=30.0)
    parser.add_argument("--backoff-cap", type=float, default=30.0)
    parser.add_argument("--watch-seconds", type=int, default=240)
    parser.add_argument("--health-port", type=int, default=0,
                        help="serve /healthz and /readyz on this port (0: off)")
    parser.add_argument("--health-host", default="0.0.0.0")
    parser.add_argument("--ready-stale-seconds", type=float, default=None,
                        help="not ready once MAE took no post for this long (default: 3 heartbeats + 10 s)")
    parser.add_argument("--stats-file", default=None,
                        help="keep bytes sent to MAE / received from the API server here (JSON)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from mae_operator.sender import Sender
    from mae_operator.state import State, WATCHED
    from mae_operator.watcher import Watcher

    def read_token() -> str:
        with open(args.report_token_file) as fh:
            return fh.read().strip()

    token = read_token()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    state = State()
    api = api_client(args.kubeconfig)
    watchers = [Watcher(api, kind, state, stop, watch_seconds=args.watch_seconds) for kind in WATCHED]
    for w in watchers:
        w.start()
    sender = Sender(state, args.mae_url, args.cluster, token, stop, batch_seconds=args.batch_seconds,
                    heartbeat_seconds=args.heartbeat_seconds, backoff_cap=args.backoff_cap,
                    stats_file=args.stats_file, token_source=read_token,
                    extra_stats=lambda: {"watch_bytes_received": sum(w.bytes_received for w in watchers),
                                         "lists": sum(w.lists for w in watchers)})
    if args.health_port:
        from mae_operator.health import Health, serve
        # Ready while MAE took a post within three heartbeats (a heartbeat goes every --heartbeat-seconds).
        stale = args.ready_stale_seconds or 3 * args.heartbeat_seconds + 10
        serve(Health(watchers, sender, stale_seconds=stale), args.health_port, args.health_host)
    log = logging.getLogger("mae_operator")
    log.info("operator for cluster %s reporting to %s", args.cluster, args.mae_url)
    sender.run()
    sender.write_stats()
    log.info("stopped; sent %s", json.dumps(sender.stats()))  # the last word on SIGTERM
    return 0


if __name__ == "__main__":
    sys.exit(main())
