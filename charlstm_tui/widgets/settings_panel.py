"""The settings panel: one compact input per control, always visible.

Each control is an :class:`Input`: type a value, or press ↑/↓ (PageUp/PageDown for
ten steps) to change it. A value applies as soon as it is valid; an invalid one is
marked in place with the reason, and the last valid value stays in effect. The
controls come from :data:`charlstm_tui.settings.FIELDS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Label, Static

from ..settings import FIELDS, Field, InvalidValue, Settings


class SettingInput(Input):
    """An input for one :class:`Field`, with keys that step its value."""

    BINDINGS = [
        Binding("up", "step(1)", "Increase", show=False),
        Binding("down", "step(-1)", "Decrease", show=False),
        Binding("pageup", "step(10)", "Increase ×10", show=False),
        Binding("pagedown", "step(-10)", "Decrease ×10", show=False),
    ]

    def __init__(self, field: Field, value: Any) -> None:
        super().__init__(field.show(value), placeholder=field.blank, id=f"set-{field.name}", compact=True,
                         select_on_focus=True)
        self.field = field
        self.valid_value = value
        self.tooltip = f"{field.label}: {field.help}"

    def action_step(self, n: int) -> None:
        # The stepped value is valid now: the next press steps from it, not from what the
        # Changed message (handled later) would set, so a burst of presses counts each one.
        self.valid_value = self.field.step(self.valid_value, n)
        self.value = self.field.show(self.valid_value)
        self.cursor_position = len(self.value)


class SettingsPanel(VerticalScroll, can_focus=False):
    """All the generation controls; posts :class:`SettingsPanel.Changed` on a valid edit."""

    @dataclass
    class Changed(Message):
        """A control took a new valid value; ``settings`` holds them all."""

        settings: Settings
        name: str

    def __init__(self, settings: Settings, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.settings = settings
        self.errors: dict[str, str] = {}  # field name -> why its text is rejected
        self.border_title = "Settings"
        self.border_subtitle = "F2 · ↑↓ step · type"

    def compose(self) -> ComposeResult:
        # Few widgets on purpose: each one costs start-up time before the first frame.
        with Grid(id="setting-grid"):
            for field in FIELDS:
                yield Label(field.label, classes="setting-label")
                yield SettingInput(field, getattr(self.settings, field.name))
        yield Static("", id="setting-error")
        yield Static("", id="setting-help")

    def input_for(self, name: str) -> SettingInput:
        return self.query_one(f"#set-{name}", SettingInput)

    def set_value(self, name: str, value: Any) -> None:
        """Change a control from outside (a key or the palette), as if typed."""
        widget = self.input_for(name)
        widget.value = widget.field.show(value)

    def step(self, name: str, n: int) -> None:
        """Step a control by ``n`` (what ↑/↓ do in its input)."""
        self.input_for(name).action_step(n)

    def on_input_changed(self, event: Input.Changed) -> None:
        widget = event.input
        if not isinstance(widget, SettingInput):
            return
        event.stop()
        field = widget.field
        try:
            value = field.parse(event.value)
        except InvalidValue as e:
            widget.add_class("-invalid")
            self.errors[field.name] = str(e)
        else:
            widget.remove_class("-invalid")
            self.errors.pop(field.name, None)
            widget.valid_value = value
        self._show_errors()
        if field.name in self.errors:
            return
        if getattr(self.settings, field.name) != value:
            self.settings = self.settings.with_(**{field.name: value})
            self.post_message(self.Changed(self.settings, field.name))

    def _show_errors(self) -> None:
        # Under the fields, naming each field whose text is not a valid value.
        error = self.query_one("#setting-error", Static)
        error.update("\n".join(self.errors.values()))
        error.display = bool(self.errors)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if isinstance(event.widget, SettingInput):
            self.query_one("#setting-help", Static).update(event.widget.field.help)

    def on_descendant_blur(self, event: events.DescendantBlur) -> None:
        # An invalid value stays on screen, marked, with its reason: the value in
        # effect is the last valid one until the user fixes it.
        self.query_one("#setting-help", Static).update("")
