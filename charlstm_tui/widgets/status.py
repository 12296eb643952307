"""The status line: the model on the left, the current run on the right.

One widget that renders itself, updated without a layout pass: it changes several
times a second while streaming, and a Label update would re-lay out the screen."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget


def human(n: float) -> str:
    """1234567 -> '1.2M', 8400 -> '8.4k'."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}"


class StatusBar(Widget):
    """One row: ``model · params · val loss``, a training going on (or done), whether the
    model is adapted (Adapt), and ``state · chars · chars/s``."""

    COMPONENT_CLASSES = {"status--model", "status--run", "status--train", "status--adapt"}
    model_text: reactive[str] = reactive("starting…")
    train_text: reactive[str] = reactive("")
    run_text: reactive[str] = reactive("")
    adapt_text: reactive[str] = reactive("")
    _run_forms: tuple[str, ...] = ("",)  # run_text, then shorter forms for a narrow line
    _adapt_forms: tuple[str, ...] = ("",)  # likewise for adapt_text

    def render(self) -> Text:
        """The run's state always shows whole; then whether the model is adapted, in the
        longest form that fits; then the training; the model's line gets what is left,
        cut with an ellipsis."""
        width = self.size.width
        run = next((t for t in self._run_forms if len(t) <= width), self._run_forms[-1])
        right = Text(run, style=self.get_component_rich_style("status--run"), no_wrap=True)
        room = width - right.cell_len - 2 - min(12, len(self.model_text))  # some of the model's name stays
        adapt = next((t for t in self._adapt_forms if t and len(t) <= room), "")
        if adapt:
            right = Text.assemble((adapt, self.get_component_rich_style("status--adapt")), "  ", right)
        train = Text(self.train_text, style=self.get_component_rich_style("status--train"), no_wrap=True)
        if train.cell_len + 2 + right.cell_len > width:
            train = Text()
        right_side = Text.assemble(train, "  " if train else "", right)
        room = width - right_side.cell_len - 2
        left = Text(self.model_text, style=self.get_component_rich_style("status--model"), no_wrap=True)
        if room < 8:
            left = Text()
        elif left.cell_len > room:
            left.truncate(room, overflow="ellipsis")
        gap = max(0, width - left.cell_len - right_side.cell_len)
        return Text.assemble(left, " " * gap, right_side)

    def show_model(self, text: str) -> None:
        self.model_text = text

    def show_training(self, text: str) -> None:
        """A training in the background: its progress, or a model it made ('' clears)."""
        self.train_text = text

    def show_adapt(self, forms: tuple[str, ...]) -> None:
        """Whether the model is adapted: its words, longest first (``()``: trained weights)."""
        self._adapt_forms = forms or ("",)
        self.adapt_text = self._adapt_forms[0]

    def show_reading(self, done: int, total: int, rate: float | None, note: str = "") -> None:
        """The adapter reading a text before the run generates: ``done`` of ``total`` chars."""
        if note and not done:
            self._run_forms = (note, "adapting")
        else:
            speed = f" · {rate:,.0f} chars/s" if rate else ""
            self._run_forms = (f"adapting · {done:,}/{total:,} chars{speed}", f"adapting · {done:,}/{total:,}",
                               "adapting")
        self.run_text = self._run_forms[0]

    def show_run(self, state: str, count: int, rate: float | None) -> None:
        """``state``: loading / ready / generating / stopped / done; rate in chars/s."""
        speed = f" · {rate:,.0f} chars/s" if rate else ""
        self._run_forms = (f"{state} · {count:,} chars{speed}", f"{state} · {count:,} chars", state)
        self.run_text = self._run_forms[0]


class PartsLine(Widget):
    """One row of parts joined by " · ", as many whole parts as fit, in their order (the
    first matters most): a narrow screen drops the last ones rather than cut one."""

    parts: reactive[tuple[str, ...]] = reactive(())

    def show(self, *parts: str) -> None:
        self.parts = parts

    def render(self) -> Text:
        width, line = self.size.width, ""
        for part in self.parts:
            longer = f"{line} · {part}" if line else part
            if len(longer) > width:
                break
            line = longer
        return Text(line, no_wrap=True, overflow="crop")
