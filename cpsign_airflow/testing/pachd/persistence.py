"""Saving the local pachd's state to a directory and loading it back.

pachd keeps its metadata in etcd/postgres and file contents in object storage; here
the metadata is one JSON document, ``DATA_DIR/state.json``, rewritten atomically
(temp file + ``os.replace``) so a crash leaves the previous or the new version,
never half of one. Contents go to ``DATA_DIR/blobs/<sha256 of the contents>``:
content-addressed and written once, so a save only writes files it has not seen
before, and commits sharing a file (copy-on-write snapshots) share one blob.

The state holds secrets (``pachctl create secret``) and the repos' data: DATA_DIR and
``blobs/`` are created 0700 (tightened to 0700 if they exist with wider modes) and
every file is written 0600, whatever the process's umask.

On load, jobs that were not done are reset to JOB_CREATED with an empty output
commit; the server reschedules them and they run from the start (every datum not
carried over from a parent job runs again). Provenance pointing into repos that
were deleted is dropped, and a job's spec is re-derived from its pipeline's
current effective spec.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from pachyderm_sdk.api import pfs, pps

from .filestore import FileData
from .pfs.records import BranchRec, CommitRec, ProjectRec, RepoRec
from .pps.records import JobRec, PipelineRec
from .state import State

FORMAT = 1
STATE_FILE = "state.json"
BLOBS_DIR = "blobs"
DIR_MODE = 0o700
FILE_MODE = 0o600

CommitRef = tuple[str, str, str, str]  # (project, repo name, repo type, commit id)


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _ref(commit: CommitRec | None) -> list[str] | None:
    return None if commit is None else [*commit.repo.key, commit.id]


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) mode 0700, or take group/other access away."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        os.chmod(path, DIR_MODE)


def _atomic_write(path: Path, chunks: Any) -> None:
    """Write to a temp file beside ``path`` (mode 0600), then rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)  # mkstemp's mode already; explicit, as the state holds secrets
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------- save
def save(
    state: State, data_dir: str | Path, written: set[str] | None = None, prune: bool = False
) -> None:
    """Write ``state`` under ``data_dir``: new blobs first, then ``state.json``.

    ``written`` caches digests known to be on disk (saves them a stat per file);
    ``prune`` removes blobs no longer referenced (left by files of open commits
    that changed after an earlier save, or by deleted repos).
    """
    root = Path(data_dir)
    blobs = root / BLOBS_DIR
    private_dir(root)
    private_dir(blobs)
    written = set() if written is None else written
    referenced: set[str] = set()

    def blob(fd: FileData) -> str:
        digest = fd.digest().hex()
        referenced.add(digest)
        if digest not in written:
            path = blobs / digest
            if not path.exists():
                _atomic_write(path, fd.chunks())
            written.add(digest)
        return digest

    def commit(c: CommitRec) -> dict[str, Any]:
        return {
            "id": c.id,
            "branch": c.branch,
            "origin": c.origin.name,
            "description": c.description,
            "parent": c.parent.id if c.parent is not None else None,
            "provenance": [_ref(p) for p in c.provenance],
            "started": _ts(c.started),
            "finishing": _ts(c.finishing),
            "finished": _ts(c.finished),
            "error": c.error,
            "files": {path: blob(fd) for path, fd in c.files.items()},
        }

    def branch(b: BranchRec) -> dict[str, Any]:
        return {
            "name": b.name,
            "head": _ref(b.head),
            "provenance": [list(p.key) for p in b.provenance],
            "created": _ts(b.created),
            "updated": _ts(b.updated),
        }

    pfs_state, pps_state = state.pfs, state.pps
    doc = {
        "format": FORMAT,
        "projects": [
            {"name": p.name, "description": p.description, "created": _ts(p.created)}
            for p in pfs_state.projects.values()
        ],
        "repos": [
            {
                "key": list(r.key),
                "description": r.description,
                "created": _ts(r.created),
                "commits": [commit(c) for c in r.commits.values()],
                "branches": [branch(b) for b in r.branches.values()],
            }
            for r in pfs_state.repos.values()
        ],
        "pipelines": [
            {
                "key": list(p.key),
                "effective_json": p.effective_json,
                "user_json": p.user_json,
                "salt": p.salt,
                "version": p.version,
                "spec_commit": _ref(p.spec_commit),
                "created": _ts(p.created),
                "updated": _ts(p.updated),
                "last_job_state": p.last_job_state.name,
                "state": p.state.name,
                "reason": p.reason,
            }
            for p in pps_state.pipelines.values()
        ],
        "jobs": [
            {
                "pipeline": list(j.pipeline.key),
                "id": j.id,
                "pipeline_version": j.pipeline_version,
                "output_commit": _ref(j.output_commit),
                "state": j.state.name,
                "states": [s.name for s in j.states],
                "reason": j.reason,
                "created": _ts(j.created),
                "started": _ts(j.started),
                "finished": _ts(j.finished),
                "data": [j.data_total, j.data_processed, j.data_skipped, j.data_failed],
                "logs": [[_ts(ts), line, datum] for ts, line, datum in j.logs],
                "salt": j.salt,
            }
            for j in pps_state.jobs.values()
        ],
        "commit_sets": {k: [_ref(c) for c in v] for k, v in pfs_state.commit_sets.items()},
        "secrets": {
            name: {"manifest": manifest, "created": _ts(pps_state.secret_created.get(name))}
            for name, manifest in pps_state.secrets.items()
        },
    }
    _atomic_write(root / STATE_FILE, [json.dumps(doc, separators=(",", ":")).encode()])
    if prune:
        for path in blobs.iterdir():
            if path.name not in referenced:
                path.unlink(missing_ok=True)
        written.intersection_update(referenced)


