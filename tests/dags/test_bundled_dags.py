"""The bundled DAGs end to end: real Airflow runs, the local pachd with the CPSign
stand-ins, and bookkeeping in MariaDB (and once in SQLite)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from dag_env import logd_source_db, source_example, use_bundled_dags
from dag_runner import load_dag, run_dag

from cpsign_airflow.bookkeeping.hook import BookkeepingHook
from cpsign_airflow.bookkeeping.ledger import TrainingLedger
from cpsign_airflow.cpsign.pipelines import STAGES
from cpsign_airflow.hooks.pachyderm import PachydermHook
from cpsign_airflow.testing.standins import configure_local_pachd

REPO = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((REPO / "dags").glob("*.py"))
WORKFLOW = "LogD"
mysql_only = pytest.mark.parametrize("bookkeeping_backend", ["mysql"], indirect=True)


@pytest.fixture
def bundled(airflow_db, pachyderm_conn, pachd, bookkeeping_conn_id, monkeypatch, tmp_path):
    """The bundled DAG files in Airflow's DAGs folder, wired to this test's pachd and database."""
    alerts = tmp_path / "alerts.jsonl"
    monkeypatch.setenv(
        "AIRFLOW__CPSIGN__ALERTING",
        json.dumps(
            {
                f"on_{event}": [
                    {
                        "type": "class",
                        "class": "recording_notifier.RecordingNotifier",
                        "path": str(alerts),
                    }
                ]
                for event in ("failure", "success")
            }
        ),
    )
    configure_local_pachd(pachd, WORKFLOW)
    folder = use_bundled_dags(
        monkeypatch,
        airflow_db / "dags",
        bookkeeping_conn_id=bookkeeping_conn_id,
        source_db_uri=logd_source_db(tmp_path / "source.db"),
    )
    return {
        "dags": folder,
        "alerts": alerts,
        "conn_id": bookkeeping_conn_id,
        "hook": PachydermHook(pachyderm_conn),
    }


def ledger(env) -> TrainingLedger:
    return BookkeepingHook(env["conn_id"]).get_ledger()


def setup(env, **conf):
    result = run_dag(
        env["dags"] / "cpsign_setup.py",
        "cpsign_setup",
        run_conf={"workflow_name": WORKFLOW, **conf},
    )
    assert result.state == "success", result.task_states
    return result


def train(env, configuration, **kwargs):
    return run_dag(
        env["dags"] / "cpsign_training.py",
        "cpsign_training",
        run_conf={"configuration": configuration},
        **kwargs,
    )


# ------------------------------------------------------------------ parse-time checks


def test_dagbag_has_no_errors_and_every_dag_is_documented():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {"cpsign_setup", "cpsign_training", "cpsign_retraining"}
    for dag in bag.dags.values():
        assert dag.tags and "cpsign" in dag.tags, dag.dag_id
        assert dag.doc_md and len(dag.doc_md) > 100, dag.dag_id
        assert all(task.owner == "cpsign" for task in dag.tasks), dag.dag_id


BASELINE_DAG = """
import datetime
from airflow.sdk import DAG, task
with DAG("baseline", schedule=None, start_date=datetime.datetime(2024, 1, 1)) as dag:
    task(lambda: 1, task_id="one")()
