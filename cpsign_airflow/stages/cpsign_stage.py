"""CPSign stages (``cpsign-stage precompute|train|aggregate|validate``): the CPSign runtime on /pfs.

Each pipeline's transform calls one subcommand; it runs the ``cpsign`` launcher (see
``stages/runtime``) on the @-files the ingestion stage wrote, so the specs hold no
shell and a new configuration needs no spec update. The launcher is found through
``$CPSIGN`` (a path), else ``$CPSIGN_HOME/bin/cpsign``, else ``cpsign`` on PATH.

``validate`` predicts the held-out test split with the aggregated model and writes
``metrics.json``: validity (observed error rate) at each configured confidence, and
efficiency (median interval width for regression; share of single-label prediction
sets for classification).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cpsign_airflow.cpsign.arguments import (
    TRAIN_MODELS_DIR,
    VAP_PTYPE,
    endpoint,
    model_name,
    with_tuned_scorer,
)
from cpsign_airflow.cpsign.configuration import REGRESSION_PTYPES, validate_configuration

DEFAULT_CONFIDENCES = (0.8, 0.9)


class StageError(RuntimeError):
    """A stage cannot run; the message says which file or setting is at fault."""


def launcher() -> str:
    explicit = os.environ.get("CPSIGN")
    if explicit:
        return explicit
    home = os.environ.get("CPSIGN_HOME")
    if home and (Path(home) / "bin" / "cpsign").exists():
        return str(Path(home) / "bin" / "cpsign")
    found = shutil.which("cpsign")
    if found:
        return found
    raise StageError(
        "the CPSign launcher was not found: set CPSIGN or CPSIGN_HOME, or put 'cpsign' on "
        "PATH (install it with cpsign_airflow/stages/runtime/install.sh)"
    )


def run_cpsign(*args: str) -> None:
    """Run one CPSign command; its output goes to the job's log, a failure names it."""
    command = [launcher(), *args]
    print("+ cpsign " + " ".join(args), flush=True)
    result = subprocess.run(command, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise StageError(f"cpsign {args[0]} failed with exit status {result.returncode}")


def precompute(ingestion: Path, out: Path) -> None:
    """``cpsign precompute``; with a ``crossvalidate`` grid, also ``cpsign tune`` on its result.

    The grid search writes ``tune/results.json`` (CPSign's ranking) and ``tune/best.json``
    (the best parameters), which the train stage applies to every split.
    """
    data_set = out / "precomputed.jar"
    run_cpsign(
        "precompute", f"@{ingestion / 'precompute' / 'arguments.txt'}", "--model-out", str(data_set)
    )
    tune_args = ingestion / "tune" / "arguments.txt"
    if not tune_args.is_file():
        return
    results = out / "tune" / "results.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    run_cpsign(
        "tune", f"@{tune_args}", "--data-set", str(data_set),
        "--result-format", "json", "--result-output", str(results),
    )  # fmt: skip
    ranked = json.loads(results.read_text(encoding="utf-8")).get("results") or []
    valid = [r for r in ranked if r.get("status", "valid") == "valid" and r.get("params")]
    if not valid:
        raise StageError(f"the grid search found no valid parameters (see {results})")
    best = valid[0]["params"]
    (out / "tune" / "best.json").write_text(json.dumps(best, sort_keys=True) + "\n")
    print(f"cpsign-stage precompute: best parameters of the grid search: {best}", flush=True)


def train(params: Sequence[Path], data_set: Path) -> None:
    """One ``cpsign train`` per parameter file of this datum (a group of splits).

    With a grid search's ``tune/best.json`` beside the data set, its values replace
    the configured scorer settings.
    """
    if not params:
        raise StageError("no parameter files in this datum: nothing to train")
    Path(TRAIN_MODELS_DIR).mkdir(parents=True, exist_ok=True)
    best_file = data_set.parent / "tune" / "best.json"
    tuned = json.loads(best_file.read_text(encoding="utf-8")) if best_file.is_file() else None
    with tempfile.TemporaryDirectory() as tmp:
        for path in params:
            if tuned:
                rewritten = Path(tmp) / path.name
                rewritten.write_text(with_tuned_scorer(path.read_text(encoding="utf-8"), tuned))
                print(f"cpsign-stage train: {path.name} with tuned {tuned}", flush=True)
                path = rewritten
            run_cpsign("train", f"@{path}", "--data-set", str(data_set))


def aggregate(models: Path, name_file: Path, out: Path) -> Path:
    """Combine the partial models into ``<out>/model/<model-name>.jar`` (one model: a copy)."""
    name = name_file.read_text(encoding="utf-8").strip()
    jars = sorted(models.glob("*.jar"))
    if not jars:
        raise StageError(f"no partial models (*.jar) in {models}")
    target = out / "model" / f"{name}.jar"
    target.parent.mkdir(parents=True, exist_ok=True)
    if len(jars) == 1:
        shutil.copyfile(jars[0], target)
    else:
        run_cpsign("fast-aggregate", "--model-files", *map(str, jars), "--model-out", str(target))
    return target


