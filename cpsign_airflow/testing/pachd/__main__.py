"""``python -m cpsign_airflow.testing.pachd --port N [--host H]
[--auth-token-env VAR | --auth-token-file PATH] [--data-dir DIR]
[--secret-env NAME:KEY=VAR ...] [--secret-file NAME:KEY=PATH ...]``.

Prints ``grpc://HOST:PORT`` as the first stdout line, serves until SIGTERM/SIGINT,
then exits 0. With ``--data-dir`` the state is saved in DIR (created 0700, files
0600) and loaded from it at the next start; without it, the state is lost at exit.

With ``--auth-token-env``/``--auth-token-file`` every call but GetVersion needs that
root token. Each ``--secret-env``/``--secret-file`` creates that secret (as
``pachctl create secret`` would) unless one of that name exists, with the value of
environment variable VAR or the contents of file PATH (exact, not stripped).

Secret values and the token never come from the command line, which any user of the
machine can read (``/proc/PID/cmdline``, ``ps``); the variables named by
``--auth-token-env``/``--secret-env`` are removed from this process's environment
once read, so the pipelines' commands (run as its children) do not inherit them.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from .healthcheck import encode_replies
from .secrets import ensure_secrets
from .server import LocalPachd

REMOVED_SECRET = (
    "--secret NAME:KEY=VALUE was removed: a value on the command line is visible to every "
    "user of the machine; use --secret-env NAME:KEY=VAR or --secret-file NAME:KEY=PATH"
)


def _split(parser: argparse.ArgumentParser, option: str, item: str) -> tuple[str, str, str]:
    """``NAME:KEY=SOURCE`` -> (name, key, source); SOURCE is a variable name or a path."""
    name, sep, pair = item.partition(":")
    key, eq, source = pair.partition("=")
    if not (name and sep and key and eq and source):
        source_name = "VAR" if option == "--secret-env" else "PATH"
        parser.error(f"{option} {item!r}: expected NAME:KEY={source_name}")
    return name, key, source


def _from_env(parser: argparse.ArgumentParser, option: str, var: str) -> str:
    value = os.environ.get(var)
    if value is None:
        parser.error(f"{option}: environment variable {var} is not set")
    return value


def _from_file(parser: argparse.ArgumentParser, option: str, path: str) -> str:
    try:
        with open(path, encoding="utf-8") as src:
            return src.read()
    except OSError as exc:
        parser.error(f"{option}: cannot read {path}: {exc.strerror or exc}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cpsign_airflow.testing.pachd", allow_abbrev=False
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    token_source = parser.add_mutually_exclusive_group()
    token_source.add_argument(
        "--auth-token-env",
        metavar="VAR",
        help="require the root token held in environment variable VAR",
    )
    token_source.add_argument(
        "--auth-token-file",
        metavar="PATH",
        help="require the root token held in file PATH (surrounding whitespace ignored)",
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="keep the state (metadata and file contents) in DIR across restarts",
    )
    parser.add_argument(
        "--secret-env",
        action="append",
        default=[],
        metavar="NAME:KEY=VAR",
        help="create secret NAME at start unless it exists, KEY set to the value of "
        "environment variable VAR (repeat for more keys or secrets)",
    )
    parser.add_argument(
        "--secret-file",
        action="append",
        default=[],
        metavar="NAME:KEY=PATH",
        help="as --secret-env, KEY set to the contents of file PATH",
    )
    # Only to refuse it with a pointer to the forms above, never echoing the value.
    parser.add_argument("--secret", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.secret:
        parser.error(REMOVED_SECRET)

    secrets: dict[str, dict[str, str]] = {}
    used_vars: set[str] = set()
    for item in args.secret_env:
        name, key, var = _split(parser, "--secret-env", item)
        secrets.setdefault(name, {})[key] = _from_env(parser, "--secret-env", var)
        used_vars.add(var)
    for item in args.secret_file:
        name, key, path = _split(parser, "--secret-file", item)
        secrets.setdefault(name, {})[key] = _from_file(parser, "--secret-file", path)
    token = None
    if args.auth_token_env:
        token = (os.environ.get(args.auth_token_env) or "").strip()
        if not token:
            parser.error(f"environment variable {args.auth_token_env} is empty or unset")
        used_vars.add(args.auth_token_env)
    elif args.auth_token_file:
        token = _from_file(parser, "--auth-token-file", args.auth_token_file).strip()
        if not token:
            parser.error(f"--auth-token-file: {args.auth_token_file} is empty")
    for var in used_vars:
        os.environ.pop(var, None)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    # Fail at startup, not at the first commit reply, if a package the reply encoding
    # imports is missing (an image without protobuf answered GetVersion and nothing else).
    encode_replies()

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
