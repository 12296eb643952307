"""What the output pane shows, as data: text with a kind and a probability per character.

No Textual here, so it is cheap to test and to reuse (saving, copying, the explorer).
Text is kept as logical lines; each character, newlines included, has a *position*
that only grows (positions of dropped text are not reused), a kind (prompt, model,
user-added) and the probability the model gave it when it was sampled (``nan`` for
text the user wrote). A *rule* is a separator line between runs; it holds no text.

Memory is bounded: past ``max_chars`` the oldest lines are dropped.
Soft-wrapping is computed per line and cached per width; appending to the last line
re-wraps only its last row, so streaming costs O(new characters), not O(line).
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Iterable

from rich.cells import get_character_cell_size

PROMPT, MODEL, USER = 0, 1, 2  # character kinds
KIND_NAMES = ("prompt", "model", "user")

# Control characters are shown as their Unicode control pictures (one cell each), so a
# model that emits '\t' or '\r' cannot break the layout; a tab shows as a space.
DISPLAY = {i: 0x2400 + i for i in range(32) if i != 10} | {9: 32, 127: 0x2421}


@dataclass(eq=False)
class Line:
    """One logical line. ``ended``: a '\\n' closes it (and owns a position)."""

    text: str = ""
    kinds: bytearray = field(default_factory=bytearray)
    probs: array = field(default_factory=lambda: array("f"))
    ended: bool = False
    rule: str | None = None  # a separator line with this label, holding no text
    _width: int = 0
    _rows: list[int] = field(default_factory=list)  # start offset of each wrapped row

    @property
    def size(self) -> int:
        """How many positions the line holds (its text, plus 1 for a closing newline)."""
        return len(self.text) + self.ended

    def rows(self, width: int) -> list[int]:
        """Start offsets of the line's rows when soft-wrapped to ``width`` cells."""
        if self.rule is not None or not self.text:
            return [0]
        if width != self._width or not self._rows:
            self._width, self._rows = width, [0]
        wrap_from(self.text, width, self._rows)
        return self._rows


def _fit(text: str, start: int, width: int) -> int:
    """The largest end such that ``text[start:end]`` fits in ``width`` cells."""
    end = min(len(text), start + width)
    if text.isascii():  # the common case: one cell per character
        return end
    cells = 0
    for i in range(start, len(text)):
        cells += get_character_cell_size(text[i])
        if cells > width:
            return max(i, start + 1)  # always make progress, even for a 2-cell char in 1 cell
    return len(text)


def wrap_from(text: str, width: int, rows: list[int]) -> None:
    """Extend ``rows`` (row start offsets, at least ``[0]``) to cover ``text``.

    Breaks after the last space that fits, else mid-word. Rows before the last one
    are final (their break was decided with the text already past them), so only the
    last row is revisited when the line grows.
    """
    width = max(1, width)
    start = rows[-1]
    while True:
        end = _fit(text, start, width)
        if end >= len(text):
            return
        space = text.rfind(" ", start + 1, end + 1)  # a trailing space may overhang by one
        start = space + 1 if space > start else end
        rows.append(start)


