"""The models page's security headers, encoded Console links and out-of-range run ids,
against a real bookkeeping store (MariaDB and SQLite)."""

from __future__ import annotations

import re
from collections.abc import Iterable

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cpsign_airflow.bookkeeping.ledger import TrainingLedger
from cpsign_airflow.models_page import app as page_app
from cpsign_airflow.models_page import plugin
from cpsign_airflow.models_page.plugin import URL_PREFIX
from cpsign_airflow.testing.model_history import History, write_history
from tests.models_page.test_pages import CONSOLE, client_for


@pytest.fixture
def history(bookkeeping_url: str) -> History:
    with TrainingLedger.from_url(bookkeeping_url) as ledger:
        ledger.upgrade_schema()
        return write_history(ledger)


def directives(response: httpx.Response) -> dict[str, str]:
    policy = response.headers.get("content-security-policy", "")
    found = {}
    for part in policy.split(";"):
        name, _, value = part.strip().partition(" ")
        if name:
            found[name] = value.strip()
    return found


def assert_secured(response: httpx.Response, what: str) -> None:
    csp = directives(response)
    assert csp.get("frame-ancestors") == "'self'", (what, response.headers)
    assert csp.get("default-src") == "'none'", (what, csp)
    assert "script-src" not in csp, (what, csp)  # no script at all: default-src 'none'
    assert response.headers.get("x-content-type-options") == "nosniff", what
    assert response.headers.get("x-frame-options") == "SAMEORIGIN", what
    assert response.headers.get("referrer-policy") == "same-origin", what
    # each once, even where a route or Starlette set one of them too
    for name in ("content-security-policy", "x-content-type-options", "referrer-policy"):
        assert len(response.headers.get_list(name)) == 1, (what, name)


def assert_page_needs_nothing_the_policy_blocks(pages: Iterable[str]) -> None:
    for page in pages:
        assert "<script" not in page.lower()
        assert not re.search(r"<link[^>]*stylesheet", page, re.I)
        assert not re.search(r'\s(src|srcset)="(?!data:)', page)  # nothing fetched
        assert "<form" not in page.lower() and "<base" not in page.lower()
        assert "<iframe" not in page.lower() and "<object" not in page.lower()


def test_pages_error_pages_and_the_plot_carry_the_security_headers(
    history: History, bookkeeping_conn_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = client_for(bookkeeping_conn_id)
    home = client.get("/")
    plotted = client.get("/workflows/LogD")
    assert home.status_code == 200 and plotted.status_code == 200
    assert '<figure id="history-plot"' in plotted.text and "<svg" in plotted.text
    run = client.get(f"/runs/{history.runs[0].id}")
    assert run.status_code == 200
    icon = client.get("/icon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    answers = {
        "workflows page": home,
        "page with the plot": plotted,
        "run page": run,
        "icon": icon,
        "unknown run": client.get("/runs/999"),
        "unknown route": client.get("/nowhere"),
        "bad request": client.get("/runs/seven"),
        "store unavailable": client_for("cpsign_bookkeeping_nowhere").get("/"),
    }
    for what, answer in answers.items():
        assert_secured(answer, what)
    assert [answers[w].status_code for w in ("unknown run", "unknown route", "bad request")] == [
        404,
        404,
        400,
    ]
    assert answers["store unavailable"].status_code == 503
    assert_page_needs_nothing_the_policy_blocks(
        a.text for w, a in answers.items() if a.headers["content-type"].startswith("text/html")
    )

    # the redirect to the login page, too
    def anonymous() -> None:
        from fastapi import HTTPException

        raise HTTPException(status_code=401, detail="Not authenticated")

    monkeypatch.setattr(page_app, "_login_url", lambda request: "/auth/login")
    stranger = client_for(bookkeeping_conn_id, anonymous).get("/")
    assert stranger.status_code == 303
    assert_secured(stranger, "login redirect")


def test_even_an_unhandled_error_is_answered_with_the_headers() -> None:
    def crashing() -> None:  # fails outside every handler of the page
        raise RuntimeError("boom")

    app = page_app.create_app(settings=lambda: ("x", "y"), authorize=crashing)
    server = FastAPI()
    server.mount(URL_PREFIX, app)
    client = TestClient(server, raise_server_exceptions=False)
    answer = client.get(f"{URL_PREFIX}/")
    assert answer.status_code == 500
    assert_secured(answer, "server error")


def test_a_page_that_cannot_load_still_sends_the_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise ImportError("No module named 'matplotlib'")

    monkeypatch.setattr(page_app, "create_app", broken)
    server = FastAPI()
    server.mount(URL_PREFIX, plugin.LazyApp())
    answer = TestClient(server).get(f"{URL_PREFIX}/")
    assert answer.status_code == 500
    assert_secured(answer, "page that cannot load")


@pytest.mark.parametrize("run_id", [10**23, 2**63, 2**31, -1, 0])
def test_out_of_range_run_ids_are_not_found_pages(
    history: History, bookkeeping_conn_id: str, run_id: int
) -> None:
    page = client_for(bookkeeping_conn_id).get(f"/runs/{run_id}")
    assert page.status_code == 404, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "Not found" in page.text and str(run_id) in page.text
    assert_secured(page, f"run {run_id}")


def test_the_largest_run_id_the_store_holds_is_an_ordinary_unknown_run(
    history: History, bookkeeping_conn_id: str
) -> None:
    from cpsign_airflow.models_page.reader import MAX_RUN_ID

    page = client_for(bookkeeping_conn_id).get(f"/runs/{MAX_RUN_ID}")
    assert page.status_code == 404 and f"No training run {MAX_RUN_ID}" in page.text


ODD_ID = "../a/b?c=1#d e%2F"


def test_console_links_on_the_pages_encode_the_commit_set_id(
    history: History, bookkeeping_conn_id: str, bookkeeping_url: str
) -> None:
    with TrainingLedger.from_url(bookkeeping_url) as ledger:
        rid = ledger.record_pending_run("LogD", {"workflow_name": "LogD"})
        ledger.mark_committed(rid, "d" * 32, ODD_ID)
        ledger.finish_run(rid, "failed", "stopped")
    client = client_for(bookkeeping_conn_id)
    want = f"{CONSOLE}/lineage/cpsign/commit-sets/..%2Fa%2Fb%3Fc%3D1%23d%20e%252F"
    for path in (f"/runs/{rid}", "/workflows/LogD"):
        page = client.get(path)
        assert page.status_code == 200, page.text
        links = re.findall(r'<a class="console" href="([^"]*)"', page.text)
        assert want in links, (path, links)
        assert not [link for link in links if "/../" in link or "?" in link or "#" in link]
