"""What every part of the Pachyderm hook shares: the connection, the one way to call pachd.

:class:`BasePachydermHook` resolves the connection (:class:`PachdAddress`), makes the
pachyderm-sdk client and calls pachd through :meth:`~BasePachydermHook._call`, the one
way a call is made, with or without a deadline: retried under the provider's
:class:`~cpsign_airflow.retries.RetryPolicy`, its errors translated by
:mod:`~cpsign_airflow.hooks._grpc_errors`. Here too: the plain views of pachd's
messages (:func:`commit_to_dict` and friends), Console links, and the constants.
:class:`~cpsign_airflow.hooks.pachyderm.PachydermHook` adds the PFS
(:mod:`~cpsign_airflow.hooks.pachyderm_pfs`) and PPS
(:mod:`~cpsign_airflow.hooks.pachyderm_pps`) methods; asyncio code uses
:mod:`~cpsign_airflow.hooks.pachyderm_async`. grpc and pachyderm-sdk are imported
inside functions: a DAG file that imports an operator must not pay for them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlparse

from airflow.sdk import BaseHook

from cpsign_airflow.exceptions import PachydermError, PachydermTimeout
from cpsign_airflow.hooks import _grpc_errors, _sdk
from cpsign_airflow.retries import RetryPolicy

if TYPE_CHECKING:
    from pachyderm_sdk import Client

    from cpsign_airflow.hooks.pachyderm_types import CommitDict, JobDict, PipelineStateDict

T = TypeVar("T")
#: How a read names its commit: by ``commit`` id, or by ``branch`` (its head commit).
RefType = Literal["commit", "branch"]

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


class BasePachydermHook(BaseHook):
    """The connection to pachd and the one way to call it; see :class:`PachydermHook
    <cpsign_airflow.hooks.pachyderm.PachydermHook>` for the connection's fields.

    :param pachyderm_conn_id: Airflow connection id.
    :param project: Pachyderm project; overrides the connection's ``project``.
    :param max_retries: attempts after the first for calls worth another try.
    :param retry_backoff: first backoff in seconds; doubles up to ``retry_backoff_max``.
    """

    conn_name_attr = "pachyderm_conn_id"
    default_conn_name = "pachyderm_default"
    conn_type = "pachyderm"

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

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry policy of :meth:`_call`, from ``max_retries`` and the backoffs."""
        return RetryPolicy.from_retries(
            self.max_retries, self.retry_backoff, self.retry_backoff_max
        )

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

    def _call(self, action: str, fn: Callable[..., T], *, deadline: float | None = None) -> T:
        """The one way the hook calls pachd: ``fn()`` under the hook's
        :class:`~cpsign_airflow.retries.RetryPolicy` (retried on UNAVAILABLE and pachd's
        transient database errors, :func:`~cpsign_airflow.hooks._grpc_errors.retry_reason`),
        any failure raised as a :mod:`cpsign_airflow.exceptions` type naming ``action``.

        With a ``deadline`` (``time.monotonic()``) pachd must answer by then: each attempt
        is ``fn(timeout=seconds left)`` (an :meth:`_rpc`, which takes one; pachyderm-sdk's
        stubs cannot, see ``_sdk``), and PachydermTimeout is raised once no time is left.
        """

        def attempt() -> T:
            if deadline is None:
                return fn()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PachydermTimeout(f"Pachyderm could not {action}: no time left")
            return fn(timeout=remaining)

        def on_retry(retry: int, reason: str, pause: float) -> None:
            self.log.warning(
                "pachd at %s %s while trying to %s; retry %d/%d in %.1fs",
                self.address.url,
                _grpc_errors.scrub(reason, self._secrets()),
                action,
                retry,
                self.max_retries,
                pause,
            )

        def give_up(err: BaseException, attempts: int) -> PachydermError:
            translated = self._translate(err, action)
            if attempts > 1:
                translated = type(translated)(
                    f"{translated} (gave up after {attempts} attempts)",
                    code=translated.code,
                    details=translated.details,
                )
            return translated

        try:
            return self.retry_policy.call(attempt, _grpc_errors.retry_reason, on_retry, give_up)
        except Exception as err:  # grpc.RpcError, ConnectionError, ...
            raise self._translate(err, action) from None

    def _translate(self, err: BaseException, action: str) -> PachydermError:
        return _grpc_errors.translate(
            err, action, address=self.address.url, secrets=self._secrets()
        )

    def _list(
        self, action: str, fn: Callable[..., Iterable[T]], *, deadline: float | None = None
    ) -> list[T]:
        """Like _call for streaming RPCs: the stream is drained inside the retry."""
        return self._call(action, lambda **timeout: list(fn(**timeout)), deadline=deadline)

    def _rpc(self, method: str, response: Any, *, stream: bool = False) -> Callable[..., Any]:
        """``method`` (``"/pfs_v2.API/InspectCommitSet"``) on this hook's channel, called as
        ``rpc(request, timeout=seconds)``: for calls by a deadline (:meth:`_call`)."""
        return _sdk.timed_rpc(self.get_conn(), method, response, stream=stream)

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


__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_PORT",
    "DEFAULT_PROJECT",
    "TERMINAL_JOB_STATES",
    "BasePachydermHook",
    "PachdAddress",
    "RefType",
    "address_from_connection",
    "commit_to_dict",
    "connection_uri",
    "console_link",
    "console_url_from_connection",
    "job_to_dict",
    "pipeline_state_to_dict",
]
