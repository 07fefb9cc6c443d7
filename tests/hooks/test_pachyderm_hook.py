"""PachydermHook against a pachd over real gRPC (local pachd unless an address is given)."""

from __future__ import annotations

import hashlib
import json
from unittest import mock

import grpc
import pytest
from pachyderm_sdk.api import pfs

from cpsign_airflow.exceptions import (
    PachydermAlreadyExists,
    PachydermAuthError,
    PachydermError,
    PachydermNotFound,
    PachydermSpecError,
    PachydermTimeout,
    PachydermUnavailable,
)
from cpsign_airflow.hooks.pachyderm import PachydermHook, address_from_connection


def spec(name: str, repo: str, image: str = "busybox", glob: str = "/*") -> dict:
    return {
        "pipeline": {"name": name},
        "input": {"pfs": {"repo": repo, "glob": glob}},
        "transform": {
            "image": image,
            "cmd": [
                "sh",
                "-c",
                'for d in /pfs/*; do [ "$d" = /pfs/out ] || cp -r "$d"/. /pfs/out/; done',
            ],
        },
    }


@pytest.fixture
def hook(pachyderm_conn) -> PachydermHook:
    hook = PachydermHook(pachyderm_conn, retry_backoff=0.01, retry_backoff_max=0.05)
    yield hook
    hook.close()


# ---------------------------------------------------------------- connection parsing


class FakeConn:
    def __init__(self, conn_type="pachyderm", host="", port=None, password=None, extra=None):
        self.conn_id = "c"
        self.conn_type = conn_type
        self.host = host
        self.port = port
        self.password = password
        self.extra_dejson = extra or {}


def test_address_defaults_and_uri_forms():
    plain = address_from_connection(FakeConn(host="pachd.lab"))
    assert (plain.host, plain.port, plain.tls, plain.project) == (
        "pachd.lab",
        30650,
        False,
        "default",
    )
    uri = address_from_connection(FakeConn(conn_type="grpcs", host="pachd.lab", port=443))
    assert uri.tls and uri.url == "grpcs://pachd.lab:443"
    typed = address_from_connection(FakeConn(host="grpcs://p.example:31400"))
    assert (typed.host, typed.port, typed.tls) == ("p.example", 31400, True)
    extras = address_from_connection(
        FakeConn(host="h", extra={"tls": "true", "project": "lab", "console_url": "https://c/"})
    )
    assert extras.tls and extras.project == "lab" and extras.console_url == "https://c"


def test_address_errors_name_the_connection():
    with pytest.raises(ValueError, match="'c' has no host"):
        address_from_connection(FakeConn(host=""))
    with pytest.raises(ValueError, match="unknown scheme"):
        address_from_connection(FakeConn(host="ftp://x"))


def test_token_not_in_repr():
    address = address_from_connection(FakeConn(host="h", password="s3cr3t-token"))
    assert "s3cr3t-token" not in repr(address)


# ---------------------------------------------------------------- admin, repos


def test_connection_reports_version(hook):
    ok, message = hook.test_connection()
    assert ok, message
    assert message.startswith("Connected to pachd 2.")


def test_ensure_project_and_repo_are_idempotent(hook, unique_name):
    assert hook.ensure_project() is False  # "default" always exists
    first = hook.ensure_repo(unique_name)
    second = hook.ensure_repo(unique_name)
    assert first == {"project": "default", "repo": unique_name, "created": True}
    assert second["created"] is False
    assert unique_name in hook.list_repos()


def test_new_project(hook, unique_name):
    assert hook.ensure_project(unique_name) is True
    assert hook.ensure_project(unique_name) is False
    assert hook.ensure_repo("data", project=unique_name)["created"] is True


def test_not_found_and_exists_are_distinct_types(hook, unique_name):
    with pytest.raises(PachydermNotFound, match=unique_name):
        hook.inspect_commit(unique_name, "master", ref_type="branch")
    hook.ensure_repo(unique_name)
    client = hook.get_conn()
    from pachyderm_sdk.api import pfs

    with pytest.raises(PachydermAlreadyExists, match=unique_name):
        hook._call(
            f"create repo {unique_name!r}",
            lambda: client.pfs.create_repo(repo=pfs.Repo(name=unique_name, type="user")),
        )