"""
HEAVY = [
    "grpc",
    "pachyderm_sdk",
    "betterproto",
    "kubernetes",
    "MySQLdb",
    "jsonschema",
    "alembic",
    "sqlalchemy.orm",
]


def _heavy_modules(path: Path) -> set[str]:
    code = (
        "import runpy, sys\n"
        f"runpy.run_path({str(path)!r})\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1].replace("'", '"')))


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_files_import_nothing_heavy(path, tmp_path):
    """Parsing a DAG file imports no grpc, pachyderm-sdk, kubernetes or DB driver beyond what Airflow does."""
    baseline = tmp_path / "baseline.py"
    baseline.write_text(BASELINE_DAG)
    extra = _heavy_modules(path) - _heavy_modules(baseline)
    assert extra == set(), f"{path.name} imports {sorted(extra)} at parse time"


def test_training_form_and_deadline(airflow_db, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CPSIGN__TRAINING_DEADLINE_MINUTES", "90")
    dag = load_dag(REPO / "dags" / "cpsign_training.py", "cpsign_training")
    params = dag.params
    assert params.get_param("ptype").schema.get("values_display")
    assert params.get_param("advanced").schema["type"] == "object"
    assert params["workflow_name"] == "LogD"
    deadline = dag.deadline if not isinstance(dag.deadline, list) else dag.deadline[0]
    assert deadline.interval.total_seconds() == 90 * 60


# ------------------------------------------------------------------ end to end


def test_setup_twice_second_run_changes_nothing(bundled):
    first = setup(bundled)
    second = setup(bundled)
    assert {r["action"] for r in first.xcom["pipelines"]} == {"created"}
    assert len(first.xcom["pipelines"]) == len(STAGES)
    assert {r["action"] for r in second.xcom["pipelines"]} == {"unchanged"}
    with ledger(bundled) as book:
        workflow = book.get_workflow(WORKFLOW)
        deployments = book.list_deployments(WORKFLOW)
    assert workflow.config_repo == f"{WORKFLOW}-config"
    assert sorted(d.action for d in deployments) == ["created"] * len(STAGES) + ["unchanged"] * len(
        STAGES
    )


def test_training_run_records_everything(bundled):
    setup(bundled)
    configuration = source_example("logd-flat")
    result = train(bundled, configuration)
    assert result.state == "success", result.task_states
    commit = result.xcom["training_run.put_config"]
    hook = bundled["hook"]
    committed = json.loads(hook.read_file(f"{WORKFLOW}-config", commit, "/configuration.json"))
    with ledger(bundled) as book:
        [run] = book.runs_for_airflow_run("cpsign_training", result.run_id)
        jobs = book.list_jobs(run.id)
        artifacts = book.list_artifacts(run.id)
    assert run.status == "succeeded" and run.error is None
    assert run.trigger_kind == "manual"
    assert run.commit_id == commit and run.commit_set_id == commit
    assert run.configuration == committed  # the exact configuration that produced the model
    from cpsign_airflow.cpsign.configuration import configuration_sha256

    assert run.config_sha256 == configuration_sha256(committed)
    assert run.started_at <= run.committed_at <= run.finished_at
    assert sorted(j.pipeline for j in jobs) == sorted(
        f"{WORKFLOW}-{s}"
        for s in ("ingestion", "precompute", "train", "aggregate", "validate", "publish")
    )
    assert all(j.state == "JOB_SUCCESS" and j.job_id == commit for j in jobs)
    [model] = artifacts
    path = model.location.split(":", 1)[1]
    data = hook.read_file(f"{WORKFLOW}-aggregate", commit, path)
    import hashlib

    assert model.location == f"{WORKFLOW}-aggregate@{commit}:/model/LogD_full_split.jar"
    assert (model.size_bytes, model.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    # The Asset event carries the commit id.
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        events = [
            e.extra for e in session.query(AssetEvent).all() if e.extra.get("commit_id") == commit
        ]
    assert events and events[0]["workflow"] == WORKFLOW
    # on_success is wired: one alert naming the workflow, the run and its model
    [alert] = [json.loads(line) for line in bundled["alerts"].read_text().splitlines()]
    assert alert["subject"] == f"[cpsign] {WORKFLOW} training succeeded"
    assert f"DAG run: cpsign_training / {result.run_id}" in alert["message"]
    assert f"Model: {model.model_name}" in alert["message"]
    assert f"Location: {model.location}" in alert["message"]
    assert f"sha256: {model.sha256}" in alert["message"]
    assert f"Verdict: {model.quality}: " in alert["message"]


@mysql_only
def test_pipeline_failure_fails_run_names_pipeline_and_alerts(bundled, pachd, monkeypatch):
    setup(bundled)
    host, port = pachd.address.split("://", 1)[1].rsplit(":", 1)
    monkeypatch.setenv(
        "AIRFLOW_CONN_PACHYDERM_DEFAULT",
        json.dumps(
            {
                "conn_type": "pachyderm",
                "host": host,
                "port": int(port),
                "extra": {"console_url": "https://console.lab"},
            }
        ),
    )
    configuration = source_example("logd-flat")
    configuration["advanced"] = {"simulate_failure": "train"}
    result = train(bundled, configuration)
    assert result.state == "failed"
    assert result.task_states["training_run.wait_for_training"] == "failed"
    assert result.tries["training_run.wait_for_training"] == 1  # a failed job is not retried
    with ledger(bundled) as book:
        [run] = book.runs_for_airflow_run("cpsign_training", result.run_id)
        jobs = {j.pipeline: j for j in book.list_jobs(run.id)}
    assert run.status == "failed"
    assert f"{WORKFLOW}-train" in run.error
    # the failed run has its job rows; the failed job's row carries pachd's reason and
    # the stage's own error line from the datum's log
    assert len(jobs) == 6 and jobs[f"{WORKFLOW}-ingestion"].state == "JOB_SUCCESS"
    failed = jobs[f"{WORKFLOW}-train"]
    assert failed.state == "JOB_FAILURE" and "simulated failure" in failed.reason
    assert "stand-in train: ERROR simulated failure" in failed.log_tail
    assert jobs[f"{WORKFLOW}-ingestion"].log_tail is None
    # downstream jobs name the failed pipeline, not the input ("train")
    assert jobs[f"{WORKFLOW}-aggregate"].reason.endswith(
        f"upstream pipelines failed: {failed.pipeline}"
    )
    alerts = [json.loads(line) for line in bundled["alerts"].read_text().splitlines()]
    assert len(alerts) == 1
    assert f"Failed pipeline: {WORKFLOW}-train job {run.commit_id}" in alerts[0]["message"]
    # the failed stage's own error line reaches the alert, from the job's logs
    assert "stand-in train: ERROR simulated failure" in alerts[0]["message"]
    assert "Workflow: LogD" in alerts[0]["message"]
    assert (
        f"Pachyderm Console: https://console.lab/lineage/default/commit-sets/{run.commit_id}"
        in alerts[0]["message"]
    )


@mysql_only
def test_invalid_configuration_commits_nothing(bundled):
    setup(bundled)
    before = _commits(bundled["hook"], f"{WORKFLOW}-config")
    configuration = source_example("logd-flat")
    configuration["cpsign"]["ptype"] = 4
    del configuration["query"]["database_query"]
    result = train(bundled, configuration)
    assert result.task_states["training_run.validate"] == "failed"
    assert result.tries["training_run.validate"] == 1
    assert result.task_states["training_run.put_config"] == "upstream_failed"
    assert _commits(bundled["hook"], f"{WORKFLOW}-config") == before
    with ledger(bundled) as book:
        [run] = book.runs_for_airflow_run("cpsign_training", result.run_id)
    # recorded as rejected, with every reason, and nothing committed
    assert (run.status, run.commit_id, run.trigger_kind) == ("rejected", None, "manual")
    assert "ptype" in run.error and "database_query" in run.error
    assert run.configuration["cpsign"]["ptype"] == 4
    # the alert carries every validation error, not only the first line
    alerts = [json.loads(line) for line in bundled["alerts"].read_text().splitlines()]
    assert len(alerts) == 1
    for reason in run.error.splitlines()[1:]:
        assert reason.strip() in alerts[0]["message"]


@mysql_only
def test_preflight_rejects_a_broken_query_before_commit(bundled):
    setup(bundled)
    before = _commits(bundled["hook"], f"{WORKFLOW}-config")
    configuration = source_example("logd-flat")
    configuration["query"]["database_query"] = "SELECT canonical_smiles FROM no_such_table{}"
    result = train(bundled, configuration)
    assert result.task_states["training_run.validate"] == "failed"
    assert result.task_states["training_run.put_config"] == "upstream_failed"
    assert "does not run on" in bundled["alerts"].read_text()
    assert _commits(bundled["hook"], f"{WORKFLOW}-config") == before


def _commits(hook, repo) -> list[str]:
    """Ids of the repo's commits (pachd may give a new input branch an empty first commit)."""
    from pachyderm_sdk.api import pfs

    return [
        c.commit.id for c in hook.get_conn().pfs.list_commit(repo=pfs.Repo(name=repo, type="user"))
    ]


