"""The example DAGs run, as they are shipped, against the pachd under test."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from dag_runner import run_dag

import cpsign_airflow.example_dags as examples

EXAMPLES = Path(examples.__file__).parent


def test_example_pachyderm_counts_the_words_of_the_file_it_put(airflow_db, pachyderm_conn):
    path = shutil.copy(EXAMPLES / "example_pachyderm.py", airflow_db / "dags")
    text = "one two three four five"
    result = run_dag(Path(path), "example_pachyderm", run_conf={"text": text})
    assert result.state == "success", result.task_states
    if not os.environ.get("CPSIGN_TEST_PACHD_ADDRESS"):  # a real pachd may have them already
        assert result.xcom["create_repo"]["created"] is True
        assert [p["action"] for p in result.xcom["create_pipeline"]] == ["created"]
    commit_set = result.xcom["put_text"]
    assert [j["state"] for j in result.xcom["wait_for_pipeline"]] == ["JOB_SUCCESS"]
    assert {j["job_id"] for j in result.xcom["wait_for_pipeline"]} == {commit_set}
    assert result.xcom["read_count"] == 5
    # again, with other words: the same repo and pipeline, a new commit set
    again = run_dag(Path(path), "example_pachyderm", run_conf={"text": "six seven"})
    assert again.xcom["create_repo"]["created"] is False
    assert [p["action"] for p in again.xcom["create_pipeline"]] == ["unchanged"]
    assert again.xcom["put_text"] != commit_set and again.xcom["read_count"] == 2
