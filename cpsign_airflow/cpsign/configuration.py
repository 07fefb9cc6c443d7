"""configuration.json of a CPSign workflow: schema, validation, conversion, hashing.

The original workflow wrote two layouts: a flat one (LogD, "v1": top-level
``database``/``query``/``cpsign``, with the misspelt ``parallellism``) and a
sectioned one (hERG, "v2": ``preprocessing``/``precompute``/``train``/...).
Everything downstream works on v2 only: :func:`validate_configuration` converts
a flat configuration first, then checks it against the packaged JSON Schema and
reports *every* problem at once, so a user fixes a configuration in one pass
instead of one error per run.

Nothing heavy is imported here: jsonschema is imported when validating.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

SCHEMA_RESOURCE = "configuration.schema.json"

#: Predictor types CPSign 2.x accepts for --predictor-type, with their names.
PREDICTOR_TYPES: dict[int, str] = {
    1: "ACP classification",
    2: "ACP regression",
    3: "TCP classification",
    5: "Venn-ABERS classification",
}
REGRESSION_PTYPES = frozenset({2})
#: Flags the pipelines set themselves; a configuration must not override them.
RESERVED_FLAGS = frozenset(
    {
        "model-out",
        "data-set",
        "ds",
        "train-data",
        "td",
        "splits",
        "seed",
        "license",
        "modelfiles",
        "predictor-type",
        "ptype",
        "pt",
        "model-name",
        "model-type",
        "mt",
        "property",
        "labels",
    }
)
#: Keys that only occur in the flat (v1) layout.
_FLAT_ONLY_KEYS = ("database", "query", "parallellism", "parallelism", "cpsign-version")
_PASSWORD_KEYS = frozenset({"password", "passwd", "pass", "pwd", "secret"})


#: Key names whose values ``without_secrets`` hides: the password keys exactly, and any key
#: containing one of these (as Airflow's secrets masker judges key names).
_SECRET_KEY_PARTS = (
    "password", "secret", "token", "api_key", "apikey", "private_key", "passphrase",
    "authorization", "credential",
)  # fmt: skip


def without_secrets(value: Any) -> Any:
    """A copy of a (possibly refused) configuration safe to record and show.

    Values of password-like keys, at any depth, become ``***``: the schema refuses
    them, but a refused configuration is still recorded. By key name only: masking
    registered secrets' values would also blank ordinary values that happen to
    equal one (a user name that is also a password).
    """

    def hidden(key: Any) -> bool:
        name = str(key).lower()
        return name in _PASSWORD_KEYS or any(part in name for part in _SECRET_KEY_PARTS)

    if isinstance(value, Mapping):
        return {k: "***" if hidden(k) else without_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_secrets(v) for v in value]
    return value


class ConfigurationError(ValueError):
    """configuration.json is invalid; ``problems`` holds one "path: message" per error."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__(
            "configuration.json is invalid:\n" + "\n".join(f"  - {p}" for p in self.problems)
        )


@cache
def _schema_text() -> str:
    return (resources.files(__package__) / SCHEMA_RESOURCE).read_text(encoding="utf-8")


def configuration_schema() -> dict[str, Any]:
    """The packaged JSON Schema (draft 2020-12), as a fresh dict."""
    return json.loads(_schema_text())


def is_flat_configuration(config: Mapping[str, Any]) -> bool:
    """Whether ``config`` uses the flat LogD (v1) layout rather than the sectioned one."""
    if not isinstance(config, Mapping):
        return False
    if any(key in config for key in _FLAT_ONLY_KEYS):
        return True
    cpsign = config.get("cpsign")
    return isinstance(cpsign, Mapping) and any(
        key in cpsign for key in ("ptype", "nr-models", "model-name", "impl")
    )


def _split_columns(columns: Any) -> Any:
    """The LogD original wrote ``["canonical_smiles, acd_logd"]``: one string, two columns."""
    if not isinstance(columns, list):
        return columns
    out: list[Any] = []
    for item in columns:
        if isinstance(item, str) and "," in item:
            out.extend(part.strip() for part in item.split(",") if part.strip())
        else:
            out.append(item)
    return out


