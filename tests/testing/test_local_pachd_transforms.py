"""The local pachd running transforms per datum, observed only through ``pachyderm_sdk.Client``.

Each pipeline's ``transform.cmd`` runs as a local process once per datum, with the datum's
files at ``/pfs/<input>/...`` and ``/pfs/out`` collected as its output. The expectations are
pachd 2.12's: datum ids (recomputed here with BLAKE2b-256), globs, cross/union/join/group,
the worker's environment, secrets, per-datum logs, retries and failures, parallelism,
skipping and the merging of datums' outputs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs, pps

from cpsign_airflow.testing.pachd import LocalPachd

JS = pps.JobState


@pytest.fixture
def client(local_pachd: LocalPachd) -> Client:  # noqa: F811
    return Client.from_pachd_address(local_pachd.address)


# ------------------------------------------------------------------ helpers
def datum_id(*inputs: tuple[str, str, str, str]) -> str:
    """pachd's DatumID, recomputed: BLAKE2b-256 over each input's (name, repo, branch, path),
    each value followed by its length as an 8-byte big-endian integer."""
    h = hashlib.blake2b(digest_size=32)
    for values in inputs:
        for value in values:
            data = value.encode()
            h.update(data)
            h.update(len(data).to_bytes(8, "big"))
    return h.hexdigest()


def put(client: Client, repo: str, files: dict[str, bytes], delete: tuple[str, ...] = ()) -> str:
    with client.pfs.commit(branch=pfs.Branch.from_uri(f"{repo}@master")) as commit:
        for path in delete:
            commit.delete_file(path=path)
        for path, data in files.items():
            commit.put_file_from_bytes(path, data)
    return commit.id


def spec(name: str, input_: dict, lines: list[str] | None = None, **extra) -> dict:
    transform = extra.pop("transform", {"cmd": ["bash"], "stdin": ["set -e", *(lines or [])]})
    return {"pipeline": {"name": name}, "transform": transform, "input": input_, **extra}


def create(client: Client, pipeline_spec: dict, **kwargs) -> str:
    """Create (or update) a pipeline; returns the id of the job that creation starts."""
    client.pps.create_pipeline_v2(create_pipeline_request_json=json.dumps(pipeline_spec), **kwargs)
    name = pipeline_spec["pipeline"]["name"]
    return client.pps.inspect_pipeline(pipeline=pps.Pipeline(name=name)).spec_commit.id


def pfs_input(repo: str, glob: str = "/*", **extra) -> dict:
    return {"pfs": {"repo": repo, "glob": glob, **extra}}


def wait(client: Client, job_set: str) -> dict[str, pps.JobInfo]:
    jobs = client.pps.inspect_job_set(job_set=pps.JobSet(id=job_set), wait=True)
    return {j.job.pipeline.name: j for j in jobs}


def job_of(pipeline: str, job_id: str) -> pps.Job:
    return pps.Job(pipeline=pps.Pipeline(name=pipeline), id=job_id)


def logs(client: Client, pipeline: str, job_id: str) -> list[pps.LogMessage]:
    return list(client.pps.get_logs(job=job_of(pipeline, job_id)))


def lines_by_datum(messages: list[pps.LogMessage]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for message in messages:
        result.setdefault(message.datum_id, []).append(message.message)
    return result


def outputs(client: Client, repo: str, commit_id: str) -> dict[str, bytes]:
    """Every file of a commit, path -> contents."""
    root = pfs.File(commit=pfs.Commit(repo=pfs.Repo(name=repo), id=commit_id), path="/")
    return {
        info.file.path: b"".join(m.value for m in client.pfs.get_file(file=info.file))
        for info in client.pfs.walk_file(file=root)
        if info.file_type == pfs.FileType.FILE
    }


def succeeded(job: pps.JobInfo) -> pps.JobInfo:
    assert (job.state, job.reason) == (JS.JOB_SUCCESS, "")
    return job


# -------------------------------------------------------------- datum ids
def test_datum_ids_are_pachds_in_env_and_logs(client: Client) -> None:
    client.pfs.create_repo(repo=pfs.Repo(name="data"))
    put(client, "data", {"/a.txt": b"a", "/dir/b.txt": b"b"})
    job_id = create(client, spec("ids", pfs_input("data"), ['echo "id=$PACH_DATUM_ID"']))
    job = succeeded(wait(client, job_id)["ids"])
    expected = {
        datum_id(("data", "data", "master", "/a.txt")),
        datum_id(("data", "data", "master", "/dir/")),  # a directory match ends in "/"
    }
    assert (job.data_total, job.data_processed) == (2, 2)
    by_datum = lines_by_datum(logs(client, "ids", job_id))
    assert set(by_datum) == expected
    for id_, lines in by_datum.items():
        assert lines == [f"id={id_}"]  # $PACH_DATUM_ID is the id GetLogs reports


def test_datum_id_covers_input_name_and_branch(client: Client) -> None:
    client.pfs.create_repo(repo=pfs.Repo(name="data"))
    put(client, "data", {"/a.txt": b"a"})
    with client.pfs.commit(branch=pfs.Branch.from_uri("data@dev")) as commit:
        commit.put_file_from_bytes("/a.txt", b"a")
    job_id = create(
        client,
        spec("named", pfs_input("data", name="renamed", branch="dev"), ["echo $PACH_DATUM_ID"]),
    )
    succeeded(wait(client, job_id)["named"])
    [message] = logs(client, "named", job_id)
    assert message.datum_id == message.message == datum_id(("renamed", "data", "dev", "/a.txt"))


# ------------------------------------------------------------------ globs
GLOB_FILES = {"/a.txt": b"a", "/dir/b.txt": b"b", "/dir/sub/c.txt": b"c"}
GLOB_CASES = {
    "/": {"/": ("/pfs/data", "a.txt dir/b.txt dir/sub/c.txt")},
    "/*": {
        "/a.txt": ("/pfs/data/a.txt", "a.txt"),
        "/dir/": ("/pfs/data/dir", "dir/b.txt dir/sub/c.txt"),
    },
    "/dir/*": {
        "/dir/b.txt": ("/pfs/data/dir/b.txt", "dir/b.txt"),
        "/dir/sub/": ("/pfs/data/dir/sub", "dir/sub/c.txt"),
    },
    "/**": {
        "/a.txt": ("/pfs/data/a.txt", "a.txt"),
        "/dir/": ("/pfs/data/dir", "dir/b.txt dir/sub/c.txt"),
        "/dir/b.txt": ("/pfs/data/dir/b.txt", "dir/b.txt"),
        "/dir/sub/": ("/pfs/data/dir/sub", "dir/sub/c.txt"),
        "/dir/sub/c.txt": ("/pfs/data/dir/sub/c.txt", "dir/sub/c.txt"),
    },
}


@pytest.mark.parametrize("glob", list(GLOB_CASES))
def test_glob_datums_see_only_their_files(client: Client, glob: str) -> None:
    client.pfs.create_repo(repo=pfs.Repo(name="data"))
    put(client, "data", GLOB_FILES)
    lines = ['cd /pfs/data && echo "$data|$(find . -type f | sed s,^./,, | sort | xargs)"']
    job_id = create(client, spec("globbed", pfs_input("data", glob), lines))
    job = succeeded(wait(client, job_id)["globbed"])
    expected = {
        datum_id(("data", "data", "master", path)): [f"{env}|{files}"]
        for path, (env, files) in GLOB_CASES[glob].items()
    }
    assert (job.data_total, job.data_processed) == (len(expected), len(expected))
    assert lines_by_datum(logs(client, "globbed", job_id)) == expected


def test_empty_commit_yields_no_datums(client: Client, tmp_path: Path) -> None:
    client.pfs.create_repo(repo=pfs.Repo(name="data"))
    marker = tmp_path / "ran"
    lines = [f"touch {marker}", "echo x > /pfs/out/x"]
    creation = create(client, spec("empty", pfs_input("data", "/"), lines))
    with client.pfs.commit(branch=pfs.Branch.from_uri("data@master")) as commit:
        pass  # an explicitly empty commit
    for job_id in (creation, commit.id):
        job = succeeded(wait(client, job_id)["empty"])
        assert (job.data_total, job.data_processed, job.data_skipped) == (0, 0, 0)
        assert outputs(client, "empty", job_id) == {}
    assert not marker.exists()


# --------------------------------------------------------- compound inputs
def test_cross_is_a_product_with_inputs_sorted_by_name(client: Client) -> None:
    for repo, files in (("r1", ["/1", "/2"]), ("r2", ["/x", "/y", "/z"])):
        client.pfs.create_repo(repo=pfs.Repo(name=repo))
        put(client, repo, {f: f.encode() for f in files})
    cross = {"cross": [pfs_input("r1", name="zeta"), pfs_input("r2", name="alpha")]}
    job_id = create(client, spec("crossed", cross, ['echo "$alpha $zeta"']))
    job = succeeded(wait(client, job_id)["crossed"])
    assert (job.data_total, job.data_processed) == (6, 6)
    expected = {
        # the children are sorted by input name: alpha (r2) before zeta (r1)
        datum_id(("alpha", "r2", "master", y), ("zeta", "r1", "master", n)): [
            f"/pfs/alpha{y} /pfs/zeta{n}"
        ]
        for n in ("/1", "/2")
        for y in ("/x", "/y", "/z")
    }
    assert lines_by_datum(logs(client, "crossed", job_id)) == expected


def test_union_concatenates_its_inputs_datums(client: Client) -> None:
    for repo, files in (("r1", ["/1", "/2"]), ("r2", ["/x"])):
        client.pfs.create_repo(repo=pfs.Repo(name=repo))
        put(client, repo, {f: f.encode() for f in files})
    union = {"union": [pfs_input("r2"), pfs_input("r1")]}
    job_id = create(client, spec("unioned", union, ['echo "${r1-unset} ${r2-unset}"']))
    job = succeeded(wait(client, job_id)["unioned"])
    assert (job.data_total, job.data_processed) == (3, 3)
    assert lines_by_datum(logs(client, "unioned", job_id)) == {
        datum_id(("r1", "r1", "master", "/1")): ["/pfs/r1/1 unset"],
        datum_id(("r1", "r1", "master", "/2")): ["/pfs/r1/2 unset"],
        datum_id(("r2", "r2", "master", "/x")): ["unset /pfs/r2/x"],
    }


JOIN_LINES = [
    'echo "${PACH_DATUM_left_JOIN_ON-} ${PACH_DATUM_right_JOIN_ON-}'
    ' $(cd /pfs && find left right -type f 2>/dev/null | sort | xargs)"'
]


def _join_repos(client: Client) -> None:
    client.pfs.create_repo(repo=pfs.Repo(name="left"))
    client.pfs.create_repo(repo=pfs.Repo(name="right"))
    put(client, "left", {"/1.txt": b"", "/2.txt": b"", "/3.txt": b""})
    put(client, "right", {"/1.csv": b"", "/2.csv": b"", "/4.csv": b""})


@pytest.mark.parametrize("outer", [False, True])
def test_join_on_capture_groups(client: Client, outer: bool) -> None:
    _join_repos(client)
    # pachd's globs capture with parentheses (ohmyglob): "$1" is the first "(...)"
    join = {
        "join": [
            pfs_input("right", "/(*).csv", join_on="$1", outer_join=outer),
            pfs_input("left", "/(*).txt", join_on="$1"),
        ]
    }
    job_id = create(client, spec("joined", join, JOIN_LINES))
    job = succeeded(wait(client, job_id)["joined"])

    def both(key: str) -> tuple[str, list[str]]:
        id_ = datum_id(
            ("left", "left", "master", f"/{key}.txt"), ("right", "right", "master", f"/{key}.csv")
        )
        return id_, [f"{key} {key} left/{key}.txt right/{key}.csv"]

    expected = dict([both("1"), both("2")])
    if outer:  # right's unmatched key 4 is kept; left's 3 is not (left is not outer)
        expected[datum_id(("right", "right", "master", "/4.csv"))] = [" 4 right/4.csv"]
    assert job.data_total == len(expected)
    assert lines_by_datum(logs(client, "joined", job_id)) == expected


def test_join_key_is_the_capture_group_not_every_wildcard(client: Client) -> None:
    client.pfs.create_repo(repo=pfs.Repo(name="left"))
    client.pfs.create_repo(repo=pfs.Repo(name="right"))
    put(client, "left", {"/a/k1.txt": b"", "/b/k2.txt": b""})
    put(client, "right", {"/k1.csv": b"", "/k2.csv": b""})
    join = {
        "join": [
            pfs_input("left", "/*/(*).txt", join_on="$1"),
            pfs_input("right", "/(*).csv", join_on="$1"),
        ]
    }
    job_id = create(client, spec("joined", join, JOIN_LINES))
    job = succeeded(wait(client, job_id)["joined"])
    assert job.data_total == 2
    assert sorted(m.message for m in logs(client, "joined", job_id)) == [
        "k1 k1 left/a/k1.txt right/k1.csv",
        "k2 k2 left/b/k2.txt right/k2.csv",
    ]


def test_group_by_gathers_matches_across_inputs(client: Client) -> None:
    client.pfs.create_repo(repo=pfs.Repo(name="g"))
    client.pfs.create_repo(repo=pfs.Repo(name="h"))
    put(client, "g", {"/a-1.txt": b"", "/a-2.txt": b"", "/b-1.txt": b""})
    put(client, "h", {"/a.dat": b""})
    group = {
        "group": [
            pfs_input("h", "/(*).dat", group_by="$1"),
            pfs_input("g", "/(*)-*.txt", group_by="$1"),
        ]
    }
    lines = [
        'echo "${PACH_DATUM_g_GROUP_BY-} ${PACH_DATUM_h_GROUP_BY-}'
        ' $(cd /pfs && find g h -type f 2>/dev/null | sort | xargs)"'
    ]
    job_id = create(client, spec("grouped", group, lines))
    job = succeeded(wait(client, job_id)["grouped"])
    a = datum_id(
        ("g", "g", "master", "/a-1.txt"),
        ("g", "g", "master", "/a-2.txt"),
        ("h", "h", "master", "/a.dat"),
    )
    b = datum_id(("g", "g", "master", "/b-1.txt"))
    assert job.data_total == 2
    assert lines_by_datum(logs(client, "grouped", job_id)) == {
        a: ["a a g/a-1.txt g/a-2.txt h/a.dat"],
        b: ["b  g/b-1.txt"],
    }


# ------------------------------------------------------ environment, secrets
ENV_KEYS = [
    "data",
    "data_COMMIT",
    "PACH_DATUM_ID",
    "PACH_JOB_ID",
    "PACH_OUTPUT_COMMIT_ID",
    "PPS_PIPELINE_NAME",
    "PPS_PROJECT_NAME",
    "PPS_SPEC_COMMIT",
    "PACH_IN_WORKER",
    "GREETING",
]
DUMP_ENV = (
    "import json, os\n"
    f"env = {{k: os.environ.get(k) for k in {ENV_KEYS!r}}}\n"
    "env['cwd'] = os.getcwd()\n"
    "open('/pfs/out/env.json', 'w').write(json.dumps(env))\n"
)


def test_worker_environment_and_working_dir(client: Client, tmp_path: Path) -> None:
    client.pfs.create_repo(repo=pfs.Repo(name="data"))
    pipeline_spec = spec(
        "envy",
        pfs_input("data"),
        transform={
            "cmd": ["python3", "-c", DUMP_ENV],
            "env": {"GREETING": "hej"},
            "working_dir": str(tmp_path),
        },
    )
    create(client, pipeline_spec)
    commit_id = put(client, "data", {"/a.txt": b"a"})
    job = succeeded(wait(client, commit_id)["envy"])
    spec_commit = client.pps.inspect_pipeline(pipeline=pps.Pipeline(name="envy")).spec_commit
    env = json.loads(outputs(client, "envy", commit_id)["/env.json"])
    assert env == {
        "data": "/pfs/data/a.txt",
        "data_COMMIT": commit_id,
        "PACH_DATUM_ID": datum_id(("data", "data", "master", "/a.txt")),
        "PACH_JOB_ID": commit_id,
        "PACH_OUTPUT_COMMIT_ID": job.output_commit.id,
        "PPS_PIPELINE_NAME": "envy",
        "PPS_PROJECT_NAME": "default",
        "PPS_SPEC_COMMIT": spec_commit.id,
        "PACH_IN_WORKER": "true",
        "GREETING": "hej",
        "cwd": str(tmp_path),
    }


def test_secrets_as_env_var_and_mounted_files(client: Client) -> None:
    # the SDK sends CreateSecret a Kubernetes Secret manifest, values base64 under "data"
    client.pps.create_secret(name="creds", data={"token": b"s3cr3t", "user": "alice"})
    client.pfs.create_repo(repo=pfs.Repo(name="data"))
    put(client, "data", {"/a": b""})
    pipeline_spec = spec(
        "secretive",
        pfs_input("data"),
        transform={
            "cmd": ["bash"],
            "stdin": [
                "set -e",
                'echo "$TOKEN" > /pfs/out/env',
                "cat /etc/creds/user /etc/creds/token > /pfs/out/files",
            ],
            "secrets": [
                {"name": "creds", "env_var": "TOKEN", "key": "token"},
                {"name": "creds", "mount_path": "/etc/creds"},
            ],
        },
    )
    job_id = create(client, pipeline_spec)
    succeeded(wait(client, job_id)["secretive"])
    assert outputs(client, "secretive", job_id) == {"/env": b"s3cr3t\n", "/files": b"alices3cr3t"}
    assert not Path("/etc/creds").exists()  # mounted in the datum's namespace only


# ------------------------------------------------------------------- logs
def test_stdout_and_stderr_are_logged_per_datum(client: Client) -> None:
    client.pfs.create_repo(repo=pfs.Repo(name="data"))
    put(client, "data", {"/a": b"", "/b": b""})
    lines = ['name=$(basename "$data")', 'echo "out $name"', 'echo "err $name" >&2']
    job_id = create(client, spec("chatty", pfs_input("data"), lines))
    succeeded(wait(client, job_id)["chatty"])
    a = datum_id(("data", "data", "master", "/a"))
    b = datum_id(("data", "data", "master", "/b"))
    assert lines_by_datum(logs(client, "chatty", job_id)) == {
        a: ["out a", "err a"],
        b: ["out b", "err b"],
    }
    only_b = client.pps.get_logs(datum=pps.Datum(id=b, job=job_of("chatty", job_id)))
    assert [(m.datum_id, m.message, m.job_id) for m in only_b] == [
        (b, "out b", job_id),
        (b, "err b", job_id),
    ]


# ------------------------------------------------------- failures, retries
@pytest.mark.parametrize("datum_tries", [None, 2])
def test_failing_datum_is_retried_then_fails_job_and_downstream(
    client: Client, tmp_path: Path, datum_tries: int | None
) -> None:
    client.pfs.create_repo(repo=pfs.Repo(name="data"))
    lines = [
        'name=$(basename "$data")',
        f'echo try >> {tmp_path}/tries-"$name"',
        'echo "$name" > /pfs/out/"$name"',
        'if [ "$name" = bad ]; then echo "giving up" >&2; exit 3; fi',
    ]
    extra = {} if datum_tries is None else {"datum_tries": datum_tries}
    create(client, spec("first", pfs_input("data"), lines, **extra))
    create(client, spec("second", pfs_input("first", "/"), ["true"]))
    commit_id = put(client, "data", {"/bad": b"", "/good": b""})
    jobs = wait(client, commit_id)
    bad = datum_id(("data", "data", "master", "/bad"))
    assert (jobs["first"].state, jobs["first"].reason) == (JS.JOB_FAILURE, f"datum {bad} failed")
    assert jobs["first"].data_failed == 1
    assert (jobs["second"].state, jobs["second"].reason) == (
        JS.JOB_UNRUNNABLE,
        "unrunnable because the following upstream pipelines failed: first",
    )
    tries = datum_tries or 3
    assert (tmp_path / "tries-bad").read_text() == "try\n" * tries
    assert lines_by_datum(logs(client, "first", commit_id))[bad].count("giving up") == tries
    for repo in (pfs.Repo(name="first"), pfs.Repo(name="first", type="meta")):
        info = client.pfs.inspect_commit(commit=pfs.Commit(repo=repo, id=commit_id))
        assert (info.finished is not None, info.error) == (True, f"datum {bad} failed")


# ------------------------------------------------------------ parallelism
def _rendezvous(directory: Path, wanted: int, seconds: int) -> list[str]:
    """Each datum leaves a marker, then waits (bounded) until ``wanted`` markers exist."""
    return [
        f'touch {directory}/"$(basename "$data")"',
        f"for i in $(seq {seconds * 10}); do",
        f"  [ $(ls {directory} | wc -l) -ge {wanted} ] && exit 0",
        "  sleep 0.1",
        "done",
        "exit 1",
    ]


@pytest.mark.parametrize(("constant", "expected"), [(2, JS.JOB_SUCCESS), (1, JS.JOB_FAILURE)])
def test_parallelism_runs_datums_concurrently(
    client: Client, tmp_path: Path, constant: int, expected: pps.JobState
) -> None:
    client.pfs.create_repo(repo=pfs.Repo(name="data"))
    put(client, "data", {"/a": b"", "/b": b""})
    # with one worker the first datum can never see the second's marker: a short bound suffices
    lines = _rendezvous(tmp_path, 2, 20 if constant == 2 else 1)
    pipeline_spec = spec(
        "parallel",
        pfs_input("data"),
        lines,
        parallelism_spec={"constant": constant},
        datum_tries=1,
    )
    job_id = create(client, pipeline_spec)
    assert wait(client, job_id)["parallel"].state == expected


# --------------------------------------------------------------- skipping
SKIP_LINES = [
    'name=$(basename "$data")',
    'echo "$name" >> {runs}',
    'tr a-z A-Z < "$data" > /pfs/out/"$name"',
]


def _skipping_pipeline(client: Client, runs: Path, **extra) -> dict:
    client.pfs.create_repo(repo=pfs.Repo(name="data"))
    lines = [line.format(runs=runs) for line in SKIP_LINES]
    pipeline_spec = spec("skipper", pfs_input("data"), lines, **extra)
    create(client, pipeline_spec)
    return pipeline_spec


def counts(job: pps.JobInfo) -> tuple[int, int, int]:
    return job.data_total, job.data_processed, job.data_skipped


def test_unchanged_datums_are_skipped_and_outputs_carried_over(
    client: Client, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    _skipping_pipeline(client, runs)
    first = put(client, "data", {"/a": b"a", "/b": b"b"})
    assert counts(succeeded(wait(client, first)["skipper"])) == (2, 2, 0)
    second = put(client, "data", {"/b": b"bb", "/c": b"c"})  # /a unchanged
    assert counts(succeeded(wait(client, second)["skipper"])) == (3, 2, 1)
    assert runs.read_text().split() == ["a", "b", "b", "c"]
    assert outputs(client, "skipper", second) == {"/a": b"A", "/b": b"BB", "/c": b"C"}
    third = put(client, "data", {}, delete=("/c",))
    assert counts(succeeded(wait(client, third)["skipper"])) == (2, 0, 2)
    assert outputs(client, "skipper", third) == {"/a": b"A", "/b": b"BB"}  # union of datums
    assert runs.read_text().split() == ["a", "b", "b", "c"]


def test_reprocess_spec_every_job_disables_skipping(client: Client, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    _skipping_pipeline(client, runs, reprocess_spec="every_job")
    first = put(client, "data", {"/a": b"a", "/b": b"b"})
    succeeded(wait(client, first)["skipper"])
    second = put(client, "data", {"/c": b"c"})
    assert counts(succeeded(wait(client, second)["skipper"])) == (3, 3, 0)
    assert runs.read_text().split() == ["a", "b", "a", "b", "c"]
    assert outputs(client, "skipper", second) == {"/a": b"A", "/b": b"B", "/c": b"C"}


def test_update_keeps_salt_unless_reprocess(client: Client, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    pipeline_spec = _skipping_pipeline(client, runs)
    first = put(client, "data", {"/a": b"a", "/b": b"b"})
    succeeded(wait(client, first)["skipper"])

    def salt() -> str:
        info = client.pps.inspect_pipeline(pipeline=pps.Pipeline(name="skipper"), details=True)
        return info.details.salt

    before = salt()
    pipeline_spec["transform"]["env"] = {"CHANGED": "1"}
    kept = create(client, pipeline_spec, update=True)
    assert counts(succeeded(wait(client, kept)["skipper"])) == (2, 0, 2)
    assert salt() == before
    assert runs.read_text().split() == ["a", "b"]
    assert outputs(client, "skipper", kept) == {"/a": b"A", "/b": b"B"}

    redone = create(client, pipeline_spec, update=True, reprocess=True)
    assert counts(succeeded(wait(client, redone)["skipper"])) == (2, 2, 0)
    assert salt() != before
    assert runs.read_text().split() == ["a", "b", "a", "b"]


# ----------------------------------------------------------- merged output
def test_datums_writing_one_path_are_concatenated_in_datum_id_order(client: Client) -> None:
    names = ["a", "b", "c", "d", "e"]
    client.pfs.create_repo(repo=pfs.Repo(name="data"))
    put(client, "data", {f"/{n}": b"" for n in names})
    lines = ['basename "$data" >> /pfs/out/all']
    job_id = create(client, spec("merger", pfs_input("data"), lines))
    succeeded(wait(client, job_id)["merger"])
    by_id = sorted(names, key=lambda n: datum_id(("data", "data", "master", f"/{n}")))
    assert by_id != names  # the order is the ids', not the paths'
    assert outputs(client, "merger", job_id) == {"/all": "".join(f"{n}\n" for n in by_id).encode()}
