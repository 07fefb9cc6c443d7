"""The local pachd, driven only through the unmodified ``pachyderm_sdk.Client``."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import threading

import grpc
import pytest
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs, pps
from pachyderm_sdk.errors import AuthServiceNotActivated
from sdk_helpers import put, read, rpc_error

from cpsign_airflow.testing.pachd import LocalPachd, PipelineFailure

SUCCESS_PATH = ["JOB_CREATED", "JOB_STARTING", "JOB_RUNNING", "JOB_FINISHING", "JOB_SUCCESS"]


@pytest.fixture
def client(local_pachd: LocalPachd) -> Client:  # noqa: F811
    return Client.from_pachd_address(local_pachd.address)


# Real commands, run by the local pachd once per datum: train copies its datum's files,
# aggregate concatenates what train wrote and names the job.
TRAIN_STDIN = ["cp -r /pfs/data/. /pfs/out/"]
AGGREGATE_STDIN = [
    "cat /pfs/LogD-train/* > /pfs/out/model.txt",
    'echo "$PACH_JOB_ID" > /pfs/out/job',
]


def chain_json(name: str, repo: str, glob: str = "/*", **extra) -> str:
    spec = {
        "pipeline": {"name": name, "project": {"name": "default"}},
        "transform": {"image": "ubuntu:20.04", "cmd": ["bash"], "stdin": AGGREGATE_STDIN},
        "input": {"pfs": {"repo": repo, "glob": glob}},
        **extra,
    }
    return json.dumps(spec)


def make_chain(client: Client) -> None:
    """data -> LogD-train (CreatePipeline) -> LogD-aggregate (CreatePipelineV2 JSON)."""
    client.pfs.create_repo(repo=pfs.Repo(name="data"))
    put(client, "data@master", {"/a.csv": b"1,2\n", "/b.csv": b"3,4\n"})
    client.pps.create_pipeline(
        pipeline=pps.Pipeline(name="LogD-train"),
        transform=pps.Transform(image="ubuntu:20.04", cmd=["bash"], stdin=TRAIN_STDIN),
        input=pps.Input(pfs=pps.PfsInput(repo="data", glob="/*")),
    )
    client.pps.create_pipeline_v2(
        create_pipeline_request_json=chain_json("LogD-aggregate", "LogD-train", "/")
    )


def user_commits(infos) -> list[str]:
    """Repo names of a commit set's user commits (pachd also lists meta commits)."""
    return [i.commit.repo.name for i in infos if i.commit.repo.type == "user"]


def test_version_and_projects(client: Client) -> None:
    version = client.get_version()
    assert (version.major, version.minor, version.additional) == (2, 12, "local-pachd")
    assert [p.project.name for p in client.pfs.list_project()] == ["default"]
    client.pfs.create_project(project=pfs.Project(name="cpsign"))
    err = rpc_error(client.pfs.create_project, project=pfs.Project(name="cpsign"))
    assert (err.code(), err.details()) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "project cpsign already exists",
    )
    err = rpc_error(client.pfs.inspect_project, project=pfs.Project(name="nope"))
    assert (err.code(), err.details()) == (grpc.StatusCode.NOT_FOUND, 'project "nope" not found')