def convert_flat_configuration(config: Mapping[str, Any]) -> dict[str, Any]:
    """Convert a flat (v1) configuration to the sectioned (v2) layout.

    Known keys move to their section; ``parallellism.splits_per_model`` (sic)
    becomes ``train.parallelism.splits_per_job``; ``cpsign-version`` becomes
    ``cpsign.version``; CPSign keys without a v2 field go to ``train.flags``.
    Unknown top-level keys are kept, so validation reports them instead of
    silently dropping them.
    """
    flat = copy.deepcopy(dict(config))
    out: dict[str, Any] = {}
    if "workflow_name" in flat:
        out["workflow_name"] = flat.pop("workflow_name")
    preprocessing: dict[str, Any] = {}
    if "database" in flat:
        preprocessing["database"] = flat.pop("database")
    if "query" in flat:
        query = flat.pop("query")
        if isinstance(query, dict) and "smi_columns" in query:
            query["smi_columns"] = _split_columns(query["smi_columns"])
        preprocessing["query"] = query
    if preprocessing:
        out["preprocessing"] = preprocessing

    train: dict[str, Any] = {}
    cpsign_v1 = flat.pop("cpsign", None)
    if isinstance(cpsign_v1, dict):
        for key in ("ptype", "nr-models", "impl", "nonconf-measure", "model-name", "cost"):
            if key in cpsign_v1:
                train[key] = cpsign_v1.pop(key)
        for key in ("gamma", "epsilon", "seed"):
            if key in cpsign_v1:
                train[key] = cpsign_v1.pop(key)
        if cpsign_v1:
            train["flags"] = cpsign_v1
    elif cpsign_v1 is not None:
        out["cpsign"] = cpsign_v1  # let validation report the wrong type
    parallelism = flat.pop("parallellism", None)
    if parallelism is None:
        parallelism = flat.pop("parallelism", None)
    if isinstance(parallelism, dict) and "splits_per_model" in parallelism:
        train["parallelism"] = {"splits_per_job": parallelism["splits_per_model"]}
    elif parallelism is not None:
        train["parallelism"] = parallelism
    if train:
        out["train"] = train

    version = flat.pop("cpsign-version", None)
    if version is not None:
        out.setdefault("cpsign", {})
        if isinstance(out["cpsign"], dict):
            out["cpsign"]["version"] = version
    out.update(flat)  # anything left: reported by the schema as unexpected
    return out


def _join(path: list[Any]) -> str:
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return text or "<configuration>"


def _unexpected_keys(error: Any) -> list[str]:
    """Keys an additionalProperties error is about (jsonschema names them only in prose)."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    known = set(schema.get("properties", {}))
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    instance = error.instance if isinstance(error.instance, dict) else {}
    return sorted(
        key for key in instance if key not in known and not any(p.search(key) for p in patterns)
    )


def _format_errors(error: Any) -> list[str]:
    """One "path: message" per problem, with paths that name the offending field."""
    path = list(error.path)
    if (
        error.validator == "additionalProperties"
        and error.schema.get("additionalProperties") is False
    ):
        lines = []
        for key in _unexpected_keys(error):
            where = _join([*path, key])
            if key.lower() in _PASSWORD_KEYS:
                lines.append(
                    f"{where}: must not be in configuration.json: the database password comes "
                    "from a Kubernetes secret (source_db_secret), never from the configuration"
                )
            else:
                lines.append(f"{where}: unexpected field")
        if lines:
            return lines
    if error.validator == "pattern" and path and path[-1] == "database_query":
        return [f"{_join(path)}: must contain the '{{}}' placeholder for the row limit"]
    return [f"{_join(path)}: {error.message}"]


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


#: Line breaks, NUL and the other control characters (C0, DEL, C1, U+2028/9).
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def argument_problem(value: str, *, leading_dash_ok: bool = False) -> str | None:
    """Why ``value`` cannot be one CPSign argument in an @-file, or None when it can.

    The stages hand CPSign (picocli) argument files. There, whatever the quoting, a line
    break ends the value, so the rest of the line becomes arguments of their own; a token
    starting with ``@`` makes CPSign read the file it names as further arguments (a
    license file could end up in an error message); and a token starting with ``-`` can be
    taken as an option (``--model-out``). ``leading_dash_ok`` skips that last rule, for a
    caller that only needs the token to stay one literal argument.
    """
    if _CONTROL_CHARACTERS.search(value):
        return (
            "must not contain line breaks or other control characters (they would split the "
            "value into further CPSign arguments)"
        )
    if value.startswith("@"):
        return "must not start with '@' (CPSign would read the file it names as arguments)"
    if value.startswith("-") and not leading_dash_ok and not _NUMBER.fullmatch(value):
        return "must not start with '-' unless it is a number (CPSign would read it as an option)"
    return None


def _argument_problems(where: str, value: Any) -> list[str]:
    """``argument_problem`` of a string, or of each string of a list (``where[i]``)."""
    if isinstance(value, str):
        problem = argument_problem(value)
        return [f"{where}: {problem}"] if problem else []
    if isinstance(value, list):
        return [
            line for i, v in enumerate(value) for line in _argument_problems(f"{where}[{i}]", v)
        ]
    return []


def _semantic_problems(config: Mapping[str, Any]) -> list[str]:
    """Cross-field rules JSON Schema cannot express; tolerant of schema-invalid input."""
    problems: list[str] = []
    train = _obj(config.get("train"))
    precompute = _obj(config.get("precompute"))
    ptype = train.get("ptype")
    labels = precompute.get("labels")
    known_ptype = (
        isinstance(ptype, int) and not isinstance(ptype, bool) and ptype in PREDICTOR_TYPES
    )
    if known_ptype and ptype in REGRESSION_PTYPES and labels:
        problems.append("precompute.labels: not allowed for regression (train.ptype 2)")
    if known_ptype and ptype not in REGRESSION_PTYPES and not labels:
        problems.append(
            f"precompute.labels: required for {PREDICTOR_TYPES[ptype]} (train.ptype {ptype})"
        )
    for section in ("precompute", "crossvalidate", "train", "cpsign"):
        flags = _obj(_obj(config.get(section)).get("flags"))
        for flag in sorted(flags):
            if flag in RESERVED_FLAGS:
                problems.append(
                    f"{section}.flags.{flag}: is set by the workflow's pipelines and "
                    "cannot be overridden"
                )
            name_problem = argument_problem(flag)
            if name_problem:
                problems.append(f"{section}.flags: flag name {flag!r} {name_problem}")
            else:
                problems.extend(_argument_problems(f"{section}.flags.{flag}", flags[flag]))
    # the other free text the stages write into CPSign's @-files
    for where, value in (
        ("precompute.endpoint", precompute.get("endpoint")),
        ("precompute.descriptors", precompute.get("descriptors")),
        ("precompute.labels", labels),
        ("train.nonconf-measure", train.get("nonconf-measure")),
    ):
        problems.extend(_argument_problems(where, value))
    columns = _obj(_obj(config.get("preprocessing")).get("query")).get("smi_columns")
    endpoint = precompute.get("endpoint")
    if isinstance(columns, list):
        for i, column in enumerate(columns):
            if isinstance(column, str) and _CONTROL_CHARACTERS.search(column):
                problems.append(
                    f"preprocessing.query.smi_columns[{i}]: must not contain line breaks or "
                    "other control characters"
                )
            elif not endpoint and i == len(columns) - 1:  # the default endpoint
                problems.extend(_argument_problems(f"preprocessing.query.smi_columns[{i}]", column))
    if isinstance(endpoint, str) and isinstance(columns, list) and endpoint not in columns:
        problems.append(
            f"precompute.endpoint: {endpoint!r} is not one of the output columns {columns}"
        )
    return problems


def validate_configuration(config: Mapping[str, Any]) -> dict[str, Any]:
    """Return the normalised (v2) configuration, or raise ConfigurationError listing every problem.

    A flat (v1) configuration is converted first; error paths then refer to the
    v2 layout (``train.ptype`` rather than ``cpsign.ptype``).
    """
    import jsonschema

    if not isinstance(config, Mapping):
        raise ConfigurationError([f"<configuration>: expected a JSON object, got {config!r}"])
    normalised = (
        convert_flat_configuration(config)
        if is_flat_configuration(config)
        else copy.deepcopy(dict(config))
    )
    validator_cls = jsonschema.Draft202012Validator
    validator = validator_cls(configuration_schema(), format_checker=validator_cls.FORMAT_CHECKER)
    errors = sorted(
        validator.iter_errors(normalised), key=lambda e: (list(map(str, e.path)), e.message)
    )
    problems = [line for error in errors for line in _format_errors(error)]
    problems.extend(_semantic_problems(normalised))
    problems.extend(_query_problems(normalised))
    if problems:
        raise ConfigurationError(problems)
    return normalised


def _query_problems(config: Mapping[str, Any]) -> list[str]:
    """The query must be exactly one read-only SELECT in the source's dialect (sqlglot)."""
    from cpsign_airflow.cpsign.source_db import statement_problems

    preprocessing = _obj(config.get("preprocessing"))
    dialect = _obj(preprocessing.get("database")).get("dialect", "mysql")
    query = _obj(preprocessing.get("query")).get("database_query")
    return statement_problems(query, dialect if isinstance(dialect, str) else "mysql")


