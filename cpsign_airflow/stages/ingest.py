"""Ingestion stage (``cpsign-ingest``): source database -> training data, test split, CPSign @-files.

Runs inside the ``<workflow>-ingestion`` pipeline with ``/pfs/config/configuration.json``
as input. The source database password comes from ``$SOURCE_DB_PASSWORD`` (a mounted
Kubernetes secret), never from the configuration, and goes only to the database named by
``$SOURCE_DB_*`` (set by cpsign_setup from the source connection); the query runs in a
read-only transaction (:mod:`cpsign_airflow.cpsign.source_db`). The rows are split once, with a seeded
shuffle, into the training file CPSign precomputes and a held-out test file the validate
stage predicts; the split is reproducible, so an unchanged source gives unchanged files
(and Pachyderm skips the downstream datums).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cpsign_airflow.cpsign.arguments import (
    ingestion_files,
    render_query,
    training_data_filename,
)
from cpsign_airflow.cpsign.configuration import effective_seed, validate_configuration

DEFAULT_TEST_FRACTION = 0.2
TEST_FILE = "validation/test.tsv"
PASSWORD_ENV = "SOURCE_DB_PASSWORD"


class IngestionError(RuntimeError):
    """The query gave nothing usable; the message names the query and the column."""


def pinned_source(config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Any:
    """Where this stage may connect: the coordinates cpsign_setup pinned in its environment.

    The configuration's ``preprocessing.database`` must name the same place, field by
    field; otherwise nothing is connected to and the error names the field.
    """
    from cpsign_airflow.cpsign.source_db import SourceDatabase, coordinate_problems

    source = SourceDatabase.from_env(environ)
    problems = coordinate_problems(
        config["preprocessing"]["database"], source, "the ingestion pipeline's environment"
    )
    if problems:
        raise IngestionError("; ".join(problems))
    return source


def fetch_rows(
    config: Mapping[str, Any], password: str | None, environ: Mapping[str, str] | None = None
) -> list[tuple[str, ...]]:
    """Run the configured query, read-only; return the ``smi_columns`` of every row, in order."""
    from sqlalchemy import text

    from cpsign_airflow.cpsign.source_db import check_statement, read_only_connection

    source = pinned_source(config, environ)
    query = config["preprocessing"]["query"]
    sql = render_query(config)
    check_statement(sql, source.dialect)  # exactly what runs, placeholder filled in
    columns: Sequence[str] = query["smi_columns"]
    with read_only_connection(source, password) as conn:
        result = conn.execute(text(sql))
        keys = list(result.keys())
        missing = [c for c in columns if c not in keys]
        if missing:
            raise IngestionError(
                f"preprocessing.query.smi_columns: column {missing[0]!r} is not in the "
                f"result of the query {sql!r} (its columns: {keys})"
            )
        index = [keys.index(c) for c in columns]
        rows = [tuple("" if r[i] is None else str(r[i]) for i in index) for r in result]
    if not rows:
        raise IngestionError(f"the query {sql!r} returned no rows: nothing to train on")
    return rows


def split_rows(
    rows: list[tuple[str, ...]], fraction: float, seed: int
) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    """(train, test): a seeded shuffle, then the first ``fraction`` of rows held out."""
    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    n_test = max(1, round(len(shuffled) * fraction)) if len(shuffled) > 1 else 0
    return shuffled[n_test:], shuffled[:n_test]


def write_table(path: Path, header: Sequence[str], rows: list[tuple[str, ...]]) -> None:
    """Tab-separated with a header row: CPSign reads it as ``CSV delim:\\t``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def ingest(
    config: Mapping[str, Any],
    out: Path,
    password: str | None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Everything the ingestion stage writes, under ``out``; returns a summary for the log."""
    config = validate_configuration(config)
    rows = fetch_rows(config, password, environ)
    validation = config.get("validation") or {}
    train, test = split_rows(
        rows, validation.get("test_fraction", DEFAULT_TEST_FRACTION), effective_seed(config)
    )
    header = config["preprocessing"]["query"]["smi_columns"]
    write_table(out / training_data_filename(config), header, train)
    write_table(out / TEST_FILE, header, test)
    for path, text in ingestion_files(config).items():
        target = out / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return {"rows": len(rows), "train": len(train), "test": len(test)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cpsign-ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        config = json.loads(args.config.read_text(encoding="utf-8"))
        summary = ingest(config, args.out, os.environ.get(PASSWORD_ENV))
    except (IngestionError, ValueError, OSError) as err:
        print(f"cpsign-ingest: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # database errors: the driver's message, no password in it
        reason = str(getattr(err, "orig", err)).splitlines()[0]
        print(f"cpsign-ingest: the source query failed: {reason}", file=sys.stderr)
        return 1
    print(
        f"cpsign-ingest: {summary['rows']} rows -> {summary['train']} for training, "
        f"{summary['test']} held out for validation"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
