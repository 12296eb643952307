"""Where user files live, following the XDG base directory spec."""

from __future__ import annotations

import os
from pathlib import Path

APP = "charlstm-tui"
SIDECAR_SUFFIX = ".adapt.pt"  # NAME.adapt.pt beside NAME.pt: its gradient statistics (core.adapt_stats), not a checkpoint


def _xdg(var: str, default: str) -> Path:
    base = os.environ.get(var)
    return Path(base) if base and os.path.isabs(base) else Path.home() / default


def cache_dir() -> Path:
    """Downloads (the Tiny Shakespeare file): ``$XDG_CACHE_HOME/charlstm-tui``."""
    return _xdg("XDG_CACHE_HOME", ".cache") / APP


def data_dir() -> Path:
    """Prompt history, settings and models trained in the app: ``$XDG_DATA_HOME/charlstm-tui``."""
    return _xdg("XDG_DATA_HOME", ".local/share") / APP
