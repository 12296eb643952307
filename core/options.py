"""The sampling options, each defined once: name, type, range, step, default and help.

:class:`~core.sampling.SampleConfig` checks its values against these; the CLI builds its
``generate`` options from them; the app builds its settings panel from them. So a range
is written in one place, and a value the app accepts is one the CLI and core accept.
Pure Python: the CLI's ``--help`` and the app's first frame import it before torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

MODES = ("stateful", "window")
MAX_SEED = 2**63 - 1  # torch's generator takes a signed 64-bit seed
ON, OFF = ("on", "yes", "true", "1"), ("off", "no", "false", "0")


@dataclass(frozen=True)
class Option:
    """One option: ``kind`` is float, int, str (one of ``choices``) or bool.

    Numbers lie in ``lo``..``hi`` (``lo_open``: above ``lo``; ``hi`` None: no upper
    bound). Where ``off`` is set, None is a valid value, typed as a blank and meaning
    ``off`` ("off", "random"); stepping from None starts at ``start``."""

    name: str  # the attribute (SampleConfig, the app's Settings); --name with '-' for '_' on the CLI
    label: str  # what the settings panel calls it
    kind: type
    default: Any
    help: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    step: float = 1
    choices: tuple[str, ...] = ()
    off: str = ""
    start: Any = None
    digits: int | None = None  # decimals shown for a float (None: as few as it needs)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def range_text(self, blank: bool = True) -> str:
        """'0 to 2', 'above 0, up to 1', '1 or more', 'stateful or window', 'on or off';
        with ``blank``, what an empty value means ('; blank = off')."""
        if self.kind is bool:
            return "on or off"
        if self.choices:
            return " or ".join(self.choices)

        def num(x: float) -> str:
            return f"{x:,}" if self.kind is int else f"{x:g}"

        lo = f"above {num(self.lo)}, up to" if self.lo_open else f"{num(self.lo)} to"  # type: ignore[arg-type]
        text = f"{lo} {num(self.hi)}" if self.hi is not None else f"{num(self.lo)} or more"  # type: ignore[arg-type]
        return text + (f"; blank = {self.off}" if self.off and blank else "")

    def check(self, value: Any) -> Any:
        """``value`` if it is valid (a whole number as a float where the option is one),
        else :class:`ConfigError` naming the option and its range."""
        if value is None and self.off:
            return value
        if self.kind is bool:
            ok = isinstance(value, bool)
        elif self.choices:
            ok = value in self.choices
        else:
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            ok = (number and (self.kind is float or isinstance(value, int)) and math.isfinite(value)
                  and (value > self.lo if self.lo_open else value >= self.lo)  # type: ignore[operator]
                  and (self.hi is None or value <= self.hi))
        if not ok:
            raise ConfigError(f"{self.label}: {value!r} is out of range; use {self.range_text(blank=False)}")
        return float(value) if self.kind is float else value

    def parse(self, text: str) -> Any:
        """What the user typed (a CLI argument, a panel field) as a valid value; raises
        :class:`ConfigError` saying what to type."""
        text = str(text).strip()
        if not text:
            if self.off:
                return None
            what = "a number" if self.kind in (int, float) else "a value"
            raise ConfigError(f"{self.label}: enter {what}, {self.range_text(blank=False)}")
        if self.kind is bool:
            word = text.lower()
            if word in ON or word in OFF:
                return word in ON
            raise ConfigError(f"{self.label}: type on or off")
        if self.choices:
            matches = [c for c in self.choices if c.startswith(text.lower())]
            if len(matches) != 1:
                raise ConfigError(f"{self.label}: type {' or '.join(self.choices)} (or its first letter)")
            return matches[0]
        try:
            value = self.kind(text.replace(",", "").replace("_", "")) if self.kind is int else float(text)
        except ValueError:
            what = "a whole number" if self.kind is int else "a number"
            raise ConfigError(f"{self.label}: {text!r} is not {what} ({self.range_text(blank=False)})") from None
        try:
            return self.check(value)
        except ConfigError:
            raise ConfigError(f"{self.label}: {text} is out of range; use {self.range_text(blank=False)}") from None

    def show(self, value: Any) -> str:
        """The value as the panel shows it (and :meth:`parse` reads it back)."""
        if value is None:
            return ""
        if self.kind is bool:
            return "on" if value else "off"
        if self.kind is float:
            return f"{value:.{self.digits}f}" if self.digits is not None else f"{value:g}"
        return str(value)

    def stepped(self, value: Any, n: int) -> Any:
        """``value`` moved ``n`` steps (key presses), clamped to the range."""
        if self.kind is bool:
            return not value if n % 2 else value
        if self.choices:
            return self.choices[(self.choices.index(value) + n) % len(self.choices)]
        if value is None:
            return self.start
        lo = self.lo + self.step if self.lo_open else self.lo  # type: ignore[operator]
        new = max(lo, value + n * self.step)
        if self.hi is not None:
            new = min(self.hi, new)
        return round(new, 6) if self.kind is float else int(new)


TEMPERATURE = Option("temperature", "temperature", float, 0.8, "0 = greedy (the likeliest every time); "
                     "higher takes more risks", lo=0, hi=2, step=0.05, digits=2)
LENGTH = Option("length", "length", int, 500, "characters per run", lo=1, hi=1_000_000, step=100)
TOP_K = Option("top_k", "top-k", int, None, "sample from the k likeliest characters only", lo=1, off="off",
               start=40)
TOP_P = Option("top_p", "top-p", float, None, "nucleus: the likeliest characters that hold this much "
               "probability", lo=0, lo_open=True, hi=1, step=0.05, off="off", start=0.95)
SEED = Option("seed", "seed", int, None, "the same seed repeats a run exactly", lo=0, hi=MAX_SEED, off="random",
              start=0)
MODE = Option("mode", "mode", str, "stateful", "stateful carries the LSTM state; window re-reads the last "
              "block per character (the lab's)", choices=MODES)

#: The options of :class:`~core.sampling.SampleConfig`, in the order the app shows them.
SAMPLING: tuple[Option, ...] = (TEMPERATURE, LENGTH, TOP_K, TOP_P, SEED, MODE)
