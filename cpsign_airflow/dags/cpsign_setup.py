"""cpsign_setup: set up (or upgrade) a CPSign workflow on Pachyderm.

Creates or upgrades the bookkeeping schema, ensures the Pachyderm project and
the workflow's config repo, renders the bundled pipeline spec templates (or
your own folder of them) and creates, updates or leaves unchanged each
pipeline, then records what it did. Safe to run again: unchanged specs are not
resent, so no job starts for them.

Safe while training runs: updating a pipeline makes pachd kill its unfinished
jobs, so before updating anything it lists the unfinished jobs of the pipelines
it would update. With *In-flight jobs* = ``wait`` (default) it waits for them,
up to the wait limit (``[cpsign] setup_wait_minutes``, default 30), and fails
naming each ``pipeline@job`` if some are still running then, with nothing
updated. With ``force`` it updates at once; the training runs of the killed jobs
are marked failed in bookkeeping, saying which setup run and pipeline killed them.

With a Kubernetes namespace given, it first creates or updates the Secrets the
pipelines mount (source-database password from the ``[cpsign]
source_db_conn_id`` connection, model-store credentials from
``model_store_conn_id``, and the CPSign license Variable when a license secret
is named, for CPSign < 2), then checks that every secret a spec mounts exists.
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, Param, task

from cpsign_airflow.bookkeeping.operators import (
    BookkeepingSchemaOperator,
    RecordDeploymentsOperator,
    RecordKilledRunsOperator,
)
from cpsign_airflow.cpsign.pipelines import spec_folder as bundled_spec_folder
from cpsign_airflow.kubernetes.operators import (
    KubernetesCheckPipelineSecretsOperator,
    KubernetesSecretFromConnectionOperator,
)
from cpsign_airflow.operators.pachyderm import (
    PachydermCreatePipelineOperator,
    PachydermCreateRepoOperator,
)
from cpsign_airflow.workflow import settings as cpsign_settings

settings = cpsign_settings.load()
#: The form's spec folder, else the bundled templates: rendered by the tasks themselves.
SPECS = "{{ params.spec_folder or '" + str(bundled_spec_folder()) + "' }}"

with DAG(
    dag_id="cpsign_setup",
    description="Create or update a CPSign workflow's repos and pipelines on Pachyderm",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    tags=["cpsign", "pachyderm", "setup"],
    default_args={
        "owner": "cpsign",
        "retries": settings.task_retries,
        "retry_delay": settings.retry_delay,
    },
    params={
        "workflow_name": Param(
            "LogD",
            type="string",
            pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,39}(?![\s\S])",
            title="Workflow name",
            description="Prefix of every pipeline: <workflow>-<stage>.",
        ),
        "config_repo": Param(
            None,
            type=["null", "string"],
            title="Config repo",
            description="Repo that holds configuration.json; default <workflow>-config.",
        ),
        "cpsign_image": Param(
            None,
            type=["null", "string"],
            title="CPSign image",
            description=(
                "The stage image (images/stages/Dockerfile) the pipelines run; empty: "
                f"[cpsign] stage_image, {settings.stage_image}."
            ),
        ),
        "ingestion_image": Param(None, type=["null", "string"], title="Ingestion image"),
        "publish_image": Param(None, type=["null", "string"], title="Publish image"),
        "train_parallelism": Param(5, type="integer", minimum=1, title="Training workers"),
        "source_db_conn_id": Param(
            None,
            type=["null", "string"],
            enum=[None, *settings.source_conn_ids],
            title="Source database connection",
            description=(
                "Where the ingestion pipeline connects, and whose password its secret holds: "
                "one of the connections an administrator allowed ([cpsign] source_db_conn_id, "
                "source_db_conn_ids); empty: source_db_conn_id."
            ),
        ),
        "spec_folder": Param(
            None,
            type=["null", "string"],
            title="Spec folder override",
            description="A folder of your own spec templates instead of the bundled ones.",
        ),
        "reprocess": Param(False, type="boolean", title="Reprocess all datums on update"),
        "in_flight": Param(
            "wait",
            type="string",
            enum=["wait", "force"],
            values_display={
                "wait": "wait for them to finish (up to the wait limit)",
                "force": "update now and kill them",
            },
            title="In-flight jobs of pipelines to update",
            description=(
                "Updating a pipeline kills its unfinished jobs (running trainings). wait: "
                "wait for them, and fail with nothing updated if some still run at the "
                "limit; force: update now, and mark their training runs failed."
            ),
        ),
        "in_flight_wait_minutes": Param(
            settings.setup_wait.total_seconds() / 60,
            type="number",
            minimum=0,
            title="Wait limit for in-flight jobs (minutes)",
            description="How long 'wait' waits in all; default from [cpsign] setup_wait_minutes.",
        ),
        "k8s_namespace": Param(
            None,
            type=["null", "string"],
            title="Kubernetes namespace of the pipelines",
            description="Create the pipeline secrets there from Airflow connections; empty skips it.",
            section="Kubernetes",
        ),
        "cpsign_license_secret": Param(
            None,
            type=["null", "string"],
            title="CPSign license secret (CPSign < 2)",
            description="Mount this secret's license file; filled from the Variable cpsign_license.",
            section="Kubernetes",
        ),
    },
) as dag:

    @task
    def spec_vars(**context) -> dict:
        """The template variables: bundled defaults, overridden by the form's non-empty fields.

        The ingestion pipeline is pinned to the source connection's coordinates (never a
        configuration's), so its password goes nowhere else.
        """
        from cpsign_airflow.cpsign.pipelines import default_spec_vars, source_spec_vars
        from cpsign_airflow.workflow.preflight import resolve_source_connection

        params = context["params"]
        source = resolve_source_connection(
            params.get("source_db_conn_id"), settings.source_conn_ids, settings.source_sqlite_dir
        )
        overrides = {
            key: params[key]
            for key in (
                "config_repo",
                "cpsign_image",
                "ingestion_image",
                "publish_image",
                "train_parallelism",
            )
            if params.get(key) not in (None, "")
        }
        # The image the administrator built and named ([cpsign] stage_image), where the
        # form leaves it empty; publish and ingestion follow the form's cpsign_image.
        image = overrides.get("cpsign_image", settings.stage_image)
        for key in ("cpsign_image", "ingestion_image", "publish_image"):
            overrides.setdefault(key, image)
        return default_spec_vars(params["workflow_name"], **overrides, **source_spec_vars(source))

    variables = spec_vars()
    schema = BookkeepingSchemaOperator(
        task_id="bookkeeping_schema", bookkeeping_conn_id=settings.bookkeeping_conn_id
    )
    repo = PachydermCreateRepoOperator(
        task_id="config_repo",
        repo="{{ ti.xcom_pull(task_ids='spec_vars')['config_repo'] }}",
        pachyderm_conn_id=settings.pachyderm_conn_id,
        project=settings.project,
    )
    pipelines = PachydermCreatePipelineOperator(
        task_id="pipelines",
        specs=SPECS,
        spec_vars=variables,
        reprocess="{{ params.reprocess }}",
        in_flight="{{ params.in_flight }}",
        in_flight_timeout="{{ params.in_flight_wait_minutes * 60 }}",
        pachyderm_conn_id=settings.pachyderm_conn_id,
        project=settings.project,
    )
    record = RecordDeploymentsOperator(
        task_id="record_deployments",
        workflow="{{ params.workflow_name }}",
        deployments=pipelines.output,
        config_repo="{{ ti.xcom_pull(task_ids='spec_vars')['config_repo'] }}",
        project=settings.project,
        bookkeeping_conn_id=settings.bookkeeping_conn_id,
    )
    [schema, variables] >> repo >> pipelines >> record
    # with in_flight=force: the training runs whose jobs the updates killed are failed
    RecordKilledRunsOperator(
        task_id="record_killed_runs",
        results=pipelines.output,
        in_flight="{{ params.in_flight }}",
        bookkeeping_conn_id=settings.bookkeeping_conn_id,
    )

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def kubernetes_enabled(**context) -> bool:
        """Secrets are only managed when a namespace is given."""
        return bool(context["params"].get("k8s_namespace"))

    namespace = "{{ params.k8s_namespace }}"
    secrets = [
        KubernetesSecretFromConnectionOperator.for_source_database(
            namespace=namespace,
            conn_id="{{ params.source_db_conn_id or '" + settings.source_db_conn_id + "' }}",
            kubernetes_conn_id=settings.kubernetes_conn_id,
        ),
        KubernetesSecretFromConnectionOperator.for_model_store(
            namespace=namespace,
            conn_id=settings.model_store_conn_id,
            kubernetes_conn_id=settings.kubernetes_conn_id,
        ),
    ]

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def license_wanted(**context) -> bool:
        return bool(context["params"].get("cpsign_license_secret"))

    license_secret = KubernetesSecretFromConnectionOperator.for_license(
        namespace=namespace,
        secret_name="{{ params.cpsign_license_secret }}",
        kubernetes_conn_id=settings.kubernetes_conn_id,
    )
    check = KubernetesCheckPipelineSecretsOperator(
        task_id="check_secrets",
        namespace=namespace,
        specs=SPECS,
        spec_vars=variables,
        kubernetes_conn_id=settings.kubernetes_conn_id,
        trigger_rule="none_failed",
    )
    gate = kubernetes_enabled()
    variables >> gate  # the source connection is checked against the allow-list first
    gate >> secrets >> check
    gate >> license_wanted() >> license_secret >> check
    gate >> check  # skipped with the gate, whatever its trigger rule
    check >> pipelines
    pipelines.trigger_rule = "none_failed"
