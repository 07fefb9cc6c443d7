"""The gRPC server (grpc.aio on a private event-loop thread) and its Python API."""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import grpc
from grpc import aio

from . import persistence
from .auth import AuthConfig, AuthService
from .errors import PachdError
from .faults import Faults
from .jobs import JobContext, JobRunner, PipelineBehaviour
from .pfs.servicer import PfsService
from .pps.models import CRASHING_BACKOFF
from .pps.records import JobRec
from .pps.servicer import PpsService
from .state import State
from .version import VersionService

T = TypeVar("T")
MAX_MESSAGE = 128 * 1024 * 1024
SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.so_reuseport", 0),
]
STREAM_CUT = "stream cut by injected fault"
SHUTTING_DOWN = "pachd is shutting down"
SHUTDOWN_TIMEOUT = 30.0


class LocalPachd:
    """A pachd stand-in serving pachd's gRPC API from a background thread.

    Use as a context manager, or call :meth:`start` / :meth:`stop`. With ``data_dir``
    the state is saved there (see :mod:`.persistence`) after every change and at stop,
    and loaded back at start; without it, state lives in memory only.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        auth_token: str | None = None,
        data_dir: str | Path | None = None,
        unpullable_images: Iterable[str] = (),
    ):
        self.host = host
        self.port = port
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.faults = Faults()
        #: seconds between checks of a CRASHING pipeline (pachd's crashingBackoff: 15 s)
        self.crashing_backoff = CRASHING_BACKOFF
        #: images no worker can pull (a test's stand-in for a missing image or registry):
        #: their pipelines are CRASHING with pachd's image-pull reason until removed here
        self.unpullable_images: set[str] = set(unpullable_images)
        #: seconds from FinishCommit (which sets ``finishing``) to ``finished``, set later by
        #: pachd's PFS master (master.go); 0: on the next loop turn, never in the call itself
        self.finish_delay = 0.0
        self.calls: list[str] = []
        self._auth = AuthConfig(auth_token)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: aio.Server | None = None
        self._state: State | None = None
        self._runner: JobRunner | None = None
        self._pending_config: dict[str, PipelineBehaviour] = {}
        self._active_streams = 0
        self._calls_lock = threading.Lock()
        self._save_pending = False
        self._saving = False  # True while changes are to be saved (data_dir, between start/stop)
        self._blobs_written: set[str] = set()

    # ---------------------------------------------------------------- config
    @property
    def address(self) -> str:
        return f"grpc://{self.host}:{self.port}"

    @property
    def auth_token(self) -> str | None:
        return self._auth.token

    def require_auth(self, token: str | None) -> None:
        """Require ``token`` in ``authn-token`` metadata; ``None`` deactivates auth."""
        self._auth.token = token

    def configure_pipeline(
        self,
        name: str,
        *,
        duration: float = 0.05,
        fail: bool = False,
        reason: str = "",
        logs: Iterable[str] = (),
        outputs: dict[str, bytes] | None = None,
        datums: int | None = None,
        handler: Callable[[JobContext], Any] | None = None,
    ) -> None:
        """Set how future jobs of pipeline ``name`` behave (any project)."""
        behaviour = PipelineBehaviour(
            duration=duration,
            fail=fail,
            reason=reason,
            logs=list(logs),
            outputs=dict(outputs) if outputs is not None else None,
            datums=datums,
            handler=handler,
        )
        self._pending_config[name] = behaviour
        if self._runner is not None:
            self._runner.configure(name, behaviour)

    def unconfigure_pipeline(self, name: str) -> None:
        """Undo :meth:`configure_pipeline`: future jobs of ``name`` run its transform."""
        self._pending_config.pop(name, None)
        if self._runner is not None:
            self._runner.forget(name)

    def job_states(self, job_id: str, pipeline: str, project: str = "default") -> list[str]:
        """Names of the JobStates job ``pipeline@job_id`` passed through, in order."""

        def read() -> list[str]:
            job = self._require_state().pps.jobs.get(((project, pipeline), job_id))
            return [] if job is None else [s.name for s in job.states]

        return self._in_loop(read)

    def call_counts(self) -> collections.Counter[str]:
        with self._calls_lock:
            return collections.Counter(self.calls)

    # ------------------------------------------------------------- lifecycle
    def start(self) -> LocalPachd:
        if self._thread is not None:
            return self
        ready: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._thread_main, args=(ready,), name="local-pachd", daemon=True
        )
        self._thread.start()
        ready.result()
        self._submit(self._start_server()).result()
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        shutdown = self._submit(self._shutdown())
        try:
            shutdown.result(timeout=SHUTDOWN_TIMEOUT)
        except TimeoutError:
            raise TimeoutError(
                f"local pachd did not shut down in {SHUTDOWN_TIMEOUT:g} s; "
                f"its unfinished tasks:\n{self._describe_tasks()}"
            ) from None
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._thread = None
            self._loop = None
            self._state = None
            self._runner = None

    def _describe_tasks(self) -> str:
        """The loop's unfinished tasks with where each waits: what a stuck shutdown needs."""
        loop = self._loop
        if loop is None:
            return "(no loop)"
        lines = []
        for task in asyncio.all_tasks(loop):
            chain, coro = [], task.get_coro()
            while coro is not None and hasattr(coro, "cr_frame"):  # follow the await chain
                frame = coro.cr_frame
                if frame is not None:
                    chain.append(
                        f"{frame.f_code.co_name} "
                        f"({Path(frame.f_code.co_filename).name}:{frame.f_lineno})"
                    )
                coro = coro.cr_await
            awaited = f" awaiting {coro!r}" if coro is not None else ""
            lines.append(f"  {task.get_name()}: {' -> '.join(chain) or task!r}{awaited}")
        return "\n".join(sorted(lines)) or "  (none)"

    def restart(self) -> None:
        """Stop serving and serve again on the same port; state is kept.

        Streams in flight end with UNAVAILABLE; jobs keep running meanwhile.
        """
        self._submit(self._stop_server()).result(timeout=30)
        self._submit(self._start_server()).result(timeout=30)

    def __enter__(self) -> LocalPachd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------- internals
    def _thread_main(self, ready: Future[None]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        loop.call_soon(ready.set_result, None)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _submit(self, coro: Any) -> Future[Any]:
        assert self._loop is not None, "LocalPachd is not started"
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def _in_loop(self, fn: Callable[[], T]) -> T:
        async def run() -> T:
            return fn()

        return self._submit(run()).result(timeout=30)

    def _require_state(self) -> State:
        assert self._state is not None, "LocalPachd is not started"
        return self._state

    async def _start_server(self) -> None:
        resume: list[JobRec] = []
        loaded = False
        if self._state is None:
            saved = persistence.load(self.data_dir) if self.data_dir is not None else None
            loaded = saved is not None
            self._state = saved or State()
            self._runner = JobRunner(self._state)
            for name, behaviour in self._pending_config.items():
                self._runner.configure(name, behaviour)
            if self.data_dir is not None:
                resume = [job for job in self._state.pps.jobs.values() if not job.done]
                self._blobs_written = set()
                self._saving = True
                self._state.events.on_dirty = self._save_soon
                self._save()  # the reset of interrupted jobs, and an early check that we can write
        assert self._runner is not None
        state = self._state
        state.events.restarting = False
        server = aio.server(options=SERVER_OPTIONS)
        # the backends' settings that are this object's (tests change them while serving)
        state.pfs.finish_delay = lambda: self.finish_delay
        state.pps.auth = self._auth
        state.pps.crashing_backoff = lambda: self.crashing_backoff
        state.pps.image_pullable = lambda image: image not in self.unpullable_images
        if loaded:
            state.pps.monitor_crashing()
        services = [
            PfsService(state.pfs),
            PpsService(state.pps),
            VersionService(),
            AuthService(self._auth),
        ]
        server.add_generic_rpc_handlers(tuple(self._handler(s) for s in services))
        port = server.add_insecure_port(f"{self.host}:{self.port}")
        if port == 0:
            raise RuntimeError(f"could not bind {self.host}:{self.port}")
        self.port = port
        await server.start()
        self._server = server
        for job in resume:  # interrupted by the last stop: they run again from the start
            self._runner.schedule(job)

    async def _stop_server(self) -> None:
        state = self._require_state()
        state.events.restarting = True
        state.events.notify()
        # let waiting streams observe the flag and end with UNAVAILABLE
        for _ in range(100):
            if self._active_streams == 0:
                break
            await asyncio.sleep(0.01)
        if self._server is not None:
            await self._server.stop(grace=0.2)
            self._server = None

    def _save_soon(self) -> None:
        """``Events.on_dirty``: the mutations of one loop tick are saved by one write."""
        if not self._save_pending:
            self._save_pending = True
            asyncio.get_running_loop().call_soon(self._save)

    def _save(self) -> None:
        """Runs on the loop thread, synchronously: nothing mutates the state meanwhile."""
        self._save_pending = False
        if self._saving and self._state is not None and self.data_dir is not None:
            persistence.save(self._state, self.data_dir, self._blobs_written)

    async def _shutdown(self) -> None:
        await self._stop_server()
        state = self._state
        if state is not None:
            tasks = [j.task for j in state.pps.jobs.values() if j.task and not j.task.done()]
            try:
                if self._saving:
                    # Saved before the job tasks are cancelled: running jobs are kept as
                    # unfinished (they resume at the next start), not as killed.
                    self._saving, state.events.on_dirty = False, None
                    assert self.data_dir is not None
                    persistence.save(state, self.data_dir, self._blobs_written, prune=True)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    def _record(self, short: str) -> None:
        with self._calls_lock:
            self.calls.append(short)

    async def _preamble(self, service: str, short: str, context: aio.ServicerContext) -> None:
        full = f"/{service}/{short}"
        self._record(short)
        latency = self.faults.latency
        if latency > 0:
            await asyncio.sleep(latency)
        failure = self.faults.take_failure(short, f"{service}/{short}")
        if failure is not None:
            raise PachdError(*failure)
        self._auth.check(full, context.invocation_metadata())

    def _handler(self, svc: Any) -> grpc.GenericRpcHandler:
        handlers = {}
        for short, (kind, req_cls, impl) in svc.methods().items():
            handlers[short] = self._wrap(svc.service, short, kind, req_cls, impl)
        return grpc.method_handlers_generic_handler(svc.service, handlers)

    def _wrap(self, service: str, short: str, kind: str, req_cls: Any, impl: Any) -> Any:
        deserializer = req_cls.FromString

        def serializer(msg: Any) -> bytes:
            return bytes(msg)

        if kind == "unary_unary":

            async def unary(request: Any, context: aio.ServicerContext) -> Any:
                try:
                    await self._preamble(service, short, context)
                    return await impl(request, context)
                except PachdError as exc:
                    await context.abort(exc.code, exc.message)

            return grpc.unary_unary_rpc_method_handler(
                unary, request_deserializer=deserializer, response_serializer=serializer
            )

        if kind == "stream_unary":

            async def client_stream(requests: Any, context: aio.ServicerContext) -> Any:
                try:
                    await self._preamble(service, short, context)
                    return await impl(requests, context)
                except PachdError as exc:
                    await context.abort(exc.code, exc.message)

            return grpc.stream_unary_rpc_method_handler(
                client_stream, request_deserializer=deserializer, response_serializer=serializer
            )

        async def server_stream(request: Any, context: aio.ServicerContext) -> Any:
            self._active_streams += 1
            try:
                await self._preamble(service, short, context)
                cut = self.faults.take_stream_cut()
                sent = 0
                async for message in impl(request, context):
                    if cut is not None and sent >= cut:
                        raise PachdError(grpc.StatusCode.UNAVAILABLE, STREAM_CUT)
                    yield message
                    sent += 1
                if cut is not None:
                    raise PachdError(grpc.StatusCode.UNAVAILABLE, STREAM_CUT)
            except PachdError as exc:
                await context.abort(exc.code, exc.message)
            finally:
                self._active_streams -= 1

        return grpc.unary_stream_rpc_method_handler(
            server_stream, request_deserializer=deserializer, response_serializer=serializer
        )
