"""The quality gate: quality_verdict (pure), the gate task, and the deployment it can stop."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace

import pytest

from cpsign_airflow.cpsign.quality import HELD_BACK, PASSED, quality_verdict

REGRESSION = {
    "model_name": "FreeSolv_acp",
    "ptype": 2,
    "test_molecules": 128,
    "predicted": 106,
    "confidences": [0.8, 0.9],
    "error_rate": {"0.8": 0.142, "0.9": 0.047},
    "median_interval_width": {"0.8": 3.04, "0.9": 5.76},
    "efficiency": {"0.8": 3.04, "0.9": 5.76},
}
CLASSIFICATION = {
    "model_name": "hERG_acp",
    "ptype": 1,
    "confidences": [0.8, 0.9],
    "error_rate": {"0.8": 0.18, "0.9": 0.09},
    "single_label_share": {"0.8": 0.7, "0.9": 0.4},
    "efficiency": {"0.8": 0.7, "0.9": 0.4},
}
VENN_ABERS = {"model_name": "hERG_vap", "ptype": 5, "accuracy": 0.81, "brier": 0.14}


def changed(metrics: dict, **updates: dict) -> dict:
    out = copy.deepcopy(metrics)
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key].update(value)
        else:
            out[key] = value
    return out


# ------------------------------------------------------------------ validity


def test_valid_regression_without_previous_passes_and_names_the_closest_bound():
    verdict, reason = quality_verdict(REGRESSION, None, 0.05, 0.1)
    assert verdict == PASSED
    # 0.142 vs bound 0.25 at 0.8; 0.047 vs 0.15 at 0.9: 0.9 is the closer one.
    assert "0.047" in reason and "0.9" in reason and "0.15" in reason
    assert "no previous accepted model" in reason


def test_error_rate_over_the_tolerance_is_held_back_with_confidence_value_and_bound():
    metrics = changed(REGRESSION, error_rate={"0.9": 0.16})
    verdict, reason = quality_verdict(metrics, None, 0.05, 0.1)
    assert verdict == HELD_BACK
    assert "error rate 0.16 at confidence 0.9 exceeds the bound 0.15" in reason
    assert "0.8" not in reason.split(";")[0]


def test_error_rate_exactly_at_the_bound_passes():
    metrics = changed(REGRESSION, error_rate={"0.8": 0.25, "0.9": 0.15})
    assert quality_verdict(metrics, None, 0.05, 0.1)[0] == PASSED


def test_tolerance_zero_allows_no_excess():
    metrics = changed(REGRESSION, error_rate={"0.9": 0.101})
    assert quality_verdict(metrics, None, 0.0, 0.1)[0] == HELD_BACK
    assert quality_verdict(metrics, None, 0.01, 0.1)[0] == PASSED


def test_every_invalid_confidence_is_listed():
    metrics = changed(REGRESSION, error_rate={"0.8": 0.4, "0.9": 0.3})
    verdict, reason = quality_verdict(metrics, None, 0.05, 0.1)
    assert verdict == HELD_BACK
    assert "at confidence 0.8" in reason and "at confidence 0.9" in reason


def test_classification_validity_is_checked_too():
    metrics = changed(CLASSIFICATION, error_rate={"0.8": 0.3})
    verdict, reason = quality_verdict(metrics, None, 0.05, 0.1)
    assert verdict == HELD_BACK and "error rate 0.3 at confidence 0.8" in reason


@pytest.mark.parametrize(
    "error_rate", [{"0.8": "high"}, {"0.8": float("nan")}, {"eighty": 0.1}, {"0.8": None}, [0.1]]
)
def test_unreadable_error_rates_hold_the_model_back(error_rate):
    metrics = changed(REGRESSION, error_rate=None)
    metrics["error_rate"] = error_rate
    verdict, reason = quality_verdict(metrics, None, 0.05, 0.1)
    assert verdict == HELD_BACK and "unreadable" in reason


# ------------------------------------------------------------------ efficiency


def test_regression_width_may_grow_by_the_margin_only():
    previous = changed(REGRESSION, efficiency={"0.8": 3.0, "0.9": 5.0})
    ok = changed(REGRESSION, efficiency={"0.8": 3.3, "0.9": 5.5})  # exactly +10%
    assert quality_verdict(ok, previous, 0.05, 0.1)[0] == PASSED

    worse = changed(REGRESSION, efficiency={"0.8": 3.0, "0.9": 5.8})
    verdict, reason = quality_verdict(worse, previous, 0.05, 0.1)
    assert verdict == HELD_BACK
    assert "median interval width 5.8 at confidence 0.9 exceeds the bound 5.5" in reason
    assert "previous 5" in reason and "10%" in reason


def test_narrower_regression_intervals_pass():
    previous = changed(REGRESSION, efficiency={"0.8": 4.0, "0.9": 7.0})
    verdict, reason = quality_verdict(REGRESSION, previous, 0.05, 0.1)
    assert verdict == PASSED and "<= the bound" in reason


def test_classification_single_label_share_may_drop_by_the_margin_only():
    previous = changed(CLASSIFICATION, efficiency={"0.8": 0.8, "0.9": 0.5})
    ok = changed(CLASSIFICATION, efficiency={"0.8": 0.72, "0.9": 0.45})  # exactly -10%
    assert quality_verdict(ok, previous, 0.05, 0.1)[0] == PASSED
    higher = changed(CLASSIFICATION, efficiency={"0.8": 0.95, "0.9": 0.9})  # better, not worse
    assert quality_verdict(higher, previous, 0.05, 0.1)[0] == PASSED

    worse = changed(CLASSIFICATION, efficiency={"0.8": 0.6})
    verdict, reason = quality_verdict(worse, previous, 0.05, 0.1)
    assert verdict == HELD_BACK
    assert "single-label share 0.6 at confidence 0.8 is below the bound 0.72" in reason


def test_margin_zero_allows_no_worsening():
    previous = changed(REGRESSION, efficiency={"0.8": 3.04, "0.9": 5.75})
    assert quality_verdict(REGRESSION, previous, 0.05, 0.0)[0] == HELD_BACK
    assert quality_verdict(REGRESSION, REGRESSION, 0.05, 0.0)[0] == PASSED


def test_only_confidences_in_common_are_compared():
    previous = {**REGRESSION, "efficiency": {"0.95": 1.0}}
    verdict, reason = quality_verdict(REGRESSION, previous, 0.05, 0.1)
    assert verdict == PASSED and "no confidence in common" in reason
    previous = {**REGRESSION, "efficiency": {"0.8": 1.0, "0.95": 1.0}}
    verdict, reason = quality_verdict(REGRESSION, previous, 0.05, 0.1)
    assert verdict == HELD_BACK and "at confidence 0.8" in reason and "width 5.76" not in reason


def test_another_predictor_type_is_no_baseline():
    verdict, reason = quality_verdict(REGRESSION, CLASSIFICATION, 0.05, 0.1)
    assert verdict == PASSED and "ptype 1" in reason and "not compared" in reason


def test_previous_without_efficiency_is_not_compared():
    verdict, reason = quality_verdict(REGRESSION, {"standin": True}, 0.05, 0.1)
    assert verdict == PASSED and "no efficiency to compare" in reason


def test_invalid_and_less_efficient_lists_both_failures():
    previous = changed(REGRESSION, efficiency={"0.8": 1.0})
    metrics = changed(REGRESSION, error_rate={"0.8": 0.5})
    verdict, reason = quality_verdict(metrics, previous, 0.05, 0.1)
    assert verdict == HELD_BACK
    assert "error rate 0.5" in reason and "median interval width 3.04" in reason


# ------------------------------------------------------------------ Venn-ABERS


def test_venn_abers_passes_on_validity_and_says_so():
    verdict, reason = quality_verdict(VENN_ABERS, None, 0.05, 0.1)
    assert verdict == PASSED
    assert "Venn-ABERS reports no error rate" in reason


def test_venn_abers_brier_may_worsen_by_the_margin_only():
    previous = {**VENN_ABERS, "brier": 0.1}
    assert quality_verdict({**VENN_ABERS, "brier": 0.11}, previous, 0.05, 0.1)[0] == PASSED
    assert quality_verdict({**VENN_ABERS, "brier": 0.05}, previous, 0.05, 0.1)[0] == PASSED
    verdict, reason = quality_verdict({**VENN_ABERS, "brier": 0.12}, previous, 0.05, 0.1)
    assert verdict == HELD_BACK
    assert "Brier score 0.12 exceeds the bound 0.11" in reason
    assert "Venn-ABERS reports no error rate" in reason


def test_venn_abers_without_ptype_is_recognised_by_its_brier_score():
    metrics = {"accuracy": 0.8, "brier": 0.3}
    verdict, reason = quality_verdict(metrics, {"brier": 0.1}, 0.05, 0.1)
    assert verdict == HELD_BACK and "Brier score 0.3" in reason


# ------------------------------------------------------------------ nothing to judge


@pytest.mark.parametrize(
    "metrics",
    [
        None,
        {"standin": True, "model": "/pfs/aggregate/model/x.jar"},
        {},
        {"model_name": "x", "ptype": 2, "test_molecules": 0},
    ],
)
def test_metrics_without_validity_figures_pass_with_no_validity_metrics(metrics):
    for previous in (None, REGRESSION):
        verdict, reason = quality_verdict(metrics, previous, 0.05, 0.1)
        assert verdict == PASSED and "no validity metrics" in reason


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "0.1", None, True])
def test_settings_out_of_range_are_refused(bad):
    with pytest.raises(ValueError, match="validity_tolerance"):
        quality_verdict(REGRESSION, None, bad, 0.1)
    with pytest.raises(ValueError, match="efficiency_margin"):
        quality_verdict(REGRESSION, None, 0.05, bad)


def test_verdict_is_pure():
    metrics, previous = copy.deepcopy(REGRESSION), copy.deepcopy(CLASSIFICATION)
    first = quality_verdict(metrics, previous, 0.05, 0.1)
    assert first == quality_verdict(metrics, previous, 0.05, 0.1)
    assert (metrics, previous) == (REGRESSION, CLASSIFICATION)


# ------------------------------------------------------------------ settings


def test_settings_defaults_and_overrides(monkeypatch):
    from cpsign_airflow.workflow import settings

    monkeypatch.delenv("AIRFLOW__CPSIGN__VALIDITY_TOLERANCE", raising=False)
    monkeypatch.delenv("AIRFLOW__CPSIGN__EFFICIENCY_MARGIN", raising=False)
    loaded = settings.load()
    assert (loaded.validity_tolerance, loaded.efficiency_margin) == (0.05, 0.1)
    monkeypatch.setenv("AIRFLOW__CPSIGN__VALIDITY_TOLERANCE", "0.02")
    monkeypatch.setenv("AIRFLOW__CPSIGN__EFFICIENCY_MARGIN", "0")
    loaded = settings.load()
    assert (loaded.validity_tolerance, loaded.efficiency_margin) == (0.02, 0.0)
    monkeypatch.setenv("AIRFLOW__CPSIGN__EFFICIENCY_MARGIN", "-1")
    with pytest.raises(ValueError, match="efficiency_margin"):
        settings.load()


# ------------------------------------------------------------------ tasks


def test_read_metrics_from_the_validate_repo(pachd, pachyderm_conn, unique_name, cpsign_caplog):
    """Through PachydermHook against the (local) pachd, as record_outcome reads them."""
    from cpsign_airflow.hooks.pachyderm import PachydermHook
    from cpsign_airflow.workflow.training import read_metrics

    hook = PachydermHook(pachyderm_conn)
    repo = f"{unique_name}-validate"
    hook.ensure_repo(repo)
    caplog = cpsign_caplog

    def committed(data: bytes | None) -> str:
        if data is None:
            return hook.put_file(repo, "/readme.txt", data=b"no metrics")
        return hook.put_file(repo, "/metrics.json", data=data)

    assert read_metrics(hook, unique_name, committed(json.dumps(REGRESSION).encode())) == (
        REGRESSION
    )
    bad = committed(b"{not json")
    assert read_metrics(hook, unique_name, bad) is None
    assert f"{repo}@{bad}:/metrics.json is not JSON" in caplog.text
    assert read_metrics(hook, unique_name, committed(b"[1]")) is None
    assert "is not a JSON object" in caplog.text
    # a commit set in which the validate repo has no metrics.json
    other = f"{unique_name}-other"
    hook.ensure_repo(other)
    missing = hook.put_file(other, "/x", data=b"x")
    assert read_metrics(hook, unique_name, missing) is None
    assert f"{repo}@{missing}:/metrics.json not found" in caplog.text


class _DagRun:
    conf = {"deploy_prediction_service": True}


def test_deployment_request_skips_a_held_back_model_with_the_reason():
    from airflow.sdk.exceptions import AirflowSkipException

    from cpsign_airflow.workflow.training import deployment_request

    models = [{"model_name": "FreeSolv_acp", "location": "r@c:/model/FreeSolv_acp.jar"}]
    config = {"train": {"ptype": 2}}
    held = {"FreeSolv_acp": {"quality": "held_back", "reason": "error rate 0.3 at confidence 0.8"}}
    with pytest.raises(AirflowSkipException, match="held back.*error rate 0.3 at confidence 0.8"):
        deployment_request.function(models, config, "c" * 32, held, dag_run=_DagRun())
    passed = {"FreeSolv_acp": {"quality": "passed", "reason": "valid"}}
    out = deployment_request.function(models, config, "c" * 32, passed, dag_run=_DagRun())
    assert out["model_name"] == "FreeSolv_acp" and out["predictor_type"] == 2


def test_record_outcome_records_jobs_models_verdicts_against_the_previous_accepted_model(
    bookkeeping_conn_id, cpsign_caplog, monkeypatch
):
    """The run's tail as one task, on real bookkeeping; only pachd's model listing is given."""
    from cpsign_airflow.bookkeeping.hook import BookkeepingHook
    from cpsign_airflow.workflow import outcome as outcome_module
    from cpsign_airflow.workflow import training

    config = {"workflow_name": "FreeSolv"}
    models: dict[str, list[dict]] = {}  # what find_models would read from pachd, per commit set
    # patched where record_outcome looks it up (training re-exports both)
    monkeypatch.setattr(
        outcome_module, "find_models", lambda workflow, commit, *rest: models[commit]
    )
    hook = BookkeepingHook(bookkeeping_conn_id)
    with hook.get_ledger() as ledger:
        ledger.upgrade_schema()

    def trained(i: int, metrics: dict | None) -> tuple[int, str]:
        commit = f"{i:032x}"
        with hook.get_ledger() as ledger:
            run_id = ledger.record_pending_run("FreeSolv", config)
            ledger.mark_committed(run_id, commit, commit)
        models[commit] = [
            {
                "model_name": "FreeSolv_acp",
                "location": f"FreeSolv-aggregate@{commit}:/model/FreeSolv_acp.jar",
                "size_bytes": 100 + i,
                "sha256": f"{i:064x}",
                "metrics": metrics,
            }
        ]
        return run_id, commit

    events: dict = {}

    def outcome(run_id: int, commit: str) -> dict:
        jobs = [  # as the sensor reports them: more than a job record holds
            {"pipeline": "FreeSolv-train", "job_id": commit, "state": "JOB_SUCCESS", "project": "x"}
        ]
        event = events[commit] = SimpleNamespace(extra={"workflow": "FreeSolv"})
        return training.record_outcome.function(
            run_id, jobs, "FreeSolv", commit, "pachyderm_default", None,
            bookkeeping_conn_id, 0.05, 0.1, outlet_events={training.MODELS_ASSET: event},
        )  # fmt: skip

    first, commit = trained(1, REGRESSION)
    result = outcome(first, commit)
    assert result["verdicts"]["FreeSolv_acp"]["quality"] == PASSED  # no baseline yet
    assert result["models"] == models[commit]
    with hook.get_ledger() as ledger:
        assert [(j.pipeline, j.state) for j in ledger.list_jobs(first)] == [
            ("FreeSolv-train", "JOB_SUCCESS")
        ]
        [art] = ledger.list_artifacts(first)
        assert (art.quality, art.sha256, art.metrics) == (PASSED, f"{1:064x}", REGRESSION)
        assert ledger.get_run(first).status == "succeeded"
    # retried: nothing doubled, and the run is not its own baseline
    assert outcome(first, commit)["verdicts"]["FreeSolv_acp"]["quality"] == PASSED
    with hook.get_ledger() as ledger:
        assert len(ledger.list_jobs(first)) == len(ledger.list_artifacts(first)) == 1

    assert "held back" not in cpsign_caplog.text  # no alert for a passed model
    wider = changed(REGRESSION, efficiency={"0.8": 4.0})
    second, commit = trained(2, wider)
    verdict = outcome(second, commit)["verdicts"]["FreeSolv_acp"]
    assert verdict["quality"] == HELD_BACK and "exceeds the bound 3.344" in verdict["reason"]
    # the Asset event tells consumers the verdict
    assert events[commit].extra == {"workflow": "FreeSolv", "verdicts": {"FreeSolv_acp": verdict}}
    # the held_back alert (logged by default) names the workflow, the model and why
    subject = "[cpsign] FreeSolv training succeeded, but its model was held back"
    assert subject in cpsign_caplog.text
    assert f"model FreeSolv_acp: {verdict['reason']}" in cpsign_caplog.text
    outcome(second, commit)  # a retry after the run was finished alerts no more
    assert cpsign_caplog.text.count(subject) == 1
    with hook.get_ledger() as ledger:
        [art] = ledger.list_artifacts(second)
        assert (art.quality, art.quality_reason) == (HELD_BACK, verdict["reason"])
        assert ledger.get_run(second).status == "succeeded"  # held back: the run still succeeds
        # The held-back model is no baseline: the next run is compared with the first.
        assert ledger.last_published_metrics("FreeSolv") == REGRESSION

    third, commit = trained(3, {"standin": True})
    verdict = outcome(third, commit)["verdicts"]["FreeSolv_acp"]
    assert verdict["quality"] == PASSED and "no validity metrics" in verdict["reason"]


# ------------------------------------------------------------------ unchanged models


class _Previous:
    def __init__(self, sha256: str, quality: str | None, reason: str | None = None) -> None:
        self.run_id, self.sha256, self.quality, self.quality_reason = 7, sha256, quality, reason


def test_same_sha256_as_the_previous_model_is_unchanged_and_names_that_run():
    from cpsign_airflow.cpsign.quality import UNCHANGED, unchanged_verdict

    verdict, reason = unchanged_verdict({"sha256": "ab" * 32}, _Previous("ab" * 32, PASSED))
    assert verdict == UNCHANGED and f"run 7 (sha256 {'ab' * 32})" in reason
    assert unchanged_verdict({"sha256": "cd" * 32}, _Previous("ab" * 32, PASSED)) is None
    assert unchanged_verdict({"sha256": "ab" * 32}, None) is None
    assert unchanged_verdict({}, _Previous("ab" * 32, PASSED)) is None
    # a model held back before stays held back, with the earlier reason
    verdict, reason = unchanged_verdict(
        {"sha256": "ab" * 32}, _Previous("ab" * 32, HELD_BACK, "error rate 0.3")
    )
    assert verdict == HELD_BACK and "error rate 0.3" in reason


def test_deployment_request_skips_an_unchanged_model():
    from airflow.sdk.exceptions import AirflowSkipException

    from cpsign_airflow.workflow.training import deployment_request

    models = [{"model_name": "FreeSolv_acp", "location": "r@c:/model/FreeSolv_acp.jar"}]
    same = {"FreeSolv_acp": {"quality": "unchanged", "reason": "same model as run 7"}}
    with pytest.raises(AirflowSkipException, match="unchanged, not deployed again.*run 7"):
        deployment_request.function(
            models, {"train": {"ptype": 2}}, "c" * 32, same, dag_run=_DagRun()
        )
