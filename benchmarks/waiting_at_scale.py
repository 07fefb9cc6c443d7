"""Waiting at scale: N commit-set waits held at once, as one triggerer holds them.

Each variant runs in a fresh process (the "waiter process") that starts its own
local pachd in yet another process (``benchmarks._pachd``), so the waiter
process holds only the waits. In the waiter process:

1. one input repo, one gated pipeline ``p``; N commits -> N commit sets whose
   jobs all block until released (made with the sync hook, which is then closed);
2. RSS before; start the N waits; wait until every one is waiting (trigger: its
   stream delivered the input commit; threads: pachd served N InspectCommitSet);
   RSS after = "RSS added". Both are read after ``malloc_trim`` (``_common.live_rss``):
   every wait first receives the pipeline's spec commit, whose direct subvenance lists
   every output and meta commit made from it (~180 KB with 1,000 sets, as real pachd
   sends it), and those freed buffers would otherwise count;
3. CPU time (user+sys, all threads, getrusage) over ``--idle`` seconds of
   waiting, and the RPCs pachd served meanwhile;
4. release the gate: all N jobs finish; every wait records ``time.time()`` when
   its event arrives. Reported: last event - last job finished, last event -
   first job finished (pachd takes a while to finish N jobs), and per-wait
   latency (event - its own job's ``finished``; wall clock, see
   detection_latency for why that is sound), and the CPU time the waiter
   process and the pachd process each used from release to the last event
   (tells client-side from server-side cost on a shared machine).
5. after the last event, outside the timed path: list every set's jobs (for
   their ``finished`` timestamps, which do not depend on when they are read).
   The trigger's event carries only the set's commits; in Airflow the jobs are
   listed by the sensor's ``execute_complete`` on a worker, not in the triggerer.

Variants: ``trigger`` = N ``PachydermCommitSetTrigger.run()`` tasks in one
asyncio loop (their streams share pooled grpc.aio channels), with the
fail-fast pipeline check off: the stream alone; ``trigger+check`` = the same
with the pipeline check on (``pipeline_check_interval`` = ``--check-interval``,
default 15 s, so that a short run sees several rounds). Its idle window starts
one interval after the last wait opened, when every trigger has had its first
check (which also learns the set's pipelines with one InspectJobSet), and lasts
``--check-idle`` seconds; the RPCs pachd served in it, by method, give the
steady-state cost per waiting trigger per minute, and per check round (which is
the cost per minute at the default 60 s interval). The N waits are on one chain
(one pipeline), so they share one pipeline check (one InspectPipeline per
interval, whatever N); ``trigger+check/per-wait`` (its baseline) = the same with
``share_pipeline_check = False``: each wait checks its pipeline for itself, as
before the sharing (N InspectPipeline per interval); ``threads``
(baseline) = one thread per wait, each calling the sync
``PachydermHook.wait_commit_set`` (jobs listed afterwards, as for the trigger,
so both variants time the same work: the wait). Its default count is
300, not 1,000: with 1,000 threads the process spent minutes with ~500 threads
runnable (grpc's sync stream wait wakes every 0.1 s to check for signals, and
they all fight over the GIL) and did not finish; ``--baseline-count 1000`` tries.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from benchmarks import _common
from benchmarks._common import Row, mib, ms
from benchmarks._pachd import PachdProcess

NAME = "waiting at scale"
OPEN_TIMEOUT = 300


def _finished(payload_jobs: list[dict]) -> float:
    return max(datetime.fromisoformat(j["finished"]).timestamp() for j in payload_jobs)


def _with_jobs(results: list[tuple[float, dict]]) -> list[tuple[float, dict]]:
    """Each event with its set's jobs, listed now: after the timed path, never in it."""
    from cpsign_airflow.hooks.pachyderm import PachydermHook

    hook = PachydermHook()
    try:
        with ThreadPoolExecutor(8) as pool:
            jobs = list(pool.map(lambda r: hook.list_jobs(r[1]["commit_set_id"]), results))
    finally:
        hook.close()
    return [(t, {**p, "jobs": j}) for (t, p), j in zip(results, jobs, strict=True)]