def test_pfs_errors_match_pachd(client: Client) -> None:
    client.pfs.create_repo(repo=pfs.Repo(name="data"))
    cases = [
        (
            client.pfs.create_repo,
            {"repo": pfs.Repo(name="data")},
            grpc.StatusCode.ALREADY_EXISTS,
            "repo default/data already exists",
        ),
        (
            client.pfs.inspect_repo,
            {"repo": pfs.Repo(name="nope")},
            grpc.StatusCode.NOT_FOUND,
            "repo default/nope not found",
        ),
        (
            client.pfs.inspect_branch,
            {"branch": pfs.Branch.from_uri("data@master")},
            grpc.StatusCode.NOT_FOUND,
            'branch "master" not found in repo default/data',
        ),
        (
            client.pfs.inspect_commit,
            {"commit": pfs.Commit(repo=pfs.Repo(name="data"), id="f" * 32)},
            grpc.StatusCode.NOT_FOUND,
            f"commit default/data@{'f' * 32} not found",
        ),
        (
            client.pfs.inspect_commit_set,
            {"commit_set": pfs.CommitSet(id="e" * 32)},
            grpc.StatusCode.NOT_FOUND,
            f"no commits found for commitset {'e' * 32}",
        ),
        (
            client.pps.inspect_pipeline,
            {"pipeline": pps.Pipeline(name="nope")},
            grpc.StatusCode.NOT_FOUND,
            'pipeline "nope" not found',
        ),
        (
            client.pfs.create_repo,
            {"repo": pfs.Repo(name="bad name")},
            grpc.StatusCode.UNKNOWN,
            "repo name (bad name) invalid: only alphanumeric characters, underscores, and "
            "dashes are allowed",
        ),
    ]
    for fn, kwargs, code, message in cases:
        err = rpc_error(fn, **kwargs)
        assert (err.code(), err.details()) == (code, message)
    commit = put(client, "data@master", {"/x": b"1"})
    err = rpc_error(client.pfs.inspect_file, file=pfs.File(commit=commit, path="/missing"))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert err.details() == f"file /missing not found in repo default/data at commit {commit.id}"


def test_commits_are_copy_on_write_snapshots(client: Client) -> None:
    client.pfs.create_repo(repo=pfs.Repo(name="data"), description="inputs")
    first = put(client, "data@master", {"/a": b"one", "/dir/b": b"two"})
    with client.pfs.commit(branch=pfs.Branch.from_uri("data@master")) as second:
        second.put_file_from_bytes("/a", b"ONE")
        second.put_file_from_bytes("/a", b"!", append=True)
        second.delete_file(path="/dir")
    assert read(client, f"data@{first.id}:/a") == b"one"
    assert read(client, "data@master:/a") == b"ONE!"
    assert [
        f.file.path for f in client.pfs.list_file(file=pfs.File.from_uri(f"data@{first.id}:/"))
    ] == ["/a", "/dir"]
    info = client.pfs.inspect_commit(commit=pfs.Commit.from_uri("data@master"))
    assert info.commit.id == second.id and info.parent_commit.id == first.id
    assert info.finished is not None and info.size_bytes_upper_bound == 4
    assert [c.commit.id for c in client.pfs.list_commit(repo=pfs.Repo(name="data"))] == [
        second.id,
        first.id,
    ]
    repo = client.pfs.inspect_repo(repo=pfs.Repo(name="data"))
    assert repo.description == "inputs" and [b.name for b in repo.branches] == ["master"]


def test_two_stage_chain_runs_in_one_commit_set(client: Client, local_pachd: LocalPachd) -> None:  # noqa: F811
    make_chain(client)
    out = client.pfs.inspect_branch(branch=pfs.Branch.from_uri("LogD-aggregate@master"))
    assert {(b.repo.name, b.repo.type) for b in out.direct_provenance} == {
        ("LogD-train", "user"),
        ("LogD-aggregate", "spec"),  # pachd: the spec branch is provenance too
    }
    commit = put(client, "data@master", {"/c.csv": b"5,6\n"})
    infos = commit.wait_all()
    assert user_commits(infos) == ["data", "LogD-train", "LogD-aggregate"]
    assert {(i.commit.repo.name, i.commit.repo.type) for i in infos} >= {
        ("LogD-train", "meta"),
        ("LogD-aggregate", "meta"),
    }
    assert all(i.finished and not i.error for i in infos)
    # pachd also lists the set's provenance from other sets: the pipelines' spec commits
    others = {(i.commit.repo.name, i.commit.repo.type) for i in infos if i.commit.id != commit.id}
    assert others == {("LogD-train", "spec"), ("LogD-aggregate", "spec")}
    jobs = list(client.pps.inspect_job_set(job_set=pps.JobSet(id=commit.id), wait=True))
    assert [j.job.pipeline.name for j in jobs] == ["LogD-train", "LogD-aggregate"]
    for job in jobs:
        assert job.state == pps.JobState.JOB_SUCCESS and job.job.id == commit.id
        assert local_pachd.job_states(commit.id, job.job.pipeline.name) == SUCCESS_PATH
    # /* over three files; two were processed by the pipeline-creation job: skipped
    assert (jobs[0].data_total, jobs[0].data_processed, jobs[0].data_skipped) == (3, 1, 2)
    assert jobs[1].data_total == 1  # glob "/"
    assert read(client, "LogD-train@master:/c.csv") == b"5,6\n"
    assert read(client, "LogD-aggregate@master:/model.txt") == b"1,2\n3,4\n5,6\n"
    assert read(client, "LogD-aggregate@master:/job") == f"{commit.id}\n".encode()
    job = client.pps.inspect_job(
        job=pps.Job(pipeline=pps.Pipeline(name="LogD-train"), id=commit.id), details=True
    )
    assert job.details.transform.cmd == ["bash"] and job.started and job.finished
    listed = list(client.pps.list_job(pipeline=pps.Pipeline(name="LogD-train")))
    assert listed[0].job.id == commit.id and len(listed) == 2  # creation job + this one


