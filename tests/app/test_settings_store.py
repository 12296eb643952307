"""Settings fields (parse, show, step), the settings file and the prompt history file."""

from __future__ import annotations

import json
import os

import pytest

from charlstm_tui.settings import (CONTROL, CONTROLS, History, Settings, history_path, load_settings, save_settings,
                                   settings_path)
from core.errors import ConfigError
from core.options import SAMPLING
from core.sampling import SampleConfig


@pytest.mark.parametrize("name, text, value", [
    ("temperature", "0", 0.0), ("temperature", " 1.5 ", 1.5), ("temperature", "2", 2.0),
    ("length", "1", 1), ("length", "100,000", 100_000), ("length", "1,000,000", 1_000_000),
    ("top_k", "", None), ("top_k", "5", 5), ("top_p", "", None), ("top_p", "0.9", 0.9),
    ("delay_ms", "0", 0), ("delay_ms", "200", 200), ("seed", "", None), ("seed", "123", 123),
    ("mode", "w", "window"), ("mode", "Stateful", "stateful"),
])
def test_valid_values(name: str, text: str, value: object) -> None:
    assert CONTROL[name].parse(text) == value


@pytest.mark.parametrize("name, text, why", [
    ("temperature", "2.05", "out of range"), ("temperature", "-1", "out of range"), ("temperature", "hot", "not a number"),
    ("temperature", "nan", "out of range"), ("temperature", "", "enter a number"),
    ("length", "0", "out of range"), ("length", "1000001", "out of range"), ("length", "1.5", "not a whole number"),
    ("top_k", "0", "out of range"), ("top_p", "1.5", "out of range"), ("top_p", "0", "out of range"),
    ("delay_ms", "201", "out of range"), ("seed", str(2**63), "out of range"),
    ("seed", "-3", "out of range"), ("mode", "x", "stateful or window"),
])
def test_invalid_values_say_why(name: str, text: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        CONTROL[name].parse(text)


def test_one_range_per_control_for_the_app_and_core() -> None:
    """The panel's sampling controls are core's options: what one accepts, the other does."""
    assert set(SAMPLING) <= set(CONTROLS)
    for option in SAMPLING:
        assert getattr(Settings(), option.name) == getattr(SampleConfig(), option.name) == option.default
    with pytest.raises(ConfigError, match="temperature: 2.05 is out of range; use 0 to 2"):
        SampleConfig(temperature=2.05)


def test_steps_clamp_to_the_range() -> None:
    step = {o.name: o.stepped for o in CONTROLS}
    assert step["temperature"](1.95, 3) == 2.0 and step["temperature"](0.05, -3) == 0.0
    assert step["temperature"](0.8, 1) == 0.85
    assert step["length"](50, -1) == 1 and step["length"](999_950, 1) == 1_000_000
    assert step["top_p"](0.1, -5) == 0.05  # above 0: the lowest step
    assert step["delay_ms"](0, 10) == 50
    assert step["top_k"](None, 1) == 40 and step["top_p"](None, -1) == 0.95 and step["seed"](None, 1) == 0
    assert step["mode"]("stateful", 1) == "window" and step["mode"]("window", 1) == "stateful"


def test_settings_round_trip_in_the_data_dir() -> None:
    s = Settings(temperature=0.35, length=9, top_k=3, top_p=None, delay_ms=100, seed=5, mode="window", theme="nord")
    save_settings(s)
    assert settings_path().parent.name == "charlstm-tui"
    assert str(settings_path()).startswith(os.environ["XDG_DATA_HOME"])
    assert load_settings() == s


def test_history_keeps_the_newest_and_skips_repeats() -> None:
    h = History(limit=3)
    for p in ("a", "b", "b", "  ", "c", "d"):
        h.add(p)
    assert h.items == ["b", "c", "d"]
    assert json.loads(history_path().read_text()) == ["b", "c", "d"]
    assert History().items == ["b", "c", "d"]


def test_unwritable_history_raises_oserror_and_keeps_the_prompt(tmp_path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data dir should be")  # fails even for root
    h = History(path=blocker / "history.json")
    with pytest.raises(OSError):
        h.add("kept")
    assert h.items == ["kept"]
