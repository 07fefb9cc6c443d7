"""put-file throughput: ``PachydermHook.put_file(local_path=...)`` vs a raw ModifyFile stream.

A file of ``--size-mib`` MiB (default 1024) is written to a temp dir as one
random 2 MiB block repeated, then deleted at the end. The local pachd runs in
its own process; each upload runs in a fresh spawned client process, so its
RSS is the client's alone. Uploads alternate raw/hook ``--repeats`` times;
the median of each is reported.

* raw (baseline): pachyderm-sdk ``client.pfs.modify_file`` fed pre-built
  ``ModifyFileRequest`` messages carrying the same bytes in the same 2 MiB
  pieces (the block is built once, no file I/O), between StartCommit and
  FinishCommit: the most the transport can do with this chunking.
* reference: pachyderm-sdk ``put_file_from_file`` (its 19 MiB chunks, reads
  the file), also between StartCommit and FinishCommit.
* hook: ``PachydermHook.put_file(repo, path, local_path=...)``, which also
  starts and finishes its commit.

Peak RSS growth = VmHWM after the upload - VmRSS just before it (VmHWM reset
through /proc/self/clear_refs; a 5 ms sampler thread is the fallback).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks import _common
from benchmarks._common import MIB, Row, mib
from benchmarks._pachd import PachdProcess

NAME = "put-file"
BLOCK = 2 * MIB


def _write_file(path: Path, size: int, block: bytes) -> None:
    with open(path, "wb") as f:
        left = size
        while left > 0:
            piece = block[: min(len(block), left)]
            f.write(piece)
            left -= len(piece)


class _Peak:
    """Peak RSS during a block: VmHWM if it can be reset, else a sampler thread."""

    def __enter__(self) -> _Peak:
        self.start = _common.rss()
        self.hwm = _common.reset_peak_rss()
        self.sampled = self.start
        self._stop = threading.Event()
        if not self.hwm:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.sampled = max(self.sampled, _common.rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.peak = _common.peak_rss() if self.hwm else max(self.sampled, _common.rss())
        self.growth = self.peak - self.start


def _upload(kind: str, address: str, local_path: str, size: int, seed: bytes, out: Any) -> None:
    import benchmarks  # noqa: F401  (environment set-up in a spawned process)

    try:
        from pachyderm_sdk.api import pfs

        from cpsign_airflow.hooks.pachyderm import CHUNK_SIZE, PachydermHook

        _common.use_pachd(address)
        hook = PachydermHook()
        client = hook.get_conn()
        repo = f"{kind}-{os.getpid()}"
        hook.ensure_repo(repo)
        branch = pfs.Branch(
            repo=pfs.Repo(name=repo, type="user", project=pfs.Project(name="default")),
            name="master",
        )
        path = "/big.bin"
        requests: list[Any] = []
        if kind == "raw":
            block = seed * (CHUNK_SIZE // len(seed))
            full = pfs.ModifyFileRequest(add_file=pfs.AddFile(path=path, raw=block))
            requests = [pfs.ModifyFileRequest(delete_file=pfs.DeleteFile(path=path))]
            requests.append(pfs.ModifyFileRequest(add_file=pfs.AddFile(path=path, raw=b"")))
            requests += [full] * (size // CHUNK_SIZE)
            if size % CHUNK_SIZE:
                tail = block[: size % CHUNK_SIZE]
                requests.append(pfs.ModifyFileRequest(add_file=pfs.AddFile(path=path, raw=tail)))
        with _Peak() as peak:
            started = time.perf_counter()
            if kind == "hook":
                commit_id = hook.put_file(repo, path, local_path=local_path)
            else:
                commit = client.pfs.start_commit(branch=branch)
                if kind == "raw":
                    client.pfs.modify_file(
                        iter([pfs.ModifyFileRequest(set_commit=commit), *requests])
                    )
                else:
                    with open(local_path, "rb") as source:
                        client.pfs.put_file_from_file(commit=commit, path=path, file=source)
                client.pfs.finish_commit(commit=commit)
                commit_id = commit.id
            elapsed = time.perf_counter() - started
        stored = {f["path"]: f["size_bytes"] for f in hook.list_files(repo, commit_id)}
        assert stored.get(path) == size, f"{kind}: stored {stored}, expected {size} bytes"
        hook.close()
        out.send({"seconds": elapsed, "rss_growth": peak.growth, "hwm": peak.hwm})
    except BaseException as err:
        out.send(RuntimeError(f"{kind} upload failed: {type(err).__name__}: {err}"))
        raise


def _measure(kind: str, address: str, local_path: str, size: int, seed: bytes) -> dict:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_upload, args=(kind, address, local_path, size, seed, child))
    proc.start()
    child.close()
    result = parent.recv()
    proc.join(60)
    if isinstance(result, Exception):
        raise result
    return result


def run(size_mib: int = 1024, repeats: int = 2) -> list[Row]:
    size = size_mib * MIB
    seed = os.urandom(BLOCK)
    results: dict[str, list[dict]] = {"raw": [], "hook": [], "sdk": []}
    with tempfile.TemporaryDirectory(prefix="cpsign-bench-") as tmp, PachdProcess() as pachd:
        local = Path(tmp) / "big.bin"
        _write_file(local, size, seed)
        for _ in range(repeats):
            for kind in ("raw", "hook", "sdk"):
                results[kind].append(_measure(kind, pachd.address, str(local), size, seed))

    def rate(kind: str) -> float:
        return size / statistics.median(r["seconds"] for r in results[kind])

    def growth(kind: str) -> int:
        return max(r["rss_growth"] for r in results[kind])

    ratio = rate("hook") / rate("raw")
    hook_growth = growth("hook")
    how = "VmHWM" if all(r["hwm"] for r in results["hook"]) else "5 ms sampling"
    return [
        Row(
            NAME,
            f"throughput, {size_mib} MiB, median of {repeats}",
            f"{rate('hook') / MIB:.0f} MiB/s (hook.put_file)",
            f"{rate('raw') / MIB:.0f} MiB/s raw modify_file; "
            f"{rate('sdk') / MIB:.0f} MiB/s sdk put_file_from_file",
        ),
        Row(NAME, "hook / raw", f"{ratio:.2f}", "1.00", ">= 0.70", ratio >= 0.7),
        Row(
            NAME,
            f"peak client RSS growth (max, {how})",
            mib(hook_growth),
            f"raw {mib(growth('raw'))}; sdk {mib(growth('sdk'))}",
            "< 64 MiB",
            hook_growth < 64 * MIB,
        ),
    ]


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.put_file_throughput")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    return run(args.size_mib, args.repeats)


if __name__ == "__main__":
    _common.print_table(main(), title=f"== {NAME} ==")
