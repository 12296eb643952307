"""Adapt to a file (the command palette): ask for a text file and read it, for the main
screen to read into the model.

The user types a path (Tab or → accepts the completion); Enter reads the file in a thread
worker, and what is wrong with it (missing, a folder, not UTF-8 text, empty, too large) is
said in the dialog, which stays open for another try. Dismisses with ``(path, text)``, or
None (Esc).
"""

from __future__ import annotations

import os
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from ..messages import TextLoaded
from .checkpoint import DIALOG_BREAKPOINTS, PathSuggester
from .train import PathInput


class AdaptFileScreen(ModalScreen["tuple[Path, str] | None"]):
    """Choose a text file for the model to adapt to."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    VERTICAL_BREAKPOINTS = DIALOG_BREAKPOINTS

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield Label("Adapt to a file", id="dialog-title")
            yield Static("The model reads a text file and learns its words and style as it reads; then what it "
                         "writes takes after it. The status line shows how far it got; Esc stops it, keeping what "
                         "it read. ^G forgets it all.", classes="dialog-hint")
            yield PathInput("", id="path", placeholder="path/to/text.txt (Enter reads it, Esc cancels)",
                            suggester=PathSuggester())
            yield Static("", id="path-error", markup=False)

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    @on(Input.Submitted, "#path")
    def _submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if not value:
            self._error("type the path of a text file (Tab completes it)")
            return
        self._error("reading…")
        self._read(Path(os.path.expanduser(value)))

    @work(thread=True, exclusive=True, group="adapt-file", exit_on_error=False)
    def _read(self, path: Path) -> None:
        from core.data import load_text
        from core.errors import CharLSTMError

        try:
            self.post_message(TextLoaded(path, load_text(path, min_chars=1, what="text file")))
        except CharLSTMError as e:
            self.post_message(TextLoaded(path, None, str(e)))

    @on(TextLoaded)
    def _loaded(self, event: TextLoaded) -> None:
        if event.text is None:
            self._error(event.error or f"cannot read {event.path}")
            return
        self.dismiss((event.path, event.text))

    def _error(self, text: str) -> None:
        self.query_one("#path-error", Static).update(text)

    def action_cancel(self) -> None:
        self.dismiss(None)
