"""docs/deployment.md: its labels, connection strings, Helm values and checkable commands.

The guide marks each shell block *Checked here* or *Untested here*; this file is what
makes the first label true for the parts that are not already covered by test_compose.py.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "deployment.md"
BIN = Path(sys.executable).parent
LABELS = ("*Checked here*", "*Run by `make compose-test`*", "*Untested here*")


def blocks(language: str | None = None) -> list[tuple[str, str, str]]:
    """(language, body, text since the previous block) for each fenced block."""
    found = []
    previous_end = 0
    text = GUIDE.read_text()
    for match in re.finditer(r"^[ \t]*```(\w*)\n(.*?)^[ \t]*```[ \t]*$", text, re.M | re.S):
        lang, body = match.group(1), match.group(2)
        before = text[previous_end : match.start()]
        previous_end = match.end()
        if language is None or lang == language:
            found.append((lang, body, before))
    return found


def shell_lines(body: str) -> list[str]:
    """Commands of a shell block, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", body)
    lines = [re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_every_shell_block_says_whether_it_was_checked() -> None:
    shell = blocks("bash")
    assert len(shell) >= 10
    for _, body, before in shell:
        # The label belongs to the paragraph that introduces the block.
        paragraph = before.strip().split("\n\n")[-1]
        assert any(label in paragraph for label in LABELS), f"no label before:\n{body}"
    assert not [b for lang, b, _ in blocks() if lang in ("", "sh", "shell", "console")]


def checked_blocks() -> list[str]:
    return [
        body
        for _, body, before in blocks("bash")
        if "*Checked here*" in before.strip().split("\n\n")[-1]
    ]


# -------------------------------------------------------------------- connections

CONN = re.compile(r"AIRFLOW_CONN_([A-Z0-9_]+)=(?:'([^']*)'|(\S+))")


def guide_connections() -> list[tuple[str, str]]:
    found = []
    for _, body, _ in blocks("bash"):
        for match in CONN.finditer(body):
            found.append((match.group(1).lower(), match.group(2) or match.group(3)))
    return found


def test_guide_has_the_three_connections() -> None:
    assert {conn_id for conn_id, _ in guide_connections()} == {
        "pachyderm_default",
        "cpsign_bookkeeping",
        "kubernetes_default",
    }


@pytest.mark.parametrize(
    ("conn_id", "value"),
    guide_connections(),
    ids=[f"{c}-{i}" for i, (c, _) in enumerate(guide_connections())],
)
def test_guide_connection_resolves(
    conn_id: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Set as the environment variable, looked up through Airflow, resolved by the code."""
    from airflow.sdk import BaseHook

    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)
    conn = BaseHook.get_connection(conn_id)
    if conn_id == "pachyderm_default":
        from cpsign_airflow.hooks.pachyderm import address_from_connection

        assert conn.conn_type == "pachyderm"  # what `airflow connections test` knows (#25)
        address = address_from_connection(conn)
        assert address.tls and address.token == "YOUR_TOKEN" and address.port == 30650
        assert address.host.startswith("pachd.")
    elif conn_id == "cpsign_bookkeeping":
        from airflow.providers.mysql.hooks.mysql import MySqlHook

        assert conn.conn_type == "mysql"
        uri = MySqlHook(mysql_conn_id=conn_id).get_uri()
        assert uri == "mysql://cpsign:PASSWORD@mysql.example.org:3306/cpsign"
    else:
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

        assert conn.conn_type == "kubernetes"
        hook = KubernetesHook(conn_id=conn_id)
        assert hook._get_field("in_cluster") is True
        assert hook.get_namespace() == "pachyderm"


# -------------------------------------------------------------------- Helm values


def test_helm_values() -> None:
    (values,) = [yaml.safe_load(body) for _, body, _ in blocks("yaml")]
    assert values["images"]["airflow"]["repository"]
    dockerfile = (REPO / "Dockerfile").read_text()
    assert f"ARG AIRFLOW_VERSION={values['airflowVersion']}\n" in dockerfile
    assert values["triggerer"]["enabled"] is True
    assert values["config"]["operators"]["default_deferrable"] == "True"
    envs = {entry["envName"]: entry for entry in values["secret"]}
    assert set(envs) == {f"AIRFLOW_CONN_{c.upper()}" for c, _ in guide_connections()}
    for name, entry in envs.items():
        assert entry["secretKey"] == name
    # ...and the kubectl command creates that Secret with those keys.
    create = next(
        line
        for body in [b for _, b, _ in blocks("bash")]
        for line in shell_lines(body)
        if line.startswith("kubectl create secret generic")
    )
    words = shlex.split(create)
    assert words[4] == {e["secretName"] for e in envs.values()}.pop()
    keys = {w.split("=", 1)[1].split("=", 1)[0] for w in words if w.startswith("--from-literal=")}
    assert keys == set(envs)


def test_rbac_manifest_is_where_the_guide_says() -> None:
    assert "deploy/rbac.yaml" in GUIDE.read_text()
    assert (REPO / "deploy" / "rbac.yaml").is_file()


# -------------------------------------------------------- the commands marked checked


def test_checked_commands(compose_bin: Path, tmp_path: Path) -> None:
    """Every command in a *Checked here* block is run here, or its subject is checked."""
    ran = []
    for body in checked_blocks():
        for line in shell_lines(body):
            words = shlex.split(line)
            if words[0] == "docker-compose":
                env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
                result = subprocess.run(
                    [str(compose_bin), *words[1:]],
                    cwd=REPO,
                    env=env,
                    capture_output=True,
                    text=True,
                )
                assert result.returncode == 0, f"{line}: {result.stderr}"
            elif words[0].startswith("AIRFLOW_CONN_"):
                pass  # resolved by test_guide_connection_resolves
            elif words[:3] == ["python", "-m", "cpsign_airflow.bookkeeping"]:
                # Against a real MySQL it is untested here; its options exist.
                result = subprocess.run(
                    [sys.executable, *words[1:4], "--help"], capture_output=True, text=True
                )
                assert result.returncode == 0, result.stderr
                assert all(w in result.stdout for w in words[4:] if w.startswith("--"))
            elif "airflow" in words and words[0].startswith("AIRFLOW__"):
                assignments = dict(w.split("=", 1) for w in words[: words.index("airflow")])
                env = {**os.environ, **assignments}
                result = subprocess.run(
                    [str(BIN / "airflow"), *words[words.index("airflow") + 1 :]],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                assert result.returncode == 0, result.stderr
                assert result.stdout.strip() == "True"
            else:
                pytest.fail(
                    f"a *Checked here* command this test does not know how to check: {line}"
                )
            ran.append(line)
    assert len(ran) == 9, ran


def test_untested_json_arguments_are_json() -> None:
    """The Variable values in *Untested here* commands at least parse."""
    values: list[Any] = []
    for _, body, _ in blocks("bash"):
        for line in shell_lines(body):
            words = shlex.split(line)
            if words[:3] == ["airflow", "variables", "set"] and words[4].startswith("{"):
                values.append(json.loads(words[4]))
    assert values and all(isinstance(v, dict) for v in values)
