"""Orchestration overhead: a training DAG run's wall time minus its jobs' critical path.

Setup (not timed): a local pachd in its own process (``benchmarks._pachd``) running
the CPSign stand-ins (:mod:`cpsign_airflow.testing.standins`) for the six pipelines of
workflow ``LogD``, each job lasting ``--duration`` seconds (per job: the local pachd
calls a stand-in once per job, whatever its datums); a real Airflow deployment
(:class:`cpsign_airflow.testing.airflow_deployment.AirflowDeployment`: api-server,
scheduler with the LocalExecutor, dag-processor, triggerer, SQLite metadata DB) with
the bundled DAGs, bookkeeping in SQLite and a SQLite source database with the two
(empty) tables the LogD example queries; ``cpsign_setup`` creates the pipelines.

Then ``--runs`` times, one after the other:

* baseline: a plain pachyderm-sdk script commits the same ``configuration.json`` to
  ``LogD-config`` and waits with ``InspectJobSet(wait=True)``; wall = put -> wait
  returned (``time.time()``);
* DAG: ``cpsign_training`` triggered through the REST API with the same
  configuration; wall = the run's ``end_date - queued_at`` (Airflow's clock: the moment
  the trigger was accepted to the moment the scheduler marked the run finished).

Critical path = last job finished - first job started of the run's commit set, from
pachd's job records (``started`` = the job went RUNNING), so the chain's own length
(``--duration`` x 6 plus pachd's hand-offs between stages) is taken out of both walls
alike. Overhead = wall - critical path. It splits exactly into "before the first job
started" and "after the last job finished". For each run the benchmark prints the
task instances' scheduled/queued/start/end dates and where the overhead goes: the
chain's intervals (run queued -> running; per task: upstream done -> queued, queued ->
started, start-up up to the log's "Worker startup parse complete", task code; for the
deferred wait: last job finished -> "Trigger fired event", then its resumption; last
task -> run done) clipped to those two windows, by category and by task.

All timestamps are wall clock on one host (pachd's, Airflow's and this process's), so
differences are sound to milliseconds (see ``detection_latency``).

Settings: Airflow's defaults, except those a deployment of this provider sets
(docker-compose.yaml: LocalExecutor, ``[operators] default_deferrable = True``) and
those listed under "changed from defaults" in the output: ``[cpsign]
training_deadline_minutes = 0`` (no DeadlineAlert) and ``task_retries = 0`` (a failure
surfaces at once; a successful run takes no retry). ``--set KEY=VALUE`` adds or
overrides environment variables of the Airflow components, e.g.
``--set AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME=0.1``, to try tunings; they are
printed beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks._common import Row
from benchmarks._pachd import PachdProcess

NAME = "orchestration overhead"
WORKFLOW = "LogD"
DAG_ID = "cpsign_training"
TARGET = 10.0
REPO = Path(__file__).resolve().parents[1]
#: Set on every component, beside what AirflowDeployment sets; see the module doc.
CHANGED = {
    "AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True",
    "AIRFLOW__CPSIGN__TRAINING_DEADLINE_MINUTES": "0",
    "AIRFLOW__CPSIGN__TASK_RETRIES": "0",
}


def _ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


class _RemotePachd:
    """What ``configure_local_pachd`` needs, forwarded to the pachd process."""

    def __init__(self, pachd: PachdProcess) -> None:
        self._pachd = pachd
        self.address = pachd.address

    def configure_pipeline(self, name: str, *, duration: float, handler: Any) -> None:
        # the stand-ins are module-level functions: pickled by name, run in the pachd process
        self._pachd.configure(name, duration=duration, handler=handler)


def _source_db(path: Path) -> None:
    """The tables the LogD example's query reads (empty: pre-flight runs it with LIMIT 0)."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE compound_structures (molregno INTEGER, canonical_smiles TEXT)")
        db.execute("CREATE TABLE compound_properties (molregno INTEGER, acd_logd REAL)")
    db.close()


