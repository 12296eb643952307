"""The app's persisted settings and prompt history, under ``core.paths.data_dir()``.

Pure Python (no torch, no textual), so it loads before the first frame. Each control
is described once, by a :class:`Field`: its range, how to parse what the user typed,
how to show it and how a key press steps it. The settings panel is built from
:data:`FIELDS`, so adding a control means adding one entry here.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

from core.paths import data_dir

MODES = ("stateful", "window")  # core.sampling.MODES, without importing torch


@dataclass(frozen=True)
class Settings:
    """What the user controls. ``None`` means off (top-k, top-p) or random (seed)."""

    temperature: float = 0.8
    length: int = 500
    top_k: int | None = None
    top_p: float | None = None
    delay_ms: int = 10
    seed: int | None = None
    mode: str = "stateful"
    theme: str = "textual-dark"  # not a panel field: chosen from the command palette
    heatmap: bool = False  # colour generated text by its probability (F5)
    ghost: bool = True  # preview the prompt's continuation while typing

    def with_(self, **changes: Any) -> "Settings":
        return replace(self, **changes)


class InvalidValue(ValueError):
    """What the user typed is not a valid value; ``str()`` says what is expected."""


@dataclass(frozen=True)
class Field:
    """One control: ``parse`` text -> value (raises InvalidValue), ``show`` value -> text,
    ``step`` (value, +n/-n key presses) -> value, clamped to the range."""

    name: str
    label: str
    help: str
    parse: Callable[[str], Any]
    show: Callable[[Any], str]
    step: Callable[[Any, int], Any]
    blank: str = ""  # what an empty value means, shown as the placeholder


def _number(text: str, kind: type, lo: float, hi: float, what: str, blank: str | None = None) -> Any:
    text = text.strip()
    if not text:
        if blank is not None:
            return None
        raise InvalidValue(f"{what}: enter a number from {lo:g} to {hi:g}")
    try:
        value = kind(text)
    except ValueError:
        raise InvalidValue(f"{what}: {text!r} is not {'a whole number' if kind is int else 'a number'} "
                           f"(range {lo:g} to {hi:g}{', blank = ' + blank if blank else ''})") from None
    if not (math.isfinite(value) and lo <= value <= hi):
        raise InvalidValue(f"{what}: {text} is out of range; use {lo:g} to {hi:g}"
                           + (f" (blank = {blank})" if blank else ""))
    return value


def _stepper(step: float, lo: float, hi: float, kind: type, off: float | None = None) -> Callable[[Any, int], Any]:
    """Add n steps and clamp; for optional fields, stepping from blank starts at ``off``."""

    def go(value: Any, n: int) -> Any:
        if value is None:
            return kind(off) if off is not None else None
        new = min(hi, max(lo, value + n * step))
        return round(new, 2) if kind is float else int(new)

    return go


def _parse_mode(text: str) -> str:
    text = text.strip().lower()
    matches = [m for m in MODES if text and m.startswith(text)]
    if len(matches) != 1:
        raise InvalidValue(f"mode: type {' or '.join(MODES)} (or its first letter)")
    return matches[0]


def _step_mode(value: str, n: int) -> str:
    return MODES[(MODES.index(value) + n) % len(MODES)]


def _blank(value: Any) -> str:
    return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


FIELDS: tuple[Field, ...] = (
    Field("temperature", "temperature", "0 to 2, step 0.05; 0 = greedy",
          lambda t: round(_number(t, float, 0, 2, "temperature"), 4),
          lambda v: f"{v:.2f}", _stepper(0.05, 0, 2, float)),
    Field("length", "length", "characters per run, 1 to 100,000",
          lambda t: _number(t.replace(",", "").replace("_", ""), int, 1, 100_000, "length"),
          str, _stepper(100, 1, 100_000, int)),
    Field("top_k", "top-k", "sample from the k likeliest; blank = off",
          lambda t: _number(t, int, 1, 100_000, "top-k", blank="off"),
          _blank, _stepper(1, 1, 100_000, int, off=40), blank="off"),
    Field("top_p", "top-p", "nucleus, 0.01 to 1; blank = off",
          lambda t: _number(t, float, 0.01, 1, "top-p", blank="off"),
          _blank, _stepper(0.05, 0.05, 1, float, off=0.95), blank="off"),
    Field("delay_ms", "delay ms", "typewriter delay per char, 0 to 200",
          lambda t: _number(t, int, 0, 200, "delay"),
          str, _stepper(5, 0, 200, int)),
    Field("seed", "seed", "blank = random",
          lambda t: _number(t, int, 0, 2**63 - 1, "seed", blank="random"),
          _blank, _stepper(1, 0, 2**63 - 1, int, off=0), blank="random"),
    Field("mode", "mode", "stateful (carried state) or window (the lab's)",
          _parse_mode, str, _step_mode),
)
FIELD_BY_NAME = {f.name: f for f in FIELDS}


# -- files ------------------------------------------------------------------------------

def settings_path() -> Path:
    return data_dir() / "settings.json"


def history_path() -> Path:
    return data_dir() / "history.json"


def _write_json(path: Path, data: Any) -> None:
    """Atomic write: a crash never leaves half a file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=1)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # missing or damaged: start from defaults rather than refuse to start


def load_settings(path: Path | None = None) -> Settings:
    """The saved settings; any missing or invalid field keeps its default."""
    raw = _read_json(path or settings_path())
    settings = Settings()
    if not isinstance(raw, dict):
        return settings
    good: dict[str, Any] = {}
    for f in FIELDS:
        if f.name in raw:
            try:
                good[f.name] = f.parse(_blank(raw[f.name]) if raw[f.name] is not None else "")
            except (InvalidValue, TypeError):
                pass
    if isinstance(raw.get("theme"), str):
        good["theme"] = raw["theme"]
    for name in ("heatmap", "ghost"):
        if isinstance(raw.get(name), bool):
            good[name] = raw[name]
    return replace(settings, **good)


def save_settings(settings: Settings, path: Path | None = None) -> None:
    """Persist ``settings``; raises OSError when the data dir is not writable."""
    _write_json(path or settings_path(), asdict(settings))


class History:
    """Earlier prompts, oldest first, persisted as a JSON list (the newest ``limit``)."""

    def __init__(self, path: Path | None = None, limit: int = 500) -> None:
        self.path = path or history_path()
        self.limit = limit
        raw = _read_json(self.path)
        self.items: list[str] = [p for p in raw if isinstance(p, str)][-limit:] if isinstance(raw, list) else []

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> str:
        return self.items[i]

    def add(self, prompt: str) -> None:
        """Remember ``prompt`` (skipping blanks and a repeat of the last one) and save it.

        Raises OSError when the data dir is not writable (the prompt is still kept
        for this session)."""
        if not prompt.strip() or (self.items and self.items[-1] == prompt):
            return
        self.items.append(prompt)
        del self.items[:-self.limit]
        _write_json(self.path, self.items)