# ---------------------------------------------------------------- files


def test_put_read_and_list_files(hook, unique_name):
    hook.ensure_repo(unique_name)
    c1 = hook.put_file(unique_name, "/configuration.json", data='{"a": 1}')
    c2 = hook.put_file(unique_name, "configuration.json", data=b'{"a": 2}')
    assert c1 != c2
    assert hook.read_file(unique_name, c1, "/configuration.json") == b'{"a": 1}'
    assert hook.read_file(unique_name, "master", "/configuration.json", ref_type="branch") == (
        b'{"a": 2}'
    )
    files = hook.list_files(unique_name, "master", ref_type="branch")
    assert [(f["path"], f["size_bytes"]) for f in files] == [("/configuration.json", 8)]
    commit = hook.inspect_commit(unique_name, c2)
    assert commit["id"] == c2 and commit["finished"] is not None


def test_put_file_from_local_path_streams_in_chunks(hook, unique_name, tmp_path):
    from cpsign_airflow.hooks.pachyderm import CHUNK_SIZE

    payload = bytes(range(256)) * (CHUNK_SIZE // 256 * 3 + 7)  # > 3 chunks, ragged end
    source = tmp_path / "big.bin"
    source.write_bytes(payload)
    hook.ensure_repo(unique_name)
    commit = hook.put_file(unique_name, "/big.bin", local_path=source)
    back = hook.read_file(unique_name, commit, "/big.bin")
    assert hashlib.sha256(back).hexdigest() == hashlib.sha256(payload).hexdigest()


def test_put_file_bad_input_fails_before_any_commit(hook, unique_name, tmp_path):
    hook.ensure_repo(unique_name)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        hook.put_file(unique_name, "/c.json", local_path=tmp_path / "missing.json")
    with pytest.raises(ValueError, match="exactly one"):
        hook.put_file(unique_name, "/c.json")
    with pytest.raises(PachydermNotFound):
        hook.inspect_commit(unique_name, "master", ref_type="branch")


def test_put_file_dedupe_key_returns_the_earlier_commit(hook, unique_name):
    hook.ensure_repo(unique_name)
    first = hook.put_file(unique_name, "/c.json", data="x", dedupe_key="dag/run/task")
    again = hook.put_file(unique_name, "/c.json", data="x", dedupe_key="dag/run/task")
    changed = hook.put_file(unique_name, "/c.json", data="y", dedupe_key="dag/run/task")
    other_run = hook.put_file(unique_name, "/c.json", data="x", dedupe_key="dag/run2/task")
    assert again == first
    assert len({first, changed, other_run}) == 3


def test_put_file_retried_while_its_commit_is_finishing_returns_it(
    hook, pachd, unique_name, monkeypatch
):
    """pachd 2.12's FinishCommit only sets ``finishing``; its PFS master sets ``finished``
    later (src/server/pfs/server/server_commit.go finishCommit, master.go
    postProcessCommit) and refuses writes from ``finishing`` on (server_file.go). A retry
    in that gap is given the earlier commit: nothing is written to it, nothing new made."""
    from pachyderm_sdk import Client
    from pachyderm_sdk.api import pfs

    monkeypatch.setattr(pachd, "finish_delay", 3.0)  # widen the gap (local pachd only)
    hook.ensure_repo(unique_name)
    first = hook.put_file(unique_name, "/c.json", data="x", dedupe_key="dag/run/task")
    client = Client.from_pachd_address(pachd.address)
    commit = pfs.Commit.from_uri(f"{unique_name}@{first}")
    before = pachd.call_counts()
    again = hook.put_file(unique_name, "/c.json", data="x", dedupe_key="dag/run/task")
    after = pachd.call_counts()
    assert again == first
    assert after["ModifyFile"] == before["ModifyFile"]
    assert after["StartCommit"] == before["StartCommit"]
    assert after["FinishCommit"] == before["FinishCommit"]
    info = client.pfs.inspect_commit(commit=commit)
    assert info.finishing.timestamp() > 0 and info.finished.timestamp() == 0  # still in the gap
    pachd.finish_delay = 0.0
    assert hook.read_file(unique_name, first, "/c.json") == b"x"


def test_put_file_retry_resumes_the_open_commit_of_an_earlier_try(hook, pachd, unique_name):
    """A try that died between StartCommit and FinishCommit leaves its commit open, and
    pachd refuses another commit on the branch until it finishes: the retry writes into
    that commit and finishes it, rather than queueing behind it for ever."""
    import threading

    hook.ensure_repo(unique_name)
    pachd.faults.fail_next(1, code=grpc.StatusCode.INTERNAL, methods=["ModifyFile"])
    with pytest.raises(PachydermError, match="INTERNAL|injected"):
        hook.put_file(unique_name, "/c.json", data="x", dedupe_key="dag/run/task")
    left = hook.inspect_commit(unique_name, "master", ref_type="branch")
    assert left["finished"] is None
    result: dict = {}
    retry = threading.Thread(
        target=lambda: result.update(
            id=hook.put_file(unique_name, "/c.json", data="x", dedupe_key="dag/run/task")
        )
    )
    retry.start()
    retry.join(15)
    if retry.is_alive():  # queued behind the commit its own earlier try left open
        from pachyderm_sdk import Client
        from pachyderm_sdk.api import pfs

        Client.from_pachd_address(pachd.address).pfs.finish_commit(
            commit=pfs.Commit.from_uri(f"{unique_name}@{left['id']}")
        )
        retry.join(15)
        pytest.fail("the retry waited for its earlier try's open commit instead of resuming it")
    assert result["id"] == left["id"]
    assert hook.read_file(unique_name, left["id"], "/c.json") == b"x"


def test_missing_file_is_not_found(hook, unique_name):
    hook.ensure_repo(unique_name)
    hook.put_file(unique_name, "/a", data="a")
    with pytest.raises(PachydermNotFound, match="/nope"):
        hook.read_file(unique_name, "master", "/nope", ref_type="branch")


# ---------------------------------------------------------------- pipelines, commit sets, jobs


def test_create_update_unchanged_pipeline(hook, unique_name):
    repo = f"{unique_name}-in"
    hook.ensure_repo(repo)
    created = hook.create_or_update_pipeline(spec(unique_name, repo))
    unchanged = hook.create_or_update_pipeline(spec(unique_name, repo))
    updated = hook.create_or_update_pipeline(spec(unique_name, repo, image="alpine"))
    assert created["action"] == "created"
    assert unchanged["action"] == "unchanged"
    assert unchanged["version"] == created["version"]
    assert updated["action"] == "updated"
    assert updated["version"] == created["version"] + 1
    assert updated["spec_hash"] != created["spec_hash"]
    # camelCase and reordered keys are the same pipeline
    camel = {
        "transform": spec(unique_name, repo, image="alpine")["transform"],
        "pipeline": {"name": unique_name},
    }
    camel["input"] = {"pfs": {"glob": "/*", "repo": repo}}
    assert hook.create_or_update_pipeline(camel)["action"] == "unchanged"


def test_reprocess_forces_an_update(hook, unique_name):
    repo = f"{unique_name}-in"
    hook.ensure_repo(repo)
    first = hook.create_or_update_pipeline(spec(unique_name, repo))
    again = hook.create_or_update_pipeline(spec(unique_name, repo), reprocess=True)
    assert again["action"] == "updated" and again["version"] == first["version"] + 1


def test_pipeline_on_missing_repo_names_it(hook, unique_name):
    with pytest.raises(PachydermNotFound, match=f"{unique_name}-absent"):
        hook.create_or_update_pipeline(spec(unique_name, f"{unique_name}-absent"))


def test_spec_without_name_fails_before_sending(hook):
    with pytest.raises(ValueError, match="pipeline.name"):
        hook.create_or_update_pipeline({"transform": {"image": "x"}})


def test_two_stage_chain_commit_set(hook, pachd, unique_name):
    repo = f"{unique_name}-in"
    hook.ensure_repo(repo)
    hook.create_or_update_pipeline(spec(f"{unique_name}-a", repo))
    hook.create_or_update_pipeline(spec(f"{unique_name}-b", f"{unique_name}-a"))
    commit = hook.put_file(repo, "/configuration.json", data=json.dumps({"seed": 1}))
    commits = hook.wait_commit_set(commit, timeout=60)
    repos = {c["repo"] for c in commits}
    assert {repo, f"{unique_name}-a", f"{unique_name}-b"} <= repos
    assert all(c["finished"] for c in commits)
    jobs = {j["pipeline"]: j for j in hook.list_jobs(commit)}
    assert set(jobs) == {f"{unique_name}-a", f"{unique_name}-b"}
    for job in jobs.values():
        assert job["job_id"] == commit  # global ids: the commit set id is the job id
        assert job["state"] == "JOB_SUCCESS"
        assert job["data_total"] >= 1
    if hasattr(pachd, "job_states") and not isinstance(pachd, type(None)):
        for name in jobs:
            assert pachd.job_states(commit, name) == [
                "JOB_CREATED",
                "JOB_STARTING",
                "JOB_RUNNING",
                "JOB_FINISHING",
                "JOB_SUCCESS",
            ]


def test_a_commit_set_is_its_own_commits_not_its_provenance(hook, pachd, unique_name):
    """pachd 2.12 also lists the commits of other sets in a set's provenance (the input head
    a pipeline-creation job reads, spec commits: server_commit_set.go ->
    pfsdb.CommitSetProvenance); the hook's wait and inspect keep only the set's own."""
    repo = f"{unique_name}-in"
    hook.ensure_repo(repo)
    first = hook.put_file(repo, "/a.json", data="{}")
    hook.create_or_update_pipeline(spec(f"{unique_name}-a", repo))
    created = hook.inspect_pipeline(f"{unique_name}-a")["spec_commit"]
    raw = hook.get_conn().pfs.inspect_commit_set(commit_set=pfs.CommitSet(id=created), wait=True)
    assert first in {info.commit.id for info in raw}  # pachd lists the input head too
    for commits in (hook.wait_commit_set(created, timeout=60), hook.inspect_commit_set(created)):
        assert commits and {c["id"] for c in commits} == {created}
        assert {c["repo"] for c in commits} == {f"{unique_name}-a"}


def test_commit_set_replies_are_decoded_without_betterproto(hook, pachd, unique_name, monkeypatch):
    """The sync wait and inspect decode InspectCommitSet's replies with google.protobuf
    (hooks/_wire.py), as the trigger does: the pipelines' spec commits come first, each
    listing every output and meta commit made from it in its direct subvenance (pachd's
    getCommitFromCommitRow, src/internal/pfsdb/commits.go), which grows with every run and
    which betterproto decoded ~100x slower."""
    repo = f"{unique_name}-in"
    hook.ensure_repo(repo)
    hook.create_or_update_pipeline(spec(unique_name, repo))
    hook.wait_commit_set(hook.put_file(repo, "/a", data="1"), timeout=60)
    commit = hook.put_file(repo, "/b", data="2")
    raw = hook.get_conn().pfs.inspect_commit_set(commit_set=pfs.CommitSet(id=commit), wait=True)
    spec_commits = [i for i in raw if i.commit.repo.type == "spec"]
    assert spec_commits and len(spec_commits[0].direct_subvenance) >= 4  # 2 runs: out + meta

    def refuse(data: bytes) -> None:
        raise AssertionError("decoded with betterproto")

    monkeypatch.setattr(pfs.CommitInfo, "FromString", refuse)
    for commits in (hook.wait_commit_set(commit, timeout=60), hook.inspect_commit_set(commit)):
        assert {c["repo"] for c in commits} == {repo, unique_name}
        assert {c["id"] for c in commits} == {commit}
        assert all(c["finished"] for c in commits)


def test_failed_job_reason_and_logs(hook, pachd, unique_name):
    repo = f"{unique_name}-in"
    pachd.configure_pipeline(
        unique_name, fail=True, reason="datum failed", logs=["boom", "java.lang.OutOfMemoryError"]
    )
    hook.ensure_repo(repo)
    hook.create_or_update_pipeline(spec(unique_name, repo))
    commit = hook.put_file(repo, "/x", data="1")
    commits = hook.wait_commit_set(commit, timeout=60)
    [job] = hook.list_jobs(commit)
    assert job["state"] == "JOB_FAILURE" and job["reason"] == "datum failed"
    assert any(c["error"] for c in commits if c["repo"] == unique_name)
    assert hook.get_job_logs(unique_name, commit, tail=1) == ["java.lang.OutOfMemoryError"]


def test_wait_commit_set_times_out(hook, pachd, unique_name):
    repo = f"{unique_name}-in"
    pachd.configure_pipeline(unique_name, duration=30)
    hook.ensure_repo(repo)
    hook.create_or_update_pipeline(spec(unique_name, repo))
    commit = hook.put_file(repo, "/x", data="1")
    with pytest.raises(PachydermTimeout, match=commit):
        hook.wait_commit_set(commit, timeout=0.3)
    hook.stop_job(unique_name, commit)
    jobs = hook.list_jobs(commit)
    assert jobs[0]["state"] == "JOB_KILLED"


def test_unknown_commit_set_is_not_found(hook):
    with pytest.raises(PachydermNotFound, match="0" * 32):
        hook.wait_commit_set("0" * 32, timeout=5)


# ---------------------------------------------------------------- faults, retries, auth


def test_unavailable_is_retried(hook, pachd, unique_name):
    pachd.faults.fail_next(3, code=grpc.StatusCode.UNAVAILABLE)
    assert hook.ensure_repo(unique_name)["created"] is True


def test_unavailable_gives_up_with_address(pachyderm_conn, pachd, unique_name, capsys):
    hook = PachydermHook(pachyderm_conn, max_retries=2, retry_backoff=0.01)
    pachd.faults.fail_next(10, code=grpc.StatusCode.UNAVAILABLE)
    with pytest.raises(PachydermUnavailable) as info:
        hook.ensure_repo(unique_name)
    assert pachd.address in str(info.value) and "3 attempts" in str(info.value)
    assert capsys.readouterr().out.count("; retry ") == 2


#: pachd's answers (UNKNOWN) when its PostgreSQL transaction lost a race under load.
SERIALIZATION_FAILURE = (
    "ERROR: could not serialize access due to read/write dependencies among "
    "transactions (SQLSTATE 40001)"
)
ABORTED_TRANSACTION = (
    "ERROR: current transaction is aborted, commands ignored until end of transaction "
    "block (SQLSTATE 25P02)"
)


@pytest.mark.parametrize(
    "message", [SERIALIZATION_FAILURE, ABORTED_TRANSACTION], ids=["40001", "25P02"]
)
def test_transient_database_errors_are_retried(hook, pachd, unique_name, capsys, message):
    """Retried like UNAVAILABLE: the transaction was rolled back, so sending again is safe."""
    hook.ensure_repo(unique_name)
    pachd.faults.fail_next(
        2, code=grpc.StatusCode.UNKNOWN, methods=["CreatePipelineV2"], message=message
    )
    created = hook.create_or_update_pipeline(spec(f"{unique_name}-p", unique_name))
    assert created["action"] == "created"
    assert pachd.call_counts()["CreatePipelineV2"] == 3
    out = capsys.readouterr().out
    for attempt in (1, 2):
        assert f"transient database error ({message}) while trying to create" in out
        assert f"; retry {attempt}/5 in " in out


def test_transient_database_errors_give_up_with_the_attempt_count(
    pachyderm_conn, pachd, unique_name
):
    hook = PachydermHook(pachyderm_conn, max_retries=2, retry_backoff=0.01)
    hook.ensure_repo(unique_name)
    pachd.faults.fail_next(
        10, code=grpc.StatusCode.UNKNOWN, methods=["CreatePipelineV2"], message=ABORTED_TRANSACTION
    )
    with pytest.raises(PachydermError, match="SQLSTATE 25P02") as info:
        hook.create_or_update_pipeline(spec(f"{unique_name}-p", unique_name))
    assert "gave up after 3 attempts" in str(info.value)
    assert not isinstance(info.value, PachydermUnavailable)
    assert pachd.call_counts()["CreatePipelineV2"] == 3


def test_other_unknown_errors_are_not_retried(hook, pachd, unique_name, capsys):
    hook.ensure_repo(unique_name)
    pachd.faults.fail_next(
        1, code=grpc.StatusCode.UNKNOWN, methods=["CreatePipelineV2"], message="disk on fire"
    )
    with pytest.raises(PachydermError, match="disk on fire"):
        hook.create_or_update_pipeline(spec(f"{unique_name}-p", unique_name))
    assert pachd.call_counts()["CreatePipelineV2"] == 1
    assert "; retry " not in capsys.readouterr().out


def test_unreachable_server_is_unavailable(monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AIRFLOW_CONN_PACHYDERM_DEFAULT", f"pachyderm://127.0.0.1:{port}")
    hook = PachydermHook(max_retries=1, retry_backoff=0.01)
    with pytest.raises(PachydermUnavailable, match=f"127.0.0.1:{port}"):
        hook.ensure_repo("anything")


def test_restart_keeps_state_and_hook_recovers(hook, pachd, unique_name):
    hook.ensure_repo(unique_name)
    commit = hook.put_file(unique_name, "/a", data="kept")
    pachd.restart()
    assert hook.read_file(unique_name, commit, "/a") == b"kept"


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_auth_errors_say_token_and_never_leak_it(pachd, monkeypatch, capfd, token):
    secret = "the-real-token-5f2a"
    pachd.require_auth(secret)
    host_port = pachd.address.split("://", 1)[1]
    uri = f"pachyderm://:{token}@{host_port}" if token else f"pachyderm://{host_port}"
    monkeypatch.setenv("AIRFLOW_CONN_PACHYDERM_DEFAULT", uri)
    hook = PachydermHook()
    with pytest.raises(PachydermAuthError, match="token is missing or wrong") as info:
        hook.ensure_repo("r")
    captured = capfd.readouterr()
    text = str(info.value) + captured.out + captured.err
    assert secret not in text
    if token:
        assert token not in text


def test_right_token_works_and_is_masked(pachd, monkeypatch, capfd, unique_name):
    secret = "the-real-token-9c1d"
    pachd.require_auth(secret)
    host_port = pachd.address.split("://", 1)[1]
    monkeypatch.setenv("AIRFLOW_CONN_PACHYDERM_DEFAULT", f"pachyderm://:{secret}@{host_port}")
    hook = PachydermHook()
    assert hook.ensure_repo(unique_name)["created"] is True
    captured = capfd.readouterr()
    assert secret not in captured.out + captured.err
    # Registered with Airflow's masker, which redacts task logs, XCom and rendered fields.
    from airflow.sdk._shared.secrets_masker import redact

    assert secret not in str(redact(f"token is {secret}"))


def test_invalid_spec_from_server_is_spec_or_argument_error(hook, unique_name):
    hook.ensure_repo(unique_name)
    bad = spec(f"{unique_name}-p", unique_name)
    bad["pipeline"]["name"] = "bad name!"
    with pytest.raises(PachydermSpecError, match="pipeline.name"):
        hook.create_or_update_pipeline(bad)
    assert not hook.pipeline_exists("bad name!")


def test_invalid_argument_from_pachd_is_the_non_retryable_spec_error(hook, pachd, unique_name):
    """pachd refusing a spec our validator passed (INVALID_ARGUMENT) is not retried."""
    import grpc
    from airflow.sdk.exceptions import AirflowFailException

    if not hasattr(pachd, "faults"):
        pytest.skip("needs the local pachd's fault injection")
    hook.ensure_repo(unique_name)
    pachd.faults.fail_next(
        1,
        code=grpc.StatusCode.INVALID_ARGUMENT,
        message="could not make effective spec: proto: unknown field",
        methods=["CreatePipelineV2"],
    )
    with pytest.raises(PachydermSpecError) as info:
        hook.create_or_update_pipeline(spec(f"{unique_name}-p", unique_name))
    assert isinstance(info.value, AirflowFailException)  # Airflow does not retry it
    assert "could not make effective spec" in str(info.value)
    assert f"{unique_name}-p" in str(info.value)  # names the pipeline
    assert pachd.call_counts()["CreatePipelineV2"] == 1  # and the hook did not retry either


def test_put_file_waits_for_another_writers_open_commit(hook, pachd, unique_name):
    """pachd refuses a second open commit on a branch: put_file queues behind it."""
    import threading

    from pachyderm_sdk import Client
    from pachyderm_sdk.api import pfs

    if not hasattr(pachd, "call_counts"):
        pytest.skip("observes the local pachd's call counts")
    hook.ensure_repo(unique_name)
    other = Client.from_pachd_address(pachd.address)
    opened = other.pfs.start_commit(branch=pfs.Branch.from_uri(f"{unique_name}@master"))
    starts = pachd.call_counts()["StartCommit"]
    result: dict = {}
    writer = threading.Thread(
        target=lambda: result.update(id=hook.put_file(unique_name, "/c.json", data="{}"))
    )
    writer.start()
    while pachd.call_counts()["StartCommit"] == starts:  # its first attempt, refused
        writer.join(0.01)
    assert writer.is_alive()  # waiting on the open head, not failed
    other.pfs.finish_commit(commit=opened)
    writer.join(30)
    assert not writer.is_alive() and result["id"] != opened.id
    info = other.pfs.inspect_commit(commit=pfs.Commit.from_uri(f"{unique_name}@{result['id']}"))
    assert info.parent_commit.id == opened.id  # committed after the other writer's commit
    assert hook.read_file(unique_name, result["id"], "/c.json") == b"{}"


def test_sdk_callback_noise_is_dropped_but_other_grpc_errors_are_kept(hook, caplog):
    """pachyderm-sdk re-raises a stream's error in a done-callback, which grpc logs at ERROR."""
    import logging

    grpc_log = logging.getLogger("grpc._channel")
    hook.get_conn()  # installs the filter
    callback = "<function MetadataClientInterceptor.intercept.<locals>.<lambda> at 0x7f>"
    with caplog.at_level(logging.ERROR, logger="grpc._channel"):
        grpc_log.error("Exception in callback %s: %s", callback, "<NOT_FOUND branch master>")
        grpc_log.error("Exception in callback %s: %s", "<function other>", "<boom>")
    messages = [r.getMessage() for r in caplog.records]
    assert not any("MetadataClientInterceptor" in m for m in messages)
    assert any("<function other>" in m for m in messages)


def test_commit_or_branch_is_said_not_guessed(hook, unique_name):
    """The hook sends what it is told (a commit id, or a branch); pachd then reads the ref
    as pachd 2.12 does (CommitPicker.UnmarshalText, src/pfs/pfs.go): a commit-shaped ref
    is a commit id in either field, and no branch may be named like one
    (src/internal/pfsdb/branches.go), so the two can never be confused."""
    hook.ensure_repo(unique_name)
    commit = hook.put_file(unique_name, "/a", data="a")
    hook.put_file(unique_name, "/a", data="b")  # master moves on
    assert hook.read_file(unique_name, commit, "/a", ref_type="commit") == b"a"
    assert hook.inspect_commit(unique_name, "master", ref_type="branch")["id"] != commit
    assert hook.read_file(unique_name, "master", "/a", ref_type="branch") == b"b"
    # said as a branch, a commit id still names that commit: pachd reads it as one
    assert [f["path"] for f in hook.list_files(unique_name, commit, ref_type="branch")] == ["/a"]
    assert hook.read_file(unique_name, commit, "/a", ref_type="branch") == b"a"
    # a commit-shaped name that is no commit is not found, said either way
    missing = "0123456789ab4def0123456789abcdef"
    for ref_type in ("commit", "branch"):
        with pytest.raises(PachydermNotFound):
            hook.inspect_commit(unique_name, missing, ref_type=ref_type)
    with pytest.raises(ValueError, match="ref_type"):
        hook.inspect_commit(unique_name, commit, ref_type="tag")


async def test_address_is_looked_up_once(pachyderm_conn):
    hook = PachydermHook(pachyderm_conn)
    with mock.patch.object(
        PachydermHook, "get_connection", side_effect=AssertionError("looked up again")
    ):
        address = await hook.aget_address()
        assert hook.address is address
        assert await hook.aget_address() is address


def test_the_typed_shapes_name_exactly_the_keys_the_hook_builds(hook, unique_name):
    """commit_to_dict/job_to_dict and their TypedDicts cannot drift apart."""
    from typing import get_type_hints

    from cpsign_airflow.hooks import pachyderm_types as types

    hook.ensure_repo(unique_name)
    commit = hook.put_file(unique_name, "/a.txt", data=b"a")
    [info] = hook.inspect_commit_set(commit)
    assert set(info) == set(get_type_hints(types.CommitDict))
    required_job = {
        k for k in get_type_hints(types.JobDict) if k not in ("log_tail", "duration_seconds")
    }
    assert required_job == set(types.JobDict.__required_keys__)
