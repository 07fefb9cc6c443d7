"""Stand-in pipeline behaviour for the local pachd: demos and tests only.

THESE HANDLERS DO NOT RUN CPSIGN, QUERY A DATABASE OR UPLOAD ANYTHING. They
produce small, plausible files at the paths the real stages write, so a DAG can
drive the whole chain on :class:`cpsign_airflow.testing.pachd.LocalPachd`
without containers:

* ingestion: validates ``/pfs/config/configuration.json`` and writes a
  ten-row fake training data file plus the real CPSign argument files
  (:func:`~cpsign_airflow.cpsign.arguments.ingestion_files`);
* precompute: ``/precomputed.jar``;
* train: ``/models/<model-name>-<n>.jar``, one per parameter file;
* aggregate: ``/model/<model-name>.jar``;
* validate: ``/metrics.json`` saying it is a stand-in;
* publish: ``/published.json`` naming a fake ``modelweb.invalid`` URL.

Every artifact is a deterministic zip carrying ``standin.json`` (configuration
sha256, seed, the stage to fail), so a stage only reads what its real
counterpart would see through its inputs, and the model's sha256 changes
exactly when the configuration does. ``advanced.simulate_failure = "<stage>"``
in the configuration makes that stage fail with a clear reason.

The local pachd calls a handler once per job with every file of every input
commit (it does not split datums), so the train handler loops over all
parameter files, as the real train stage does within a datum.
"""

from __future__ import annotations

import hashlib
import io
import json
import shlex
import zipfile
from collections.abc import Mapping
from typing import Any, Protocol

from cpsign_airflow.cpsign.arguments import endpoint as endpoint_column
from cpsign_airflow.cpsign.arguments import ingestion_files, model_name, training_data_filename
from cpsign_airflow.cpsign.configuration import (
    REGRESSION_PTYPES,
    ConfigurationError,
    configuration_sha256,
    effective_seed,
    validate_configuration,
)
from cpsign_airflow.cpsign.pipelines import STAGES, pipeline_names
from cpsign_airflow.devkit.local import create_stage_secrets

MANIFEST = "standin.json"
FAKE_MODEL_STORE = "https://modelweb.invalid/api/v1/models"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_SMILES = (
    "CCO",
    "c1ccccc1O",
    "CC(=O)Oc1ccccc1C(=O)O",
    "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",
    "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "O=C(O)c1ccccc1O",
    "CCN(CC)CCOC(=O)c1ccc(N)cc1",
    "Clc1ccc(cc1)C(c1ccccc1)N1CCNCC1",
    "COc1ccc2[nH]cc(CCN)c2c1",
    "CC(=O)Nc1ccc(O)cc1",
)


class StandinFailure(RuntimeError):
    """A stand-in stage failed; the message becomes the job's reason."""


class _Context(Protocol):
    """The part of ``testing.pachd.JobContext`` the handlers use."""

    inputs: Mapping[str, bytes]
    job_id: str
    pipeline: str

    def write(self, path: str, data: bytes | str) -> None: ...

    def log(self, message: str) -> None: ...


class _LocalPachd(Protocol):
    address: str

    def configure_pipeline(
        self, name: str, *, duration: float = ..., handler: Any = ...
    ) -> None: ...


def configure_local_pachd(
    pachd: _LocalPachd, workflow_name: str, *, duration: float = 0.05
) -> dict[str, str]:
    """Register the stand-in handlers for ``workflow_name``'s five pipelines; returns their names."""
    names = pipeline_names(workflow_name)
    handlers = {
        "ingestion": ingestion_handler,
        "precompute": precompute_handler,
        "train": train_handler,
        "aggregate": aggregate_handler,
        "validate": validate_handler,
        "publish": publish_handler,
    }
    for stage, name in names.items():
        pachd.configure_pipeline(name, duration=duration, handler=handlers[stage])
    create_stage_secrets(pachd.address, workflow_name)
    return names


# ---------------------------------------------------------------- helpers


