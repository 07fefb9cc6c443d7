"""The stand-in chain on the local pachd, driven through PachydermHook over real gRPC."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest

from cpsign_airflow.cpsign import load_example, render_workflow_specs, validate_configuration
from cpsign_airflow.testing.standins import MANIFEST, configure_local_pachd


@pytest.fixture
def hook(local_pachd, monkeypatch):
    from cpsign_airflow.hooks.pachyderm import PachydermHook

    monkeypatch.setenv("AIRFLOW_CONN_PACHYDERM_DEFAULT", local_pachd.address)
    hook = PachydermHook(retry_backoff=0.01, retry_backoff_max=0.05)
    yield hook
    hook.close()


def _deploy(hook, pachd, workflow: str) -> dict[str, str]:
    names = configure_local_pachd(pachd, workflow, duration=0.01)
    hook.ensure_repo(f"{workflow}-config")
    for _source, spec in render_workflow_specs(workflow):
        hook.create_or_update_pipeline(spec)
    return names


def _run(hook, workflow: str, config: dict) -> tuple[str, dict[str, dict]]:
    commit = hook.put_file(f"{workflow}-config", "/configuration.json", data=json.dumps(config))
    hook.wait_commit_set(commit, timeout=60)
    jobs = {job["pipeline"]: job for job in hook.list_jobs(commit)}
    return commit, jobs


def _herg(**train) -> dict:
    config = load_example("herg-sectioned")
    config["train"].update(train)
    return config


def test_full_chain_produces_a_model_that_tracks_the_configuration(hook, local_pachd):
    names = _deploy(hook, local_pachd, "hERG")
    commit, jobs = _run(hook, "hERG", _herg())
    assert {jobs[name]["state"] for name in names.values()} == {"JOB_SUCCESS"}, jobs
    # 10 models in groups of 2 -> five train datums (cross of 5 params x 1 precomputed)
    assert jobs["hERG-train"]["data_total"] == 5

    listing = {e["path"] for e in hook.list_files("hERG-ingestion", commit, "/training")}
    assert listing == {f"/training/params-{n}.txt" for n in range(1, 6)}
    params = hook.read_file("hERG-ingestion", commit, "/training/params-3.txt").decode()
    assert "--splits 5,6" in params and "--model-out /pfs/out/models/hERG_acp-3.jar" in params
    data = hook.read_file("hERG-ingestion", commit, "/herg_training_data.smi").decode()
    assert data.splitlines()[0] == "canonical_smiles\therg_class"

    models = {e["path"] for e in hook.list_files("hERG-train", commit, "/models")}
    assert models == {f"/models/hERG_acp-{n}.jar" for n in range(1, 6)}
    model = hook.read_file("hERG-aggregate", commit, "/model/hERG_acp.jar")
    with zipfile.ZipFile(io.BytesIO(model)) as archive:
        manifest = json.loads(archive.read(MANIFEST))
        assert len(json.loads(archive.read("partial-models.json"))) == 5
    normalised = validate_configuration(_herg())
    from cpsign_airflow.cpsign import configuration_sha256

    assert manifest["configuration_sha256"] == configuration_sha256(normalised)
    published = json.loads(hook.read_file("hERG-publish", commit, "/published.json"))
    assert published["standin"] is True
    assert published["model_sha256"] == hashlib.sha256(model).hexdigest()
    assert published["url"].startswith("https://modelweb.invalid/")

    # Same configuration again: same model bytes; a changed one: a different model.
    commit_same, _ = _run(hook, "hERG", _herg())
    same = hook.read_file("hERG-aggregate", commit_same, "/model/hERG_acp.jar")
    assert same == model
    commit_changed, jobs = _run(hook, "hERG", _herg(cost=32))
    assert jobs["hERG-publish"]["state"] == "JOB_SUCCESS"
    changed = hook.read_file("hERG-aggregate", commit_changed, "/model/hERG_acp.jar")
    assert hashlib.sha256(changed).hexdigest() != hashlib.sha256(model).hexdigest()


def test_flat_logd_configuration_runs_the_chain(hook, local_pachd):
    _deploy(hook, local_pachd, "LogD")
    commit, jobs = _run(hook, "LogD", load_example("logd-flat"))
    assert jobs["LogD-publish"]["state"] == "JOB_SUCCESS", jobs
    assert jobs["LogD-train"]["data_total"] == 5  # nr-models 5, one split per job
    published = json.loads(hook.read_file("LogD-publish", commit, "/published.json"))
    assert published["model_name"] == "LogD_full_split"


@pytest.mark.parametrize("stage", ["ingestion", "precompute", "train", "aggregate", "publish"])
def test_simulated_failure_fails_the_named_stage(hook, local_pachd, stage):
    _deploy(hook, local_pachd, "hERG")
    config = _herg()
    config["advanced"] = {"simulate_failure": stage}
    _commit, jobs = _run(hook, "hERG", config)
    failed = jobs[f"hERG-{stage}"]
    assert failed["state"] == "JOB_FAILURE"
    assert f"simulated failure of stage '{stage}'" in failed["reason"]
    order = ["ingestion", "precompute", "train", "aggregate", "publish"]
    for before in order[: order.index(stage)]:
        assert jobs[f"hERG-{before}"]["state"] == "JOB_SUCCESS"
    for after in order[order.index(stage) + 1 :]:
        assert jobs[f"hERG-{after}"]["state"] == "JOB_UNRUNNABLE"


def test_invalid_configuration_fails_ingestion_listing_every_problem(hook, local_pachd):
    _deploy(hook, local_pachd, "hERG")
    config = _herg(ptype=4)
    config["preprocessing"]["database"]["password"] = "hunter2"
    _commit, jobs = _run(hook, "hERG", config)
    reason = jobs["hERG-ingestion"]["reason"]
    assert jobs["hERG-ingestion"]["state"] == "JOB_FAILURE"
    assert "train.ptype" in reason and "preprocessing.database.password" in reason
    assert "hunter2" not in reason
