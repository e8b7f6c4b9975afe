"""``python -m localauth --port 8090 --client mae:SECRET:http://127.0.0.1:8080/api/v1/auth/callback/local``"""
from __future__ import annotations

import argparse
import signal
import sys

from werkzeug.serving import make_server

from localauth.server import AuthorizationServer, Client, Store


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="localauth", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--client", action="append", default=[], metavar="ID:SECRET:REDIRECT_URI",
                        help="a confidential client; repeat for several")
    args = parser.parse_args(argv)
    store = Store()
    for spec in args.client:
        client_id, secret, redirect = spec.split(":", 2)
        store.clients[client_id] = Client(client_id, secret, [redirect])
    server = make_server(args.host, args.port, AuthorizationServer(store), threaded=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    print(f"localauth listening on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