def _jobs(address: str, commit_set_id: str) -> list[dict[str, Any]]:
    from pachyderm_sdk import Client
    from pachyderm_sdk.api import pps

    client = Client.from_pachd_address(address)
    infos = client.pps.inspect_job_set(job_set=pps.JobSet(id=commit_set_id))
    return [
        {
            "pipeline": info.job.pipeline.name,
            "state": pps.JobState(info.state).name,
            "started": info.started.timestamp(),
            "finished": info.finished.timestamp(),
        }
        for info in infos
    ]


def _critical_path(jobs: list[dict[str, Any]]) -> tuple[float, float]:
    assert jobs and all(j["state"] == "JOB_SUCCESS" for j in jobs), jobs
    return min(j["started"] for j in jobs), max(j["finished"] for j in jobs)


def _baseline(address: str, text: str) -> dict[str, Any]:
    """The same put-file and wait as a plain pachyderm-sdk script."""
    from pachyderm_sdk import Client
    from pachyderm_sdk.api import pfs, pps

    project = pfs.Project(name="default")
    branch = pfs.Branch(
        repo=pfs.Repo(name=f"{WORKFLOW}-config", type="user", project=project), name="master"
    )
    started = time.time()
    client = Client.from_pachd_address(address)
    with client.pfs.commit(branch=branch) as commit:
        commit.put_file_from_bytes(path="/configuration.json", data=text.encode())
    list(client.pps.inspect_job_set(job_set=pps.JobSet(id=commit.id), wait=True))
    ended = time.time()
    jobs = _jobs(address, commit.id)  # outside the timed path; the timestamps are fixed
    first, last = _critical_path(jobs)
    return {
        "wall": ended - started,
        "critical": last - first,
        "before": first - started,
        "after": ended - last,
        "jobs": jobs,
    }


WAIT_TASK = "training_run.wait_for_training"


def _task_log(airflow: Any, run_id: str, task_id: str) -> list[tuple[float, str]]:
    """(timestamp, event) of a task's log lines (the worker's, and the triggerer's)."""
    import urllib.parse

    quoted = urllib.parse.quote(run_id, safe="")
    body = airflow.api(
        "GET",
        f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted}/taskInstances/{task_id}/logs/1?full_content=true",
    )
    lines = []
    for entry in body.get("content") or []:
        if isinstance(entry, dict) and entry.get("timestamp"):
            lines.append((_ts(entry["timestamp"]), str(entry.get("event", ""))))
    return lines


def _dag_run(airflow: Any, address: str, configuration: dict, bookkeeping: str) -> dict[str, Any]:
    from cpsign_airflow.bookkeeping.ledger import TrainingLedger

    run_id = airflow.trigger(DAG_ID, {"configuration": configuration})
    run = airflow.wait_for_run(DAG_ID, run_id, timeout=1800)
    tis = airflow.task_instances(DAG_ID, run_id)
    if run["state"] != "success":
        raise RuntimeError(f"{DAG_ID} run {run_id} {run['state']}: {_states(tis)}")
    with TrainingLedger.from_url(bookkeeping) as ledger:
        [record] = ledger.runs_for_airflow_run(DAG_ID, run_id)
    jobs = _jobs(address, record.commit_set_id)
    first, last = _critical_path(jobs)
    queued, end = _ts(run["queued_at"]), _ts(run["end_date"])
    logs = {}
    for task_id, ti in tis.items():
        if not ti["queued_when"]:  # skipped by the scheduler: no log
            continue
        try:
            logs[task_id] = _task_log(airflow, run_id, task_id)
        except Exception as err:  # the breakdown loses a detail, the figures stand
            print(f"  ({task_id}'s log not read: {err})", flush=True)
    return {
        "run_id": run_id,
        "wall": end - queued,
        "critical": last - first,
        "before": first - queued,
        "after": end - last,
        "run": run,
        "tis": tis,
        "jobs": jobs,
        "logs": logs,
    }