# ---------------------------------------------------------------------- load
def load(data_dir: str | Path) -> State | None:
    """The state saved under ``data_dir``, ready to serve; ``None`` if nothing was saved."""
    root = Path(data_dir)
    path = root / STATE_FILE
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    if doc.get("format") != FORMAT:
        raise ValueError(f"{path}: unsupported format {doc.get('format')!r}")
    state = State()
    pfs_state, pps_state = state.pfs, state.pps
    pfs_state.projects = {
        p["name"]: ProjectRec(p["name"], p["description"], _dt(p["created"]))
        for p in doc["projects"]
    }
    blob_cache: dict[str, FileData] = {}

    def blob(digest: str) -> FileData:
        # One FileData per blob: files are copy-on-write, so sharing is safe and saves memory.
        fd = blob_cache.get(digest)
        if fd is None:
            fd = FileData()
            with open(root / BLOBS_DIR / digest, "rb") as src:
                while chunk := src.read(1024 * 1024):
                    fd.append(chunk)
            blob_cache[digest] = fd
        return fd

    commits: dict[CommitRef, CommitRec] = {}
    pending: list[tuple[CommitRec, dict[str, Any]]] = []
    for r in doc["repos"]:
        project, name, repo_type = r["key"]
        repo = RepoRec(project, name, repo_type, r["description"], _dt(r["created"]))
        pfs_state.repos[repo.key] = repo
        for c in r["commits"]:
            rec = CommitRec(
                repo=repo,
                id=c["id"],
                branch=c["branch"],
                origin=pfs.OriginKind[c["origin"]],
                description=c["description"],
                files={p: blob(d) for p, d in c["files"].items()},
                started=_dt(c["started"]),
                finishing=_dt(c["finishing"]),
                finished=_dt(c["finished"]),
                error=c["error"],
            )
            repo.commits[rec.id] = rec
            commits[(*repo.key, rec.id)] = rec
            pending.append((rec, c))

    def commit(ref: list[str] | None) -> CommitRec | None:
        return None if ref is None else commits.get(tuple(ref))  # type: ignore[arg-type]

    for rec, c in pending:  # in creation order per repo, as children were appended
        if c["parent"] is not None:
            rec.parent = rec.repo.commits.get(c["parent"])
            if rec.parent is not None:
                rec.parent.children.append(rec)
        rec.provenance = [p for p in map(commit, c["provenance"]) if p is not None]
    for rec, _ in sorted(pending, key=lambda rc: rc[0].started):
        for prov in rec.provenance:
            prov.subvenance.append(rec)

    branch_docs: list[tuple[BranchRec, list[list[str]]]] = []
    for r in doc["repos"]:
        repo = pfs_state.repos[tuple(r["key"])]
        for b in r["branches"]:
            rec = BranchRec(
                repo,
                b["name"],
                commit(b["head"]),
                created=_dt(b["created"]),
                updated=_dt(b["updated"]),
            )
            repo.branches[rec.name] = rec
            branch_docs.append((rec, b["provenance"]))
    for rec, keys in branch_docs:
        for project, name, repo_type, branch_name in keys:
            repo = pfs_state.repos.get((project, name, repo_type))
            prov = repo.branches.get(branch_name) if repo is not None else None
            if prov is not None:
                rec.provenance.append(prov)

    for p in doc["pipelines"]:
        project, name = p["key"]
        pps_state.pipelines[(project, name)] = PipelineRec(
            project=project,
            name=name,
            spec=pps.CreatePipelineRequest().from_dict(json.loads(p["effective_json"])),
            user_json=p["user_json"],
            effective_json=p["effective_json"],
            salt=p["salt"],
            version=p["version"],
            spec_commit=commit(p["spec_commit"]),
            created=_dt(p["created"]),
            updated=_dt(p["updated"]),
            last_job_state=pps.JobState[p["last_job_state"]],
            state=pps.PipelineState[p["state"]],
            reason=p["reason"],
        )

    for j in doc["jobs"]:
        pipeline = pps_state.pipelines.get(tuple(j["pipeline"]))  # type: ignore[arg-type]
        output = commit(j["output_commit"])
        if pipeline is None or output is None:
            continue
        total, processed, skipped, failed = j["data"]
        job = JobRec(
            pipeline=pipeline,
            id=j["id"],
            pipeline_version=j["pipeline_version"],
            output_commit=output,
            state=pps.JobState[j["state"]],
            states=[pps.JobState[s] for s in j["states"]],
            reason=j["reason"],
            created=_dt(j["created"]),
            started=_dt(j["started"]),
            finished=_dt(j["finished"]),
            data_total=total,
            data_processed=processed,
            data_skipped=skipped,
            data_failed=failed,
            logs=[(_dt(ts), line, datum) for ts, line, datum in j["logs"]],
            spec=pipeline.spec,
            salt=j["salt"],
        )
        pps_state.jobs[(pipeline.key, job.id)] = job

    for set_id, refs in doc["commit_sets"].items():
        members = [c for c in map(commit, refs) if c is not None]
        if members:
            pfs_state.commit_sets[set_id] = members
    for name, s in doc["secrets"].items():
        pps_state.secrets[name] = s["manifest"]
        pps_state.secret_created[name] = _dt(s["created"])

    _resume(state)
    return state


def _resume(state: State) -> None:
    """Undo the partial progress of work that a stop interrupted, so it can run again."""
    for job in state.pps.jobs.values():
        if job.done:
            continue
        job.state = pps.JobState.JOB_CREATED
        job.states.append(pps.JobState.JOB_CREATED)
        job.started = None
        job.data_total = job.data_processed = job.data_skipped = job.data_failed = 0
        for commit in (job.output_commit, state.pps.meta_commit(job)):
            if commit is not None and not commit.is_finished:
                commit.files = {}
                commit.finishing = None
    # FinishCommit sets FINISHING and finishes on the next loop tick; complete it.
    for repo in state.pfs.repos.values():
        for commit in repo.commits.values():
            if commit.finishing is not None and not commit.is_finished and not commit.provenance:
                state.pfs.mark_finished(commit)
