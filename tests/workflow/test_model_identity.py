"""One verdict per distinct model, decided in one place (issue #24).

``record_outcome`` runs on real bookkeeping (MariaDB and SQLite); only pachd is
replaced, by a hook that serves model jars built here with zipfile (differing, where
a test says so, only in build metadata) and the validate stage's metrics.
"""

from __future__ import annotations

import copy
import hashlib
import io
import itertools
import json
import threading
import zipfile
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy

from cpsign_airflow.cpsign.quality import HELD_BACK, PASSED, UNCHANGED

MODEL = "FreeSolv_acp"
REGRESSION = {
    "model_name": MODEL,
    "ptype": 2,
    "confidences": [0.8, 0.9],
    "error_rate": {"0.8": 0.142, "0.9": 0.047},
    "median_interval_width": {"0.8": 3.04, "0.9": 5.76},
    "efficiency": {"0.8": 3.04, "0.9": 5.76},
}


def widths(w80: float, w90: float) -> dict[str, Any]:
    """REGRESSION with other median interval widths (the efficiency the gate compares)."""
    out = copy.deepcopy(REGRESSION)
    out["median_interval_width"] = out["efficiency"] = {"0.8": w80, "0.9": w90}
    return out


def jar(weights: str, built: int, *, reorder: bool = False) -> bytes:
    """A CPSign-like model jar: the model is ``weights``; ``built`` is the build's
    metadata (manifest Bundle-Version, cpsign.json modelVersion/buildTimestamp, entry times)."""
    stamp = f"1.0.0+2026-12-06T11:{built // 60:02d}:{built % 60:02d}.7416Z"
    info = {"modelVersion": stamp, "modelName": MODEL, "buildTimestamp": f"Sun Dec 06 {built}"}
    entries = {
        "META-INF/MANIFEST.MF": (
            "Manifest-Version: 1.0\r\nBundle-Name: FreeSolv\r\n"
            f"Bundle-Version: {stamp}\r\nMain-Class: RunMe\r\n\r\n"
        ),
        "models/acp/model.0.ncs": f"support vectors of {weights}",
        "models/acp/meta.json": json.dumps({"seedValue": 978590463, "cost": 1.0}),
        "cpsign.json": json.dumps(
            {"parameters": {"modelName": MODEL, "modelVersion": stamp}, "info": info}
        ),
    }
    names = sorted(entries, reverse=reorder)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            entry = zipfile.ZipInfo(name, date_time=(2026, 12, 6, 11, built % 60, 0))
            archive.writestr(entry, entries[name])
    return buffer.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------ the content hash


def test_content_hash_leaves_out_build_metadata_only():
    from cpsign_airflow.workflow.training import model_content_sha256

    first, rebuilt = jar("a", 1), jar("a", 2, reorder=True)
    assert sha(first) != sha(rebuilt)
    assert model_content_sha256(first) == model_content_sha256(rebuilt)
    assert model_content_sha256(jar("b", 1)) != model_content_sha256(first)
    # another manifest header or cpsign.json value is the model's, not the build's
    other = zipfile.ZipFile(io.BytesIO(first))
    for name, change in (
        ("META-INF/MANIFEST.MF", lambda t: t.replace("Main-Class: RunMe", "Main-Class: Other")),
        ("cpsign.json", lambda t: t.replace('"modelName": "FreeSolv_acp"', '"modelName": "x"')),
    ):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as out:
            for item in other.infolist():
                text = other.read(item).decode()
                copied = zipfile.ZipInfo(item.filename, date_time=item.date_time)
                out.writestr(copied, change(text) if item.filename == name else text)
        assert model_content_sha256(buffer.getvalue()) != model_content_sha256(first), name
    # not a zip (a stand-in file): the hash of its bytes
    assert model_content_sha256(b"not a jar") == sha(b"not a jar")


# ------------------------------------------------------------------ record_outcome


