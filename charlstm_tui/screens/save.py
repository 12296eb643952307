"""Ask for a file name and save there; a failed write is shown in the dialog."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static


class SaveScreen(ModalScreen[Path | None]):
    """Dismisses with the path written, or None (Esc)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, default: Path, write: Callable[[Path], None], title: str = "Save the transcript") -> None:
        super().__init__()
        self.default, self.write, self.title_text = default, write, title

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="dialog-title")
            yield Static("File name (Enter to save, Esc to cancel):", classes="dialog-hint")
            yield Input(str(self.default), id="path")
            yield Static("", id="path-error")

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    @on(Input.Submitted, "#path")
    def _save(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        error = self.query_one("#path-error", Static)
        if not value:
            error.update("type a file name")
            return
        path = Path(os.path.expanduser(value))
        if not path.is_absolute():
            path = Path.cwd() / path
        if path.is_dir():
            error.update(f"{path} is a folder: add a file name")
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.write(path)
        except OSError as e:
            error.update(f"cannot write {path}: {e.strerror or e}")
            return
        self.dismiss(path)

    def action_cancel(self) -> None:
        self.dismiss(None)
