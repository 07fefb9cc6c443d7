"""Operators that replace the manual ``pachctl`` steps of the CPSign workflow.

Each is a thin layer over :class:`~cpsign_airflow.hooks.pachyderm.PachydermHook`
and returns plain ids through XCom.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from cpsign_airflow.links.pachyderm import CONSOLE_URL_XCOM_KEY, PachydermConsoleLink
from cpsign_airflow.specs.templating import SpecTemplatesMixin

if TYPE_CHECKING:
    from airflow.sdk import Context

    from cpsign_airflow.hooks.pachyderm import PachydermHook


class _PachydermOperator(BaseOperator):
    """Shared connection handling."""

    operator_extra_links = (PachydermConsoleLink(),)

    def __init__(
        self,
        *,
        pachyderm_conn_id: str = "pachyderm_default",
        project: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pachyderm_conn_id = pachyderm_conn_id
        self.project = project

    def get_hook(self) -> PachydermHook:
        from cpsign_airflow.hooks.pachyderm import PachydermHook

        return PachydermHook(pachyderm_conn_id=self.pachyderm_conn_id, project=self.project)

    #: (inputs, outputs) as (project, repo) pairs, set by ``execute`` for OpenLineage.
    _lineage: tuple[list[tuple[str, str]], list[tuple[str, str]]] | None = None

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The repos this task read and wrote, as ``pachyderm://host:port`` datasets."""
        from cpsign_airflow.lineage.pachyderm import operator_lineage

        inputs, outputs = self._lineage or ([], [])
        return operator_lineage(self.get_hook(), inputs, outputs)

    def _push_console_url(self, context: Context, url: str | None) -> None:
        # Pushed even when empty, so rendering the link finds a value, not an error.
        context["ti"].xcom_push(key=CONSOLE_URL_XCOM_KEY, value=url or "")