def _states(tis: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {k: v["state"] for k, v in tis.items()}


# ---------------------------------------------------------------- breakdown

SCHEDULER_RUN = "scheduler: run queued -> running, last task -> run done"
SCHEDULER_TASK = "scheduler: upstream done -> task queued/skipped"
EXECUTOR = "executor: task queued -> task started"
STARTUP = "task start-up (process, DAG file parse)"
CODE = "task code (incl. its API/DB/pachd calls)"
TRIGGER = "trigger: last job finished -> event"


def _after(log: list[tuple[float, str]], text: str, since: float) -> float | None:
    return next((ts for ts, event in log if ts >= since and text in event), None)


def _intervals(result: dict[str, Any]) -> list[tuple[float, float, str, str]]:
    """(start, end, category, task) along the run's chain of tasks, in time order."""
    run, tis, logs = result["run"], result["tis"], result["logs"]
    last_job = max(j["finished"] for j in result["jobs"])
    queued_at, started, ended = (_ts(run[k]) for k in ("queued_at", "start_date", "end_date"))
    out = [(queued_at, started, SCHEDULER_RUN, "(run)")]
    prev_end = started
    order = sorted(tis.values(), key=lambda ti: _ts(ti["start_date"]) or float("inf"))
    for ti in order:
        name = ti["task_id"].removeprefix("training_run.")
        queued, start, end = (_ts(ti[k]) for k in ("queued_when", "start_date", "end_date"))
        if start is None or end is None:
            continue
        log = logs.get(ti["task_id"], [])
        if queued is None:  # skipped by the scheduler, never queued
            out.append((prev_end, end, SCHEDULER_TASK, name))
            prev_end = end
            continue
        begin = start
        if queued > start:  # deferred, then resumed: queued_when is the resumption
            fired = _after(log, "Trigger fired event", start) or last_job
            out.append((prev_end, start, SCHEDULER_TASK, name))  # its first queueing: lost
            out.append((start, last_job, "(deferred, waiting for the jobs)", name))
            out.append((last_job, fired, TRIGGER, name))
            prev_end = fired
            begin = _after(log, "::group::Pre Execute", fired) or queued
        out.append((prev_end, queued, SCHEDULER_TASK, name))
        out.append((queued, begin, EXECUTOR, name))
        parsed = _after(log, "Worker startup parse complete", begin) or begin
        out.append((begin, parsed, STARTUP, name))
        out.append((parsed, end, CODE, name))
        prev_end = end
    out.append((prev_end, ended, SCHEDULER_RUN, "(run)"))
    return out


def breakdown(result: dict[str, Any]) -> tuple[dict[str, float], list[str]]:
    """Where the overhead goes: the chain's intervals clipped to the two overhead windows.

    Windows: queued_at -> first job started, last job finished -> end_date. Each
    moment is counted once (intervals are taken in time order). Returns the seconds
    per category and printable lines (per-task seconds in each window).
    """
    run, jobs = result["run"], result["jobs"]
    first, last = _critical_path(jobs)
    windows = ((_ts(run["queued_at"]), first), (last, _ts(run["end_date"])))
    by_category: dict[str, float] = {}
    by_task: dict[str, list[float]] = {}
    covered = windows[0][0]
    for a, b, category, task in _intervals(result):
        a = max(a, covered)
        if b <= a:
            continue
        covered = b
        for i, (w0, w1) in enumerate(windows):
            seconds = max(0.0, min(b, w1) - max(a, w0))
            if seconds:
                by_category[category] = by_category.get(category, 0.0) + seconds
                by_task.setdefault(task, [0.0, 0.0])[i] += seconds
    overhead = result["wall"] - result["critical"]
    lines = [f"  where the {overhead:.2f} s go (before the first job + after the last):"]
    for category, seconds in sorted(by_category.items(), key=lambda kv: -kv[1]):
        lines.append(f"    {seconds:6.2f} s  {category}")
    rest = overhead - sum(by_category.values())
    lines.append(f"    {rest:6.2f} s  (not covered by the chain's intervals)")
    lines.append("  per task, seconds before the first job / after the last:")
    for task, (before, after) in by_task.items():
        lines.append(f"    {task:34} {before:5.2f} / {after:5.2f}")
    return by_category, lines


def timeline(result: dict[str, Any]) -> list[str]:
    """Per-task dates of one DAG run, relative to the run's queued_at (seconds)."""
    run, jobs = result["run"], result["jobs"]
    t0 = _ts(run["queued_at"])
    first, last = _critical_path(jobs)

    def rel(value: float | None) -> str:
        return f"{value - t0:7.2f}" if value is not None else "      -"

    lines = [
        f"  run {result['run_id']}: queued_at = 0 s; start_date {rel(_ts(run['start_date']))}, "
        f"end_date {rel(_ts(run['end_date']))}; first job started {rel(first)}, "
        f"last job finished {rel(last)}",
        f"  {'task':36}  {'state':7} {'sched':>7} {'queued':>7} {'start':>7} {'end':>7}",
    ]
    tis = sorted(result["tis"].values(), key=lambda ti: _ts(ti["start_date"]) or float("inf"))
    for ti in tis:
        dates = (_ts(ti[k]) for k in ("scheduled_when", "queued_when", "start_date", "end_date"))
        lines.append(
            f"  {ti['task_id'][:36]:36}  {ti['state'][:7]:7} " + " ".join(rel(d) for d in dates)
        )
    for ts, event in result["logs"].get(WAIT_TASK, []):
        if any(k in event for k in ("Deferring", "Trigger fired", "Pre Execute", "all 6 jobs")):
            lines.append(f"  wait log {rel(ts)}  {event[:100]}")
    return lines


# ---------------------------------------------------------------- the benchmark


def _env(address: str, bookkeeping: str, source: Path, extra: dict[str, str]) -> dict:
    return {
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__FERNET_KEY": "",
        # the benchmarks quiet their own process's logging; the components keep Airflow's default
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW_CONN_PACHYDERM_DEFAULT": address,
        "AIRFLOW_CONN_CPSIGN_BOOKKEEPING": bookkeeping,
        "AIRFLOW_CONN_CPSIGN_SOURCE_DB": f"sqlite:///{source}",
        **CHANGED,
        **extra,
    }


def run(
    duration: float = 5.0, runs: int = 2, extra: dict[str, str] | None = None, keep: bool = False
) -> list[Row]:
    from cpsign_airflow.cpsign.configuration import load_example, validate_configuration
    from cpsign_airflow.testing.airflow_deployment import AirflowDeployment
    from cpsign_airflow.testing.standins import configure_local_pachd

    extra = dict(extra or {})
    work = Path(tempfile.mkdtemp(prefix="cpsign-overhead-"))
    configuration = load_example("logd-flat")
    source, bookkeeping = work / "source.db", f"sqlite:///{work / 'bookkeeping.db'}"
    # the source database the run reads must be the allowed connection's, field by field
    configuration["database"] = {
        "dialect": "sqlite", "host": "-", "user": "-", "db_name": str(source)
    }  # fmt: skip
    # what the DAG's validate task writes to the config repo
    text = json.dumps(validate_configuration(configuration), indent=2, sort_keys=True) + "\n"
    _source_db(source)
    baselines, dag_runs = [], []
    try:
        with PachdProcess() as pachd:
            configure_local_pachd(_RemotePachd(pachd), WORKFLOW, duration=duration)
            env = _env(pachd.address, bookkeeping, source, extra)
            started = time.monotonic()
            with AirflowDeployment(work, env) as airflow:
                print(f"  deployment up in {time.monotonic() - started:.0f} s", flush=True)
                setup = airflow.trigger("cpsign_setup", {"workflow_name": WORKFLOW})
                state = airflow.wait_for_run("cpsign_setup", setup, timeout=600)["state"]
                if state != "success":
                    raise RuntimeError(
                        f"cpsign_setup {state}: {airflow.task_instances('cpsign_setup', setup)}"
                    )
                for i in range(runs):
                    b = _baseline(pachd.address, text)
                    print(
                        f"  baseline {i + 1}: wall {b['wall']:.2f} s, critical path "
                        f"{b['critical']:.2f} s, overhead {b['wall'] - b['critical']:.2f} s",
                        flush=True,
                    )
                    baselines.append(b)
                    d = _dag_run(airflow, pachd.address, configuration, bookkeeping)
                    print(
                        f"  DAG run {i + 1}: wall {d['wall']:.2f} s, critical path "
                        f"{d['critical']:.2f} s, overhead {d['wall'] - d['critical']:.2f} s "
                        f"(before the first job {d['before']:.2f} s, after the last "
                        f"{d['after']:.2f} s); load average (1 min) "
                        f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores",
                        flush=True,
                    )
                    d["by_category"], lines = breakdown(d)
                    print("\n".join(timeline(d) + lines), flush=True)
                    dag_runs.append(d)
        (work / "results.json").write_text(
            json.dumps({"baselines": baselines, "dag_runs": dag_runs}, indent=1, default=str)
        )
    finally:
        if keep:
            print(f"  kept {work} (logs/, results.json)", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return _rows(duration, extra, baselines, dag_runs)


def _rows(duration: float, extra: dict, baselines: list[dict], dag_runs: list[dict]) -> list[Row]:
    def med(values: list[float]) -> float:
        return statistics.median(values)

    def each(values: list[float]) -> str:
        return f"{med(values):.1f} s" + (
            f" ({', '.join(f'{v:.1f}' for v in values)})" if len(values) > 1 else ""
        )

    overhead = [d["wall"] - d["critical"] for d in dag_runs]
    base = [b["wall"] - b["critical"] for b in baselines]
    changed = {**CHANGED, **extra}
    return [
        Row(
            NAME,
            f"chain: 6 stand-in jobs x {duration:g} s, {len(dag_runs)} run(s); median (each)",
            f"{len(dag_runs[0]['tis'])} tasks in {DAG_ID}",
            "plain pachyderm-sdk: put-file + InspectJobSet(wait)",
        ),
        Row(
            NAME,
            "wall time (DAG: queued_at -> end_date)",
            each([d["wall"] for d in dag_runs]),
            each([b["wall"] for b in baselines]),
        ),
        Row(
            NAME,
            "critical path (first job started -> last finished)",
            each([d["critical"] for d in dag_runs]),
            each([b["critical"] for b in baselines]),
        ),
        Row(
            NAME,
            "overhead = wall - critical path",
            each(overhead),
            each(base),
            f"< {TARGET:g} s",
            med(overhead) < TARGET,
        ),
        Row(
            NAME,
            "  before the first job started",
            each([d["before"] for d in dag_runs]),
            each([b["before"] for b in baselines]),
        ),
        Row(
            NAME,
            "  after the last job finished",
            each([d["after"] for d in dag_runs]),
            each([b["after"] for b in baselines]),
        ),
        *(
            Row(
                NAME,
                f"  overhead in: {category}",
                each([d["by_category"].get(category, 0.0) for d in dag_runs]),
            )
            for category in sorted(
                {c for d in dag_runs for c in d["by_category"]},
                key=lambda c: -sum(d["by_category"].get(c, 0.0) for d in dag_runs),
            )
        ),
        Row(
            NAME,
            "settings changed from Airflow's defaults",
            ", ".join(f"{k.removeprefix('AIRFLOW__')}={v}" for k, v in changed.items()),
        ),
    ]


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.orchestration_overhead")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per stand-in job")
    parser.add_argument("--runs", type=int, default=2, help="baseline + DAG run pairs")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment of the Airflow components (repeatable)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, results)")
    args = parser.parse_args(argv)
    extra = dict(item.split("=", 1) for item in args.set)
    return run(args.duration, args.runs, extra, args.keep)


if __name__ == "__main__":
    from benchmarks import _common

    _common.print_table(main(), title=f"== {NAME} ==")
