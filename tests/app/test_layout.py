"""The main screen's layout at the sizes users have: 80x24 and below, and wide.

Below 100 columns the settings panel folds away and F2 shows it over the output; the
footer shows whole keys only, F6/F7/F9/F10 among them at 80 columns; the welcome hint
wraps inside the pane; the status line keeps the run's state whole; below 16 rows the
output and the prompt give their borders to the text."""

from __future__ import annotations

import pytest

from .conftest import drive, finished, screen_lines, type_text, wait_for


def footer(app) -> str:
    return screen_lines(app)[-1]


def test_80x24_folds_the_settings_away_and_f2_shows_them_over_the_output(app_on) -> None:
    app = app_on(length=200, seed=1, delay_ms=0)

    async def script(pilot) -> None:
        main = app.main
        await pilot.pause()
        panel, out = main.panel, main.output
        assert not panel.display and out.region.width == 80  # the output gets the width
        lines = screen_lines(app)
        assert footer(app).split() == ["Enter", "generate", "F1", "help", "F2", "settings", "F6", "train", "F7",
                                       "sweep", "F9", "score", "F10", "curves"]
        # The hint wraps inside the pane: every line of it is there, whole.
        body = "\n".join(lines)
        for words in ("Type a prompt below and press Enter:", "F6 train a model", "F10 training curves",
                      "F1 help · ^P every command"):
            assert words in body
        await pilot.press("f2")
        assert panel.display and app.focused is panel.input_for("temperature")
        assert panel.region.right == 80 and panel.region.width == 34 and out.region.width == 80  # over it
        assert footer(app).split()[:2] == ["Esc", "back"]
        await pilot.press("up", "up")
        assert main.settings.temperature == 0.9
        await pilot.press("escape")
        assert not panel.display and app.focused is main.prompt
        await pilot.press("f2")
        await pilot.press("f2")  # F2 again: back out
        assert not panel.display and app.focused is main.prompt
        # Tab with no ghost text goes to the output pane, never into a settings field.
        await pilot.press("tab")
        assert app.focused is out
        await pilot.press("tab")
        assert app.focused is main.prompt
        await type_text(pilot, "KING:")
        await pilot.press("enter")
        await finished(pilot)
        status = screen_lines(app)[-2]
        assert status.rstrip().endswith("chars/s") and "done · 200 chars" in status
        await pilot.press("ctrl+o")  # a notice: it stands above the status line, not over it
        await pilot.pause(0.3)
        assert app._notifications and screen_lines(app)[-2] == status

    drive(app, script, size=(80, 24))


def test_200x50_keeps_the_panel_beside_the_output(app_on) -> None:
    app = app_on()

    async def script(pilot) -> None:
        main = app.main
        await pilot.pause()
        panel, out = main.panel, main.output
        assert panel.display and panel.region.width == 34 and out.region.right == panel.region.x
        assert out.region.width == 200 - 34
        keys = footer(app)
        for words in ("F5 heat-map", "F8 inspect", "^N continue", "^O copy", "^P commands"):
            assert words in keys
        await pilot.press("f2")
        assert app.focused is panel.input_for("temperature") and panel.region.x == 200 - 34
        await pilot.press("escape")
        assert panel.display and app.focused is main.prompt

    drive(app, script, size=(200, 50))


@pytest.mark.parametrize("size", [(60, 15), (30, 8)])
def test_small_terminals_still_show_the_text(app_on, size) -> None:
    app = app_on(length=40, seed=2, delay_ms=0)

    async def script(pilot) -> None:
        main = app.main
        await pilot.pause()
        assert main.has_class("-narrow", "-short")
        await type_text(pilot, "KING:")
        await pilot.press("enter")
        await finished(pilot)
        lines = screen_lines(app)
        assert any("KING:" in line for line in lines)  # the text is on screen
        assert lines[-2].rstrip().endswith(("chars/s", "done · 40 chars", "done"))  # the state, whole
        assert footer(app).strip().startswith("Enter generate  F1 help")
        assert all(len(line) == size[0] for line in lines)

    drive(app, script, size=size)


def test_a_resize_mid_run_keeps_the_newest_line_in_view(app_on) -> None:
    app = app_on(length=100_000, seed=3, delay_ms=2)

    async def script(pilot) -> None:
        main = app.main
        out = main.output
        await type_text(pilot, "KING:")
        await pilot.press("enter")
        await wait_for(pilot, lambda: out.rows.total > 3 * out.size.height, "a few screens of text")
        for size in ((60, 15), (30, 8), (200, 50), (80, 24)):
            await pilot.resize_terminal(*size)
            await pilot.pause(0.2)
            assert out.scroll_y + out.scrollable_content_region.height == out.rows.total, size
        await pilot.press("escape")

    drive(app, script, size=(80, 24))


def test_inspect_mode_at_80x24_names_its_keys_and_the_prompt_hint_fits(app_on) -> None:
    app = app_on(length=120, seed=1, delay_ms=0)

    async def script(pilot) -> None:
        main = app.main
        await type_text(pilot, "KING:")
        await pilot.press("enter")
        await finished(pilot)
        await pilot.press("f8")
        await wait_for(pilot, lambda: main.explorer.inspection is not None, "the inspector")
        assert main.inspector.display and main.inspector.region.width == 34
        assert footer(app).split()[:6] == ["Esc", "leave", "1", "fork", "with", "#1"]
        # The prompt, narrower now, shows the longest hint that fits, whole.
        hint = main.prompt.border_subtitle
        assert hint in ("Enter generate · ^J newline · ↑↓ history", "^J newline · ↑↓ history", "")
        assert len(hint) <= main.prompt.size.width - 2 and "…" not in "".join(screen_lines(app))
        await pilot.press("escape")
        assert not main.inspector.display
        assert main.prompt.border_subtitle == "Enter generate · ^J newline · ↑↓ history"

    drive(app, script, size=(80, 24))
