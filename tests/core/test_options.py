"""core.options: one definition per option (parse, show, step, check), pure Python."""

from __future__ import annotations

import subprocess
import sys

import pytest

from core.errors import ConfigError
from core.options import LENGTH, MODE, SEED, TEMPERATURE, TOP_P, Option


def test_numbers_parse_show_step_and_say_their_range() -> None:
    assert TEMPERATURE.parse(" 1.5 ") == 1.5 and TEMPERATURE.show(1.5) == "1.50"
    assert TEMPERATURE.stepped(1.95, 3) == 2.0 and TEMPERATURE.range_text() == "0 to 2"
    assert LENGTH.parse("1,000") == 1000 and LENGTH.range_text() == "1 to 1,000,000"
    assert TOP_P.range_text() == "above 0, up to 1; blank = off" and TOP_P.stepped(None, 1) == 0.95
    assert SEED.parse("") is None and SEED.range_text(blank=False) == "0 to 9,223,372,036,854,775,807"
    assert MODE.parse("W") == "window" and MODE.stepped("window", 1) == "stateful"
    with pytest.raises(ConfigError, match="top-p: 0 is out of range; use above 0, up to 1"):
        TOP_P.parse("0")
    with pytest.raises(ConfigError, match="length: '1.5' is not a whole number"):
        LENGTH.parse("1.5")
    assert TEMPERATURE.check(1) == 1.0 and isinstance(TEMPERATURE.check(1), float)


def test_a_boolean_option_is_one_line_away() -> None:
    """What a new on/off setting (say, adapting to the user's prompts) gets for free."""
    adapt = Option("adapt", "adapt", bool, False, "learn the user's text as it is read")
    assert adapt.parse("on") is True and adapt.parse("OFF") is False and adapt.show(True) == "on"
    assert adapt.stepped(False, 1) is True and adapt.stepped(False, 2) is False
    assert adapt.check(True) is True and adapt.range_text() == "on or off"
    with pytest.raises(ConfigError, match="adapt: type on or off"):
        adapt.parse("maybe")
    with pytest.raises(ConfigError):
        adapt.check(1)


def test_importing_the_options_does_not_import_torch() -> None:
    code = "import sys, core.options; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
