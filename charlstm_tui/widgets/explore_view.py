"""The main screen's output pane with the explorer on top: a confidence heat-map and a
cursor for the inspector.

:class:`ExplorerView` is an :class:`~charlstm_tui.widgets.surprise.SurpriseView`, so the
heat-map uses the Score screen's bands of surprise (-log2 p of the probability each
character had when it was sampled) and the same colours. With the heat-map off it draws
as a plain :class:`~charlstm_tui.widgets.output.OutputView`. Colouring happens where
rows are drawn, in the once-per-frame flush: streaming costs no extra widget work.

The cursor is a transcript position. It is drawn over the cached rows (only on its own
row), moved with the arrows or set with a click; the screen is told with
:class:`ExplorerView.CursorMoved` and does the inspecting.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.strip import Strip

from .output import OutputView
from .surprise import EDGES, SurpriseView


def prob_label(i: int) -> str:
    """The heat-map band ``i`` as probabilities: 'p ≥ 50%', '25–50%', ..., '< 1.6%'."""
    bound = [100 * 2 ** -e for e in EDGES]  # band edges in bits -> percent

    def pct(x: float) -> str:
        return f"{x:.2g}%" if x < 10 else f"{x:.0f}%"

    if i == 0:
        return f"p ≥ {pct(bound[0])}"
    if i == len(EDGES):
        return f"< {pct(bound[-1])}"
    return f"{pct(bound[i])}–{pct(bound[i - 1])}"


class ExplorerView(SurpriseView):
    """Output pane with a togglable heat-map and an inspector cursor."""

    COMPONENT_CLASSES = SurpriseView.COMPONENT_CLASSES | {"output--cursor"}

    # Arrows move the cursor in inspect mode and scroll otherwise; the rest act only in
    # inspect mode (the screen's actions check it).
    BINDINGS = [
        Binding("left", "move(-1)", "Cursor: previous character", show=False),
        Binding("right", "move(1)", "Cursor: next character", show=False),
        Binding("up", "move_row(-1)", "Cursor: row up", show=False),
        Binding("down", "move_row(1)", "Cursor: row down", show=False),
        *[Binding(str(d), f"screen.pick({(d - 1) % 10})", "Fork with candidate 1…9, 0", show=False)
          for d in range(10)],
        Binding("r", "screen.resample", "Fork: resample this character", show=False),
        Binding("left_square_bracket", "screen.branch(-1)", "Previous branch", show=False),
        Binding("right_square_bracket", "screen.branch(1)", "Next branch", show=False),
        Binding("escape", "screen.leave_inspect", "Leave inspect mode (stops a run first)", show=False),
    ]

    @dataclass
    class CursorMoved(Message):
        """The inspector cursor moved to transcript position ``pos`` (a key or a click)."""

        view: "ExplorerView"
        pos: int

    def __init__(self, hint: str = "", max_chars: int = 200_000, *, id: str | None = None) -> None:
        super().__init__(hint, max_chars, id=id)
        self.heatmap = self.styles_per_char = False  # plain runs of one kind until the heat-map is on
        self.cursor: int | None = None  # a transcript position; None: not inspecting
        self._cell_key: tuple | None = None
        self._cell: tuple[int, int] | None = None  # (row, x) of the cursor, cached

    # -- heat-map ------------------------------------------------------------------------
    def set_heatmap(self, on: bool) -> None:
        """Colour model text by probability (on) or by kind only (off)."""
        self.heatmap = self.styles_per_char = on
        self._cache.clear()
        self.refresh()

    def char_style(self, kind: int, prob: float) -> Style:
        if self.heatmap:
            return super().char_style(kind, prob)
        return OutputView.char_style(self, kind, prob)

    def legend_line(self) -> Text:
        """One row: a swatch per band of probability."""
        text = Text("sampled with", style="dim", no_wrap=True, overflow="ellipsis")
        for i, style in enumerate(self.band_styles()):
            text.append(f" {prob_label(i)} ", style)
            text.append(" ")
        return text

    # -- the cursor -----------------------------------------------------------------------
    def set_cursor(self, pos: int | None) -> None:
        """Put the cursor on transcript position ``pos`` (clamped to the text), or hide it.
        Scrolls it into view and tells the screen."""
        t = self.transcript
        if pos is not None:
            if t.end <= t.start:
                pos = None
            else:
                pos = min(max(pos, t.start), t.end - 1)
        old = self.cursor
        self.cursor = pos
        self.refresh()
        if pos is None:
            return
        cell = self.cursor_cell()
        if cell is not None:
            self._scroll_to_row(cell[0])
        if pos != old:
            self.post_message(self.CursorMoved(self, pos))

    def _scroll_to_row(self, row: int) -> None:
        height = self.scrollable_content_region.height
        y = self.scroll_offset.y
        if row < y:
            self.scroll_to(y=row, animate=False, immediate=True)
        elif row >= y + height:
            self.scroll_to(y=row - height + 1, animate=False, immediate=True)

    def cursor_cell(self) -> tuple[int, int] | None:
        """(display row, cell x) of the cursor, or None."""
        pos = self.cursor
        t = self.transcript
        if pos is None or not t.start <= pos < t.end:
            return None
        key = (pos, self.rows.width, self.rows.total, t.dropped_lines, t.end)
        if key != self._cell_key:
            index, col = t.locate(pos)
            line = t.lines[index]
            starts = line.rows(self.rows.width)
            sub = bisect_right(starts, col) - 1
            x = cell_len(line.text[starts[sub]:col])
            row = self.rows.starts[index] + sub if index < len(self.rows.starts) else 0
            self._cell_key, self._cell = key, (row, x)
        return self._cell

    def position_at(self, row: int, x: int) -> int | None:
        """The transcript position drawn at display ``row``, cell ``x`` (the row's last
        character when ``x`` is past it); None on a rule or outside the text."""
        t = self.transcript
        if not 0 <= row < self.rows.total or t.is_empty:
            return None
        index, sub = self.rows.find(row)
        line = t.lines[index]
        if line.rule is not None:
            return None
        starts = line.rows(self.rows.width)
        a = starts[sub]
        b = starts[sub + 1] if sub + 1 < len(starts) else line.size
        if b <= a:
            return None
        col, cells = a, 0
        while col < min(b, len(line.text)) and cells + cell_len(line.text[col]) <= x:
            cells += cell_len(line.text[col])
            col += 1
        return t.line_starts()[index] + min(col, b - 1)

    def action_move(self, n: int) -> None:
        if self.cursor is None:
            return
        self.set_cursor(self.cursor + n)

    def action_move_row(self, n: int) -> None:
        if self.cursor is None:  # not inspecting: the arrows scroll, as in any pane
            (self.scroll_up if n < 0 else self.scroll_down)(animate=False)
            return
        cell = self.cursor_cell()
        if cell is None:
            return
        row, x = cell
        while 0 <= row + n < self.rows.total:
            row += n
            pos = self.position_at(row, x)
            if pos is not None:
                self.set_cursor(pos)
                return

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        pos = self.position_at(self.scroll_offset.y + offset.y, offset.x)
        if pos is not None:
            self.focus()
            if pos == self.cursor:
                self.post_message(self.CursorMoved(self, pos))  # still tells the screen
            self.set_cursor(pos)

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        cell = self.cursor_cell() if self.cursor is not None else None
        if cell is None or cell[0] != self.scroll_offset.y + y:
            return strip
        x = min(cell[1], max(0, strip.cell_length - 1))
        left, mid, right = strip.divide([x, x + 1, strip.cell_length])[:3]
        style = self.get_component_rich_style("output--cursor")
        mid = Strip([Segment(s.text, (s.style or Style()) + style) for s in mid])
        return Strip.join([left, mid, right])