def canonical_json(config: Any) -> str:
    """Key-order independent JSON text: what :func:`configuration_sha256` hashes."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def configuration_sha256(config: Any) -> str:
    """sha256 of the canonical JSON of ``config``: bookkeeping's identity of a configuration."""
    return hashlib.sha256(canonical_json(config).encode("utf-8")).hexdigest()


def effective_seed(config: Mapping[str, Any]) -> int:
    """The --seed every split of a run shares.

    ``train.seed`` when given; otherwise derived from the configuration's
    sha256, so one configuration always trains the same model and any change
    to it gives a new seed.
    """
    seed = (config.get("train") or {}).get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        return seed
    return int(configuration_sha256(config)[:8], 16) & 0x7FFFFFFF


def with_new_seed(config: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """A copy of ``config`` for retraining: ``train.seed = seed`` only if the config asks for it.

    The configuration asks with ``train.reseed_on_retrain: true``. Without it
    the seed is left as it is (a pinned ``train.seed`` or the derived one): a
    scheduled retraining then differs from the last run only by the data the
    query returns, which keeps a model change attributable to the data.
    """
    out = copy.deepcopy(dict(config))
    train = out.get("train")
    if isinstance(train, dict) and train.get("reseed_on_retrain") is True:
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= 0x7FFFFFFF:
            raise ValueError(f"seed must be an integer in [0, 2147483647], got {seed!r}")
        train["seed"] = seed
    return out


def load_example(name: str) -> dict[str, Any]:
    """A packaged example configuration: ``"logd-flat"`` (v1) or ``"herg-sectioned"`` (v2)."""
    resource = resources.files(__package__) / "examples" / f"{name}.json"
    if not resource.is_file():
        raise FileNotFoundError(f"no example configuration named {name!r}")
    return json.loads(resource.read_text(encoding="utf-8"))
