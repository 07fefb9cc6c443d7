"""PFS's files: a commit's paths and contents, and pachd's rules for writing and reading
them (src/server/pfs/server/server_file.go).

A commit's files are a dict ``path -> FileData`` (copy-on-write: a commit shares its
parent's FileData until it writes to a path); directories are implied by paths.
"""

from __future__ import annotations

from pachyderm_sdk.api import pfs

from .. import errors
from ..datums import glob_paths
from ..filestore import FileData
from .records import CommitRec, normalize_path


def under(files: dict[str, FileData], path: str) -> list[str]:
    """The file paths at or below ``path``, sorted."""
    if path == "/":
        return sorted(files)
    prefix = path.rstrip("/") + "/"
    return sorted(p for p in files if p == path or p.startswith(prefix))


# ------------------------------------------------------------------ writing
def check_open(commit: CommitRec) -> None:
    """pachd refuses writes once FINISHING is set, FINISHED or not (server_file.go)."""
    if commit.finishing is not None or commit.is_finished:
        raise errors.commit_finished(commit.repo_str, commit.id)


def delete(commit: CommitRec, path: str) -> None:
    path = normalize_path(path)
    for p in under(commit.files, path):
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


def append(commit: CommitRec, path: str, data: bytes) -> None:
    path = normalize_path(path)
    if path == "/":
        raise errors.unknown("cannot write a file at the root path")
    _owned(commit, path).append(data)


def copy(target: CommitRec, src: CommitRec, src_path: str, dst: str, append: bool) -> None:
    """CopyFile: ``src_path`` of ``src`` (a file or a directory) to ``dst`` of ``target``,
    replacing what is there unless ``append``."""
    src_path = normalize_path(src_path)
    dst = normalize_path(dst)
    matches = under(src.files, src_path)
    if not matches:
        raise errors.file_not_found(src_path, src.repo_str, src.id)
    if not append:
        delete(target, dst)
    for path in matches:
        rel = path[len(src_path) :] if src_path != "/" else path
        new_path = normalize_path(dst + rel) if path != src_path else dst
        existing = target.files.get(new_path)
        if append and existing is not None:
            fd = _owned(target, new_path)
            for chunk in src.files[path].chunks():
                fd.append(chunk)
        else:
            target.files[new_path] = src.files[path]


# ------------------------------------------------------------------ reading
def get(commit: CommitRec, path: str) -> FileData:
    """GetFile's file: a regular file only."""
    fd = commit.files.get(path)
    if fd is None:
        if under(commit.files, path):
            raise errors.unknown("cannot get directory or non-regular file. Use GetFileTAR instead")
        raise errors.file_not_found(path, commit.repo_str, commit.id)
    return fd


def check_exists(commit: CommitRec, path: str) -> None:
    """InspectFile: a file, a directory, or the root."""
    if path not in commit.files and not under(commit.files, path) and path != "/":
        raise errors.file_not_found(path, commit.repo_str, commit.id)


def paginate(paths: list[str], marker: pfs.File | None, number: int, reverse: bool) -> list[str]:
    if reverse:
        paths = list(reversed(paths))
    if marker is not None and marker.path:
        m = normalize_path(marker.path)
        paths = [p for p in paths if (p < m if reverse else p > m)]
    if number:
        paths = paths[:number]
    return paths


def list_children(
    commit: CommitRec, path: str, marker: pfs.File | None, number: int, reverse: bool
) -> list[str]:
    """ListFile: the file itself, or a directory's entries (files and directories)."""
    if path in commit.files:
        children = [path]
    else:
        matches = under(commit.files, path)
        if not matches and path != "/":
            raise errors.file_not_found(path, commit.repo_str, commit.id)
        prefix = path.rstrip("/") + "/"
        children = sorted({prefix + p[len(prefix) :].split("/")[0] for p in matches})
    return paginate(children, marker, number, reverse)


def walk(
    commit: CommitRec, path: str, marker: pfs.File | None, number: int, reverse: bool
) -> list[str]:
    """WalkFile: ``path`` and everything below it, directories included, sorted."""
    matches = under(commit.files, path)
    if not matches and path != "/":
        raise errors.file_not_found(path, commit.repo_str, commit.id)
    entries: set[str] = set()
    base = path.rstrip("/")
    for p in matches:
        parts = p[len(base) :].strip("/").split("/")
        for depth in range(0, len(parts) + 1):
            entries.add(normalize_path(base + "/" + "/".join(parts[:depth])))
    return paginate(sorted(entries), marker, number, reverse)


def glob(commit: CommitRec, pattern: str) -> list[str]:
    """GlobFile: the paths matching ``pattern`` in pachd's glob syntax."""
    return glob_paths(commit.files, pattern or "/")


def dir_size(commit: CommitRec, path: str) -> int:
    return sum(commit.files[p].size for p in under(commit.files, path))
