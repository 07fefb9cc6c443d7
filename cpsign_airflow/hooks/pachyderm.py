"""Airflow hook for Pachyderm's pachd, through pachyderm-sdk.

Every method is idempotent where pachd allows it and returns plain data
(str, int, bool, dict, list) so results can go to XCom as they are. grpc and
pachyderm-sdk are imported inside methods: a DAG file that imports an operator
must not pay for them at parse time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import importlib
import io
import json
import logging
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlparse

from airflow.sdk import BaseHook

from cpsign_airflow.exceptions import (
    PachydermAlreadyExists,
    PachydermError,
    PachydermInvalidArgument,
    PachydermNotFound,
    PachydermSpecError,
    PachydermTimeout,
)
from cpsign_airflow.hooks import _grpc_errors, _sdk

if TYPE_CHECKING:
    from pachyderm_sdk import Client

    from cpsign_airflow.hooks.pachyderm_types import (
        CommitDict,
        JobDict,
        PipelineResult,
        PipelineStateDict,
        RepoResult,
    )

T = TypeVar("T")
#: How a read names its commit: by ``commit`` id, or by ``branch`` (its head commit).
RefType = Literal["commit", "branch"]
log = logging.getLogger(__name__)

DEFAULT_PORT = 30650
DEFAULT_PROJECT = "default"
#: Bytes per ModifyFile message; well under gRPC's default 4 MiB receive limit.
CHUNK_SIZE = 2 * 1024 * 1024
#: Job states that never change again (pachd's ppsutil IsTerminal, src/pps/util.go).
TERMINAL_JOB_STATES = frozenset({"JOB_SUCCESS", "JOB_FAILURE", "JOB_KILLED", "JOB_UNRUNNABLE"})


@dataclass(frozen=True)
class PachdAddress:
    """Where and how to reach pachd, resolved from an Airflow connection."""

    host: str
    port: int = DEFAULT_PORT
    tls: bool = False
    root_certs: bytes | None = None
    token: str | None = field(default=None, repr=False)
    project: str = DEFAULT_PROJECT
    console_url: str | None = None

    @property
    def url(self) -> str:
        return f"{'grpcs' if self.tls else 'grpc'}://{self.host}:{self.port}"


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def address_from_connection(conn: Any) -> PachdAddress:
    """Resolve a ``pachyderm`` connection (or an older ``grpc://``/``grpcs://`` URI one).

    ``AIRFLOW_CONN_PACHYDERM_DEFAULT=pachyderm://:TOKEN@pachd:30650`` (``?tls=true`` for
    TLS) is the URI form; ``grpc://``/``grpcs://`` URIs still resolve here, but Airflow's
    ``connections test`` knows ``grpc`` as another provider's type. A host typed as
    ``grpcs://host:port`` in the UI works as well. With
    no host and an extra ``k8s_namespace`` (plus ``k8s_service``, default
    ``pachd``), the address is discovered through Kubernetes.
    """
    extra = conn.extra_dejson or {}
    host = (conn.host or "").strip()
    port = conn.port
    tls = _as_bool(extra.get("tls", False)) or conn.conn_type in ("grpcs", "https")
    if not host and extra.get("k8s_namespace"):
        # No host but a Kubernetes namespace/service: find pachd through the
        # Kubernetes API (or the in-cluster service environment), not a port-forward.
        from cpsign_airflow.kubernetes.discovery import resolve_from_connection

        host, port = resolve_from_connection(conn)
    if "://" in host:
        parsed = urlparse(host)
        if parsed.scheme not in ("grpc", "grpcs", "http", "https"):
            raise ValueError(
                f"Pachyderm connection {conn.conn_id!r}: host {host!r} has an unknown scheme "
                "(use grpc:// or grpcs://)"
            )
        tls = tls or parsed.scheme in ("grpcs", "https")
        host = parsed.hostname or ""
        port = port or parsed.port
    if not host:
        raise ValueError(f"Pachyderm connection {conn.conn_id!r} has no host")
    try:
        port = int(port or DEFAULT_PORT)
    except (TypeError, ValueError):
        raise ValueError(
            f"Pachyderm connection {conn.conn_id!r}: port {port!r} is not a number"
        ) from None
    certs = extra.get("root_certs") or None
    return PachdAddress(
        host=host,
        port=port,
        tls=tls or bool(certs),
        root_certs=certs.encode() if isinstance(certs, str) else certs,
        token=conn.password or None,
        project=extra.get("project") or DEFAULT_PROJECT,
        console_url=console_url_from_connection(conn),
    )


def connection_uri(address: str, token: str | None = None) -> str:
    """The Airflow connection URI (``pachyderm://``) of a pachd address such as
    ``grpc://host:port`` (what pachd and the local pachd print) or ``grpcs://host:port``."""
    from urllib.parse import quote

    parsed = urlparse(address if "://" in address else f"grpc://{address}")
    auth = f":{quote(token, safe='')}@" if token else ""
    tls = "?tls=true" if parsed.scheme in ("grpcs", "https") else ""
    return f"pachyderm://{auth}{parsed.netloc.rpartition('@')[2]}{tls}"


def _ts(value: datetime | None) -> str | None:
    """ISO text for a protobuf timestamp; betterproto renders 'unset' as the epoch."""
    if value is None or value.timestamp() == 0:
        return None
    return value.isoformat()


def _enum_name(enum_cls: Any, value: Any) -> str:
    """betterproto decodes enums from the wire as plain ints; name them."""
    try:
        return enum_cls(int(value)).name
    except (ValueError, TypeError):
        return str(value)


def commit_to_dict(info: Any) -> CommitDict:
    """Plain view of a pfs.CommitInfo."""
    from pachyderm_sdk.api import pfs

    commit = info.commit
    return {
        "project": commit.repo.project.name or DEFAULT_PROJECT,
        "repo": commit.repo.name,
        "repo_type": commit.repo.type or "user",
        "branch": commit.branch.name if commit.branch else "",
        "id": commit.id,
        "origin": _enum_name(pfs.OriginKind, info.origin.kind) if info.origin else None,
        "description": info.description,
        "started": _ts(info.started),
        "finished": _ts(info.finished),
        "error": info.error or None,
        "size_bytes": int(info.size_bytes_upper_bound or 0),
    }


def job_to_dict(info: Any) -> JobDict:
    """Plain view of a pps.JobInfo, in the shape bookkeeping records."""
    from pachyderm_sdk.api import pps

    return {
        "pipeline": info.job.pipeline.name,
        "project": info.job.pipeline.project.name or DEFAULT_PROJECT,
        "job_id": info.job.id,
        "state": _enum_name(pps.JobState, info.state),
        "reason": info.reason or None,
        "data_processed": int(info.data_processed),
        "data_skipped": int(info.data_skipped),
        "data_failed": int(info.data_failed),
        "data_total": int(info.data_total),
        "data_recovered": int(info.data_recovered),
        "pipeline_version": int(info.pipeline_version),
        "created": _ts(info.created),
        "started": _ts(info.started),
        "finished": _ts(info.finished),
        "output_commit": info.output_commit.id if info.output_commit else None,
    }


def pipeline_state_to_dict(info: Any) -> PipelineStateDict:
    """Plain view of a pps.PipelineInfo's health: name, project, version, state, reason."""
    from pachyderm_sdk.api import pps

    return {
        "pipeline": info.pipeline.name,
        "project": info.pipeline.project.name or DEFAULT_PROJECT,
        "version": int(info.version),
        "state": _enum_name(pps.PipelineState, info.state),
        "reason": info.reason or None,
    }


class PachydermHook(BaseHook):
    """Talk to pachd: repos, pipelines, files, commit sets and jobs.

    Connection fields: host, port (default 30650), password = auth token;
    extras ``tls``, ``root_certs`` (PEM), ``project`` (default ``default``),
    ``console_url``. As a URI: ``pachyderm://:TOKEN@host:port`` (``?tls=true`` for TLS).

    Calls answered UNAVAILABLE (or refused connections), or UNKNOWN with one of
    PostgreSQL's transient transaction failures (serialization failure, deadlock,
    aborted transaction), are retried with bounded exponential backoff, each retry
    logged with its attempt count and reason; other gRPC errors become
    :mod:`cpsign_airflow.exceptions` types that name the resource involved.
    Reads name a commit by id, or a branch with ``ref_type="branch"``; nothing
    is guessed from how a name looks. asyncio code (the trigger) uses
    :meth:`async_session` instead.

    :param pachyderm_conn_id: Airflow connection id.
    :param project: Pachyderm project; overrides the connection's ``project``.
    :param max_retries: attempts after the first for those.
    :param retry_backoff: first backoff in seconds; doubles up to ``retry_backoff_max``.
    """

    conn_name_attr = "pachyderm_conn_id"
    default_conn_name = "pachyderm_default"
    conn_type = "pachyderm"
    hook_name = "Pachyderm"

    def __init__(
        self,
        pachyderm_conn_id: str = default_conn_name,
        project: str | None = None,
        max_retries: int = 5,
        retry_backoff: float = 0.5,
        retry_backoff_max: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pachyderm_conn_id = pachyderm_conn_id
        self._project = project
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.retry_backoff_max = retry_backoff_max
        self._client: Client | None = None
        self._address: PachdAddress | None = None  # resolved on first use

    # ------------------------------------------------------------------ connection

    @property
    def address(self) -> PachdAddress:
        """Where pachd is, from the connection (looked up once per hook)."""
        if self._address is None:
            self._address = _masked(
                address_from_connection(self.get_connection(self.pachyderm_conn_id))
            )
        return self._address

    async def aget_address(self) -> PachdAddress:
        """:attr:`address` without blocking the event loop."""
        if self._address is None:
            conn = await self.aget_connection(self.pachyderm_conn_id)
            # In a thread: Kubernetes discovery, when configured, is a blocking HTTP call.
            address = await asyncio.to_thread(address_from_connection, conn)
            self._address = _masked(address)
        return self._address

    @property
    def project(self) -> str:
        return self._project or self.address.project

    def get_conn(self) -> Client:
        """A pachyderm-sdk Client for this connection (created once per hook)."""
        if self._client is None:
            from pachyderm_sdk import Client

            _sdk.quiet_callback_noise()
            addr = self.address
            self._client = Client(
                host=addr.host,
                port=addr.port,
                auth_token=addr.token or "",
                root_certs=addr.root_certs,
                tls=addr.tls,
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            _sdk.close(self._client)
            self._client = None

    def _secrets(self) -> tuple[str, ...]:
        return (self.address.token,) if self.address.token else ()

    def _call(self, action: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` with retry on UNAVAILABLE and pachd's transient database errors
        (:func:`~cpsign_airflow.hooks._grpc_errors.retry_reason`), and error translation."""
        delay = self.retry_backoff
        attempt = 0
        while True:
            try:
                return fn()
            except Exception as err:  # grpc.RpcError, ConnectionError, ...
                reason = _grpc_errors.retry_reason(err)
                if reason is not None and attempt < self.max_retries:
                    attempt += 1
                    self.log.warning(
                        "pachd at %s %s while trying to %s; retry %d/%d in %.1fs",
                        self.address.url,
                        _grpc_errors.scrub(reason, self._secrets()),
                        action,
                        attempt,
                        self.max_retries,
                        delay,
                    )
                    time.sleep(delay)
                    delay = min(delay * 2, self.retry_backoff_max)
                    continue
                translated = _grpc_errors.translate(
                    err, action, address=self.address.url, secrets=self._secrets()
                )
                if reason is not None and attempt:
                    translated = type(translated)(
                        f"{translated} (gave up after {attempt + 1} attempts)",
                        code=translated.code,
                        details=translated.details,
                    )
                raise translated from None

    def _list(self, action: str, fn: Callable[[], Iterable[T]]) -> list[T]:
        """Like _call for streaming RPCs: the stream is drained inside the retry."""
        return self._call(action, lambda: list(fn()))

    def _call_by_deadline(
        self,
        action: str,
        method: str,
        request: Any,
        response: Any,
        deadline: float | None,
        *,
        stream: bool = False,
    ) -> Any:
        """Call ``method`` (``"/pfs_v2.API/InspectCommitSet"``), which pachd must answer by
        ``deadline`` (``time.monotonic()``; None: no limit), as :meth:`_call` does (a
        stream is drained); PachydermTimeout once the deadline has passed. For the waits
        that need a deadline, which pachyderm-sdk's stubs cannot take (see ``_sdk``)."""
        rpc = _sdk.timed_rpc(self.get_conn(), method, response, stream=stream)

        def run() -> Any:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise PachydermTimeout(f"Pachyderm could not {action}: no time left")
            reply = rpc(request, timeout=remaining)
            return list(reply) if stream else reply

        return self._call(action, run)

    # ------------------------------------------------------------------ messages

    def _project_msg(self, project: str | None = None) -> Any:
        return _project_message(project or self.project)

    def _pipeline_msg(self, name: str, project: str | None = None) -> Any:
        return _pipeline_message(name, project or self.project)

    def _repo(self, name: str, project: str | None = None) -> Any:
        from pachyderm_sdk.api import pfs

        return pfs.Repo(name=name, type="user", project=self._project_msg(project))

    def _branch(self, repo: str, branch: str, project: str | None = None) -> Any:
        from pachyderm_sdk.api import pfs

        return pfs.Branch(repo=self._repo(repo, project), name=branch)

    def _commit(
        self, repo: str, ref: str, project: str | None = None, ref_type: RefType = "commit"
    ) -> Any:
        """The commit ``ref`` names: a commit id, or a branch name (its head commit)."""
        from pachyderm_sdk.api import pfs

        repo_msg = self._repo(repo, project)
        if ref_type == "branch":
            return pfs.Commit(repo=repo_msg, branch=pfs.Branch(repo=repo_msg, name=ref))
        if ref_type == "commit":
            return pfs.Commit(repo=repo_msg, id=ref)
        raise ValueError(f"ref_type must be 'commit' or 'branch', not {ref_type!r}")

    def _where(self, repo: str, project: str | None = None) -> str:
        return f"{project or self.project}/{repo}"

    # ------------------------------------------------------------------ admin

    def test_connection(self) -> tuple[bool, str]:
        """Airflow's "Test" button and ``airflow connections test``: pachd's version, then
        the connection's project, a call that needs the token (pachd answers GetVersion
        to anyone). A project not created yet still passes."""
        try:
            version = self.get_version()
            name = self.project
            try:
                self._call(
                    f"inspect project {name!r}",
                    lambda: self.get_conn().pfs.inspect_project(project=self._project_msg(name)),
                )
                project = f"project {name!r}"
            except PachydermNotFound:
                project = f"project {name!r} not created yet"
        except Exception as err:
            return False, str(err)
        return True, f"Connected to pachd {version} at {self.address.url}, {project}"

    def get_version(self) -> str:
        info = self._call("report its version", lambda: self.get_conn().get_version())
        text = f"{info.major}.{info.minor}.{info.micro}"
        return f"{text}-{info.additional}" if info.additional else text

    def ensure_project(self, project: str | None = None) -> bool:
        """Create the project unless it exists. Returns whether it was created."""
        name = project or self.project
        client = self.get_conn()
        try:
            self._call(
                f"inspect project {name!r}",
                lambda: client.pfs.inspect_project(project=self._project_msg(name)),
            )
            return False
        except PachydermNotFound:
            pass
        try:
            self._call(
                f"create project {name!r}",
                lambda: client.pfs.create_project(project=self._project_msg(name)),
            )
        except PachydermAlreadyExists:  # created concurrently
            return False
        self.log.info("Created Pachyderm project %s", name)
        return True

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

    # ------------------------------------------------------------------ pipelines

    def inspect_pipeline(self, pipeline: str, project: str | None = None) -> dict[str, Any]:
        """``{"pipeline", "project", "version", "state", "user_spec"}``; NotFound if absent."""
        from pachyderm_sdk.api import pps

        msg = self._pipeline_msg(pipeline, project)
        info = self._call(
            f"inspect pipeline {self._where(pipeline, project)!r}",
            lambda: self.get_conn().pps.inspect_pipeline(pipeline=msg, details=True),
        )
        user_spec = json.loads(info.user_spec_json) if info.user_spec_json else None
        return {
            "pipeline": pipeline,
            "project": project or self.project,
            "version": int(info.version),
            "state": _enum_name(pps.PipelineState, info.state),
            "user_spec": user_spec,
            "spec_commit": info.spec_commit.id if info.spec_commit else None,
        }

    def pipeline_states(self, pipelines: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
        """State and reason of ``(project, name)`` pipelines (:func:`pipeline_state_to_dict`).

        One InspectPipeline each, without details (pachd then skips its Kubernetes and
        worker look-ups); a pipeline that no longer exists is left out.
        """
        states = []
        for project, name in pipelines:
            msg = self._pipeline_msg(name, project)
            try:
                info = self._call(
                    f"inspect pipeline {project + '/' + name!r}",
                    lambda msg=msg: self.get_conn().pps.inspect_pipeline(
                        pipeline=msg, details=False
                    ),
                )
            except PachydermNotFound:
                continue
            states.append(pipeline_state_to_dict(info))
        return states

    def pipeline_exists(self, pipeline: str, project: str | None = None) -> bool:
        try:
            self.inspect_pipeline(pipeline, project)
            return True
        except PachydermNotFound:
            return False

    def plan_pipeline(self, spec: dict[str, Any], *, reprocess: bool = False) -> dict[str, Any]:
        """What :meth:`create_or_update_pipeline` would do with ``spec``; nothing is sent.

        Returns ``{"pipeline", "project", "action", "spec_hash", "version"}``: action
        ``created`` (no such pipeline), ``updated`` (its spec differs, in canonical
        form, from what pachd reports as the user's spec, or ``reprocess``) or
        ``unchanged``; version is the current one (None if there is no pipeline).
        Only an update kills jobs: pachd stops the pipeline's unfinished jobs.
        """
        return self._plan_pipeline(spec, reprocess)[0]

    def _plan_pipeline(
        self, spec: dict[str, Any], reprocess: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The plan and the spec as it would be sent (project filled in)."""
        from cpsign_airflow.specs.canonical import canonical_spec, pipeline_name, spec_hash
        from cpsign_airflow.specs.validate import validate_spec

        name = pipeline_name(spec)
        validate_spec(spec, f"for pipeline {name!r}")
        spec = dict(spec)
        project = (spec.get("pipeline") or {}).get("project", {}).get("name") or self.project
        spec["pipeline"] = {**spec["pipeline"], "project": {"name": project}}
        try:
            current = self.inspect_pipeline(name, project)
        except PachydermNotFound:
            current = None
        if current is None:
            action = "created"
        elif (
            current["user_spec"] is not None
            and not reprocess
            and canonical_spec(current["user_spec"]) == canonical_spec(spec)
        ):
            action = "unchanged"
        else:
            action = "updated"
        plan = {
            "pipeline": name,
            "project": project,
            "action": action,
            "spec_hash": spec_hash(spec),
            "version": current["version"] if current is not None else None,
        }
        return plan, spec

    def create_or_update_pipeline(
        self, spec: dict[str, Any], *, reprocess: bool = False
    ) -> PipelineResult:
        """Create the pipeline, or update it if its spec changed (see :meth:`plan_pipeline`).

        pachd starts a job on every create/update, even an identical one, so an
        unchanged spec (compared in canonical form with what pachd reports as
        the user's spec) is not sent. Without ``reprocess`` pachd keeps the
        pipeline's salt and only new or changed datums run. An update kills the
        pipeline's unfinished jobs (pachd does; see :meth:`list_unfinished_jobs`).

        Returns ``{"pipeline", "project", "action", "spec_hash", "version",
        "spec_commit"}`` with action ``created``, ``updated`` or ``unchanged``;
        spec_commit is the commit set of the jobs this create/update started
        (None when unchanged).
        """
        plan, spec = self._plan_pipeline(spec, reprocess)
        name, project, digest = plan["pipeline"], plan["project"], plan["spec_hash"]
        if plan["action"] == "unchanged":
            self.log.info("Pipeline %s/%s unchanged; nothing sent", project, name)
            return {**plan, "spec_commit": None}
        update = plan["action"] == "updated"
        body = json.dumps({k: v for k, v in spec.items() if k not in ("update", "reprocess")})
        try:
            self._call(
                f"{'update' if update else 'create'} pipeline {project + '/' + name!r}",
                lambda: self.get_conn().pps.create_pipeline_v2(
                    create_pipeline_request_json=body, update=update, reprocess=reprocess
                ),
            )
        except PachydermInvalidArgument as err:
            # pachd refused the spec itself (INVALID_ARGUMENT): the same spec fails again
            raise PachydermSpecError(str(err)) from None
        after = self.inspect_pipeline(name, project)
        action = "updated" if update else "created"
        self.log.info(
            "Pipeline %s/%s %s (version %s%s)",
            project,
            name,
            action,
            after["version"],
            ", reprocessing all datums" if reprocess else "",
        )
        return {
            "pipeline": name,
            "project": project,
            "action": action,
            "spec_hash": digest,
            "version": after["version"],
            "spec_commit": after["spec_commit"],
        }

    def delete_pipeline(self, pipeline: str, project: str | None = None) -> None:
        msg = self._pipeline_msg(pipeline, project)
        self._call(
            f"delete pipeline {self._where(pipeline, project)!r}",
            lambda: self.get_conn().pps.delete_pipeline(pipeline=msg, force=True),
        )

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

    def _report_lineage(self, direction: str, repo: str, project: str | None) -> None:
        """Tell Airflow's hook-lineage collector (OpenLineage, when installed) about a
        repo this hook read or wrote, so tasks that use the hook directly (a ``@task``
        reading a model) report it too. A no-op without a lineage reader."""
        from airflow.providers.common.compat.lineage.hook import get_hook_lineage_collector

        from cpsign_airflow.lineage.pachyderm import namespace

        address = self.address
        uri = f"{namespace(address.host, address.port)}/{project or self.project}/{repo}"
        collector = get_hook_lineage_collector()
        if direction == "input":
            collector.add_input_asset(context=self, uri=uri)
        else:
            collector.add_output_asset(context=self, uri=uri)

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

    # ------------------------------------------------------------------ commit sets & jobs

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

        request = pfs.InspectCommitSetRequest(commit_set=pfs.CommitSet(id=commit_set_id), wait=wait)
        try:
            infos = self._call_by_deadline(
                f"{'wait for' if wait else 'inspect'} commit set {commit_set_id}",
                "/pfs_v2.API/InspectCommitSet",
                request,
                pfs.CommitInfo,
                None if timeout is None else time.monotonic() + timeout,
                stream=True,
            )
        except PachydermTimeout:
            raise PachydermTimeout(
                f"Commit set {commit_set_id} did not finish within {timeout:g}s"
            ) from None
        # pachd 2.12 also lists the set's provenance from other commit sets (spec commits,
        # input heads; server_commit_set.go): only this set's own user-repo commits count
        return [
            commit_to_dict(i)
            for i in infos
            if i.commit.repo.type in ("", "user") and i.commit.id == commit_set_id
        ]

    def list_jobs(self, commit_set_id: str) -> list[dict[str, Any]]:
        """Jobs of a commit set (its id is the job id): one per pipeline."""
        from pachyderm_sdk.api import pps

        infos = self._list(
            f"list jobs of job set {commit_set_id}",
            lambda: self.get_conn().pps.inspect_job_set(job_set=pps.JobSet(id=commit_set_id)),
        )
        return [job_to_dict(i) for i in infos]

    def get_job_logs(
        self, pipeline: str, job_id: str, tail: int = 20, project: str | None = None
    ) -> list[str]:
        """Last log lines of a job, where pachd keeps them; [] when it has none."""
        from pachyderm_sdk.api import pps

        pipe = self._pipeline_msg(pipeline, project)
        try:
            messages = self._list(
                f"read logs of job {pipeline}@{job_id}",
                lambda: self.get_conn().pps.get_logs(
                    pipeline=pipe, job=pps.Job(pipeline=pipe, id=job_id), tail=tail
                ),
            )
        except PachydermError as err:
            self.log.info("No logs for job %s@%s: %s", pipeline, job_id, err)
            return []
        return [m.message.rstrip("\n") for m in messages][-tail:]

    def get_pipeline_logs(
        self, pipeline: str, tail: int = 20, project: str | None = None
    ) -> list[str]:
        """Last log lines of a pipeline's workers (any job), where pachd has them; else [].

        pachd reads them from the pipeline's pods (or Loki); a pipeline whose workers
        never started has none, and pachd may answer with an error then, which is
        taken as "no lines".
        """
        pipe = self._pipeline_msg(pipeline, project)
        try:
            messages = self._list(
                f"read logs of pipeline {self._where(pipeline, project)}",
                lambda: self.get_conn().pps.get_logs(pipeline=pipe, tail=tail),
            )
        except PachydermError as err:
            self.log.info("No logs for pipeline %s: %s", pipeline, err)
            return []
        return [m.message.rstrip("\n") for m in messages][-tail:] if tail > 0 else []

    def stop_job(self, pipeline: str, job_id: str, project: str | None = None) -> None:
        from pachyderm_sdk.api import pps

        pipe = self._pipeline_msg(pipeline, project)
        self._call(
            f"stop job {pipeline}@{job_id}",
            lambda: self.get_conn().pps.stop_job(job=pps.Job(pipeline=pipe, id=job_id)),
        )

    # ------------------------------------------------------------------ in-flight jobs

    def inspect_job(self, pipeline: str, job_id: str, project: str | None = None) -> dict[str, Any]:
        """One job as it stands now (:func:`job_to_dict`); NotFound if there is none."""
        from pachyderm_sdk.api import pps

        pipe = self._pipeline_msg(pipeline, project)
        info = self._call(
            f"inspect job {pipeline}@{job_id}",
            lambda: self.get_conn().pps.inspect_job(job=pps.Job(pipeline=pipe, id=job_id)),
        )
        return job_to_dict(info)

    def list_unfinished_jobs(
        self, pipelines: Iterable[str | tuple[str, str]], project: str | None = None
    ) -> list[dict[str, Any]]:
        """Jobs of ``pipelines`` not yet in a terminal state: those an update would kill.

        ``pipelines`` are names (in ``project``) or ``(project, name)`` pairs. One
        ListJob per pipeline over all its versions (``history=-1``: pachd stops the
        unfinished jobs of every version when a pipeline is updated); a pipeline
        that does not exist has none. Oldest first, as :func:`job_to_dict` dicts.
        """
        jobs: list[dict[str, Any]] = []
        for item in pipelines:
            proj, name = item if isinstance(item, tuple) else (project or self.project, item)
            pipe = self._pipeline_msg(name, proj)
            try:
                infos = self._list(
                    f"list jobs of pipeline {proj}/{name}",
                    lambda pipe=pipe: self.get_conn().pps.list_job(
                        pipeline=pipe, history=-1, details=False
                    ),
                )
            except PachydermNotFound:
                continue
            found = [job_to_dict(i) for i in infos]
            jobs.extend(j for j in reversed(found) if j["state"] not in TERMINAL_JOB_STATES)
        return jobs

    def wait_for_jobs(
        self, jobs: Iterable[dict[str, Any]], timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """Wait until each job has finished, ``timeout`` seconds in all; never raises on time.

        Each job (a dict with ``pipeline``, ``job_id`` and optionally ``project``)
        is awaited with pachd's own blocking InspectJob (``wait``) under the
        remaining deadline. Returns every job as it stands at the end: finished,
        or, once time ran out, its current (unfinished) state.
        """
        from pachyderm_sdk.api import pps

        deadline = None if timeout is None else time.monotonic() + timeout
        results = []
        for job in jobs:
            name, job_id = job["pipeline"], job["job_id"]
            project = job.get("project") or self.project
            pipe = self._pipeline_msg(name, project)
            try:
                info = self._call_by_deadline(
                    f"wait for job {name}@{job_id}",
                    "/pps_v2.API/InspectJob",
                    pps.InspectJobRequest(job=pps.Job(pipeline=pipe, id=job_id), wait=True),
                    pps.JobInfo,
                    deadline,
                )
            except PachydermTimeout:
                results.append(self.inspect_job(name, job_id, project))
            else:
                results.append(job_to_dict(info))
        return results

    # ------------------------------------------------------------------ asyncio (triggers)

    @contextlib.asynccontextmanager
    async def async_session(self) -> AsyncIterator[AsyncPachydermSession]:
        """An :class:`AsyncPachydermSession` on a grpc.aio channel shared in this event loop.

        The first session in a process imports grpc and the SDK's messages (about a
        second) in a thread, so other waits in the loop are not held up meanwhile.
        Channels are pooled per (running loop, pachd target, TLS, root certificates):
        a grpc.aio channel is bound to the loop it was made on, and the auth token is
        per-call metadata, so tokens never enter the key. One channel carries at most
        :data:`STREAMS_PER_CHANNEL` sessions at a time, and stays open when a session
        ends: it is other sessions' too. A channel found shut down or in
        TRANSIENT_FAILURE (pachd gone; grpc would otherwise hold off reconnecting for
        up to 2 min) is replaced by a fresh one, so a session opened again after
        :class:`~cpsign_airflow.exceptions.PachydermUnavailable` gets a working one.
        Pools of closed loops are dropped (grpc closes a channel when it is collected);
        :func:`aclose_shared_channels` closes the running loop's pool explicitly.
        """
        await _import_async_modules()
        address = await self.aget_address()
        async with _lease_shared_channel(address) as channel:
            yield AsyncPachydermSession(channel, address)

    # ------------------------------------------------------------------ links

    def console_commit_url(
        self, repo: str, commit_id: str, project: str | None = None
    ) -> str | None:
        return console_link(
            self.address.console_url, project or self.project, "repos", repo, "commit", commit_id
        )

    def console_pipeline_url(self, pipeline: str, project: str | None = None) -> str | None:
        return console_link(
            self.address.console_url, project or self.project, "pipelines", pipeline
        )

    def console_commit_set_url(self, commit_set_id: str, project: str | None = None) -> str | None:
        return console_link(
            self.address.console_url, project or self.project, "commit-sets", commit_set_id
        )


def console_link(console_url: str | None, project: str, *path: str) -> str | None:
    """A page of Pachyderm Console's lineage view (None without a Console URL).

    The project and every path segment (repo, pipeline, commit or commit set id) are
    percent-encoded whole: a ``/``, ``?``, ``#`` or space in one stays in its segment.
    """
    if not console_url:
        return None
    from urllib.parse import quote

    segments = [quote(str(part), safe="") for part in (project, *path)]
    return "/".join([console_url.rstrip("/"), "lineage", *segments])


def console_url_from_connection(conn: Any) -> str | None:
    """The connection's ``console_url`` extra, without a trailing slash."""
    return ((conn.extra_dejson or {}).get("console_url") or "").rstrip("/") or None


def _project_message(project: str) -> Any:
    """The pfs.Project message: the one place one is built."""
    from pachyderm_sdk.api import pfs

    return pfs.Project(name=project)


def _pipeline_message(name: str, project: str) -> Any:
    from pachyderm_sdk.api import pps

    return pps.Pipeline(name=name, project=_project_message(project))


def _masked(address: PachdAddress) -> PachdAddress:
    """``address``, its token registered with Airflow's secrets masker."""
    if address.token:
        from airflow.sdk.log import mask_secret

        mask_secret(address.token)
    return address


# ---------------------------------------------------------------------- asyncio session


class AsyncPachydermSession:
    """pachd calls for asyncio code (the trigger), made by :meth:`PachydermHook.async_session`
    and valid inside its ``async with`` block.

    Every failure is raised as a :mod:`cpsign_airflow.exceptions` type naming what failed,
    the auth token scrubbed (see :mod:`~cpsign_airflow.hooks._grpc_errors`):
    :class:`~cpsign_airflow.exceptions.PachydermUnavailable` when pachd could not be
    reached or the stream broke (worth opening a new session and trying again), another
    :class:`~cpsign_airflow.exceptions.PachydermError` otherwise. Nothing is retried here;
    ``_grpc_errors.is_retryable`` tells which are worth trying again (also pachd's
    transient database errors, which arrive as a plain PachydermError, code UNKNOWN).

    Replies are decoded by :mod:`cpsign_airflow.hooks._wire` (google.protobuf), not
    betterproto: the same dicts as :func:`commit_to_dict`, :func:`job_to_dict` and
    :func:`pipeline_state_to_dict`, at ~100x less CPU, which matters with many waits in
    one event loop.
    """

    def __init__(self, channel: Any, address: PachdAddress) -> None:
        self._channel = channel
        self._address = address
        self._metadata = _sdk.token_metadata(address.token)

    @contextlib.contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        """grpc errors raised inside become the provider's exceptions, for ``action``."""
        import grpc

        try:
            yield
        except grpc.RpcError as err:
            token = self._address.token
            raise _grpc_errors.translate(
                err, action, address=self._address.url, secrets=(token,) if token else ()
            ) from None

    async def wait_commit_set(self, commit_set_id: str) -> AsyncIterator[dict[str, Any]]:
        """Yield each user-repo commit of the set as pachd reports it finished.

        pachd's own streaming wait (InspectCommitSet with ``wait``): nothing is sent
        while nothing changes; the iteration ends once the last commit has finished.
        """
        from pachyderm_sdk.api import pfs

        from cpsign_airflow.hooks import _wire

        rpc = self._channel.unary_stream(
            "/pfs_v2.API/InspectCommitSet",
            request_serializer=bytes,
            response_deserializer=_wire.commit_info_to_dict,
        )
        request = pfs.InspectCommitSetRequest(commit_set=pfs.CommitSet(id=commit_set_id), wait=True)
        call = rpc(request, metadata=self._metadata)
        try:
            with self._translated(f"wait for commit set {commit_set_id}"):
                async for commit in call:
                    # only this set's own user-repo commits (see PachydermHook._commit_set)
                    if commit["repo_type"] == "user" and commit["id"] == commit_set_id:
                        yield commit
        finally:
            call.cancel()  # a no-op once the stream ended; the channel may be shared

    async def list_jobs(self, commit_set_id: str) -> list[dict[str, Any]]:
        """Current jobs of the set (:meth:`PachydermHook.list_jobs`), one InspectJobSet."""
        from pachyderm_sdk.api import pps

        from cpsign_airflow.hooks import _wire

        rpc = self._channel.unary_stream(
            "/pps_v2.API/InspectJobSet",
            request_serializer=bytes,
            response_deserializer=_wire.job_info_to_dict,
        )
        request = pps.InspectJobSetRequest(job_set=pps.JobSet(id=commit_set_id), wait=False)
        with self._translated(f"list jobs of job set {commit_set_id}"):
            return [job async for job in rpc(request, metadata=self._metadata)]

    async def inspect_pipelines(self, pipelines: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
        """State and reason of each ``(project, name)`` pipeline, as
        :meth:`PachydermHook.pipeline_states`: one InspectPipeline (without details) each,
        sent concurrently. A pipeline that no longer exists is left out."""
        from cpsign_airflow.hooks import _wire

        rpc = self._channel.unary_unary(
            "/pps_v2.API/InspectPipeline",
            request_serializer=bytes,
            response_deserializer=_wire.pipeline_info_to_dict,
        )

        async def one(project: str, name: str) -> dict[str, Any] | None:
            try:
                with self._translated(f"inspect pipeline {project + '/' + name!r}"):
                    return await rpc(
                        _inspect_pipeline_request(project, name), metadata=self._metadata
                    )
            except PachydermNotFound:
                return None

        found = await asyncio.gather(*(one(project, name) for project, name in pipelines))
        return [state for state in found if state is not None]


#: Modules the asyncio session needs, imported off the event loop by the first session.
_ASYNC_MODULES = (
    "grpc.aio",
    "pachyderm_sdk.api.pfs",
    "pachyderm_sdk.api.pps",
    "pachyderm_sdk.constants",
    "google.protobuf.message_factory",
    "cpsign_airflow.hooks._wire",
)


async def _import_async_modules() -> None:
    missing = [name for name in _ASYNC_MODULES if name not in sys.modules]
    if missing:
        await asyncio.to_thread(lambda: [importlib.import_module(name) for name in missing])


#: Sessions one shared channel carries at most before another is opened. HTTP/2 servers
#: and proxies may cap concurrent streams per connection (RFC 9113 recommends no fewer
#: than 100); past the cap, new waits would queue behind waits that last hours.
STREAMS_PER_CHANNEL = 100


class _SharedChannel:
    __slots__ = ("channel", "users")

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.users = 0


#: event loop -> channel key -> channels open on that loop (see async_session).
_SHARED_CHANNELS: dict[Any, dict[tuple[Any, ...], list[_SharedChannel]]] = {}


def _channel_key(addr: PachdAddress) -> tuple[Any, ...]:
    certs = hashlib.sha256(addr.root_certs).hexdigest() if addr.root_certs else None
    return (addr.host, addr.port, addr.tls, certs)


@contextlib.asynccontextmanager
async def _lease_shared_channel(addr: PachdAddress) -> AsyncIterator[Any]:
    """A grpc.aio channel to ``addr`` from the running loop's pool (see async_session)."""
    import grpc

    loop = asyncio.get_running_loop()
    for closed in [other for other in _SHARED_CHANNELS if other.is_closed()]:
        del _SHARED_CHANNELS[closed]
    pool = _SHARED_CHANNELS.setdefault(loop, {}).setdefault(_channel_key(addr), [])
    broken = (grpc.ChannelConnectivity.TRANSIENT_FAILURE, grpc.ChannelConnectivity.SHUTDOWN)
    pool[:] = [s for s in pool if s.channel.get_state() not in broken]
    shared = next((s for s in pool if s.users < STREAMS_PER_CHANNEL), None)
    if shared is None:
        shared = _SharedChannel(_sdk.async_channel(addr.host, addr.port, addr.tls, addr.root_certs))
        pool.append(shared)
    shared.users += 1
    try:
        yield shared.channel
    finally:
        shared.users -= 1


async def aclose_shared_channels() -> None:
    """Close the running loop's shared channels (tests, shutdown); later sessions open anew."""
    for pool in _SHARED_CHANNELS.pop(asyncio.get_running_loop(), {}).values():
        for shared in pool:
            await shared.channel.close()


@functools.lru_cache(maxsize=4096)
def _inspect_pipeline_request(project: str, name: str) -> bytes:
    """InspectPipelineRequest without details, encoded once: a waiting trigger sends the
    same one every check, and betterproto spends ~0.1 ms encoding it."""
    from pachyderm_sdk.api import pps

    pipe = _pipeline_message(name, project)
    return bytes(pps.InspectPipelineRequest(pipeline=pipe, details=False))


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


__all__ = [
    "AsyncPachydermSession",
    "PachdAddress",
    "PachydermHook",
    "address_from_connection",
    "commit_to_dict",
    "job_to_dict",
    "pipeline_state_to_dict",
]
