"""The history plot, drawn on the server as SVG by matplotlib.

Server-side SVG needs no JavaScript and fetches nothing at run time; the page
embeds it inline, so the browser draws it with the page. Elements carry ids
(``validity``, ``efficiency``, ``held-back``, ``target-confidence``) that tests
and stylesheets can find. Only matplotlib's object API is used (no pyplot's
global figures); the two SVG ``rcParams`` it sets are the same on every call.

A plot of 200 runs takes most of a second of CPU in the api-server, which
also serves Airflow's Execution API: renders are cached by their data (a
reload of an unchanged history draws nothing) and done one at a time.
"""

from __future__ import annotations

import functools
import io
import logging
import re
import threading
from collections.abc import Sequence

from cpsign_airflow.models_page.reader import HistoryPoint

log = logging.getLogger(__name__)

VALIDITY_COLOR = "#017cee"  # Airflow's blue
EFFICIENCY_COLOR = "#11a36b"
HELD_BACK_COLOR = "#d62728"
TARGET_COLOR = "#6b7280"


_RENDER_LOCK = threading.Lock()


#: Shown on the page instead of the plot when matplotlib is not installed.
UNAVAILABLE_NOTE = (
    "The history plot needs matplotlib, which is not installed here: "
    "pip install 'cpsign-airflow[chart]' in the api-server's environment."
)


@functools.cache
def available() -> bool:
    """Whether matplotlib is installed (the ``chart`` extra); logged once when it is not."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        log.warning("models page: %s The page shows the runs without it.", UNAVAILABLE_NOTE)
        return False
    return True


def history_svg(
    points: Sequence[HistoryPoint], confidence: float, efficiency_label: str
) -> str | None:
    """Validity and efficiency over runs (oldest left), one SVG document without prolog.

    ``None`` without matplotlib (the ``chart`` extra): the page shows
    :data:`UNAVAILABLE_NOTE` instead.
    """
    if not available():
        return None
    return _cached_svg(tuple(points), confidence, efficiency_label)


@functools.lru_cache(maxsize=64)
def _cached_svg(points: tuple[HistoryPoint, ...], confidence: float, efficiency_label: str) -> str:
    with _RENDER_LOCK:
        return _render(points, confidence, efficiency_label)


def _render(points: Sequence[HistoryPoint], confidence: float, efficiency_label: str) -> str:
    from matplotlib import rcParams
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    rcParams["svg.fonttype"] = "none"  # text stays text: searchable, smaller
    rcParams["svg.hashsalt"] = "cpsign-models"  # stable ids: the same data, the same SVG

    xs = list(range(len(points)))
    labels = [f"#{p.run_id}" for p in points]
    figure = Figure(figsize=(9, 5.2), layout="constrained")
    FigureCanvasSVG(figure)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 2])

    validity = [p.validity for p in points]
    top.plot(xs, validity, marker="o", color=VALIDITY_COLOR, label="validity", gid="validity")
    top.axhline(
        confidence,
        color=TARGET_COLOR,
        linestyle="--",
        linewidth=1.2,
        label=f"target confidence {confidence:g}",
        gid="target-confidence",
    )
    held = [(x, p.validity) for x, p in zip(xs, points, strict=True) if p.held_back]
    if held:
        top.plot(
            [x for x, _ in held],
            [v for _, v in held],
            linestyle="none",
            marker="X",
            markersize=11,
            color=HELD_BACK_COLOR,
            label="held back",
            gid="held-back",
        )
    low = min([confidence, *(v for v in validity if v is not None)], default=confidence)
    top.set_ylim(max(0.0, low - 0.1), 1.02)
    top.set_ylabel(f"validity at {confidence:g}")
    top.set_title("Share of test molecules inside the prediction", loc="left", fontsize=10)
    top.legend(loc="lower left", fontsize=8, frameon=False, ncols=3)
    top.grid(axis="y", alpha=0.3)

    efficiency = [p.efficiency for p in points]
    bottom.plot(
        xs, efficiency, marker="s", color=EFFICIENCY_COLOR, label="efficiency", gid="efficiency"
    )
    bottom.set_ylabel(efficiency_label.split(" (")[0], fontsize=9)
    bottom.set_title(f"Efficiency at {confidence:g}: {efficiency_label}", loc="left", fontsize=10)
    bottom.grid(axis="y", alpha=0.3)
    bottom.set_xticks(xs, labels, rotation=45 if len(xs) > 12 else 0, fontsize=8)
    bottom.set_xlabel("training run")

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    # a fixed width/height would overflow narrow screens; the viewBox keeps the aspect
    return re.sub(
        r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 width="100%"', svg, count=1
    )