def test_pipeline_create_update_and_details(client: Client) -> None:
    make_chain(client)
    info = client.pps.inspect_pipeline(pipeline=pps.Pipeline(name="LogD-aggregate"), details=True)
    assert info.version == 1 and info.state == pps.PipelineState.PIPELINE_RUNNING
    assert info.details.input.pfs.repo == "LogD-train" and info.details.transform.cmd == ["bash"]
    effective = json.loads(info.effective_spec_json)
    assert (effective["reprocessSpec"], effective["outputBranch"]) == ("until_success", "master")
    assert effective["transform"]["image"] == "ubuntu:20.04"
    assert json.loads(info.user_spec_json)["pipeline"]["name"] == "LogD-aggregate"
    assert json.loads(info.effective_spec_json)["datumTries"] == "3"
    salt = info.details.salt
    err = rpc_error(
        client.pps.create_pipeline_v2,
        create_pipeline_request_json=chain_json("LogD-aggregate", "LogD-train"),
    )
    assert (err.code(), err.details()) == (
        grpc.StatusCode.ALREADY_EXISTS,
        'pipeline "default/LogD-aggregate" already exists',
    )
    resp = client.pps.create_pipeline_v2(
        create_pipeline_request_json=chain_json("LogD-aggregate", "LogD-train", "/*"), update=True
    )
    assert json.loads(resp.effective_create_pipeline_request_json)["input"]["pfs"]["glob"] == "/*"
    updated = client.pps.inspect_pipeline(
        pipeline=pps.Pipeline(name="LogD-aggregate"), details=True
    )
    assert updated.version == 2 and updated.details.salt == salt
    assert updated.spec_commit.id != info.spec_commit.id
    job = client.pps.inspect_job(
        job=pps.Job(pipeline=updated.pipeline, id=updated.spec_commit.id), wait=True
    )
    assert job.state == pps.JobState.JOB_SUCCESS and job.pipeline_version == 2
    client.pps.create_pipeline_v2(
        create_pipeline_request_json=chain_json("LogD-aggregate", "LogD-train", "/*"),
        update=True,
        reprocess=True,
    )
    third = client.pps.inspect_pipeline(pipeline=pps.Pipeline(name="LogD-aggregate"), details=True)
    assert third.version == 3 and third.details.salt != salt
    dry = client.pps.create_pipeline_v2(
        create_pipeline_request_json=chain_json("dry", "data"), dry_run=True
    )
    assert json.loads(dry.effective_create_pipeline_request_json)["pipeline"]["name"] == "dry"
    assert not client.pps.pipeline_exists(pps.Pipeline(name="dry"))
    assert {p.pipeline.name for p in client.pps.list_pipeline()} == {"LogD-train", "LogD-aggregate"}
    client.pps.delete_pipeline(pipeline=pps.Pipeline(name="LogD-aggregate"))
    assert not client.pfs.repo_exists(pfs.Repo(name="LogD-aggregate"))