def _make_commit_sets(pachd: PachdProcess, n: int) -> list[str]:
    from cpsign_airflow.hooks.pachyderm import PachydermHook

    hook = PachydermHook()
    hook.ensure_repo("in")
    hook.create_or_update_pipeline(_common.spec("p", "in"))
    pachd.gate("p")
    # One after the other: pachd refuses a StartCommit while the branch head is still open.
    commits = [hook.put_file("in", "/c", data=str(i)) for i in range(n)]
    hook.close()
    return commits


# ---------------------------------------------------------------- trigger variant


async def _trigger_main(
    pachd: PachdProcess,
    commits: list[str],
    idle: float,
    trigger_kwargs: dict[str, Any] | None = None,
    settle: float = 0.0,
    share_pipeline_check: bool = True,
) -> dict:
    n = len(commits)
    opened = 0
    all_open = asyncio.Event()

    def on_open() -> None:
        nonlocal opened
        opened += 1
        if opened == n:
            all_open.set()

    trigger_cls = _common.signalling_trigger(on_open, share_pipeline_check)
    trigger_kwargs = trigger_kwargs or {}
    results: list[tuple[float, dict]] = []

    async def wait_one(commit: str) -> None:
        gen = trigger_cls(commit_set_id=commit, reconnect_backoff=0.5, **trigger_kwargs).run()
        try:
            event = await anext(gen)
            results.append((time.time(), event.payload))
        finally:
            await gen.aclose()

    gc.collect()
    rss0 = _common.live_rss()
    started = time.monotonic()
    tasks = [asyncio.create_task(wait_one(c)) for c in commits]
    await asyncio.wait_for(all_open.wait(), 300)
    open_seconds = time.monotonic() - started
    gc.collect()
    rss1 = _common.live_rss()
    await asyncio.sleep(settle)  # with the check on: every trigger has had its first round
    counts0 = await asyncio.to_thread(pachd.counts)
    cpu0, wall0, pachd_cpu0 = _common.cpu_seconds(), time.monotonic(), pachd.cpu_seconds()
    await asyncio.sleep(idle)
    cpu1, wall1, pachd_cpu1 = _common.cpu_seconds(), time.monotonic(), pachd.cpu_seconds()
    counts1 = await asyncio.to_thread(pachd.counts)
    by_method = {m: counts1[m] - counts0.get(m, 0) for m in counts1 if counts1[m] != counts0.get(m)}
    cpu_r0, pachd_r0 = _common.cpu_seconds(), pachd.cpu_seconds()
    released = time.time()
    await asyncio.to_thread(pachd.release, "p")
    await asyncio.wait_for(asyncio.gather(*tasks), 300)
    release_cpu = (_common.cpu_seconds() - cpu_r0, pachd.cpu_seconds() - pachd_r0)
    from cpsign_airflow.hooks.pachyderm import aclose_shared_channels

    await aclose_shared_channels()
    results = await asyncio.to_thread(_with_jobs, results)
    summary = _summary(
        n,
        rss0,
        rss1,
        open_seconds,
        cpu1 - cpu0,
        wall1 - wall0,
        sum(by_method.values()),
        released,
        results,
        release_cpu,
    )
    summary["idle_by_method"] = by_method
    summary["idle_pachd_cpu_fraction"] = (pachd_cpu1 - pachd_cpu0) / (wall1 - wall0)
    return summary


# ---------------------------------------------------------------- thread variant