# ------------------------------------------------------------------ validation


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def read_predictions(path: Path) -> list[dict[str, Any]]:
    """CPSign's JSON prediction output: one object per molecule (lines, or one array)."""
    text = path.read_text(encoding="utf-8").strip()
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def regression_metrics(
    predictions: list[dict[str, Any]], truth: str, confidences: Sequence[float]
) -> dict[str, Any]:
    validity: dict[str, float] = {}
    width: dict[str, float] = {}
    for confidence in confidences:
        errors, widths = 0, []
        for p in predictions:
            interval = next(
                i for i in p["prediction"]["intervals"] if abs(i["confidence"] - confidence) < 1e-9
            )
            value = float(p["molecule"][truth])
            errors += not (interval["rangeLower"] <= value <= interval["rangeUpper"])
            widths.append(interval["rangeUpper"] - interval["rangeLower"])
        validity[str(confidence)] = errors / len(predictions)
        width[str(confidence)] = statistics.median(widths)
    return {"error_rate": validity, "median_interval_width": width}


def classification_metrics(
    predictions: list[dict[str, Any]], truth: str, confidences: Sequence[float]
) -> dict[str, Any]:
    validity: dict[str, float] = {}
    single: dict[str, float] = {}
    for confidence in confidences:
        errors = singles = 0
        for p in predictions:
            result = p.get("prediction", p)  # CPSign nests the prediction
            sets = {round(s["confidence"], 9): s["labels"] for s in result["predictedLabels"]}
            labels = sets[round(confidence, 9)]
            errors += p["molecule"][truth] not in labels
            singles += len(labels) == 1
        validity[str(confidence)] = errors / len(predictions)
        single[str(confidence)] = singles / len(predictions)
    return {"error_rate": validity, "single_label_share": single}


def venn_abers_metrics(predictions: list[dict[str, Any]], truth: str) -> dict[str, Any]:
    """Venn-ABERS gives probabilities, not sets: accuracy of the most probable label, Brier."""
    correct, brier = 0, 0.0
    for p in predictions:
        probabilities = p.get("prediction", p)["probabilities"]
        best = max(probabilities, key=probabilities.get)
        correct += best == p["molecule"][truth]
        brier += (1 - probabilities.get(p["molecule"][truth], 0.0)) ** 2
    return {"accuracy": correct / len(predictions), "brier": brier / len(predictions)}


def metrics(
    config: Mapping[str, Any], predictions: list[dict[str, Any]], n_test: int
) -> dict[str, Any]:
    ptype = config["train"]["ptype"]
    truth = endpoint(config)
    confidences = list((config.get("validation") or {}).get("confidences") or DEFAULT_CONFIDENCES)
    if not predictions:
        raise StageError("no molecule of the held-out test split could be predicted")
    result: dict[str, Any] = {
        "model_name": model_name(config),
        "ptype": ptype,
        "test_molecules": n_test,
        "predicted": len(predictions),
        "confidences": confidences,
    }
    if ptype in REGRESSION_PTYPES:
        result.update(regression_metrics(predictions, truth, confidences))
        result["efficiency"] = result["median_interval_width"]
    elif ptype == VAP_PTYPE:
        result.update(venn_abers_metrics(predictions, truth))
    else:
        result.update(classification_metrics(predictions, truth, confidences))
        result["efficiency"] = result["single_label_share"]
    return result


def validate(config_path: Path, model: Path, test: Path, out: Path) -> dict[str, Any]:
    config = validate_configuration(json.loads(config_path.read_text(encoding="utf-8")))
    confidences = (config.get("validation") or {}).get("confidences") or DEFAULT_CONFIDENCES
    with tempfile.TemporaryDirectory() as tmp:
        predictions_file = Path(tmp) / "predictions.json"
        run_cpsign(
            "predict",
            "--model",
            str(model),
            "--predict-file",
            "TSV",
            str(test),
            "--confidences",
            ",".join(str(c) for c in confidences),
            "--output-format",
            "json",
            "--output",
            str(predictions_file),
        )
        predictions = read_predictions(predictions_file)
    try:
        result = metrics(config, predictions, len(_rows(test)))
    except (KeyError, StopIteration, TypeError) as err:  # CPSign's output, not as expected
        missing = f"no {err}" if isinstance(err, KeyError) else "an unexpected shape"
        raise StageError(
            f"predictions of {test.name} by {model.name} at confidences {list(confidences)}: "
            f"{missing} (endpoint column {endpoint(config)!r} in {test})"
        ) from None
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


# ------------------------------------------------------------------------ CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cpsign-stage", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="stage", required=True)
    p = sub.add_parser("precompute")
    p.add_argument("--ingestion", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    t = sub.add_parser("train")
    t.add_argument("--params", type=Path, required=True, help="this datum's parameter files' dir")
    t.add_argument("--data-set", type=Path, required=True)
    a = sub.add_parser("aggregate")
    a.add_argument("--models", type=Path, required=True)
    a.add_argument("--model-name-file", type=Path, required=True)
    a.add_argument("--out", type=Path, required=True)
    v = sub.add_parser("validate")
    v.add_argument("--config", type=Path, required=True)
    v.add_argument("--models", type=Path, required=True, help="directory of the aggregated model")
    v.add_argument("--test", type=Path, required=True)
    v.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        if args.stage == "precompute":
            precompute(args.ingestion, args.out)
        elif args.stage == "train":
            train(sorted(p for p in args.params.rglob("*.txt") if p.is_file()), args.data_set)
        elif args.stage == "aggregate":
            aggregate(args.models, args.model_name_file, args.out)
        else:
            models = sorted(args.models.glob("*.jar"))
            if len(models) != 1:
                raise StageError(f"expected one aggregated model in {args.models}, found {models}")
            result = validate(args.config, models[0], args.test, args.out)
            print("cpsign-stage validate: " + json.dumps(result, sort_keys=True))
    except (StageError, OSError, ValueError, KeyError) as err:
        print(f"cpsign-stage {args.stage}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