@pytest.mark.parametrize(
    ("spec", "code", "message"),
    [
        (
            '{"pipeline": {"name": "p"}, "x": 1}',
            grpc.StatusCode.INVALID_ARGUMENT,
            'could not make effective spec: proto: (line 1:29): unknown field "x"',
        ),
        (
            '{"transform": {"cmd": ["a"]}}',
            grpc.StatusCode.UNKNOWN,
            "invalid pipeline spec: request.Pipeline cannot be nil",
        ),
        (
            '{"pipeline": {"name": "p", "project": {"name": "default"}}, "transform": '
            '{"cmd": ["a"]}, "input": {"pfs": {"repo": "data", "glob": "/"}}, "datum_tries": 1,'
            ' "paralellism_spec": {"constant": 2}}',
            grpc.StatusCode.INVALID_ARGUMENT,
            'could not make effective spec: proto: (line 1:157): unknown field "paralellism_spec"',
        ),
        (
            '{"pipeline": {"name": "p"}, "transform": {"cmd": ["a"]}, '
            '"input": {"pfs": {"repo": "missing", "glob": "/"}}}',
            grpc.StatusCode.NOT_FOUND,
            "repo default/missing not found",
        ),
    ],
)
def test_bad_pipeline_specs(client: Client, spec: str, code: grpc.StatusCode, message: str) -> None:
    client.pfs.create_repo(repo=pfs.Repo(name="data"))
    err = rpc_error(client.pps.create_pipeline_v2, create_pipeline_request_json=spec)
    assert (err.code(), err.details()) == (code, message)


def test_failed_job_makes_downstream_unrunnable(client: Client, local_pachd: LocalPachd) -> None:  # noqa: F811
    local_pachd.configure_pipeline(
        "LogD-train", fail=True, reason="datum failed: OOM", logs=["boom"]
    )
    make_chain(client)
    commit = put(client, "data@master", {"/d.csv": b"7\n"})
    infos = {i.commit.repo.name: i for i in commit.wait_all()}
    assert infos["LogD-train"].error == "datum failed: OOM"
    assert infos["LogD-aggregate"].error
    train, aggregate = client.pps.inspect_job_set(job_set=pps.JobSet(id=commit.id), wait=True)
    assert (train.state, train.reason) == (pps.JobState.JOB_FAILURE, "datum failed: OOM")
    assert aggregate.reason == (
        "unrunnable because the following upstream pipelines failed: LogD-train"
    )
    assert local_pachd.job_states(commit.id, "LogD-train") == [
        "JOB_CREATED",
        "JOB_STARTING",
        "JOB_RUNNING",
        "JOB_FAILURE",
    ]
    assert aggregate.state == pps.JobState.JOB_UNRUNNABLE
    assert "LogD-train" in aggregate.reason
    logs = list(client.pps.get_logs(job=train.job))
    assert logs and logs[-1].message == "boom" and logs[-1].job_id == commit.id


def test_handler_writes_model_read_back(client: Client, local_pachd: LocalPachd) -> None:  # noqa: F811
    seen: dict[str, bytes] = {}

    def train(ctx) -> None:
        seen.update(ctx.inputs)
        ctx.log(f"training on {len(ctx.inputs)} files")
        ctx.write("/model.jar", b"MODEL:" + b"".join(ctx.inputs[k] for k in sorted(ctx.inputs)))

    def aggregate(ctx) -> None:
        raise PipelineFailure("no models to aggregate")

    local_pachd.configure_pipeline("LogD-train", handler=train, duration=0)
    local_pachd.configure_pipeline("LogD-aggregate", handler=aggregate)
    make_chain(client)
    commit = put(client, "data@master", {"/c.csv": b"5\n"})
    commit.wait_all()
    assert read(client, f"LogD-train@{commit.id}:/model.jar") == b"MODEL:1,2\n3,4\n5\n"
    assert sorted(seen) == ["/pfs/data/a.csv", "/pfs/data/b.csv", "/pfs/data/c.csv"]
    job = client.pps.inspect_job(
        job=pps.Job(pipeline=pps.Pipeline(name="LogD-aggregate"), id=commit.id)
    )
    assert (job.state, job.reason) == (pps.JobState.JOB_FAILURE, "no models to aggregate")
    tail = list(client.pps.get_logs(pipeline=pps.Pipeline(name="LogD-train"), tail=1))
    assert [m.message for m in tail] == ["training on 3 files"]


