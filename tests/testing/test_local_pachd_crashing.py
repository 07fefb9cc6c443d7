"""A CRASHING pipeline on the local pachd recovers as on pachd 2.12.

pachd's master sets a pipeline CRASHING when its worker pod cannot start, with the
pod's waiting message as the reason (pollPipelinePods, src/server/pps/server/
poller.go; for an image that cannot be pulled, kubelet's ImagePullBackOff message
``Back-off pulling image "IMAGE"``). It re-checks a CRASHING pipeline's workers every
``crashingBackoff`` (15 s, src/server/pps/server/master.go) and moves it to RUNNING
once they are up (monitorCrashingPipeline, src/server/pps/server/monitor.go); its
waiting jobs then run. The local pachd's stand-in for an image that cannot be pulled
is one named in ``LocalPachd.unpullable_images``; removing it is the "fix".
"""

from __future__ import annotations

import json
from pathlib import Path

from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs, pps
from sdk_helpers import put

from cpsign_airflow.testing.pachd import LocalPachd

JS, PS = pps.JobState, pps.PipelineState


IMAGE = "lab/late:1"
COPY = ["sh", "-c", "cp -r /pfs/data/. /pfs/out/"]


def create(client: Client, name: str, cmd: list[str]) -> str:
    body = {
        "pipeline": {"name": name},
        "transform": {"image": IMAGE, "cmd": cmd},
        "input": {"pfs": {"repo": "data", "glob": "/*"}},
    }
    client.pps.create_pipeline_v2(create_pipeline_request_json=json.dumps(body))
    return client.pps.inspect_pipeline(pipeline=pps.Pipeline(name=name)).spec_commit.id


def job(client: Client, name: str, job_id: str, wait: bool = True) -> pps.JobInfo:
    return client.pps.inspect_job(
        job=pps.Job(pipeline=pps.Pipeline(name=name), id=job_id), wait=wait
    )


def test_crashing_pipeline_turns_running_once_it_can_start() -> None:
    with LocalPachd(unpullable_images=[IMAGE]) as pachd:
        assert pachd.crashing_backoff == 15.0  # pachd's crashingBackoff
        pachd.crashing_backoff = 0.05
        client = Client.from_pachd_address(pachd.address)
        client.pfs.create_repo(repo=pfs.Repo(name="data"))
        create(client, "late", COPY)
        commit = put(client, "data@master", {"/a": b"1"})
        info = client.pps.inspect_pipeline(pipeline=pps.Pipeline(name="late"))
        assert (info.state, info.reason) == (
            PS.PIPELINE_CRASHING,
            f'Back-off pulling image "{IMAGE}"',
        )
        assert job(client, "late", commit.id, wait=False).state == JS.JOB_STARTING
        # a pipeline-level GetLogs of a pipeline whose workers never started: no lines, OK
        assert list(client.pps.get_logs(pipeline=pps.Pipeline(name="late"), tail=5)) == []
        pachd.unpullable_images.discard(IMAGE)  # the image was pushed at last
        assert job(client, "late", commit.id).state == JS.JOB_SUCCESS
        info = client.pps.inspect_pipeline(pipeline=pps.Pipeline(name="late"))
        assert (info.state, info.reason) == (PS.PIPELINE_RUNNING, "")


def test_a_scripted_pipeline_crashes_on_an_unpullable_image_too() -> None:
    """The image is the worker pod's, whatever runs in it: a configured behaviour waits too."""
    with LocalPachd(unpullable_images=[IMAGE]) as pachd:
        pachd.crashing_backoff = 0.05
        pachd.configure_pipeline("late", outputs={"/x": b"x"})
        client = Client.from_pachd_address(pachd.address)
        client.pfs.create_repo(repo=pfs.Repo(name="data"))
        create(client, "late", COPY)
        commit = put(client, "data@master", {"/a": b"1"})
        info = client.pps.inspect_pipeline(pipeline=pps.Pipeline(name="late"))
        assert info.state == PS.PIPELINE_CRASHING
        assert job(client, "late", commit.id, wait=False).state == JS.JOB_STARTING
        pachd.unpullable_images.clear()
        assert job(client, "late", commit.id).state == JS.JOB_SUCCESS


def test_a_missing_command_fails_the_datum_not_the_pipeline() -> None:
    """pachd never checks ``transform.cmd``: its worker's exec.Command fails the datum
    (RunUserCode, src/server/worker/driver/driver.go), tried ``datum_tries`` times, then
    the job (JOB_FAILURE "datum ID failed", src/server/worker/pipeline/transform/
    registry.go); the pipeline stays RUNNING."""
    with LocalPachd() as pachd:
        client = Client.from_pachd_address(pachd.address)
        client.pfs.create_repo(repo=pfs.Repo(name="data"))
        create(client, "late", ["cpsign-no-such-binary", "--flag"])
        commit = put(client, "data@master", {"/a": b"1"})
        failed = job(client, "late", commit.id)
        assert failed.state == JS.JOB_FAILURE
        assert failed.reason.startswith("datum ") and failed.reason.endswith(" failed")
        assert (failed.data_total, failed.data_failed) == (1, 1)
        lines = [m.message for m in client.pps.get_logs(job=failed.job)]
        error = 'exec: "cpsign-no-such-binary": executable file not found in $PATH'
        assert sum(error in line for line in lines) == 3  # datumTries: 3
        info = client.pps.inspect_pipeline(pipeline=pps.Pipeline(name="late"))
        assert (info.state, info.reason) == (PS.PIPELINE_RUNNING, "")
        out = client.pfs.inspect_commit(commit=failed.output_commit)
        assert out.finished and out.error == failed.reason
        # a path that does not exist fails at fork/exec, as Go reports it
        create(client, "path", ["/nonexistent/cpsign-tool"])
        job_id = client.pps.inspect_pipeline(pipeline=pps.Pipeline(name="path")).spec_commit.id
        lines = [m.message for m in client.pps.get_logs(job=job(client, "path", job_id).job)]
        assert any(
            "fork/exec /nonexistent/cpsign-tool: no such file or directory" in line
            for line in lines
        )


def test_a_saved_crashing_pipeline_is_checked_again_after_a_restart(tmp_path: Path) -> None:
    with LocalPachd(data_dir=tmp_path / "data", unpullable_images=[IMAGE]) as first:
        client = Client.from_pachd_address(first.address)
        client.pfs.create_repo(repo=pfs.Repo(name="data"))
        spec_commit = create(client, "late", COPY)
        put(client, "data@master", {"/a": b"1"})
        state = client.pps.inspect_pipeline(pipeline=pps.Pipeline(name="late")).state
        assert state == PS.PIPELINE_CRASHING
    # the next pachd can pull it
    second = LocalPachd(data_dir=tmp_path / "data")
    second.crashing_backoff = 0.05
    with second:
        client = Client.from_pachd_address(second.address)
        assert job(client, "late", spec_commit).state == JS.JOB_SUCCESS
        info = client.pps.inspect_pipeline(pipeline=pps.Pipeline(name="late"))
        assert info.state == PS.PIPELINE_RUNNING
