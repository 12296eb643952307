"""The footer: the keys that matter on this screen now, as many as fit, whole.

Textual's own footer scrolls its keys sideways and cuts the last one mid-word ("f1 H")
at 80 columns. This one takes the screen's keys in its order of importance and shows
the first ones that fit the width, each whole, dropping the rest. A screen says which
keys and in what order with ``footer_keys()`` (``[(action, label), ...]``); the key
shown for each is read from the bindings active now, so it cannot drift from what the
key does. A screen without ``footer_keys`` shows its bindings marked ``show``.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

NAMES = {"escape": "Esc", "enter": "Enter", "tab": "Tab", "space": "Space", "question_mark": "?",
         "left_square_bracket": "[", "right_square_bracket": "]", "pageup": "PgUp", "pagedown": "PgDn",
         "up": "↑", "down": "↓", "left": "←", "right": "→"}
GAP = "  "


def key_text(key: str) -> str:
    """'f1' -> 'F1', 'ctrl+n' -> '^N', 'escape' -> 'Esc', 'shift+enter' -> 'Shift+Enter'."""
    if key.startswith("ctrl+") and len(key) == 6:
        return "^" + key[-1].upper()
    if key[:1] == "f" and key[1:].isdigit():
        return key.upper()
    parts = key.split("+")
    return "+".join(NAMES.get(p, p.capitalize() if len(p) > 1 else p) for p in parts)


def fit(entries: list[tuple[str, str]], width: int) -> list[tuple[str, str]]:
    """The leading ``(key, label)`` entries that fit ``width`` cells, with the gaps."""
    shown, used = [], 0
    for key, label in entries:
        size = len(key) + 1 + len(label) + (len(GAP) if shown else 0)
        if used + size > width:
            break
        shown.append((key, label))
        used += size
    return shown


class KeyBar(Widget):
    """One row of ``KEY label`` pairs, never cut mid-word."""

    COMPONENT_CLASSES = {"keybar--key", "keybar--label"}

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, lambda _: self.refresh())

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def entries(self) -> list[tuple[str, str]]:
        """``(key, label)`` for the screen's keys in order, those not active now left out."""
        first_key: dict[str, str] = {}
        shown: list[tuple[str, str]] = []
        for key, active in self.screen.active_bindings.items():
            if not active.enabled:
                continue
            action = active.binding.action.removeprefix("app.").removeprefix("screen.")
            first_key.setdefault(action, key)
            if active.binding.show and (action, active.binding.description) not in shown:
                shown.append((action, active.binding.description))
        wanted = getattr(self.screen, "footer_keys", None)
        pairs = wanted() if callable(wanted) else shown
        return [(key_text(first_key[action]), label) for action, label in pairs if action in first_key]

    def render(self) -> Text:
        key_style = self.get_component_rich_style("keybar--key")
        label_style = self.get_component_rich_style("keybar--label")
        text = Text(no_wrap=True, overflow="crop")
        for i, (key, label) in enumerate(fit(self.entries(), self.size.width)):
            if i:
                text.append(GAP)
            text.append(key, key_style)
            text.append(" " + label, label_style)
        return text
