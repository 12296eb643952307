"""The output pane: the transcript, soft-wrapped, drawn row by row (Textual's Line API).

Only rows that changed are redrawn, and a row's strip is cached until its text or
the width changes, so streaming thousands of characters a second costs a few rows of
rendering per frame. The pane follows the end of the text unless the user has
scrolled up; scrolling back to the bottom resumes following.

Styles per character come from :meth:`OutputView.char_style`, keyed by its kind
(prompt, model, user) and probability: the place for a confidence heat-map.
"""

from __future__ import annotations

import textwrap
from itertools import groupby
from typing import Iterable

from rich.segment import Segment
from rich.style import Style
from textual.cache import LRUCache
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from .border import FittedBorder
from .transcript import DISPLAY, KIND_NAMES, MODEL, PROMPT, USER, Line, RowIndex, Transcript

__all__ = ["OutputView", "PROMPT", "MODEL", "USER"]


class OutputView(FittedBorder, ScrollView, can_focus=True):
    """Scrollable, soft-wrapped view of a :class:`Transcript`."""

    COMPONENT_CLASSES = {"output--prompt", "output--model", "output--user", "output--rule", "output--hint"}

    def __init__(self, hint: str = "", max_chars: int = 200_000, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.transcript = Transcript(max_chars)
        self.rows = RowIndex()
        self.hint = hint
        self._cache: LRUCache[tuple, Strip] = LRUCache(1024)
        self._base: Style | None = None  # self.rich_style, cached: computing it walks the DOM
        self._hint_cache: tuple[int, list[str]] | None = None  # (width, the hint wrapped to it)
        self._height = 0  # the rows the pane showed, as of the last resize

    # -- writing ------------------------------------------------------------------------
    def append(self, text: str, kind: int = MODEL, probs: Iterable[float] | None = None) -> None:
        """Add characters at the end, keeping the view on the end if it was there."""
        if not text:
            return
        follow = self._following()
        dropped = self.transcript.dropped_lines
        first = self.transcript.append(text, kind, probs)
        self._relayout(first, follow, trimmed=self.transcript.dropped_lines != dropped)

    def add_rule(self, label: str = "") -> None:
        """A separator line before the next run."""
        follow = self._following()
        self.transcript.add_rule(label)
        self._relayout(max(0, len(self.transcript.lines) - 2), follow)

    def rule_label(self, pos: int) -> str | None:
        """The label of the rule the text at ``pos`` sits under (None: no rule)."""
        index = self.transcript.rule_before(pos)
        return None if index is None else self.transcript.lines[index].rule

    def relabel(self, pos: int, label: str) -> None:
        """Say ``label`` on the rule the text at ``pos`` sits under."""
        index = self.transcript.rule_before(pos)
        if index is not None:
            self.transcript.lines[index].rule = label
            self._cache.clear()
            self.refresh()

    def truncate(self, pos: int) -> None:
        """Drop the text from position ``pos`` on."""
        self.transcript.truncate(pos)
        self._cache.clear()
        self._relayout(0, self._following())

    def clear(self) -> None:
        """Empty the pane."""
        self.transcript.clear()
        self._cache.clear()
        self._relayout(0, True)

    def _following(self) -> bool:
        # Follow the end unless the user scrolled up (or is dragging the scrollbar).
        return self.is_vertical_scroll_end and not self.is_vertical_scrollbar_grabbed

    def _relayout(self, first_line: int, follow: bool, trimmed: bool = False) -> None:
        width = self._wrap_width()
        old_total, old_first_row = self.rows.total, self._first_row(first_line)
        if trimmed:
            self._cache.clear()
            first_line = 0
        self.rows.rebuild(self.transcript, width, first_line)
        total = self.rows.total
        if trimmed and not follow:  # keep the rows the user is reading in place
            self.scroll_to(y=max(0, self.scroll_y - (old_total - total)), animate=False, immediate=True)
        scrolled = self._set_virtual_size(Size(width, total))
        if follow and scrolled:
            top = self.scroll_y
            self.scroll_end(animate=False, immediate=True, x_axis=False)
            scrolled = self.scroll_y != top  # a taller text that still fits moves nothing
        if trimmed or first_line == 0 or (follow and scrolled):
            self.refresh()
        else:
            self.refresh_lines(old_first_row, max(1, total - old_first_row))

    def _set_virtual_size(self, size: Size) -> bool:
        """Set the scrollable size; returns whether it changed.

        Setting virtual_size normally re-lays out the whole screen. The vertical
        scrollbar is always shown (overflow-y: scroll in app.tcss), so more rows never
        change the layout: update the size and the scrollbar without a layout pass."""
        if size == self.virtual_size:
            return False
        if self.styles.overflow_y == "scroll" and size.width == self.virtual_size.width:
            self.set_reactive(OutputView.virtual_size, size)
            self._scroll_update(size)
        else:
            self.virtual_size = size
        return True

    def _first_row(self, line: int) -> int:
        starts = self.rows.starts
        return starts[line] if line < len(starts) else self.rows.total

    def _wrap_width(self) -> int:
        return max(1, self.scrollable_content_region.width)

    def on_resize(self) -> None:
        """Re-wrap everything for the new size, keeping the end in view if it was. Whether
        it was is judged by the size the pane had: the new one says nothing about it."""
        self.fit_border()
        follow = self._following() or self.scroll_y + self._height >= self.rows.total
        self._cache.clear()
        self.rows.width = 0  # force a full rebuild
        self._relayout(0, follow)
        if follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        self._height = self.scrollable_content_region.height

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()
        self._base = None

    # -- drawing ------------------------------------------------------------------------
    #: True when :meth:`char_style` depends on the probability too (a heat-map): rows are
    #: then styled character by character instead of by runs of one kind.
    styles_per_char = False

    def char_style(self, kind: int, prob: float) -> Style:
        """The style of one character (the hook for colouring by probability)."""
        return self.get_component_rich_style(f"output--{KIND_NAMES[kind]}")

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        row = scroll_y + y
        base = self._base
        if base is None:
            base = self._base = self.rich_style
        if self.transcript.is_empty:
            return self._hint_line(y, width, base)
        if row >= self.rows.total:
            return Strip.blank(width, base)
        index, sub = self.rows.find(row)
        line = self.transcript.lines[index]
        starts = line.rows(self.rows.width)
        a = starts[sub]
        b = starts[sub + 1] if sub + 1 < len(starts) else len(line.text)
        key = (self.transcript.dropped_lines + index, sub, a, b, width, line.rule)
        strip = self._cache.get(key)
        if strip is None:
            strip = self._render_row(line, a, b, width, base)
            self._cache[key] = strip
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def _render_row(self, line: Line, a: int, b: int, width: int, base: Style) -> Strip:
        if line.rule is not None:
            label = f" {line.rule} " if line.rule else ""
            style = self.get_component_rich_style("output--rule")
            return Strip([Segment("──" + label + "─" * max(0, width - 2 - len(label)), base + style)])
        text = line.text[a:b].translate(DISPLAY)
        kinds, probs = line.kinds, line.probs
        if a < b and kinds.count(kinds[a], a, b) == b - a and not self.styles_per_char:
            # The common row: one kind throughout, one segment (counted in C).
            return Strip([Segment(text, base + self.char_style(kinds[a], probs[a]))])
        segments, at = [], a
        for style, group in groupby(range(a, b), key=lambda i: self.char_style(kinds[i], probs[i])):
            n = sum(1 for _ in group)
            segments.append(Segment(text[at - a:at - a + n], base + style))
            at += n
        return Strip(segments)

    def hint_lines(self, width: int) -> list[str]:
        """The hint wrapped to ``width``: a line of ``a · b · c`` keys breaks between keys,
        prose between words."""
        if self._hint_cache is not None and self._hint_cache[0] == width:
            return self._hint_cache[1]
        if width < 1:  # a pane squeezed to nothing for a frame (a resize under a dialog)
            return []
        lines: list[str] = []
        for line in self.hint.splitlines():
            if " · " not in line:
                lines.extend(textwrap.wrap(line, width) or [""])
                continue
            row = ""
            for item in line.split(" · "):
                if row and len(row) + 3 + len(item) > width:
                    lines.append(row)
                    row = item
                else:
                    row = f"{row} · {item}" if row else item
            lines.append(row)
        self._hint_cache = (width, lines)
        return lines

    def _hint_line(self, y: int, width: int, base: Style) -> Strip:
        lines = self.hint_lines(width)
        top = max(0, (self.size.height - len(lines)) // 2)
        if not top <= y < top + len(lines):
            return Strip.blank(width, base)
        text = lines[y - top]
        pad = max(0, (width - len(text)) // 2)
        style = base + self.get_component_rich_style("output--hint")
        return Strip([Segment(" " * pad + text, style)]).crop_extend(0, width, base)
