"""What a commit-set wait decides, shared by the sensor and its trigger.

The outcome of a finished set (:func:`summarize`, :func:`job_summary`), the grace
bookkeeping of the fail-fast pipeline check (:class:`UnhealthyPipelines`), and
stopping the set's unfinished jobs when a user kills the task
(:func:`stop_unfinished_jobs`). Plain data in and out; nothing here imports grpc
or pachyderm-sdk.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cpsign_airflow.hooks.pachyderm import PachydermHook

SUCCESS_STATES = frozenset({"JOB_SUCCESS"})
#: Pipeline states in which a pipeline's jobs cannot make progress, failing the wait
#: once they outlast the grace period: its workers cannot start (CRASHING: image pull
#: failure, unschedulable pod...) or pachd gave up on it (FAILURE, which only an
#: update leaves). pachd 2.12 PipelineState names.
UNHEALTHY_PIPELINE_STATES = frozenset({"PIPELINE_CRASHING", "PIPELINE_FAILURE"})


def summarize(jobs: list[dict[str, Any]], commits: list[dict[str, Any]]) -> dict[str, Any]:
    """Outcome of a finished commit set: overall status plus per-job and per-commit facts."""
    failed = [j for j in jobs if j["state"] not in SUCCESS_STATES]
    errored = [c for c in commits if c.get("error")]
    return {
        "status": "failed" if failed or errored else "success",
        "jobs": jobs,
        "commits": commits,
        "failed_jobs": failed,
        "errored_commits": errored,
    }


#: How pachd begins the reason of a job that could not run because an input's job
#: failed; it names the failed *inputs* by their input ``name`` (the repo unless renamed).
UPSTREAM_FAILED_PREFIX = "unrunnable because the following upstream pipelines failed: "


def input_repos(spec_input: Any) -> dict[str, str]:
    """``{input name: repo}`` of a pipeline spec's ``input`` (pfs inputs at any depth of
    cross, union, join and group); an input without a name is named by its repo."""
    found: dict[str, str] = {}
    if not isinstance(spec_input, dict):
        return found
    pfs = spec_input.get("pfs")
    if isinstance(pfs, dict) and pfs.get("repo"):
        found[pfs.get("name") or pfs["repo"]] = pfs["repo"]
    for key in ("cross", "union", "join", "group"):
        for sub in spec_input.get(key) or []:
            found.update(input_repos(sub))
    return found


def name_upstream_pipelines(reason: str | None, spec_input: Any) -> str | None:
    """pachd's "upstream pipelines failed: <input names>" with the upstream *pipelines*
    named instead (an input's repo is the output repo of the pipeline that writes it);
    any other reason unchanged."""
    if not reason or not reason.startswith(UPSTREAM_FAILED_PREFIX):
        return reason
    repos = input_repos(spec_input)
    names = [n.strip() for n in reason[len(UPSTREAM_FAILED_PREFIX) :].split(",") if n.strip()]
    return UPSTREAM_FAILED_PREFIX + ", ".join(repos.get(name, name) for name in names)


def job_summary(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-pipeline outcome for XCom and bookkeeping: state, datums, duration."""
    summary = []
    for job in jobs:
        duration = None
        if job.get("started") and job.get("finished"):
            started = datetime.fromisoformat(job["started"])
            duration = (datetime.fromisoformat(job["finished"]) - started).total_seconds()
        summary.append({**job, "duration_seconds": duration})
    return summary


class UnhealthyPipelines:
    """Grace bookkeeping of the pipeline check, in the trigger and in the sensor.

    ``since`` maps ``"project/pipeline"`` to the clock time of the first check
    that saw it unhealthy. :meth:`observe` takes one check's states (pipelines
    not in it, e.g. finished ones, are forgotten) and returns those unhealthy
    for at least ``grace`` seconds, each with ``unhealthy_seconds``.
    """

    def __init__(self, grace: float, since: dict[str, float] | None = None) -> None:
        self.grace = grace
        self.since: dict[str, float] = dict(since or {})
        #: keys first seen unhealthy by the last :meth:`observe`
        self.newly_unhealthy: list[str] = []

    def observe(self, states: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
        since: dict[str, float] = {}
        over = []
        for state in sorted(states, key=lambda s: (s["project"], s["pipeline"])):
            if state["state"] not in UNHEALTHY_PIPELINE_STATES:
                continue
            key = f"{state['project']}/{state['pipeline']}"
            first = since[key] = self.since.get(key, now)
            if now - first >= self.grace:
                over.append({**state, "unhealthy_seconds": round(now - first, 3)})
        self.newly_unhealthy = [k for k in since if k not in self.since]
        self.since = since
        return over


def stop_unfinished_jobs(hook: PachydermHook, commit_set_id: str, log: Any) -> None:
    """Stop every unfinished job of the set (``stop_jobs_on_kill``), logging each to
    ``log`` (the task's or the trigger's logger).

    Stopping an upstream job ends its downstream jobs (UNRUNNABLE), and any job may
    finish by itself meanwhile: pachd may then refuse the stop. That is logged and
    the others are stopped all the same. The trigger runs this in a thread.
    """
    from cpsign_airflow.exceptions import PachydermError

    for job in hook.list_jobs(commit_set_id):
        if job["finished"] is not None:
            continue
        log.info("Stopping job %s@%s", job["pipeline"], job["job_id"])
        try:
            hook.stop_job(job["pipeline"], job["job_id"], job["project"])
        except PachydermError as err:
            log.warning("%s", err)


__all__ = [
    "SUCCESS_STATES",
    "UPSTREAM_FAILED_PREFIX",
    "UNHEALTHY_PIPELINE_STATES",
    "UnhealthyPipelines",
    "input_repos",
    "job_summary",
    "name_upstream_pipelines",
    "stop_unfinished_jobs",
    "summarize",
]