@mysql_only
def test_rerun_of_the_same_dag_run_commits_once(bundled, capfd):
    import datetime

    setup(bundled)
    when = datetime.datetime(2025, 6, 1, tzinfo=datetime.timezone.utc)
    first = train(bundled, source_example("logd-flat"), logical_date=when, run_after=when)
    capfd.readouterr()
    again = train(bundled, source_example("logd-flat"), logical_date=when, run_after=when)
    assert first.run_id == again.run_id
    assert "already committed by this task" in capfd.readouterr().out  # put_config ran again
    assert first.xcom["training_run.put_config"] == again.xcom["training_run.put_config"]
    from pachyderm_sdk.api import pfs

    client = bundled["hook"].get_conn()
    commits = list(client.pfs.list_commit(repo=pfs.Repo(name=f"{WORKFLOW}-config", type="user")))
    assert [c.commit.id for c in commits if "cpsign-airflow key=" in c.description] == [
        first.xcom["training_run.put_config"]
    ]
    with ledger(bundled) as book:
        assert len(book.runs_for_airflow_run("cpsign_training", first.run_id)) == 1


@mysql_only
def test_retraining_recommits_the_last_good_configuration(bundled):
    setup(bundled)
    good = source_example("logd-flat")
    assert train(bundled, good).state == "success"
    bad = source_example("logd-flat")
    bad["advanced"] = {"simulate_failure": "aggregate"}
    assert train(bundled, bad).state == "failed"
    result = run_dag(bundled["dags"] / "cpsign_retraining.py", "cpsign_retraining")
    assert result.state == "success", result.task_states
    commits = result.xcom["training_run.put_config"]
    [commit] = commits if isinstance(commits, list) else [commits]
    recommitted = json.loads(
        bundled["hook"].read_file(f"{WORKFLOW}-config", commit, "/configuration.json")
    )
    with ledger(bundled) as book:
        [retrained] = book.runs_for_airflow_run("cpsign_retraining", result.run_id)
        [_, earlier_good] = book.list_runs(WORKFLOW, status="succeeded")
    assert recommitted == earlier_good.configuration  # not the failed run's configuration
    # dag.test() makes a manual run: recorded as manual, as it happened
    assert retrained.status == "succeeded" and retrained.trigger_kind == "manual"
    assert retrained.commit_id == commit != earlier_good.commit_id


