"""Score my text (F9): how surprised the model is by a text, character by character.

Paste or type a text, or load a file (its path, Enter), then F5: the text is read once in a
thread worker, carrying the LSTM state, and shown twice side by side, each character
coloured by its surprise, -log p: by the trained weights (static: what ``charlstm-tui
score FILE`` prints) and adapting as it is read (what ``score FILE --adapt`` adds: each
character scored before the model learns from it; a protocol of its own, never the static
figure). With Adapt on the model keeps what it learned from the text; with Adapt off
nothing stays. A legend, the totals of both (nats/char, bits/char, perplexity) and the most
surprising places go beside them. The read shows as it goes; Esc stops it. Characters the
model does not know are named in a notice and left out.
"""

from __future__ import annotations

import heapq
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Input, Static, TextArea
from textual.worker import get_current_worker

from ..bridge import score, score_adapting
from ..card import LN2
from ..messages import ScoreRead, TextLoaded, TextScored
from ..widgets.ordered_input import OrderedInput
from ..widgets.keybar import KeyBar
from ..widgets.surprise import SurpriseView
from .checkpoint import PathSuggester

if TYPE_CHECKING:
    from core.score import TextScore

    from ..app import CharLSTMApp

MAX_CHARS = 50_000  # scored in the app, adapting: ~1,000 chars/s on a 2x512 model, one thread; the CLI takes any size
NARROW, SHORT = 100, 30  # below these columns and rows, the totals and the text box take less room
PEAKS = 5  # the most surprising places listed
CONTEXT = 12  # characters shown before each of them

HINT = """Paste or type a text above, or load a file, then F5:
each character is coloured by how surprised the model was by it.

For whole files of any size: charlstm-tui score FILE"""
ADAPTED_HINT = """The same text, the model adapting as it reads it:
each character is scored before the model learns from it.

Adapt on (F2): the model keeps what it learns."""


def visible(text: str) -> str:
    """Newlines and tabs as symbols, so a context snippet stays on one line."""
    return text.replace("\n", "⏎").replace("\t", "⇥").replace("\r", "␍")


