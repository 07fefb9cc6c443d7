"""The bundled chain with real CPSign on real data, through the local pachd.

The five CPSign stages and ingestion run as the bundled specs' own commands (the local
pachd runs them per datum); the data is FreeSolv (642 molecules with measured hydration
free energies, see ``cpsign_airflow.demo_data``). On the held-out split, the observed
error rate of a conformal predictor must stay within ``1 - confidence + TOLERANCE``:
that is the conformal guarantee, which a fake model cannot meet.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pachyderm_sdk import Client
from pachyderm_sdk.api import pfs, pps

from cpsign_airflow import demo_data
from cpsign_airflow.cpsign import render_workflow_specs
from cpsign_airflow.cpsign.configuration import load_example, validate_configuration
from cpsign_airflow.cpsign.pipelines import source_spec_vars
from cpsign_airflow.cpsign.source_db import SourceDatabase
from cpsign_airflow.devkit.local import create_stage_secrets, install_cpsign, stage_environment
from cpsign_airflow.testing.pachd import LocalPachd

#: 128 test molecules: a binomial error rate of 0.1 has a standard deviation of ~0.027,
#: so 0.08 is three of them; a model that ignores its inputs fails this by far.
TOLERANCE = 0.08
CLASS_TABLE = "freesolv_class"


@pytest.fixture(scope="module")
def cpsign_launcher() -> Path:
    return install_cpsign()


@pytest.fixture(scope="module")
def source_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FreeSolv as the regression table, and a two-class table (expt below/above median)."""
    import sqlite3

    path = tmp_path_factory.mktemp("source") / "freesolv.db"
    rows = demo_data.freesolv_rows()
    demo_data.load_source_database(path, rows)
    median = statistics.median(float(r["expt"]) for r in rows)
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE {CLASS_TABLE} (canonical_smiles TEXT, solvation TEXT)")
        db.executemany(
            f"INSERT INTO {CLASS_TABLE} VALUES (?, ?)",
            [(r["smiles"], "low" if float(r["expt"]) <= median else "high") for r in rows],
        )
    return path


@pytest.fixture
def pachd(cpsign_launcher: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalPachd]:
    for key, value in stage_environment(cpsign_launcher).items():
        monkeypatch.setenv(key, value)
    with LocalPachd() as server:
        yield server


def run_chain(pachd: LocalPachd, configuration: dict[str, Any]) -> dict[str, Any]:
    """Create the bundled pipelines, commit the configuration, wait; return what came out."""
    workflow = configuration["workflow_name"]
    client = Client.from_pachd_address(pachd.address)
    create_stage_secrets(pachd.address, workflow)
    client.pfs.create_repo(repo=pfs.Repo(name=f"{workflow}-config"))
    database = validate_configuration(configuration)["preprocessing"]["database"]
    pinned = source_spec_vars(SourceDatabase("sqlite", db_name=database["db_name"]))
    for _, spec in render_workflow_specs(workflow, train_parallelism=2, **pinned):
        client.pps.create_pipeline_v2(create_pipeline_request_json=json.dumps(spec))
    with client.pfs.commit(branch=pfs.Branch.from_uri(f"{workflow}-config@master")) as commit:
        commit.put_file_from_bytes("/configuration.json", json.dumps(configuration).encode())
    jobs = list(client.pps.inspect_job_set(job_set=pps.JobSet(id=commit.id), wait=True))
    states = {j.job.pipeline.name: (pps.JobState(j.state).name, j.reason) for j in jobs}
    failed = {name: s for name, s in states.items() if s[0] != "JOB_SUCCESS"}
    if failed:
        logs = [
            f"{m.pipeline_name}: {m.message}"
            for j in jobs
            if j.job.pipeline.name in failed
            for m in client.pps.get_logs(job=j.job, tail=30)
        ]
        raise AssertionError(f"jobs failed: {failed}\n" + "\n".join(logs))

    def read(repo: str, path: str) -> bytes:
        file = pfs.File(commit=pfs.Commit(repo=pfs.Repo(name=repo), id=commit.id), path=path)
        return b"".join(m.value for m in client.pfs.get_file(file=file))

    name = validate_configuration(configuration)["train"]["model-name"]
    return {
        "jobs": {j.job.pipeline.name: j for j in jobs},
        "metrics": json.loads(read(f"{workflow}-validate", "/metrics.json")),
        "model": read(f"{workflow}-aggregate", f"/model/{name}.jar"),
        "published": json.loads(read(f"{workflow}-publish", "/published.json")),
        "read": read,
    }


