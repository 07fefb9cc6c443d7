"""Commit sets, ListJob's history and commit-shaped refs on the local pachd, as in pachd 2.12.

Each test names the file of pachd's source (branch 2.12.x) whose behaviour it compares
with; a real pachd 2.12 answered the same way (issue #23). Pipeline health (images
that cannot be pulled, missing commands) is in test_local_pachd_crashing.py.
"""

from __future__ import annotations

import json

import grpc
import pytest
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs, pps
from sdk_helpers import put, read, rpc_error

from cpsign_airflow.testing.pachd import LocalPachd


@pytest.fixture
def client(local_pachd: LocalPachd) -> Client:  # noqa: F811
    c = Client.from_pachd_address(local_pachd.address)
    c.pfs.create_repo(repo=pfs.Repo(name="data"))
    return c


def create(client: Client, name: str, repo: str = "data", *, update: bool = False, **extra):
    body = {
        "pipeline": {"name": name},
        "transform": {"cmd": ["sh", "-c", f"cp -r /pfs/{repo}/. /pfs/out/"]},
        "input": {"pfs": {"repo": repo, "glob": "/*"}},
        **extra,
    }
    client.pps.create_pipeline_v2(create_pipeline_request_json=json.dumps(body), update=update)
    return client.pps.inspect_pipeline(pipeline=pps.Pipeline(name=name)).spec_commit.id


def key(info: pfs.CommitInfo) -> tuple[str, str, str]:
    return (info.commit.repo.name, info.commit.repo.type, info.commit.id)


# ---------------------------------------------------------------- commit sets


def test_commit_sets_list_their_provenance_from_other_sets(client: Client) -> None:
    """src/server/pfs/server/server_commit_set.go (inspectCommitSetImmediateTx,
    TopologicalSort) and src/internal/pfsdb/commit_provenance.go (CommitSetProvenance):
    InspectCommitSet, with or without ``wait``, and ListCommitSet also list the commits
    of other sets in the set's provenance, each with its own id."""
    first_spec = create(client, "first")
    second_spec = create(client, "second", "first")
    commit = put(client, "data@master", {"/a": b"1"})
    waited = list(client.pfs.inspect_commit_set(commit_set=pfs.CommitSet(id=commit.id), wait=True))
    others = {key(i) for i in waited if i.commit.id != commit.id}
    assert others == {("first", "spec", first_spec), ("second", "spec", second_spec)}
    own = {(i.commit.repo.name, i.commit.repo.type) for i in waited if i.commit.id == commit.id}
    assert own == {
        ("data", "user"),
        ("first", "user"),
        ("first", "meta"),
        ("second", "user"),
        ("second", "meta"),
    }
    assert all(i.finished for i in waited)
    # topologically sorted: every commit after the commits in its provenance
    position = {key(i): n for n, i in enumerate(waited)}
    for info in waited:
        for prov in info.direct_provenance:
            assert position[(prov.repo.name, prov.repo.type, prov.id)] < position[key(info)]
    immediate = client.pfs.inspect_commit_set(commit_set=pfs.CommitSet(id=commit.id))
    assert {key(i) for i in immediate} == set(position)
    [listed] = [s for s in client.pfs.list_commit_set() if s.commit_set.id == commit.id]
    assert {key(i) for i in listed.commits} == set(position)


def test_a_pipeline_creation_set_lists_the_input_head_it_reads(client: Client) -> None:
    """src/internal/pfsdb/commit_provenance.go: CommitSetProvenance is transitive and
    takes any commit of another set, not only spec commits: the creation set of a
    pipeline lists the input commit its job reads, with that commit's own id."""
    data = put(client, "data@master", {"/a": b"1"})
    spec = create(client, "first")
    infos = list(client.pfs.inspect_commit_set(commit_set=pfs.CommitSet(id=spec), wait=True))
    assert ("data", "user", data.id) in {key(i) for i in infos}
    assert {key(i) for i in infos if i.commit.id == spec} == {
        ("first", "spec", spec),
        ("first", "user", spec),
        ("first", "meta", spec),
    }