def _zip(files: Mapping[str, bytes | str]) -> bytes:
    """A reproducible jar-like zip: fixed timestamps, sorted entries."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            data = files[name]
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data.encode() if isinstance(data, str) else data)
    return buffer.getvalue()


def _manifest_from_zip(data: bytes, what: str) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return json.loads(archive.read(MANIFEST))
    except (zipfile.BadZipFile, KeyError, ValueError) as err:
        raise StandinFailure(f"{what} is not a stand-in artifact: {err}") from None


def _under(ctx: _Context, prefix: str) -> dict[str, bytes]:
    return {path: ctx.inputs[path] for path in ctx.inputs if path.startswith(prefix)}


def _one(ctx: _Context, path: str, what: str) -> bytes:
    if path not in ctx.inputs:
        raise StandinFailure(f"{what} not found at {path}")
    return ctx.inputs[path]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _maybe_fail(ctx: _Context, manifest: Mapping[str, Any], stage: str) -> None:
    if manifest.get("simulate_failure") == stage:
        # like a real stage, say in the job's log what went wrong before failing
        ctx.log(f"stand-in {stage}: ERROR simulated failure (advanced.simulate_failure)")
        raise StandinFailure(
            f"simulated failure of stage {stage!r} (configuration advanced.simulate_failure)"
        )


def _argument(text: str, flag: str) -> list[str]:
    """Values following ``--flag`` in a CPSign @-file ([] when absent)."""
    tokens = shlex.split(text, comments=False)
    if flag not in tokens:
        return []
    values: list[str] = []
    for token in tokens[tokens.index(flag) + 1 :]:
        if token.startswith("--"):
            break
        values.append(token)
    return values


def _fake_rows(config: Mapping[str, Any], sha: str) -> list[list[str]]:
    """Rows of fake training data whose values depend on the configuration."""
    query = config["preprocessing"]["query"]
    columns = query["smi_columns"]
    target = endpoint_column(config)
    smiles_col = next((c for c in columns if "smiles" in c.lower()), columns[0])
    labels = (config.get("precompute") or {}).get("labels") or []
    regression = config["train"]["ptype"] in REGRESSION_PTYPES
    limit = query.get("query_limit") or len(_SMILES)
    rows = []
    for index, smiles in enumerate(_SMILES[:limit]):
        digest = int(_sha256(f"{sha}:{smiles}".encode())[:8], 16)
        value = f"{(digest % 1000) / 100 - 2:.2f}" if regression else labels[digest % len(labels)]
        row = []
        for column in columns:
            if column == smiles_col:
                row.append(smiles)
            elif column == target:
                row.append(value)
            else:
                row.append(f"{column}-{index}")
        rows.append(row)
    return rows


# ---------------------------------------------------------------- stages


def ingestion_handler(ctx: _Context) -> None:
    """Stand-in ingestion: validate the configuration, write fake data and the real argument files."""
    raw = _one(ctx, "/pfs/config/configuration.json", "configuration.json")
    try:
        config = validate_configuration(json.loads(raw))
    except ValueError as err:  # JSON syntax errors and ConfigurationError alike
        if isinstance(err, ConfigurationError):
            raise StandinFailure(str(err)) from None
        raise StandinFailure(f"configuration.json is not valid JSON: {err}") from None
    stage = (config.get("advanced") or {}).get("simulate_failure")
    if stage is not None and stage not in STAGES:
        raise StandinFailure(
            f"advanced.simulate_failure must be one of {list(STAGES)}, got {stage!r}"
        )
    sha = configuration_sha256(config)
    manifest = {
        "standin": True,
        "note": "stand-in output: CPSign did not run",
        "workflow_name": config["workflow_name"],
        "configuration_sha256": sha,
        "seed": effective_seed(config),
        "model_name": model_name(config),
        "simulate_failure": stage,
    }
    _maybe_fail(ctx, manifest, "ingestion")
    columns = config["preprocessing"]["query"]["smi_columns"]
    rows = _fake_rows(config, sha)
    data = "\n".join("\t".join(r) for r in [columns, *rows]) + "\n"
    ctx.write(f"/{training_data_filename(config)}", data)
    for path, text in ingestion_files(config).items():
        ctx.write(path, text)
    ctx.write(f"/{MANIFEST}", json.dumps(manifest, sort_keys=True, indent=2) + "\n")
    ctx.log(f"stand-in ingestion: {len(rows)} fake rows for configuration {sha[:12]}")


def precompute_handler(ctx: _Context) -> None:
    """Stand-in precompute: a zip of the arguments and the data's sha256 as /precomputed.jar."""
    manifest = json.loads(_one(ctx, f"/pfs/ingestion/{MANIFEST}", "ingestion manifest"))
    _maybe_fail(ctx, manifest, "precompute")
    arguments = _one(
        ctx, "/pfs/ingestion/precompute/arguments.txt", "precompute arguments"
    ).decode()
    train_data = _argument(arguments, "--train-data")
    if len(train_data) != 2:
        raise StandinFailure(
            f"precompute arguments have no '--train-data CSV <path>': {arguments!r}"
        )
    data = _one(ctx, train_data[1], "training data")
    ctx.write(
        "/precomputed.jar",
        _zip(
            {
                MANIFEST: json.dumps(manifest, sort_keys=True),
                "arguments.txt": arguments,
                "data.sha256": _sha256(data),
            }
        ),
    )
    ctx.log(f"stand-in precompute of {train_data[1]} ({len(data)} bytes)")


