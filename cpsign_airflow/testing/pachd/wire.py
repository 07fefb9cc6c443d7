"""Fast encoding of the local pachd's hottest replies: CommitInfo and JobInfo.

pachd itself (Go) encodes a CommitInfo in microseconds; this stand-in built a
betterproto message and serialized it, ~2.5 ms per CommitInfo and ~3 ms per
JobInfo, so with 1,000 commit-set waits finishing together the local pachd
spent seconds of CPU encoding replies and the benchmarks measured that instead
of the client. Here the same fields are written from the records straight into
google.protobuf (upb) classes built from the provider's own field table
(:data:`cpsign_airflow.hooks._wire.FIELDS`: one table for the decoder and this
encoder), numbers and types as in pachyderm-sdk 2.12. ``CommitRec.info()`` /
``JobRec.info()`` stay the reference: ``tests/testing/test_local_pachd_wire.py``
decodes both encodings with betterproto and asserts equal messages. JobInfo with
``details`` still goes through betterproto (rare, and it carries the whole spec).

A CommitInfo's bytes are also kept on the record until what they encode changes: a
pipeline's spec commit lists every output and meta commit made from it in its direct
subvenance (as pachd's ``getCommitFromCommitRow`` does, src/internal/pfsdb/commits.go),
so with 1,000 commit sets it is ~2,000 entries and ~180 KB, and InspectCommitSet sends
it to each of the 1,000 waits (pachd 2.12's CommitSetProvenance). Encoding it afresh
each time cost the local pachd ~6 ms per wait.
"""

from __future__ import annotations

import functools
from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING

from cpsign_airflow.hooks._wire import FIELDS, build_messages

if TYPE_CHECKING:
    from .pfs.records import CommitRec
    from .pps.records import JobRec


@functools.cache
def _classes() -> SimpleNamespace:
    """Every message of the table, with all its fields (JobInfo's data_recovered is
    never set here, so it is not written, as ``JobRec.info()`` does not write it)."""
    return build_messages(FIELDS)


def _ts(msg: object, value: datetime) -> None:
    """As betterproto's ``Timestamp.from_datetime``."""
    msg.seconds = int(value.timestamp())
    msg.nanos = int(value.microsecond * 1e3)


def _commit(msg: object, rec: CommitRec) -> None:
    """As ``CommitRec.to_proto()`` (pachyderm-sdk's Repo defaults type and project)."""
    repo = rec.repo
    for target in (msg.repo, msg.branch.repo):
        target.name = repo.name
        target.type = repo.type or "user"
        target.project.name = repo.project or "default"
    msg.id = rec.id
    msg.branch.name = rec.branch or ""


def _commit_info_key(rec: CommitRec) -> tuple:
    """What ``commit_info(rec)`` encodes, cheaply compared: the record's own fields, and
    its related commits by identity (a commit's repo, id and branch never change after
    it is made; the cache holds the related records, so their ids are not reused)."""
    return (
        rec.origin,
        rec.description,
        rec.error,
        rec.size(),
        rec.started,
        rec.finishing,
        rec.finished,
        id(rec.parent),
        tuple(map(id, rec.children)),
        tuple(map(id, rec.provenance)),
        tuple(map(id, rec.subvenance)),
    )


def commit_info(rec: CommitRec) -> bytes:
    """Wire bytes of ``rec.info()`` (kept on the record while they stay the same)."""
    key = _commit_info_key(rec)
    cached = rec.__dict__.get("_wire_commit_info")
    if cached is not None and cached[0] == key:
        return cached[2]
    data = _encode_commit_info(rec)
    related = (rec.parent, tuple(rec.children), tuple(rec.provenance), tuple(rec.subvenance))
    rec.__dict__["_wire_commit_info"] = (key, related, data)
    return data


def _encode_commit_info(rec: CommitRec) -> bytes:
    info = _classes().CommitInfo()
    size = rec.size()
    _commit(info.commit, rec)
    info.origin.kind = int(rec.origin)
    info.description = rec.description
    if rec.parent is not None:
        _commit(info.parent_commit, rec.parent)
    for child in rec.children:
        _commit(info.child_commits.add(), child)
    _ts(info.started, rec.started)
    for prov in rec.provenance:
        _commit(info.direct_provenance.add(), prov)
    for sub in rec.subvenance:
        _commit(info.direct_subvenance.add(), sub)
    info.error = rec.error
    info.size_bytes_upper_bound = size
    _ts(info.created_at, rec.started)
    _ts(info.updated_at, rec.finished or rec.finishing or rec.started)
    if rec.finishing is not None:
        _ts(info.finishing, rec.finishing)
    if rec.finished is not None:
        _ts(info.finished, rec.finished)
        if size:
            info.details.size_bytes = size
    return info.SerializeToString()


def job_info(job: JobRec, details: bool = False) -> bytes:
    """Wire bytes of ``job.info(details)``."""
    if details and job.spec is not None:
        return bytes(job.info(details=True))
    info = _classes().JobInfo()
    pipeline = info.job.pipeline
    pipeline.name = job.pipeline.name
    pipeline.project.name = job.pipeline.project
    info.job.id = job.id
    info.pipeline_version = job.pipeline_version
    _commit(info.output_commit, job.output_commit)
    info.data_processed = job.data_processed
    info.data_skipped = job.data_skipped
    info.data_total = job.data_total
    info.data_failed = job.data_failed
    info.state = int(job.state)
    info.reason = job.reason
    _ts(info.created, job.created)
    if job.started is not None:
        _ts(info.started, job.started)
    if job.finished is not None:
        _ts(info.finished, job.finished)
    return info.SerializeToString()
