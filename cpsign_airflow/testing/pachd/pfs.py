"""pfs_v2.API: projects, repos, branches, commits, commit sets and files."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import grpc
from betterproto.lib.google.protobuf import BytesValue, Empty
from pachyderm_sdk.api import pfs

from . import errors, wire
from .datums import glob_paths
from .errors import DEFAULT_PROJECT, PachdError
from .filestore import FileData
from .state import (
    UUID_V4_HEX_RE,
    BranchRec,
    CommitRec,
    RepoRec,
    State,
    new_id,
    normalize_path,
    now,
    validate_name,
)


def _project_name(project: pfs.Project | None) -> str:
    return (project.name if project else "") or DEFAULT_PROJECT


class PfsService:
    service = "pfs_v2.API"

    def __init__(self, state: State, finish_delay: Callable[[], float] = lambda: 0.0) -> None:
        self.state = state
        #: seconds from FinishCommit's FINISHING to the PFS master's FINISHED (see finish_commit)
        self.finish_delay = finish_delay

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
        validate_name("project", name)
        existing = self.state.projects.get(name)
        if existing is not None:
            if not req.update:
                raise errors.project_exists(name)
            existing.description = req.description
            self.state.mark_dirty()
            return Empty()
        from .state import ProjectRec

        self.state.projects[name] = ProjectRec(name, req.description)
        self.state.mark_dirty()
        return Empty()

    def _project_info(self, name: str) -> pfs.ProjectInfo:
        rec = self.state.project(name)
        return pfs.ProjectInfo(
            project=pfs.Project(name=rec.name),
            description=rec.description,
            created_at=rec.created,
        )

    async def inspect_project(self, req: pfs.InspectProjectRequest, ctx: object) -> pfs.ProjectInfo:
        return self._project_info(_project_name(req.project))

    async def list_project(
        self, req: pfs.ListProjectRequest, ctx: object
    ) -> AsyncIterator[pfs.ProjectInfo]:
        for name in list(self.state.projects):
            yield self._project_info(name)

    async def delete_project(self, req: pfs.DeleteProjectRequest, ctx: object) -> Empty:
        name = _project_name(req.project)
        self.state.project(name)
        repos = [r for r in self.state.repos.values() if r.project == name]
        if repos and not req.force:
            raise errors.unknown(f"cannot delete project {name}: it still has repos")
        for repo in repos:
            self._drop_repo(repo)
        del self.state.projects[name]
        self.state.mark_dirty()
        return Empty()

    # ------------------------------------------------------------------ repos
    async def create_repo(self, req: pfs.CreateRepoRequest, ctx: object) -> Empty:
        if req.repo is None:
            raise errors.unknown("repo cannot be nil")
        project = _project_name(req.repo.project)
        validate_name("repo", req.repo.name)
        repo_type = req.repo.type or "user"
        self.state.project(project)
        existing = self.state.repos.get((project, req.repo.name, repo_type))
        if existing is not None:
            if not req.update:
                raise errors.repo_exists(project, req.repo.name, repo_type)
            existing.description = req.description
            self.state.mark_dirty()
            return Empty()
        self.state.create_repo(project, req.repo.name, repo_type, req.description)
        self.state.notify()
        self.state.mark_dirty()
        return Empty()

    def _repo_info(self, repo: RepoRec) -> pfs.RepoInfo:
        size = max((b.head.size() for b in repo.branches.values() if b.head), default=0)
        return pfs.RepoInfo(
            repo=repo.to_proto(),
            created=repo.created,
            size_bytes_upper_bound=size,
            description=repo.description,
            branches=[b.to_proto() for b in repo.branches.values()],
            details=pfs.RepoInfoDetails(size_bytes=size),
        )

    async def inspect_repo(self, req: pfs.InspectRepoRequest, ctx: object) -> pfs.RepoInfo:
        return self._repo_info(self.state.repo(req.repo))

    async def list_repo(self, req: pfs.ListRepoRequest, ctx: object) -> AsyncIterator[pfs.RepoInfo]:
        projects = {p.name for p in req.projects}
        repos = sorted(self.state.repos.values(), key=lambda r: r.created, reverse=True)
        for repo in repos:
            if req.type and repo.type != req.type:
                continue
            if projects and repo.project not in projects:
                continue
            yield self._repo_info(repo)

    def _drop_repo(self, repo: RepoRec) -> None:
        for other in self.state.repos.values():
            for branch in other.branches.values():
                branch.provenance = [p for p in branch.provenance if p.repo is not repo]
        for cid in list(repo.commits):
            members = self.state.commit_sets.get(cid, [])
            members[:] = [c for c in members if c.repo is not repo]
            if not members:
                self.state.commit_sets.pop(cid, None)
        self.state.repos.pop(repo.key, None)
        self.state.mark_dirty()  # also covers DeletePipeline, which drops repos through here

    async def delete_repo(self, req: pfs.DeleteRepoRequest, ctx: object) -> pfs.DeleteRepoResponse:
        repo = self.state.repo(req.repo)
        if not req.force:
            if repo.type == "user" and (repo.project, repo.name) in self.state.pipelines:
                raise errors.unknown(
                    f"cannot delete repo {repo.display}: it is the output repo of pipeline "
                    f"{repo.name}; delete the pipeline instead"
                )
            for other in self.state.repos.values():
                if other is repo:
                    continue
                for branch in other.branches.values():
                    if any(p.repo is repo for p in branch.provenance):
                        raise errors.unknown(
                            f"cannot delete repo {repo.display}: branch {other.display}@"
                            f"{branch.name} depends on it"
                        )
        self._drop_repo(repo)
        self.state.notify()
        return pfs.DeleteRepoResponse(deleted=True)

    # ---------------------------------------------------------------- commits
    async def start_commit(self, req: pfs.StartCommitRequest, ctx: object) -> pfs.Commit:
        if req.branch is None or not req.branch.name:
            raise errors.unknown("branch cannot be empty")
        repo = self.state.repo(req.branch.repo)
        validate_name("branch", req.branch.name)
        refuse_commit_shaped(
            req.branch.name, "start commit in transaction: create commit: create commit"
        )
        branch = repo.branches.get(req.branch.name)
        if branch is None:
            branch = BranchRec(repo=repo, name=req.branch.name)
            repo.branches[branch.name] = branch
        if branch.provenance:
            raise errors.unknown(
                f"cannot start a commit on an output branch: {repo.display}@{branch.name}"
            )
        # pachd's linkParent: the parent must be at least FINISHING (not yet FINISHED)
        if branch.head is not None and branch.head.finishing is None:
            head = branch.head
            raise errors.unknown(
                "start commit in transaction: create commit: parent commit "
                f"{head.repo_str}@{head.id} has not been finished"
            )
        parent = None
        if req.parent is not None and (req.parent.id or req.parent.branch):
            parent = self.state.resolve_commit(req.parent)
        commit_id = new_id()
        rec = self.state.add_commit(
            branch, commit_id, pfs.OriginKind.USER, req.description, parent=parent
        )
        self.state.propagate(commit_id, [branch])  # add_commit notifies the repos
        self.state.mark_dirty()
        return rec.to_proto()

    async def finish_commit(self, req: pfs.FinishCommitRequest, ctx: object) -> Empty:
        rec = self.state.resolve_commit(req.commit)
        if rec.is_finished or rec.finishing is not None:
            raise errors.commit_finished(rec.repo_str, rec.id)
        if rec.provenance and not req.force:
            raise errors.unknown(
                "cannot finish a pipeline output or meta commit, use 'stop job' instead"
            )
        # pachd 2.12 (server_commit.go finishCommit) only sets FINISHING; its PFS master
        # (master.go postProcessCommit) compacts and validates the commit and sets FINISHED
        # later, in another transaction: here ``finish_delay`` seconds later, never at once.
        if req.description:
            rec.description = req.description
        self.state.finishing_commit(rec)
        asyncio.get_running_loop().call_later(
            max(0.0, self.finish_delay()), self._finished, rec, req.error
        )
        self.state.mark_dirty()
        return Empty()

    def _finished(self, rec: CommitRec, error: str) -> None:
        if not rec.is_finished:
            self.state.finish_commit(rec, error=error)
            self.state.mark_dirty()

    async def inspect_commit(self, req: pfs.InspectCommitRequest, ctx: object) -> pfs.CommitInfo:
        rec = self.state.resolve_commit(req.commit)
        if req.wait:
            await self.state.wait_for(lambda: rec.reached(req.wait), lambda: (rec, *rec.provenance))
        return wire.commit_info(rec)  # bytes: see wire.py

    async def list_commit(
        self, req: pfs.ListCommitRequest, ctx: object
    ) -> AsyncIterator[pfs.CommitInfo]:
        repo = self.state.repo(req.repo)
        if req.to is not None and (req.to.id or req.to.branch):
            commits: list[CommitRec] = []
            cur: CommitRec | None = self.state.resolve_commit(req.to)
            stop = self.state.resolve_commit(req.from_) if req.from_ and req.from_.id else None
            while cur is not None and cur is not stop:
                commits.append(cur)
                cur = cur.parent
        else:
            commits = sorted(repo.commits.values(), key=lambda c: c.started, reverse=True)
        if req.origin_kind:
            commits = [c for c in commits if c.origin == req.origin_kind]
        if req.reverse:
            commits.reverse()
        if req.number:
            commits = commits[: req.number]
        for commit in commits:
            yield wire.commit_info(commit)

    async def subscribe_commit(
        self, req: pfs.SubscribeCommitRequest, ctx: object
    ) -> AsyncIterator[pfs.CommitInfo]:
        repo = self.state.repo(req.repo)
        wanted = req.state or pfs.CommitState.STARTED
        sent: set[str] = set()
        start = self.state.resolve_commit(req.from_) if req.from_ and req.from_.id else None
        ready: list[CommitRec] = []

        def have() -> bool:
            ready[:] = [
                c
                for c in sorted(repo.commits.values(), key=lambda c: c.started)
                if c.id not in sent
                and not (req.branch and c.branch != req.branch)
                and not (start is not None and c.started < start.started)
                and c.reached(wanted)
            ]
            return bool(ready)

        while True:
            await self.state.wait_for(have, lambda: (repo,))
            for c in list(ready):
                sent.add(c.id)
                yield wire.commit_info(c)

    async def inspect_commit_set(
        self, req: pfs.InspectCommitSetRequest, ctx: object
    ) -> AsyncIterator[pfs.CommitInfo]:
        # pachd 2.12 (server_commit_set.go): the set's commits and, from other sets, the
        # commits in their provenance (the pipelines' spec commits, ...), in topological
        # order; with ``wait``, the finished ones at once, then each other as it finishes.
        set_id = req.commit_set.id if req.commit_set else ""
        commits = self.state.inspect_commit_set(set_id)
        if not commits:
            raise errors.commit_set_not_found(set_id)
        pending = [c for c in commits if req.wait and not c.is_finished]
        for commit in commits:
            if commit not in pending:
                yield wire.commit_info(commit)
        for commit in pending:
            await self.state.wait_for(lambda c=commit: c.is_finished, lambda c=commit: (c,))
            yield wire.commit_info(commit)

    async def list_commit_set(
        self, req: pfs.ListCommitSetRequest, ctx: object
    ) -> AsyncIterator[pfs.CommitSetInfo]:
        project = req.project.name if req.project and req.project.name else None
        sets = sorted(
            self.state.commit_sets.items(), key=lambda kv: kv[1][0].started if kv[1] else now()
        )
        for set_id, own in reversed(sets):
            if project is not None and not any(c.repo.project == project for c in own):
                continue
            commits = self.state.inspect_commit_set(set_id)
            yield pfs.CommitSetInfo(
                commit_set=pfs.CommitSet(id=set_id), commits=[c.info() for c in commits]
            )

    # --------------------------------------------------------------- branches
    async def create_branch(self, req: pfs.CreateBranchRequest, ctx: object) -> Empty:
        if req.branch is None:
            raise errors.unknown("branch cannot be nil")
        repo = self.state.repo(req.branch.repo)
        validate_name("branch", req.branch.name)
        provenance = [self.state.branch(p) for p in req.provenance]
        head = (
            self.state.resolve_commit(req.head)
            if req.head is not None and (req.head.id or req.head.branch)
            else None
        )
        refuse_commit_shaped(req.branch.name, "create branch")
        branch = repo.branches.get(req.branch.name)
        created = branch is None
        if branch is None:
            branch = BranchRec(repo=repo, name=req.branch.name)
            repo.branches[branch.name] = branch
        branch.provenance = provenance
        branch.updated = now()
        if head is not None:
            branch.head = head
        elif created or req.new_commit_set or provenance:
            # pachd 2.x: every branch has a head; a new branch gets a fresh commit
            commit_id = new_id()
            rec = self.state.add_commit(branch, commit_id, pfs.OriginKind.AUTO)
            for prov in provenance:
                if prov.head is not None:
                    rec.provenance.append(prov.head)
                    prov.head.subvenance.append(rec)
            if not provenance:
                self.state.finish_commit(rec)
            self.state.propagate(commit_id, [branch])
        self.state.notify()
        self.state.mark_dirty()
        return Empty()

    def _branch_info(self, branch: BranchRec) -> pfs.BranchInfo:
        upstream: list[BranchRec] = []
        stack = list(branch.provenance)
        while stack:
            b = stack.pop()
            if b not in upstream:
                upstream.append(b)
                stack.extend(b.provenance)
        downstream = self.state.subvenant_branches([branch])
        info = pfs.BranchInfo(
            branch=branch.to_proto(),
            provenance=[b.to_proto() for b in upstream],
            subvenance=[b.to_proto() for b in downstream],
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
        return self._branch_info(self.state.branch(req.branch))

    async def list_branch(
        self, req: pfs.ListBranchRequest, ctx: object
    ) -> AsyncIterator[pfs.BranchInfo]:
        if req.repo is not None and req.repo.name:
            branches = list(self.state.repo(req.repo).branches.values())
        else:
            branches = [b for r in self.state.repos.values() for b in r.branches.values()]
        branches.sort(key=lambda b: b.created, reverse=not req.reverse)
        for branch in branches:
            yield self._branch_info(branch)

    async def delete_branch(self, req: pfs.DeleteBranchRequest, ctx: object) -> Empty:
        if req.branch is None:
            raise errors.unknown("branch cannot be nil")
        branch = self.state.branch(req.branch)
        downstream = self.state.subvenant_branches([branch])
        if downstream and not req.force:
            raise errors.unknown(
                f"branch {branch.name} has subvenance; use force to delete it anyway"
            )
        for b in downstream:
            b.provenance = [p for p in b.provenance if p is not branch]
        del branch.repo.branches[branch.name]
        self.state.notify()
        self.state.mark_dirty()
        return Empty()

    # ------------------------------------------------------------------ files
    def _writable(self, commit: pfs.Commit) -> CommitRec:
        # pachd refuses writes once FINISHING is set, FINISHED or not (server_file.go)
        rec = self.state.resolve_commit(commit)
        if rec.finishing is not None or rec.is_finished:
            raise errors.commit_finished(rec.repo_str, rec.id)
        return rec

    async def modify_file(
        self, requests: AsyncIterator[pfs.ModifyFileRequest], ctx: object
    ) -> Empty:
        target: CommitRec | None = None
        async for req in requests:
            if req.set_commit is not None and betterproto_set(req, "set_commit"):
                target = self._writable(req.set_commit)
                continue
            if target is None:
                raise errors.unknown("must set a commit before modifying files")
            if target.finishing is not None or target.is_finished:  # finished concurrently
                raise errors.commit_finished(target.repo_str, target.id)
            if betterproto_set(req, "delete_file"):
                _delete(target, req.delete_file.path)
            elif betterproto_set(req, "add_file"):
                add = req.add_file
                if betterproto_set(add, "url"):
                    raise PachdError(grpc.StatusCode.UNIMPLEMENTED, "local pachd cannot fetch URLs")
                _append(target, add.path, add.raw or b"")
            elif betterproto_set(req, "copy_file"):
                copy = req.copy_file
                src = self.state.resolve_commit(copy.src.commit)
                src_path = normalize_path(copy.src.path)
                dst = normalize_path(copy.dst)
                matches = _under(src.files, src_path)
                if not matches:
                    raise errors.file_not_found(src_path, src.repo_str, src.id)
                if not copy.append:
                    _delete(target, dst)
                for path in matches:
                    rel = path[len(src_path) :] if src_path != "/" else path
                    new_path = normalize_path(dst + rel) if path != src_path else dst
                    existing = target.files.get(new_path)
                    if copy.append and existing is not None:
                        fd = _owned(target, new_path)
                        for chunk in src.files[path].chunks():
                            fd.append(chunk)
                    else:
                        target.files[new_path] = src.files[path]
        if target is not None:
            self.state.notify(target)  # files: no wait reads them, but keep it targeted
            self.state.mark_dirty()
        return Empty()

    def _file_commit(self, file: pfs.File | None) -> tuple[CommitRec, str]:
        if file is None or file.commit is None:
            raise errors.unknown("file cannot be nil")
        return self.state.resolve_commit(file.commit), normalize_path(file.path or "/")

    async def get_file(self, req: pfs.GetFileRequest, ctx: object) -> AsyncIterator[BytesValue]:
        commit, path = self._file_commit(req.file)
        fd = commit.files.get(path)
        if fd is None:
            if _under(commit.files, path):
                raise errors.unknown(
                    "cannot get directory or non-regular file. Use GetFileTAR instead"
                )
            raise errors.file_not_found(path, commit.repo_str, commit.id)
        for chunk in fd.chunks(offset=req.offset):
            yield BytesValue(value=chunk)

    def _file_info(self, commit: CommitRec, path: str) -> pfs.FileInfo:
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
            info.size_bytes = sum(commit.files[p].size for p in _under(commit.files, path))
        return info

    async def inspect_file(self, req: pfs.InspectFileRequest, ctx: object) -> pfs.FileInfo:
        commit, path = self._file_commit(req.file)
        if path not in commit.files and not _under(commit.files, path) and path != "/":
            raise errors.file_not_found(path, commit.repo_str, commit.id)
        return self._file_info(commit, path)

    async def list_file(self, req: pfs.ListFileRequest, ctx: object) -> AsyncIterator[pfs.FileInfo]:
        commit, path = self._file_commit(req.file)
        if path in commit.files:
            children = [path]
        else:
            matches = _under(commit.files, path)
            if not matches and path != "/":
                raise errors.file_not_found(path, commit.repo_str, commit.id)
            prefix = path.rstrip("/") + "/"
            children = sorted({prefix + p[len(prefix) :].split("/")[0] for p in matches})
        children = _paginate(children, req.pagination_marker, req.number, req.reverse)
        for child in children:
            yield self._file_info(commit, child)

    async def walk_file(self, req: pfs.WalkFileRequest, ctx: object) -> AsyncIterator[pfs.FileInfo]:
        commit, path = self._file_commit(req.file)
        matches = _under(commit.files, path)
        if not matches and path != "/":
            raise errors.file_not_found(path, commit.repo_str, commit.id)
        entries: set[str] = set()
        base = path.rstrip("/")
        for p in matches:
            parts = p[len(base) :].strip("/").split("/")
            for depth in range(0, len(parts) + 1):
                entries.add(normalize_path(base + "/" + "/".join(parts[:depth])))
        ordered = _paginate(sorted(entries), req.pagination_marker, req.number, req.reverse)
        for entry in ordered:
            yield self._file_info(commit, entry)

    async def glob_file(self, req: pfs.GlobFileRequest, ctx: object) -> AsyncIterator[pfs.FileInfo]:
        commit = self.state.resolve_commit(req.commit)
        for path in glob_paths(commit.files, req.pattern or "/"):
            yield self._file_info(commit, path)


def refuse_commit_shaped(name: str, context: str) -> None:
    """pachd refuses to store a branch named like a commit id (UUIDv4 without dashes):
    ``UpsertBranch`` (src/internal/pfsdb/branches.go), wrapped by its callers
    (``upsertBranchAndSyncCommit``: "update head"; createCommitOnBranch, startCommit:
    "create commit"; StartCommitInTransaction; createBranch: "create branch")."""
    if UUID_V4_HEX_RE.match(name):
        raise errors.unknown(f"{context}: update head: branch name cannot be a UUID V4")


def betterproto_set(msg: object, field_name: str) -> bool:
    """Whether a oneof member / message field was actually sent."""
    import betterproto

    group = msg._betterproto.oneof_group_by_field.get(field_name)  # type: ignore[attr-defined]
    if group is not None:
        which, _ = betterproto.which_one_of(msg, group)  # type: ignore[arg-type]
        return which == field_name
    return getattr(msg, field_name, None) is not None


def _under(files: dict[str, FileData], path: str) -> list[str]:
    if path == "/":
        return sorted(files)
    prefix = path.rstrip("/") + "/"
    return sorted(p for p in files if p == path or p.startswith(prefix))


def _delete(commit: CommitRec, path: str) -> None:
    path = normalize_path(path)
    for p in _under(commit.files, path):
        del commit.files[p]


def _owned(commit: CommitRec, path: str) -> FileData:
    fd = commit.files.get(path)
    if fd is None:
        fd = FileData(owner=commit)
        commit.files[path] = fd
    elif fd.owner is not commit:
        fd = fd.copy(owner=commit)
        commit.files[path] = fd
    return fd


def _append(commit: CommitRec, path: str, data: bytes) -> None:
    path = normalize_path(path)
    if path == "/":
        raise errors.unknown("cannot write a file at the root path")
    _owned(commit, path).append(data)


def _paginate(paths: list[str], marker: pfs.File | None, number: int, reverse: bool) -> list[str]:
    if reverse:
        paths = list(reversed(paths))
    if marker is not None and marker.path:
        m = normalize_path(marker.path)
        paths = [p for p in paths if (p < m if reverse else p > m)]
    if number:
        paths = paths[:number]
    return paths
