"""Pick a checkpoint file: after a load error, or to open another model.

With an ``error``, the screen says what went wrong and how to fix it. The user types a
path (Tab accepts the completion), picks a ``.pt`` file in the tree, or takes the bundled
model. Dismisses with the chosen path, or None (Esc, Cancel). While no model is loaded
the dialog also offers Quit; Esc still only closes it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Button, DirectoryTree, Input, Label, Static

from ..widgets.ordered_input import OrderedInput

# Dialogs on a terminal under 30 rows (80x24 among them) get the ``-short`` class, under
# 20 rows ``-tiny``: less padding, no gaps. Their buttons are docked at the foot of a
# scrolling dialog, so they show at any size.
DIALOG_BREAKPOINTS = [(0, "-tiny"), (20, "-short"), (30, "-tall")]


class PathSuggester(Suggester):
    """Completes the last component of a path from what is on disk."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        path = Path(os.path.expanduser(value))
        folder, stem = (path, "") if value.endswith(os.sep) else (path.parent, path.name)
        try:
            names = sorted(e.name + (os.sep if e.is_dir() else "") for e in os.scandir(folder)
                           if e.name.startswith(stem) and not e.name.startswith("."))
        except OSError:
            return None
        return value + names[0][len(stem):] if names and names[0] != stem else None


class CheckpointTree(DirectoryTree):
    """Folders and ``.pt`` files only, hidden entries left out."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not p.name.startswith(".") and (p.is_dir() or p.suffix == ".pt")]


class CheckpointScreen(ModalScreen[Path | None]):
    """Choose a checkpoint file; shows ``error`` first when there is one."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    VERTICAL_BREAKPOINTS = DIALOG_BREAKPOINTS

    def __init__(self, start: Path, error: str | None = None, has_model: bool = True,
                 bundled: Path | None = None) -> None:
        super().__init__()
        self.start, self.error, self.has_model, self.bundled = start, error, has_model, bundled

    def compose(self) -> ComposeResult:
        folder = self.start if self.start.is_dir() else self.start.parent
        if not folder.is_dir():
            folder = Path.cwd()
        with VerticalScroll(id="dialog", classes="-error" if self.error else ""):
            if self.error:
                yield Label("Cannot open the checkpoint", id="dialog-title")
                yield Static(self.error, id="dialog-error", markup=False)
                yield Static("Fix: pick another checkpoint file below"
                             + (", or use the bundled model." if self.bundled else ".")
                             + " To make one from your own text: Esc, then F6.", classes="dialog-hint")
            else:
                yield Label("Open a checkpoint", id="dialog-title")
            yield OrderedInput(str(self.start), id="path", placeholder="path/to/model.pt",
                        suggester=PathSuggester())
            yield Static("", id="path-error", markup=False)
            yield CheckpointTree(folder, id="tree")
            with Horizontal(id="dialog-buttons"):
                yield Button("Open", id="open", variant="primary", compact=True)
                if self.bundled is not None:
                    yield Button("Use the bundled model", id="bundled", compact=True)
                if not self.has_model:
                    yield Button("Quit", id="quit", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()

    @on(Input.Submitted, "#path")
    @on(Button.Pressed, "#open")
    def _open(self) -> None:
        from ..bridge import checkpoint_problem

        value = self.query_one("#path", Input).value.strip()
        path = Path(os.path.expanduser(value)) if value else Path()
        problem = "type a path (→ completes it), or pick a file below" if not value else checkpoint_problem(path)
        if problem:
            self.query_one("#path-error", Static).update(problem)
            self._retire_error()
            return
        self.dismiss(path)

    def _retire_error(self) -> None:
        """The error the dialog opened with was about another path: only the new one's
        problem, under the path box, stays (both at once contradicted each other)."""
        if self.error:
            self.query_one("#dialog-title", Label).update("Open a checkpoint")
            for widget in self.query("#dialog-error, .dialog-hint"):
                widget.display = False

    @on(DirectoryTree.FileSelected)
    def _picked(self, event: DirectoryTree.FileSelected) -> None:
        self.query_one("#path", Input).value = str(event.path)
        self.dismiss(event.path)

    @on(Button.Pressed, "#bundled")
    def _bundled(self) -> None:
        self.dismiss(self.bundled)

    @on(Button.Pressed, "#quit")
    def _quit(self) -> None:
        self.app.exit()

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
