"""A terminal chart of loss curves: train and val loss against the step, in braille dots.

Each character cell holds 2x4 dots, so a 60x10 plot area is a 120x40 grid. Points are
averaged per dot column, so the noisy per-step train loss comes out smoothed, and
consecutive columns are joined, so a sparse series (a val point every 500 steps) reads
as a line too. A series keeps at most :data:`MAX_POINTS` points: past that, neighbours
are merged in pairs, so memory and drawing cost stay flat however long the run.

Used by the Train screen (live curves) and anywhere a checkpoint's history is shown
(:meth:`LossChart.set_history`).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from .border import FittedBorder

SERIES = ("train", "val")  # drawing order: val is drawn over train where both fall in a cell
MAX_POINTS = 2048  # per series; merged in pairs beyond this
ZOOM_SKIP, ZOOM_MIN = 0.1, 50  # the y range leaves out the first 10% of steps of curves this dense
GUTTER = 7  # columns for the y labels: "12.34 ┤"
# Braille dot bits by (column in cell, row in cell): U+2800 + the OR of the dots that are set.
DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))

Point = tuple[float, float]  # (step, loss)


def _label(v: float) -> str:
    return f"{v:5.2f}" if abs(v) < 100 else f"{v:5.0f}"


class LossChart(FittedBorder, Widget):
    """Train and val loss curves sharing one step axis and one loss axis.

    Feed it with :meth:`add` (a few points at a time, as a run goes) or replace a
    series with :meth:`set_points`; the top row is a legend with each series' latest
    value (and the best val), the bottom row the step range.
    """

    COMPONENT_CLASSES = {"loss-chart--train", "loss-chart--val", "loss-chart--axis", "loss-chart--empty"}

    DEFAULT_CSS = """
    LossChart {
        height: 10;
        min-height: 4;
    }
    LossChart > .loss-chart--train {
        color: $primary;
    }
    LossChart > .loss-chart--val {
        color: $warning;
    }
    LossChart > .loss-chart--axis {
        color: $text-muted;
    }
    LossChart > .loss-chart--empty {
        color: $text-muted;
        text-style: italic;
    }
    """

    def __init__(self, empty: str = "No loss values yet.", *, name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.empty = empty
        self._points: dict[str, list[Point]] = {s: [] for s in SERIES}
        self._last: dict[str, float] = {}  # the latest raw value per series (merging averages the stored ones)
        self._best: dict[str, float] = {}
        self._count: dict[str, int] = {s: 0 for s in SERIES}
        self._stride: dict[str, int] = {s: 1 for s in SERIES}  # received points per stored point
        self._acc: dict[str, list[float]] = {s: [0.0, 0.0, 0] for s in SERIES}  # x sum, y sum, n of a partial one

    def on_resize(self) -> None:
        self.fit_border()

    # -- data ------------------------------------------------------------------------------
    def add(self, series: str, points: Iterable[Point]) -> None:
        """Append ``(step, loss)`` points to ``series`` ("train" or "val"); non-finite
        losses are skipped (a diverged step would flatten the rest of the curve)."""
        stored, acc = self._points[series], self._acc[series]
        for x, y in points:
            if not (math.isfinite(x) and math.isfinite(y)):
                continue
            self._last[series] = y
            self._best[series] = min(y, self._best.get(series, math.inf))
            self._count[series] += 1
            # Every stored point is the mean of ``stride`` received ones: gather them first.
            acc[0] += x
            acc[1] += y
            acc[2] += 1
            if acc[2] == self._stride[series]:
                stored.append((acc[0] / acc[2], acc[1] / acc[2]))
                acc[:] = [0.0, 0.0, 0]
            if len(stored) > MAX_POINTS:
                # Merge neighbours in pairs and double the stride, so every stored point
                # keeps standing for as many steps as every other.
                odd = stored[-1:] if len(stored) % 2 else []
                stored[:] = [((a[0] + b[0]) / 2, (a[1] + b[1]) / 2) for a, b in zip(stored[0::2], stored[1::2])]
                self._stride[series] *= 2
                if odd:  # the unpaired last point goes back into the accumulator
                    n = self._stride[series] // 2
                    acc[:] = [acc[0] + odd[0][0] * n, acc[1] + odd[0][1] * n, acc[2] + n]
        self.refresh()

    def set_points(self, series: str, points: Iterable[Point]) -> None:
        """Replace ``series`` with ``points``."""
        self._points[series] = []
        self._last.pop(series, None)
        self._best.pop(series, None)
        self._count[series] = 0
        self._stride[series] = 1
        self._acc[series] = [0.0, 0.0, 0]
        self.add(series, points)

    def set_history(self, history: Iterable[dict[str, Any]]) -> None:
        """Show a checkpoint's evaluation history (``{"step", "train_loss", "val_loss"}`` dicts)."""
        history = list(history)
        self.set_points("train", [(h["step"], h["train_loss"]) for h in history if h.get("train_loss") is not None])
        self.set_points("val", [(h["step"], h["val_loss"]) for h in history if h.get("val_loss") is not None])

    def clear(self) -> None:
        """Remove every point."""
        for s in SERIES:
            self.set_points(s, [])

    def points(self, series: str) -> list[Point]:
        """The stored points of ``series`` (each the mean of a run of received ones
        once there are many)."""
        return list(self._points[series])

    def count(self, series: str) -> int:
        """How many points ``series`` has received in all."""
        return self._count[series]

    @property
    def is_empty(self) -> bool:
        return not any(self._points.values())

    # -- drawing -----------------------------------------------------------------------------
    def _style(self, part: str) -> Style:
        return self.get_component_rich_style(f"loss-chart--{part}")

    def render(self) -> Text:
        width, height = self.content_size.width, self.content_size.height
        if self.is_empty:
            return Text(self.empty, style=self._style("empty"), no_wrap=True, overflow="ellipsis")
        legend = self._legend()
        rows, cols = height - 2, width - GUTTER  # the legend above, the step axis below
        if rows < 1 or cols < 4:
            return legend
        all_points = [p for s in SERIES for p in self._points[s]]
        x0, x1 = min(p[0] for p in all_points), max(p[0] for p in all_points)
        # The loss axis fits the curves after their first tenth: the first steps' loss
        # (ln of the vocabulary size) would squash the part worth reading into a row or
        # two. Dense curves are clipped at the top there; sparse ones always fit.
        start = x0 + ZOOM_SKIP * (x1 - x0)
        fit = [p for s in SERIES for p in self._points[s] if len(self._points[s]) < ZOOM_MIN or p[0] >= start]
        y0, y1 = min(p[1] for p in fit or all_points), max(p[1] for p in fit or all_points)
        if y1 - y0 < 1e-9:
            y0, y1 = y0 - 0.5, y1 + 0.5
        pad = (y1 - y0) * 0.04  # keep the extremes off the frame
        y0, y1 = y0 - pad, y1 + pad
        dot_w, dot_h = cols * 2, rows * 4
        bits = {s: [[0] * cols for _ in range(rows)] for s in SERIES}

        def row_of(y: float) -> float:
            return min(max((y1 - y) / (y1 - y0), 0.0), 1.0) * (dot_h - 1)

        for s in SERIES:
            grid = bits[s]
            for c, r0, r1 in self._spans(self._points[s], x0, x1, dot_w, row_of):
                for r in range(r0, r1 + 1):
                    grid[r // 4][c // 2] |= DOTS[c % 2][r % 4]

        axis = self._style("axis")
        out = Text(no_wrap=True, overflow="crop")
        out.append_text(legend)
        labels = {0: y1 - pad, rows - 1: y0 + pad}
        if rows >= 5:
            labels[(rows - 1) // 2] = (y0 + y1) / 2
        styles = {s: self._style(s) for s in SERIES}
        for i in range(rows):
            out.append("\n")
            out.append(f"{_label(labels[i])} ┤" if i in labels else " " * (GUTTER - 1) + "│", axis)
            for j in range(cols):
                owner = next((s for s in reversed(SERIES) if bits[s][i][j]), None)
                if owner is None:
                    out.append(" ")
                    continue
                mask = bits["train"][i][j] | bits["val"][i][j]
                out.append(chr(0x2800 + mask), styles[owner])
        left, right = f"{x0:,.0f}", f"step {x1:,.0f}"
        gap = max(1, cols - len(left) - len(right))
        out.append("\n" + " " * (GUTTER - 1) + "└" + left + " " * gap + right, axis)
        return out

    @staticmethod
    def _spans(points: list[Point], x0: float, x1: float, dot_w: int,
               row_of: Callable[[float], float]) -> Iterable[tuple[int, int, int]]:
        """``(dot column, first dot row, last dot row)`` spans drawing ``points`` as a line.

        Points are averaged per dot column; each column is then joined to the previous
        one with a vertical span (interpolated across empty columns), so the line has no
        gaps however steep or sparse it is."""
        if not points:
            return
        sums: dict[int, list[float]] = {}
        scale = (dot_w - 1) / (x1 - x0) if x1 > x0 else 0.0
        for x, y in points:
            acc = sums.setdefault(round((x - x0) * scale), [0.0, 0])
            acc[0] += y
            acc[1] += 1
        prev: tuple[int, float] | None = None
        for c in sorted(sums):
            r = row_of(sums[c][0] / sums[c][1])
            if prev is None:
                yield c, round(r), round(r)
            else:
                pc, pr = prev
                for cc in range(pc + 1, c + 1):
                    a = pr + (r - pr) * (cc - 1 - pc) / (c - pc)  # where the line was one column back
                    b = pr + (r - pr) * (cc - pc) / (c - pc)
                    lo, hi = sorted((round(a), round(b)))
                    yield cc, lo, hi
            prev = (c, r)

    def _legend(self) -> Text:
        legend = Text(no_wrap=True, overflow="ellipsis")
        for s in SERIES:
            if s not in self._last:
                continue
            if legend:
                legend.append("   ")
            legend.append("━━ ", self._style(s))
            legend.append(f"{s} {self._last[s]:.4f}")
            if s == "val":
                legend.append(f"  best {self._best[s]:.4f}", self._style("axis"))
        return legend
