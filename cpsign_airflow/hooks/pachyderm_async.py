"""The asyncio side of the Pachyderm hook: :class:`AsyncPachydermSession` and the pool
of grpc.aio channels its sessions share (per event loop and pachd), for the trigger.

Sessions are opened by :meth:`PachydermHook.async_session
<cpsign_airflow.hooks.pachyderm.PachydermHook.async_session>`; nothing is retried here
(the trigger reopens its wait under the provider's :mod:`~cpsign_airflow.retries` policy).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import importlib
import sys
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from cpsign_airflow.exceptions import PachydermNotFound
from cpsign_airflow.hooks import _grpc_errors, _sdk
from cpsign_airflow.hooks.pachyderm_base import PachdAddress, _pipeline_message


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


__all__ = ["STREAMS_PER_CHANNEL", "AsyncPachydermSession", "aclose_shared_channels"]
