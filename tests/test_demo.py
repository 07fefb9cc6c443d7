"""`make demo` (the README's first command) runs end to end and prints the run's record."""

from __future__ import annotations

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
    assert re.search(r"run 1 +workflow LogD +status succeeded", out.stdout)
    for stage in ("ingestion", "precompute", "train", "aggregate", "validate", "publish"):
        assert re.search(rf"job LogD-{stage} +JOB_SUCCESS", out.stdout), stage
    assert re.search(
        r"model LogD_full_split: LogD-aggregate@[0-9a-f]{32}:/model/LogD_full_split.jar", out.stdout
    )
    assert (tmp_path / "demo" / "bookkeeping.db").exists()
