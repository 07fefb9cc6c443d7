"""The PFS part of the Pachyderm hook: repos, files, commits and commit sets.

:class:`PachydermPfsMixin` is composed into
:class:`~cpsign_airflow.hooks.pachyderm.PachydermHook`; every call goes through
:meth:`~cpsign_airflow.hooks.pachyderm_base.BasePachydermHook._call`.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from cpsign_airflow.exceptions import (
    PachydermAlreadyExists,
    PachydermError,
    PachydermNotFound,
    PachydermTimeout,
)
from cpsign_airflow.hooks.pachyderm_base import (
    CHUNK_SIZE,
    BasePachydermHook,
    RefType,
    _enum_name,
    _ts,
    commit_to_dict,
)

if TYPE_CHECKING:
    from cpsign_airflow.hooks.pachyderm_types import RepoResult


class PachydermPfsMixin(BasePachydermHook):
    """Repos, files, commits and commit sets (pachd's PFS API)."""

    # ------------------------------------------------------------------ repos

    def ensure_repo(
        self, repo: str, project: str | None = None, description: str = ""
    ) -> RepoResult:
        """Create ``repo`` unless it exists: ``{"project", "repo", "created"}``."""
        client = self.get_conn()
        where = self._where(repo, project)
        repo_msg = self._repo(repo, project)
        try:
            self._call(f"inspect repo {where!r}", lambda: client.pfs.inspect_repo(repo=repo_msg))
            return {"project": project or self.project, "repo": repo, "created": False}
        except PachydermNotFound:
            pass
        try:
            self._call(
                f"create repo {where!r}",
                lambda: client.pfs.create_repo(repo=repo_msg, description=description),
            )
        except PachydermAlreadyExists:  # created concurrently: same end state
            return {"project": project or self.project, "repo": repo, "created": False}
        self.log.info("Created Pachyderm repo %s", where)
        return {"project": project or self.project, "repo": repo, "created": True}

    def repo_exists(self, repo: str, project: str | None = None) -> bool:
        client = self.get_conn()
        try:
            self._call(
                f"inspect repo {self._where(repo, project)!r}",
                lambda: client.pfs.inspect_repo(repo=self._repo(repo, project)),
            )
            return True
        except PachydermNotFound:
            return False

    def list_repos(self, project: str | None = None) -> list[str]:
        infos = self._list(
            "list repos",
            lambda: self.get_conn().pfs.list_repo(
                type="user", projects=[self._project_msg(project)]
            ),
        )
        return sorted(i.repo.name for i in infos)

    # ------------------------------------------------------------------ files

    def put_file(
        self,
        repo: str,
        path: str,
        *,
        data: bytes | str | None = None,
        local_path: str | os.PathLike[str] | None = None,
        branch: str = "master",
        project: str | None = None,
        description: str = "",
        dedupe_key: str | None = None,
    ) -> str:
        """Write one file to ``repo@branch:path``, overwriting it, in a new commit.

        Like ``pachctl put file -o``. Content streams in CHUNK_SIZE pieces, so
        memory stays flat for large files. With ``dedupe_key`` (for example the
        Airflow dag/run/task), a commit already made on this branch with that key
        and the same content sha256 is returned instead of committing again, so a
        retried task never starts a second pipeline run. Returns the commit id.

        The commit is closed once pachd has set its ``finishing`` time (FinishCommit
        accepted; pachd's PFS master sets ``finished`` a little later): such an earlier
        commit is returned as it is, like a new one, and never written to again. An
        earlier try's commit still open (no ``finishing``) is resumed and finished.
        """
        if (data is None) == (local_path is None):
            raise ValueError("put_file needs exactly one of 'data' or 'local_path'")
        if not path.startswith("/"):
            path = "/" + path
        if isinstance(data, str):
            data = data.encode("utf-8")
        if local_path is not None and not Path(local_path).is_file():
            raise FileNotFoundError(f"put_file: local file {str(local_path)!r} does not exist")

        def opener() -> IO[bytes]:
            return open(local_path, "rb") if local_path is not None else io.BytesIO(data)

        where = f"{self._where(repo, project)}@{branch}:{path}"
        mark = ""
        open_commit = None
        if dedupe_key:
            digest = _sha256_of(opener)
            mark = f"[cpsign-airflow key={_key_token(dedupe_key)} sha256={digest}]"
            earlier = self._find_marked_commit(repo, branch, project, mark)
            if earlier is not None:
                earlier_id, closed = earlier
                if closed:
                    self.log.info(
                        "%s already committed by this task in commit %s; not committing again",
                        where,
                        earlier_id,
                    )
                    return earlier_id
                open_commit = earlier_id
        full_description = f"{description} {mark}".strip()
        commit_id = self._write_commit(
            repo, branch, project, path, opener, full_description, open_commit
        )
        self._report_lineage("output", repo, project)
        return commit_id

    def _write_commit(
        self,
        repo: str,
        branch: str,
        project: str | None,
        path: str,
        opener: Callable[[], IO[bytes]],
        description: str,
        open_commit: str | None,
    ) -> str:
        from pachyderm_sdk.api import pfs

        client = self.get_conn()
        where = f"{self._where(repo, project)}@{branch}:{path}"
        if open_commit is None:
            commit = self._start_commit_after_open_head(repo, branch, project, description)
        else:
            self.log.info("Resuming open commit %s left by an earlier attempt", open_commit)
            commit = pfs.Commit(repo=self._repo(repo, project), id=open_commit)

        def requests() -> Iterator[Any]:
            yield pfs.ModifyFileRequest(set_commit=commit)
            yield pfs.ModifyFileRequest(delete_file=pfs.DeleteFile(path=path))
            yield pfs.ModifyFileRequest(add_file=pfs.AddFile(path=path, raw=b""))
            with opener() as source:
                while chunk := source.read(CHUNK_SIZE):
                    yield pfs.ModifyFileRequest(add_file=pfs.AddFile(path=path, raw=chunk))

        self._call(f"write {where}", lambda: client.pfs.modify_file(requests()))
        self._call(
            f"finish commit {commit.id} on {self._where(repo, project)}@{branch}",
            lambda: client.pfs.finish_commit(commit=commit, description=description),
        )
        self.log.info("Wrote %s in commit %s", where, commit.id)
        return commit.id

    def _start_commit_after_open_head(
        self, repo: str, branch: str, project: str | None, description: str
    ) -> Any:
        """StartCommit; while another writer's commit is still open on the branch, wait for it.

        pachd refuses a commit on a branch whose head is open ("parent commit … has not
        been finished"), so two runs of one workflow would make the second fail. Instead
        it waits, event-driven (InspectCommit ``wait=FINISHING`` on the branch head), and
        starts its commit after the other one: runs of one workflow queue up.
        """
        from pachyderm_sdk.api import pfs

        client = self.get_conn()
        where = f"{self._where(repo, project)}@{branch}"
        head = pfs.Commit(branch=self._branch(repo, branch, project))
        while True:
            try:
                return self._call(
                    f"start a commit on {where}",
                    lambda: client.pfs.start_commit(
                        branch=self._branch(repo, branch, project), description=description
                    ),
                )
            except PachydermError as err:
                if "has not been finished" not in str(err):
                    raise
                self.log.info(
                    "%s: its head commit is still open (another run is writing it); "
                    "waiting for it to finish before committing",
                    where,
                )
                self._call(
                    f"wait for the open head of {where}",
                    lambda: client.pfs.inspect_commit(commit=head, wait=pfs.CommitState.FINISHING),
                )

    def _find_marked_commit(
        self, repo: str, branch: str, project: str | None, mark: str, depth: int = 50
    ) -> tuple[str, bool] | None:
        """``(id, closed)`` of the newest commit of ``branch`` carrying ``mark``, if any;
        closed once ``finishing`` is set (pachd sets ``finished`` later, and refuses
        writes from ``finishing`` on: src/server/pfs/server/server_commit.go)."""
        client = self.get_conn()
        head = self._commit(repo, branch, project, ref_type="branch")
        try:
            self._call(
                f"inspect branch {self._where(repo, project)}@{branch}",
                lambda: client.pfs.inspect_branch(branch=self._branch(repo, branch, project)),
            )
        except PachydermNotFound:  # no commit on this branch yet
            return None
        infos = self._list(
            f"list commits of {self._where(repo, project)}@{branch}",
            lambda: client.pfs.list_commit(repo=self._repo(repo, project), to=head, number=depth),
        )
        for info in infos:
            if mark in (info.description or ""):
                closed = _ts(info.finishing) is not None or _ts(info.finished) is not None
                return info.commit.id, closed
        return None

    def read_file(
        self,
        repo: str,
        ref: str,
        path: str,
        project: str | None = None,
        *,
        ref_type: RefType = "commit",
    ) -> bytes:
        """Content of ``repo@ref:path``: ``ref`` is a commit id, or with
        ``ref_type="branch"`` a branch name (its head commit)."""
        from pachyderm_sdk.api import pfs

        file = pfs.File(commit=self._commit(repo, ref, project, ref_type), path=path)
        chunks = self._list(
            f"read {self._where(repo, project)}@{ref}:{path}",
            lambda: (msg.value for msg in self.get_conn().pfs.get_file(file=file)),
        )
        self._report_lineage("input", repo, project)
        return b"".join(chunks)

    def list_files(
        self,
        repo: str,
        ref: str,
        path: str = "/",
        project: str | None = None,
        *,
        ref_type: RefType = "commit",
    ) -> list[dict[str, Any]]:
        """Entries directly under ``repo@ref:path``: ``{"path", "type", "size_bytes"}``
        (``ref`` as in :meth:`read_file`)."""
        from pachyderm_sdk.api import pfs

        file = pfs.File(commit=self._commit(repo, ref, project, ref_type), path=path)
        infos = self._list(
            f"list files in {self._where(repo, project)}@{ref}:{path}",
            lambda: self.get_conn().pfs.list_file(file=file),
        )
        return [
            {
                "path": i.file.path,
                "type": _enum_name(pfs.FileType, i.file_type),
                "size_bytes": int(i.size_bytes),
            }
            for i in infos
        ]

    def inspect_commit(
        self, repo: str, ref: str, project: str | None = None, *, ref_type: RefType = "commit"
    ) -> dict[str, Any]:
        """One commit (:func:`commit_to_dict`); ``ref`` as in :meth:`read_file`."""
        commit = self._commit(repo, ref, project, ref_type)
        info = self._call(
            f"inspect commit {self._where(repo, project)}@{ref}",
            lambda: self.get_conn().pfs.inspect_commit(commit=commit),
        )
        return commit_to_dict(info)

    # ------------------------------------------------------------------ commit sets

    def inspect_commit_set(self, commit_set_id: str) -> list[dict[str, Any]]:
        """Current state of every commit in the set (no waiting)."""
        return self._commit_set(commit_set_id, wait=False, timeout=None)

    def wait_commit_set(
        self, commit_set_id: str, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """Block until every commit of the set, in every downstream repo, has finished.

        Uses pachd's own streaming wait (InspectCommitSet with wait). Raises
        PachydermTimeout after ``timeout`` seconds.
        """
        return self._commit_set(commit_set_id, wait=True, timeout=timeout)

    def _commit_set(
        self, commit_set_id: str, *, wait: bool, timeout: float | None
    ) -> list[dict[str, Any]]:
        from pachyderm_sdk.api import pfs

        from cpsign_airflow.hooks import _wire

        request = pfs.InspectCommitSetRequest(commit_set=pfs.CommitSet(id=commit_set_id), wait=wait)
        # Decoded with google.protobuf, as the trigger's wait: the set's pipelines' spec
        # commits come first, each listing every output and meta commit made from it in its
        # direct subvenance (pachd's getCommitFromCommitRow, src/internal/pfsdb/commits.go),
        # so ~180 KB after 1,000 runs of a pipeline, which betterproto took ~0.3 s to decode.
        rpc = self._rpc("/pfs_v2.API/InspectCommitSet", _wire.commit_info_to_dict, stream=True)
        try:
            commits = self._list(
                f"{'wait for' if wait else 'inspect'} commit set {commit_set_id}",
                functools.partial(rpc, request),
                deadline=None if timeout is None else time.monotonic() + timeout,
            )
        except PachydermTimeout:
            raise PachydermTimeout(
                f"Commit set {commit_set_id} did not finish within {timeout:g}s"
            ) from None
        # pachd 2.12 also lists the set's provenance from other commit sets (spec commits,
        # input heads; server_commit_set.go): only this set's own user-repo commits count
        return [c for c in commits if c["repo_type"] == "user" and c["id"] == commit_set_id]


def _sha256_of(opener: Callable[[], IO[bytes]]) -> str:
    digest = hashlib.sha256()
    with opener() as source:
        while chunk := source.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def _key_token(key: str) -> str:
    """Dedupe keys may contain spaces or brackets (run ids do); keep them short and safe."""
    return (
        hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]
        + ":"
        + re.sub(r"[^\w.:+-]", "_", key)[:120]
    )
