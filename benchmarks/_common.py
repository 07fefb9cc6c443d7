"""Shared helpers: the result table, process memory and CPU, a connection to pachd."""

from __future__ import annotations

import os
import resource
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

MIB = 1024 * 1024


@dataclass
class Row:
    """One line of the result table."""

    benchmark: str
    metric: str
    value: str
    baseline: str = ""
    target: str = ""
    met: bool | None = None

    @property
    def verdict(self) -> str:
        return {True: "met", False: "MISSED", None: ""}[self.met]


def print_table(rows: Iterable[Row], title: str = "") -> None:
    rows = list(rows)
    headers = ("benchmark", "metric", "measured", "baseline (same run)", "target", "")
    cells = [(r.benchmark, r.metric, r.value, r.baseline, r.target, r.verdict) for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    line = "  ".join("-" * w for w in widths)
    if title:
        print(title)
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    print(line)
    previous = None
    for c in cells:
        shown = ("" if c[0] == previous else c[0], *c[1:])
        previous = c[0]
        print("  ".join(x.ljust(w) for x, w in zip(shown, widths, strict=True)).rstrip())
    print(flush=True)


def _proc_status(field: str) -> int:
    """A ``kB`` field of /proc/self/status, in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def rss() -> int:
    """Resident set size of this process now, in bytes."""
    return _proc_status("VmRSS")


def live_rss() -> int:
    """RSS after handing glibc's free heap pages back to the system (``malloc_trim``).

    What a process holds, rather than what its allocator happens to keep: a burst of
    large transient buffers (e.g. 1,000 replies of ~180 KB each, freed once decoded)
    otherwise stays in malloc's arenas, and plain RSS of identical runs varied from
    60 to 180 MB. Plain :func:`rss` where glibc is not the C library.
    """
    import ctypes

    try:
        ctypes.CDLL(None).malloc_trim(0)  # the process's own symbols: libc's, on glibc
    except (OSError, AttributeError, TypeError):
        pass
    return rss()


def peak_rss() -> int:
    """High-water mark of RSS (VmHWM), in bytes."""
    return _proc_status("VmHWM")


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False when not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of another process (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def use_pachd(address: str, conn_id: str = "pachyderm_default") -> str:
    """Point the Airflow connection ``conn_id`` at pachd's ``address`` (grpc://host:port),
    as a ``pachyderm://`` connection URI."""
    from cpsign_airflow.hooks.pachyderm import connection_uri

    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = connection_uri(address)
    return conn_id


def quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    n = len(ordered)
    return {
        "median": statistics.median(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "p90": ordered[min(n - 1, round(0.9 * (n - 1)))],
    }


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def mib(n_bytes: float) -> str:
    return f"{n_bytes / MIB:.1f} MiB"


def spec(name: str, repo: str) -> dict:
    return {
        "pipeline": {"name": name},
        "input": {"pfs": {"repo": repo, "glob": "/"}},
        "transform": {"image": "cpsign", "cmd": ["true"]},
    }


def signalling_trigger(on_open: Callable[[], None], share_pipeline_check: bool = True) -> Any:
    """``PachydermCommitSetTrigger`` calling ``on_open()`` when a stream of its wait
    delivers its first commit (the stream is open on pachd); otherwise unchanged.
    ``share_pipeline_check=False``: each wait checks its pipelines for itself (the
    baseline of the shared check)."""
    import contextlib

    from cpsign_airflow.hooks.pachyderm import PachydermHook
    from cpsign_airflow.triggers.pachyderm import PachydermCommitSetTrigger

    class SignallingHook(PachydermHook):
        @contextlib.asynccontextmanager
        async def async_session(self) -> Any:
            async with super().async_session() as session:
                wait = session.wait_commit_set

                async def signalling(commit_set_id: str) -> Any:
                    first = True
                    async for commit in wait(commit_set_id):
                        if first:
                            first = False
                            on_open()
                        yield commit

                session.wait_commit_set = signalling
                yield session

    class Trigger(PachydermCommitSetTrigger):
        def _hook(self) -> Any:
            return SignallingHook(pachyderm_conn_id=self.pachyderm_conn_id, project=self.project)

    Trigger.share_pipeline_check = share_pipeline_check
    return Trigger
