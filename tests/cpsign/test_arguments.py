"""CPSign 2.x @-argument files written by the ingestion stage."""

from __future__ import annotations

import shlex

import pytest

from cpsign_airflow.cpsign import load_example, validate_configuration
from cpsign_airflow.cpsign.arguments import (
    ingestion_files,
    precompute_arguments,
    quote_argument,
    scorer_argument,
    split_groups,
    train_parameter_files,
)


def test_split_groups_cover_every_split_once():
    assert split_groups(5, 1) == [[1], [2], [3], [4], [5]]
    assert split_groups(5, 2) == [[1, 2], [3, 4], [5]]
    assert split_groups(3, 10) == [[1, 2, 3]]
    with pytest.raises(ValueError):
        split_groups(0, 1)


def test_regression_arguments():
    config = validate_configuration(load_example("logd-flat"))
    pre = precompute_arguments(config)
    assert "--model-type regression" in pre
    assert "--train-data TSV /pfs/ingestion/chembl_training_data.smi" in pre
    assert "--property acd_logd" in pre and "--labels" not in pre
    files = train_parameter_files(config)
    assert sorted(files) == [f"params-{n}.txt" for n in range(1, 6)]
    first = files["params-1.txt"]
    assert "--predictor-type 2" in first
    assert "--scorer LinearSVR:cost=1:epsilon=0.0001" in first
    assert "--sampling-strategy random:numSamples=5" in first
    assert "--splits 1\n" in first
    seeds = {shlex.split(text)[shlex.split(text).index("--seed") + 1] for text in files.values()}
    assert len(seeds) == 1, "every split of one model shares the seed"


def test_classification_and_tcp_arguments():
    config = validate_configuration(load_example("herg-sectioned"))
    pre = precompute_arguments(config)
    assert "--labels blocker non-blocker" in pre and "--model-type classification" in pre
    assert "--descriptors signatures:startHeight=1:endHeight=3" in pre
    assert "--time" in pre  # cpsign.flags go to every command
    assert scorer_argument(config["train"]) == "C_SVC:cost=16:gamma=0.0078125"
    tcp = dict(config, train={**config["train"], "ptype": 3})
    files = train_parameter_files(tcp)
    assert list(files) == ["params-1.txt"]
    assert (
        "--splits" not in files["params-1.txt"]
        and "--sampling-strategy" not in files["params-1.txt"]
    )


def test_labels_that_cpsign_would_split_are_refused():
    # CPSign 2.0.0 splits --labels on blanks and commas even when quoted:
    # '--labels "Label A" "Label B"' gives the labels A, B and Label.
    config = validate_configuration(load_example("herg-sectioned"))
    for label in ("Label A", "a,b", "tab\there"):
        bad = dict(config, precompute={**config["precompute"], "labels": [label, "other"]})
        with pytest.raises(ValueError, match="splits labels"):
            precompute_arguments(bad)


def test_quoting_survives_a_posix_split():
    for value in ("plain", "two words", 'quote " inside', "back\\slash", "# not a comment", ""):
        assert shlex.split(quote_argument(value)) == [value]
    assert quote_argument(True) == "true"


def test_ingestion_files_paths():
    config = validate_configuration(load_example("herg-sectioned"))
    files = ingestion_files(config)
    assert "/precompute/arguments.txt" in files and "/configuration.json" in files
    assert files["/aggregate/model-name.txt"] == "hERG_acp\n"
    assert sorted(p for p in files if p.startswith("/training/")) == [
        f"/training/params-{n}.txt" for n in range(1, 6)
    ]


def test_tune_arguments_follow_the_configured_grid():
    from cpsign_airflow.cpsign.arguments import tune_arguments
    from cpsign_airflow.cpsign.configuration import load_example, validate_configuration

    config = validate_configuration(load_example("herg-sectioned"))
    lines = tune_arguments(config).splitlines()
    assert "--scorer C_SVC" in lines  # the tuned cost and gamma are not fixed
    assert "--grid cost=b=2:-5:10:1" in lines and "--grid gamma=b=2:-15:3:2" in lines
    assert "--cv-folds k-fold:k=10" in lines
    config.pop("crossvalidate")
    assert tune_arguments(config) is None


def test_tuned_values_replace_the_scorer_settings_only():
    from cpsign_airflow.cpsign.arguments import with_tuned_scorer

    params = "--predictor-type 1\n--scorer C_SVC:cost=16:gamma=0.0078125\n--splits 1,2\n"
    out = with_tuned_scorer(params, {"cost": 32.0, "gamma": 0.001953125})
    assert out.splitlines() == [
        "--predictor-type 1",
        "--scorer C_SVC:cost=32:gamma=0.001953125",
        "--splits 1,2",
    ]