def _threads_main(pachd: PachdProcess, commits: list[str], idle: float) -> dict:
    from cpsign_airflow.hooks.pachyderm import PachydermHook

    n = len(commits)
    results: list[tuple[float, dict]] = []
    lock = threading.Lock()

    failures: list[BaseException] = []

    def wait_one(commit: str) -> None:
        hook = PachydermHook()
        try:
            hook.wait_commit_set(commit)
        except BaseException as err:
            failures.append(err)
            raise
        finally:
            hook.close()
        t = time.time()
        with lock:
            results.append((t, {"status": "finished", "commit_set_id": commit}))

    base_calls = pachd.counts().get("InspectCommitSet", 0)
    gc.collect()
    rss0 = _common.live_rss()
    started = time.monotonic()
    threads = [threading.Thread(target=wait_one, args=(c,), daemon=True) for c in commits]
    for t in threads:
        t.start()
    # harness polling over the control pipe (not gRPC): until pachd served N waits
    while (served := pachd.counts().get("InspectCommitSet", 0) - base_calls) < n:
        if failures:
            raise RuntimeError(f"{len(failures)} waits failed, first: {failures[0]!r}")
        if time.monotonic() - started > OPEN_TIMEOUT:
            raise RuntimeError(f"only {served} of {n} thread waits opened in {OPEN_TIMEOUT} s")
        time.sleep(0.05)
    open_seconds = time.monotonic() - started
    time.sleep(0.5)  # the last streams are accepted; let their threads block
    gc.collect()
    rss1 = _common.live_rss()
    calls0 = pachd.total_calls()
    cpu0, wall0 = _common.cpu_seconds(), time.monotonic()
    time.sleep(idle)
    cpu1, wall1 = _common.cpu_seconds(), time.monotonic()
    calls1 = pachd.total_calls()
    cpu_r0, pachd_r0 = _common.cpu_seconds(), pachd.cpu_seconds()
    released = time.time()
    pachd.release("p")
    deadline = time.monotonic() + OPEN_TIMEOUT
    for t in threads:
        t.join(max(deadline - time.monotonic(), 0.01))
    release_cpu = (_common.cpu_seconds() - cpu_r0, pachd.cpu_seconds() - pachd_r0)
    if failures or len(results) < n:
        raise RuntimeError(
            f"{len(results)} of {n} thread waits ended within {OPEN_TIMEOUT} s after release; "
            f"{len(failures)} failed{f', first: {failures[0]!r}' if failures else ''}"
        )
    results = _with_jobs(results)
    return _summary(
        n,
        rss0,
        rss1,
        open_seconds,
        cpu1 - cpu0,
        wall1 - wall0,
        calls1 - calls0,
        released,
        results,
        release_cpu,
    )


# ---------------------------------------------------------------- shared


def _summary(
    n: int,
    rss0: int,
    rss1: int,
    open_seconds: float,
    cpu: float,
    wall: float,
    idle_calls: int,
    released: float,
    results: list[tuple[float, dict]],
    release_cpu: tuple[float, float],
) -> dict:
    assert len(results) == n, f"{len(results)} of {n} waits ended"
    assert all(p["status"] == "finished" for _, p in results)
    assert all(j["state"] == "JOB_SUCCESS" for _, p in results for j in p["jobs"])
    events = [t for t, _ in results]
    finished = [_finished(p["jobs"]) for _, p in results]
    per_wait = [t - f for t, f in zip(events, finished, strict=True)]
    return {
        "n": n,
        "rss_added": rss1 - rss0,
        "open_seconds": open_seconds,
        "cpu_fraction": cpu / wall,
        "idle_seconds": wall,
        "idle_calls": idle_calls,
        "release_to_last_event": max(events) - released,
        "last_finished_to_last_event": max(events) - max(finished),
        "first_finished_to_last_event": max(events) - min(finished),
        "job_finish_spread": max(finished) - min(finished),
        # CPU seconds from release to the last event: waiter process, pachd process
        "release_cpu_waiter": release_cpu[0],
        "release_cpu_pachd": release_cpu[1],
        "per_wait": _common.quantiles(per_wait),
    }


def _variant(kind: str, n: int, idle: float, out: Any, check_interval: float = 60.0) -> None:
    import benchmarks  # noqa: F401  (environment set-up in a spawned process)

    try:
        with PachdProcess() as pachd:
            _common.use_pachd(pachd.address)
            commits = _make_commit_sets(pachd, n)
            if kind == "trigger":  # the stream alone
                result = asyncio.run(
                    _trigger_main(pachd, commits, idle, {"pipeline_grace_period": None})
                )
            elif kind in ("trigger+check", "trigger+check/per-wait"):
                kwargs = {"pipeline_grace_period": 600.0, "pipeline_check_interval": check_interval}
                shared = kind == "trigger+check"
                result = asyncio.run(
                    _trigger_main(pachd, commits, idle, kwargs, check_interval, shared)
                )
                result["check_interval"] = check_interval
            else:
                result = _threads_main(pachd, commits, idle)
        out.send(result)
    except BaseException as err:  # report, do not hang the parent
        out.send(RuntimeError(f"{kind} variant failed: {type(err).__name__}: {err}"))
        raise


