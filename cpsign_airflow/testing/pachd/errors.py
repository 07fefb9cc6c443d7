"""gRPC status errors with the codes and texts real pachd answers.

Go errors that carry no gRPC status (plain ``fmt.Errorf``/``errors.New`` in pachd)
reach clients as ``UNKNOWN``; pachd's typed errors (``ErrRepoNotFound`` & co.)
carry ``NOT_FOUND``/``ALREADY_EXISTS``.  The helpers below follow that split.
"""

from __future__ import annotations

import grpc

DEFAULT_PROJECT = "default"


class PachdError(Exception):
    """An error answered to the client as a gRPC status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def repo_str(project: str, name: str, repo_type: str = "user") -> str:
    """Go's ``Repo.String()``: ``project/name`` (``project/name.type`` for system repos)."""
    base = f"{project}/{name}"
    return base if repo_type in ("", "user") else f"{base}.{repo_type}"


def unknown(message: str) -> PachdError:
    return PachdError(grpc.StatusCode.UNKNOWN, message)


def repo_not_found(project: str, name: str, repo_type: str = "user") -> PachdError:
    return PachdError(
        grpc.StatusCode.NOT_FOUND, f"repo {repo_str(project, name, repo_type)} not found"
    )


def repo_exists(project: str, name: str, repo_type: str = "user") -> PachdError:
    return PachdError(
        grpc.StatusCode.ALREADY_EXISTS,
        f"repo {repo_str(project, name, repo_type)} already exists",
    )


def project_not_found(name: str) -> PachdError:
    return PachdError(grpc.StatusCode.NOT_FOUND, f'project "{name}" not found')


def project_exists(name: str) -> PachdError:
    return PachdError(grpc.StatusCode.ALREADY_EXISTS, f"project {name} already exists")


def branch_not_found(branch: str, repo: str) -> PachdError:
    return PachdError(grpc.StatusCode.NOT_FOUND, f'branch "{branch}" not found in repo {repo}')


def commit_not_found(repo: str, commit_id: str) -> PachdError:
    return PachdError(grpc.StatusCode.NOT_FOUND, f"commit {repo}@{commit_id} not found")


def commit_set_not_found(commit_set_id: str) -> PachdError:
    return PachdError(grpc.StatusCode.NOT_FOUND, f"no commits found for commitset {commit_set_id}")


def commit_finished(repo: str, commit_id: str) -> PachdError:
    return unknown(f"commit {repo}@{commit_id} has already finished")


def file_not_found(path: str, repo: str, commit_id: str) -> PachdError:
    return PachdError(
        grpc.StatusCode.NOT_FOUND,
        f"file {path} not found in repo {repo} at commit {commit_id}",
    )


def pipeline_not_found(name: str) -> PachdError:
    return PachdError(grpc.StatusCode.NOT_FOUND, f'pipeline "{name}" not found')


def pipeline_exists(project: str, name: str) -> PachdError:
    return PachdError(grpc.StatusCode.ALREADY_EXISTS, f'pipeline "{project}/{name}" already exists')


def job_not_found(project: str, pipeline: str, job_id: str) -> PachdError:
    # pachd's collection error names the collection ("jobs") and the key
    return PachdError(grpc.StatusCode.NOT_FOUND, f"jobs {project}/{pipeline}@{job_id} not found")


def repo_name_taken(name: str) -> PachdError:
    return unknown(
        f'pipeline "{name}" cannot be created because a repo with the same name already exists'
    )


def invalid_name(kind: str, name: str) -> PachdError:
    return unknown(
        f"{kind} name ({name}) invalid: only alphanumeric characters, underscores, "
        "and dashes are allowed"
    )


def secret_not_found(action: str, name: str) -> PachdError:
    # pachd wraps the Kubernetes API error as a plain error (UNKNOWN)
    return unknown(f'failed to {action} secret: secrets "{name}" not found')
