"""A CRASHING pipeline on the local pachd recovers as on pachd 2.12.

pachd's master re-checks a CRASHING pipeline's workers every ``crashingBackoff``
(15 s, src/server/pps/server/master.go) and moves it to RUNNING once they are up
(monitorCrashingPipeline, src/server/pps/server/monitor.go); its waiting jobs
then run. The local pachd's analogue of an image that cannot be pulled is a
command that does not exist on this machine, so creating it is the "fix".
"""

from __future__ import annotations

import json
from pathlib import Path

from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs, pps
from sdk_helpers import put

from cpsign_airflow.testing.pachd import LocalPachd

JS, PS = pps.JobState, pps.PipelineState


def create(client: Client, name: str, cmd: list[str]) -> str:
    body = {
        "pipeline": {"name": name},
        "transform": {"image": "lab/late:1", "cmd": cmd},
        "input": {"pfs": {"repo": "data", "glob": "/*"}},
    }
    client.pps.create_pipeline_v2(create_pipeline_request_json=json.dumps(body))
    return client.pps.inspect_pipeline(pipeline=pps.Pipeline(name=name)).spec_commit.id


def make_tool(path: Path) -> None:
    path.write_text("#!/bin/sh\ncp -r /pfs/data/. /pfs/out/\n")
    path.chmod(0o755)


def job(client: Client, name: str, job_id: str, wait: bool = True) -> pps.JobInfo:
    return client.pps.inspect_job(
        job=pps.Job(pipeline=pps.Pipeline(name=name), id=job_id), wait=wait
    )


def test_crashing_pipeline_turns_running_once_it_can_start(tmp_path: Path) -> None:
    tool = tmp_path / "late-tool"
    with LocalPachd() as pachd:
        assert pachd.crashing_backoff == 15.0  # pachd's crashingBackoff
        pachd.crashing_backoff = 0.05
        client = Client.from_pachd_address(pachd.address)
        client.pfs.create_repo(repo=pfs.Repo(name="data"))
        create(client, "late", [str(tool)])
        commit = put(client, "data@master", {"/a": b"1"})
        info = client.pps.inspect_pipeline(pipeline=pps.Pipeline(name="late"))
        assert info.state == PS.PIPELINE_CRASHING
        assert str(tool) in info.reason
        assert job(client, "late", commit.id, wait=False).state == JS.JOB_STARTING
        # a pipeline-level GetLogs of a pipeline whose workers never started: no lines, OK
        assert list(client.pps.get_logs(pipeline=pps.Pipeline(name="late"), tail=5)) == []
        make_tool(tool)
        assert job(client, "late", commit.id).state == JS.JOB_SUCCESS
        info = client.pps.inspect_pipeline(pipeline=pps.Pipeline(name="late"))
        assert (info.state, info.reason) == (PS.PIPELINE_RUNNING, "")


def test_a_saved_crashing_pipeline_is_checked_again_after_a_restart(tmp_path: Path) -> None:
    tool = tmp_path / "late-tool"
    with LocalPachd(data_dir=tmp_path / "data") as first:
        client = Client.from_pachd_address(first.address)
        client.pfs.create_repo(repo=pfs.Repo(name="data"))
        spec_commit = create(client, "late", [str(tool)])
        put(client, "data@master", {"/a": b"1"})
        state = client.pps.inspect_pipeline(pipeline=pps.Pipeline(name="late")).state
        assert state == PS.PIPELINE_CRASHING
    make_tool(tool)
    second = LocalPachd(data_dir=tmp_path / "data")
    second.crashing_backoff = 0.05
    with second:
        client = Client.from_pachd_address(second.address)
        assert job(client, "late", spec_commit).state == JS.JOB_SUCCESS
        info = client.pps.inspect_pipeline(pipeline=pps.Pipeline(name="late"))
        assert info.state == PS.PIPELINE_RUNNING
