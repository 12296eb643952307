"""The app's persisted settings and prompt history, under ``core.paths.data_dir()``.

Pure Python (no torch, no textual), so it loads before the first frame. :class:`Settings`
is the one object that holds what the user controls. A field made with :func:`control`
is a control of the settings panel, described by a :class:`core.options.Option` (its
range, step, default, how to parse and show it): the sampling ones are core's own, so the
app, the CLI and core share one range per control. Adding a control is one line here.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.options import LENGTH, MODE, SEED, TEMPERATURE, TOP_K, TOP_P, Option
from core.paths import data_dir


def control(option: Option) -> Any:
    """A :class:`Settings` field shown in the settings panel, as ``option`` describes it."""
    return field(default=option.default, metadata={"option": option})


DELAY = Option("delay_ms", "delay ms", int, 10, "typewriter delay per character, in ms", lo=0, hi=200, step=5)
ADAPT = Option("adapt", "adapt", bool, False, "the model learns from each prompt you enter and each text "
               "scored in F9 as it reads it (never from its own text); ^G forgets all it learned")
ADAPT_RATE = Option("adapt_rate", "adapt rate", float, 1.0, "how far adapting moves the weights, times the "
                    "default: 1 scores long texts best; 2 to 4 take on a short text's names sooner, and garble more",
                    lo=0.5, hi=10, step=0.5, digits=1)


@dataclass(frozen=True)
class Settings:
    """What the user controls: replaced (never changed) by :meth:`with_`. ``None`` means
    off (top-k, top-p) or random (seed)."""

    temperature: float = control(TEMPERATURE)
    length: int = control(LENGTH)
    top_k: int | None = control(TOP_K)
    top_p: float | None = control(TOP_P)
    delay_ms: int = control(DELAY)
    seed: int | None = control(SEED)
    mode: str = control(MODE)
    adapt: bool = control(ADAPT)
    adapt_rate: float = control(ADAPT_RATE)
    theme: str = "textual-dark"  # chosen from the command palette
    heatmap: bool = False  # colour generated text by its probability (F5)
    ghost: bool = True  # preview the prompt's continuation while typing

    def with_(self, **changes: Any) -> "Settings":
        return replace(self, **changes)


#: The settings panel's controls, in its order.
CONTROLS: tuple[Option, ...] = tuple(f.metadata["option"] for f in fields(Settings) if "option" in f.metadata)
CONTROL = {o.name: o for o in CONTROLS}


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
    if not isinstance(raw, dict):
        return Settings()
    good: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name not in raw:
            continue
        value, option = raw[f.name], f.metadata.get("option")
        try:
            if option is not None:
                good[f.name] = option.check(value)
            elif isinstance(value, type(f.default)):
                good[f.name] = value
        except ConfigError:
            pass
    return replace(Settings(), **good)


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
