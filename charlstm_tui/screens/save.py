"""Ask for a file name and save there, as a careful editor does.

What may be written is decided by :mod:`core.files` (a regular file or nothing: never a
FIFO, a device, a folder or a symlink), and the write is atomic. A file that is already
there is replaced only after the user says so in the dialog. The checks and the write
run in a thread: nothing here waits on a file on the UI thread.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from ..widgets.ordered_input import OrderedInput
from .checkpoint import DIALOG_BREAKPOINTS


class SaveScreen(ModalScreen[Path | None]):
    """Dismisses with the path written, or None (Esc). ``text`` is what is saved and
    ``what`` names it in messages ("transcript")."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    VERTICAL_BREAKPOINTS = DIALOG_BREAKPOINTS

    def __init__(self, default: Path, text: str, what: str = "transcript",
                 title: str = "Save the transcript") -> None:
        super().__init__()
        self.default, self.text, self.what, self.title_text = default, text, what, title
        self._confirming: Path | None = None  # an existing file the user is asked about
        self._busy = False

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield Label(self.title_text, id="dialog-title")
            yield Static("File name (Enter to save, Esc to cancel):", classes="dialog-hint")
            yield OrderedInput(str(self.default), id="path")
            yield Static("", id="path-error")
            with Horizontal(id="dialog-buttons"):
                yield Button("Replace it", id="replace", variant="error")
                yield Button("Keep it", id="keep", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#dialog-buttons").display = False
        self.query_one("#path", Input).focus()

    def _say(self, message: str) -> None:
        self.query_one("#path-error", Static).update(message)

    def _ask(self, path: Path | None) -> None:
        """Show (or hide) the question whether to replace ``path``."""
        self._confirming = path
        self.query_one("#dialog-buttons").display = path is not None
        if path is not None:
            self.query_one("#keep", Button).focus()  # a second Enter keeps the file
        else:
            self.query_one("#path", Input).focus()

    @on(Input.Changed, "#path")
    def _edited(self) -> None:
        if self._confirming is not None:
            self._ask(None)
            self._say("")

    @on(Input.Submitted, "#path")
    def _save(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        if not value:
            self._say("type a file name")
            return
        path = Path(os.path.expanduser(value))
        if not path.is_absolute():
            path = Path.cwd() / path
        self._start(path, replace=False)

    @on(Button.Pressed, "#replace")
    def _replace(self) -> None:
        if self._confirming is not None:
            self._start(self._confirming, replace=True)

    @on(Button.Pressed, "#keep")
    def _keep(self) -> None:
        self._ask(None)
        self._say("The file was left as it is: type another name, or Esc to cancel.")

    def _start(self, path: Path, replace: bool) -> None:
        if self._busy:
            return
        self._busy = True
        self._say("saving…")
        self._write(path, replace)

    @work(thread=True, exit_on_error=False)
    def _write(self, path: Path, replace: bool) -> None:
        """The worker: check the path, ask first if a file is there, then write."""
        from core.errors import CharLSTMError
        from core.files import atomic_write, check_output

        answer: tuple[str, str | None] = ("saved", None)
        try:
            if path.is_dir():
                answer = ("error", f"{path} is a folder: add a file name")
            else:
                check_output(path, self.what, error=CharLSTMError)
                existing = None if replace else _describe_existing(path)
                if existing is not None:
                    answer = ("ask", existing)
                else:
                    with atomic_write(path, self.what, error=CharLSTMError, replace=replace) as f:
                        f.write(self.text.encode("utf-8"))
        except CharLSTMError as e:
            answer = ("error", str(e))
        except OSError as e:  # anything core.files did not already word
            from core.files import os_reason

            answer = ("error", f"cannot write {path}: {os_reason(e)}")
        self.app.call_from_thread(self._written, path, *answer)

    def _written(self, path: Path, outcome: str, message: str | None) -> None:
        self._busy = False
        if outcome == "saved":
            self.dismiss(path)
        elif outcome == "ask":
            self._say(f"{message}. Replace it with this {self.what}?")
            self._ask(path)
        else:
            self._ask(None)
            self._say(message or "")

    def action_cancel(self) -> None:
        self.dismiss(None)


def _describe_existing(path: Path) -> str | None:
    """"notes.txt exists (46,012 bytes, modified 2026-11-30 11:02)", or None if nothing is there."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return f"{path.name} exists"
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(st.st_mtime))
    return f"{path.name} already exists ({st.st_size:,} bytes, modified {when})"
