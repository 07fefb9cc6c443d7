"""PFS's records: projects, repos, branches, commits (the rows pachd keeps in pfsdb).

Plain objects linked to each other (a commit to its repo, parent, children and
provenance); :mod:`.models` holds them and applies pachd's rules. Also the names
and ids pachd accepts (``NAME_RE``, ``is_commit_id``) and the path form files use.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pachyderm_sdk.api import pfs

from .. import errors
from ..errors import repo_str
from ..filestore import FileData

NAME_RE = re.compile(r"^[a-zA-Z0-9_-]+\Z")
# pachd's uuid.IsUUIDWithoutDashes (src/internal/uuid/uuid.go): what a branch may not be named
UUID_V4_HEX_RE = re.compile(r"^[0-9a-f]{12}4[0-9a-f]{19}\Z")

RepoKey = tuple[str, str, str]  # (project, name, type)
BranchKey = tuple[str, str, str, str]  # (project, repo name, repo type, branch)


def now() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    return uuid.uuid4().hex


def is_commit_id(ref: str) -> bool:
    """Whether pachd reads ``ref`` (after the ``@``) as a global commit id, not a branch name.

    ``CommitPicker.UnmarshalText`` (src/pfs/pfs.go): 32 hex digits (either case) with a
    ``4`` as the 13th, as in a UUIDv4 without dashes; anything else names a branch.
    """
    return len(ref) == 32 and ref[12] == "4" and all(ch in "0123456789abcdefABCDEF" for ch in ref)


def normalize_path(path: str) -> str:
    parts = [p for p in path.split("/") if p not in ("", ".")]
    return "/" + "/".join(parts)


@dataclass
class ProjectRec:
    name: str
    description: str = ""
    created: datetime = field(default_factory=now)


@dataclass(eq=False)
class CommitRec:
    repo: RepoRec
    id: str
    branch: str | None
    origin: pfs.OriginKind = pfs.OriginKind.USER
    description: str = ""
    parent: CommitRec | None = None
    children: list[CommitRec] = field(default_factory=list)
    provenance: list[CommitRec] = field(default_factory=list)
    subvenance: list[CommitRec] = field(default_factory=list)
    files: dict[str, FileData] = field(default_factory=dict)
    started: datetime = field(default_factory=now)
    finishing: datetime | None = None
    finished: datetime | None = None
    error: str = ""

    @property
    def repo_str(self) -> str:
        return self.repo.display

    @property
    def is_finished(self) -> bool:
        return self.finished is not None

    @property
    def is_ready(self) -> bool:
        return all(p.is_finished for p in self.provenance)

    def reached(self, wanted: pfs.CommitState) -> bool:
        if wanted in (pfs.CommitState.COMMIT_STATE_UNKNOWN, pfs.CommitState.STARTED):
            return True
        if wanted == pfs.CommitState.READY:
            return self.is_ready
        if wanted == pfs.CommitState.FINISHING:
            return self.finishing is not None
        return self.is_finished

    def size(self) -> int:
        return sum(fd.size for fd in self.files.values())

    def to_proto(self) -> pfs.Commit:
        return pfs.Commit(
            repo=self.repo.to_proto(),
            id=self.id,
            branch=pfs.Branch(repo=self.repo.to_proto(), name=self.branch or ""),
        )

    def info(self) -> pfs.CommitInfo:
        size = self.size()
        info = pfs.CommitInfo(
            commit=self.to_proto(),
            origin=pfs.CommitOrigin(kind=self.origin),
            description=self.description,
            child_commits=[c.to_proto() for c in self.children],
            started=self.started,
            direct_provenance=[c.to_proto() for c in self.provenance],
            direct_subvenance=[c.to_proto() for c in self.subvenance],
            error=self.error,
            size_bytes_upper_bound=size,
            created_at=self.started,
            updated_at=self.finished or self.finishing or self.started,
        )
        if self.parent is not None:
            info.parent_commit = self.parent.to_proto()
        if self.finishing is not None:
            info.finishing = self.finishing
        if self.finished is not None:
            info.finished = self.finished
            info.details = pfs.CommitInfoDetails(size_bytes=size)
        return info


@dataclass(eq=False)
class BranchRec:
    repo: RepoRec
    name: str
    head: CommitRec | None = None
    provenance: list[BranchRec] = field(default_factory=list)
    created: datetime = field(default_factory=now)
    updated: datetime = field(default_factory=now)

    @property
    def key(self) -> BranchKey:
        return (*self.repo.key, self.name)

    def to_proto(self) -> pfs.Branch:
        return pfs.Branch(repo=self.repo.to_proto(), name=self.name)


@dataclass(eq=False)
class RepoRec:
    project: str
    name: str
    type: str = "user"
    description: str = ""
    created: datetime = field(default_factory=now)
    branches: dict[str, BranchRec] = field(default_factory=dict)
    commits: dict[str, CommitRec] = field(default_factory=dict)

    @property
    def key(self) -> RepoKey:
        return (self.project, self.name, self.type)

    @property
    def display(self) -> str:
        return repo_str(self.project, self.name, self.type)

    def to_proto(self) -> pfs.Repo:
        return pfs.Repo(name=self.name, type=self.type, project=pfs.Project(name=self.project))

    def size(self) -> int:
        """The size of its largest branch head (what InspectRepo reports)."""
        return max((b.head.size() for b in self.branches.values() if b.head), default=0)


def validate_name(kind: str, name: str) -> None:
    if not NAME_RE.match(name or ""):
        raise errors.invalid_name(kind, name)
