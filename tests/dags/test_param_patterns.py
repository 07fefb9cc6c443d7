"""The bundled DAGs' Param patterns refuse a value ending in a line break (issue #22)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dags():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    return bag.dags


def _patterned(dags) -> list[tuple[str, str, object]]:
    """``(dag_id, param name, Param)`` of every Param with an anchored pattern."""
    return [
        (dag_id, name, dag.params.get_param(name))
        for dag_id, dag in sorted(dags.items())
        for name in dag.params
        if str(dag.params.get_param(name).schema.get("pattern", "")).startswith("^")
    ]


def test_patterned_params_refuse_a_trailing_newline(dags):
    from airflow.sdk.definitions.param import ParamValidationError

    patterned = _patterned(dags)
    names = {(dag_id, name) for dag_id, name, _ in patterned}
    assert {("cpsign_setup", "workflow_name"), ("cpsign_training", "workflow_name")} <= names
    assert {("cpsign_training", "model_name"), ("cpsign_training", "smi_filename")} <= names
    for dag_id, name, param in patterned:
        good = param.value
        assert param.resolve(value=good) == good, (dag_id, name)
        with pytest.raises(ParamValidationError):
            param.resolve(value=good + "\n")


def test_patterned_params_mean_the_same_in_ecmascript(dags):
    if not shutil.which("node"):
        pytest.skip("needs node to check the patterns as ECMAScript regexes")
    pairs = [(param.schema["pattern"], param.value) for _, _, param in _patterned(dags)]
    script = """
const pairs = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const bad = [];
for (const [pattern, sample] of pairs) {
  for (const flags of ['', 'u', 'v']) {
    try {
      const r = new RegExp(pattern, flags);
      if (!r.test(sample) || r.test(sample + '\\n')) bad.push([pattern, flags]);
    } catch (e) { bad.push([pattern, flags, e.message]); }
  }
}
console.log(JSON.stringify(bad));
"""
    out = subprocess.run(
        ["node", "-e", script], input=json.dumps(pairs), capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == []
