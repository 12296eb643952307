"""The inspector panel: what the model predicted at the cursor.

The top 10 candidates with bars, the entropy in bits and the probability of the
character actually there. Renders itself from an
:class:`~charlstm_tui.bridge.Inspection` (no Textual children: one ``refresh``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.widget import Widget

from .transcript import DISPLAY

if TYPE_CHECKING:
    from ..bridge import Inspection

BAR = 14  # cells of the longest bar
EIGHTHS = " ▏▎▍▌▋▊▉"


def show_char(ch: str) -> str:
    """A character as one visible cell: newline ⏎, space ␣, controls as pictures."""
    return {"\n": "⏎", " ": "␣"}.get(ch, ch.translate(DISPLAY))


def bar(p: float, width: int = BAR) -> str:
    """A horizontal bar of ``p`` (0..1) in eighths of a cell."""
    n = round(max(0.0, min(1.0, p)) * width * 8)
    return ("█" * (n // 8) + (EIGHTHS[n % 8] if n % 8 else "")).ljust(width)


def key_label(i: int) -> str:
    """The digit that forks with candidate ``i`` (0-based): 1..9, then 0."""
    return str((i + 1) % 10)


class InspectorPanel(Widget):
    """Top-10 next characters at the cursor, their bars, entropy and the chosen one."""

    COMPONENT_CLASSES = {"inspector--bar", "inspector--chosen", "inspector--muted", "inspector--title"}

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines = Text("Move the cursor over the text (arrows or a click).")
        self.candidates: list[int] = []  # ids of the rows on show, in order (for the digits)

    def render(self) -> Text:
        return self.lines

    def show_message(self, message: str) -> None:
        """A line instead of candidates (waiting, or nothing to inspect)."""
        self.candidates = []
        self.lines = Text(message, style=self.get_component_rich_style("inspector--muted"))
        self.refresh()

    def show(self, pos: int, inspection: "Inspection", chars: str, sampled: float | None, branch: str) -> None:
        """Show ``inspection`` of transcript position ``pos``. ``chars`` maps ids to
        characters; ``sampled`` is the probability the character had when it was
        sampled (None: typed, not sampled); ``branch`` the fork indicator, or ''."""
        muted = self.get_component_rich_style("inspector--muted")
        chosen_style = self.get_component_rich_style("inspector--chosen")
        bar_style = self.get_component_rich_style("inspector--bar")
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append(f"position {pos:,}\n", self.get_component_rich_style("inspector--title"))
        if inspection.chosen is not None and inspection.chosen_p is not None:
            out.append("chosen ")
            out.append(f" {show_char(chars[inspection.chosen])} ", chosen_style)
            out.append("\n")
            # Two different numbers: the model's own probability (temperature 1), and the one
            # it was drawn with, after the temperature and top-k/top-p reshaped the odds.
            out.append(f"model p            {100 * inspection.chosen_p:5.1f}%\n")
            out.append("after T and top-p  " + (f"{100 * sampled:5.1f}%" if sampled is not None else "— typed")
                       + "\n", muted)
        out.append(f"entropy {inspection.entropy_bits:.2f} bits\n\n")
        self.candidates = []
        for i, (cid, p) in enumerate(inspection.top):
            self.candidates.append(cid)
            is_chosen = cid == inspection.chosen
            out.append(f"{key_label(i)} ", muted)
            out.append(f"{show_char(chars[cid]):>2}", chosen_style if is_chosen else "")
            out.append(" ")
            out.append(bar(p), bar_style)
            out.append(f" {100 * p:5.1f}%\n")
        out.append("\n1–9 / 0 fork · r resample\n", muted)
        out.append(branch or "no fork here", muted)
        self.lines = out
        self.refresh()
