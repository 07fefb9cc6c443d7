"""The models page's routes against a real bookkeeping store (MariaDB and SQLite).

The store is filled through the ledger's own API (cpsign_airflow.testing.model_history),
and every expectation is computed from what was written. The app is Airflow-free here
(its authorization is a stand-in dependency); the browser test runs it inside a real
api-server with Airflow's login.
"""

from __future__ import annotations

import html
import json
import re
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from cpsign_airflow.bookkeeping.ledger import TrainingLedger
from cpsign_airflow.models_page import app as page_app
from cpsign_airflow.models_page.plugin import URL_PREFIX
from cpsign_airflow.testing.model_history import History, write_history

CONSOLE = "http://console.example:4000"


@pytest.fixture
def history(bookkeeping_url: str) -> History:
    with TrainingLedger.from_url(bookkeeping_url) as ledger:
        ledger.upgrade_schema()
        return write_history(ledger)


def client_for(
    conn_id: str,
    authorize: Callable[[], None] = lambda: None,
    prefix: str = URL_PREFIX,
    **app_kwargs: Any,
) -> TestClient:
    app = page_app.create_app(
        settings=lambda: (conn_id, "pachyderm_default"),
        console_base=lambda _conn: CONSOLE,
        authorize=authorize,
        **app_kwargs,
    )
    server = FastAPI()  # mounted as Airflow's api-server mounts a plugin's app
    server.mount(prefix, app)
    return TestClient(server, base_url=f"http://testserver{prefix}", follow_redirects=False)


def rows(page: str, table: str) -> list[str]:
    body = re.search(rf'<table id="{table}">.*?<tbody>(.*?)</tbody>', page, re.S)
    assert body, f"no table #{table} in the page"
    return re.findall(r"<tr (.*?)</tr>", body.group(1), re.S)


def pre(page: str, element_id: str) -> str:
    found = re.search(rf'<pre id="{element_id}">(.*?)</pre>', page, re.S)
    assert found, f"no #{element_id} in the page"
    return html.unescape(found.group(1))


def markers(svg: str, gid: str) -> int:
    group = re.search(rf'<g id="{gid}">(.*?)</g>', svg, re.S)
    return group.group(1).count("<use ") if group else 0


def test_workflows_page_shows_each_workflow_its_latest_run_and_live_model(
    history: History, bookkeeping_conn_id: str
) -> None:
    page = client_for(bookkeeping_conn_id).get("/")
    assert page.status_code == 200
    shown = rows(page.text, "workflows")
    names = sorted({run.workflow for run in history.runs})
    assert [re.search(r'data-workflow="([^"]+)"', r).group(1) for r in shown] == names
    for row, name in zip(shown, names, strict=True):
        runs = history.of(name)
        latest = max(runs, key=lambda run: run.id)
        live = max(
            (r for r in runs if r.status == "succeeded" and r.quality == "passed"),
            key=lambda run: run.id,
        )
        assert f'href="/cpsign-models/runs/{latest.id}">#{latest.id}</a>' in row
        assert f">{live.sha256[:12]}</code>" in row
        assert f'run <a href="/cpsign-models/runs/{live.id}">#{live.id}</a>' in row


