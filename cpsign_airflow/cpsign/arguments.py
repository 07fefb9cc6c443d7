"""CPSign 2.x argument files derived from a (validated, v2) configuration.

The pipeline specs stay generic: each CPSign stage runs
``java -jar cpsign.jar <program> @<argument file> <paths>``, and the ingestion
stage writes the argument files from configuration.json. So a new configuration needs
no spec update, and the specs never interpolate user text into a shell line.

CPSign reads ``@file`` arguments with picocli's rules (a ``java.io.StreamTokenizer``):
tokens are separated by blanks and line breaks; ``"..."`` or ``'...'`` groups one token,
with backslash escapes inside; ``#`` outside quotes starts a comment. :func:`quote_argument`
double-quotes every value that needs it, so each value is exactly one argument. Quoting
cannot help with a line break (it ends even a quoted token) or a leading ``@`` (picocli
reads the named file as further arguments, quoted or not); such values, and values
starting with ``-`` that CPSign would read as an option, are refused here and by
:func:`~cpsign_airflow.cpsign.configuration.validate_configuration`.

Flag names are those of the CPSign 2.x CLI (``precompute --model-type
--train-data --property --labels --descriptors``; ``train --predictor-type
--scorer --ncm --sampling-strategy --splits --seed --model-name --model-out``).
CPSign < 2 used other flags (``--impl``, ``--cost``, ``--cptype``); see the
``cpsign_license_secret`` template variable for the only < 2 accommodation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from cpsign_airflow.cpsign.configuration import (
    REGRESSION_PTYPES,
    argument_problem,
    effective_seed,
)

#: Where the precompute pipeline mounts the ingestion output (its input ``name``).
PRECOMPUTE_INPUT_DIR = "/pfs/ingestion"
#: Where train writes partial models (inside its datum's /pfs/out).
TRAIN_MODELS_DIR = "/pfs/out/models"
TCP_PTYPE = 3
VAP_PTYPE = 5
#: What ends or splits an unquoted picocli @-file token: blanks, quotes, '\\' and '#'.
_NEEDS_QUOTES = re.compile(r"[\s\"'\\#]")
_FLAG_NAME = re.compile(r"[a-z][a-z0-9-]*")
#: CPSign splits --labels values on these (after unquoting): regex ``[\s,]``.
_LABEL_SPLIT = re.compile(r"[\s,]")


def quote_argument(value: Any) -> str:
    """One token of a CPSign (picocli) @-file: double-quoted if it has blanks, quotes or '#'.

    Raises ValueError for what no quoting keeps one literal argument: a line break or
    other control character, or a leading '@'.
    """
    if isinstance(value, bool):
        value = "true" if value else "false"
    text = str(value)
    problem = argument_problem(text, leading_dash_ok=True)
    if problem:
        raise ValueError(f"CPSign argument {text!r} {problem}")
    if text and not _NEEDS_QUOTES.search(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _flag(name: str, *values: Any) -> list[str]:
    """``--name value...`` as one @-file line; refuses names and values CPSign would misread."""
    if not _FLAG_NAME.fullmatch(name):
        raise ValueError(f"CPSign flag name {name!r} is not of the form [a-z][a-z0-9-]*")
    for value in values:
        problem = argument_problem(value) if isinstance(value, str) else None
        if problem:
            raise ValueError(f"--{name}: {value!r} {problem}")
    line = f"--{name}"
    if values:
        line += " " + " ".join(quote_argument(v) for v in values)
    return [line]


def flag_lines(flags: Mapping[str, Any] | None) -> list[str]:
    """``{"time": True, "labels": ["a", "b"]}`` -> ``["--time", "--labels a b"]``; false drops a flag."""
    lines: list[str] = []
    for name, value in sorted((flags or {}).items()):
        if value is True:
            lines.extend(_flag(name))
        elif value is False or value is None:
            continue
        elif isinstance(value, list):
            lines.extend(_flag(name, *value))
        else:
            lines.extend(_flag(name, value))
    return lines


def render_query(config: Mapping[str, Any]) -> str:
    """The SQL to run: the '{}' placeholder replaced by `` LIMIT n`` or nothing.

    A plain replace, not ``str.format``: other braces in the query stay as they are.
    """
    query = config["preprocessing"]["query"]
    limit = query.get("query_limit")
    return query["database_query"].replace("{}", f" LIMIT {int(limit)}" if limit else "")


def training_data_filename(config: Mapping[str, Any]) -> str:
    return config["preprocessing"]["query"]["smi_filename"]


def endpoint(config: Mapping[str, Any]) -> str:
    """The modelled property: ``precompute.endpoint``, else the last output column."""
    explicit = (config.get("precompute") or {}).get("endpoint")
    return explicit or config["preprocessing"]["query"]["smi_columns"][-1]


def model_name(config: Mapping[str, Any]) -> str:
    return config["train"]["model-name"]


def split_groups(nr_models: int, splits_per_job: int) -> list[list[int]]:
    """Split indices 1..nr_models (CPSign counts from 1) in groups of ``splits_per_job``."""
    if nr_models < 1 or splits_per_job < 1:
        raise ValueError("nr_models and splits_per_job must be at least 1")
    indices = list(range(1, nr_models + 1))
    return [indices[i : i + splits_per_job] for i in range(0, nr_models, splits_per_job)]


def scorer_argument(train: Mapping[str, Any]) -> str:
    """CPSign --scorer with :-syntax sub-parameters from impl/cost/gamma/epsilon."""
    regression = train["ptype"] in REGRESSION_PTYPES
    impl = train.get("impl", "liblinear")
    if impl == "libsvm":
        name = "EpsilonSVR" if regression else "C_SVC"
        keys: Iterable[str] = ("cost", "gamma", "epsilon")
    else:
        name = "LinearSVR" if regression else "LinearSVC"
        keys = ("cost", "epsilon")
    subs = [f"{key}={train[key]}" for key in keys if train.get(key) is not None]
    return ":".join([name, *subs])


def precompute_arguments(config: Mapping[str, Any], input_dir: str = PRECOMPUTE_INPUT_DIR) -> str:
    """The @-file of ``cpsign precompute`` (the spec adds ``--model-out``)."""
    precompute = config.get("precompute") or {}
    regression = config["train"]["ptype"] in REGRESSION_PTYPES
    lines = _flag("model-type", "regression" if regression else "classification")
    # The ingestion stage writes tab-separated data: CPSign's CSV reader would split on ','
    # and fail ('The delimiter was set to "," but it seems that it uses delimiter "\t"').
    lines += _flag("train-data", "TSV", f"{input_dir}/{training_data_filename(config)}")
    lines += _flag("property", endpoint(config))
    if not regression:
        labels = [str(label) for label in precompute["labels"]]
        # CPSign splits --labels values on whitespace and ',' even inside quotes
        # ("Label A" "Label B" -> labels A, B, Label), so such a label can never match.
        bad = [label for label in labels if _LABEL_SPLIT.search(label)]
        if bad:
            raise ValueError(
                f"precompute.labels: CPSign splits labels on blanks and commas, so {bad} "
                "cannot be used; map them to labels without blanks or commas in the query"
            )
        lines += _flag("labels", *labels)
    if precompute.get("descriptors"):
        lines += _flag("descriptors", precompute["descriptors"])
    lines += _flag("model-name", model_name(config))
    lines += flag_lines((config.get("cpsign") or {}).get("flags"))
    lines += flag_lines(precompute.get("flags"))
    return "\n".join(lines) + "\n"


def predictor_lines(config: Mapping[str, Any], train: Mapping[str, Any]) -> list[str]:
    """The predictor flags train and tune share: type, scorer, ncm, sampling, seed."""
    ptype = train["ptype"]
    lines = _flag("predictor-type", ptype)
    lines += _flag("scorer", scorer_argument(train))
    if train.get("nonconf-measure") and ptype != VAP_PTYPE:
        lines += _flag("ncm", train["nonconf-measure"])
    if ptype != TCP_PTYPE:
        lines += _flag("sampling-strategy", f"random:numSamples={train['nr-models']}")
    lines += _flag("seed", effective_seed(config))
    return lines


def train_parameter_files(config: Mapping[str, Any]) -> dict[str, str]:
    """``{"params-<n>.txt": @-file of cpsign train}``, one per parallel train datum.

    Every file carries the same --seed (CPSign requires one seed across the
    splits of one model) and its own --splits; TCP is not split (CPSign trains
    it as one transductive predictor), so it gets a single file.
    """
    train = config["train"]
    ptype = train["ptype"]
    common = predictor_lines(config, train)
    common += _flag("model-name", model_name(config))
    extra = flag_lines((config.get("cpsign") or {}).get("flags")) + flag_lines(train.get("flags"))
    if ptype == TCP_PTYPE:
        groups: list[list[int]] = [[]]
    else:
        per_job = (train.get("parallelism") or {}).get("splits_per_job", 1)
        groups = split_groups(train["nr-models"], per_job)
    files: dict[str, str] = {}
    for number, group in enumerate(groups, start=1):
        lines = list(common)
        if group:
            lines += _flag("splits", ",".join(map(str, group)))
        lines += _flag("model-out", f"{TRAIN_MODELS_DIR}/{model_name(config)}-{number}.jar")
        files[f"params-{number}.txt"] = "\n".join(lines + extra) + "\n"
    return files


#: Grid keys of configuration.json's crossvalidate.gridsearch -> CPSign's --grid parameter.
GRID_KEYS = {"cost-range": "cost", "gamma-range": "gamma", "epsilon": "epsilon"}


def tune_arguments(config: Mapping[str, Any]) -> str | None:
    """The @-file of ``cpsign tune`` for ``crossvalidate.gridsearch``; None without a grid.

    Each range is ``[start, stop, step]`` of exponents of two, CPSign's
    ``start:stop:step:b=2`` list syntax. The scorer's other settings stay fixed.
    """
    grid = ((config.get("crossvalidate") or {}).get("gridsearch")) or {}
    if not grid:
        return None
    train = config["train"]
    tuned = {GRID_KEYS[key] for key in grid}
    lines = predictor_lines(config, {k: v for k, v in train.items() if k not in tuned})
    folds = (config.get("crossvalidate") or {}).get("folds")
    if folds:
        lines += _flag("cv-folds", f"k-fold:k={folds}")
    for key, (start, stop, step) in sorted(grid.items()):
        lines += _flag("grid", f"{GRID_KEYS[key]}=b=2:{_num(start)}:{_num(stop)}:{_num(step)}")
    return "\n".join(lines) + "\n"


def _num(value: Any) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def with_tuned_scorer(params: str, tuned: Mapping[str, Any]) -> str:
    """A train @-file with the grid search's best values set on its ``--scorer``."""
    out = []
    for line in params.splitlines():
        if line.startswith("--scorer "):
            name, *subs = line.split(" ", 1)[1].split(":")
            settings = dict(s.split("=", 1) for s in subs if "=" in s)
            settings.update({k: _num(v) for k, v in tuned.items()})
            scorer = ":".join([name, *(f"{k}={v}" for k, v in settings.items())])
            line = "--scorer " + quote_argument(scorer)
        out.append(line)
    return "\n".join(out) + "\n"


def ingestion_files(config: Mapping[str, Any]) -> dict[str, str]:
    """Every file the ingestion stage writes besides the training data, by output path.

    ``/configuration.json`` (the normalised config, for the record),
    ``/precompute/arguments.txt``, ``/training/params-<n>.txt`` and
    ``/aggregate/model-name.txt`` (read by the aggregate stage's shell, which is
    safe because the schema restricts model names to ``[A-Za-z0-9._-]``).
    """
    from cpsign_airflow.cpsign.configuration import canonical_json

    files = {
        "/configuration.json": canonical_json(config) + "\n",
        "/precompute/arguments.txt": precompute_arguments(config),
        "/aggregate/model-name.txt": model_name(config) + "\n",
    }
    for name, text in train_parameter_files(config).items():
        files[f"/training/{name}"] = text
    tune = tune_arguments(config)
    if tune is not None:
        files["/tune/arguments.txt"] = tune
    return files
