"""Border titles that fit: each given in forms, longest first, shown whole or not at all."""

from __future__ import annotations


class FittedBorder:
    """Mixin for a bordered widget: :meth:`show_border` takes the title and subtitle as forms,
    longest first; the longest form that fits the width shows, whole (none where none fits),
    never one cut mid-word. The widget calls :meth:`fit_border` on resize."""

    _border_forms: tuple[tuple[str, ...], tuple[str, ...]] | None = None

    def show_border(self, titles: tuple[str, ...], subtitles: tuple[str, ...] = ()) -> None:
        self._border_forms = (titles, subtitles)
        self.fit_border()

    def fit_border(self) -> None:
        if self._border_forms is None:  # titled directly, if at all
            return
        titles, subtitles = self._border_forms
        room = self.outer_size.width - 6  # type: ignore[attr-defined]  (the corners, a rule and a space each side)
        self.border_title = next((t for t in titles if len(t) <= room), "")
        self.border_subtitle = next((t for t in subtitles if len(t) <= room), "")