# ------------------------------------------------------------------ Kubernetes (fake API server)


@mysql_only
def test_setup_creates_pipeline_secrets_in_kubernetes(
    bundled, kube_conn, kube_apiserver, monkeypatch
):
    fake = kube_apiserver.server
    fake.create_namespace("pachyderm")
    monkeypatch.setenv(
        "AIRFLOW_CONN_CPSIGN_SOURCE_DB", "mysql://root:db-pass-7Hq@chembl-mysql:3306/chembl_24"
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_MODELWEB",
        json.dumps(
            {
                "conn_type": "http",
                "login": "modeler",
                "password": "store-pass-3Zx",
                "host": "https://modelweb.example",
                "extra": {"keycloak_url": "https://keycloak.example"},
            }
        ),
    )
    result = setup(bundled, k8s_namespace="pachyderm")
    assert result.task_states["check_secrets"] == "success"
    assert result.task_states["secret_license"] == "skipped"
    db_secret = fake.get_object("secrets", "pachyderm", "chembl-mysql")
    assert set(db_secret["data"]) == {"mysql-root-password"}
    store = fake.get_object("secrets", "pachyderm", "modelweb-api-info")
    assert set(store["data"]) == {"user", "password", "modelweb-url", "keycloak-url"}
    assert "db-pass-7Hq" not in json.dumps(result.xcom) and "store-pass-3Zx" not in json.dumps(
        result.xcom
    )
    # ingestion connects only where the connection points: pinned in its spec, no password
    spec = bundled["hook"].inspect_pipeline(f"{WORKFLOW}-ingestion")["user_spec"]
    env = spec["transform"]["env"]
    assert (env["SOURCE_DB_DIALECT"], env["SOURCE_DB_HOST"], env["SOURCE_DB_PORT"]) == (
        "mysql",
        "chembl-mysql",
        "3306",
    )
    assert (env["SOURCE_DB_USER"], env["SOURCE_DB_NAME"]) == ("root", "chembl_24")
    assert "db-pass-7Hq" not in json.dumps(spec)


