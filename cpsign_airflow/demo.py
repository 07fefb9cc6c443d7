"""``make demo``: the bundled DAGs train a real CPSign model on real data, on one machine.

What runs for real: Airflow 3 (``dag.test()``, the same in-process runner as
``airflow dags test``) executes the bundled ``cpsign_setup`` and ``cpsign_training``
DAGs with this provider's hook, operators, deferrable sensor and bookkeeping (SQLite by
default, MySQL with ``--mysql-url``). The pipelines run their own commands, the
package's stage entry points: ingestion queries the source database, CPSign
precomputes, trains (a datum per group of splits), aggregates and validates on a
held-out split, and publish records that no model store is configured. The data is
FreeSolv (642 molecules with measured hydration free energies, :mod:`demo_data`).

What stands in: Pachyderm is the local pachd (pachd's gRPC API, in process, running
each datum's command as a local process), and the source database is SQLite.

What it leaves: the trained model in ``<workdir>/models/<model-name>.jar``, the CPSign
runtime's launcher linked as ``<workdir>/bin/cpsign``, and a printed one-line command
that predicts a SMILES with that model (:func:`predict_command`).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

WORKFLOW = "FreeSolv"
#: Molecules predicted at the end with the trained model: (SMILES, name).
EXAMPLES = (("CCO", "ethanol"), ("c1ccccc1O", "phenol"), ("CC(=O)Oc1ccccc1C(=O)O", "aspirin"))
#: The molecule the printed predict command predicts (phenol, as among the examples).
COMMAND_SMILES = "c1ccccc1O"
CONFIDENCES = "0.8,0.9"


def _shown(path: Path, cwd: Path) -> str:
    """``path`` relative to ``cwd`` when inside it (so the command reads ``.demo/…``)."""
    try:
        return str(path.relative_to(cwd))
    except ValueError:
        return str(path)


def predict_command(
    workdir: Path, model: Path, smiles: str = COMMAND_SMILES, cwd: Path | None = None
) -> str:
    """A one-line shell command predicting ``smiles`` with ``model``, run from ``cwd``.

    The runtime's ``predict`` reads molecules from a file only (no ``--smiles``), so the
    command first writes a one-molecule TSV, ``<workdir>/predict.tsv``; the prediction (JSON) goes
    to stdout. ``<workdir>/bin/cpsign`` is the link :func:`_link_launcher` makes.
    """
    cwd = (cwd or Path.cwd()).resolve()
    tsv = _shown(workdir / "predict.tsv", cwd)
    launcher = _shown(workdir / "bin" / "cpsign", cwd)
    q = shlex.quote
    return (
        f"printf 'smiles\\n%s\\n' {q(smiles)} > {q(tsv)} && {q(launcher)} predict"
        f" --model {q(_shown(model, cwd))} --predict-file TSV {q(tsv)} --confidences {CONFIDENCES}"
    )


def _link_launcher(workdir: Path, launcher: Path) -> Path:
    """``<workdir>/bin/cpsign``: a link to the CPSign runtime's launcher, for the printed command."""
    link = workdir / "bin" / "cpsign"
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(launcher.resolve())
    return link


def _keep_model(workdir: Path, name: str, content: bytes) -> Path:
    """Write the trained model to ``<workdir>/models/<name>.jar`` (replacing an earlier one)."""
    models = workdir / "models"
    models.mkdir(parents=True, exist_ok=True)
    model = models / f"{name}.jar"
    partial = models / f".{name}.jar.partial"
    partial.write_bytes(content)
    partial.replace(model)
    return model


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


def _run(dags: Path, dag_id: str, conf: dict[str, Any]) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    from cpsign_airflow._dag_test import prepare_dag_test

    prepare_dag_test()  # Airflow 3.2's dag.test() needs it
    bag = DagBag(dag_folder=str(dags / f"{dag_id}.py"))
    if bag.import_errors:
        raise SystemExit(f"{dag_id} failed to import: {bag.import_errors}")
    print(f"\n=== running {dag_id} ===", flush=True)
    dag_run = bag.get_dag(dag_id).test(run_conf=conf)
    print(f"=== {dag_id}: {dag_run.state} ===", flush=True)
    return dag_run


def _print_record(dag_run: Any) -> dict[str, Any]:
    from cpsign_airflow.bookkeeping.hook import BookkeepingHook

    with BookkeepingHook("cpsign_bookkeeping").get_ledger() as ledger:
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


