"""A checkpoint's model card: what ``charlstm-tui info`` prints and the Training view shows.

A :class:`ModelCard` keeps a checkpoint's metadata and loss history, never its weights,
so the Training view can hold one per file in its picker. Importing this module is
cheap (no torch); :meth:`ModelCard.read` loads the file, so call it from a worker.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.checkpoint import Checkpoint

LN2 = math.log(2)  # core.evaluate.LN2, without importing torch
RECIPE_KEYS = ("preset", "batch_size", "block_size", "lr", "min_lr", "weight_decay")


@dataclass(frozen=True)
class ModelCard:
    """Config, size, data, training and losses of one checkpoint file."""

    path: Path
    file_bytes: int
    n_layers: int
    n_embd: int
    regularisation: str  # the training-time dropout rates, in words ("none" without any)
    vocab: str  # the characters, in id order
    params: int
    train: dict[str, Any] = field(repr=False)  # the checkpoint's free-form training metadata
    history: tuple[dict[str, Any], ...] = ()  # evaluations: {"step", "train_loss", "val_loss", ...}
    history_source: str = "none"  # "checkpoint", the metrics file's name, or "none"
    val_loss: float | None = None  # of the weights this file holds (core.checkpoint.Checkpoint.val_loss)
    resumable: bool = False  # a run's latest state with its optimizer (``NAME.last.pt``), not its best
    averaged: bool = False  # its run evaluated a weight average (--ema), which a resume file keeps apart

    @classmethod
    def of(cls, path: Path, ckpt: "Checkpoint") -> "ModelCard":
        """The card of ``ckpt``, read from ``path``; the loss history is the longer of the
        checkpoint's and the ``<name>.metrics.jsonl`` beside it (a best checkpoint stops
        at its best step; the metrics file holds the whole run)."""
        path = Path(path)
        history, source = ckpt.history, "checkpoint" if ckpt.history else "none"
        metrics = read_metrics(path.with_name(path.stem + ".metrics.jsonl"))
        if len(metrics) > len(history):
            history, source = metrics, path.stem + ".metrics.jsonl"
        c = ckpt.model_config
        return cls(path=path, file_bytes=path.stat().st_size, n_layers=c.n_layers, n_embd=c.n_embd,
                   regularisation=regularisation(c), vocab="".join(ckpt.vocab.chars),
                   params=sum(v.numel() for v in ckpt.state_dict.values()), train=dict(ckpt.train),
                   history=tuple(history), history_source=source, val_loss=ckpt.val_loss,
                   resumable=ckpt.resume is not None,
                   averaged=ckpt.resume is not None and ckpt.resume.get("ema") is not None)

    @classmethod
    def read(cls, path: Path) -> "ModelCard":
        """Load ``path`` (on the CPU) and keep only its card. Slow: call from a worker.
        Raises :class:`core.errors.CheckpointError` for a file that is not a checkpoint."""
        from core.checkpoint import load_checkpoint

        return cls.of(path, load_checkpoint(path))

    @property
    def best_val_loss(self) -> float | None:
        """The run's best val loss; in a resume file, that of the best file, not its own."""
        best = self.train.get("best_val_loss")
        return float(best) if isinstance(best, (int, float)) and math.isfinite(best) else None

    @property
    def last_eval_step(self) -> int | None:
        """The step of the run's latest evaluation, if any."""
        steps = [int(h["step"]) for h in self.history if isinstance(h.get("step"), (int, float))]
        return max(steps) if steps else None

    def val_words(self) -> str:
        """What :attr:`val_loss` is, said whole: "1.4052 nats/char, 2.0273 bits/char", with
        where a resume file's figure comes from, or why it has none."""
        if self.val_loss is not None:
            figure = f"{self.val_loss:.4f} nats/char, {self.val_loss / LN2:.4f} bits/char"
            return f"{figure}, at its last evaluation (step {self.step:,})" if self.resumable else figure
        if self.averaged:
            return "not measured: the run evaluated its weight average (--ema), kept apart in this file"
        if self.resumable and self.last_eval_step is not None:
            return f"not evaluated: saved at step {self.step:,}, after the last evaluation (step {self.last_eval_step:,})"
        return "not evaluated"

    @property
    def step(self) -> int:
        return int(self.train.get("step", 0))

    def rows(self) -> list[tuple[str, str]]:
        """``(label, value)`` lines of the card, in reading order."""
        t, best = self.train, self.best_val_loss
        best_words = f"{best:.4f} nats/char, {best / LN2:.4f} bits/char" if best is not None else "not evaluated"
        rows = [
            ("checkpoint", f"{self.path} ({self.file_bytes / 1e6:.1f} MB)"),
            ("model", f"LSTM {self.n_layers} x {self.n_embd}, vocab {len(self.vocab)}; trained with "
                      f"{'no dropout' if self.regularisation == 'none' else self.regularisation}"),
            ("parameters", f"{self.params:,}"),
            ("vocabulary", repr(self.vocab)),
            ("data", f"{t.get('data') or 'unknown'} ({t.get('data_chars', 0):,} chars)"),
            ("training", f"{self.step:,} steps, {t.get('tokens_seen', 0):,} tokens, {t.get('elapsed', 0) / 60:.1f} min"),
        ]
        if self.resumable:
            best_file = self.path.name.removesuffix(".last.pt") + ".pt" if self.path.name.endswith(".last.pt") else None
            rows += [
                ("holds", "the run's latest state, with its optimizer, to resume training from"
                          + (f"; the run's best model is {best_file}" if best_file else "")),
                ("val", self.val_words()),
                ("run's best", best_words),
                ("resume", f"on the command line: charlstm-tui train --data TEXT --resume {self.path}"),
            ]
        else:
            rows.append(("best val", best_words))
        cfg = t.get("config") or {}
        if cfg:
            rows.append(("recipe", ", ".join(f"{k}={cfg[k]}" for k in RECIPE_KEYS if k in cfg)))
        return rows

    def text(self) -> str:
        """The card as aligned plain text (``charlstm-tui info``)."""
        return "\n".join(f"{label:<12} {value}" for label, value in self.rows())


def regularisation(config: Any) -> str:
    """A model config's dropout rates in words: "dropout 0.25, weight drop 0.5"."""
    names = {"dropout": "dropout", "weight_drop": "weight drop", "embed_drop": "embedding drop"}
    rates = [f"{label} {getattr(config, name):g}" for name, label in names.items() if getattr(config, name, 0)]
    return ", ".join(rates) or "none"


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The evaluations in a trainer's ``.metrics.jsonl``; [] when it is missing or
    unreadable. A damaged line (a run killed mid-write) is skipped, not fatal."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    events = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and isinstance(event.get("step"), (int, float)):
            events.append(event)
    return events
