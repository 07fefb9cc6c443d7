"""The hook's pipeline-health calls: states and reasons (sync and asyncio), pipeline logs."""

from __future__ import annotations

import json
import os
import random

import pytest
from pachyderm_sdk.api import pfs, pps

from cpsign_airflow.exceptions import PachydermAuthError
from cpsign_airflow.hooks import _wire
from cpsign_airflow.hooks.pachyderm import (
    PachydermHook,
    aclose_shared_channels,
    pipeline_state_to_dict,
)


def typed(d: dict) -> dict:
    return {k: (type(v).__name__, v) for k, v in d.items()}


def assert_pipeline_same(data: bytes) -> dict:
    slow = pipeline_state_to_dict(pps.PipelineInfo.FromString(data))
    fast = _wire.pipeline_info_to_dict(data)
    assert typed(fast) == typed(slow)
    return fast


PIPELINE_CASES = {
    "crashing, as pachd sends it": pps.PipelineInfo(
        pipeline=pps.Pipeline(name="train", project=pfs.Project(name="lab")),
        version=4,
        spec_commit=pfs.Commit(repo=pfs.Repo(name="train", type="spec"), id="a" * 32),
        state=pps.PipelineState.PIPELINE_CRASHING,
        reason='Back-off pulling image "lab/cpsign:9"',
        last_job_state=pps.JobState.JOB_STARTING,
        parallelism=1,
        type=pps.PipelineInfoPipelineType.PIPELINE_TYPE_TRANSFORM,
        user_spec_json=json.dumps({"pipeline": {"name": "train"}}),
        effective_spec_json="{}" * 500,
        details=pps.PipelineInfoDetails(transform=pps.Transform(image="lab/cpsign:9")),
        metadata={"k": "v"},
    ),
    "running, default project": pps.PipelineInfo(
        pipeline=pps.Pipeline(name="p"), version=1, state=pps.PipelineState.PIPELINE_RUNNING
    ),
    "failure without reason": pps.PipelineInfo(
        pipeline=pps.Pipeline(name="p", project=pfs.Project(name="")),
        state=pps.PipelineState.PIPELINE_FAILURE,
    ),
    "empty message": pps.PipelineInfo(),
}


@pytest.mark.parametrize("case", list(PIPELINE_CASES))
def test_pipeline_info_fast_decoding_equals_betterproto(case):
    assert_pipeline_same(bytes(PIPELINE_CASES[case]))


def test_pipeline_info_values_and_unknown_enum():
    got = assert_pipeline_same(bytes(PIPELINE_CASES["crashing, as pachd sends it"]))
    assert got == {
        "pipeline": "train",
        "project": "lab",
        "version": 4,
        "state": "PIPELINE_CRASHING",
        "reason": 'Back-off pulling image "lab/cpsign:9"',
    }
    unknown = assert_pipeline_same(bytes(pps.PipelineInfo()) + bytes([5 << 3, 42]))
    assert unknown["state"] == "42"


@pytest.mark.parametrize("seed", range(5))
def test_random_pipeline_infos(seed):
    rng = random.Random(seed)
    for _ in range(50):
        info = pps.PipelineInfo(
            pipeline=pps.Pipeline(
                name=rng.choice(["", "p", "ü" * 5]),
                project=pfs.Project(name=rng.choice(["", "default", "x"])),
            ),
            version=rng.choice([0, 1, 2**64 - 1]),
            state=rng.choice(list(pps.PipelineState)),
            reason=rng.choice(["", "r", "ß\n" * 3]),
            stopped=rng.random() < 0.5,
            user_spec_json=rng.choice(["", "{}"]),
        )
        assert_pipeline_same(bytes(info))


# ---------------------------------------------------------------- against a pachd


@pytest.fixture
def hook(pachyderm_conn) -> PachydermHook:
    hook = PachydermHook(pachyderm_conn, retry_backoff=0.01, retry_backoff_max=0.05)
    yield hook
    hook.close()


def make(hook: PachydermHook, name: str, cmd: list[str], image: str = "lab/x:1") -> None:
    hook.ensure_repo(f"{name}-in")
    hook.create_or_update_pipeline(
        {
            "pipeline": {"name": name},
            "input": {"pfs": {"repo": f"{name}-in", "glob": "/*"}},
            "transform": {"image": image, "cmd": cmd},
        }
    )


