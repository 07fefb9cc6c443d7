"""The bundled DAGs in a real Airflow deployment, configured as docker-compose.yaml configures it.

Airflow's four components run as separate processes (api-server, scheduler with the
LocalExecutor, dag-processor, triggerer) with the environment of their compose services;
Airflow's metadata database is SQLite, bookkeeping is MariaDB, and the local pachd runs
as its own process with the ``pachd`` service's command, running the pipelines' real
stages (ingestion, CPSign, validation, publication) on FreeSolv. Alerts go over SMTP to
a server in this test. Everything is driven through the REST API, as a user would.

One deployment serves the module: it trains a model (the wait deferred to the
triggerer), fails a run in a stage, rejects a configuration, and misses a short deadline.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import re
import shlex
import subprocess
import sys
import threading
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from compose_config import (
    SECRETS_DIR,
    init_script,
    pachd_service_argv,
    pachd_service_env,
    run_init_secrets,
)

from cpsign_airflow import demo_data
from cpsign_airflow.bookkeeping.ledger import TrainingLedger
from cpsign_airflow.devkit.local import install_cpsign, stage_environment
from cpsign_airflow.testing.airflow_deployment import AirflowDeployment, free_port
from cpsign_airflow.testing.mariadb import scratch_database

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = "FreeSolv"
CONSOLE = "https://console.lab.example"
#: The DeadlineAlert of cpsign_training: short, so the training run misses it.
DEADLINE_MINUTES = 0.25
pytestmark = pytest.mark.timeout(1500)


class Mailbox:
    """An SMTP server (aiosmtpd) that keeps every message it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[email.message.EmailMessage] = []
        self.arrived = threading.Condition()
        mailbox = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                message = email.message_from_bytes(envelope.content, policy=email.policy.default)
                with mailbox.arrived:
                    mailbox.messages.append(message)
                    mailbox.arrived.notify_all()
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def wait_for(self, subject_part: str, body_part: str = "", timeout: float = 300) -> Any:
        """The first message whose subject and body contain these; awaited, not polled."""

        def found():
            for message in self.messages:
                if subject_part in message["subject"] and body_part in self.body(message):
                    return message
            return None

        with self.arrived:
            if not self.arrived.wait_for(found, timeout=timeout):
                subjects = [m["subject"] for m in self.messages]
                raise AssertionError(f"no mail {subject_part!r}/{body_part!r}; got {subjects}")
            return found()

    @staticmethod
    def body(message: Any) -> str:
        import html

        part = message.get_body(preferencelist=("plain", "html"))
        return html.unescape(re.sub(r"</?pre>", "", part.get_content()))


