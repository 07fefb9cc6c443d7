"""`make demo` (the README's first command) runs end to end and prints the run's record."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


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