@mysql_only
def test_setup_refuses_a_source_connection_outside_the_allow_list(bundled):
    """The form offers only the allowed connections (the spec_vars task checks again)."""
    # ParamValidationError, a ValueError, from Airflow 3.3's dag.test(); 3.2's raises ValueError
    with pytest.raises(ValueError, match=r"source_db_conn_id: 'elsewhere' is not one of"):
        run_dag(
            bundled["dags"] / "cpsign_setup.py",
            "cpsign_setup",
            run_conf={"workflow_name": WORKFLOW, "source_db_conn_id": "elsewhere"},
        )


@mysql_only
def test_setup_without_namespace_skips_kubernetes(bundled):
    result = setup(bundled)
    assert result.task_states["check_secrets"] == "skipped"
    assert result.task_states["pipelines"] == "success"


@mysql_only
def test_training_deploys_prediction_service_when_asked(
    bundled, kube_conn, kube_apiserver, monkeypatch
):
    import base64

    fake = kube_apiserver.server
    fake.create_namespace("cpsign-models")
    fake.put_object(
        "secrets",
        {
            "metadata": {"name": "pachyderm-model-reader", "namespace": "cpsign-models"},
            "data": {"auth-token": base64.b64encode(b"robot-token").decode()},
        },
    )
    monkeypatch.setenv("AIRFLOW__CPSIGN__PACHYDERM_NAMESPACE", "pachyderm")
    monkeypatch.setenv("AIRFLOW__CPSIGN__PREDICTION_TOKEN_SECRET", "pachyderm-model-reader")
    setup(bundled)
    result = run_dag(
        bundled["dags"] / "cpsign_training.py",
        "cpsign_training",
        run_conf={"configuration": source_example("logd-flat"), "deploy_prediction_service": True},
    )
    assert result.state == "success", result.task_states
    deployed = result.xcom["training_run.deploy_prediction_service"]
    commit = result.xcom["training_run.put_config"]
    assert deployed["model_version"] == commit and deployed["namespace"] == "cpsign-models"
    deployment = fake.get_object(
        "deployments", "cpsign-models", deployed["deployment"], group="apps"
    )
    assert deployment is not None
    with ledger(bundled) as book:
        [run] = book.runs_for_airflow_run("cpsign_training", result.run_id)
        [model] = book.list_artifacts(run.id)
    assert model.publication_target == "prediction_service"
    assert model.publication_url == deployed["url"]
    assert model.publication_status in ("published", "pending")
    assert model.published_version == commit


@mysql_only
def test_setup_force_kills_a_running_training_and_fails_its_run(bundled, pachd, monkeypatch):
    """in_flight=force: the update kills the running job; bookkeeping says who killed it."""
    from job_gate import JobGate

    monkeypatch.setenv("AIRFLOW__CPSIGN__SETUP_WAIT_MINUTES", "0.01")
    dag = load_dag(bundled["dags"] / "cpsign_setup.py", "cpsign_setup")
    assert (dag.params["in_flight"], dag.params["in_flight_wait_minutes"]) == ("wait", 0.01)
    setup(bundled)
    hook, ingestion = bundled["hook"], f"{WORKFLOW}-ingestion"
    hook.wait_for_jobs(hook.list_unfinished_jobs([ingestion]), timeout=60)  # setup's own
    configuration = source_example("logd-flat")
    with JobGate() as gate:
        pachd.configure_pipeline(ingestion, handler=gate.handler)
        commit = hook.put_file(
            f"{WORKFLOW}-config", "/configuration.json", data=json.dumps(configuration)
        )
        gate.wait_started()
        with ledger(bundled) as book:
            run = book.record_pending_run(WORKFLOW, configuration)
            book.mark_committed(run, commit, commit)
        version = hook.inspect_pipeline(ingestion)["version"]
        changed = {"ingestion_image": "registry.example/cpsign-stage:changed"}

        waited = run_dag(
            bundled["dags"] / "cpsign_setup.py",
            "cpsign_setup",
            run_conf={"workflow_name": WORKFLOW, **changed},
        )
        assert waited.task_states["pipelines"] == "failed"  # default: wait, limit from config
        assert hook.inspect_pipeline(ingestion)["version"] == version
        assert hook.inspect_job(ingestion, commit)["state"] == "JOB_RUNNING"

        result = setup(bundled, in_flight="force", **changed)

    outcomes = {r["pipeline"]: r for r in result.xcom["pipelines"]}
    assert outcomes[ingestion]["action"] == "updated"
    assert outcomes[ingestion]["killed_jobs"] == [commit]
    assert hook.inspect_job(ingestion, commit)["state"] == "JOB_KILLED"
    assert result.xcom["record_killed_runs"] == [
        {"job_id": commit, "pipelines": [ingestion], "failed_runs": [run]}
    ]
    with ledger(bundled) as book:
        record = book.get_run(run)
    assert record.status == "failed"
    assert record.error == (
        f"killed by cpsign_setup run {result.run_id}: pipeline {ingestion} was updated "
        f"while job {commit} ran (in_flight=force)"
    )


