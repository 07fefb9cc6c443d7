"""The quality gate: should a newly trained model be served?

:func:`quality_verdict` judges the ``metrics.json`` the ``validate`` pipeline
writes, against two ``[cpsign]`` settings:

* **validity** (``validity_tolerance``, default :data:`VALIDITY_TOLERANCE`): at each confidence ``c``
  the observed error rate may exceed ``1 - c`` by at most the tolerance;
* **efficiency** (``efficiency_margin``, default :data:`EFFICIENCY_MARGIN`): compared with the last
  accepted model of the workflow (published or passed; see
  :meth:`~cpsign_airflow.bookkeeping.ledger.TrainingLedger.decide_quality`),
  at the same confidence, efficiency may worsen by at most this fraction.
  Regression efficiency is the median interval width (lower is better);
  classification efficiency is the share of single-label sets (higher is
  better). Venn-ABERS (ptype 5) has no error rate: it passes on validity and
  only its Brier score (lower is better) is compared with the previous model's.

A model with no validity metrics at all (a stand-in pipeline, an older stage
image) passes: the gate cannot judge it and says so. The function is pure; the
``record_outcome`` task of the training chain records and acts on the verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

PASSED = "passed"
HELD_BACK = "held_back"
UNCHANGED = "unchanged"

#: The gate's defaults: ``[cpsign] validity_tolerance`` and ``efficiency_margin`` default to
#: these in provider.yaml (tests/provider/test_provider_config.py), the publish stage's
#: ``--validity-tolerance`` and the specs' ``validity_tolerance`` variable too.
VALIDITY_TOLERANCE = 0.05
EFFICIENCY_MARGIN = 0.1

#: Venn-ABERS predictor type: probabilities, no prediction sets, no error rate.
VAP_PTYPE = 5


def _num(value: Any) -> float | None:
    """A finite number, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _check_setting(name: str, value: Any) -> float:
    number = _num(value)
    if number is None or number < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def _efficiency_direction(metrics: Mapping[str, Any]) -> str | None:
    """``lower`` (interval width) or ``higher`` (single-label share) is better; None: unknown."""
    if "median_interval_width" in metrics:
        return "lower"
    if "single_label_share" in metrics:
        return "higher"
    return None


def _confidence(key: Any) -> float | None:
    try:
        value = float(key)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and 0 < value < 1 else None


def quality_verdict(
    metrics: Mapping[str, Any] | None,
    previous: Mapping[str, Any] | None,
    tolerance: float = VALIDITY_TOLERANCE,
    margin: float = EFFICIENCY_MARGIN,
) -> tuple[str, str]:
    """``("passed" | "held_back", reason)`` for a model's validation ``metrics``.

    ``previous`` is the metrics of the last accepted model of the workflow (or
    None). The reason names, for each check, the confidence, the observed value
    and the bound; a held-back verdict lists every failed check first.
    """
    tolerance = _check_setting("validity_tolerance", tolerance)
    margin = _check_setting("efficiency_margin", margin)
    if not isinstance(metrics, Mapping):
        return PASSED, "no validity metrics (no metrics.json recorded); not gated"

    failures: list[str] = []
    notes: list[str] = []

    # --------------------------------------------------------------- validity
    error_rate = metrics.get("error_rate")
    is_vap = metrics.get("ptype") == VAP_PTYPE or (
        error_rate is None and "brier" in metrics and "efficiency" not in metrics
    )
    if isinstance(error_rate, Mapping) and error_rate:
        worst: tuple[float, str, float, float] | None = None  # (slack, key, value, bound)
        for key, value in sorted(error_rate.items(), key=lambda kv: str(kv[0])):
            confidence = _confidence(key)
            observed = _num(value)
            if confidence is None or observed is None:
                failures.append(f"unreadable error rate {value!r} at confidence {key!r}")
                continue
            bound = 1 - confidence + tolerance
            if observed > bound + 1e-12:
                failures.append(
                    f"error rate {_fmt(observed)} at confidence {key} exceeds the bound "
                    f"{_fmt(bound)} (1 - {key} + tolerance {_fmt(tolerance)})"
                )
            elif worst is None or bound - observed < worst[0]:
                worst = (bound - observed, str(key), observed, bound)
        if worst is not None and not failures:
            notes.append(
                f"valid at {len(error_rate)} confidence(s); closest: error rate "
                f"{_fmt(worst[2])} at confidence {worst[1]} <= bound {_fmt(worst[3])}"
            )
    elif error_rate is not None and not isinstance(error_rate, Mapping):
        failures.append(f"unreadable error_rate {error_rate!r}")
    elif is_vap:
        notes.append("passed on validity: Venn-ABERS reports no error rate")
    else:
        # Neither an error rate nor a Venn-ABERS result: nothing to judge.
        if _efficiency_direction(metrics) is None and not isinstance(
            metrics.get("efficiency"), Mapping
        ):
            return PASSED, "no validity metrics (metrics.json has no error_rate); not gated"
        notes.append("no error rate in metrics.json; validity not checked")

    # --------------------------------------------------------------- efficiency
    if not isinstance(previous, Mapping):
        notes.append("no previous accepted model; efficiency not compared")
    elif (
        _num(metrics.get("ptype")) is not None
        and _num(previous.get("ptype")) is not None
        and metrics.get("ptype") != previous.get("ptype")
    ):
        notes.append(
            f"previous accepted model has ptype {previous.get('ptype')}, this one "
            f"{metrics.get('ptype')}; efficiency not compared"
        )
    elif is_vap:
        observed, before = _num(metrics.get("brier")), _num(previous.get("brier"))
        if observed is None or before is None:
            notes.append("no Brier score to compare with the previous model")
        else:
            bound = before * (1 + margin)
            if observed > bound + 1e-12:
                failures.append(
                    f"Brier score {_fmt(observed)} exceeds the bound {_fmt(bound)} "
                    f"(previous {_fmt(before)} + {_fmt(margin * 100)}%)"
                )
            else:
                notes.append(f"Brier score {_fmt(observed)} <= bound {_fmt(bound)}")
    else:
        _compare_efficiency(metrics, previous, margin, failures, notes)

    if failures:
        return HELD_BACK, "; ".join(failures + notes)
    return PASSED, "; ".join(notes)


