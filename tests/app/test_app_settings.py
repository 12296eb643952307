"""The settings panel: typed values, keys, inline rejection, persistence, live effect."""

from __future__ import annotations

import json

from charlstm_tui.settings import load_settings, settings_path

from .conftest import at_once, burst, drive, expected, finished, type_text


def test_typing_a_value_applies_and_persists(app_on) -> None:
    app = app_on()

    async def script(pilot) -> None:
        await pilot.press("f2")  # focus the panel (temperature)
        field = app.main.panel.input_for("temperature")
        assert app.focused is field
        await type_text(pilot, "1.25")  # select_on_focus: typing replaces
        assert app.main.settings.temperature == 1.25
        await pilot.press("tab")  # to length
        await type_text(pilot, "777")
        assert app.main.settings.length == 777
        await pilot.press("enter")  # back to the prompt
        assert app.focused is app.main.prompt

    drive(app, script)
    saved = json.loads(settings_path().read_text())
    assert saved["temperature"] == 1.25 and saved["length"] == 777


def test_invalid_values_are_rejected_inline(app_on) -> None:
    app = app_on(temperature=0.5)

    async def script(pilot) -> None:
        await pilot.press("f2")
        await type_text(pilot, "3")
        field = app.main.panel.input_for("temperature")
        error = app.main.query_one("#setting-error")
        assert field.has_class("-invalid") and error.display
        assert "temperature: 3 is out of range" in str(error.render())
        assert app.main.settings.temperature == 0.5  # the last valid value stays in effect
        await pilot.press("backspace")
        await type_text(pilot, "abc")
        assert "not a number" in str(error.render())
        await pilot.press("ctrl+u")  # clear and type a good value
        for _ in range(5):
            await pilot.press("backspace")
        await type_text(pilot, "0.3")
        assert not field.has_class("-invalid") and not error.display
        assert app.main.settings.temperature == 0.3

    drive(app, script)


def test_keys_step_values_within_range(app_on) -> None:
    app = app_on(temperature=1.95, delay_ms=0)

    async def script(pilot) -> None:
        panel = app.main.panel
        await pilot.press("f4", "f4")  # temperature + from anywhere, clamped at 2
        assert app.main.settings.temperature == 2.0
        await pilot.press("f3")
        assert app.main.settings.temperature == 1.95
        await pilot.press("f2", "down", "down")  # in the field, ↓ steps by 0.05
        assert app.main.settings.temperature == 1.85
        panel.input_for("delay_ms").focus()
        await pilot.press("pageup")  # ×10 steps of 5 ms
        assert app.main.settings.delay_ms == 50
        panel.input_for("top_k").focus()
        await pilot.press("up")  # from blank (off) to a useful value
        assert app.main.settings.top_k == 40
        panel.input_for("mode").focus()
        await pilot.press("up")
        assert app.main.settings.mode == "window"
        panel.input_for("seed").focus()
        panel.input_for("mode").focus()  # entering a field selects it: typing replaces
        await type_text(pilot, "s")  # or type its first letter
        assert app.main.settings.mode == "stateful"
        panel.input_for("seed").focus()
        await type_text(pilot, "42")
        assert app.main.settings.seed == 42
        await pilot.press("backspace", "backspace")  # blank = random
        assert app.main.settings.seed is None

    drive(app, script)
    assert load_settings().top_k == 40


def test_temperature_zero_is_greedy_and_changes_apply_to_the_next_run(app_on, tiny_checkpoint) -> None:
    app = app_on(length=50, delay_ms=0)

    async def script(pilot) -> None:
        await pilot.press("f2")
        await type_text(pilot, "0")
        await pilot.press("enter")
        await type_text(pilot, "KING:")
        await pilot.press("enter")
        await finished(pilot)
        greedy = expected(tiny_checkpoint, "KING:", length=50, seed=0, temperature=0.0)
        assert app.main.output.transcript.text() == "KING:" + greedy

    drive(app, script)


def test_a_damaged_settings_file_falls_back_to_defaults(app_on) -> None:
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"temperature": 9, "length": "many", "mode": "window"')  # invalid JSON
    assert load_settings().temperature == 0.8
    path.write_text('{"temperature": 9, "length": 12, "mode": "window"}')  # one bad field
    s = load_settings()
    assert (s.temperature, s.length, s.mode) == (0.8, 12, "window")


def test_a_value_typed_in_a_burst_is_the_value_set(app_on) -> None:
    """Keys in one write act in the order typed, and the field is never rewritten under
    the typist: "End ⌫⌫⌫⌫ 0.9" over "0.80" set (and saved) 0.00, and "End ⌫ 5" emptied it."""
    app = app_on(temperature=0.8)

    async def script(pilot) -> None:
        await pilot.press("f2")
        field = app.main.panel.input_for("temperature")
        assert app.focused is field and field.value == "0.80"
        await at_once(pilot, "end", "backspace", "backspace", "backspace", "backspace", "0", ".", "9")
        assert field.value == "0.9" and app.main.settings.temperature == 0.9
        await at_once(pilot, "end", "backspace", "5")
        assert field.value == "0.5" and app.main.settings.temperature == 0.5
        await at_once(pilot, "home", "delete", "1", "ctrl+e", "backspace", "2")
        assert field.value == "1.2" and app.main.settings.temperature == 1.2

    drive(app, script)
    assert load_settings().temperature == 1.2


def test_a_burst_of_keys_counts_every_press(app_on) -> None:
    """Ten F4s sent in one write raise the temperature ten steps, as a held key does."""
    app = app_on(temperature=0.5, length=500)

    async def script(pilot) -> None:
        await burst(pilot, "f4", 10)
        assert app.main.settings.temperature == 1.0
        await burst(pilot, "f3", 4)
        assert app.main.settings.temperature == 0.8
        await pilot.press("f2")
        await burst(pilot, "up", 6)  # ↑ in the focused field
        assert app.main.settings.temperature == 1.1
        app.main.panel.input_for("length").focus()
        await burst(pilot, "pagedown", 3)
        assert app.main.settings.length == 1  # 500 - 3 x 1,000, clamped

    drive(app, script)
    assert load_settings().temperature == 1.1


def test_f3_f4_say_the_temperature_where_the_panel_is_folded_away(app_on) -> None:
    """At 80 columns the settings panel is hidden: F3/F4 (and the palette's mode toggle)
    say the new value in one notice, which each further key replaces (a burst, slow
    presses, the limit). With the panel on screen it shows the value and nothing pops up."""
    app = app_on(temperature=1.9)

    def notices() -> list[str]:
        return [n.message for n in app._notifications if n.title.startswith("Settings")]

    async def script(pilot) -> None:
        main = app.main
        assert not main.panel.display
        await pilot.press("f4")
        assert notices() == ["temperature 1.95"]
        await pilot.press("f4")
        await pilot.pause(0.2)
        await burst(pilot, "f4", 3)
        assert notices() == ["temperature 2.00 (highest)"]
        await burst(pilot, "f3", 5)
        assert notices() == ["temperature 1.75"]
        main.action_toggle_mode()
        assert notices() == ["mode window"]
        await pilot.press("f2", "down")  # the panel, over the output, shows it: no notice
        assert main.settings.temperature == 1.70 and notices() == []
        await pilot.press("escape", "f3")
        assert notices() == ["temperature 1.65"]
        await pilot.resize_terminal(110, 34)  # wide: the panel shows it, and the notice goes
        await pilot.pause()
        await pilot.press("f3")
        assert main.settings.temperature == 1.6 and notices() == []
        assert main.panel.input_for("temperature").value == "1.60"

    drive(app, script, size=(80, 24))