def test_a_workflows_history_lists_its_runs_and_plots_each_model(
    history: History, bookkeeping_conn_id: str
) -> None:
    page = client_for(bookkeeping_conn_id).get("/workflows/LogD")
    assert page.status_code == 200, page.text
    runs = sorted(history.of("LogD"), key=lambda run: run.id, reverse=True)
    shown = rows(page.text, "runs")
    assert [int(re.search(r'data-run-id="(\d+)"', r).group(1)) for r in shown] == [
        run.id for run in runs
    ]
    for row, run in zip(shown, runs, strict=True):
        assert f'data-status="{run.status}"' in row
        assert f"<td>{run.trigger_kind}</td>" in row
        if run.commit_set_id:  # the Console link of its commit set, in the workflow's project
            assert f'href="{CONSOLE}/lineage/cpsign/commit-sets/{run.commit_set_id}"' in row
        if run.quality:
            assert f'class="badge quality-{run.quality}"' in row

    plotted = [run for run in reversed(runs) if run.validity]
    figure = re.search(r'<figure id="history-plot" data-points="(\d+)" data-confidence="([\d.]+)"'
                       r"(.*?)</figure>", page.text, re.S)  # fmt: skip
    assert figure, "no plot in the page"
    assert int(figure.group(1)) == len(plotted) and figure.group(2) == "0.8"
    svg = figure.group(3)
    assert markers(svg, "validity") == len(plotted)
    assert markers(svg, "efficiency") == len(plotted)
    assert markers(svg, "held-back") == sum(run.quality == "held_back" for run in plotted)
    assert '<g id="target-confidence">' in svg and "target confidence 0.8" in svg
    for run in plotted:
        assert f">#{run.id}<" in svg  # the x axis names the runs


def test_the_plot_switches_confidence_and_an_unknown_one_is_named(
    history: History, bookkeeping_conn_id: str
) -> None:
    client = client_for(bookkeeping_conn_id)
    page = client.get("/workflows/LogD", params={"confidence": 0.9})
    assert page.status_code == 200
    assert 'data-confidence="0.9"' in page.text and "target confidence 0.9" in page.text
    missing = client.get("/workflows/LogD", params={"confidence": 0.5})
    assert missing.status_code == 404
    assert "confidence: no model of LogD has metrics at 0.5 (it has: 0.8, 0.9)" in missing.text
    unknown = client.get("/workflows/nowhere")
    assert unknown.status_code == 404 and "no workflow named &#39;nowhere&#39;" in unknown.text


def test_a_failed_runs_page_shows_its_error_jobs_and_configuration(
    history: History, bookkeeping_conn_id: str, bookkeeping_url: str
) -> None:
    from airflow.sdk.log import mask_secret

    failed = next(run for run in history.runs if run.status == "failed")
    # a password elsewhere that equals an ordinary value of the configuration (its user)
    mask_secret("chembl_reader")
    page = client_for(bookkeeping_conn_id).get(f"/runs/{failed.id}")
    assert page.status_code == 200
    assert pre(page.text, "error") == failed.error
    jobs = rows(page.text, "jobs")
    assert len(jobs) == failed.jobs
    assert "JOB_FAILURE" in jobs[-1] and "OutOfMemoryError" in jobs[-1]
    with TrainingLedger.from_url(bookkeeping_url) as ledger:
        configuration = ledger.get_run(failed.id).configuration
    pretty = json.dumps(configuration, indent=2, sort_keys=True)
    assert pre(page.text, "configuration") == pretty


def test_recorded_text_is_escaped(
    history: History, bookkeeping_conn_id: str, bookkeeping_url: str
) -> None:
    with TrainingLedger.from_url(bookkeeping_url) as ledger:
        rid = ledger.record_pending_run("LogD", {"cpsign": {"model-name": "<b>x</b>"}})
        ledger.finish_run(rid, "failed", "<script>alert(1)</script>")
    page = client_for(bookkeeping_conn_id).get(f"/runs/{rid}").text
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>x</b>" not in page


def test_the_page_reads_through_a_session_that_refuses_writes(
    history: History, bookkeeping_conn_id: str
) -> None:
    import sqlalchemy as sa

    from cpsign_airflow.models_page.reader import open_reader

    with open_reader(bookkeeping_conn_id) as models:
        assert models.workflows()  # reads work
        with pytest.raises(sa.exc.DBAPIError, match=r"(?i)read.only|readonly"):
            with models.ledger.engine.begin() as conn:
                conn.execute(sa.text("DELETE FROM cpsign_model_artifacts"))
    with open_reader(bookkeeping_conn_id) as models:
        assert models.history("LogD").live is not None  # nothing was deleted


def test_without_a_bookkeeping_connection_the_page_says_so() -> None:
    page = client_for("cpsign_bookkeeping_nowhere").get("/")
    assert page.status_code == 503
    assert "Bookkeeping is not configured" in page.text
    assert "cpsign_bookkeeping_nowhere" in page.text and "is not defined" in page.text