class Transcript:
    """The output pane's text, kinds and probabilities, bounded to ``max_chars``."""

    def __init__(self, max_chars: int = 200_000) -> None:
        self.max_chars = max_chars
        self.clear()

    def clear(self) -> None:
        self.lines: list[Line] = [Line()]
        self.start = 0  # position of the first kept character
        self.chars = 0  # kept characters (positions)
        self.dropped_lines = 0  # lines dropped from the front, ever (for stable line ids)

    @property
    def end(self) -> int:
        """The position after the last character."""
        return self.start + self.chars

    @property
    def is_empty(self) -> bool:
        return self.chars == 0 and len(self.lines) == 1 and self.lines[0].rule is None

    # -- writing ----------------------------------------------------------------------
    def append(self, text: str, kind: int, probs: Iterable[float] | None = None) -> int:
        """Add ``text`` of one kind; ``probs`` gives one probability per character.

        Returns the index of the first line that changed (for the view to redraw)."""
        first = len(self.lines) - 1
        if not text:
            return first
        probs = array("f", probs) if probs is not None else array("f", [math.nan]) * len(text)
        lines = self.lines
        at = 0
        for piece in text.split("\n"):
            line = lines[-1]
            if line.rule is not None or line.ended:
                line = Line()
                lines.append(line)
            n = len(piece)
            line.text += piece
            line.kinds.extend(bytes((kind,)) * n)
            line.probs.extend(probs[at:at + n])
            at += n
            if at < len(text):  # the piece was followed by a newline
                line.kinds.append(kind)
                line.probs.append(probs[at])
                line.ended = True
                at += 1
        self.chars += len(text)
        if self.chars > self.max_chars:
            self._trim()
            return 0
        return first

    def add_rule(self, label: str = "") -> None:
        """A separator line before the next run, saying what made it (model, T, seed)."""
        if self.lines[-1].rule is None and not self.lines[-1].text and not self.lines[-1].ended:
            self.lines[-1].rule = label  # reuse an empty trailing line
        else:
            self.lines.append(Line(rule=label))

    def rule_before(self, pos: int) -> int | None:
        """The index of the rule line the text at ``pos`` sits under, or None."""
        index = self.locate(max(self.start, min(pos, self.end)))[0]
        return next((i for i in range(index, -1, -1) if self.lines[i].rule is not None), None)

    def _trim(self) -> None:
        # Drop whole lines down to 90% of the limit, so this runs rarely.
        target = int(self.max_chars * 0.9)
        drop = 0
        while self.chars > target and drop < len(self.lines) - 1:
            self.chars -= self.lines[drop].size
            self.start += self.lines[drop].size
            drop += 1
        del self.lines[:drop]
        self.dropped_lines += drop
        if self.chars > target:  # one enormous line: cut its head
            line, cut = self.lines[0], self.chars - target
            cut = min(cut, len(line.text))
            line.text, line._rows = line.text[cut:], []
            del line.kinds[:cut]
            del line.probs[:cut]
            self.chars -= cut
            self.start += cut

    def truncate(self, pos: int) -> None:
        """Drop everything from position ``pos`` on (rules after it too)."""
        pos = max(pos, self.start)
        if pos >= self.end:
            return
        index, col = self.locate(pos)
        del self.lines[index + 1:]
        line = self.lines[index]
        if col < len(line.text) or line.ended:
            line.text = line.text[:col]
            del line.kinds[col:]
            del line.probs[col:]
            line.ended = False
            line._rows = []
        self.chars = pos - self.start

    # -- reading ----------------------------------------------------------------------
    def line_starts(self) -> list[int]:
        """The position of each line's first character."""
        starts, pos = [], self.start
        for line in self.lines:
            starts.append(pos)
            pos += line.size
        return starts

    def locate(self, pos: int) -> tuple[int, int]:
        """(line index, column) of position ``pos``; a newline sits at column len(text)."""
        if not self.start <= pos <= self.end:
            raise IndexError(f"position {pos} is outside {self.start}..{self.end}")
        pos -= self.start
        for i, line in enumerate(self.lines):
            if pos < line.size or (i == len(self.lines) - 1):
                return i, pos
            pos -= line.size
        raise AssertionError("unreachable")

    def text(self, start: int | None = None, end: int | None = None) -> str:
        """The characters in [start, end) as a string (rules are not text)."""
        whole = "".join(line.text + "\n" * line.ended for line in self.lines)
        a = (start if start is not None else self.start) - self.start
        b = (end if end is not None else self.end) - self.start
        return whole[max(a, 0):max(b, 0)]

    def plain(self) -> str:
        """All kept text for saving: each run after its separator line, as on screen
        (``── model · T 0.80 · stateful · seed 1 ──``), with a blank line between runs."""
        out: list[str] = []
        for line in self.lines:
            if line.rule is not None:
                if out:
                    out.append("\n" if out[-1].endswith("\n") else "\n\n")
                out.append(f"── {line.rule} ──\n" if line.rule else "──\n")
            else:
                out.append(line.text + "\n" * line.ended)
        return "".join(out)

    def kinds_probs(self, start: int, end: int) -> tuple[bytes, list[float]]:
        """The kinds and probabilities of positions [start, end)."""
        kinds, probs = bytearray(), array("f")
        for line in self.lines:
            kinds += line.kinds
            probs.extend(line.probs)
        a, b = start - self.start, end - self.start
        return bytes(kinds[a:b]), probs[a:b].tolist()


class RowIndex:
    """Maps display rows to (line, row-in-line) for one width, updated incrementally."""

    def __init__(self) -> None:
        self.width = 0
        self.starts: list[int] = []  # first display row of each line
        self.total = 0

    def rebuild(self, transcript: Transcript, width: int, from_line: int = 0) -> None:
        """Recompute rows for lines ``from_line`` on (all of them when the width changed)."""
        if width != self.width:
            self.width, from_line = width, 0
        lines = transcript.lines
        from_line = min(from_line, len(self.starts), len(lines))
        del self.starts[from_line:]
        row = self.starts[-1] + len(lines[from_line - 1].rows(width)) if from_line else 0
        for line in lines[from_line:]:
            self.starts.append(row)
            row += len(line.rows(width))
        self.total = row

    def find(self, row: int) -> tuple[int, int]:
        """(line index, row within that line) of display row ``row``."""
        i = bisect_right(self.starts, row) - 1
        return i, row - self.starts[i]