class PachydermCreateRepoOperator(_PachydermOperator):
    """Ensure a repo exists (``pachctl create repo``), creating it only if missing.

    Returns ``{"project", "repo", "created"}``.

    .. code-block:: python

        PachydermCreateRepoOperator(task_id="config_repo", repo="{{ params.workflow }}-config")
    """

    template_fields: Sequence[str] = ("repo", "project", "description")

    def __init__(self, *, repo: str, description: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.repo = repo
        self.description = description

    def execute(self, context: Context) -> dict[str, Any]:
        hook = self.get_hook()
        hook.ensure_project(self.project)
        result = hook.ensure_repo(self.repo, project=self.project, description=self.description)
        self._push_console_url(context, None)
        self.log.info(
            "Repo %s/%s %s",
            result["project"],
            self.repo,
            "created" if result["created"] else "exists",
        )
        return result


#: What PachydermCreatePipelineOperator does about unfinished jobs of pipelines it updates.
IN_FLIGHT_MODES = ("wait", "force")
#: Default limit of the in-flight wait, in seconds.
DEFAULT_IN_FLIGHT_TIMEOUT = 30 * 60.0


def _job_names(jobs: Sequence[dict[str, Any]]) -> str:
    return ", ".join(f"{j['pipeline']}@{j['job_id']} ({j['state']})" for j in jobs)


class PachydermCreatePipelineOperator(SpecTemplatesMixin, _PachydermOperator):
    """Create or update pipelines from specs (``pachctl create/update pipeline``).

    ``specs`` (templated) is one spec or a list of them: dicts, JSON/YAML file
    paths (relative ones also found in the DAG's ``template_searchpath``), or
    folders of such files. They are rendered with the task's own Jinja
    environment (the DAG's ``user_defined_macros`` and filters work) and the
    task context plus ``spec_vars`` (so ``"{{ workflow_name }}-ingestion"``
    works), strictly: an undefined variable is an error. Then every spec
    is validated before anything is sent: required fields, unknown keys at any
    level, and input repos that neither exist nor come from this batch. Pachyderm
    1.x specs (``input.atom``) are converted to 2.x and the result is logged.

    Specs are applied in dependency order. Returns one result per pipeline:
    ``{"pipeline", "project", "action", "spec_hash", "version", "spec_commit",
    "source"}`` where action is ``created``, ``updated`` or ``unchanged`` (an
    unchanged spec is not resent, since pachd would start a job for it) and
    spec_commit is the commit set the create/update started (None if unchanged).

    Updating a pipeline makes pachd kill its unfinished jobs, so before sending
    anything the operator works out which pipelines it would update (changed
    spec, or ``reprocess``) and lists their unfinished jobs. ``in_flight``
    decides what happens to them:

    * ``"wait"`` (default): wait for them to finish (and for any that start
      meanwhile), ``in_flight_timeout`` seconds in all (None: no limit), logging
      the jobs waited on. Jobs still unfinished at the limit fail the task with
      :class:`~cpsign_airflow.exceptions.PachydermJobsInFlight`, naming each
      ``pipeline@job``, before any pipeline is created or updated. Not retried:
      a retry would wait the whole limit again.
    * ``"force"``: update at once, killing them.

    Each updated pipeline's result also carries ``killed_jobs``: ids of the jobs
    (= commit set ids) the update killed, normally none with ``"wait"``. Jobs
    started by this task's own creates and updates (downstream of a pipeline it
    changed) are not counted.

    .. code-block:: python

        PachydermCreatePipelineOperator(
            task_id="pipelines",
            specs="/opt/airflow/specs/cpsign/",
            spec_vars={"workflow_name": "LogD", "image_tag": "2.0.0"},
        )
    """

    template_fields: Sequence[str] = (
        "specs",
        "spec_vars",
        "reprocess",
        "project",
        "in_flight",
        "in_flight_timeout",
    )
    template_fields_renderers = {"spec_vars": "json"}

    def __init__(
        self,
        *,
        specs: dict[str, Any] | str | Path | Sequence[dict[str, Any] | str | Path] | None = None,
        spec_vars: dict[str, Any] | None = None,
        reprocess: bool = False,
        in_flight: str = "wait",
        in_flight_timeout: float | str | None = DEFAULT_IN_FLIGHT_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if specs is None:
            raise ValueError(f"{self.task_id}: give 'specs'")
        self.specs = specs
        self.spec_vars = spec_vars or {}
        self.reprocess = reprocess
        self.in_flight = in_flight
        self.in_flight_timeout = in_flight_timeout
        if isinstance(in_flight, str) and "{{" not in in_flight:
            self._in_flight_mode()  # a typo fails when the DAG is parsed

    def prepare_specs(self, context: Context) -> list[tuple[str, dict[str, Any]]]:
        """Load, render, convert and validate; no call to pachd."""
        from cpsign_airflow.specs.convert_v1 import convert_v1_spec, is_v1_spec
        from cpsign_airflow.specs.validate import validate_spec

        prepared = []
        for source, spec in self.load_task_specs(context):
            if is_v1_spec(spec):
                spec, notes = convert_v1_spec(spec)
                self.log.info(
                    "Converted Pachyderm 1.x spec %s to 2.x (%s):\n%s",
                    source,
                    "; ".join(notes),
                    json.dumps(spec, indent=2, sort_keys=True),
                )
            if self.project:
                spec.setdefault("pipeline", {}).setdefault("project", {"name": self.project})
            validate_spec(spec, source)
            prepared.append((source, spec))
        return prepared

    def _in_flight_mode(self) -> str:
        mode = str(self.in_flight or "wait").strip().lower()
        if mode not in IN_FLIGHT_MODES:
            raise ValueError(
                f"{self.task_id}: in_flight must be one of {', '.join(IN_FLIGHT_MODES)}, "
                f"got {self.in_flight!r}"
            )
        return mode

    def _in_flight_limit(self) -> float | None:
        """Seconds; a template may render it as text. None or "" is no limit."""
        value = self.in_flight_timeout
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
            return None
        try:
            limit = float(value)
        except (TypeError, ValueError):
            limit = math.nan
        if not math.isfinite(limit) or limit < 0:
            raise ValueError(
                f"{self.task_id}: in_flight_timeout must be a number of seconds >= 0, got {value!r}"
            )
        return limit

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from cpsign_airflow.specs.validate import input_repos, order_by_dependencies

        mode, limit = self._in_flight_mode(), self._in_flight_limit()
        prepared = self.prepare_specs(context)
        hook = self.get_hook()
        needed = {repo for _, spec in prepared for repo in input_repos(spec)}
        existing = [repo for repo in sorted(needed) if hook.repo_exists(repo, self.project)]
        ordered = order_by_dependencies(prepared, existing)
        results = []
        reprocess = self.reprocess
        if isinstance(reprocess, str):  # rendered from a template without native rendering
            reprocess = reprocess.strip().lower() in ("true", "1", "yes")
        plans = [hook.plan_pipeline(spec, reprocess=bool(reprocess)) for _, spec in ordered]
        updating = [(p["project"], p["pipeline"]) for p in plans if p["action"] == "updated"]
        if updating:
            self._settle_in_flight(hook, updating, mode, limit)
        own_sets: set[str] = set()  # commit sets this task's creates/updates started
        for (source, spec), plan in zip(ordered, plans, strict=True):
            unfinished = []
            if plan["action"] == "updated":
                unfinished = [
                    job
                    for job in hook.list_unfinished_jobs([(plan["project"], plan["pipeline"])])
                    if job["job_id"] not in own_sets
                ]
            result = hook.create_or_update_pipeline(spec, reprocess=bool(reprocess))
            if result.get("spec_commit"):
                own_sets.add(result["spec_commit"])
            if result["action"] == "updated":
                result["killed_jobs"] = self._killed(hook, unfinished)
            result["source"] = source
            self.log.info("%s: pipeline %s %s", source, result["pipeline"], result["action"])
            results.append(result)
        last = results[-1]["pipeline"] if results else None
        self._push_console_url(context, hook.console_pipeline_url(last) if last else None)
        outputs = [(r["project"], r["pipeline"]) for r in results]
        inputs = sorted(
            {(r["project"], repo) for r, (_, spec) in zip(results, ordered, strict=True)
             for repo in input_repos(spec)} - set(outputs)
        )  # fmt: skip
        self._lineage = (inputs, outputs)
        return results

    def _settle_in_flight(
        self,
        hook: PachydermHook,
        pipelines: list[tuple[str, str]],
        mode: str,
        limit: float | None,
    ) -> None:
        """Before any update: wait for the unfinished jobs an update would kill, or not."""
        from cpsign_airflow.exceptions import PachydermJobsInFlight

        names = ", ".join(f"{project}/{name}" for project, name in pipelines)
        unfinished = hook.list_unfinished_jobs(pipelines)
        if not unfinished:
            self.log.info("No unfinished jobs in the pipelines to update (%s)", names)
            return
        if mode == "force":
            self.log.warning(
                "in_flight=force: updating now kills %d unfinished job(s): %s",
                len(unfinished),
                _job_names(unfinished),
            )
            return
        deadline = None if limit is None else time.monotonic() + limit
        while unfinished:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise PachydermJobsInFlight(
                    f"Not updating pipelines {names}: after waiting {limit:g}s these jobs, "
                    f"which an update would kill, are still unfinished: "
                    f"{_job_names(unfinished)}. Nothing was created or updated. Run again "
                    "once they have finished, with a longer wait, or with in_flight='force' "
                    "to update now and kill them.",
                    jobs=unfinished,
                )
            self.log.info(
                "Waiting %s for %d unfinished job(s) before updating %s: %s",
                "without limit" if remaining is None else f"up to {remaining:.0f}s",
                len(unfinished),
                names,
                _job_names(unfinished),
            )
            hook.wait_for_jobs(unfinished, timeout=remaining)
            # again: jobs that started while waiting would be killed too
            unfinished = hook.list_unfinished_jobs(pipelines)
        self.log.info("The pipelines to update have no unfinished jobs now; updating")

    def _killed(self, hook: PachydermHook, unfinished: list[dict[str, Any]]) -> list[str]:
        """Ids of the jobs, unfinished just before an update, that the update killed."""
        from cpsign_airflow.exceptions import PachydermError

        killed = []
        for job in unfinished:
            try:
                state = hook.inspect_job(job["pipeline"], job["job_id"], job["project"])["state"]
            except PachydermError as err:  # unfinished right before the update: count it
                self.log.warning(
                    "Could not inspect job %s@%s: %s", job["pipeline"], job["job_id"], err
                )
                state = "JOB_KILLED"
            if state == "JOB_KILLED":
                killed.append(job["job_id"])
        if killed:
            self.log.warning(
                "Updating pipeline %s killed job(s) %s",
                unfinished[0]["pipeline"],
                ", ".join(killed),
            )
        return killed


class PachydermPutFileOperator(_PachydermOperator):
    """Write a file to ``repo@branch:path``, overwriting it (``pachctl put file -o``).

    In the CPSign workflow this is the training trigger: writing
    ``configuration.json`` to the config repo starts the pipeline chain.

    ``content`` may be text, bytes, or a dict/list (written as JSON);
    ``local_path`` names a file to upload instead. The commit description
    records the Airflow dag_id, run_id and try number. A retry of the same task
    in the same DAG run that finds its commit with the same content returns that
    commit instead of committing again, so a retry never starts a second run.

    Returns the commit id (which is also the commit set id the sensor waits on).

    .. code-block:: python

        PachydermPutFileOperator(
            task_id="put_config",
            repo="config",
            path="/configuration.json",
            content="{{ ti.xcom_pull('validate') | tojson }}",
        )
    """

    template_fields: Sequence[str] = ("repo", "branch", "path", "content", "local_path", "project")
    template_fields_renderers = {"content": "json"}

    def __init__(
        self,
        *,
        repo: str,
        path: str,
        content: str | bytes | dict[str, Any] | list[Any] | None = None,
        local_path: str | None = None,
        branch: str = "master",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (content is None) == (local_path is None):
            raise ValueError(f"{self.task_id}: give exactly one of 'content' or 'local_path'")
        self.repo = repo
        self.path = path
        self.content = content
        self.local_path = local_path
        self.branch = branch

    def _payload(self) -> bytes | None:
        if self.content is None:
            return None
        if isinstance(self.content, bytes):
            return self.content
        if isinstance(self.content, (dict, list)):
            return (json.dumps(self.content, indent=2, sort_keys=True) + "\n").encode("utf-8")
        return str(self.content).encode("utf-8")

    def execute(self, context: Context) -> str:
        ti = context["ti"]
        description = (
            f"airflow dag_id={ti.dag_id} run_id={ti.run_id} task_id={ti.task_id} "
            f"try={ti.try_number}"
        )
        key = f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{getattr(ti, 'map_index', -1)}"
        hook = self.get_hook()
        commit_id = hook.put_file(
            self.repo,
            self.path,
            data=self._payload(),
            local_path=self.local_path,
            branch=self.branch,
            project=self.project,
            description=description,
            dedupe_key=key,
        )
        self._push_console_url(context, hook.console_commit_url(self.repo, commit_id, self.project))
        self._lineage = ([], [(self.project or hook.project, self.repo)])
        return commit_id
