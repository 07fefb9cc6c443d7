"""Without matplotlib (the ``chart`` extra) the workflow page works and says why there is no plot."""

from __future__ import annotations

import logging

import pytest
from test_pages import client_for, history, rows  # noqa: F401 (history: the fixture)

from cpsign_airflow.models_page import charts
from cpsign_airflow.testing.model_history import History


@pytest.fixture
def no_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)  # import fails
    charts.available.cache_clear()
    yield
    charts.available.cache_clear()


def test_the_page_shows_a_note_instead_of_the_plot(
    no_matplotlib: None,
    history: History,  # noqa: F811
    bookkeeping_conn_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger=charts.__name__):
        page = client_for(bookkeeping_conn_id).get("/workflows/LogD")
    assert page.status_code == 200, page.text
    assert len(rows(page.text, "runs")) == len(history.of("LogD"))
    assert 'id="history-plot"' not in page.text
    assert 'id="plot-unavailable"' in page.text
    assert "pip install &#39;cpsign-airflow[chart]&#39;" in page.text
    assert "cpsign-airflow[chart]" in caplog.text
