"""Print the first admin's personal access token, once (``--rotate`` issues a new one).

Where MAE runs on Kubernetes there is no ``make admin-token``; the admin runs this in a
pod of the auth service, which has the config and reaches the broker:

    kubectl -n mae exec deploy/mae-auth -- python -m services.auth.admin_token

The token is shown only on the first call (like Argo CD's initial admin secret); later
calls say it was issued already and change nothing unless ``--rotate`` revokes it.
"""
from __future__ import annotations

import argparse
import sys

from nameko.standalone.rpc import ClusterRpcProxy

from shared.config import load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.auth.admin_token", description=__doc__.split("\n")[0])
    parser.add_argument("--rotate", action="store_true", help="revoke the first admin's token and print a new one")
    args = parser.parse_args(argv)
    with ClusterRpcProxy(load_config(), timeout=30) as rpc:
        answer = rpc.auth.issue_bootstrap_token(rotate=args.rotate)
    if not answer:
        print("The first admin's token was issued already; --rotate revokes it and prints a new one.",
              file=sys.stderr)
        return 1
    print(f"user:  {answer['username']}\ntoken: {answer['token']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
