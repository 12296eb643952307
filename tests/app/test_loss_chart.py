"""The loss chart: points in, curves drawn in braille with a legend and axes; the empty
state; long runs merged so a series stays small; a checkpoint's history."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Awaitable, Callable

from rich.text import Text
from textual.app import App, ComposeResult

from charlstm_tui.widgets.loss_chart import GUTTER, MAX_POINTS, LossChart


class ChartApp(App[None]):
    def compose(self) -> ComposeResult:
        yield LossChart("nothing yet", id="chart")


def with_chart(check: Callable[..., Awaitable[None] | None], size: tuple[int, int] = (60, 12)) -> None:
    """Run ``check(chart)`` (or an async ``check(chart, pilot)``) on a chart filling a ``size`` terminal."""

    async def main() -> None:
        app = ChartApp()
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            chart = app.query_one(LossChart)
            if asyncio.iscoroutinefunction(check):
                await check(chart, pilot)
            else:
                check(chart)

    asyncio.run(main())


def braille(text: Text) -> list[str]:
    """The plot rows: every line between the legend and the step axis, gutter removed."""
    return [line[GUTTER:] for line in text.plain.split("\n")[1:-1]]


def is_dot(ch: str) -> bool:
    return 0x2800 < ord(ch) <= 0x28FF


def test_empty_chart_says_so() -> None:
    def check(chart: LossChart) -> None:
        assert chart.is_empty and chart.render().plain == "nothing yet"
        chart.add("train", [(1, math.nan), (2, math.inf)])  # non-finite losses are left out
        assert chart.is_empty and chart.count("train") == 0

    with_chart(check)


def test_points_are_drawn_with_a_legend_and_axes() -> None:
    def check(chart: LossChart) -> None:
        chart.add("train", [(step, 4.0 - step / 100) for step in range(1, 301)])  # 3.99 down to 1.0
        chart.add("val", [(100, 3.2), (200, 2.3), (300, 2.5)])
        text = chart.render()
        lines = text.plain.split("\n")
        assert lines[0].startswith("━━ train 1.0000") and "val 2.5000  best 2.3000" in lines[0]
        rows = braille(text)
        assert len(rows) == 12 - 2 - 2  # the widget's height, less the legend and axis rows (and no border)
        assert all(len(r) <= 60 - GUTTER for r in rows)
        # A falling line: dots in the top row on the left, in the bottom row on the right.
        assert any(is_dot(c) for c in rows[0][:10]) and any(is_dot(c) for c in rows[-1][-10:])
        assert lines[-1].rstrip().endswith("step 300") and lines[-1][GUTTER - 1:].startswith("└1")
        assert lines[1].startswith(" ") and "┤" in lines[1] and "┤" in lines[-2]  # y labels, top and bottom
        # Each series in its own colour: val's style is on some dots, train's on others.
        styles = {str(span.style) for span in text.spans}
        train, val = (str(chart.get_component_rich_style(f"loss-chart--{s}")) for s in ("train", "val"))
        assert train in styles and val in styles and train != val

    with_chart(check)


def test_sparse_points_are_joined_into_a_line() -> None:
    def check(chart: LossChart) -> None:
        chart.set_points("val", [(0, 1.0), (1000, 2.0)])
        rows = braille(chart.render())
        width = 60 - GUTTER
        # Every column of the plot has a dot: no gaps between two points far apart.
        assert all(any(is_dot(r[i]) for r in rows if i < len(r)) for i in range(width))

    with_chart(check)


def test_a_long_run_is_merged_evenly_and_the_legend_stays_exact() -> None:
    def check(chart: LossChart) -> None:
        n = 10_000
        for start in range(0, n, 7):  # in batches, as the Train screen sends them
            chart.add("train", [(s, 5.0 - s / n) for s in range(start + 1, min(start + 8, n + 1))])
        points = chart.points("train")
        assert chart.count("train") == n and MAX_POINTS // 2 <= len(points) <= MAX_POINTS
        gaps = {round(b[0] - a[0], 6) for a, b in zip(points, points[1:])}
        assert len(gaps) == 1  # every stored point stands for as many steps as every other
        stride = gaps.pop()
        assert points[0] == (sum(range(1, int(stride) + 1)) / stride, 5.0 - points[0][0] / n)
        assert chart.render().plain.startswith(f"━━ train {5.0 - 1:.4f}")  # the latest step, not a mean

    with_chart(check)


def test_history_of_a_real_checkpoint(tiny_checkpoint: Path) -> None:
    from core.checkpoint import load_checkpoint

    history = load_checkpoint(tiny_checkpoint).history

    def check(chart: LossChart) -> None:
        chart.set_history(history)
        assert chart.count("train") == chart.count("val") == len(history) >= 2
        assert chart.points("val") == [(h["step"], h["val_loss"]) for h in history]
        assert any(is_dot(c) for r in braille(chart.render()) for c in r)
        chart.clear()
        assert chart.is_empty and chart.render().plain == "nothing yet"

    with_chart(check)


def test_a_tiny_widget_shows_the_legend_only() -> None:
    async def check(chart: LossChart, pilot) -> None:
        chart.styles.min_height = chart.styles.height = 2  # no room for a plot under the legend and the axis
        chart.add("val", [(1, 2.0)])
        await pilot.pause()
        assert chart.content_size.height == 2
        assert chart.render().plain == "━━ val 2.0000  best 2.0000"

    with_chart(check)
