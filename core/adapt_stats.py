"""Where a checkpoint's gradient statistics (:class:`~core.adapt.GradStats`) come from.

They are measured once per checkpoint and kept, looked for in this order:

1. in the checkpoint itself: ``charlstm-tui train`` stores them in the files it writes;
2. in a sidecar beside it, ``NAME.adapt.pt`` (:func:`write_sidecar`, for a checkpoint made before 1.);
3. in the user cache, ``$XDG_CACHE_HOME/charlstm-tui/adapt/``, keyed by the weights' digest.

Otherwise they are measured now, on the checkpoint's training text where it names one that
is here (Tiny Shakespeare, once downloaded), else on the text about to be read, and cached.
Each source is checked against a digest of the weights, so statistics never outlive the
weights they were measured on. Nothing is written beside the user's files, and a
checkpoint is never modified here; the cache is written atomically.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Callable, Sequence

import torch

from . import datasets
from .adapt import GradStats, measure_stats
from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint, state_digest
from .data import TextData, load_text
from .errors import ConfigError, DataError
from .files import atomic_write, read_input
from .model import LMNet
from .paths import SIDECAR_SUFFIX, cache_dir

MIN_CACHED_CHARS = 2_048  # statistics measured on a shorter text serve that read only


def sidecar_path(checkpoint: Path) -> Path:
    return checkpoint.with_name(checkpoint.stem + SIDECAR_SUFFIX)


def cache_path(digest: str) -> Path:
    return cache_dir() / "adapt" / f"{digest[:40]}.pt"


def weights_digest(model: LMNet) -> str:
    return state_digest(model.state_dict())


def stats_for(model: LMNet, ckpt: Checkpoint, path: Path | None = None, text: Sequence[int] | None = None,
              note: Callable[[str], None] | None = None) -> GradStats:
    """The gradient statistics for ``model`` (built from ``ckpt``, read from ``path``, not yet
    adapted). ``text``: ids to measure on when nothing else is found. ``note`` is told
    before a measurement starts (it takes seconds)."""
    digest = weights_digest(model)
    found = _from_dict(ckpt.adapt_stats, digest, model)
    for candidate in ([sidecar_path(path)] if path is not None else []) + [cache_path(digest)]:
        if found is None:
            found = _from_dict(_read(candidate), digest, model)
    if found is not None:
        return found
    ids, source = _training_text(ckpt)
    if ids is None:
        if not text or len(text) < 2:
            raise ConfigError("this checkpoint has no gradient statistics and names no training text that is here; "
                              "give a text of at least 2 characters to measure them on")
        ids, source = text, "the text read"
    if note is not None:
        note(f"measuring this checkpoint's gradient statistics on {source} (once; they are cached)")
    stats = measure_stats(model, ids, source=source)
    if stats.chars >= MIN_CACHED_CHARS:
        write_stats(cache_path(digest), stats, digest)
    return stats


def _training_text(ckpt: Checkpoint) -> tuple[list[int] | None, str]:
    """The train split of the checkpoint's training text, where it names one that is here."""
    if ckpt.train.get("data") != datasets.NAME or not datasets.is_cached():
        return None, ""
    try:
        data = TextData.from_text(load_text(datasets.cache_path()), vocab=ckpt.vocab)
    except DataError:  # its vocabulary is not this checkpoint's
        return None, ""
    return data.train.tolist(), f"{datasets.NAME} (train split)"


def _from_dict(d: object, digest: str, model: LMNet) -> GradStats | None:
    if not isinstance(d, dict) or d.get("weights") != digest:
        return None
    try:
        stats = GradStats.from_dict(d)
    except ConfigError:
        return None
    return stats if stats.fits(model) else None


def _read(path: Path) -> object:
    """A stats file's contents, or None where there is none or it cannot be read."""
    try:
        raw = read_input(path, "gradient statistics", ConfigError)  # a regular file only, never a FIFO
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)  # never runs code from it
    except Exception:  # noqa: BLE001  missing or damaged: measured anew, never an error
        return None


def write_stats(path: Path, stats: GradStats, digest: str) -> bool:
    """Write ``stats`` for the weights of ``digest`` atomically (see :mod:`core.files`).
    Returns False where it cannot: a cache that cannot be written is not an error."""
    try:
        with atomic_write(path, "gradient statistics", ConfigError) as f:
            torch.save({**stats.to_dict(), "weights": digest}, f)
    except ConfigError:
        return False
    return True


def store_stats(checkpoint: Path, train_ids: Sequence[int] | torch.Tensor, source: str) -> None:
    """Measure the statistics of the checkpoint at ``checkpoint`` on its training text and
    store them in it (for ``charlstm-tui train``, on the files it writes)."""
    ckpt = load_checkpoint(checkpoint)
    model = ckpt.build_model()
    stats = measure_stats(model, train_ids, source=source)
    ckpt.adapt_stats = {**stats.to_dict(), "weights": weights_digest(model)}
    save_checkpoint(checkpoint, ckpt)  # the weights as they were stored


def write_sidecar(checkpoint: str | Path, text: str | Path) -> Path:
    """Measure the statistics of a checkpoint on the train split of its training text (a
    file) and write them beside it, as ``NAME.adapt.pt``: for a checkpoint that ships, such
    as the bundled one, made before ``train`` stored them."""
    checkpoint = Path(checkpoint)
    ckpt = load_checkpoint(checkpoint)
    model = ckpt.build_model()
    data = TextData.from_text(load_text(text), vocab=ckpt.vocab)
    stats = measure_stats(model, data.train, source=f"{Path(text).stem} (train split)")
    path = sidecar_path(checkpoint)
    if not write_stats(path, stats, weights_digest(model)):
        raise ConfigError(f"cannot write {path}; check the folder's permissions")
    return path
