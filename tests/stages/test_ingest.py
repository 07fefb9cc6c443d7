"""cpsign-ingest against a real (SQLite) source database: files written, errors that name things."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

from cpsign_airflow.stages import ingest


def database(tmp_path: Path, rows: list[tuple[str, float]]) -> Path:
    path = tmp_path / "source.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE mols (smiles TEXT, logd REAL)")
        db.executemany("INSERT INTO mols VALUES (?, ?)", rows)
    return path


def config(db: Path, query: str = "SELECT smiles, logd FROM mols{};", columns=("smiles", "logd")):
    return {
        "workflow_name": "LogD",
        "preprocessing": {
            "database": {"dialect": "sqlite", "host": "-", "user": "-", "db_name": str(db)},
            "query": {
                "database_query": query,
                "smi_columns": list(columns),
                "smi_filename": "train.tsv",
            },
        },
        "train": {"ptype": 2, "nr-models": 2, "model-name": "m", "seed": 7},
        "validation": {"test_fraction": 0.25},
    }


def run(tmp_path: Path, cfg: dict, capsys) -> tuple[int, str]:
    """The stage as its pipeline runs it: pinned (by cpsign_setup) to the configured file."""
    import os
    from unittest import mock

    from cpsign_airflow.cpsign.source_db import SourceDatabase

    path = tmp_path / "configuration.json"
    path.write_text(json.dumps(cfg))
    pinned = SourceDatabase("sqlite", db_name=cfg["preprocessing"]["database"]["db_name"])
    with mock.patch.dict(os.environ, pinned.pin_env()):
        code = ingest.main(["--config", str(path), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_rows_are_split_and_the_argument_files_written(tmp_path, capsys):
    rows = [(f"C{'C' * i}O", i / 10) for i in range(20)]
    code, output = run(tmp_path, config(database(tmp_path, rows)), capsys)
    assert code == 0 and "20 rows -> 15 for training, 5 held out" in output
    out = tmp_path / "out"
    train = list(csv.reader(open(out / "train.tsv"), delimiter="\t"))
    test = list(csv.reader(open(out / "validation" / "test.tsv"), delimiter="\t"))
    assert train[0] == test[0] == ["smiles", "logd"]
    assert sorted(map(tuple, train[1:] + test[1:])) == sorted((s, str(v)) for s, v in rows)
    assert not {r[0] for r in train[1:]} & {r[0] for r in test[1:]}  # held out: not trained on
    assert (out / "precompute" / "arguments.txt").read_text().startswith("--model-type regression")
    assert sorted(p.name for p in (out / "training").iterdir()) == ["params-1.txt", "params-2.txt"]
    # the same source gives the same files: Pachyderm then skips the downstream datums
    first = (out / "train.tsv").read_bytes()
    assert run(tmp_path, config(tmp_path / "source.db"), capsys)[0] == 0
    assert (out / "train.tsv").read_bytes() == first


def test_an_empty_result_names_the_query(tmp_path, capsys):
    code, output = run(tmp_path, config(database(tmp_path, [])), capsys)
    assert code == 1
    assert "the query 'SELECT smiles, logd FROM mols;' returned no rows" in output


def test_a_missing_column_names_the_column_and_the_query(tmp_path, capsys):
    cfg = config(database(tmp_path, [("CCO", 1.0)]), columns=("smiles", "acd_logd"))
    code, output = run(tmp_path, cfg, capsys)
    assert code == 1
    assert "column 'acd_logd' is not in the result of the query" in output
    assert "SELECT smiles, logd FROM mols;" in output


def test_a_failing_query_reports_the_database_error(tmp_path, capsys):
    cfg = config(database(tmp_path, [("CCO", 1.0)]), query="SELECT smiles, logd FROM nope{};")
    code, output = run(tmp_path, cfg, capsys)
    assert code == 1 and "the source query failed" in output and "no such table: nope" in output