def test_an_unreachable_missing_or_unmigrated_store_is_a_page_not_a_server_error(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BK_DOWN", "mysql://cpsign:secret-pw@127.0.0.1:1/bookkeeping")
    down = client_for("bk_down").get("/")
    assert down.status_code == 503 and "Bookkeeping is unavailable" in down.text
    assert "secret-pw" not in down.text

    missing = tmp_path / "missing.db"  # a wrong path: read-only, so no empty file appears
    monkeypatch.setenv("AIRFLOW_CONN_BK_MISSING", f"sqlite:///{missing}")
    answer = client_for("bk_missing").get("/")
    assert answer.status_code == 503 and "unable to open database file" in answer.text
    assert not missing.exists()

    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    monkeypatch.setenv("AIRFLOW_CONN_BK_EMPTY", f"sqlite:///{empty}")
    answer = client_for("bk_empty").get("/")
    assert answer.status_code == 503 and "has no bookkeeping schema" in answer.text
    with sqlite3.connect(empty) as db:  # the page never creates the schema
        assert db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone() == (0,)


def test_unknown_runs_workflows_and_routes_are_not_found_pages(
    history: History, bookkeeping_conn_id: str
) -> None:
    client = client_for(bookkeeping_conn_id)
    for path, says in [
        ("/runs/999", "999"),
        ("/runs/0", "run_id"),
        ("/workflows/no%20such", "workflow"),
        ("/nowhere", "Not Found"),
    ]:
        page = client.get(path)
        assert page.status_code == 404, (path, page.text)
        assert page.headers["content-type"].startswith("text/html") and says in page.text


def test_a_password_in_a_rejected_configuration_is_never_recorded_nor_shown(
    history: History, bookkeeping_conn_id: str, bookkeeping_url: str
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from cpsign_airflow.cpsign.configuration import load_example
    from cpsign_airflow.workflow.training import validate

    configuration = load_example("logd-flat")
    configuration["database"]["password"] = "hunter2-secret"
    configuration["database"]["options"] = [{"pwd": "hunter3-secret"}]
    with pytest.raises(AirflowFailException, match="database.password"):
        validate.function({"configuration": configuration}, bookkeeping_conn_id, "2.0.0")
    with TrainingLedger.from_url(bookkeeping_url) as ledger:
        rejected = ledger.list_runs(status="rejected")[0]  # the newest
    assert "hunter" not in rejected.configuration_json
    assert rejected.configuration["database"]["password"] == "***"
    page = client_for(bookkeeping_conn_id).get(f"/runs/{rejected.id}").text
    assert "hunter" not in page and "database.password" in page


def test_the_live_model_is_the_newest_published_else_the_newest_accepted(
    history: History, bookkeeping_conn_id: str, bookkeeping_url: str
) -> None:
    from cpsign_airflow.models_page.reader import live_model, open_reader

    logd = sorted((r for r in history.runs if r.workflow == "LogD"), key=lambda r: -r.id)
    with open_reader(bookkeeping_conn_id) as models:
        views = models.history("LogD").runs
    newest_published = next(r for r in logd if r.quality == "passed")
    assert live_model(views).run_id == newest_published.id
    # before that run: the newest succeeded run was 'unchanged', so the model it equals
    # (published before it) stays live; the held-back one never is
    earlier = [v for v in views if v.run.id < newest_published.id]
    unchanged = next(r for r in logd if r.quality == "unchanged")
    assert earlier[0].run.id == unchanged.id
    assert live_model(earlier).sha256 == unchanged.sha256
    assert live_model(earlier).run_id < unchanged.id
    # a workflow that never published: its newest accepted model, labelled as such
    with TrainingLedger.from_url(bookkeeping_url) as ledger:
        rid = ledger.record_pending_run("Solubility", {"workflow_name": "Solubility"})
        ledger.mark_committed(rid, "c" * 32, "c" * 32)
        location = f"Solubility-aggregate@{'c' * 32}:/model/m.jar"
        ledger.record_artifacts(rid, [{"model_name": "m", "location": location}])
        ledger.record_quality(rid, "m", "passed", "not gated")
        ledger.finish_run(rid, "succeeded")
    page = client_for(bookkeeping_conn_id).get("/workflows/Solubility").text
    assert "Latest accepted model" in page and "(no publication recorded)" in page
    assert (
        "Latest accepted model" not in client_for(bookkeeping_conn_id).get("/workflows/LogD").text
    )


def test_a_dag_id_in_the_query_does_not_choose_what_is_checked(
    history: History, bookkeeping_conn_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real dependency: Airflow's user, asked of the auth manager for DAGs in general."""
    from airflow.api_fastapi.core_api.security import get_user

    asked = []

    class OneDagOnly:  # an auth manager whose user may read one DAG, not DAGs in general
        def is_authorized_dag(self, *, method, user, details=None, **_):
            asked.append((method, user, getattr(details, "id", None)))
            return details is not None and details.id == "other_dag"

    monkeypatch.setattr("airflow.api_fastapi.app.get_auth_manager", lambda: OneDagOnly())
    app = page_app.create_app(settings=lambda: (bookkeeping_conn_id, "pachyderm_default"))
    app.dependency_overrides[get_user] = lambda: "reader"
    server = FastAPI()
    server.mount(URL_PREFIX, app)
    client = TestClient(server, base_url=f"http://testserver{URL_PREFIX}")
    for path in ("/", "/?dag_id=other_dag", "/workflows/LogD?dag_id=other_dag"):
        page = client.get(path)
        assert page.status_code == 403 and "LogD_model" not in page.text, path
    assert asked == [("GET", "reader", None)] * 3


def test_users_without_dag_access_are_refused_and_strangers_sent_to_login(
    history: History, bookkeeping_conn_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden() -> None:
        raise HTTPException(status_code=403, detail="Forbidden")

    def anonymous() -> None:
        raise HTTPException(status_code=401, detail="Not authenticated")

    refused = client_for(bookkeeping_conn_id, forbidden).get("/workflows/LogD")
    assert refused.status_code == 403 and "may not read DAGs" in refused.text
    assert "LogD_model" not in refused.text
    monkeypatch.setattr(page_app, "_login_url", lambda request: f"/auth/login?next={request.url}")
    stranger = client_for(bookkeeping_conn_id, anonymous).get("/runs/1")
    assert stranger.status_code == 303
    assert stranger.headers["location"] == "/auth/login?next=http://testserver/cpsign-models/runs/1"


def test_links_follow_where_the_page_is_mounted(history: History, bookkeeping_conn_id: str) -> None:
    # e.g. an api-server behind a proxy path ([api] base_url)
    page = client_for(bookkeeping_conn_id, prefix="/lab/airflow/cpsign-models").get("/").text
    assert 'href="/lab/airflow/cpsign-models/workflows/LogD"' in page
    assert 'href="/cpsign-models/' not in page


def test_a_bad_query_parameter_is_a_page_naming_it(history: History, bookkeeping_conn_id: str):
    page = client_for(bookkeeping_conn_id).get("/workflows/LogD", params={"confidence": "high"})
    assert page.status_code == 400 and "confidence: " in page.text
    assert client_for(bookkeeping_conn_id).get("/runs/seven").status_code == 400


def test_only_web_urls_become_links(
    history: History, bookkeeping_conn_id: str, bookkeeping_url: str
) -> None:
    run = next(r for r in history.runs if r.quality == "passed")
    with TrainingLedger.from_url(bookkeeping_url) as ledger:
        ledger.record_publication(
            run.id, f"{run.workflow}_model", status="published", url="javascript:alert(1)"
        )
    page = client_for(bookkeeping_conn_id).get(f"/runs/{run.id}").text
    assert 'href="javascript:' not in page and "<code>javascript:alert(1)</code>" in page


def test_a_jobs_log_tail_and_a_quality_reason_are_escaped(
    history: History, bookkeeping_conn_id: str, bookkeeping_url: str
) -> None:
    """Every recorded text the page shows is data, not markup (not only the run's error)."""
    attack = "<script>alert(2)</script>"
    with TrainingLedger.from_url(bookkeeping_url) as ledger:
        ledger.upgrade_schema()
        rid = ledger.record_pending_run("LogD", {"workflow_name": "LogD"})
        ledger.mark_committed(rid, "e" * 32, "e" * 32)
        ledger.record_jobs(
            rid,
            [
                {
                    "pipeline": "LogD-train",
                    "job_id": "e" * 32,
                    "state": "JOB_FAILURE",
                    "reason": f"reason {attack}",
                    "log_tail": [f"log {attack}"],
                }
            ],
        )
        ledger.record_artifacts(rid, [{"model_name": "m", "location": "LogD-aggregate@e:/m.jar"}])
        ledger.record_quality(rid, "m", "held_back", f"quality {attack}")
    page = client_for(bookkeeping_conn_id).get(f"/runs/{rid}").text
    assert "<script>" not in page
    escaped = "&lt;script&gt;alert(2)&lt;/script&gt;"
    for field in ("reason", "log", "quality"):
        assert f"{field} {escaped}" in page


def test_a_waiting_runs_page_shows_its_crashing_pipeline(
    history: History, bookkeeping_conn_id: str, bookkeeping_url: str
) -> None:
    commit = "f" * 32
    with TrainingLedger.from_url(bookkeeping_url) as ledger:
        rid = ledger.record_pending_run("LogD", {"workflow_name": "LogD"})
        ledger.mark_committed(rid, commit, commit)
    asked = []

    def health(conn_id, commit_set_id, project):
        asked.append((conn_id, commit_set_id, project))
        return [
            {
                "pipeline": "LogD-precompute",
                "project": "cpsign",
                "state": "PIPELINE_CRASHING",
                "reason": 'Back-off pulling image "<script>x</script>"',
            }
        ]

    client = client_for(bookkeeping_conn_id, pipeline_health=health)
    page = client.get(f"/runs/{rid}").text
    assert asked == [("pachyderm_default", commit, "cpsign")]
    assert "waiting on LogD-precompute (CRASHING)" in page
    [row] = rows(page, "unhealthy")
    assert "PIPELINE_CRASHING" in row and "&lt;script&gt;x&lt;/script&gt;" in row
    assert "<script>" not in page
    assert f'href="{CONSOLE}/lineage/cpsign/pipelines/LogD-precompute"' in row
    # a finished run's page does not ask pachd
    failed = next(run for run in history.runs if run.status == "failed")
    client.get(f"/runs/{failed.id}")
    assert len(asked) == 1


def test_a_waiting_runs_page_does_not_wait_for_a_pachd_that_does_not_answer(
    bookkeeping_conn_id: str, bookkeeping_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The health question is bounded: the page comes without it while pachd hangs."""
    import threading

    monkeypatch.setattr(page_app, "PIPELINE_HEALTH_TIMEOUT", 0.2)
    with TrainingLedger.from_url(bookkeeping_url) as ledger:
        ledger.upgrade_schema()
        rid = ledger.record_pending_run("LogD", {"workflow_name": "LogD"})
        ledger.mark_committed(rid, "e" * 32, "e" * 32)
    answer = threading.Event()
    asked = threading.Event()

    def hung(conn_id, commit_set_id, project):
        asked.set()
        answer.wait(60)  # released below, once the page has been shown
        return [{"pipeline": "LogD-train", "project": "p", "state": "PIPELINE_CRASHING"}]

    client = client_for(bookkeeping_conn_id, pipeline_health=hung)
    try:
        response = client.get(f"/runs/{rid}")
        assert asked.is_set() and not answer.is_set()
        assert response.status_code == 200
        assert "LogD-train" not in response.text and 'id="unhealthy"' not in response.text
    finally:
        answer.set()
