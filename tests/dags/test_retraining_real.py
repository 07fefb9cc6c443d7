"""Retraining that retrains: the bundled DAGs with the real stages, real CPSign, real data.

``cpsign_retraining`` re-commits the last good configuration byte for byte. The
ingestion stage reprocesses on every job (``reprocess_spec: every_job``), so it reads
the source database again; pachd then skips every downstream datum whose inputs did
not change. So a retraining without new rows must reuse the previous model (same
sha256, recorded ``unchanged``, publish skipped), and one with new rows must train,
validate and publish a new model.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dag_env import use_bundled_dags
from dag_runner import run_dag

from cpsign_airflow import demo_data
from cpsign_airflow.bookkeeping.hook import BookkeepingHook
from cpsign_airflow.devkit.local import create_stage_secrets, install_cpsign, stage_environment
from cpsign_airflow.testing.pachd import LocalPachd

WORKFLOW = "FreeSolvRe"
FIRST_ROWS = 522  # of FreeSolv's 642; the other 120 arrive before the last retraining


@pytest.fixture
def real_env(
    airflow_db: Path, bookkeeping_conn_id: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[dict[str, Any]]:
    launcher = install_cpsign()
    for key, value in stage_environment(launcher).items():
        monkeypatch.setenv(key, value)
    rows = demo_data.freesolv_rows()
    source = tmp_path / "freesolv.db"
    demo_data.load_source_database(source, rows[:FIRST_ROWS])
    folder = use_bundled_dags(
        monkeypatch,
        airflow_db / "dags",
        bookkeeping_conn_id=bookkeeping_conn_id,
        source_db_uri=f"sqlite:///{source}",
    )
    with LocalPachd() as pachd:
        monkeypatch.setenv("AIRFLOW_CONN_PACHYDERM_DEFAULT", pachd.address)
        create_stage_secrets(pachd.address, WORKFLOW)
        yield {
            "dags": folder,
            "source": source,
            "more_rows": rows[FIRST_ROWS:],
            "conn_id": bookkeeping_conn_id,
        }


def _record(env: dict[str, Any], dag_id: str, run_id: str) -> dict[str, Any]:
    with BookkeepingHook(env["conn_id"]).get_ledger() as ledger:
        [run] = ledger.runs_for_airflow_run(dag_id, run_id)
        return {
            "run": run,
            "jobs": {j.pipeline.removeprefix(f"{WORKFLOW}-"): j for j in ledger.list_jobs(run.id)},
            "model": ledger.list_artifacts(run.id)[0],
        }


def _retrain(env: dict[str, Any]) -> dict[str, Any]:
    result = run_dag(env["dags"] / "cpsign_retraining.py", "cpsign_retraining")
    assert result.state == "success", result.task_states
    return _record(env, "cpsign_retraining", result.run_id)


@pytest.mark.parametrize("bookkeeping_backend", ["mysql"], indirect=True)
def test_retraining_reuses_the_model_without_new_rows_and_retrains_with_them(real_env):
    env = real_env
    setup = run_dag(
        env["dags"] / "cpsign_setup.py",
        "cpsign_setup",
        run_conf={"workflow_name": WORKFLOW, "train_parallelism": 2},
    )
    assert setup.state == "success", setup.task_states
    configuration = demo_data.demo_configuration(env["source"], WORKFLOW)
    trained = run_dag(
        env["dags"] / "cpsign_training.py",
        "cpsign_training",
        run_conf={"configuration": configuration},
    )
    assert trained.state == "success", trained.task_states
    first = _record(env, "cpsign_training", trained.run_id)
    # (the gate's verdict on real data may go either way; what matters below is its carry-over)
    assert first["model"].quality in ("passed", "held_back")
    assert first["jobs"]["publish"].data_processed == 1

    # No new rows: ingestion reads the source again, everything after it is skipped.
    same = _retrain(env)
    assert same["run"].status == "succeeded"
    assert same["run"].commit_set_id != first["run"].commit_set_id
    assert same["jobs"]["ingestion"].data_processed == 1
    for stage in ("precompute", "train", "aggregate", "validate", "publish"):
        job = same["jobs"][stage]
        assert job.state == "JOB_SUCCESS" and job.data_processed == 0, (stage, job)
        assert job.data_skipped == job.data_total > 0, (stage, job)
    assert same["model"].sha256 == first["model"].sha256
    # unchanged, or still held back for the same reason: judged once, not again
    assert same["model"].quality == {"passed": "unchanged"}.get(
        first["model"].quality, first["model"].quality
    )
    assert f"run {first['run'].id}" in same["model"].quality_reason

    # New rows in the source database: a new model is trained, validated and published.
    with sqlite3.connect(env["source"]) as db:
        db.executemany(
            f"INSERT INTO {demo_data.TABLE} VALUES (?, ?, ?)",
            [(r["smiles"], r["iupac"], float(r["expt"])) for r in env["more_rows"]],
        )
    new = _retrain(env)
    assert new["run"].status == "succeeded"
    for stage in ("precompute", "train", "aggregate", "validate", "publish"):
        assert new["jobs"][stage].data_processed > 0, (stage, new["jobs"][stage])
    assert new["model"].sha256 != first["model"].sha256
    assert new["model"].quality in ("passed", "held_back")
    assert new["model"].metrics["test_molecules"] > first["model"].metrics["test_molecules"]
