"""``python -m cpsign_airflow.testing.pachd --port N [--host H] [--auth-token-env VAR]
[--data-dir DIR] [--secret NAME:KEY=VALUE ...]``.

Prints ``grpc://HOST:PORT`` as the first stdout line, serves until SIGTERM/SIGINT,
then exits 0. With ``--data-dir`` the state is saved in DIR and loaded from it at
the next start; without it, the state is lost at exit. Each ``--secret`` creates
that secret (as ``pachctl create secret`` would) unless one of that name exists.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from .secrets import ensure_secrets
from .server import LocalPachd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cpsign_airflow.testing.pachd")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--auth-token-env",
        metavar="VAR",
        help="require the token held in environment variable VAR",
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="keep the state (metadata and file contents) in DIR across restarts",
    )
    parser.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE",
        help="create this secret at start unless it exists (repeat for more keys or secrets)",
    )
    args = parser.parse_args(argv)
    secrets: dict[str, dict[str, str]] = {}
    for item in args.secret:
        name, sep, pair = item.partition(":")
        key, eq, value = pair.partition("=")
        if not (name and sep and key and eq):
            # the value is a secret: never echo it
            parser.error(f"--secret {item.split('=', 1)[0]!r}...: expected NAME:KEY=VALUE")
        secrets.setdefault(name, {})[key] = value
    token = None
    if args.auth_token_env:
        token = os.environ.get(args.auth_token_env)
        if not token:
            parser.error(f"environment variable {args.auth_token_env} is empty or unset")

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    pachd = LocalPachd(
        host=args.host, port=args.port, auth_token=token, data_dir=args.data_dir
    ).start()
    try:
        if secrets:
            ensure_secrets(pachd.address, secrets, token)
        print(pachd.address, flush=True)
        while not stop.wait(3600):
            pass
    finally:
        pachd.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
