"""The prompt: a multi-line TextArea where Enter submits and ↑/↓ recall history.

Enter posts :class:`PromptArea.Submitted`; Shift+Enter or Ctrl+J insert a newline
(most terminals cannot tell Shift+Enter from Enter, so Ctrl+J is the one that always
works). ↑ on the first row and ↓ on the last row walk the history; anywhere else they
move the cursor as usual. Paste is TextArea's own: multi-line text arrives intact.

Ghost text: the screen sets :meth:`PromptArea.show_ghost` with the prompt's likely
continuation; its first line is drawn dim after the cursor (TextArea's ``suggestion``,
line breaks as ⏎). Tab or → accept that line and show the next at once, so Tab Tab takes
two lines; with no ghost on show, Tab moves to the output pane (the settings are F2's,
so Tab never drops the next keys into a settings field).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea

from ..settings import History


def ghost_line(ghost: str) -> str:
    """The part of ``ghost`` shown and accepted: to the end of the line the cursor is on;
    where the ghost starts a new line, to the end of that line, its line breaks kept.

    A line at a time, as a shell's suggestion or an editor's completion: each Tab adds a
    line the user saw whole (the suggestion is drawn on one row, so lines past the first
    would show only as ⏎ marks run together)."""
    start = len(ghost) - len(ghost.lstrip("\n"))
    end = ghost.find("\n", start)
    return ghost[:end] if end >= 0 else ghost


class PromptArea(TextArea):
    """Multi-line prompt input with persistent history."""

    BINDINGS = [
        # priority: TextArea would otherwise take Enter as a newline before any binding.
        Binding("enter", "submit", "Generate", priority=True),
        Binding("shift+enter,ctrl+j", "newline", "Newline", show=False),
        Binding("up", "history_back", "History back", show=False),
        Binding("down", "history_forward", "History forward", show=False),
        Binding("tab", "accept_ghost", "Accept the ghost text's line (else: to the output pane)", show=False),
    ]

    @dataclass
    class Submitted(Message):
        """The user pressed Enter; ``text`` is the prompt as typed."""

        prompt: "PromptArea"
        text: str

    def __init__(self, history: History, *, id: str | None = None) -> None:
        super().__init__(id=id, soft_wrap=True, show_line_numbers=False, tab_behavior="focus")
        self.prompts = history
        self._index: int | None = None  # position in history while browsing; None = editing
        self._draft = ""  # what was typed before browsing started
        self._shown: str | None = None  # the history entry on display, while unedited
        self.ghost = ""  # the text behind ``suggestion`` (which shows newlines as ⏎): the ghost's line
        self._ahead = ""  # the ghost after that line, shown once the line is accepted
        self._hints: tuple[str, ...] = ()  # key hints for the bottom border, longest first

    def show_hints(self, *hints: str) -> None:
        """Key hints for the bottom border, longest first: it shows the longest that fits."""
        self._hints = hints
        self.on_resize()

    def on_resize(self) -> None:
        # The longest key hint the bottom border holds whole (none on a narrow prompt).
        room = self.size.width + 2 - 4  # the border's width, less its corners and a space each side
        self.border_subtitle = next((h for h in self._hints if len(h) <= room), "")

    def show_ghost(self, ghost: str) -> None:
        """Preview ``ghost`` after the cursor, a line at a time ('' hides it)."""
        self.ghost = ghost_line(ghost)
        self._ahead = ghost[len(self.ghost):]
        self.suggestion = self.ghost.replace("\n", "⏎")

    def sync_ghost(self) -> None:
        """After an edit: TextArea trims the suggestion when the typed text matches its
        start (and clears it otherwise); trim the ghost the same way."""
        n = len(self.suggestion)
        self.ghost = self.ghost[len(self.ghost) - n:] if n else ""
        if not n:
            self._ahead = ""

    def _accept_ghost(self) -> None:
        """Insert the ghost's line (the real text, line breaks included) and show its next."""
        line, ahead = self.ghost, self._ahead
        self.insert(line)
        self.show_ghost(ahead)  # until the screen's prediction for the new text comes

    def action_accept_ghost(self) -> None:
        if self.suggestion and self.ghost:
            self._accept_ghost()
        else:
            self.app.action_focus_next()

    def action_cursor_right(self, select: bool = False) -> None:
        if self.suggestion and self.ghost and not select:
            self._accept_ghost()
            return
        super().action_cursor_right(select)

    def _browsing(self) -> bool:
        # While an unedited history entry is shown, ↑/↓ keep walking even if it has
        # several lines; once edited, they move the cursor again.
        return self._index is not None and self.text == self._shown

    def action_submit(self) -> None:
        self._index = None
        self.post_message(self.Submitted(self, self.text))

    def action_newline(self) -> None:
        self.insert("\n")

    def action_history_back(self) -> None:
        if (self.cursor_location[0] > 0 and not self._browsing()) or not len(self.prompts):
            self.action_cursor_up()
            return
        if not self._browsing():
            self._draft, self._index = self.text, len(self.prompts)
        if self._index > 0:
            self._index -= 1
            self._show(self.prompts[self._index])

    def action_history_forward(self) -> None:
        if not self._browsing():
            self.action_cursor_down()
            return
        assert self._index is not None
        self._index += 1
        if self._index >= len(self.prompts):
            self._index = None
            self._show(self._draft)
            self._shown = None
        else:
            self._show(self.prompts[self._index])

    def _show(self, text: str) -> None:
        self._shown = text
        self.text = text
        self.move_cursor(self.document.end)

    def clear_prompt(self) -> None:
        """Empty the box after a submit and stop browsing history."""
        self._index = None
        self.text = ""