class ScoreScreen(Screen):
    """Text in, surprise out."""

    app: "CharLSTMApp"

    BINDINGS = [
        Binding("f5", "score", "Score"),
        Binding("escape", "stop_or_back", "Stop / back"),
    ]
    AUTO_FOCUS = "#score-text"  # focused as the screen composes: text typed or pasted at once goes there

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.result: "TextScore | None" = None  # the score on screen: the trained weights'
        self.adapted: "TextScore | None" = None  # the same text, adapting as it was read (None: could not)
        self.dropped = ""  # characters left out of it
        self.kept = False  # whether the model kept what it learned from it (Adapt on)
        self.adapted_from = 0  # characters the model had adapted on before this reading (0: the trained weights)
        self._stop = threading.Event()  # ends the read in flight (Esc)
        self._reading = False  # a read is in flight
        self.model_name = ""  # the model that scored it
        self._request = 0  # the latest scoring request; older answers are ignored
        self._scoring_with = ""  # the name of the model scoring it
        self.totals: list[tuple[str, ...]] = []  # (label, static, adapted) rows of the totals panel

    def compose(self) -> ComposeResult:
        with Vertical(id="score-source"):
            with Horizontal(id="score-path-row"):
                yield OrderedInput(id="score-path", placeholder="path/to/text.txt, Enter loads it", suggester=PathSuggester(),
                            compact=True)
                yield Button("Score (F5)", id="score-run", variant="primary", compact=True)
            yield TextArea(id="score-text", soft_wrap=True, tab_behavior="focus")
        with Horizontal(id="score-body"):
            yield SurpriseView(HINT, id="score-view")
            yield SurpriseView(ADAPTED_HINT, id="score-adapted")
            with Vertical(id="score-side"):
                yield Static("Not scored yet.", id="score-totals")
                yield Static(id="score-legend")
                yield Static(id="score-peaks")
        yield KeyBar()

    def footer_keys(self) -> list[tuple[str, str]]:
        """The footer's keys, most wanted first."""
        unadapt = [("reset_adaptation", "unadapt")] if self.app.main.adapted is not None else []
        return [("score", "score"), ("stop_or_back", "stop" if self._reading else "back"), *unadapt,
                ("help", "help"), ("train", "train"), ("sweep", "sweep"), ("training_view", "curves")]

    def on_mount(self) -> None:
        self.query_one("#score-source").border_title = "Text"
        self.query_one("#score-source").border_subtitle = "paste, type or load · F5 score"
        self.view.border_title = "Static"
        self.adapted_view.border_title = "Adapted as read"
        # One text in both views, wrapped alike: they scroll together.
        self.watch(self.view, "scroll_y", lambda y: self._scroll_along(self.adapted_view, y), init=False)
        self.watch(self.adapted_view, "scroll_y", lambda y: self._scroll_along(self.view, y), init=False)
        side = self.query_one("#score-side")
        side.border_title = "Totals"
        self.query_one("#score-legend", Static).update(self._legend())

    def opened(self) -> None:
        """F9 showed the screen: the text box takes the keys, wherever the focus was left
        (the path box, a view), so the user types or pastes at once. (The first time,
        AUTO_FOCUS does it as the screen composes.)"""
        if self.is_mounted:
            self.set_focus(self.text_area, scroll_visible=False)

    @property
    def text_area(self) -> TextArea:
        return self.query_one("#score-text", TextArea)

    @property
    def view(self) -> SurpriseView:
        """The text as the trained weights score it."""
        return self.query_one("#score-view", SurpriseView)

    @property
    def adapted_view(self) -> SurpriseView:
        """The text as the model scores it adapting as it reads."""
        return self.query_one("#score-adapted", SurpriseView)

    def on_resize(self, event: events.Resize) -> None:
        width, height = event.size
        self.set_class(width < NARROW, "-narrow")
        self.set_class(height < SHORT, "-short")

    @staticmethod
    def _scroll_along(view: SurpriseView, y: float) -> None:
        if view.scroll_y != y:
            view.scroll_to(y=y, animate=False)

    @property
    def totals_text(self) -> str:
        """The totals panel as plain text: ``label: static`` or ``label: static | adapted``."""
        return "\n".join(f"{row[0]}: " + " | ".join(v for v in row[1:] if v) for row in self.totals)

    # -- loading a file ------------------------------------------------------------------
    @on(Input.Submitted, "#score-path")
    def _load(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if not value:
            self.notify("Type the path of a text file to load (→ completes it), or paste a text in the box below.",
                        severity="warning")
            return
        self._read(Path(os.path.expanduser(value)))

    @work(thread=True, exclusive=True, group="score-read", exit_on_error=False)
    def _read(self, path: Path) -> None:
        from core.data import load_text
        from core.errors import CharLSTMError

        try:
            self.post_message(TextLoaded(path, load_text(path, min_chars=1)))
        except CharLSTMError as e:
            self.post_message(TextLoaded(path, None, str(e)))

    @on(TextLoaded)
    def _loaded(self, event: TextLoaded) -> None:
        if event.text is None:
            self.notify(event.error or f"could not read {event.path}", title="Cannot load", severity="error")
            return
        text = event.text
        if len(text) > MAX_CHARS:
            text = text[:MAX_CHARS]
            self.notify(f"{event.path.name} has {len(event.text):,} characters; scoring the first {MAX_CHARS:,} here. "
                        f"For the whole file: charlstm-tui score {event.path}", title="Long text")
        self.text_area.text = text
        self.action_score()

    # -- scoring -------------------------------------------------------------------------
    @on(Button.Pressed, "#score-run")
    def action_score(self) -> None:
        """Score the text in the box."""
        model = self.app.main.model
        if model is None:
            self.notify("The model is still loading; try again in a moment.", severity="warning")
            return
        text = self.text_area.text
        if not text:
            self.notify("Nothing to score: paste or type a text, or load a file.", severity="warning")
            return
        if len(text) > MAX_CHARS:
            self.notify(f"The text has {len(text):,} characters; the app scores up to {MAX_CHARS:,}. "
                        "For longer texts: charlstm-tui score FILE", severity="warning")
            return
        self.app.main.action_stop()  # one stream of work at a time: a run there stops (the weights may change)
        self._stop.set()  # a read in flight here ends
        self._stop = threading.Event()
        self._request += 1
        self._scoring_with = model.info.name
        self.kept = self.app.main.settings.adapt
        self.result = self.adapted = None
        self._set_reading(True)
        for view in (self.view, self.adapted_view):
            view.clear()
            view.loading = True
            view.border_subtitle = "reading…"
        self._score(self._request, model, text, self.kept, self.app.main.settings.adapt_rate, self._stop)

    @work(thread=True, exclusive=True, group="score", exit_on_error=False)
    def _score(self, request: int, model, text: str, keep: bool, rate: float, stop: threading.Event) -> None:
        from core.errors import CharLSTMError

        worker = get_current_worker()

        def chunk(piece: str, static: list[float], adapted: list[float], done: int, total: int) -> None:
            self.post_message(ScoreRead(request, piece, static, adapted, done, total))

        try:
            try:
                out = score_adapting(self.app.main.generator, model, text, keep=keep, rate=rate, stop=stop,
                                     cancelled=lambda: worker.is_cancelled, chunk=chunk)
            except CharLSTMError as e:  # the model cannot adapt here: the trained weights' score alone
                result, dropped = score(model, text)
                self.post_message(TextScored(request, result, dropped, note=str(e)))
                return
            if out is None:
                return  # cancelled while waiting for the main screen's run to end
            static, adapted, dropped, before = out
            stopped = len(static.surprise) < len(model.clean(text)[0])
            self.post_message(TextScored(request, static, dropped, adapted=adapted, stopped=stopped,
                                         adapted_from=before.chars if before is not None else 0))
        except CharLSTMError as e:
            self.post_message(TextScored(request, None, error=str(e)))
        except Exception as e:  # noqa: BLE001  (shown as a notice, never a traceback)
            self.post_message(TextScored(request, None, error=f"{type(e).__name__}: {e}"))

    @on(ScoreRead)
    def _read_some(self, event: ScoreRead) -> None:
        """A piece read: shown at once in both views, with the figures so far."""
        if event.request != self._request:
            return
        for view, surprise in ((self.view, event.static), (self.adapted_view, event.adapted)):
            view.loading = False
            view.add_score(event.text, surprise)
        self.query_one("#score-totals", Static).update(
            f"Reading: {event.done:,} of {event.total:,} characters.\nEsc stops; the figures are then for "
            "what was read.")

    @on(TextScored)
    def _scored(self, event: TextScored) -> None:
        if event.request != self._request:
            return  # a newer request is on its way
        self._set_reading(False)
        self.view.loading = self.adapted_view.loading = False
        if event.score is None:
            self.notify(event.error or "scoring failed", title="Cannot score", severity="error")
            return
        if event.dropped:
            from core.vocab import describe_chars

            self.notify(f"Left out {len(event.dropped)} character(s) the model does not know: "
                        f"{describe_chars(event.dropped)}", title="Unknown characters", severity="warning")
        if event.stopped:
            self.notify(f"Stopped after {len(event.score.text):,} characters: the figures are for those.",
                        title="Score")
        if event.note:
            self.notify(f"No adapted reading: {event.note}", title="Score", severity="warning")
        self.result, self.adapted, self.adapted_from = event.score, event.adapted, event.adapted_from
        self.dropped, self.model_name = event.dropped, self._scoring_with
        self.view.show_score(event.score.text, event.score.surprise)
        if event.adapted is not None:
            self.adapted_view.show_score(event.adapted.text, event.adapted.surprise)
        else:
            self.adapted_view.clear()
        for view in (self.view, self.adapted_view):
            view.scroll_home(animate=False)
        self._show_totals()

    def _set_reading(self, reading: bool) -> None:
        self._reading = reading
        self.refresh_bindings()  # the footer: Esc stops, or goes back

    def action_stop_or_back(self) -> None:
        """Esc: stop the read in flight; otherwise back to the main screen."""
        if self._reading:
            self._stop.set()
        else:
            self.app.pop_screen()

    def _show_totals(self) -> None:
        r, a = self.result, self.adapted
        assert r is not None
        self.view.border_subtitle = f"{r.bits_per_char:.2f} bits/char"
        self.adapted_view.border_subtitle = f"{a.bits_per_char:.2f} bits/char" if a is not None else "none"
        both = a is not None

        def row(label: str, static: str, adapted: str = "") -> tuple[str, ...]:
            return (label, static, adapted) if both else (label, static)

        self.totals = []
        if both:
            self.totals.append(row("", "static", "adapted"))
        self.totals += [row("nats/char", f"{r.loss:.4f}", f"{a.loss:.4f}" if a else ""),
                        row("bits/char", f"{r.bits_per_char:.4f}", f"{a.bits_per_char:.4f}" if a else ""),
                        row("perplexity", f"{r.perplexity:.3f}", f"{a.perplexity:.3f}" if a else "")]
        if a is not None:
            self.totals.append(row("gain, b/c", "", f"{r.bits_per_char - a.bits_per_char:+.4f}".replace("-", "−")))
        figures = len(self.totals)
        self.totals.append(("characters", f"{len(r.text):,}"))
        if self.dropped:
            from core.vocab import describe_chars

            self.totals.append(("left out", describe_chars(self.dropped, limit=4)))
        self.totals.append(("model", self.model_name))
        # The figures in columns; the rest, one value a row, in a table of its own.
        tables = [Table.grid(padding=(0, 1)), Table.grid(padding=(0, 1))]
        for table, columns in zip(tables, (3 if both else 2, 2)):
            table.add_column(style="bold", no_wrap=True, min_width=10)
            for _ in range(columns - 1):
                table.add_column(justify="right" if columns == 3 else "left", overflow="fold")
        for i, cells in enumerate(self.totals):
            tables[i >= figures and both].add_row(*cells)
        notes = Text(style="italic")
        if both:
            start = (f"from the weights adapted on {self.adapted_from:,} chars (^G resets)" if self.adapted_from
                     else "from the trained weights")
            notes.append(f"Adapted as read, {start}. " + ("Adapt on: what it learned stays." if self.kept
                                                           else "Adapt off: nothing stays."))
        self.query_one("#score-totals", Static).update(Group(*tables, notes))
        self.query_one("#score-peaks", Static).update(self._peaks(r))

    def _legend(self) -> Text:
        text = Text("surprise, −log₂ p\n", style="bold")
        text.append_text(self.view.legend())
        return text

    @staticmethod
    def _peaks(r: "TextScore") -> Text:
        """The most surprising characters, each after a little of the text before it."""
        out = Text("most surprising, static\n", style="bold")
        top = heapq.nlargest(PEAKS, range(len(r.surprise)), key=r.surprise.__getitem__)
        for i in top:
            before = visible(r.text[max(0, i - CONTEXT):i])
            out.append(f"{r.surprise[i] / LN2:5.1f} b ", style="dim")
            out.append(f"…{before}")
            out.append(visible(r.text[i]), style="reverse")
            out.append("\n")
        return out