def sectioned(source_db: Path, workflow: str, ptype: int) -> dict[str, Any]:
    """The hERG-style (sectioned) example, pointed at the two-class FreeSolv table."""
    config = load_example("herg-sectioned")
    config["workflow_name"] = workflow
    config.pop("crossvalidate", None)  # test_grid_search_... keeps a (small) grid
    config["preprocessing"]["database"] = {
        "dialect": "sqlite", "host": "-", "user": "-", "db_name": str(source_db)
    }  # fmt: skip
    config["preprocessing"]["query"] = {
        "database_query": f"SELECT canonical_smiles, solvation FROM {CLASS_TABLE}{{}};",
        "query_limit": None,
        "smi_columns": ["canonical_smiles", "solvation"],
        "smi_filename": "train.tsv",
    }
    config["precompute"] = {"endpoint": "solvation", "labels": ["low", "high"]}
    config["train"].update({"ptype": ptype, "nr-models": 4, "model-name": f"{workflow}_model"})
    config["train"]["parallelism"] = {"splits_per_job": 2}
    config["train"].update({"impl": "liblinear", "cost": 1})
    config["train"].pop("gamma", None)
    if ptype == 5:
        config["train"].pop("nonconf-measure", None)
    config["validation"] = {"confidences": [0.8, 0.9]}
    return config


def flat(source_db: Path) -> dict[str, Any]:
    """The LogD-style (flat) example, pointed at FreeSolv's regression table."""
    config = load_example("logd-flat")
    config["workflow_name"] = "FreeSolvFlat"
    config["database"] = {"dialect": "sqlite", "host": "-", "user": "-", "db_name": str(source_db)}
    config["query"] = {
        "database_query": "SELECT canonical_smiles, expt FROM freesolv{};",
        "query_limit": None,
        "smi_columns": ["canonical_smiles", "expt"],
        "smi_filename": "freesolv.tsv",
    }
    config["cpsign"]["model-name"] = "FreeSolvFlat"
    return config


def assert_conformal(metrics: dict[str, Any]) -> None:
    for confidence, error_rate in metrics["error_rate"].items():
        assert error_rate <= 1 - float(confidence) + TOLERANCE, (confidence, metrics)


def test_regression_flat_layout(pachd: LocalPachd, source_db: Path) -> None:
    out = run_chain(pachd, flat(source_db))
    metrics = out["metrics"]
    assert metrics["ptype"] == 2 and metrics["predicted"] > 100
    assert_conformal(metrics)
    widths = metrics["median_interval_width"]
    assert 0 < widths["0.8"] < widths["0.9"]  # wider intervals for higher confidence
    assert out["model"][:2] == b"PK"  # a CPSign model jar
    assert out["jobs"]["FreeSolvFlat-train"].data_total == 5  # one datum per split
    assert out["published"]["published"] is False  # no model store configured


@pytest.mark.parametrize("ptype", [1, 5])
def test_classification_sectioned_layout(pachd: LocalPachd, source_db: Path, ptype: int) -> None:
    workflow = f"FreeSolvClass{ptype}"
    out = run_chain(pachd, sectioned(source_db, workflow, ptype))
    metrics = out["metrics"]
    assert metrics["ptype"] == ptype and metrics["predicted"] > 100
    assert out["jobs"][f"{workflow}-train"].data_total == 2  # 4 splits, 2 per datum
    if ptype == 1:
        assert_conformal(metrics)
        assert 0 < metrics["single_label_share"]["0.8"] <= 1
    else:  # Venn-ABERS: calibrated probabilities, far better than a coin
        assert metrics["accuracy"] > 0.6 and metrics["brier"] < 0.25


def test_grid_search_then_training_with_the_best_parameters(
    pachd: LocalPachd, source_db: Path
) -> None:
    """The hERG-style chain: a crossvalidate grid is searched, train uses the winner."""
    config = sectioned(source_db, "FreeSolvTuned", 1)
    config["crossvalidate"] = {"folds": 3, "gridsearch": {"cost-range": [-4, 4, 4]}}
    out = run_chain(pachd, config)
    ranking = json.loads(out["read"]("FreeSolvTuned-precompute", "/tune/results.json"))
    best = json.loads(out["read"]("FreeSolvTuned-precompute", "/tune/best.json"))
    costs = {r["params"]["cost"] for r in ranking["results"]}
    assert costs == {2.0**-4, 1.0, 2.0**4}  # the three grid points
    assert best == ranking["results"][0]["params"]
    client = Client.from_pachd_address(pachd.address)
    job = out["jobs"]["FreeSolvTuned-train"].job
    logs = [m.message for m in client.pps.get_logs(job=job)]
    assert any("with tuned" in line and "cost" in line for line in logs), logs
    assert_conformal(out["metrics"])
