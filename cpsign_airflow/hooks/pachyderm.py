"""Airflow hook for Pachyderm's pachd, through pachyderm-sdk.

Every method is idempotent where pachd allows it and returns plain data
(str, int, bool, dict, list) so results can go to XCom as they are. grpc and
pachyderm-sdk are imported inside methods: a DAG file that imports an operator
must not pay for them at parse time.

:class:`PachydermHook` is composed, as the Databricks provider composes its hook, from

* :mod:`~cpsign_airflow.hooks.pachyderm_base`: the connection (:class:`PachdAddress`),
  the one way to call pachd (with or without a deadline, retried and translated), the
  plain views of pachd's messages (:func:`commit_to_dict` and friends), Console links;
* :mod:`~cpsign_airflow.hooks.pachyderm_pfs`: repos, files, commits, commit sets;
* :mod:`~cpsign_airflow.hooks.pachyderm_pps`: pipelines, jobs, logs;
* :mod:`~cpsign_airflow.hooks.pachyderm_async`: the asyncio session of the trigger
  (:class:`AsyncPachydermSession`) and its pool of shared channels.

Everything is importable from here as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from cpsign_airflow.exceptions import PachydermAlreadyExists, PachydermNotFound
from cpsign_airflow.hooks.pachyderm_async import (
    _SHARED_CHANNELS as _SHARED_CHANNELS,
)
from cpsign_airflow.hooks.pachyderm_async import (
    STREAMS_PER_CHANNEL as STREAMS_PER_CHANNEL,
)
from cpsign_airflow.hooks.pachyderm_async import (
    AsyncPachydermSession,
    _import_async_modules,
    _lease_shared_channel,
    aclose_shared_channels,
)
from cpsign_airflow.hooks.pachyderm_base import (
    CHUNK_SIZE,
    DEFAULT_PORT,
    DEFAULT_PROJECT,
    TERMINAL_JOB_STATES,
    BasePachydermHook,
    PachdAddress,
    RefType,
    address_from_connection,
    commit_to_dict,
    connection_uri,
    console_link,
    console_url_from_connection,
    job_to_dict,
    pipeline_state_to_dict,
)
from cpsign_airflow.hooks.pachyderm_pfs import PachydermPfsMixin
from cpsign_airflow.hooks.pachyderm_pps import PachydermPpsMixin


class PachydermHook(PachydermPfsMixin, PachydermPpsMixin, BasePachydermHook):
    """Talk to pachd: repos, pipelines, files, commit sets and jobs.

    Connection fields: host, port (default 30650), password = auth token;
    extras ``tls``, ``root_certs`` (PEM), ``project`` (default ``default``),
    ``console_url``. As a URI: ``pachyderm://:TOKEN@host:port`` (``?tls=true`` for TLS).

    Calls answered UNAVAILABLE (or refused connections), or UNKNOWN with one of
    PostgreSQL's transient transaction failures (serialization failure, deadlock,
    aborted transaction), are retried with bounded exponential backoff (the provider's
    :class:`~cpsign_airflow.retries.RetryPolicy`), each retry logged with its attempt
    count and reason; other gRPC errors become
    :mod:`cpsign_airflow.exceptions` types that name the resource involved.
    Reads name a commit by id, or a branch with ``ref_type="branch"``; nothing
    is guessed from how a name looks. asyncio code (the trigger) uses
    :meth:`async_session` instead.

    The methods are composed from :class:`~cpsign_airflow.hooks.pachyderm_pfs.PachydermPfsMixin`
    (repos, files, commits, commit sets) and
    :class:`~cpsign_airflow.hooks.pachyderm_pps.PachydermPpsMixin` (pipelines, jobs, logs) on
    :class:`~cpsign_airflow.hooks.pachyderm_base.BasePachydermHook` (the connection, calls).

    :param pachyderm_conn_id: Airflow connection id.
    :param project: Pachyderm project; overrides the connection's ``project``.
    :param max_retries: attempts after the first for those.
    :param retry_backoff: first backoff in seconds; doubles up to ``retry_backoff_max``.
    """

    conn_name_attr = "pachyderm_conn_id"
    default_conn_name = "pachyderm_default"
    conn_type = "pachyderm"
    hook_name = "Pachyderm"

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


__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_PORT",
    "DEFAULT_PROJECT",
    "STREAMS_PER_CHANNEL",
    "TERMINAL_JOB_STATES",
    "AsyncPachydermSession",
    "BasePachydermHook",
    "PachdAddress",
    "PachydermHook",
    "RefType",
    "aclose_shared_channels",
    "address_from_connection",
    "commit_to_dict",
    "connection_uri",
    "console_link",
    "console_url_from_connection",
    "job_to_dict",
    "pipeline_state_to_dict",
]