def _print_quality(record: dict[str, Any], launcher: Path, workdir: Path) -> dict[str, Any]:
    """The validate stage's metrics; the trained model kept in ``workdir/models``, a few
    molecules predicted with it, and the command that predicts with it."""
    from cpsign_airflow.hooks.pachyderm import PachydermHook

    commit = record["run"]["commit_set_id"]
    hook = PachydermHook()
    metrics = json.loads(hook.read_file(f"{WORKFLOW}-validate", commit, "/metrics.json"))
    print("\n=== model quality on the held-out split (validate stage) ===")
    print(f"  {metrics['predicted']} of {metrics['test_molecules']} test molecules predicted")
    for confidence in metrics["confidences"]:
        key = str(confidence)
        print(
            f"  confidence {confidence:.2f}: observed error rate {metrics['error_rate'][key]:.3f}"
            f" (conformal bound {1 - confidence:.2f}, on average), median interval width"
            f" {metrics['median_interval_width'][key]:.2f} kcal/mol"
        )
    art = record["artifacts"][0]
    repo, path = art["location"].split(":", 1)
    model = _keep_model(
        workdir, art["model_name"], hook.read_file(repo.split("@")[0], commit, path)
    )
    with tempfile.TemporaryDirectory() as tmp:
        smiles = Path(tmp) / "molecules.tsv"
        smiles.write_text("smiles\tname\n" + "".join(f"{s}\t{n}\n" for s, n in EXAMPLES))
        out = Path(tmp) / "predictions.json"
        subprocess.run(
            [str(launcher), "predict", "--model", str(model), "--predict-file", "TSV",
             str(smiles), "--confidences", CONFIDENCES, "--output-format", "json",
             "--output", str(out), "--no-logfile"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp,
        )  # fmt: skip
        from cpsign_airflow.stages.cpsign_stage import read_predictions

        predictions = read_predictions(out)
    print("\n=== predictions with the trained model (hydration free energy, kcal/mol) ===")
    for p in predictions:
        result = p.get("prediction", p)
        name = p["molecule"].get("name", "?")
        intervals = "  ".join(
            f"{i['confidence']:.0%}: [{i['rangeLower']:.2f}, {i['rangeUpper']:.2f}]"
            for i in result["intervals"]
        )
        print(f"  {name:<8} predicted {result['midpoint']:.2f}   {intervals}")
    _link_launcher(workdir, launcher)
    command = predict_command(workdir, model)
    print(f"\n=== the model: {_shown(model, Path.cwd().resolve())} ===")
    print("predict a molecule with it (here phenol; JSON on stdout), from this directory:")
    print(f"  {command}")
    return {"metrics": metrics, "predictions": predictions, "model_file": str(model),
            "predict_command": command}  # fmt: skip


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
    from cpsign_airflow import demo_data
    from cpsign_airflow.devkit.local import create_stage_secrets, install_cpsign, stage_environment

    source_db = workdir / "freesolv.db"
    rows = demo_data.load_source_database(source_db)
    print(f"source database: {rows} FreeSolv molecules in {source_db} (table freesolv)")
    print("CPSign runtime: resolving with Maven (first time only) ...", flush=True)
    launcher = install_cpsign()
    os.environ.update(stage_environment(launcher))
    _prepare_environment(workdir / "airflow", dags, bookkeeping, source_db)

    from airflow.utils import db

    db.initdb()

    from cpsign_airflow.testing.pachd import LocalPachd

    # the pipelines' commands run in the local pachd's working directory
    with LocalPachd() as pachd:
        from cpsign_airflow.hooks.pachyderm import connection_uri

        os.environ["AIRFLOW_CONN_PACHYDERM_DEFAULT"] = connection_uri(pachd.address)
        create_stage_secrets(pachd.address, WORKFLOW)
        print(f"local pachd (stand-in for Pachyderm) at {pachd.address}")
        print(f"bookkeeping at {bookkeeping.split('@')[-1]}")
        setup = _run(dags, "cpsign_setup", {"workflow_name": WORKFLOW, "train_parallelism": 2})
        if str(setup.state) != "success":
            return 1
        configuration = demo_data.demo_configuration(source_db, WORKFLOW)
        training = _run(dags, "cpsign_training", {"configuration": configuration})
        record = _print_record(training)
        ok = str(training.state) == "success" and record["run"]["status"] == "succeeded"
        if ok:
            record.update(_print_quality(record, launcher, workdir))
    if args.json:
        print(json.dumps(record, indent=2, default=str))
    print("\ndemo finished:", "training run succeeded" if ok else "training run FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