def measure(kind: str, n: int, idle: float, check_interval: float = 60.0) -> dict:
    """Run one variant in a fresh spawned process and return its figures."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_variant, args=(kind, n, idle, child, check_interval), name=f"bench-{kind}"
    )
    proc.start()
    child.close()
    result = parent.recv()
    proc.join(60)
    if isinstance(result, Exception):
        raise result
    shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items()}
    print(f"  {kind}: {shown}", flush=True)
    return result


def run(
    count: int = 1000,
    idle: float = 30.0,
    baseline_count: int = 300,
    check_interval: float = 15.0,
    check_idle: float = 60.0,
) -> list[Row]:
    t = measure("trigger", count, idle)
    c = measure("trigger+check", count, check_idle, check_interval)
    p = measure("trigger+check/per-wait", count, check_idle, check_interval)
    b = measure("threads", baseline_count, idle)
    label = f"threads, n={b['n']}"
    pw, bpw = t["per_wait"], b["per_wait"]
    return [
        Row(
            NAME,
            f"waits held (trigger, n={t['n']})",
            f"{t['n']} in 1 asyncio loop",
            f"{b['n']} threads ({label})",
        ),
        Row(
            NAME,
            "RSS added (live: after malloc_trim)",
            f"{mib(t['rss_added'])} ({t['rss_added'] / t['n'] / 1024:.0f} KiB/wait)",
            f"{mib(b['rss_added'])} ({b['rss_added'] / b['n'] / 1024:.0f} KiB/wait)",
        ),
        Row(
            NAME,
            "time to open all waits",
            f"{t['open_seconds']:.2f} s",
            f"{b['open_seconds']:.2f} s",
        ),
        Row(
            NAME,
            f"CPU while idle ({t['idle_seconds']:.0f} s)",
            f"{100 * t['cpu_fraction']:.2f}% of a core",
            f"{100 * b['cpu_fraction']:.2f}% of a core",
            "< 2%",
            t["cpu_fraction"] < 0.02,
        ),
        Row(
            NAME,
            "RPCs while idle",
            str(t["idle_calls"]),
            str(b["idle_calls"]),
            "0",
            t["idle_calls"] == 0,
        ),
        *_check_rows(c, p, t),
        Row(
            NAME,
            "pachd: first->last job finished",
            ms(t["job_finish_spread"]),
            ms(b["job_finish_spread"]),
        ),
        Row(
            NAME,
            "last job finished -> last event",
            ms(t["last_finished_to_last_event"]),
            ms(b["last_finished_to_last_event"]),
            "< 1 s",
            t["last_finished_to_last_event"] < 1,
        ),
        Row(
            NAME,
            "first job finished -> last event",
            ms(t["first_finished_to_last_event"]),
            ms(b["first_finished_to_last_event"]),
            "< 1 s",
            t["first_finished_to_last_event"] < 1,
        ),
        Row(
            NAME,
            "release -> last event",
            ms(t["release_to_last_event"]),
            ms(b["release_to_last_event"]),
        ),
        Row(
            NAME,
            "CPU, release -> last event: waiter / pachd",
            f"{t['release_cpu_waiter']:.2f} s / {t['release_cpu_pachd']:.2f} s",
            f"{b['release_cpu_waiter']:.2f} s / {b['release_cpu_pachd']:.2f} s",
        ),
        Row(
            NAME,
            "per wait: own job finished -> event",
            f"med {ms(pw['median'])} / p90 {ms(pw['p90'])} / max {ms(pw['max'])}",
            f"med {ms(bpw['median'])} / p90 {ms(bpw['p90'])} / max {ms(bpw['max'])}",
        ),
    ]


def _check_rows(c: dict, p: dict, t: dict) -> list[Row]:
    """The pipeline check's steady-state cost: shared (trigger+check) beside each wait
    checking for itself (trigger+check/per-wait), and the stream alone (t)."""
    n, interval, minutes = c["n"], c["check_interval"], c["idle_seconds"] / 60
    inspects, base_inspects = _inspects(c), _inspects(p)
    total = inspects / minutes  # pipeline-state RPCs a minute, all waits together
    base_total = base_inspects / (p["idle_seconds"] / 60)
    fewer = base_total / total if total else float("inf")
    per_minute, base_per_minute = total / n, base_total / p["n"]
    per_round, base_per_round = per_minute * interval / 60, base_per_minute * interval / 60
    return [
        Row(
            NAME,
            f"pipeline check on (every {interval:g} s, n={n} on 1 chain): RPCs while idle "
            f"({c['idle_seconds']:.0f} s)",
            _idle_rpcs(c),
            f"{_idle_rpcs(p)} (per-wait check); {t['idle_calls']} (check off)",
        ),
        Row(
            NAME,
            "  pipeline-state RPCs per minute, all waits",
            f"{total:.1f} ({fewer:.0f}x fewer)",
            f"{base_total:.0f} (per-wait check)",
            ">= 100x fewer than per-wait",
            fewer >= 100,
        ),
        Row(
            NAME,
            "  pipeline-state RPCs per waiting trigger per minute",
            f"{per_minute:.4f} at {interval:g} s = {per_round:.4f} per round",
            f"{base_per_minute:.2f} = {base_per_round:.2f} per round (per-wait check)",
            "<= 1 per unfinished pipeline per interval",
            per_round < 1.1,  # one unfinished pipeline per set; window edges add a little
        ),
        Row(
            NAME,
            "  ... at the default interval (60 s), 1-pipeline set",
            f"{per_round:.4f} / min / trigger (+1 InspectJobSet once); waiter CPU "
            f"~{_pct(c['cpu_fraction'] * interval / 60)} of a core (scaled)",
            f"{base_per_round:.2f} / min / trigger; waiter CPU "
            f"~{_pct(p['cpu_fraction'] * interval / 60)} (per-wait check)",
        ),
        Row(
            NAME,
            "  CPU while idle, check on: waiter / pachd",
            f"{_pct(c['cpu_fraction'])} / {_pct(c['idle_pachd_cpu_fraction'])} of a core",
            f"{_pct(p['cpu_fraction'])} / {_pct(p['idle_pachd_cpu_fraction'])} (per-wait "
            f"check); {_pct(t['cpu_fraction'])} / {_pct(t['idle_pachd_cpu_fraction'])} "
            "(check off)",
        ),
    ]


def _inspects(c: dict) -> int:
    return c["idle_by_method"].get("InspectPipeline", 0)


def _idle_rpcs(c: dict) -> str:
    others = {m: k for m, k in c["idle_by_method"].items() if m != "InspectPipeline"}
    return f"{_inspects(c)} InspectPipeline" + (f" + {others}" if others else "")


def _pct(fraction: float) -> str:
    return f"{100 * fraction:.2f}%"


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.waiting_at_scale")
    parser.add_argument("--count", type=int, default=1000, help="trigger waits")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of idle waiting")
    parser.add_argument(
        "--baseline-count",
        type=int,
        default=300,
        help="thread waits (1000 threads thrash on the GIL for minutes; see module doc)",
    )
    parser.add_argument(
        "--check-interval",
        type=float,
        default=15.0,
        help="pipeline_check_interval of the trigger+check variant (default in Airflow: 60)",
    )
    parser.add_argument(
        "--check-idle", type=float, default=60.0, help="idle seconds of the trigger+check variant"
    )
    args = parser.parse_args(argv)
    return run(args.count, args.idle, args.baseline_count, args.check_interval, args.check_idle)


if __name__ == "__main__":
    _common.print_table(main(), title=f"== {NAME} ==")
