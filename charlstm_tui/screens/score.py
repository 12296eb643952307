"""Score my text (F9): how surprised the model is by a text, character by character.

Paste or type a text, or load a file (its path, Enter), then F5: the text is read once by
:func:`core.score.score_text` in a thread worker, carrying the LSTM state, and shown with
each character coloured by its surprise, -log p, with a legend, the totals (nats/char,
bits/char, perplexity: what ``charlstm-tui score FILE`` prints) and the most surprising
places. Characters the model does not know are named in a notice and left out.
"""

from __future__ import annotations

import heapq
import os
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Input, Static, TextArea

from ..bridge import score
from ..card import LN2
from ..messages import TextLoaded, TextScored
from ..widgets.keybar import KeyBar
from ..widgets.surprise import SurpriseView
from .checkpoint import PathSuggester

if TYPE_CHECKING:
    from core.score import TextScore

    from ..app import CharLSTMApp

MAX_CHARS = 50_000  # scored in the app: ~4 s per 20k chars on a 2x512 model, one thread; the CLI takes any size
PEAKS = 5  # the most surprising places listed
CONTEXT = 12  # characters shown before each of them

HINT = """Paste or type a text above, or load a file, then F5:
each character is coloured by how surprised the model was by it.

For whole files of any size: charlstm-tui score FILE"""


def visible(text: str) -> str:
    """Newlines and tabs as symbols, so a context snippet stays on one line."""
    return text.replace("\n", "⏎").replace("\t", "⇥").replace("\r", "␍")


class ScoreScreen(Screen):
    """Text in, surprise out."""

    app: "CharLSTMApp"

    BINDINGS = [
        Binding("f5", "score", "Score"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.result: "TextScore | None" = None  # the score on screen
        self.dropped = ""  # characters left out of it
        self.model_name = ""  # the model that scored it
        self._request = 0  # the latest scoring request; older answers are ignored
        self._scoring_with = ""  # the name of the model scoring it
        self.totals: list[tuple[str, str]] = []  # (label, value) rows of the totals panel

    def compose(self) -> ComposeResult:
        with Vertical(id="score-source"):
            with Horizontal(id="score-path-row"):
                yield Input(id="score-path", placeholder="path/to/text.txt, Enter loads it", suggester=PathSuggester(),
                            compact=True)
                yield Button("Score (F5)", id="score-run", variant="primary", compact=True)
            yield TextArea(id="score-text", soft_wrap=True, tab_behavior="focus")
        with Horizontal(id="score-body"):
            yield SurpriseView(HINT, id="score-view")
            with Vertical(id="score-side"):
                yield Static("Not scored yet.", id="score-totals")
                yield Static(id="score-legend")
                yield Static(id="score-peaks")
        yield KeyBar()

    def footer_keys(self) -> list[tuple[str, str]]:
        """The footer's keys, most wanted first."""
        return [("score", "score"), ("back", "back"), ("help", "help"), ("train", "train"), ("sweep", "sweep"),
                ("training_view", "curves")]

    def on_mount(self) -> None:
        self.query_one("#score-source").border_title = "Text"
        self.query_one("#score-source").border_subtitle = "paste, type or load · F5 score"
        self.view.border_title = "Surprise"
        side = self.query_one("#score-side")
        side.border_title = "Totals"
        self.query_one("#score-legend", Static).update(self._legend())
        self.text_area.focus()

    @property
    def text_area(self) -> TextArea:
        return self.query_one("#score-text", TextArea)

    @property
    def view(self) -> SurpriseView:
        return self.query_one("#score-view", SurpriseView)

    @property
    def totals_text(self) -> str:
        """The totals panel as plain text."""
        return "\n".join(f"{label}: {value}" for label, value in self.totals)

    # -- loading a file ------------------------------------------------------------------
    @on(Input.Submitted, "#score-path")
    def _load(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if not value:
            self.notify("Type the path of a text file to load.", severity="warning")
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
        self._request += 1
        self._scoring_with = model.info.name
        self.view.loading = True
        self._score(self._request, model, text)

    @work(thread=True, exclusive=True, group="score", exit_on_error=False)
    def _score(self, request: int, model, text: str) -> None:
        from core.errors import CharLSTMError

        try:
            result, dropped = score(model, text)
        except CharLSTMError as e:
            self.post_message(TextScored(request, None, error=str(e)))
        except Exception as e:  # noqa: BLE001  (shown as a notice, never a traceback)
            self.post_message(TextScored(request, None, error=f"{type(e).__name__}: {e}"))
        else:
            self.post_message(TextScored(request, result, dropped))

    @on(TextScored)
    def _scored(self, event: TextScored) -> None:
        if event.request != self._request:
            return  # a newer request is on its way
        self.view.loading = False
        if event.score is None:
            self.notify(event.error or "scoring failed", title="Cannot score", severity="error")
            return
        if event.dropped:
            from core.vocab import describe_chars

            self.notify(f"Left out {len(event.dropped)} character(s) the model does not know: "
                        f"{describe_chars(event.dropped)}", title="Unknown characters", severity="warning")
        self.result, self.dropped, self.model_name = event.score, event.dropped, self._scoring_with
        self.view.show_score(event.score.text, event.score.surprise)
        self.view.scroll_home(animate=False)
        self._show_totals()

    def _show_totals(self) -> None:
        r = self.result
        assert r is not None
        self.totals = [("nats/char", f"{r.loss:.4f}"), ("bits/char", f"{r.bits_per_char:.4f}"),
                       ("perplexity", f"{r.perplexity:.3f}"), ("characters", f"{len(r.text):,}")]
        if self.dropped:
            from core.vocab import describe_chars

            self.totals.append(("left out", describe_chars(self.dropped, limit=4)))
        self.totals.append(("model", self.model_name))
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(justify="right", overflow="fold")
        for row in self.totals:
            table.add_row(*row)
        self.query_one("#score-totals", Static).update(table)
        self.query_one("#score-peaks", Static).update(self._peaks(r))

    def _legend(self) -> Text:
        text = Text("surprise, −log₂ p\n", style="bold")
        text.append_text(self.view.legend())
        return text

    @staticmethod
    def _peaks(r: "TextScore") -> Text:
        """The most surprising characters, each after a little of the text before it."""
        out = Text("most surprising\n", style="bold")
        top = heapq.nlargest(PEAKS, range(len(r.surprise)), key=r.surprise.__getitem__)
        for i in top:
            before = visible(r.text[max(0, i - CONTEXT):i])
            out.append(f"{r.surprise[i] / LN2:5.1f} b ", style="dim")
            out.append(f"…{before}")
            out.append(visible(r.text[i]), style="reverse")
            out.append("\n")
        return out

    def action_back(self) -> None:
        self.app.pop_screen()
