"""Example: the Pachyderm operators on their own, with no CPSign in sight.

A repo of text files, a pipeline that counts their words, one file put, and a wait
for the commit set that file started: the output repo's commit and its job. The
DAG returns through XCom what each step did. Point ``pachyderm_default`` at your
pachd; the pipeline's image is ``busybox`` (the local pachd runs its ``sh`` command
on the host).
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, task

from cpsign_airflow.operators.pachyderm import (
    PachydermCreatePipelineOperator,
    PachydermCreateRepoOperator,
    PachydermPutFileOperator,
)
from cpsign_airflow.sensors.pachyderm import PachydermCommitSetSensor

REPO = "example-text"
PIPELINE = "example-wordcount"

with DAG(
    dag_id="example_pachyderm",
    description="Create a repo and a pipeline, put a file, wait for its commit set",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "pachyderm"],
) as dag:
    repo = PachydermCreateRepoOperator(task_id="create_repo", repo=REPO)
    pipeline = PachydermCreatePipelineOperator(
        task_id="create_pipeline",
        specs={
            "pipeline": {"name": PIPELINE},
            "description": "Words per file of {{ params.repo }}",
            "input": {"pfs": {"repo": REPO, "glob": "/*"}},
            "transform": {
                "image": "busybox",
                "cmd": [
                    "sh",
                    "-c",
                    'for f in /pfs/example-text/*; do wc -w < "$f" > /pfs/out/$(basename "$f").count; done',
                ],
            },
        },
        params={"repo": REPO},
    )
    put = PachydermPutFileOperator(
        task_id="put_text",
        repo=REPO,
        path="/text.txt",
        content="{{ dag_run.conf.get('text', 'the quick brown fox jumps over the lazy dog') }}",
    )
    wait = PachydermCommitSetSensor(
        task_id="wait_for_pipeline", commit_set_id=put.output, poke_interval=1, timeout=600
    )

    @task
    def read_count(commit_set_id: str) -> int:
        """The pipeline's output in the commit set this run's file started."""
        from cpsign_airflow.hooks.pachyderm import PachydermHook

        return int(PachydermHook().read_file(PIPELINE, commit_set_id, "/text.txt.count"))

    repo >> pipeline >> put >> wait >> read_count(put.output)