@mysql_only
def test_a_commit_set_without_a_model_fails_once_not_retried(bundled, pachd):
    setup(bundled)
    # the aggregate job succeeds but writes no model: no retry can change that
    pachd.configure_pipeline(f"{WORKFLOW}-aggregate", outputs={"/readme.txt": b"no model"})
    pachd.configure_pipeline(f"{WORKFLOW}-validate", outputs={"/readme.txt": b"nothing"})
    pachd.configure_pipeline(f"{WORKFLOW}-publish", outputs={"/readme.txt": b"nothing"})
    result = train(bundled, source_example("logd-flat"))
    assert result.state == "failed"
    assert result.task_states["training_run.record_outcome"] == "failed"
    assert result.tries["training_run.record_outcome"] == 1
    with ledger(bundled) as book:
        [run] = book.runs_for_airflow_run("cpsign_training", result.run_id)
        jobs = book.list_jobs(run.id)
    assert run.status == "failed" and "produced no model" in run.error
    # the jobs were recorded before the model was looked for
    assert {job.pipeline for job in jobs} >= {f"{WORKFLOW}-aggregate", f"{WORKFLOW}-validate"}


@mysql_only
def test_a_pipeline_that_cannot_start_fails_the_run_within_the_grace(bundled, pachd, monkeypatch):
    """pachd keeps a CRASHING pipeline's job waiting; the wait ends after the grace period."""
    monkeypatch.setenv("AIRFLOW__CPSIGN__PIPELINE_GRACE_MINUTES", "0.01")  # 0.6 s
    monkeypatch.setenv("AIRFLOW__CPSIGN__PIPELINE_CHECK_SECONDS", "0.2")
    setup(bundled)
    hook = bundled["hook"]
    spec = hook.inspect_pipeline(f"{WORKFLOW}-precompute")["user_spec"]
    spec["transform"]["image"] = "lab/cpsign-unpullable:1"
    pachd.unpullable_images.add("lab/cpsign-unpullable:1")  # its workers cannot start
    hook.create_or_update_pipeline(spec)
    result = train(bundled, source_example("logd-flat"))
    assert result.state == "failed"
    assert result.task_states["training_run.wait_for_training"] == "failed"
    assert result.tries["training_run.wait_for_training"] == 1
    with ledger(bundled) as book:
        [run] = book.runs_for_airflow_run("cpsign_training", result.run_id)
    assert run.status == "failed" and f"{WORKFLOW}-precompute" in run.error
    assert "CRASHING" in run.error
    assert 'Back-off pulling image "lab/cpsign-unpullable:1"' in run.error
    [alert] = [json.loads(line) for line in bundled["alerts"].read_text().splitlines()]
    assert (
        f"Unhealthy pipeline: {WORKFLOW}-precompute job {run.commit_id} (PIPELINE_CRASHING"
        in alert["message"]
    )
    with ledger(bundled) as book:  # the failed run has its job rows
        jobs = {j.pipeline: j for j in book.list_jobs(run.id)}
    assert jobs[f"{WORKFLOW}-ingestion"].state == "JOB_SUCCESS"
    assert "PIPELINE_CRASHING" in jobs[f"{WORKFLOW}-precompute"].reason
