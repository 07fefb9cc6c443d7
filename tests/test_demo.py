"""`make demo` (the README's first command) runs end to end, prints the run's record and
leaves the model with a command that predicts with it."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PHENOL_LINE = r"^  phenol +predicted (-?\d+\.\d+) +80%: \[(-?[\d.]+), (-?[\d.]+)\] +90%: \[(-?[\d.]+), (-?[\d.]+)\]"


def test_demo_trains_and_prints_the_record(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CPSIGN"))}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cpsign_airflow.demo",
            "--workdir",
            str(tmp_path / "demo"),
            "--json",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "demo finished: training run succeeded" in out.stdout
    assert re.search(r"run 1 +workflow FreeSolv +status succeeded", out.stdout)
    for stage in ("ingestion", "precompute", "train", "aggregate", "validate", "publish"):
        assert re.search(rf"job FreeSolv-{stage} +JOB_SUCCESS", out.stdout), stage
    assert re.search(
        r"model FreeSolv_acp: FreeSolv-aggregate@[0-9a-f]{32}:/model/FreeSolv_acp.jar", out.stdout
    )
    assert (tmp_path / "demo" / "bookkeeping.db").exists()
    # real CPSign on real data: the held-out error rate keeps the conformal guarantee
    record = json.loads(out.stdout[out.stdout.index("\n{") : out.stdout.rindex("}") + 1])
    metrics = record["metrics"]
    assert metrics["test_molecules"] == 128 and metrics["predicted"] > 90
    for confidence, error_rate in metrics["error_rate"].items():
        assert error_rate <= 1 - float(confidence) + 0.08, metrics
    assert record["artifacts"][0]["size_bytes"] > 10_000  # a CPSign model, not a placeholder
    assert "standin" not in out.stdout.lower()
    predicted = re.findall(
        r"^  (\w+) +predicted (-?\d+\.\d+) +80%: \[(-?[\d.]+), (-?[\d.]+)\]", out.stdout, re.M
    )
    assert predicted and all(float(lo) <= float(mid) <= float(hi) for _, mid, lo, hi in predicted)

    # the demo leaves its model, byte for byte the recorded artifact
    model = tmp_path / "demo" / "models" / "FreeSolv_acp.jar"
    assert model.is_file() and Path(record["model_file"]) == model.resolve()
    assert hashlib.sha256(model.read_bytes()).hexdigest() == record["artifacts"][0]["sha256"]
    # ... and prints a one-line command that predicts phenol with it; run as printed, from
    # the repository root, in a shell without the demo's environment
    command = re.search(r"^predict a molecule with it.*\n  (.+)$", out.stdout, re.M).group(1)
    assert command == record["predict_command"]
    shell_env = {k: v for k, v in env.items() if k in ("PATH", "HOME", "JAVA_HOME", "LANG")}
    shell_env["PATH"] = os.pathsep.join(
        d
        for d in shell_env.get("PATH", "").split(os.pathsep)
        if Path(d) != Path(sys.executable).parent
    )
    predicted_here = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", command],
        cwd=REPO, env=shell_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert predicted_here.returncode == 0, predicted_here.stderr
    (phenol,) = json.loads(predicted_here.stdout)
    assert phenol["molecule"] == {"smiles": "c1ccccc1O"}
    result = phenol["prediction"]
    shown = [f"{result['midpoint']:.2f}"]
    for interval in result["intervals"]:
        shown += [f"{interval['rangeLower']:.2f}", f"{interval['rangeUpper']:.2f}"]
    assert [i["confidence"] for i in result["intervals"]] == [0.8, 0.9]
    assert list(re.search(PHENOL_LINE, out.stdout, re.M).groups()) == shown


def test_predict_command_is_relative_to_the_repository_and_quoted(tmp_path):
    from cpsign_airflow.demo import predict_command

    workdir = tmp_path / ".demo"
    command = predict_command(
        workdir, workdir / "models" / "FreeSolv_acp.jar", "c1ccc(cc1)O", cwd=tmp_path
    )
    assert command == (
        "printf 'smiles\\n%s\\n' 'c1ccc(cc1)O' > .demo/predict.tsv && .demo/bin/cpsign predict"
        " --model .demo/models/FreeSolv_acp.jar --predict-file TSV .demo/predict.tsv"
        " --confidences 0.8,0.9"
    )
    # outside the working directory the paths are absolute
    elsewhere = predict_command(workdir, workdir / "models" / "m.jar", cwd=tmp_path / "x")
    assert f"{workdir}/bin/cpsign predict --model {workdir}/models/m.jar" in elsewhere
