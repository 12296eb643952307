"""A text coloured by the model's surprise at each character, and its legend.

:class:`SurpriseView` is an :class:`~charlstm_tui.widgets.output.OutputView` (soft wrap,
scrolling, row cache) whose characters carry ``p = exp(-surprise)`` as their probability;
:meth:`SurpriseView.char_style` maps it to one of a few bands of surprise in bits. The
bands' colours are component classes, so a theme or app.tcss can restyle them.
"""

from __future__ import annotations

import math

from rich.style import Style
from rich.text import Text

from .output import OutputView
from .transcript import MODEL

# Upper edges of the bands, in bits of surprise (-log2 p). A character the model gave
# p > 1/2 costs under 1 bit; one it gave p < 1/64 costs 6 bits or more.
EDGES = (1.0, 2.0, 3.0, 4.0, 6.0)
BANDS = len(EDGES) + 1


def band(bits: float) -> int:
    """The band (0 = least surprising) of a surprise of ``bits``."""
    for i, edge in enumerate(EDGES):
        if bits < edge:
            return i
    return len(EDGES)


def band_label(i: int) -> str:
    """'< 1 bit', '1-2 bits', ..., '>= 6 bits'."""
    if i == 0:
        return f"< {EDGES[0]:g} bit"
    if i == len(EDGES):
        return f"≥ {EDGES[-1]:g} bits"
    return f"{EDGES[i - 1]:g}–{EDGES[i]:g} bits"


class SurpriseView(OutputView):
    """Scored text; each model-kind character is coloured by its band of surprise."""

    COMPONENT_CLASSES = OutputView.COMPONENT_CLASSES | {f"surprise--{i}" for i in range(BANDS)}
    styles_per_char = True  # a row's characters fall in different bands

    SCOPED_CSS = False  # the ramp depends on the app's dark or light mode, outside the widget
    # One hue, red, stronger with each band: brighter on a dark theme, deeper on a light
    # one. The colours are the 256-colour palette's own reds, so a terminal with 256
    # colours shows the same ramp (blends of a theme's colours fell on greys and olives).
    DEFAULT_CSS = """
    SurpriseView > .surprise--0 { color: $foreground; }
    App.-dark-mode SurpriseView > .surprise--1 { background: #5f0000; }
    App.-dark-mode SurpriseView > .surprise--2 { background: #870000; }
    App.-dark-mode SurpriseView > .surprise--3 { background: #af0000; }
    App.-dark-mode SurpriseView > .surprise--4 { background: #d70000; }
    App.-dark-mode SurpriseView > .surprise--5 { background: #ff0000; }
    App.-light-mode SurpriseView > .surprise--1 { background: #ffd7d7; }
    App.-light-mode SurpriseView > .surprise--2 { background: #ffafaf; }
    App.-light-mode SurpriseView > .surprise--3 { background: #ff8787; }
    App.-light-mode SurpriseView > .surprise--4 { background: #ff5f5f; }
    App.-light-mode SurpriseView > .surprise--5 { background: #ff0000; }
    SurpriseView > .surprise--4, SurpriseView > .surprise--5 { color: #ffffff; text-style: bold; }
    """

    def __init__(self, hint: str = "", max_chars: int = 1_000_000, *, id: str | None = None) -> None:
        super().__init__(hint, max_chars, id=id)
        self._bands: list[Style] | None = None  # the bands' styles, cached: looked up per character

    def show_score(self, text: str, surprise: list[float]) -> None:
        """Replace the view with ``text``, each character carrying its surprise (nats)."""
        self.clear()
        self.add_score(text, surprise)

    def add_score(self, text: str, surprise: list[float]) -> None:
        """Add ``text`` at the end, each character carrying its surprise (nats)."""
        self.append(text, MODEL, [math.exp(-s) for s in surprise])

    def band_styles(self) -> list[Style]:
        if self._bands is None:
            self._bands = [self.get_component_rich_style(f"surprise--{i}") for i in range(BANDS)]
        return self._bands

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._bands = None

    def char_style(self, kind: int, prob: float) -> Style:
        if kind != MODEL or not prob == prob:  # prompt text, or no probability (nan)
            return super().char_style(kind, prob)
        bits = -math.log2(prob) if prob > 0 else math.inf
        return self.band_styles()[band(bits)]

    def legend(self) -> Text:
        """One line per band: a swatch in the band's style, then its range."""
        text = Text(no_wrap=True)
        for i, style in enumerate(self.band_styles()):
            if i:
                text.append("\n")
            text.append(" abc ", style)
            text.append(f" {band_label(i)}")
        return text
