"""The asyncio path's fast decoder (hooks._wire) against betterproto's.

Every case decodes the *same bytes* both ways, betterproto (pachyderm-sdk's
classes, then ``commit_to_dict`` / ``job_to_dict``) and ``_wire``, and asserts
the dicts are equal, including their value types.
"""

from __future__ import annotations

import json
import random
import sys
from datetime import datetime, timedelta, timezone

import pytest
from google.protobuf import timestamp_pb2
from pachyderm_sdk.api import pfs, pps

from cpsign_airflow.hooks import _wire
from cpsign_airflow.hooks.pachyderm import (
    PachydermHook,
    aclose_shared_channels,
    commit_to_dict,
    job_to_dict,
)

UTC = timezone.utc
T0 = datetime(2025, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)


# ---------------------------------------------------------------- raw wire helpers


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field_bytes(number: int, payload: bytes) -> bytes:
    """A length-delimited field (appended to a message: overrides / adds to it)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def field_varint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def timestamp(seconds: int, nanos: int) -> bytes:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos).SerializeToString()


def typed(d: dict) -> dict:
    """Values with their types, so 1 == True or 0 == 0.0 cannot hide a difference."""
    return {k: (type(v).__name__, v) for k, v in d.items()}


def assert_commit_same(data: bytes) -> dict:
    slow = commit_to_dict(pfs.CommitInfo.FromString(data))
    fast = _wire.commit_info_to_dict(data)
    assert typed(fast) == typed(slow)
    return fast


def assert_job_same(data: bytes) -> dict:
    slow = job_to_dict(pps.JobInfo.FromString(data))
    fast = _wire.job_info_to_dict(data)
    assert typed(fast) == typed(slow)
    return fast


# ---------------------------------------------------------------- realistic messages


def repo(name: str, project: str = "default", repo_type: str = "user") -> pfs.Repo:
    return pfs.Repo(name=name, type=repo_type, project=pfs.Project(name=project))


def commit(name: str, cid: str, branch: str = "master", **kw) -> pfs.Commit:
    r = repo(name, **kw)
    return pfs.Commit(repo=r, id=cid, branch=pfs.Branch(repo=r, name=branch))


CID = "0123456789abcdef0123456789abcdef"


def finished_commit_info() -> pfs.CommitInfo:
    """As pachd sends a finished output commit: many fields the fast path skips."""
    return pfs.CommitInfo(
        commit=commit("train", CID),
        origin=pfs.CommitOrigin(kind=pfs.OriginKind.AUTO),
        description="training run 7",
        parent_commit=commit("train", "f" * 32),
        child_commits=[commit("train", "e" * 32)],
        started=T0,
        finishing=T0 + timedelta(seconds=3),
        finished=T0 + timedelta(seconds=3, microseconds=17),
        direct_provenance=[commit("config", CID), commit("train", CID, repo_type="spec")],
        direct_subvenance=[commit("predict", CID)],
        error="",
        size_bytes_upper_bound=123_456_789_012,
        details=pfs.CommitInfoDetails(size_bytes=123_456_789_012),
        metadata={"k": "v", "ü": "ß"},
        created_by="robot:airflow",
        created_at=T0,
        updated_at=T0 + timedelta(seconds=3),
    )


COMMIT_CASES = {
    "finished output commit": finished_commit_info(),
    "open commit (no finished)": pfs.CommitInfo(
        commit=commit("config", CID),
        origin=pfs.CommitOrigin(kind=pfs.OriginKind.USER),
        description="[cpsign-airflow key=abc sha256=def]",
        started=T0,
    ),
    "failed commit with error": pfs.CommitInfo(
        commit=commit("predict", CID, project="lab-x"),
        origin=pfs.CommitOrigin(kind=pfs.OriginKind.AUTO),
        started=T0,
        finished=T0,
        error="datum failed: exit code 1\nstack…",
    ),
    "spec repo commit": pfs.CommitInfo(
        commit=commit("train", CID, repo_type="spec"),
        origin=pfs.CommitOrigin(kind=pfs.OriginKind.AUTO),
        started=T0,
        finished=T0,
    ),
    "no project, no branch, no origin": pfs.CommitInfo(
        commit=pfs.Commit(repo=pfs.Repo(name="r"), id=CID), started=T0
    ),
    "origin FSCK, epoch started": pfs.CommitInfo(
        commit=commit("r", CID), origin=pfs.CommitOrigin(kind=pfs.OriginKind.FSCK)
    ),
    "empty message": pfs.CommitInfo(),
}

JOB_CASES = {
    "succeeded job": pps.JobInfo(
        job=pps.Job(
            pipeline=pps.Pipeline(name="train", project=pfs.Project(name="default")), id=CID
        ),
        pipeline_version=3,
        output_commit=commit("train", CID),
        restart=1,
        data_processed=10,
        data_skipped=2,
        data_total=13,
        data_failed=1,
        data_recovered=0,
        stats=pps.ProcessStats(download_bytes=5, upload_bytes=7),
        state=pps.JobState.JOB_SUCCESS,
        reason="",
        created=T0,
        started=T0 + timedelta(seconds=1),
        finished=T0 + timedelta(seconds=9, microseconds=999_999),
        details=pps.JobInfoDetails(
            transform=pps.Transform(image="cpsign", cmd=["java", "-jar", "cpsign.jar"]),
            salt="s",
            datum_tries=3,
        ),
        auth_token="secret",
    ),
    "failed job with reason": pps.JobInfo(
        job=pps.Job(pipeline=pps.Pipeline(name="predict", project=pfs.Project(name="lab")), id=CID),
        pipeline_version=1,
        output_commit=commit("predict", CID, project="lab"),
        data_failed=4,
        data_total=4,
        state=pps.JobState.JOB_FAILURE,
        reason="datum failed",
        created=T0,
        started=T0,
        finished=T0,
    ),
    "created job (unset started/finished)": pps.JobInfo(
        job=pps.Job(pipeline=pps.Pipeline(name="train"), id=CID),
        output_commit=commit("train", CID),
        state=pps.JobState.JOB_CREATED,
        created=T0,
    ),
    "unrunnable job, no output commit": pps.JobInfo(
        job=pps.Job(pipeline=pps.Pipeline(name="b"), id=CID),
        state=pps.JobState.JOB_UNRUNNABLE,
        reason="unrunnable because the following upstream pipelines failed: a",
    ),
    "state unknown (0)": pps.JobInfo(job=pps.Job(pipeline=pps.Pipeline(name="x"), id=CID)),
    "empty message": pps.JobInfo(),
}


@pytest.mark.parametrize("case", list(COMMIT_CASES))
def test_commit_info_realistic(case):
    assert_commit_same(bytes(COMMIT_CASES[case]))


@pytest.mark.parametrize("case", list(JOB_CASES))
def test_job_info_realistic(case):
    assert_job_same(bytes(JOB_CASES[case]))


def test_realistic_values_are_what_they_should_be():
    """Guards the test itself: the shared expectation is not trivially empty."""
    got = assert_commit_same(bytes(COMMIT_CASES["finished output commit"]))
    assert got == {
        "project": "default",
        "repo": "train",
        "repo_type": "user",
        "branch": "master",
        "id": CID,
        "origin": "AUTO",
        "description": "training run 7",
        "started": "2025-03-14T09:26:53.589793+00:00",
        "finished": "2025-03-14T09:26:56.589810+00:00",
        "error": None,
        "size_bytes": 123_456_789_012,
    }
    job = assert_job_same(bytes(JOB_CASES["created job (unset started/finished)"]))
    assert (job["state"], job["started"], job["finished"], job["output_commit"]) == (
        "JOB_CREATED",
        None,
        None,
        CID,
    )
    assert job["project"] == "default"


# ---------------------------------------------------------------- wire edge cases


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [
        (0, 0),  # present but zero: the epoch, rendered as unset
        (0, 400),  # rounds to the epoch
        (0, 500),  # half a microsecond (round-half-even in fromtimestamp)
        (0, 1500),
        (1, 0),
        (-1, 0),  # before 1970
        (-86_400 * 365, 999_999_999),
        (1_741_944_413, 589_793_499),
        (1_741_944_413, 589_793_500),
        (1_741_944_413, 999_999_999),  # float rounding carries into the next second
        (4_102_444_800, 1),  # 2100
    ],
)
def test_timestamps(seconds, nanos):
    base = bytes(pfs.CommitInfo(commit=commit("r", CID)))
    assert_commit_same(base + field_bytes(6, timestamp(seconds, nanos)))
    assert_commit_same(base + field_bytes(8, timestamp(seconds, nanos)))
    job = bytes(pps.JobInfo(job=pps.Job(pipeline=pps.Pipeline(name="p"), id=CID)))
    for number in (13, 14, 15):
        assert_job_same(job + field_bytes(number, timestamp(seconds, nanos)))


@pytest.mark.parametrize("value", [0, 1, 2, 3, 4, 9, 42, 2**31, -1])
def test_enum_values_known_unknown_and_negative(value):
    origin = field_varint(1, value)
    got = assert_commit_same(
        bytes(pfs.CommitInfo(commit=commit("r", CID))) + field_bytes(2, origin)
    )
    job = assert_job_same(bytes(pps.JobInfo()) + field_varint(11, value))
    if value == -1:  # betterproto keeps the raw varint; so does _wire
        assert job["state"] == str(2**64 - 1)
    elif value == 42:
        assert (got["origin"], job["state"]) == ("42", "42")


@pytest.mark.parametrize(
    "output_commit",
    [
        b"",  # present, empty: betterproto's bool() is False -> None
        field_bytes(3, b""),  # repo present but empty -> still all default -> None
        # pachyderm-sdk's Repo() is type "user", project "default": these equal it ...
        field_bytes(3, field_bytes(2, b"user") + field_bytes(3, field_bytes(1, b"default"))),
        field_bytes(1, field_bytes(1, field_bytes(2, b"user"))),  # branch.repo
        field_bytes(1, b""),  # branch present, empty
        # ... and these do not
        field_bytes(3, field_bytes(3, b"")),  # repo.project present, empty
        field_bytes(3, field_bytes(2, b"")),  # repo.type sent as ""
        field_bytes(3, field_bytes(2, b"spec")),
        field_bytes(3, field_bytes(3, field_bytes(1, b"lab"))),
        field_bytes(1, field_bytes(1, field_bytes(3, b""))),  # branch.repo.project empty
        field_bytes(3, field_bytes(1, b"r")),  # repo named, no id -> ""
        field_bytes(1, field_bytes(2, b"master")),  # only a branch name -> ""
        field_bytes(2, CID.encode()),
    ],
)
def test_job_output_commit_presence(output_commit):
    data = bytes(pps.JobInfo(job=pps.Job(pipeline=pps.Pipeline(name="p"), id=CID)))
    assert_job_same(data + field_bytes(3, output_commit))


def test_int64_extremes_and_uint64_version():
    data = bytes(
        pps.JobInfo(
            data_processed=2**63 - 1,
            data_skipped=-(2**63),
            data_total=-1,
            data_failed=1,
            data_recovered=2**40,
            pipeline_version=2**64 - 1,
        )
    )
    assert_job_same(data)
    assert_commit_same(bytes(pfs.CommitInfo(size_bytes_upper_bound=-(2**63))))


def test_unknown_fields_are_skipped():
    """Fields pachd may add later (any wire type) do not disturb either decoder."""
    extra = (
        field_varint(99, 7)
        + field_bytes(100, b"\x08\x01")
        + _varint(101 << 3 | 1)
        + b"\x00" * 8  # fixed64
        + _varint(102 << 3 | 5)
        + b"\x00" * 4  # fixed32
    )
    assert_commit_same(bytes(finished_commit_info()) + extra)
    assert_job_same(bytes(JOB_CASES["succeeded job"]) + extra)


# ---------------------------------------------------------------- property style


def _text(rng: random.Random) -> str:
    alphabet = "abcXYZ019-_ üß€\n\"'\\\x00" + chr(0x1F600)
    return "".join(rng.choice(alphabet) for _ in range(rng.choice([0, 0, 1, 5, 40])))


def _int64(rng: random.Random) -> int:
    return rng.choice([0, 0, 1, -1, 2**63 - 1, -(2**63), rng.randint(-(2**40), 2**40)])


def _when(rng: random.Random) -> datetime | None:
    if rng.random() < 0.25:
        return None
    seconds = rng.randint(-(2**31), 2**32)
    return datetime.fromtimestamp(seconds, tz=UTC) + timedelta(microseconds=rng.randrange(10**6))


def _commit(rng: random.Random) -> pfs.Commit | None:
    if rng.random() < 0.15:
        return None
    r = pfs.Repo(
        name=_text(rng),
        type=rng.choice(["", "user", "spec", "meta", _text(rng)]),
        project=pfs.Project(name=rng.choice(["", "default", _text(rng)])),
    )
    branch = pfs.Branch(repo=r, name=_text(rng)) if rng.random() < 0.7 else None
    return pfs.Commit(repo=r, id=rng.choice(["", CID, _text(rng)]), branch=branch)


def _maybe(rng: random.Random, **fields):
    return {k: v for k, v in fields.items() if v is not None and rng.random() < 0.85}


def _raw_timestamps(rng: random.Random, fields: dict[str, int]) -> dict[str, bytes]:
    """Raw timestamps with arbitrary nanos (betterproto's datetimes only carry micros).

    Keyed by field name; such a field must not also be set on the message: a
    repeated message field merges in protobuf but replaces in betterproto, and
    pachd (Go protobuf) never repeats one.
    """
    raw = {}
    for name, number in fields.items():
        if rng.random() < 0.3:
            seconds = rng.choice([0, -1, rng.randint(-(2**33), 2**33)])
            nanos = rng.choice([0, 1, 499, 500, 999_999_999, rng.randrange(10**9)])
            raw[name] = field_bytes(number, timestamp(seconds, nanos))
    return raw


@pytest.mark.parametrize("seed", range(20))
def test_random_commit_infos(seed):
    rng = random.Random(seed)
    for _ in range(50):
        raw = _raw_timestamps(rng, {"started": 6, "finished": 8})
        info = pfs.CommitInfo(
            **_maybe(
                rng,
                commit=_commit(rng),
                origin=pfs.CommitOrigin(kind=rng.choice(list(pfs.OriginKind))),
                description=_text(rng),
                parent_commit=_commit(rng),
                child_commits=[c for c in (_commit(rng), _commit(rng)) if c],
                started=None if "started" in raw else _when(rng),
                finishing=_when(rng),
                finished=None if "finished" in raw else _when(rng),
                error=_text(rng),
                size_bytes_upper_bound=_int64(rng),
                metadata={_text(rng): _text(rng)},
                created_by=_text(rng),
                created_at=_when(rng),
            )
        )
        assert_commit_same(bytes(info) + b"".join(raw.values()))


@pytest.mark.parametrize("seed", range(20))
def test_random_job_infos(seed):
    rng = random.Random(1000 + seed)
    for _ in range(50):
        raw = _raw_timestamps(rng, {"created": 13, "started": 14, "finished": 15})
        pipeline = pps.Pipeline(
            name=_text(rng), project=pfs.Project(name=rng.choice(["", "default", _text(rng)]))
        )
        info = pps.JobInfo(
            **_maybe(
                rng,
                job=pps.Job(pipeline=pipeline, id=rng.choice([CID, "", _text(rng)])),
                pipeline_version=rng.choice([0, 1, 7, 2**64 - 1]),
                output_commit=_commit(rng),
                restart=rng.randint(0, 5),
                data_processed=_int64(rng),
                data_skipped=_int64(rng),
                data_total=_int64(rng),
                data_failed=_int64(rng),
                data_recovered=_int64(rng),
                state=rng.choice(list(pps.JobState)),
                reason=_text(rng),
                created=None if "created" in raw else _when(rng),
                started=None if "started" in raw else _when(rng),
                finished=None if "finished" in raw else _when(rng),
                auth_token=_text(rng),
            )
        )
        assert_job_same(bytes(info) + b"".join(raw.values()))


# ---------------------------------------------------------------- live, from a pachd


async def test_async_path_matches_sync_path(pachyderm_conn, unique_name):
    """The trigger's decoding of a real commit set equals the sync (betterproto) hook's."""
    hook = PachydermHook(pachyderm_conn, retry_backoff=0.01)
    try:
        hook.ensure_repo(f"{unique_name}-in")
        hook.create_or_update_pipeline(
            {
                "pipeline": {"name": unique_name},
                "input": {"pfs": {"repo": f"{unique_name}-in", "glob": "/*"}},
                "transform": {"image": "busybox", "cmd": ["sh", "-c", "true"]},
            }
        )
        cid = hook.put_file(f"{unique_name}-in", "/c.json", data=json.dumps({"a": 1}))
        sync_commits = hook.wait_commit_set(cid, timeout=30)
        sync_jobs = hook.list_jobs(cid)
        async with hook.async_session() as session:
            async_commits = [c async for c in session.wait_commit_set(cid)]
            async_jobs = await session.list_jobs(cid)
        await aclose_shared_channels()
        assert [typed(c) for c in async_commits] == [typed(c) for c in sync_commits]
        assert [typed(j) for j in async_jobs] == [typed(j) for j in sync_jobs]
        assert sync_jobs and sync_jobs[0]["state"] == "JOB_SUCCESS"
    finally:
        hook.close()


def test_hook_import_does_not_import_protobuf_decoder():
    """google.protobuf is loaded on first use of the async path, not by importing the hook."""
    import subprocess

    code = (
        "import sys; import cpsign_airflow.hooks.pachyderm; "
        "print('cpsign_airflow.hooks._wire' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