class Lab:
    """Runs of workflows recorded in bookkeeping, a pachd that serves each commit's jar and
    metrics, and the alerts sent."""

    def __init__(self, conn_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
        from cpsign_airflow.bookkeeping.hook import BookkeepingHook

        self.conn_id = conn_id
        self.hook = BookkeepingHook(conn_id)
        self.served: dict[str, tuple[bytes, dict]] = {}
        self.alerts: list[tuple[str, dict]] = []
        self.commits = itertools.count(1)
        with self.hook.get_ledger() as ledger:
            ledger.upgrade_schema()
        lab = self

        class Pachd:
            def __init__(self, pachyderm_conn_id: str = "", project: Any = None) -> None:
                pass

            def list_files(self, repo: str, commit: str, path: str) -> list[dict]:
                return [{"path": f"/model/{MODEL}.jar"}]

            def read_file(self, repo: str, commit: str, path: str) -> bytes:
                data, metrics = lab.served[commit]
                return json.dumps(metrics).encode() if repo.endswith("-validate") else data

        def send_alert(context: dict, kind: str) -> None:
            self.alerts.append((kind, dict(context)))

        monkeypatch.setattr("cpsign_airflow.hooks.pachyderm.PachydermHook", Pachd)
        monkeypatch.setattr("cpsign_airflow.notifications.send_alert", send_alert)

    def committed(self, workflow: str, model: bytes, metrics: dict, config: int = 1) -> tuple:
        """A run committed with its configuration, whose commit set yields ``model``."""
        commit = f"{next(self.commits):032x}"
        with self.hook.get_ledger() as ledger:
            run_id = ledger.record_pending_run(workflow, {"workflow_name": workflow, "c": config})
            ledger.mark_committed(run_id, commit, commit)
        self.served[commit] = (model, metrics)
        return run_id, commit, workflow

    def outcome(self, run: tuple) -> dict[str, Any]:
        from cpsign_airflow.workflow import training

        run_id, commit, workflow = run
        jobs = [{"pipeline": f"{workflow}-train", "job_id": commit, "state": "JOB_SUCCESS"}]
        event = SimpleNamespace(extra=None)
        result = training.record_outcome.function(
            run_id, jobs, workflow, commit, "pachyderm_default", None,
            self.conn_id, 0.05, 0.1, outlet_events={training.MODELS_ASSET: event},
        )  # fmt: skip
        return result["verdicts"][MODEL]

    def trained(self, workflow: str, model: bytes, metrics: dict, config: int = 1) -> dict:
        return self.outcome(self.committed(workflow, model, metrics, config))

    def artifact(self, run: tuple) -> Any:
        with self.hook.get_ledger() as ledger:
            [art] = ledger.list_artifacts(run[0])
            return art

    def held_back_alerts(self) -> list[dict]:
        return [context for kind, context in self.alerts if kind == "held_back"]


@pytest.fixture
def lab(bookkeeping_conn_id, monkeypatch) -> Lab:
    return Lab(bookkeeping_conn_id, monkeypatch)


#: Orders in which three concurrent runs reach the decision: all three at once, and
#: each one after another in every order (a later-committed run may decide first).
INTERLEAVINGS = ["together", *itertools.permutations(range(3))]


def test_three_concurrent_runs_of_one_model_get_one_verdict_and_one_alert(lab, monkeypatch):
    """The same model from three concurrent runs (three builds: three sha256, one content
    hash), held back against the accepted model before them: in every interleaving one
    run decides, the other two carry its verdict, and one alert goes out."""
    from cpsign_airflow.bookkeeping import ledger as ledger_module
    from cpsign_airflow.bookkeeping.ledger import TrainingLedger

    script: dict[str, Any] = {}
    lock = ledger_module._lock_workflow
    decide = TrainingLedger.decide_quality

    def locked(conn: Any, workflow_id: int) -> None:  # the decision point
        me = threading.current_thread().name
        script["arrived"][me].set()
        for turn in script["before"][me]:  # forced order: wait for the runs before me
            assert turn.wait(60), "a run before this one never decided"
        lock(conn, workflow_id)

        def leaving(*_: Any) -> None:  # the decision ends with its transaction
            with script["guard"]:
                script["inside"].discard(me)

        for end in ("commit", "rollback"):
            sqlalchemy.event.listen(conn, end, leaving)
        with script["guard"]:
            script["inside"].add(me)
            script["overlap"] = max(script["overlap"], len(script["inside"]))
            alone = len(script["inside"]) == 1
            if not alone:
                script["other_inside"].set()
        if script["mode"] == "together" and alone and me != "MainThread":
            # holding the lock with the others at its door: none of them may get in now
            script["other_inside"].wait(0.3)

    def deciding(self: Any, *args: Any, **kwargs: Any) -> Any:
        me = threading.current_thread().name
        try:
            return decide(self, *args, **kwargs)
        finally:
            script["decided"][me].set()

    monkeypatch.setattr(ledger_module, "_lock_workflow", locked)
    monkeypatch.setattr(TrainingLedger, "decide_quality", deciding)

    results = []
    for number, order in enumerate(INTERLEAVINGS):
        workflow = f"Concurrent{number}"
        lab.alerts.clear()
        names = [f"{workflow}-run{i}" for i in range(3)]
        script.update(
            mode="together" if order == "together" else "ordered",
            guard=threading.Lock(),
            inside=set(),
            overlap=0,
            other_inside=threading.Event(),
            arrived={n: threading.Event() for n in names},
            decided={n: threading.Event() for n in names},
            before={n: [] for n in names},
        )
        script["before"]["MainThread"] = []
        script["arrived"]["MainThread"] = threading.Event()
        script["decided"]["MainThread"] = threading.Event()
        assert lab.trained(workflow, jar("baseline", 0), REGRESSION)["quality"] == PASSED
        runs = [lab.committed(workflow, jar("wider", 10 + i), widths(4.0, 5.76)) for i in range(3)]
        if order == "together":  # each waits until all three are at the decision point
            for name in names:
                script["before"][name] = [script["arrived"][n] for n in names]
        else:
            for previous, name in zip(order, order[1:], strict=False):
                script["before"][names[name]] = [script["decided"][names[previous]]]

        verdicts: dict[int, dict] = {}
        errors: list[BaseException] = []

        def run(i: int, run: tuple, verdicts: dict = verdicts, errors: list = errors) -> None:
            try:
                verdicts[i] = lab.outcome(run)
            except BaseException as err:  # re-raised below
                errors.append(err)

        threads = [threading.Thread(target=run, args=(i, runs[i]), name=names[i]) for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors, errors
        assert script["overlap"] == 1, f"{order}: two decisions at once"

        run_ids = [r[0] for r in runs]
        decided = [i for i in range(3) if verdicts[i]["carried_from"] is None]
        assert len(decided) == 1, (order, verdicts)
        decider = run_ids[decided[0]]
        if order != "together":
            assert decided == [order[0]]  # the first to reach the decision decides
        assert [verdicts[i]["quality"] for i in range(3)] == [HELD_BACK] * 3
        for i in range(3):
            if i != decided[0]:
                assert verdicts[i]["carried_from"] == decider
                assert f"same model as run {decider} (content sha256" in verdicts[i]["reason"]
        alerts = lab.held_back_alerts()
        assert len(alerts) == 1, (order, len(alerts))
        reason = verdicts[decided[0]]["reason"]
        assert alerts[0]["held_back"] == {MODEL: reason}
        arts = [lab.artifact(r) for r in runs]
        assert len({a.sha256 for a in arts}) == 3 and len({a.content_sha256 for a in arts}) == 1
        assert [a.quality for a in arts] == [HELD_BACK] * 3
        results.append(([verdicts[i]["quality"] for i in range(3)], len(alerts), reason))

    assert "exceeds the bound 3.344" in results[0][2]  # judged against the baseline run
    assert all(result == results[0] for result in results), results


def test_no_change_retraining_after_a_held_back_model_carries_it_without_a_second_alert(lab):
    workflow = "HeldBack"
    first = lab.trained(workflow, jar("a", 1), REGRESSION)
    assert first["quality"] == PASSED
    held = lab.committed(workflow, jar("h", 2), widths(4.0, 5.76))
    verdict = lab.outcome(held)
    assert verdict["quality"] == HELD_BACK and verdict["carried_from"] is None
    assert len(lab.held_back_alerts()) == 1

    # pachd skipped every datum: the byte-identical jar
    skipped = lab.committed(workflow, jar("h", 2), widths(4.0, 5.76))
    again = lab.outcome(skipped)
    # retrained from scratch: the same model, built again
    rebuilt = lab.committed(workflow, jar("h", 3), widths(4.0, 5.76))
    once_more = lab.outcome(rebuilt)
    for carried in (again, once_more):
        assert carried["quality"] == HELD_BACK and carried["carried_from"] == held[0]
        assert f"same model as run {held[0]}" in carried["reason"]
        assert verdict["reason"] in carried["reason"]  # the original reason, not a chain
    assert f"(sha256 {lab.artifact(held).sha256})" in again["reason"]
    assert "differ only in build metadata" in once_more["reason"]
    assert len(lab.held_back_alerts()) == 1  # no second "held back" mail
    # a retried task returns the recorded verdict and alerts nothing either
    assert lab.outcome(rebuilt) == once_more
    assert len(lab.held_back_alerts()) == 1


def test_retraining_after_an_ad_hoc_run_of_another_configuration_is_unchanged(lab):
    """The retraining is trained from scratch (pachd's skipping is relative to the previous
    job, the ad-hoc one): a new jar, the same model."""
    workflow = "AdHoc"
    scheduled = lab.committed(workflow, jar("m", 1), REGRESSION, config=1)
    assert lab.outcome(scheduled)["quality"] == PASSED
    ad_hoc = lab.committed(workflow, jar("n", 2), widths(2.0, 4.0), config=2)
    assert lab.outcome(ad_hoc)["quality"] == PASSED
    retrained = lab.committed(workflow, jar("m", 3), REGRESSION, config=1)
    verdict = lab.outcome(retrained)
    assert verdict["quality"] == UNCHANGED and verdict["carried_from"] == scheduled[0]
    assert f"same model as run {scheduled[0]} (content sha256" in verdict["reason"]
    before, now = lab.artifact(scheduled), lab.artifact(retrained)
    assert now.content_sha256 == before.content_sha256 and now.sha256 != before.sha256
    assert (now.quality, now.verdict_run_id) == (UNCHANGED, scheduled[0])
    assert lab.held_back_alerts() == []


def test_the_baseline_is_the_newest_accepted_model_of_several(lab):
    workflow = "Newest"
    assert lab.trained(workflow, jar("1", 1), REGRESSION)["quality"] == PASSED
    assert lab.trained(workflow, jar("2", 2), widths(2.0, 4.0))["quality"] == PASSED
    # within 10 % of the oldest (3.04), not of the newest (2.0)
    verdict = lab.trained(workflow, jar("3", 3), widths(2.5, 4.2))
    assert verdict["quality"] == HELD_BACK
    assert "median interval width 2.5 at confidence 0.8 exceeds the bound 2.2" in verdict["reason"]


def test_a_model_recorded_twice_carries_the_newest_verdict(lab):
    """Two earlier runs with the model (recorded before verdicts were kept per identity):
    the newer verdict is the one carried."""
    workflow = "Twice"
    model = jar("x", 1)
    runs = []
    for quality, reason in [(HELD_BACK, "too wide then"), (PASSED, "valid")]:
        run_id, commit, _ = lab.committed(workflow, model, REGRESSION)
        runs.append(run_id)
        with lab.hook.get_ledger() as ledger:
            location = f"{workflow}-aggregate@{commit}:/model/{MODEL}.jar"
            ledger.record_artifacts(run_id, [{"model_name": MODEL, "location": location,
                                              "sha256": sha(model)}])  # fmt: skip
            ledger.record_quality(run_id, MODEL, quality, reason)
            ledger.finish_run(run_id, "succeeded")
    verdict = lab.trained(workflow, model, REGRESSION)
    assert (verdict["quality"], verdict["carried_from"]) == (UNCHANGED, runs[1])


def test_runs_in_flight_together_are_not_each_others_baseline_whichever_finishes_first(lab):
    """Runs A and B are committed before either finishes: each is judged against the model
    accepted before them, in either finishing order. A run committed after both is judged
    against the later-committed one (B), not the later-finished."""
    outcomes = []
    for number, b_first in enumerate((False, True)):
        workflow = f"InFlight{number}"
        assert lab.trained(workflow, jar("0", 0), REGRESSION)["quality"] == PASSED
        a = lab.committed(workflow, jar("a", 1), widths(2.0, 4.0))
        b = lab.committed(workflow, jar("b", 2), widths(3.0, 5.5))  # worse than A, not than 0
        verdicts = {}
        for name, run in [("b", b), ("a", a)] if b_first else [("a", a), ("b", b)]:
            verdicts[name] = lab.outcome(run)
        assert verdicts["a"]["quality"] == verdicts["b"]["quality"] == PASSED
        later = lab.trained(workflow, jar("c", 3), widths(3.4, 5.9))
        assert later["quality"] == HELD_BACK  # against B (3.0 -> 3.3), not A nor 0
        assert "exceeds the bound 3.3 (previous 3 + 10%)" in later["reason"]
        outcomes.append((verdicts["a"]["reason"], verdicts["b"]["reason"], later["reason"]))
    assert outcomes[0] == outcomes[1]