def _compare_efficiency(
    metrics: Mapping[str, Any],
    previous: Mapping[str, Any],
    margin: float,
    failures: list[str],
    notes: list[str],
) -> None:
    direction = _efficiency_direction(metrics) or _efficiency_direction(previous)
    current, before = metrics.get("efficiency"), previous.get("efficiency")
    if direction is None or not isinstance(current, Mapping) or not isinstance(before, Mapping):
        notes.append("no efficiency to compare with the previous model")
        return
    what = "median interval width" if direction == "lower" else "single-label share"
    compared = 0
    for key in sorted(set(current) & set(before), key=str):
        observed, old = _num(current[key]), _num(before[key])
        if old is None:
            continue
        if observed is None:
            failures.append(f"unreadable efficiency {current[key]!r} at confidence {key}")
            continue
        compared += 1
        if direction == "lower":
            bound = old * (1 + margin)
            worse = observed > bound + 1e-12
            relation = "exceeds" if worse else "<="
            sign = "+"
        else:
            bound = old * (1 - margin)
            worse = observed < bound - 1e-12
            relation = "is below" if worse else ">="
            sign = "-"
        text = (
            f"{what} {_fmt(observed)} at confidence {key} {relation} the bound {_fmt(bound)} "
            f"(previous {_fmt(old)} {sign} {_fmt(margin * 100)}%)"
        )
        (failures if worse else notes).append(text)
    if not compared:
        notes.append("no confidence in common with the previous model; efficiency not compared")


def unchanged_verdict(artifact: Mapping[str, Any], previous: Any) -> tuple[str, str] | None:
    """``("unchanged", reason)`` when ``artifact`` is the same model as ``previous``, else None.

    The same model: the same content hash (the jar less its build metadata:
    ``model_content_sha256`` in :mod:`cpsign_airflow.workflow.model_identity`), or the
    same sha256. ``previous`` is the earlier model with a verdict (an
    :class:`~cpsign_airflow.bookkeeping.records.ArtifactRecord`, or None). Its
    verdict carries over: a held-back model stays held back.
    """
    if previous is None:
        return None
    sha, content = artifact.get("sha256"), artifact.get("content_sha256")
    if sha and sha == previous.sha256:
        same = f"sha256 {sha}"
    elif content and content == getattr(previous, "content_sha256", None):
        same = f"content sha256 {content}; the jars differ only in build metadata"
    else:
        return None
    if previous.quality == HELD_BACK:
        return HELD_BACK, (
            f"same model as run {previous.run_id} ({same}), which was held back: "
            f"{previous.quality_reason}"
        )
    return UNCHANGED, (
        f"same model as run {previous.run_id} ({same}): no new data; "
        "nothing judged, published or deployed again"
    )


# --------------------------------------------------------------------------- reading metrics


def by_confidence(values: Any) -> dict[float, float]:
    """``{"0.8": 0.17}`` → ``{0.8: 0.17}``; unreadable entries are left out."""
    out: dict[float, float] = {}
    if not isinstance(values, Mapping):
        return out
    for key, value in values.items():
        try:
            c, v = float(key), float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(c) and math.isfinite(v):
            out[round(c, 9)] = v
    return out


def metric_rows(metrics: Mapping[str, Any] | None) -> list[tuple[float, float, float | None]]:
    """(confidence, validity, efficiency) of a model, ascending by confidence: what the
    models page and the alerts show."""
    metrics = metrics or {}
    rates = by_confidence(metrics.get("error_rate"))
    efficiency = by_confidence(metrics.get("efficiency"))
    return [(c, 1.0 - rates[c], efficiency.get(c)) for c in sorted(rates)]
