"""``python -m cpsign_airflow.testing.pachd.healthcheck [--port N] [--token-file PATH]``:
the healthcheck of docker-compose's ``pachd`` service.

Healthy means the local pachd answers calls whose replies go through its own encoder
(:mod:`.wire`, google.protobuf), not only GetVersion: an image missing a package that
encoding needs (protobuf was) answers GetVersion and WhoAmI but fails every commit and job
reply. So, against the running server, with the root token:

* a tiny repo (:data:`REPO`) is created once with one finished commit;
* ListCommit and InspectCommitSet of that commit (CommitInfo replies);
* ListJob (JobInfo replies, once any pipeline has run).

``--encode-only`` needs no server: it encodes a CommitInfo and a JobInfo as the server
does and decodes them again; the pachd service runs it at startup and the image's build
runs it, so a broken image fails early too. Exit 0 and ``ok`` when healthy, 1 otherwise
(the reason on stderr).
"""

from __future__ import annotations

import argparse
import sys
from types import SimpleNamespace

#: The repo the healthcheck keeps (one commit, one small file).
REPO = "pachd-healthcheck"


def encode_replies() -> None:
    """Encode and decode a CommitInfo and a JobInfo as the server does; raises if it can't."""
    from pachyderm_sdk.api import pfs, pps

    from . import wire
    from .pfs.records import CommitRec, RepoRec
    from .pps.records import JobRec

    repo = RepoRec(project="default", name=REPO)
    commit = CommitRec(repo=repo, id="0" * 32, branch="master")
    job = JobRec(
        pipeline=SimpleNamespace(name="healthcheck", project="default"),
        id="1" * 32,
        pipeline_version=1,
        output_commit=commit,
    )
    decoded_commit = pfs.CommitInfo().parse(wire.commit_info(commit))
    decoded_job = pps.JobInfo().parse(wire.job_info(job))
    if decoded_commit.commit.id != commit.id or decoded_job.job.id != job.id:
        raise RuntimeError("the local pachd's reply encoding does not round-trip")


def check_server(host: str, port: int, token: str | None) -> None:
    """The calls described above, against the server at host:port; raises if one fails."""
    import grpc
    from pachyderm_sdk import Client
    from pachyderm_sdk.api import pfs

    client = Client(host=host, port=port, auth_token=token)
    try:
        repo = pfs.Repo(name=REPO, type="user", project=pfs.Project(name="default"))
        try:
            client.pfs.inspect_repo(repo=repo)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            client.pfs.create_repo(repo=repo, description="the pachd service's healthcheck")
        commits = list(client.pfs.list_commit(repo=repo, number=1, all=True))
        if not commits:
            commit = client.pfs.start_commit(branch=pfs.Branch(repo=repo, name="master"))
            client.pfs.put_file_from_bytes(commit=commit, path="/ok", data=b"ok\n")
            client.pfs.finish_commit(commit=commit)
            commits = list(client.pfs.list_commit(repo=repo, number=1, all=True))
        if not commits or not commits[0].commit.id:
            raise RuntimeError(f"ListCommit on {REPO} returned no commit")
        commit_set = pfs.CommitSet(id=commits[0].commit.id)
        if not list(client.pfs.inspect_commit_set(commit_set=commit_set)):
            raise RuntimeError(f"InspectCommitSet {commit_set.id} returned nothing")
        for _ in client.pps.list_job(projects=[pfs.Project(name="default")], history=0):
            pass
    finally:
        client._channel.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cpsign_airflow.testing.pachd.healthcheck")
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=30650)
    parser.add_argument("--token-file", help="the root token (the server's --auth-token-file)")
    parser.add_argument(
        "--encode-only", action="store_true", help="no server: encode replies as it does"
    )
    args = parser.parse_args(argv)
    try:
        encode_replies()
        if not args.encode_only:
            token = None
            if args.token_file:
                with open(args.token_file) as src:
                    token = src.read().strip() or None
            check_server(args.host, args.port, token)
    except Exception as exc:  # noqa: BLE001 - any failure is "unhealthy", with its reason
        print(f"unhealthy: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
