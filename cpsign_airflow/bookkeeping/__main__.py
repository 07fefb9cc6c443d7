"""Command line: ``python -m cpsign_airflow.bookkeeping {upgrade,current,runs}``.

``upgrade`` creates or upgrades the schema and is safe to run on every setup.
The database is an Airflow connection (``--conn-id``, default
``cpsign_bookkeeping``) or a SQLAlchemy URL (``--url``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from cpsign_airflow.bookkeeping.errors import BookkeepingError
from cpsign_airflow.bookkeeping.records import DEFAULT_CONN_ID


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cpsign_airflow.bookkeeping",
        description="Manage the cpsign-airflow bookkeeping database.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def target(p: argparse.ArgumentParser) -> None:
        group = p.add_mutually_exclusive_group()
        group.add_argument(
            "--conn-id",
            default=None,
            help=f"Airflow connection id (type mysql or sqlite); default {DEFAULT_CONN_ID}",
        )
        group.add_argument("--url", help="SQLAlchemy URL, e.g. sqlite:////tmp/bookkeeping.db")
        p.add_argument(
            "--attempts",
            type=int,
            default=5,
            help="tries per database call before giving up (default 5)",
        )

    up = sub.add_parser("upgrade", help="create or upgrade the schema (idempotent)")
    target(up)
    up.add_argument("--revision", default="head", help="target revision (default: head)")
    cur = sub.add_parser("current", help="print the schema revision and the newest known")
    target(cur)
    runs = sub.add_parser("runs", help="print recent training runs as JSON lines")
    target(runs)
    runs.add_argument("--workflow")
    runs.add_argument("--status")
    runs.add_argument("--limit", type=int, default=20)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from cpsign_airflow.bookkeeping.engine import RetryPolicy
    from cpsign_airflow.bookkeeping.ledger import TrainingLedger
    from cpsign_airflow.bookkeeping.schema import head_revision

    retry = RetryPolicy(attempts=max(1, args.attempts))
    try:
        if args.url:
            ledger = TrainingLedger.from_url(args.url, retry=retry)
        else:
            from cpsign_airflow.bookkeeping.hook import BookkeepingHook

            hook = BookkeepingHook(args.conn_id or DEFAULT_CONN_ID, retry=retry)
            ledger = hook.get_ledger()
        with ledger:
            if args.command == "upgrade":
                result = ledger.upgrade_schema(args.revision)
                verb = "upgraded" if result.changed else "already at"
                print(f"{ledger.target}: {verb} {result.after} (was {result.before})")
            elif args.command == "current":
                print(f"{ledger.target}: {ledger.schema_revision()} (newest {head_revision()})")
            else:
                for run in ledger.list_runs(args.workflow, status=args.status, limit=args.limit):
                    row = run.as_dict()
                    row.pop("configuration_json")
                    print(json.dumps(row, ensure_ascii=False))
    except BookkeepingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