def test_stop_job_kills_it(client: Client, local_pachd: LocalPachd) -> None:  # noqa: F811
    make_chain(client)
    local_pachd.configure_pipeline("LogD-train", duration=30)
    commit = put(client, "data@master", {"/c.csv": b"5\n"})
    job = pps.Job(pipeline=pps.Pipeline(name="LogD-train"), id=commit.id)
    client.pps.stop_job(job=job, reason="user asked")
    info = client.pps.inspect_job(job=job, wait=True)
    assert (info.state, info.reason) == (pps.JobState.JOB_KILLED, "user asked")
    downstream = pps.Job(pipeline=pps.Pipeline(name="LogD-aggregate"), id=commit.id)
    assert client.pps.inspect_job(job=downstream, wait=True).state == pps.JobState.JOB_UNRUNNABLE


def test_fail_next_and_latency(client: Client, local_pachd: LocalPachd) -> None:  # noqa: F811
    client.pfs.create_repo(repo=pfs.Repo(name="data"))
    local_pachd.faults.fail_next(2, code=grpc.StatusCode.UNAVAILABLE, methods=["InspectRepo"])
    for _ in range(2):
        assert rpc_error(client.pfs.inspect_repo, repo=pfs.Repo(name="data")).code() == (
            grpc.StatusCode.UNAVAILABLE
        )
    assert client.get_version().major == 2  # other methods unaffected
    assert client.pfs.inspect_repo(repo=pfs.Repo(name="data")).repo.name == "data"
    assert local_pachd.call_counts()["InspectRepo"] == 3
    local_pachd.faults.latency = 0.05
    assert client.pfs.inspect_repo(repo=pfs.Repo(name="data")).repo.name == "data"


def test_cut_stream(client: Client, local_pachd: LocalPachd) -> None:  # noqa: F811
    for name in ("a", "b", "c"):
        client.pfs.create_repo(repo=pfs.Repo(name=name))
    local_pachd.faults.cut_next_stream(after=1)
    received = []
    with pytest.raises(grpc.RpcError) as info:
        for repo in client.pfs.list_repo():
            received.append(repo.repo.name)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE and len(received) == 1
    assert len(list(client.pfs.list_repo())) == 3  # only the next stream was cut


def test_restart_keeps_state_and_breaks_streams(client: Client, local_pachd: LocalPachd) -> None:  # noqa: F811
    local_pachd.configure_pipeline("LogD-train", duration=1.0)
    make_chain(client)
    port = local_pachd.port
    commit = put(client, "data@master", {"/c.csv": b"5\n"})
    first_received = threading.Event()
    outcome: dict[str, object] = {}

    def wait_set() -> None:
        stream = client.pfs.inspect_commit_set(commit_set=pfs.CommitSet(id=commit.id), wait=True)
        try:
            first = next(stream)  # a finished commit: a spec commit or the input's
            outcome["first"] = bool(first.finished) and first.commit.repo.name
            first_received.set()
            list(stream)
        except grpc.RpcError as err:
            outcome["code"] = err.code()
        finally:
            first_received.set()

    waiter = threading.Thread(target=wait_set)
    waiter.start()
    assert first_received.wait(10)
    local_pachd.restart()
    waiter.join(10)
    assert outcome["code"] == grpc.StatusCode.UNAVAILABLE
    assert outcome["first"] in {"data", "LogD-train", "LogD-aggregate"}
    assert local_pachd.port == port
    assert client.pfs.repo_exists(pfs.Repo(name="data"))
    infos = client.pfs.wait_commit_set(pfs.CommitSet(id=commit.id))
    assert user_commits(infos) == ["data", "LogD-train", "LogD-aggregate"]