@pytest.fixture(scope="module")
def deployment(
    defaults: dict[str, Any], mysql_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("deployment")
    launcher = install_cpsign()
    # airflow-init's source step, its paths moved from the cpsign-source volume to here
    source, form = work / "freesolv.db", work / "freesolv-configuration.json"
    [step] = [line for line in init_script(defaults) if "cpsign_airflow.demo_data" in line]
    argv = shlex.split(step.replace("/opt/airflow/source/freesolv.db", str(source)))
    argv = [w.replace("/opt/airflow/source/freesolv-configuration.json", str(form)) for w in argv]
    assert argv[:3] == ["/entrypoint", "python", "-m"]
    subprocess.run([sys.executable, *argv[2:]], check=True, capture_output=True, timeout=300)
    common = defaults["services"]["airflow-scheduler"]["environment"]
    assert common["AIRFLOW_CONN_CPSIGN_SOURCE_DB"] == "sqlite:////opt/airflow/source/freesolv.db"

    # airflow-init's secrets step: the JWT secret, the admin password, pachd's token and
    # the connection carrying it, in the services' volumes (moved here)
    volumes = run_init_secrets(defaults, work / "volumes")
    connection = json.loads((volumes["secrets"] / "pachyderm_default.json").read_text())

    # pachd: the compose service's command and environment, with the stages' runtime on
    # its PATH and its token volume
    pachd_port = free_port()
    pachd_env = {**pachd_service_env(defaults), **stage_environment(launcher)}
    pachd_log = (work / "pachd.log").open("w")
    pachd = subprocess.Popen(
        pachd_service_argv(defaults, pachd_port, work / "pachd-data", volumes["pachd_auth"]),
        env=pachd_env,
        stdout=subprocess.PIPE,
        stderr=pachd_log,
        text=True,
        start_new_session=True,
    )
    address = pachd.stdout.readline().strip()
    assert address == f"grpc://127.0.0.1:{pachd_port}", (work / "pachd.log").read_text()

    mailbox = Mailbox()
    mailbox.controller.start()
    with scratch_database(mysql_server_url) as bookkeeping_url:
        from sqlalchemy.engine import make_url

        bk = make_url(bookkeeping_url)
        env = dict(defaults["services"]["airflow-scheduler"]["environment"])
        smtp = {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": mailbox.port,
            "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "airflow@lab"},
        }
        to = {"type": "smtp", "to": "models@lab.example", "smtp_conn_id": "smtp_default"}
        env.update(
            {
                "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{work}/airflow/airflow.db",
                "AIRFLOW__CORE__FERNET_KEY": "",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                # what the services' entrypoint exports, pointed at this pachd
                "AIRFLOW_CONN_PACHYDERM_DEFAULT": json.dumps(
                    {
                        **connection,
                        "host": "127.0.0.1",
                        "port": pachd_port,
                        "extra": {"console_url": CONSOLE},
                    }
                ),
                "AIRFLOW__API_AUTH__JWT_SECRET_CMD": env[
                    "AIRFLOW__API_AUTH__JWT_SECRET_CMD"
                ].replace(SECRETS_DIR + "/", f"{volumes['secrets']}/"),
                "AIRFLOW_CONN_CPSIGN_BOOKKEEPING": (
                    f"mysql://{bk.username or 'root'}:{bk.password or ''}@{bk.host}:{bk.port}"
                    f"/{bk.database}"
                ),
                "AIRFLOW_CONN_CPSIGN_SOURCE_DB": f"sqlite:///{source}",
                "AIRFLOW__CPSIGN__FORM_CONFIGURATION": str(form),
                "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(smtp),
                "AIRFLOW__CPSIGN__ALERTING": json.dumps(
                    {f"on_{e}": [to] for e in ("failure", "success", "deadline", "held_back")}
                ),
                "AIRFLOW__CPSIGN__TRAINING_DEADLINE_MINUTES": str(DEADLINE_MINUTES),
                "AIRFLOW__CPSIGN__TASK_RETRIES": "1",
                "AIRFLOW__CPSIGN__RETRY_DELAY_SECONDS": "2",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                **{k: v for k, v in stage_environment(launcher).items() if k == "CPSIGN"},
            }
        )
        airflow = AirflowDeployment(work, env)
        try:
            # airflow-init's bookkeeping step, as the compose file runs it
            airflow.start(timeout=420)
            subprocess.run(
                [sys.executable, "-m", "cpsign_airflow.bookkeeping", "upgrade", "--conn-id",
                 "cpsign_bookkeeping"],
                env=airflow.env, check=True, capture_output=True, timeout=120,
            )  # fmt: skip
            yield {
                "airflow": airflow,
                "mail": mailbox,
                "source": source,
                "bookkeeping": "cpsign_bookkeeping",
                "env": airflow.env,
            }
        finally:
            airflow.stop()
            mailbox.controller.stop()
            pachd.terminate()
            pachd.wait(timeout=30)
            pachd_log.close()


def _ledger(env: dict[str, str]) -> TrainingLedger:
    return TrainingLedger.from_url(env["AIRFLOW_CONN_CPSIGN_BOOKKEEPING"])


@contextlib.contextmanager
def _workflow_held(env: dict[str, str]) -> Iterator[None]:
    """Hold the workflow's bookkeeping row ``FOR UPDATE`` meanwhile.

    A training run cannot record its start (a row referencing the workflow) nor decide
    its verdict (which takes that lock) until it is released, so a run triggered now is
    late for its deadline however fast the machine is. Bookkeeping retries the lock
    wait (error 1205) if the alert takes longer than MariaDB's lock timeout.
    """
    import sqlalchemy as sa

    from cpsign_airflow.bookkeeping.tables import workflows

    with _ledger(env) as ledger, ledger.engine.connect() as conn, conn.begin():
        held = sa.select(workflows.c.id).where(workflows.c.name == WORKFLOW).with_for_update()
        conn.execute(held).one()
        yield


@pytest.fixture(scope="module")
def set_up(deployment) -> dict[str, Any]:
    airflow = deployment["airflow"]
    run_id = airflow.trigger("cpsign_setup", {"workflow_name": WORKFLOW, "train_parallelism": 2})
    run = airflow.wait_for_run("cpsign_setup", run_id, timeout=300)
    assert run["state"] == "success", airflow.task_instances("cpsign_setup", run_id)
    return deployment


def test_training_from_the_form_defers_to_the_triggerer_and_records_the_model(set_up):
    """Triggered with the form's values as they come (airflow-init's FreeSolv configuration)."""
    airflow, mail = set_up["airflow"], set_up["mail"]
    form = airflow.api("GET", "/api/v2/dags/cpsign_training/details")["params"]
    assert form["workflow_name"]["value"] == WORKFLOW
    with _workflow_held(set_up["env"]):
        run_id = airflow.trigger("cpsign_training", {})
        # its outcome cannot be recorded meanwhile: the deadline passes while it runs
        late = mail.wait_for(f"[cpsign] {WORKFLOW} training missed its deadline", run_id)
    assert "late" in mail.body(late) and f"DAG run: cpsign_training / {run_id}" in mail.body(late)
    run = airflow.wait_for_run("cpsign_training", run_id, timeout=600)
    tis = airflow.task_instances("cpsign_training", run_id)
    assert run["state"] == "success", {k: v["state"] for k, v in tis.items()}
    wait = tis["training_run.wait_for_training"]
    assert wait["state"] == "success"
    # a lower try number, seen now and then while the run was held above, is one the
    # scheduler gave up before the task ran (no log) or that ended without an error
    for earlier in range(1, wait["try_number"]):
        try:
            entries = airflow.task_log_entries(
                "cpsign_training", run_id, "training_run.wait_for_training", earlier
            )
        except urllib.error.HTTPError as err:
            assert err.code == 404, err
            continue
        errors = [e["event"] for e in entries if e.get("level") in ("error", "critical")]
        assert not errors, (earlier, errors)
    with _ledger(set_up["env"]) as ledger:
        [record] = ledger.runs_for_airflow_run("cpsign_training", run_id)
        jobs = ledger.list_jobs(record.id)
        [model] = ledger.list_artifacts(record.id)
    # deferred: the triggerer ran the wait on this commit set, the worker resumed it
    log = airflow.task_log(
        "cpsign_training", run_id, "training_run.wait_for_training", wait["try_number"]
    )
    assert f"Deferring until commit set {record.commit_set_id}" in log
    # the trigger's own lines, which only the triggerer writes (into the task's log)
    assert f"Commit set {record.commit_set_id}: default/{WORKFLOW}-publish finished" in log
    assert "Trigger fired event" in log and "all 6 jobs succeeded" in log  # then resumed
    assert record.status == "succeeded" and record.trigger_kind == "manual"
    assert len(jobs) == 6 and all(j.state == "JOB_SUCCESS" for j in jobs)
    assert model.sha256 and model.size_bytes > 10_000 and model.quality == "passed"
    assert model.metrics["test_molecules"] == 128
    # a healthy run logs nothing at error level, in any of its tasks
    noisy = {
        task_id: [e["event"] for e in entries if e.get("level") in ("error", "critical")]
        for task_id, ti in tis.items()
        if ti["state"] == "success"
        for entries in [airflow.task_log_entries("cpsign_training", run_id, task_id)]
    }
    assert not any(noisy.values()), noisy
    # on_success is wired too
    success = mail.wait_for(f"[cpsign] {WORKFLOW} training succeeded", run_id)
    assert f"Workflow: {WORKFLOW}" in mail.body(success)


def test_a_failing_stage_alerts_with_pipeline_job_reason_log_and_console(set_up):
    airflow, mail = set_up["airflow"], set_up["mail"]
    configuration = demo_data.demo_configuration(set_up["source"], WORKFLOW)
    # valid, but the table is gone by the time ingestion runs (pre-flight off): the stage fails
    query = configuration["preprocessing"]["query"]
    query["database_query"] = query["database_query"].replace("FROM freesolv", "FROM retired")
    run_id = airflow.trigger(
        "cpsign_training", {"configuration": configuration, "preflight": False}
    )
    assert airflow.wait_for_run("cpsign_training", run_id, timeout=600)["state"] == "failed"
    with _ledger(set_up["env"]) as ledger:
        [record] = ledger.runs_for_airflow_run("cpsign_training", run_id)
        jobs = {j.pipeline: j for j in ledger.list_jobs(record.id)}
    assert record.status == "failed"
    failed = [j for j in jobs.values() if j.state == "JOB_FAILURE"]
    assert len(failed) == 1 and failed[0].log_tail, jobs
    message = mail.wait_for(f"[cpsign] {WORKFLOW} training failed", run_id)
    body = mail.body(message)
    assert f"Workflow: {WORKFLOW}" in body
    assert f"Failed pipeline: {failed[0].pipeline} job {record.commit_set_id}" in body
    assert failed[0].reason in body
    assert failed[0].log_tail.splitlines()[-1].strip() in body
    assert f"{CONSOLE}/lineage/default/commit-sets/{record.commit_set_id}" in body


def test_a_rejected_configuration_is_recorded_and_every_error_is_mailed(set_up):
    airflow, mail = set_up["airflow"], set_up["mail"]
    configuration = demo_data.demo_configuration(set_up["source"], WORKFLOW)
    configuration["train"]["ptype"] = 4
    configuration["validation"]["test_fraction"] = 2
    run_id = airflow.trigger("cpsign_training", {"configuration": configuration})
    run = airflow.wait_for_run("cpsign_training", run_id, timeout=300)
    assert run["state"] == "failed"
    validate = airflow.task_instances("cpsign_training", run_id)["training_run.validate"]
    assert (validate["state"], validate["try_number"]) == ("failed", 1)  # not retried
    with _ledger(set_up["env"]) as ledger:
        [record] = ledger.runs_for_airflow_run("cpsign_training", run_id)
    assert record.status == "rejected" and record.commit_id is None
    reasons = [line.strip() for line in record.error.splitlines()[1:]]
    assert len(reasons) >= 2 and any("ptype" in r for r in reasons)
    body = mail.body(mail.wait_for(f"[cpsign] {WORKFLOW} training failed", run_id))
    for reason in reasons:
        assert reason in body


def test_no_deadline_alert_for_runs_that_finished_before_it_passed(set_up):
    """Failed and rejected runs above ended before their deadline; Airflow keeps their
    deadlines (it deletes one only for a run that succeeded in time), but no alert follows."""
    airflow, mail = set_up["airflow"], set_up["mail"]
    runs = airflow.api("GET", "/api/v2/dags/cpsign_training/dagRuns?limit=100")["dag_runs"]
    from datetime import datetime, timedelta

    def before_deadline(run: dict[str, Any]) -> bool:
        end = datetime.fromisoformat(run["end_date"])
        return end < datetime.fromisoformat(run["queued_at"]) + timedelta(minutes=DEADLINE_MINUTES)

    finished_early = [
        r["dag_run_id"] for r in runs if r["state"] == "failed" and before_deadline(r)
    ]
    assert finished_early
    # a later run's deadline alert proves the scheduler has handled the earlier deadlines
    configuration = demo_data.demo_configuration(set_up["source"], WORKFLOW)
    configuration["train"]["cost"] = 2
    with _workflow_held(set_up["env"]):
        run_id = airflow.trigger("cpsign_training", {"configuration": configuration})
        mail.wait_for(f"[cpsign] {WORKFLOW} training missed its deadline", run_id)
    deadline_mails = [mail.body(m) for m in mail.messages if "missed its deadline" in m["subject"]]
    for early in finished_early:
        assert not any(early in body for body in deadline_mails), (early, runs, deadline_mails)
    airflow.wait_for_run("cpsign_training", run_id, timeout=600)
