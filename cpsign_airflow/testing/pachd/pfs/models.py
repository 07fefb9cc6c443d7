"""PFS's state and pachd's rules for it: projects, repos, branches, commits, commit sets.

:class:`PfsBackend` holds the records (:mod:`.records`) and does what pachd's PFS
server does on each call (src/server/pfs/server/: server_commit.go, server_commit_set.go,
server_branch.go; pfsdb), taking the SDK's identifier messages (``pfs.Repo``,
``pfs.Branch``, ``pfs.Commit``) as pachd's API does, and raising pachd's errors. File
contents are :mod:`.files`, commit sets :mod:`.commit_sets`; the servicer (:mod:`.servicer`) only decodes and encodes.

Pipelines reach in through two hooks the PPS backend sets: a new output commit
(``on_output_commit``: its job) and whether a repo is a pipeline's output
(``is_pipeline_output``: DeleteRepo refuses it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from pachyderm_sdk.api import pfs

from .. import errors
from ..errors import DEFAULT_PROJECT
from ..events import Events
from . import files
from .commit_sets import CommitSets
from .records import (
    UUID_V4_HEX_RE,
    BranchRec,
    CommitRec,
    ProjectRec,
    RepoKey,
    RepoRec,
    is_commit_id,
    new_id,
    normalize_path,
    now,
    validate_name,
)


def project_name(project: pfs.Project | None) -> str:
    return (project.name if project else "") or DEFAULT_PROJECT


def refuse_commit_shaped(name: str, context: str) -> None:
    """pachd refuses to store a branch named like a commit id (UUIDv4 without dashes):
    ``UpsertBranch`` (src/internal/pfsdb/branches.go), wrapped by its callers
    (``upsertBranchAndSyncCommit``: "update head"; createCommitOnBranch, startCommit:
    "create commit"; StartCommitInTransaction; createBranch: "create branch")."""
    if UUID_V4_HEX_RE.match(name):
        raise errors.unknown(f"{context}: update head: branch name cannot be a UUID V4")


class PfsBackend(CommitSets):
    """Projects, repos (with their branches and commits) and commit sets."""

    def __init__(self, events: Events) -> None:
        self.events = events
        self.projects: dict[str, ProjectRec] = {DEFAULT_PROJECT: ProjectRec(DEFAULT_PROJECT)}
        self.repos: dict[RepoKey, RepoRec] = {}
        self.commit_sets: dict[str, list[CommitRec]] = {}  # in creation order
        #: seconds from FinishCommit's FINISHING to the PFS master's FINISHED (finish_commit)
        self.finish_delay: Callable[[], float] = lambda: 0.0
        #: set by the PPS backend: called with each commit opened on a branch downstream
        #: of a change, and its commit set id (a pipeline's output commit: its job)
        self.on_output_commit: Callable[[BranchRec, CommitRec, str], None] | None = None
        #: set by the PPS backend: whether a repo is a pipeline's output repo
        self.is_pipeline_output: Callable[[RepoRec], bool] = lambda repo: False

    def mark_dirty(self) -> None:
        self.events.mark_dirty()

    # --------------------------------------------------------------- projects
    def project(self, name: str) -> ProjectRec:
        name = name or DEFAULT_PROJECT
        rec = self.projects.get(name)
        if rec is None:
            raise errors.project_not_found(name)
        return rec

    def create_project(self, name: str, description: str, update: bool) -> None:
        validate_name("project", name)
        existing = self.projects.get(name)
        if existing is not None:
            if not update:
                raise errors.project_exists(name)
            existing.description = description
            self.mark_dirty()
            return
        self.projects[name] = ProjectRec(name, description)
        self.mark_dirty()

    def delete_project(self, name: str, force: bool) -> None:
        self.project(name)
        repos = [r for r in self.repos.values() if r.project == name]
        if repos and not force:
            raise errors.unknown(f"cannot delete project {name}: it still has repos")
        for repo in repos:
            self.drop_repo(repo)
        del self.projects[name]
        self.mark_dirty()

    # ------------------------------------------------------------------ repos
    def repo(self, repo: pfs.Repo | None) -> RepoRec:
        if repo is None or not repo.name:
            raise errors.unknown("repo name cannot be empty")
        project = (repo.project.name if repo.project else "") or DEFAULT_PROJECT
        repo_type = repo.type or "user"
        rec = self.repos.get((project, repo.name, repo_type))
        if rec is None:
            if project not in self.projects:
                raise errors.project_not_found(project)
            raise errors.repo_not_found(project, repo.name, repo_type)
        return rec

    def add_repo(
        self, project: str, name: str, repo_type: str = "user", description: str = ""
    ) -> RepoRec:
        """A new repo, unchecked (CreateRepo's checks are :meth:`create_repo`'s)."""
        rec = RepoRec(project=project, name=name, type=repo_type, description=description)
        self.repos[rec.key] = rec
        return rec

    def create_repo(self, repo: pfs.Repo | None, description: str, update: bool) -> None:
        if repo is None:
            raise errors.unknown("repo cannot be nil")
        project = project_name(repo.project)
        validate_name("repo", repo.name)
        repo_type = repo.type or "user"
        self.project(project)
        existing = self.repos.get((project, repo.name, repo_type))
        if existing is not None:
            if not update:
                raise errors.repo_exists(project, repo.name, repo_type)
            existing.description = description
            self.mark_dirty()
            return
        self.add_repo(project, repo.name, repo_type, description)
        self.events.notify()
        self.mark_dirty()

    def list_repos(self, repo_type: str, projects: set[str]) -> list[RepoRec]:
        """Newest first, of ``repo_type`` (any when empty), in ``projects`` (any when empty)."""
        repos = sorted(self.repos.values(), key=lambda r: r.created, reverse=True)
        return [
            r
            for r in repos
            if not (repo_type and r.type != repo_type)
            and not (projects and r.project not in projects)
        ]

    def drop_repo(self, repo: RepoRec) -> None:
        """Remove ``repo``: from other branches' provenance, from the commit sets, the repo."""
        for other in self.repos.values():
            for branch in other.branches.values():
                branch.provenance = [p for p in branch.provenance if p.repo is not repo]
        for cid in list(repo.commits):
            members = self.commit_sets.get(cid, [])
            members[:] = [c for c in members if c.repo is not repo]
            if not members:
                self.commit_sets.pop(cid, None)
        self.repos.pop(repo.key, None)
        self.mark_dirty()  # also covers DeletePipeline, which drops repos through here

    def delete_repo(self, repo_msg: pfs.Repo | None, force: bool) -> None:
        repo = self.repo(repo_msg)
        if not force:
            if self.is_pipeline_output(repo):
                raise errors.unknown(
                    f"cannot delete repo {repo.display}: it is the output repo of pipeline "
                    f"{repo.name}; delete the pipeline instead"
                )
            for other in self.repos.values():
                if other is repo:
                    continue
                for branch in other.branches.values():
                    if any(p.repo is repo for p in branch.provenance):
                        raise errors.unknown(
                            f"cannot delete repo {repo.display}: branch {other.display}@"
                            f"{branch.name} depends on it"
                        )
        self.drop_repo(repo)
        self.events.notify()

    # --------------------------------------------------------------- branches
    def branch(self, branch: pfs.Branch) -> BranchRec:
        repo = self.repo(branch.repo)
        rec = repo.branches.get(branch.name)
        if rec is None:
            raise errors.branch_not_found(branch.name, repo.display)
        return rec

    def subvenant_branches(self, roots: list[BranchRec]) -> list[BranchRec]:
        """Branches downstream of ``roots`` (transitively), in dependency order."""
        all_branches = [b for r in self.repos.values() for b in r.branches.values()]
        affected: set[int] = {id(b) for b in roots}
        ordered: list[BranchRec] = []
        progress = True
        while progress:
            progress = False
            for b in all_branches:
                if id(b) in affected:
                    continue
                if any(id(p) in affected for p in b.provenance):
                    # only emit once all affected provenance is already emitted
                    pending = [
                        p
                        for p in b.provenance
                        if id(p) in affected and p not in roots and p not in ordered
                    ]
                    if pending:
                        continue
                    affected.add(id(b))
                    ordered.append(b)
                    progress = True
        return ordered

    @staticmethod
    def upstream_branches(branch: BranchRec) -> list[BranchRec]:
        """The branch's provenance, transitively."""
        upstream: list[BranchRec] = []
        stack = list(branch.provenance)
        while stack:
            b = stack.pop()
            if b not in upstream:
                upstream.append(b)
                stack.extend(b.provenance)
        return upstream

    def create_branch(
        self,
        branch_msg: pfs.Branch | None,
        provenance_msgs: list[pfs.Branch],
        head_msg: pfs.Commit | None,
        new_commit_set: bool,
    ) -> None:
        if branch_msg is None:
            raise errors.unknown("branch cannot be nil")
        repo = self.repo(branch_msg.repo)
        validate_name("branch", branch_msg.name)
        provenance = [self.branch(p) for p in provenance_msgs]
        head = (
            self.resolve_commit(head_msg)
            if head_msg is not None and (head_msg.id or head_msg.branch)
            else None
        )
        refuse_commit_shaped(branch_msg.name, "create branch")
        branch = repo.branches.get(branch_msg.name)
        created = branch is None
        if branch is None:
            branch = BranchRec(repo=repo, name=branch_msg.name)
            repo.branches[branch.name] = branch
        branch.provenance = provenance
        branch.updated = now()
        if head is not None:
            branch.head = head
        elif created or new_commit_set or provenance:
            # pachd 2.x: every branch has a head; a new branch gets a fresh commit
            commit_id = new_id()
            rec = self.add_commit(branch, commit_id, pfs.OriginKind.AUTO)
            for prov in provenance:
                if prov.head is not None:
                    rec.provenance.append(prov.head)
                    prov.head.subvenance.append(rec)
            if not provenance:
                self.mark_finished(rec)
            self.propagate(commit_id, [branch])
        self.events.notify()
        self.mark_dirty()

    def list_branches(self, repo_msg: pfs.Repo | None, reverse: bool) -> list[BranchRec]:
        if repo_msg is not None and repo_msg.name:
            branches = list(self.repo(repo_msg).branches.values())
        else:
            branches = [b for r in self.repos.values() for b in r.branches.values()]
        branches.sort(key=lambda b: b.created, reverse=not reverse)
        return branches

    def delete_branch(self, branch_msg: pfs.Branch | None, force: bool) -> None:
        if branch_msg is None:
            raise errors.unknown("branch cannot be nil")
        branch = self.branch(branch_msg)
        downstream = self.subvenant_branches([branch])
        if downstream and not force:
            raise errors.unknown(
                f"branch {branch.name} has subvenance; use force to delete it anyway"
            )
        for b in downstream:
            b.provenance = [p for p in b.provenance if p is not branch]
        del branch.repo.branches[branch.name]
        self.events.notify()
        self.mark_dirty()

    # ---------------------------------------------------------------- commits
    def resolve_commit(self, commit: pfs.Commit | None) -> CommitRec:
        if commit is None:
            raise errors.unknown("commit cannot be nil")
        repo_msg = commit.repo if commit.repo and commit.repo.name else None
        if repo_msg is None and commit.branch and commit.branch.repo:
            repo_msg = commit.branch.repo
        repo = self.repo(repo_msg)
        branch_name = commit.branch.name if commit.branch else ""
        # pachd (pickCommitTx, server_commit.go) prints the handle as repo@ID, or
        # repo@BRANCH without an ID (pfs.Commit.String), and parses that text back
        # (CommitPicker.UnmarshalText, src/pfs/pfs.go): a commit-shaped ref is a commit
        # id, whichever field it came in, and any other ref is a branch name.
        ref = commit.id or branch_name
        if is_commit_id(ref):
            rec = repo.commits.get(ref.lower())
            if rec is None and commit.id:  # a set id: its provenance may hold repo's commit
                rec = self.commit_set_alias(repo, ref.lower())
            if rec is not None:
                return rec
            raise errors.commit_not_found(repo.display, ref)
        if commit.id:
            alias = repo.branches.get(commit.id)
            if alias is not None and alias.head is not None:
                return alias.head
            raise errors.commit_not_found(repo.display, commit.id)
        if not branch_name:
            raise errors.unknown("commit must have an ID or a branch")
        branch = repo.branches.get(branch_name)
        if branch is None:
            raise errors.branch_not_found(branch_name, repo.display)
        if branch.head is None:
            raise errors.commit_not_found(repo.display, branch_name)
        return branch.head

    def commit_changed(self, rec: CommitRec) -> None:
        """Wake waiters on ``rec`` (its state), its repo (SubscribeCommit) and the
        commits whose readiness depends on it (its subvenance) and their repos."""
        self.events.notify(rec, rec.repo, *rec.subvenance, *(c.repo for c in rec.subvenance))

    def add_commit(
        self,
        branch: BranchRec,
        commit_id: str,
        origin: pfs.OriginKind,
        description: str = "",
        parent: CommitRec | None = None,
        inherit_files: bool = True,
    ) -> CommitRec:
        parent = parent if parent is not None else branch.head
        rec = CommitRec(
            repo=branch.repo,
            id=commit_id,
            branch=branch.name,
            origin=origin,
            description=description,
            parent=parent,
        )
        if parent is not None:
            parent.children.append(rec)
            if inherit_files:
                rec.files = dict(parent.files)
        branch.repo.commits[commit_id] = rec
        branch.head = rec
        branch.updated = now()
        self.commit_sets.setdefault(commit_id, []).append(rec)
        self.events.notify(branch.repo)
        return rec

    def propagate(self, commit_set_id: str, changed: list[BranchRec]) -> list[CommitRec]:
        """Open output commits (and, through ``on_output_commit``, jobs) in
        ``commit_set_id`` downstream of ``changed``."""
        created: list[CommitRec] = []
        for branch in self.subvenant_branches(changed):
            if branch.head is not None and branch.head.id == commit_set_id:
                continue
            rec = self.add_commit(branch, commit_set_id, pfs.OriginKind.AUTO, inherit_files=False)
            for prov in branch.provenance:
                if prov.head is not None:
                    rec.provenance.append(prov.head)
                    prov.head.subvenance.append(rec)
            created.append(rec)
            if self.on_output_commit is not None:
                self.on_output_commit(branch, rec, commit_set_id)
        return created

    def start_commit(
        self, branch_msg: pfs.Branch | None, description: str, parent_msg: pfs.Commit | None
    ) -> CommitRec:
        if branch_msg is None or not branch_msg.name:
            raise errors.unknown("branch cannot be empty")
        repo = self.repo(branch_msg.repo)
        validate_name("branch", branch_msg.name)
        refuse_commit_shaped(
            branch_msg.name, "start commit in transaction: create commit: create commit"
        )
        branch = repo.branches.get(branch_msg.name)
        if branch is None:
            branch = BranchRec(repo=repo, name=branch_msg.name)
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
        if parent_msg is not None and (parent_msg.id or parent_msg.branch):
            parent = self.resolve_commit(parent_msg)
        commit_id = new_id()
        rec = self.add_commit(branch, commit_id, pfs.OriginKind.USER, description, parent=parent)
        self.propagate(commit_id, [branch])  # add_commit notifies the repos
        self.mark_dirty()
        return rec

    def finish_commit(
        self, commit: pfs.Commit | None, description: str, error: str, force: bool
    ) -> None:
        rec = self.resolve_commit(commit)
        if rec.is_finished or rec.finishing is not None:
            raise errors.commit_finished(rec.repo_str, rec.id)
        if rec.provenance and not force:
            raise errors.unknown(
                "cannot finish a pipeline output or meta commit, use 'stop job' instead"
            )
        # pachd 2.12 (server_commit.go finishCommit) only sets FINISHING; its PFS master
        # (master.go postProcessCommit) compacts and validates the commit and sets FINISHED
        # later, in another transaction: here ``finish_delay`` seconds later, never at once.
        if description:
            rec.description = description
        self.mark_finishing(rec)
        asyncio.get_running_loop().call_later(
            max(0.0, self.finish_delay()), self._master_finishes, rec, error
        )
        self.mark_dirty()

    def _master_finishes(self, rec: CommitRec, error: str) -> None:
        if not rec.is_finished:
            self.mark_finished(rec, error=error)
            self.mark_dirty()

    def mark_finished(self, rec: CommitRec, error: str = "", description: str = "") -> None:
        """Set ``finished`` (and ``finishing`` if unset): the commit is done."""
        ts = now()
        if rec.finishing is None:
            rec.finishing = ts
        rec.finished = ts
        if error:
            rec.error = error
        if description:
            rec.description = description
        for fd in rec.files.values():
            if fd.owner is rec:
                fd.owner = None
        self.commit_changed(rec)

    def mark_finishing(self, rec: CommitRec) -> None:
        """Mark ``rec`` FINISHING (FinishCommit, or its job is writing its output)."""
        if rec.finishing is None:
            rec.finishing = now()
        self.commit_changed(rec)

    async def wait_commit(self, rec: CommitRec, wanted: pfs.CommitState) -> None:
        """Until ``rec`` reached ``wanted`` (InspectCommit ``wait``)."""
        await self.events.wait_for(lambda: rec.reached(wanted), lambda: (rec, *rec.provenance))

    def list_commits(
        self,
        repo_msg: pfs.Repo | None,
        to: pfs.Commit | None,
        from_: pfs.Commit | None,
        origin_kind: pfs.OriginKind,
        reverse: bool,
        number: int,
    ) -> list[CommitRec]:
        repo = self.repo(repo_msg)
        if to is not None and (to.id or to.branch):
            commits: list[CommitRec] = []
            cur: CommitRec | None = self.resolve_commit(to)
            stop = self.resolve_commit(from_) if from_ and from_.id else None
            while cur is not None and cur is not stop:
                commits.append(cur)
                cur = cur.parent
        else:
            commits = sorted(repo.commits.values(), key=lambda c: c.started, reverse=True)
        if origin_kind:
            commits = [c for c in commits if c.origin == origin_kind]
        if reverse:
            commits.reverse()
        if number:
            commits = commits[:number]
        return commits

    async def subscribe_commits(
        self,
        repo_msg: pfs.Repo | None,
        branch: str,
        from_: pfs.Commit | None,
        state: pfs.CommitState,
    ) -> AsyncIterator[CommitRec]:
        """Each commit of the repo (on ``branch``, from ``from_`` on) once it reached
        ``state`` (STARTED by default), oldest first; never ends."""
        repo = self.repo(repo_msg)
        wanted = state or pfs.CommitState.STARTED
        sent: set[str] = set()
        start = self.resolve_commit(from_) if from_ and from_.id else None
        ready: list[CommitRec] = []

        def have() -> bool:
            ready[:] = [
                c
                for c in sorted(repo.commits.values(), key=lambda c: c.started)
                if c.id not in sent
                and not (branch and c.branch != branch)
                and not (start is not None and c.started < start.started)
                and c.reached(wanted)
            ]
            return bool(ready)

        while True:
            await self.events.wait_for(have, lambda: (repo,))
            for c in list(ready):
                sent.add(c.id)
                yield c

    # ------------------------------------------------------------------ files
    def writable_commit(self, commit: pfs.Commit | None) -> CommitRec:
        """ModifyFile's target: pachd refuses writes once FINISHING is set, FINISHED or
        not (server_file.go)."""
        rec = self.resolve_commit(commit)
        files.check_open(rec)
        return rec

    def copy_file(
        self, target: CommitRec, src_commit: pfs.Commit, src_path: str, dst: str, append: bool
    ) -> None:
        files.copy(target, self.resolve_commit(src_commit), src_path, dst, append)

    def files_changed(self, target: CommitRec) -> None:
        """After a ModifyFile: no wait reads files, but keep it targeted."""
        self.events.notify(target)
        self.mark_dirty()

    def file_commit(self, file: pfs.File | None) -> tuple[CommitRec, str]:
        if file is None or file.commit is None:
            raise errors.unknown("file cannot be nil")
        return self.resolve_commit(file.commit), normalize_path(file.path or "/")
