"""An Input whose own keys act in the order they were typed."""

from __future__ import annotations

from textual import events
from textual.widgets import Input


class OrderedInput(Input):
    """An :class:`Input` whose own bindings (⌫, ←, End, Ctrl+U, …) run as their key arrives.

    Textual inserts a printable key in the field at once, but runs a key's binding only
    after the key has bubbled up to the App, past the characters typed behind it: in a
    burst (a fast typist, keys over ssh, a terminal's key repeat) "End ⌫ 5" over "0.80"
    became "5", then ⌫, an empty field. Here the field's own bindings run in turn. Keys
    that move the focus (Tab) still act after the characters already sent to this field:
    the App hands each key to the widget focused when it reads it.
    """

    async def _on_key(self, event: events.Key) -> None:
        if event.is_printable:
            return  # Input inserts it, in order
        for key in event.aliases:
            bindings = self._bindings.key_to_bindings.get(key)
            if bindings:
                event.stop()
                event.prevent_default()
                await self.run_action(bindings[0].action)
                return
