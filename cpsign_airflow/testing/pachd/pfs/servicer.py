"""pfs_v2.API: decodes each request, calls :class:`.models.PfsBackend`, encodes the reply."""

from __future__ import annotations

from collections.abc import AsyncIterator

import betterproto
import grpc
from betterproto.lib.google.protobuf import BytesValue, Empty
from pachyderm_sdk.api import pfs

from .. import errors, wire
from ..errors import PachdError
from . import files
from .models import PfsBackend, project_name
from .records import BranchRec, CommitRec, RepoRec


def betterproto_set(msg: object, field_name: str) -> bool:
    """Whether a oneof member / message field was actually sent."""
    group = msg._betterproto.oneof_group_by_field.get(field_name)  # type: ignore[attr-defined]
    if group is not None:
        which, _ = betterproto.which_one_of(msg, group)  # type: ignore[arg-type]
        return which == field_name
    return getattr(msg, field_name, None) is not None


class PfsService:
    service = "pfs_v2.API"

    def __init__(self, backend: PfsBackend) -> None:
        self.pfs = backend

    def methods(self) -> dict:
        uu, us, su = "unary_unary", "unary_stream", "stream_unary"
        return {
            "CreateProject": (uu, pfs.CreateProjectRequest, self.create_project),
            "InspectProject": (uu, pfs.InspectProjectRequest, self.inspect_project),
            "ListProject": (us, pfs.ListProjectRequest, self.list_project),
            "DeleteProject": (uu, pfs.DeleteProjectRequest, self.delete_project),
            "CreateRepo": (uu, pfs.CreateRepoRequest, self.create_repo),
            "InspectRepo": (uu, pfs.InspectRepoRequest, self.inspect_repo),
            "ListRepo": (us, pfs.ListRepoRequest, self.list_repo),
            "DeleteRepo": (uu, pfs.DeleteRepoRequest, self.delete_repo),
            "StartCommit": (uu, pfs.StartCommitRequest, self.start_commit),
            "FinishCommit": (uu, pfs.FinishCommitRequest, self.finish_commit),
            "InspectCommit": (uu, pfs.InspectCommitRequest, self.inspect_commit),
            "ListCommit": (us, pfs.ListCommitRequest, self.list_commit),
            "SubscribeCommit": (us, pfs.SubscribeCommitRequest, self.subscribe_commit),
            "InspectCommitSet": (us, pfs.InspectCommitSetRequest, self.inspect_commit_set),
            "ListCommitSet": (us, pfs.ListCommitSetRequest, self.list_commit_set),
            "CreateBranch": (uu, pfs.CreateBranchRequest, self.create_branch),
            "InspectBranch": (uu, pfs.InspectBranchRequest, self.inspect_branch),
            "ListBranch": (us, pfs.ListBranchRequest, self.list_branch),
            "DeleteBranch": (uu, pfs.DeleteBranchRequest, self.delete_branch),
            "ModifyFile": (su, pfs.ModifyFileRequest, self.modify_file),
            "GetFile": (us, pfs.GetFileRequest, self.get_file),
            "InspectFile": (uu, pfs.InspectFileRequest, self.inspect_file),
            "ListFile": (us, pfs.ListFileRequest, self.list_file),
            "WalkFile": (us, pfs.WalkFileRequest, self.walk_file),
            "GlobFile": (us, pfs.GlobFileRequest, self.glob_file),
        }

    # --------------------------------------------------------------- projects
    async def create_project(self, req: pfs.CreateProjectRequest, ctx: object) -> Empty:
        name = req.project.name if req.project else ""
        self.pfs.create_project(name, req.description, req.update)
        return Empty()

    def _project_info(self, name: str) -> pfs.ProjectInfo:
        rec = self.pfs.project(name)
        return pfs.ProjectInfo(
            project=pfs.Project(name=rec.name),
            description=rec.description,
            created_at=rec.created,
        )

    async def inspect_project(self, req: pfs.InspectProjectRequest, ctx: object) -> pfs.ProjectInfo:
        return self._project_info(project_name(req.project))

    async def list_project(
        self, req: pfs.ListProjectRequest, ctx: object
    ) -> AsyncIterator[pfs.ProjectInfo]:
        for name in list(self.pfs.projects):
            yield self._project_info(name)

    async def delete_project(self, req: pfs.DeleteProjectRequest, ctx: object) -> Empty:
        self.pfs.delete_project(project_name(req.project), req.force)
        return Empty()

    # ------------------------------------------------------------------ repos
    async def create_repo(self, req: pfs.CreateRepoRequest, ctx: object) -> Empty:
        self.pfs.create_repo(req.repo, req.description, req.update)
        return Empty()

    @staticmethod
    def _repo_info(repo: RepoRec) -> pfs.RepoInfo:
        size = repo.size()
        return pfs.RepoInfo(
            repo=repo.to_proto(),
            created=repo.created,
            size_bytes_upper_bound=size,
            description=repo.description,
            branches=[b.to_proto() for b in repo.branches.values()],
            details=pfs.RepoInfoDetails(size_bytes=size),
        )

    async def inspect_repo(self, req: pfs.InspectRepoRequest, ctx: object) -> pfs.RepoInfo:
        return self._repo_info(self.pfs.repo(req.repo))

    async def list_repo(self, req: pfs.ListRepoRequest, ctx: object) -> AsyncIterator[pfs.RepoInfo]:
        for repo in self.pfs.list_repos(req.type, {p.name for p in req.projects}):
            yield self._repo_info(repo)

    async def delete_repo(self, req: pfs.DeleteRepoRequest, ctx: object) -> pfs.DeleteRepoResponse:
        self.pfs.delete_repo(req.repo, req.force)
        return pfs.DeleteRepoResponse(deleted=True)

    # ---------------------------------------------------------------- commits
    async def start_commit(self, req: pfs.StartCommitRequest, ctx: object) -> pfs.Commit:
        return self.pfs.start_commit(req.branch, req.description, req.parent).to_proto()

    async def finish_commit(self, req: pfs.FinishCommitRequest, ctx: object) -> Empty:
        self.pfs.finish_commit(req.commit, req.description, req.error, req.force)
        return Empty()

    async def inspect_commit(self, req: pfs.InspectCommitRequest, ctx: object) -> pfs.CommitInfo:
        rec = self.pfs.resolve_commit(req.commit)
        if req.wait:
            await self.pfs.wait_commit(rec, req.wait)
        return wire.commit_info(rec)  # bytes: see wire.py

    async def list_commit(
        self, req: pfs.ListCommitRequest, ctx: object
    ) -> AsyncIterator[pfs.CommitInfo]:
        commits = self.pfs.list_commits(
            req.repo, req.to, req.from_, req.origin_kind, req.reverse, req.number
        )
        for commit in commits:
            yield wire.commit_info(commit)

    async def subscribe_commit(
        self, req: pfs.SubscribeCommitRequest, ctx: object
    ) -> AsyncIterator[pfs.CommitInfo]:
        async for commit in self.pfs.subscribe_commits(req.repo, req.branch, req.from_, req.state):
            yield wire.commit_info(commit)

    async def inspect_commit_set(
        self, req: pfs.InspectCommitSetRequest, ctx: object
    ) -> AsyncIterator[pfs.CommitInfo]:
        set_id = req.commit_set.id if req.commit_set else ""
        async for commit in self.pfs.inspect_commit_set(set_id, req.wait):
            yield wire.commit_info(commit)

    async def list_commit_set(
        self, req: pfs.ListCommitSetRequest, ctx: object
    ) -> AsyncIterator[pfs.CommitSetInfo]:
        project = req.project.name if req.project and req.project.name else None
        for set_id, commits in self.pfs.list_commit_sets(project):
            yield pfs.CommitSetInfo(
                commit_set=pfs.CommitSet(id=set_id), commits=[c.info() for c in commits]
            )

    # --------------------------------------------------------------- branches
    async def create_branch(self, req: pfs.CreateBranchRequest, ctx: object) -> Empty:
        self.pfs.create_branch(req.branch, req.provenance, req.head, req.new_commit_set)
        return Empty()

    def _branch_info(self, branch: BranchRec) -> pfs.BranchInfo:
        info = pfs.BranchInfo(
            branch=branch.to_proto(),
            provenance=[b.to_proto() for b in self.pfs.upstream_branches(branch)],
            subvenance=[b.to_proto() for b in self.pfs.subvenant_branches([branch])],
            direct_provenance=[b.to_proto() for b in branch.provenance],
            created_at=branch.created,
            updated_at=branch.updated,
        )
        if branch.head is not None:
            info.head = branch.head.to_proto()
        return info

    async def inspect_branch(self, req: pfs.InspectBranchRequest, ctx: object) -> pfs.BranchInfo:
        if req.branch is None:
            raise errors.unknown("branch cannot be nil")
        return self._branch_info(self.pfs.branch(req.branch))

    async def list_branch(
        self, req: pfs.ListBranchRequest, ctx: object
    ) -> AsyncIterator[pfs.BranchInfo]:
        for branch in self.pfs.list_branches(req.repo, req.reverse):
            yield self._branch_info(branch)

    async def delete_branch(self, req: pfs.DeleteBranchRequest, ctx: object) -> Empty:
        self.pfs.delete_branch(req.branch, req.force)
        return Empty()

    # ------------------------------------------------------------------ files
    async def modify_file(
        self, requests: AsyncIterator[pfs.ModifyFileRequest], ctx: object
    ) -> Empty:
        target: CommitRec | None = None
        async for req in requests:
            if req.set_commit is not None and betterproto_set(req, "set_commit"):
                target = self.pfs.writable_commit(req.set_commit)
                continue
            if target is None:
                raise errors.unknown("must set a commit before modifying files")
            files.check_open(target)  # finished concurrently
            if betterproto_set(req, "delete_file"):
                files.delete(target, req.delete_file.path)
            elif betterproto_set(req, "add_file"):
                add = req.add_file
                if betterproto_set(add, "url"):
                    raise PachdError(grpc.StatusCode.UNIMPLEMENTED, "local pachd cannot fetch URLs")
                files.append(target, add.path, add.raw or b"")
            elif betterproto_set(req, "copy_file"):
                copy = req.copy_file
                self.pfs.copy_file(target, copy.src.commit, copy.src.path, copy.dst, copy.append)
        if target is not None:
            self.pfs.files_changed(target)
        return Empty()

    async def get_file(self, req: pfs.GetFileRequest, ctx: object) -> AsyncIterator[BytesValue]:
        commit, path = self.pfs.file_commit(req.file)
        for chunk in files.get(commit, path).chunks(offset=req.offset):
            yield BytesValue(value=chunk)

    @staticmethod
    def _file_info(commit: CommitRec, path: str) -> pfs.FileInfo:
        fd = commit.files.get(path)
        info = pfs.FileInfo(
            file=pfs.File(commit=commit.to_proto(), path=path),
            committed=commit.finished or commit.started,
        )
        if fd is not None:
            info.file_type = pfs.FileType.FILE
            info.size_bytes = fd.size
            info.hash = fd.digest()
        else:
            info.file_type = pfs.FileType.DIR
            info.size_bytes = files.dir_size(commit, path)
        return info

    async def inspect_file(self, req: pfs.InspectFileRequest, ctx: object) -> pfs.FileInfo:
        commit, path = self.pfs.file_commit(req.file)
        files.check_exists(commit, path)
        return self._file_info(commit, path)

    async def list_file(self, req: pfs.ListFileRequest, ctx: object) -> AsyncIterator[pfs.FileInfo]:
        commit, path = self.pfs.file_commit(req.file)
        for child in files.list_children(
            commit, path, req.pagination_marker, req.number, req.reverse
        ):
            yield self._file_info(commit, child)

    async def walk_file(self, req: pfs.WalkFileRequest, ctx: object) -> AsyncIterator[pfs.FileInfo]:
        commit, path = self.pfs.file_commit(req.file)
        for entry in files.walk(commit, path, req.pagination_marker, req.number, req.reverse):
            yield self._file_info(commit, entry)

    async def glob_file(self, req: pfs.GlobFileRequest, ctx: object) -> AsyncIterator[pfs.FileInfo]:
        commit = self.pfs.resolve_commit(req.commit)
        for path in files.glob(commit, req.pattern):
            yield self._file_info(commit, path)
