"""The settings panel: one compact input per control.

Each control is an :class:`Input`: type a value, or press ↑/↓ (PageUp/PageDown for ten
steps). The panel holds no settings of its own: it shows the screen's
:class:`~charlstm_tui.settings.Settings` (:meth:`SettingsPanel.show`) and asks for changes
with messages, :class:`SettingsPanel.Changed` for a valid typed value and
:class:`SettingsPanel.Stepped` for a key press, which the screen applies to its settings.
A value the user is typing that is not valid is marked in place with the reason; the last
valid value stays in effect. The controls come from :data:`charlstm_tui.settings.CONTROLS`.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Label, Static

from core.errors import ConfigError
from core.options import Option

from ..settings import CONTROLS, Settings
from .ordered_input import OrderedInput


class SettingInput(OrderedInput):
    """An input for one control, with keys that step its value."""

    BINDINGS = [
        Binding("up", "step(1)", "Increase", show=False),
        Binding("down", "step(-1)", "Decrease", show=False),
        Binding("pageup", "step(10)", "Increase ×10", show=False),
        Binding("pagedown", "step(-10)", "Decrease ×10", show=False),
        Binding("escape", "done", "Back to the prompt", show=False),
    ]

    def __init__(self, option: Option, value: Any) -> None:
        super().__init__(option.show(value), placeholder=option.off, id=f"set-{option.name}", compact=True,
                         select_on_focus=True)
        self.option = option
        self.tooltip = f"{option.label}: {option.help}"

    def action_step(self, n: int) -> None:
        self.post_message(SettingsPanel.Stepped(self.option.name, n))

    def action_done(self) -> None:
        self.post_message(SettingsPanel.Done())


class SettingsPanel(VerticalScroll, can_focus=False):
    """All the generation controls, as the settings say."""

    @dataclass
    class Changed(Message):
        """The user typed a valid value for control ``name``."""

        name: str
        value: Any

    @dataclass
    class Stepped(Message):
        """The user pressed a key that steps control ``name`` by ``n``."""

        name: str
        n: int

    class Done(Message):
        """The user is done with the panel (Esc or Enter in a field)."""

    def __init__(self, settings: Settings, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._initial = settings  # what compose shows; show() keeps the fields up to date
        self.errors: dict[str, str] = {}  # control name -> why its text is rejected
        self._typed: str | None = None  # the control whose typed value is being applied
        self.border_title = "Settings"
        self.border_subtitle = "↑↓ step · type · Esc"

    def compose(self) -> ComposeResult:
        # Few widgets on purpose: each one costs start-up time before the first frame.
        with Grid(id="setting-grid"):
            for option in CONTROLS:
                yield Label(option.label, classes="setting-label")
                yield SettingInput(option, getattr(self._initial, option.name))
        yield Static("", id="setting-error", markup=False)
        yield Static("", id="setting-help", markup=False)

    def input_for(self, name: str) -> SettingInput:
        return self.query_one(f"#set-{name}", SettingInput)

    @contextmanager
    def typed(self, name: str) -> Iterator[None]:
        """Apply a value typed in control ``name``: its field is the user's and is never
        rewritten for it. By the time a typed change is applied, keys typed after it may
        already be in the field (a fast typist, a paste): writing the older value back
        turned "0.9" typed over "0.80" into 0.00."""
        self._typed = name
        try:
            yield
        finally:
            self._typed = None

    def show(self, old: Settings, new: Settings) -> None:
        """The settings went from ``old`` to ``new``: show each control that changed, unless
        its text already means the new value (as "1." does while 1.5 is typed) or the
        change was typed in it."""
        for widget in self.query(SettingInput):
            name = widget.option.name
            value = getattr(new, name)
            if getattr(old, name) == value or name == self._typed:
                continue  # unchanged (an invalid text being fixed stays as it is), or typed there
            try:
                if widget.option.parse(widget.value) == value:
                    continue
            except ConfigError:
                pass
            with widget.prevent(Input.Changed):
                widget.value = widget.option.show(value)
            widget.cursor_position = len(widget.value)
            self._mark(widget, None)

    def on_input_changed(self, event: Input.Changed) -> None:
        widget = event.input
        if not isinstance(widget, SettingInput):
            return
        event.stop()
        try:
            value = widget.option.parse(event.value)
        except ConfigError as e:
            self._mark(widget, str(e))
            return
        self._mark(widget, None)
        self.post_message(self.Changed(widget.option.name, value))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Done())

    def _mark(self, widget: SettingInput, error: str | None) -> None:
        """Mark ``widget``'s text invalid with ``error`` (None: valid), listed under the fields."""
        widget.set_class(error is not None, "-invalid")
        if error is None:
            self.errors.pop(widget.option.name, None)
        else:
            self.errors[widget.option.name] = error
        line = self.query_one("#setting-error", Static)
        line.update("\n".join(self.errors.values()))
        line.display = bool(self.errors)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if isinstance(event.widget, SettingInput):
            o = event.widget.option
            self.query_one("#setting-help", Static).update(f"{o.help} ({o.range_text()})")

    def on_descendant_blur(self, event: events.DescendantBlur) -> None:
        # An invalid value stays on screen, marked, with its reason: the value in
        # effect is the last valid one until the user fixes it.
        self.query_one("#setting-help", Static).update("")
