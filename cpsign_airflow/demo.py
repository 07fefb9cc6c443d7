"""``make demo``: the bundled DAGs end to end on one machine, no cluster needed.

What runs for real: Airflow 3 (``dag.test()``, the same in-process runner as
``airflow dags test``) executing the bundled ``cpsign_setup`` and
``cpsign_training`` DAGs with this provider's hook, operators, deferrable
sensor and bookkeeping (SQLite by default, MySQL with ``--mysql-url``).

What is a stand-in: Pachyderm is the local pachd (pachd's gRPC API, in
process), and its pipelines run :mod:`cpsign_airflow.cpsign.standins` handlers
that write small placeholder files instead of running CPSign containers; the
source database is a ten-row SQLite stand-in for ChEMBL, used by the pre-flight
query check.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

WORKFLOW = "LogD"


def _prepare_environment(home: Path, dags: Path, bookkeeping_uri: str, source_db: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True",
        "AIRFLOW__CPSIGN__POKE_INTERVAL": "1",
        # Airflow 3.3.2's dag.test() fails on DAGs with a DeadlineAlert.
        "AIRFLOW__CPSIGN__TRAINING_DEADLINE_MINUTES": "0",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
        "AIRFLOW_CONN_CPSIGN_BOOKKEEPING": bookkeeping_uri,
        "AIRFLOW_CONN_CPSIGN_SOURCE_DB": f"sqlite:///{source_db}",
    }
    os.environ.update(env)


def _make_source_db(path: Path) -> None:
    """A stand-in for the ChEMBL tables the LogD query reads."""
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE compound_structures (molregno INTEGER PRIMARY KEY, canonical_smiles TEXT)"
        )
        db.execute("CREATE TABLE compound_properties (molregno INTEGER PRIMARY KEY, acd_logd REAL)")
        rows = [(1, "CCO", -0.3), (2, "c1ccccc1O", 1.5), (3, "CC(=O)Oc1ccccc1C(=O)O", -2.1)]
        db.executemany(
            "INSERT INTO compound_structures VALUES (?, ?)", [(r[0], r[1]) for r in rows]
        )
        db.executemany(
            "INSERT INTO compound_properties VALUES (?, ?)", [(r[0], r[2]) for r in rows]
        )


def _run(dags: Path, dag_id: str, conf: dict[str, Any]) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dags / f"{dag_id}.py"))
    if bag.import_errors:
        raise SystemExit(f"{dag_id} failed to import: {bag.import_errors}")
    print(f"\n=== running {dag_id} ===", flush=True)
    dag_run = bag.get_dag(dag_id).test(run_conf=conf)
    print(f"=== {dag_id}: {dag_run.state} ===", flush=True)
    return dag_run


def _print_record(dag_run: Any) -> dict[str, Any]:
    from cpsign_airflow.bookkeeping.ledger import TrainingLedger

    with TrainingLedger.from_conn_id("cpsign_bookkeeping") as ledger:
        runs = ledger.runs_for_airflow_run("cpsign_training", dag_run.run_id)
        if not runs:
            raise SystemExit("No training run was recorded")
        run = runs[0]
        record = {
            "run": run.as_dict(),
            "jobs": [j.as_dict() for j in ledger.list_jobs(run.id)],
            "artifacts": [a.as_dict() for a in ledger.list_artifacts(run.id)],
        }
    record["run"].pop("configuration", None)
    print("\n=== training run record (bookkeeping) ===")
    r = record["run"]
    print(
        f"run {r['id']}  workflow {r['workflow']}  status {r['status']}  trigger {r['trigger_kind']}"
    )
    print(f"config sha256 {r['config_sha256']}  commit set {r['commit_set_id']}")
    print(f"started {r['started_at']}  committed {r['committed_at']}  finished {r['finished_at']}")
    for job in record["jobs"]:
        print(
            f"  job {job['pipeline']:<18} {job['state']:<12} datums {job['data_processed']}/{job['data_total']}"
        )
    for art in record["artifacts"]:
        print(
            f"  model {art['model_name']}: {art['location']}  {art['size_bytes']} bytes  sha256 {art['sha256']}"
        )
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workdir", default=".demo", help="where the demo keeps its state (default .demo)"
    )
    parser.add_argument("--dags", default="dags", help="the DAGs folder (default ./dags)")
    parser.add_argument(
        "--mysql-url",
        default=os.environ.get("CPSIGN_DEMO_MYSQL_URL"),
        help="bookkeeping in MySQL instead of SQLite, e.g. mysql://root:@127.0.0.1:3306/test",
    )
    parser.add_argument("--json", action="store_true", help="also print the record as JSON")
    args = parser.parse_args(argv)

    workdir = Path(args.workdir).resolve()
    dags = Path(args.dags).resolve()
    if not (dags / "cpsign_training.py").exists():
        parser.error(f"--dags {dags} holds no cpsign_training.py; run from the repository root")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "bookkeeping.db").unlink(missing_ok=True)
    (workdir / "airflow" / "airflow.db").unlink(missing_ok=True)
    bookkeeping = args.mysql_url or f"sqlite:///{workdir / 'bookkeeping.db'}"
    _make_source_db(workdir / "chembl-standin.db")
    _prepare_environment(workdir / "airflow", dags, bookkeeping, workdir / "chembl-standin.db")

    from airflow.utils import db

    db.initdb()

    from cpsign_airflow.cpsign.configuration import load_example
    from cpsign_airflow.cpsign.standins import configure_local_pachd
    from cpsign_airflow.testing.pachd import LocalPachd

    with LocalPachd() as pachd:
        os.environ["AIRFLOW_CONN_PACHYDERM_DEFAULT"] = pachd.address
        configure_local_pachd(pachd, WORKFLOW, duration=0.2)
        print(f"local pachd (stand-in for Pachyderm) at {pachd.address}")
        print(f"bookkeeping at {bookkeeping.split('@')[-1]}")
        setup = _run(dags, "cpsign_setup", {"workflow_name": WORKFLOW})
        if str(setup.state) != "success":
            return 1
        training = _run(dags, "cpsign_training", {"configuration": load_example("logd-flat")})
        record = _print_record(training)
    if args.json:
        print(json.dumps(record, indent=2, default=str))
    ok = str(training.state) == "success" and record["run"]["status"] == "succeeded"
    print("\ndemo finished:", "training run succeeded" if ok else "training run FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