async def test_pipeline_states_sync_and_async_agree(hook, pachd, unique_name):
    """A worker that cannot start: pachd's master sets CRASHING with the pod's waiting
    message (src/server/pps/server/poller.go pollPipelinePods; kubelet's ImagePullBackOff
    text). The local pachd is told which image it cannot pull."""
    broken, fine = f"{unique_name}-broken", f"{unique_name}-fine"
    unpullable = f"lab/{unique_name}-missing:1"
    pachd.unpullable_images.add(unpullable)
    make(hook, broken, ["sh", "-c", "true"], image=unpullable)
    make(hook, fine, ["sh", "-c", "true"])
    asked = [("default", broken), ("default", fine), ("default", f"{unique_name}-gone")]
    before = pachd.call_counts()["InspectPipeline"]
    sync = hook.pipeline_states(asked)
    assert pachd.call_counts()["InspectPipeline"] - before == 3  # one each, no other RPC
    try:
        async with hook.async_session() as session:
            async_states = await session.inspect_pipelines(asked)
    finally:
        await aclose_shared_channels()
    assert [typed(s) for s in async_states] == [typed(s) for s in sync]
    by_name = {s["pipeline"]: s for s in sync}
    assert set(by_name) == {broken, fine}  # the missing one is left out
    assert by_name[broken]["state"] == "PIPELINE_CRASHING"
    assert by_name[broken]["reason"] == f'Back-off pulling image "{unpullable}"'
    assert (by_name[fine]["state"], by_name[fine]["reason"]) == ("PIPELINE_RUNNING", None)


def test_a_missing_command_fails_the_job_not_the_pipeline(hook, pachd, unique_name):
    """pachd never checks ``transform.cmd``: the worker's exec error fails each try of the
    datum (src/server/worker/driver/driver.go RunUserCode), then the job
    (src/server/worker/pipeline/transform/registry.go); the pipeline stays healthy."""
    make(hook, unique_name, ["cpsign-no-such-binary"])
    commit = hook.put_file(f"{unique_name}-in", "/c.json", data="{}")
    hook.wait_commit_set(commit, timeout=60)
    job = hook.inspect_job(unique_name, commit)
    assert job["state"] == "JOB_FAILURE"
    assert job["reason"].startswith("datum ") and job["reason"].endswith(" failed")
    [state] = hook.pipeline_states([("default", unique_name)])
    assert state["state"] == "PIPELINE_RUNNING"
    if not os.environ.get("CPSIGN_TEST_PACHD_ADDRESS"):  # where a real pachd's logs are kept
        tail = hook.get_job_logs(unique_name, commit)
        assert any(
            'exec: "cpsign-no-such-binary": executable file not found in $PATH' in line
            for line in tail
        )


async def test_async_inspect_translates_errors(pachd, monkeypatch, unique_name):
    pachd.require_auth("the-token-5d1")
    host_port = pachd.address.split("://", 1)[1]
    monkeypatch.setenv("AIRFLOW_CONN_PACHYDERM_DEFAULT", f"pachyderm://:wrong@{host_port}")
    hook = PachydermHook()
    try:
        async with hook.async_session() as session:
            with pytest.raises(
                PachydermAuthError, match=f"inspect pipeline 'default/{unique_name}'"
            ):
                await session.inspect_pipelines([("default", unique_name)])
    finally:
        await aclose_shared_channels()


def test_pipeline_logs_without_a_job(hook, pachd, unique_name):
    make(hook, unique_name, ["sh", "-c", "true"])
    pachd.configure_pipeline(unique_name, logs=["one", "two", "three"])
    commit = hook.put_file(f"{unique_name}-in", "/c.json", data="{}")
    hook.wait_commit_set(commit, timeout=30)
    before = pachd.call_counts()["GetLogs"]
    assert hook.get_pipeline_logs(unique_name, tail=2) == ["two", "three"]
    assert pachd.call_counts()["GetLogs"] - before == 1
    assert hook.get_pipeline_logs(f"{unique_name}-gone") == []  # an error is "no lines"
