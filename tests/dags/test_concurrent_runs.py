"""Concurrent training runs: three of one workflow and two of another, side by side.

Each run is its own ``airflow dags test``-style process (``dag.test()`` runs one DAG
run per process), all against one local pachd and one bookkeeping database in
MariaDB, as runs of a real deployment share them. The first ingestion job of each
workflow is held until all five configurations are committed, so every run commits
while the others' jobs are in flight. All must succeed, each with its own commit
set, its own configuration and its own records.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from dag_env import logd_source_db, source_example, use_bundled_dags
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs

from cpsign_airflow.bookkeeping.hook import BookkeepingHook
from cpsign_airflow.testing import standins

RUNS = {"LogD": 3, "LogP": 2}

RUNNER = """
import json, sys
from datetime import datetime
from airflow.dag_processing.dagbag import DagBag
from cpsign_airflow._dag_test import prepare_dag_test

prepare_dag_test()  # Airflow 3.2's dag.test() needs it
folder, dag_id, conf, run_after = sys.argv[1:5]
bag = DagBag(dag_folder=f"{folder}/{dag_id}.py")
assert not bag.import_errors, bag.import_errors
dag_run = bag.get_dag(dag_id).test(
    run_conf=json.loads(conf), run_after=datetime.fromisoformat(run_after)
)
print("DAG-RUN", dag_run.run_id, dag_run.state)
"""


def _environment(home: Path, template_db: Path, dags: Path) -> dict[str, str]:
    """An Airflow home of its own (a copy of the session's metadata DB), the rest shared."""
    home.mkdir()
    # sqlite's backup API: the copy includes what is still in the write-ahead log
    with sqlite3.connect(template_db) as src, sqlite3.connect(home / "airflow.db") as dst:
        src.backup(dst)
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
    }


def _release_when_committed(address: str, counts: dict[str, int], release: threading.Event):
    """Set ``release`` once every config repo has its expected number of runs' commits.

    Only USER commits count: creating the ingestion pipeline left an empty AUTO
    commit on the config branch, as pachd does for a new input branch.
    """

    def watch(workflow: str, wanted: int, seen: threading.Event) -> None:
        client = Client.from_pachd_address(address)
        stream = client.pfs.subscribe_commit(
            repo=pfs.Repo(name=f"{workflow}-config"), branch="master", all=True
        )
        runs = (info for info in stream if info.origin.kind == pfs.OriginKind.USER)
        for n, _ in enumerate(runs, start=1):
            if n == wanted:
                seen.set()
                return

    events = []
    for workflow, wanted in counts.items():
        seen = threading.Event()
        events.append(seen)
        threading.Thread(target=watch, args=(workflow, wanted, seen), daemon=True).start()

    def all_seen() -> None:
        for seen in events:
            seen.wait()
        release.set()

    threading.Thread(target=all_seen, daemon=True).start()


@pytest.mark.parametrize("bookkeeping_backend", ["mysql"], indirect=True)
def test_three_runs_of_one_workflow_and_two_of_another(
    airflow_db, pachd, pachyderm_conn, bookkeeping_conn_id, monkeypatch, tmp_path
):
    dags = use_bundled_dags(
        monkeypatch,
        tmp_path / "dags",
        bookkeeping_conn_id=bookkeeping_conn_id,
        source_db_uri=logd_source_db(tmp_path / "source.db"),
    )
    monkeypatch.setenv("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

    release = threading.Event()
    for workflow in RUNS:
        standins.configure_local_pachd(pachd, workflow)
        # hold the workflow's ingestion jobs until all five runs have committed
        name = f"{workflow}-ingestion"

        def gated(ctx, _handler=standins.ingestion_handler):
            assert release.wait(timeout=600), "not all runs committed"
            return _handler(ctx)

        pachd.configure_pipeline(name, handler=gated)

    def run(dag_id: str, conf: dict, n: int) -> subprocess.Popen:
        env = _environment(tmp_path / f"home-{dag_id}-{n}", airflow_db / "airflow.db", dags)
        run_after = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=n)
        return subprocess.Popen(
            [sys.executable, "-c", RUNNER, str(dags), dag_id, json.dumps(conf),
             run_after.isoformat()],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    for n, workflow in enumerate(RUNS):
        setup = run("cpsign_setup", {"workflow_name": workflow}, 100 + n)
        out, _ = setup.communicate(timeout=600)
        assert setup.returncode == 0 and "success" in out.splitlines()[-1], out[-3000:]

    _release_when_committed(pachd.address, RUNS, release)
    procs, configurations = [], []
    for workflow, count in RUNS.items():
        for i in range(count):
            configuration = source_example("logd-flat")
            configuration["workflow_name"] = workflow
            configuration["cpsign"]["cost"] = i + 1  # each run's own configuration
            configurations.append(configuration)
            procs.append(run("cpsign_training", {"configuration": configuration}, len(procs)))
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    assert release.is_set()
    run_ids = []
    for proc, out in zip(procs, outputs, strict=True):
        last = out.strip().splitlines()[-1]
        assert proc.returncode == 0 and last.endswith(" success"), out[-4000:]
        run_ids.append(last.split()[1])

    client = Client.from_pachd_address(pachd.address)
    commit_sets = set()
    with BookkeepingHook(bookkeeping_conn_id).get_ledger() as ledger:
        for configuration, run_id in zip(configurations, run_ids, strict=True):
            [record] = ledger.runs_for_airflow_run("cpsign_training", run_id)
            workflow = configuration["workflow_name"]
            assert record.workflow == workflow and record.status == "succeeded"
            commit_sets.add(record.commit_set_id)
            committed = client.pfs.pfs_file(
                pfs.File.from_uri(f"{workflow}-config@{record.commit_set_id}:/configuration.json")
            ).read()
            assert json.loads(committed)["train"]["cost"] == configuration["cpsign"]["cost"]
            jobs = ledger.list_jobs(record.id)
            assert len(jobs) == 6
            assert {j.job_id for j in jobs} == {record.commit_set_id}
            assert all(j.state == "JOB_SUCCESS" for j in jobs)
            [artifact] = ledger.list_artifacts(record.id)
            assert artifact.location.startswith(f"{workflow}-aggregate@{record.commit_set_id}:")
        assert [len(ledger.list_runs(w)) for w in RUNS] == list(RUNS.values())
    assert len(commit_sets) == sum(RUNS.values())
