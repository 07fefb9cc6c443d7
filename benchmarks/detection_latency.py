"""Detection latency: last job of a commit set finished -> the waiter's event.

Setup: a local pachd in its own process, input repo ``in`` and a two-stage
chain ``a`` -> ``b``; ``b``'s jobs are gated (see ``benchmarks._pachd``), so
each sample's commit set stays open until the benchmark releases it.

Per sample: commit to ``in``; start the waiter; once it is waiting (the
trigger's stream delivered its first commit / the poller's first poll said
"not finished"), stay idle a random while and count the RPCs pachd served in
that window; release ``b``; when the waiter yields, take ``time.time()``.

Latency = event time - the latest ``finished`` timestamp of the set's jobs (set
in the same step that finishes the last output commit). The trigger's event
carries only the set's commits (the sensor lists jobs on the worker), so the
jobs are listed with a separate InspectJobSet after the event time is taken,
outside the timed path: a job's ``finished`` is fixed once the job ends, so
reading it later gives the same value. (The poll baseline still lists jobs
before it returns, as those providers' triggers do.) pachd only exposes
wall-clock timestamps, so both ends use the wall clock: the two processes read
the same host CLOCK_REALTIME, so the difference is sound to microseconds unless
the clock is stepped mid-run (NTP slews, it does not step, for ms-size
corrections). ``time.monotonic`` would be nicer, but pachd's timestamp cannot
be put on it.

Waiters:

* trigger: ``PachydermCommitSetTrigger.run()`` (streaming InspectCommitSet).
* baseline: how comparable providers' triggers wait: poll ``InspectCommit`` on
  the last stage's output commit every 5 s (one RPC per poll, the cheapest
  possible poll), then one InspectJobSet. Its idle wait is drawn uniformly over
  a whole poll period so the release falls at a random phase.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from datetime import datetime
from typing import Any

from benchmarks import _common
from benchmarks._common import Row, ms
from benchmarks._pachd import PachdProcess

NAME = "detection latency"
TARGET_MEDIAN = 0.050


def _instrumented_trigger(commit_set_id: str, opened: asyncio.Event) -> Any:
    """The real trigger, signalling when its stream delivers its first commit."""
    trigger_cls = _common.signalling_trigger(opened.set)
    return trigger_cls(commit_set_id=commit_set_id, reconnect_backoff=0.1)


async def trigger_wait(commit_set_id: str, opened: asyncio.Event) -> tuple[float, dict]:
    gen = _instrumented_trigger(commit_set_id, opened).run()
    try:
        event = await anext(gen)
        return time.time(), event.payload
    finally:
        await gen.aclose()


async def poll_wait(
    commit_set_id: str, repo: str, opened: asyncio.Event, interval: float
) -> tuple[float, dict]:
    """Baseline: InspectCommit every ``interval`` seconds until finished.

    The poll is an RPC the provider never makes, so it goes over a channel of its
    own (the local pachd asks for no token); the jobs are then listed as the
    trigger's session lists them.
    """
    import grpc
    from pachyderm_sdk.api import pfs

    from cpsign_airflow.hooks.pachyderm import PachydermHook
    from cpsign_airflow.hooks.pachyderm_outcome import summarize

    hook = PachydermHook()
    address = await hook.aget_address()
    channel = grpc.aio.insecure_channel(f"{address.host}:{address.port}")
    try:
        rpc = channel.unary_unary(
            "/pfs_v2.API/InspectCommit",
            request_serializer=bytes,
            response_deserializer=pfs.CommitInfo.FromString,
        )
        repo_msg = pfs.Repo(name=repo, type="user", project=pfs.Project(name="default"))
        request = pfs.InspectCommitRequest(commit=pfs.Commit(repo=repo_msg, id=commit_set_id))
        while True:
            info = await rpc(request)
            if info.finished is not None and info.finished.timestamp() > 0:
                async with hook.async_session() as session:
                    jobs = await session.list_jobs(commit_set_id)
                return time.time(), summarize(jobs, [])
            opened.set()
            await asyncio.sleep(interval)
    finally:
        await channel.close()


def _last_job_finished(jobs: list[dict]) -> float:
    return max(datetime.fromisoformat(j["finished"]).timestamp() for j in jobs)


async def _measure(
    pachd: PachdProcess, hook: Any, kind: str, samples: int, interval: float, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    latencies: list[float] = []
    idle_calls = 0
    idle_seconds = 0.0
    for i in range(samples + 1):  # sample 0 warms up imports and channels; not counted
        await asyncio.to_thread(pachd.gate, "b")
        commit = await asyncio.to_thread(
            hook.put_file, "in", "/configuration.json", data=json.dumps({"kind": kind, "i": i})
        )
        opened = asyncio.Event()
        if kind == "trigger":
            task = asyncio.create_task(trigger_wait(commit, opened))
            idle = rng.uniform(0.2, 0.5)
        else:
            task = asyncio.create_task(poll_wait(commit, "b", opened, interval))
            idle = rng.uniform(0.5, 0.5 + interval)  # a random phase of the poll period
        await asyncio.wait_for(opened.wait(), 60)
        before = await asyncio.to_thread(pachd.total_calls)
        idle_start = time.monotonic()
        await asyncio.sleep(idle)
        after = await asyncio.to_thread(pachd.total_calls)
        idled = time.monotonic() - idle_start
        await asyncio.to_thread(pachd.release, "b")
        t_event, payload = await asyncio.wait_for(task, 60 + interval)
        assert payload["status"] == ("finished" if kind == "trigger" else "success"), payload
        # after the event time was taken: not in the timed path
        jobs = await asyncio.to_thread(hook.list_jobs, commit)
        assert {j["state"] for j in jobs} == {"JOB_SUCCESS"}, jobs
        if i == 0:
            continue
        latencies.append(t_event - _last_job_finished(jobs))
        idle_calls += after - before
        idle_seconds += idled
    from cpsign_airflow.hooks.pachyderm import aclose_shared_channels

    await aclose_shared_channels()
    return {
        "latencies": latencies,
        "idle_calls": idle_calls,
        "idle_seconds": idle_seconds,
    }


def run(samples: int = 20, poll_samples: int = 5, poll_interval: float = 5.0) -> list[Row]:
    from cpsign_airflow.hooks.pachyderm import PachydermHook

    with PachdProcess() as pachd:
        _common.use_pachd(pachd.address)
        hook = PachydermHook()
        hook.ensure_repo("in")
        hook.create_or_update_pipeline(_common.spec("a", "in"))
        hook.create_or_update_pipeline(_common.spec("b", "a"))
        pachd.configure("a", duration=0)
        try:
            trig = asyncio.run(_measure(pachd, hook, "trigger", samples, poll_interval, 1))
            poll = asyncio.run(_measure(pachd, hook, "poll", poll_samples, poll_interval, 2))
        finally:
            hook.close()
    t = _common.quantiles(trig["latencies"])
    p = _common.quantiles(poll["latencies"])

    def idle(r: dict) -> str:
        rate = 60 * r["idle_calls"] / r["idle_seconds"] if r["idle_seconds"] else 0
        return f"{r['idle_calls']} RPCs in {r['idle_seconds']:.1f}s idle ({rate:.1f}/min)"

    base = f"poll InspectCommit/{poll_interval:g}s, n={len(poll['latencies'])}"
    return [
        Row(
            NAME,
            f"median, n={len(trig['latencies'])} (trigger)",
            ms(t["median"]),
            f"{ms(p['median'])} ({base})",
            "< 50 ms",
            t["median"] < TARGET_MEDIAN,
        ),
        Row(
            NAME,
            "min / p90 / max",
            f"{ms(t['min'])} / {ms(t['p90'])} / {ms(t['max'])}",
            f"{ms(p['min'])} / {ms(p['p90'])} / {ms(p['max'])}",
        ),
        Row(
            NAME,
            "RPCs while waiting, idle",
            idle(trig),
            idle(poll),
            "0",
            trig["idle_calls"] == 0,
        ),
    ]


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.detection_latency")
    parser.add_argument("--samples", type=int, default=20, help="trigger samples")
    parser.add_argument("--poll-samples", type=int, default=5, help="baseline poller samples")
    parser.add_argument("--poll-interval", type=float, default=5.0)
    args = parser.parse_args(argv)
    return run(args.samples, args.poll_samples, args.poll_interval)


if __name__ == "__main__":
    _common.print_table(main(), title=f"== {NAME} ==")
