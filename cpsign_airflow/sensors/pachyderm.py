"""Sensor that waits for a Pachyderm commit set: the whole downstream pipeline chain."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf

from cpsign_airflow.hooks.pachyderm_outcome import (
    UPSTREAM_FAILED_PREFIX,
    UnhealthyPipelines,
    job_summary,
    name_upstream_pipelines,
    stop_unfinished_jobs,
    summarize,
)
from cpsign_airflow.links.pachyderm import CONSOLE_URL_XCOM_KEY, PachydermConsoleLink

if TYPE_CHECKING:
    from airflow.sdk import Context

    from cpsign_airflow.hooks.pachyderm import PachydermHook


#: Task state store key (reschedule mode) of the first-seen times of unhealthy pipelines.
UNHEALTHY_SINCE_KEY = "cpsign_unhealthy_pipelines"


def _now() -> float:
    """Wall clock (seconds): reschedule pokes run in different processes."""
    return time.time()


def _seconds(value: float) -> str:
    return f"{value:.0f}s" if value >= 10 else f"{value:.1f}s"


class PachydermCommitSetSensor(BaseSensorOperator):
    """Wait until every commit of a commit set has finished, then check its jobs.

    A commit to an input repo (the config commit of a training run) opens a
    commit set that spans every downstream output repo; its id is the commit id
    and the id of every job it started. Succeeds when all jobs succeeded and
    returns their summary. Fails naming each failed pipeline, its job id, its
    reason and the tail of its logs.

    With ``deferrable=True`` (default: ``[operators] default_deferrable``) the
    wait runs in the triggerer on pachd's streaming InspectCommitSet. Otherwise
    each poke checks the set once and logs per-pipeline progress.

    Fail-fast: a pipeline of the set whose output commit is unfinished and that
    stays PIPELINE_CRASHING (its workers cannot start: image not pullable, pod
    unschedulable...) or PIPELINE_FAILURE for ``pipeline_grace_period`` seconds
    fails the wait with :class:`~cpsign_airflow.exceptions.PachydermPipelineUnhealthy`
    (not retried), naming the pipeline, its state, pachd's reason and the tail of
    its logs; the set's jobs are left alone. The grace is counted from the first
    check that saw the pipeline unhealthy and restarts when it recovers. Checks
    are one InspectPipeline (no details) per unfinished pipeline: in the triggerer
    every ``pipeline_check_interval`` seconds, one check for all waits on the same
    pipelines (see :class:`~cpsign_airflow.triggers.pachyderm.PachydermCommitSetTrigger`); in
    ``poke`` mode at most that often, the first one an interval after the first
    poke, the first-seen times kept in memory; in ``reschedule`` mode at every
    poke, the first-seen times kept in Airflow's task state store (Airflow >= 3.3;
    one read per poke, a write when a pipeline turns unhealthy or recovers), as
    Airflow clears a task's XComs at the start of each poke. Without a task state
    store, reschedule mode only logs an unhealthy pipeline.

    The task uses one hook (:attr:`hook`), closed when ``execute``,
    ``execute_complete`` or ``on_kill`` ends.

    .. code-block:: python

        PachydermCommitSetSensor(
            task_id="wait_training",
            commit_set_id="{{ ti.xcom_pull('put_config') }}",
            timeout=6 * 3600,
        )
    """

    template_fields: Sequence[str] = ("commit_set_id", "project")
    operator_extra_links = (PachydermConsoleLink(),)

    def __init__(
        self,
        *,
        commit_set_id: str,
        pachyderm_conn_id: str = "pachyderm_default",
        project: str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        stop_jobs_on_kill: bool = False,
        log_tail: int = 20,
        reconnect_backoff: float = 1.0,
        pipeline_grace_period: float | None = 600.0,
        pipeline_check_interval: float = 60.0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", 30)
        super().__init__(**kwargs)
        self.commit_set_id = commit_set_id
        self.pachyderm_conn_id = pachyderm_conn_id
        self.project = project
        self.deferrable = deferrable
        self.stop_jobs_on_kill = stop_jobs_on_kill
        self.log_tail = log_tail
        self.reconnect_backoff = reconnect_backoff
        if pipeline_check_interval <= 0:
            raise ValueError(f"pipeline_check_interval must be > 0, got {pipeline_check_interval}")
        if pipeline_grace_period is not None and pipeline_grace_period < 0:
            raise ValueError(f"pipeline_grace_period must be >= 0, got {pipeline_grace_period}")
        self.pipeline_grace_period = pipeline_grace_period
        self.pipeline_check_interval = pipeline_check_interval
        self._last_progress: dict[str, tuple[str, int]] = {}
        self._next_pipeline_check: float | None = None  # poke mode
        self._unhealthy_since: dict[str, float] = {}  # poke mode

    @cached_property
    def hook(self) -> PachydermHook:
        """The task's one hook (one pachd connection), closed when the task is done."""
        from cpsign_airflow.hooks.pachyderm import PachydermHook

        return PachydermHook(pachyderm_conn_id=self.pachyderm_conn_id, project=self.project)

    # -- poke mode --------------------------------------------------------------------

    def poke(self, context: Context) -> PokeReturnValue:
        """Not done while a commit of the set is unfinished; then done, with the
        jobs' summary as the task's return value (or the failure raised)."""
        commits = self.hook.inspect_commit_set(self.commit_set_id)
        jobs = self.hook.list_jobs(self.commit_set_id)
        self._log_progress(jobs)
        if any(c["finished"] is None for c in commits):
            if self.pipeline_grace_period:
                self._check_pipelines(context, jobs)
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self._complete(jobs, commits))

    def execute(self, context: Context) -> Any:
        try:
            self._push_console_url(context)
            if not self.deferrable:
                return super().execute(context)
            commits = self.hook.inspect_commit_set(self.commit_set_id)
            if commits and all(c["finished"] for c in commits):
                return self._complete(self.hook.list_jobs(self.commit_set_id), commits)
            self._defer()
        finally:
            self.hook.close()

    def _defer(self) -> None:
        from cpsign_airflow.triggers.pachyderm import PachydermCommitSetTrigger

        self.log.info("Deferring until commit set %s finishes", self.commit_set_id)
        self.defer(
            trigger=PachydermCommitSetTrigger(
                commit_set_id=self.commit_set_id,
                pachyderm_conn_id=self.pachyderm_conn_id,
                project=self.project,
                reconnect_backoff=self.reconnect_backoff,
                stop_jobs_on_kill=self.stop_jobs_on_kill,
                pipeline_grace_period=self.pipeline_grace_period,
                pipeline_check_interval=self.pipeline_check_interval,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout) if self.timeout else None,
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Resume after the trigger: the set has finished; list its jobs here, on the worker.

        The trigger reports only the set's commits (a failed output commit carries
        its error), so that 1,000 waits finishing together cost the shared
        triggerer nothing more than their streams; the jobs come from one
        InspectJobSet here, and the outcome is decided exactly as in poke mode.
        """
        from cpsign_airflow.exceptions import PachydermError

        if event.get("status") == "error":
            raise PachydermError(event.get("message", f"Waiting for {self.commit_set_id} failed"))
        try:
            if event.get("status") == "pipeline_unhealthy":
                raise self._unhealthy(
                    event.get("pipelines") or [event],
                    event.get("grace_period", self.pipeline_grace_period),
                )
            commit_set_id = event.get("commit_set_id", self.commit_set_id)
            return self._complete(self.hook.list_jobs(commit_set_id), event.get("commits", []))
        finally:
            self.hook.close()

    # -- shared -----------------------------------------------------------------------

    def _complete(
        self, jobs: list[dict[str, Any]], commits: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        from cpsign_airflow.exceptions import PachydermJobFailed

        self._log_progress(jobs, final=True)
        # OpenLineage: the set's input commits were read, its output commits written
        self._lineage = (
            sorted({(c["project"], c["repo"]) for c in commits if c.get("origin") == "USER"}),
            sorted({(j["project"], j["pipeline"]) for j in jobs}),
        )
        outcome = summarize(jobs, commits)
        if outcome["status"] == "success":
            self.log.info("Commit set %s: all %d jobs succeeded", self.commit_set_id, len(jobs))
            return job_summary(jobs)
        lines = []
        specs: dict[tuple[str, str], Any] = {}
        for job in outcome["failed_jobs"]:
            job["reason"] = self._name_upstream(job, specs)
            tail = self.hook.get_job_logs(
                job["pipeline"], job["job_id"], self.log_tail, job["project"]
            )
            job["log_tail"] = tail  # the alert shows it: the stage's own error line
            text = f"pipeline {job['pipeline']!r} job {job['job_id']} ended {job['state']}"
            if job.get("reason"):
                text += f": {job['reason']}"
            if tail:
                text += "\n      log tail:\n        " + "\n        ".join(tail)
            lines.append(text)
        if not lines:  # a commit error without a failed job (e.g. an input error)
            lines = [f"repo {c['repo']!r}: {c['error']}" for c in outcome["errored_commits"]]
        raise PachydermJobFailed(
            f"Commit set {self.commit_set_id} failed:\n  - " + "\n  - ".join(lines),
            failed_jobs=outcome["failed_jobs"],
            jobs=job_summary(jobs),
        )

    def _name_upstream(self, job: dict[str, Any], specs: dict[tuple[str, str], Any]) -> Any:
        """The job's reason, its failed upstream inputs named by their pipelines (pachd
        names them by input name); unchanged when the spec cannot be read."""
        from cpsign_airflow.exceptions import PachydermError

        reason = job.get("reason")
        if not reason or not reason.startswith(UPSTREAM_FAILED_PREFIX):
            return reason
        key = (job.get("project") or "", job["pipeline"])
        if key not in specs:
            try:
                spec = self.hook.inspect_pipeline(job["pipeline"], job.get("project") or None)
                specs[key] = (spec.get("user_spec") or {}).get("input")
            except PachydermError as err:
                self.log.info("Inputs of %s unknown (%s); its reason as pachd gave it", key, err)
                specs[key] = None
        return name_upstream_pipelines(reason, specs[key])

    def _check_pipelines(self, context: Context, jobs: list[dict[str, Any]]) -> None:
        """Poke/reschedule mode's pipeline check; raises once one outlasts the grace."""
        now = _now()
        if not self.reschedule:
            if self._next_pipeline_check is None:  # the first poke starts the clock
                self._next_pipeline_check = now + self.pipeline_check_interval
            if now < self._next_pipeline_check:
                return
            self._next_pipeline_check = now + self.pipeline_check_interval
        pending = sorted({(j["project"], j["pipeline"]) for j in jobs if j["finished"] is None})
        if not pending:
            return
        states = self.hook.pipeline_states(pending)
        grace = float(self.pipeline_grace_period or 0)
        store = context.get("task_state_store") if self.reschedule else None
        scope = {"try_number": getattr(context.get("ti"), "try_number", None)}
        scope["commit_set_id"] = self.commit_set_id
        if store is not None:
            stored = store.get(UNHEALTHY_SINCE_KEY) or {}
            same = isinstance(stored, dict) and all(stored.get(k) == v for k, v in scope.items())
            before = dict(stored.get("since") or {}) if same else {}
        else:
            before = self._unhealthy_since
        tracker = UnhealthyPipelines(grace, before)
        over = tracker.observe(states, now)
        if store is not None and tracker.since != before:
            if tracker.since:
                store.set(UNHEALTHY_SINCE_KEY, {**scope, "since": tracker.since})
            else:
                store.delete(UNHEALTHY_SINCE_KEY)
        self._unhealthy_since = tracker.since
        for state in states:
            key = f"{state['project']}/{state['pipeline']}"
            if key in tracker.since and not over:
                self.log.warning(
                    "Pipeline %s is %s (%s) for %.0fs; the wait fails at %.0fs",
                    key,
                    state["state"],
                    state["reason"] or "no reason given",
                    now - tracker.since[key],
                    grace,
                )
        if self.reschedule and store is None and tracker.since:
            self.log.warning(
                "Reschedule mode without Airflow's task state store (Airflow < 3.3): the grace "
                "period cannot be counted across pokes, so an unhealthy pipeline does not fail "
                "the wait; use mode='poke' or deferrable=True for that"
            )
            return
        if over:
            if store is not None:
                store.delete(UNHEALTHY_SINCE_KEY)
            raise self._unhealthy(over, grace)

    def _unhealthy(self, pipelines: list[dict[str, Any]], grace: float | None) -> Exception:
        """The failure for pipelines that outlasted the grace: each named with its
        state, pachd's reason and its log tail."""
        from cpsign_airflow.exceptions import PachydermError, PachydermPipelineUnhealthy

        try:  # the set's jobs, for the record: the failure callback records them
            jobs = job_summary(self.hook.list_jobs(self.commit_set_id))
        except PachydermError as err:
            self.log.warning("Jobs of commit set %s not listed: %s", self.commit_set_id, err)
            jobs = []
        lines = []
        named = []
        for item in pipelines:
            project = item.get("project") or None
            tail = self.hook.get_pipeline_logs(item["pipeline"], self.log_tail, project)
            job_id = self.commit_set_id  # a job's id is its commit set's id
            for job in jobs:
                if job.get("pipeline") == item["pipeline"] and job.get("finished") is None:
                    job_id = job.get("job_id") or job_id
                    job["log_tail"] = tail
                    job["reason"] = job.get("reason") or (
                        f"pipeline {item['state']}: {item.get('reason') or 'no reason given'}"
                    )
            named.append({**item, "log_tail": tail, "job_id": job_id})
            text = f"pipeline {item['pipeline']!r} has been {item['state']}"
            if item.get("unhealthy_seconds") is not None:
                text += f" for {_seconds(float(item['unhealthy_seconds']))}"
            if grace:
                text += f" (grace {float(grace):g}s)"
            text += f": {item['reason']}" if item.get("reason") else " (pachd gave no reason)"
            if tail:
                text += "\n      log tail:\n        " + "\n        ".join(tail)
            else:
                text += "\n      no log lines (its workers may never have started)"
            lines.append(text)
        return PachydermPipelineUnhealthy(
            f"Commit set {self.commit_set_id} cannot finish (its unfinished jobs were left "
            "alone):\n  - " + "\n  - ".join(lines),
            pipelines=named,
            jobs=jobs,
        )

    def _log_progress(self, jobs: list[dict[str, Any]], final: bool = False) -> None:
        for job in jobs:
            done = job["data_processed"] + job["data_skipped"] + job["data_failed"]
            key = (job["state"], done)
            if self._last_progress.get(job["pipeline"]) == key and not final:
                continue
            self._last_progress[job["pipeline"]] = key
            self.log.info(
                "%-30s %-14s datums %d/%d (failed %d)",
                job["pipeline"],
                job["state"],
                done,
                job["data_total"],
                job["data_failed"],
            )

    def _push_console_url(self, context: Context) -> None:
        try:
            url = self.hook.console_commit_set_url(self.commit_set_id)
        except Exception:  # resolved again, with a clear error, by the wait itself
            return
        context["ti"].xcom_push(key=CONSOLE_URL_XCOM_KEY, value=url or "")

    #: (inputs, outputs) as (project, repo) pairs, set when the set has finished.
    _lineage: tuple[list[tuple[str, str]], list[tuple[str, str]]] | None = None

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The commit set's input repos and its pipelines' output repos, as datasets."""
        from cpsign_airflow.lineage.pachyderm import operator_lineage

        inputs, outputs = self._lineage or ([], [])
        return operator_lineage(self.hook, inputs, outputs)

    def on_kill(self) -> None:
        if not self.stop_jobs_on_kill:
            return
        try:
            stop_unfinished_jobs(self.hook, self.commit_set_id, self.log)
        finally:
            self.hook.close()
