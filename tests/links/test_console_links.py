"""Pachyderm Console links: every id is one percent-encoded path segment."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import pytest

from cpsign_airflow.hooks.pachyderm import PachdAddress, PachydermHook, console_link
from cpsign_airflow.links import pachyderm as links

CONSOLE = "https://console.lab"
ODD = ["a/b", "x?y=1", "c#frag", "with space", "../up", "100%"]


def segments(url: str) -> list[str]:
    parts = urlsplit(url)
    assert not parts.query and not parts.fragment, url
    assert parts.path.startswith("/lineage/"), url
    return [unquote(s) for s in parts.path.removeprefix("/lineage/").split("/")]


@pytest.mark.parametrize("odd", ODD)
def test_every_id_stays_in_its_own_path_segment(odd: str) -> None:
    url = console_link(CONSOLE + "/", odd, "repos", odd, "commit", odd)
    assert segments(url) == [odd, "repos", odd, "commit", odd]
    assert " " not in url


def test_plain_ids_are_unchanged_and_no_console_is_no_link() -> None:
    assert console_link(CONSOLE, "default", "pipelines", "LogD-train") == (
        f"{CONSOLE}/lineage/default/pipelines/LogD-train"
    )
    assert console_link(None, "default", "commit-sets", "x") is None
    assert console_link("", "default", "commit-sets", "x") is None


def test_the_hooks_links_encode_repo_pipeline_commit_and_project() -> None:
    hook = PachydermHook("pachyderm_unused")
    hook._address = PachdAddress(host="pachd", project="my project", console_url=CONSOLE)
    commit = hook.console_commit_url("repo/x", "c?1#2")
    assert commit == f"{CONSOLE}/lineage/my%20project/repos/repo%2Fx/commit/c%3F1%232"
    assert segments(hook.console_pipeline_url("p q", project="a/b")) == ["a/b", "pipelines", "p q"]
    assert segments(hook.console_commit_set_url("s#1")) == ["my project", "commit-sets", "s#1"]


@pytest.mark.parametrize(
    ("pushed", "shown"),
    [
        (
            f"{CONSOLE}/lineage/default/commit-sets/a%2Fb",
            f"{CONSOLE}/lineage/default/commit-sets/a%2Fb",
        ),
        ("http://console:4000/lineage/x", "http://console:4000/lineage/x"),
        ("javascript:alert(1)", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_the_operator_link_shows_only_web_urls(monkeypatch, pushed, shown) -> None:
    asked = []

    def get_value(*, key, ti_key):
        asked.append(key)
        return pushed

    monkeypatch.setattr(links.XCom, "get_value", get_value)
    assert links.PachydermConsoleLink().get_link(None, ti_key=object()) == shown
    assert asked == [links.CONSOLE_URL_XCOM_KEY]