def test_a_commit_picked_by_a_set_id_resolves_through_the_sets_provenance(
    client: Client,
) -> None:
    """src/server/pfs/server/server_commit.go (pickCommitTx): a repo without a commit
    in the set is answered with its commit in the set's provenance
    (pfsdb.ResolveCommitProvenance)."""
    spec = create(client, "first")
    commit = put(client, "data@master", {"/a": b"1"})
    picked = client.pfs.inspect_commit(
        commit=pfs.Commit(repo=pfs.Repo(name="first", type="spec"), id=commit.id)
    )
    assert picked.commit.id == spec
    unrelated = "0123456789ab4def0123456789abcdef"
    err = rpc_error(
        client.pfs.inspect_commit, commit=pfs.Commit(repo=pfs.Repo(name="data"), id=unrelated)
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND


# ---------------------------------------------------------------- ListJob history


def test_list_job_history_counts_pipeline_versions(client: Client) -> None:
    """src/server/pps/server/api_server.go (ListJob) and src/internal/ppsutil/util.go
    (ListPipelineInfo): ``history`` 0 lists the jobs of the current version only, N also
    those of the N versions before it, -1 those of every version."""
    create(client, "copy")  # version 1: its creation job
    put(client, "data@master", {"/a": b"1"})  # version 1: a second job
    create(client, "copy", update=True)  # version 2: the update's job
    pipeline = pps.Pipeline(name="copy")

    def versions(**kwargs) -> list[int]:
        infos = client.pps.list_job(pipeline=pipeline, **kwargs)
        return sorted(j.pipeline_version for j in infos)

    assert versions() == [2]  # where the local pachd listed 3 before
    assert versions(history=-1) == [1, 1, 2]
    assert versions(history=1) == [1, 1, 2]
    assert versions(history=5) == [1, 1, 2]
    create(client, "copy", update=True)  # version 3
    assert versions() == [3]
    assert versions(history=1) == [2, 3]
    assert versions(history=-1) == [1, 1, 2, 3]
    # without a pipeline: every pipeline's current version
    create(client, "other")
    assert sorted((j.job.pipeline.name, j.pipeline_version) for j in client.pps.list_job()) == [
        ("copy", 3),
        ("other", 1),
    ]


# ---------------------------------------------------------------- commit-shaped refs


def test_a_commit_shaped_ref_is_a_commit_id_whichever_field_it_comes_in(client: Client) -> None:
    """src/pfs/pfs.go (Commit.String, CommitPicker.UnmarshalText) as pickCommitTx
    (src/server/pfs/server/server_commit.go) uses them: pachd prints the handle as
    repo@ID (or repo@BRANCH without an ID) and parses it back; 32 hex digits with a 4
    as the 13th are a commit id, anything else a branch name."""
    commit = put(client, "data@master", {"/a": b"1"})
    put(client, "data@master", {"/a": b"2"})  # master moves on
    repo = pfs.Repo(name="data")
    as_branch = pfs.Commit(repo=repo, branch=pfs.Branch(repo=repo, name=commit.id))
    assert client.pfs.inspect_commit(commit=as_branch).commit.id == commit.id
    assert read(client, f"data@{commit.id.upper()}:/a") == b"1"  # either case
    # a branch name sent as a commit id names the branch's head
    head = client.pfs.inspect_commit(commit=pfs.Commit(repo=repo, id="master"))
    assert head.commit.id != commit.id and read(client, "data@master:/a") == b"2"
    # a commit-shaped name with no such commit is a missing commit, not a missing branch
    missing = "0123456789ab4def0123456789abcdef"
    err = rpc_error(
        client.pfs.inspect_commit,
        commit=pfs.Commit(repo=repo, branch=pfs.Branch(repo=repo, name=missing)),
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND and "commit default/data@" in err.details()


def test_a_branch_cannot_be_named_like_a_commit(client: Client) -> None:
    """src/internal/pfsdb/branches.go (UpsertBranch: "branch name cannot be a UUID V4",
    uuid.IsUUIDWithoutDashes), wrapped by src/server/pfs/server/server_branch.go
    (upsertBranchAndSyncCommit, createBranch) and server_commit.go (createCommitOnBranch,
    startCommit) and api_server.go (StartCommitInTransaction); a plain error: UNKNOWN."""
    name = "0123456789ab4def0123456789abcdef"
    repo = pfs.Repo(name="data")
    err = rpc_error(client.pfs.create_branch, branch=pfs.Branch(repo=repo, name=name))
    assert (err.code(), err.details()) == (
        grpc.StatusCode.UNKNOWN,
        "create branch: update head: branch name cannot be a UUID V4",
    )
    err = rpc_error(client.pfs.start_commit, branch=pfs.Branch(repo=repo, name=name))
    assert (err.code(), err.details()) == (
        grpc.StatusCode.UNKNOWN,
        "start commit in transaction: create commit: create commit: update head: "
        "branch name cannot be a UUID V4",
    )
    assert [b.branch.name for b in client.pfs.list_branch(repo=repo)] == []
    # 32 hex digits without the 4 are an ordinary branch name
    plain = "0" * 32
    client.pfs.create_branch(branch=pfs.Branch(repo=repo, name=plain))
    put(client, f"data@{plain}", {"/b": b"b"})
    assert read(client, f"data@{plain}:/b") == b"b"