def test_restart_keeps_waiting_jobs_alive(client: Client, local_pachd: LocalPachd) -> None:  # noqa: F811
    """A job waiting for its input commit survives a restart (it used to end JOB_FAILURE)."""
    running = threading.Event()
    release = threading.Event()

    def gated(ctx) -> None:
        running.set()
        assert release.wait(30), "never released"

    local_pachd.configure_pipeline("LogD-train", handler=gated, duration=0)
    make_chain(client)
    running.clear()  # the pipeline-creation job ran the handler too
    commit = put(client, "data@master", {"/c.csv": b"5\n"})
    assert running.wait(10)  # stage 1 runs; stage 2 waits for stage 1's output commit
    assert local_pachd.job_states(commit.id, "LogD-aggregate") == ["JOB_CREATED", "JOB_STARTING"]
    local_pachd.restart()
    release.set()
    infos = client.pfs.wait_commit_set(pfs.CommitSet(id=commit.id))
    assert user_commits(infos) == ["data", "LogD-train", "LogD-aggregate"]
    assert not any(i.error for i in infos)
    for pipeline in ("LogD-train", "LogD-aggregate"):
        assert local_pachd.job_states(commit.id, pipeline) == SUCCESS_PATH


def test_auth(local_pachd: LocalPachd) -> None:  # noqa: F811
    with pytest.raises(AuthServiceNotActivated):
        Client.from_pachd_address(local_pachd.address).auth.who_am_i()
    local_pachd.require_auth("secret-token")
    anonymous = Client.from_pachd_address(local_pachd.address)
    assert anonymous.get_version().major == 2  # GetVersion needs no token
    err = rpc_error(anonymous.pfs.list_repo)
    assert (err.code(), err.details()) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "no authentication token (try logging in)",
    )
    wrong = Client.from_pachd_address(local_pachd.address, auth_token="nope")
    err = rpc_error(wrong.pfs.inspect_project, project=pfs.Project(name="default"))
    assert (err.code(), err.details()) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "provided auth token is corrupted or has expired (try logging in again)",
    )
    right = Client.from_pachd_address(local_pachd.address, auth_token="secret-token")
    assert right.auth.who_am_i().username == "pach:root"
    assert right.pfs.inspect_project(project=pfs.Project(name="default")).project.name == "default"


def test_large_file_round_trip(client: Client) -> None:
    client.pfs.create_repo(repo=pfs.Repo(name="big"))
    block = os.urandom(1024 * 1024)
    data = block * 64
    with client.pfs.commit(branch=pfs.Branch.from_uri("big@master")) as commit:
        commit.put_file_from_file(path="/blob.bin", file=io.BytesIO(data))
    info = client.pfs.inspect_file(file=pfs.File(commit=commit, path="/blob.bin"))
    assert info.size_bytes == len(data)
    assert info.hash == hashlib.sha256(data).digest()
    digest = hashlib.sha256()
    sizes = []
    for message in client.pfs.get_file(file=pfs.File(commit=commit, path="/blob.bin")):
        sizes.append(len(message.value))
        digest.update(message.value)
    assert digest.digest() == hashlib.sha256(data).digest()
    assert max(sizes) <= 2 * 1024 * 1024 and sum(sizes) == len(data)


def test_module_entry_point() -> None:
    env = dict(os.environ, PACHD_TEST_TOKEN="tok")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cpsign_airflow.testing.pachd",
            "--port",
            "0",
            "--auth-token-env",
            "PACHD_TEST_TOKEN",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        address = proc.stdout.readline().strip()
        assert address.startswith("grpc://127.0.0.1:") and int(address.rsplit(":", 1)[1]) > 0
        client = Client.from_pachd_address(address, auth_token="tok")
        assert client.auth.who_am_i().username == "pach:root"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_stuck_shutdown_names_where_each_task_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    from cpsign_airflow.testing.pachd import server

    monkeypatch.setattr(server, "SHUTDOWN_TIMEOUT", 0.5)
    pachd = LocalPachd(host="127.0.0.1", port=0).start()
    release = asyncio.Event()

    async def held_job() -> None:
        await release.wait()

    async def stuck_shutdown() -> None:
        await held_job()

    monkeypatch.setattr(pachd, "_shutdown", stuck_shutdown)
    loop = pachd._loop
    with pytest.raises(TimeoutError, match=r"did not shut down in 0.5 s") as raised:
        pachd.stop()
    assert "stuck_shutdown (test_local_pachd.py" in str(raised.value)
    assert "-> held_job (test_local_pachd.py" in str(raised.value)
    assert pachd._loop is None and loop is not None and not loop.is_running()