def train_handler(ctx: _Context) -> None:
    """Stand-in train: one partial model per parameter file (each a datum in real Pachyderm)."""
    precomputed = _one(ctx, "/pfs/precomputed/precomputed.jar", "precomputed data set")
    manifest = _manifest_from_zip(precomputed, "precomputed.jar")
    _maybe_fail(ctx, manifest, "train")
    params = _under(ctx, "/pfs/params/training/")
    if not params:
        raise StandinFailure("no parameter files under /pfs/params/training/")
    for path, raw in sorted(params.items()):
        text = raw.decode()
        out = _argument(text, "--model-out")
        if len(out) != 1 or not out[0].startswith("/pfs/out/"):
            raise StandinFailure(f"{path}: no '--model-out /pfs/out/...' in the parameter file")
        model = _zip(
            {
                MANIFEST: json.dumps(manifest, sort_keys=True),
                "params.txt": text,
                "precomputed.sha256": _sha256(precomputed),
            }
        )
        ctx.write(out[0][len("/pfs/out") :], model)
        ctx.log(f"stand-in train {path} splits={_argument(text, '--splits')} -> {out[0]}")


def aggregate_handler(ctx: _Context) -> None:
    """Stand-in aggregate: one /model/<model-name>.jar from the partial models."""
    partials = _under(ctx, "/pfs/train/models/")
    if not partials:
        raise StandinFailure("no partial models under /pfs/train/models/")
    manifest = _manifest_from_zip(next(iter(partials.values())), "partial model")
    _maybe_fail(ctx, manifest, "aggregate")
    name = _one(ctx, "/pfs/meta/aggregate/model-name.txt", "model name").decode().strip()
    entries: dict[str, bytes | str] = {
        MANIFEST: json.dumps(manifest, sort_keys=True),
        "partial-models.json": json.dumps(
            {path.rsplit("/", 1)[-1]: _sha256(data) for path, data in sorted(partials.items())},
            sort_keys=True,
        ),
    }
    ctx.write(f"/model/{name}.jar", _zip(entries))
    ctx.log(f"stand-in aggregate of {len(partials)} partial model(s) into {name}.jar")


def validate_handler(ctx: _Context) -> None:
    """Stand-in validate: /metrics.json marked as a stand-in (nothing is predicted)."""
    models = _under(ctx, "/pfs/aggregate/model/")
    if not models:
        raise StandinFailure("no model under /pfs/aggregate/model/")
    path, model = sorted(models.items())[0]
    manifest = _manifest_from_zip(model, path)
    _maybe_fail(ctx, manifest, "validate")
    ctx.write("/metrics.json", json.dumps({"standin": True, "model": path}, sort_keys=True))
    ctx.log("stand-in validate: no predictions made")


def publish_handler(ctx: _Context) -> None:
    """Stand-in publish: record a fake model-store URL in /published.json (nothing is uploaded)."""
    models = _under(ctx, "/pfs/aggregate/model/")
    if not models:
        raise StandinFailure("no model under /pfs/aggregate/model/")
    path, model = sorted(models.items())[0]
    manifest = _manifest_from_zip(model, path)
    _maybe_fail(ctx, manifest, "publish")
    name = path.rsplit("/", 1)[-1].removesuffix(".jar")
    digest = _sha256(model)
    record = {
        "standin": True,
        "model_name": name,
        "model_file": path.removeprefix("/pfs/aggregate"),
        "model_sha256": digest,
        "configuration_sha256": manifest.get("configuration_sha256"),
        "url": f"{FAKE_MODEL_STORE}/{name}?sha256={digest[:12]}",
        "job_id": ctx.job_id,
    }
    ctx.write("/published.json", json.dumps(record, sort_keys=True, indent=2) + "\n")
    ctx.log(f"stand-in publish of {name}: {record['url']}")
