"""How ``charlstm-tui train`` shows progress: a rich bar on a TTY, log lines otherwise.

Both render the :class:`core.train.Progress` events of one run. Evaluations print one
line each: ours (``eval    500: train 1.8172  val 1.9012  best 1.9012 *``) or, for
``--preset lab``, the lab's own (``Iter 500: train loss 1.8172, val loss 1.9012``), after
its first line, ``Iter 0: train loss 4.1738`` (the first batch's loss).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click


def duration(seconds: float | None) -> str:
    """``75.2`` -> ``1:15``; ``None`` -> ``?``."""
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


def eval_line(e: Any, lab: bool) -> str:
    """One evaluation, in the lab's form or ours (a ``*`` marks a new best, saved)."""
    if lab:
        return f"Iter {e.step}: train loss {e.train_loss:.4f}, val loss {e.val_loss:.4f}"
    return (f"eval {e.step:>6}: train {e.train_loss:.4f}  val {e.val_loss:.4f}  "
            f"best {e.best_val_loss:.4f}{' *' if e.improved else ''}")


def lab_first_line(e: Any) -> str | None:
    """The lab's first line, ``Iter 0: train loss 4.1738``: the loss of the first batch, before
    any update, which the first step event carries. ``None`` for every other event."""
    return f"Iter 0: train loss {e.loss:.4f}" if e.kind == "step" and e.step == 1 else None


def step_line(e: Any) -> str:
    return (f"step {e.step:>6}/{e.max_iters}  loss {e.loss:.4f}  lr {e.lr:.2e}  {e.tokens_per_s:,.0f} tok/s  "
            f"elapsed {duration(e.elapsed)}  eta {duration(e.eta)}")


def done_line(e: Any, path: str | None = None) -> str:
    """How a run ended, in one line; ``path`` shows the checkpoint's path another way."""
    best = f"best val {e.best_val_loss:.4f}" if e.best_val_loss is not None else "not evaluated"
    saved = f"saved {path or e.path}" if e.path else "nothing saved"
    return f"{e.reason}: {e.step:,} steps in {duration(e.elapsed)}, {best}; {saved}"


class LogLines:
    """Plain lines for logs and CI: every evaluation, plus a step line at most every ``every_s``."""

    def __init__(self, lab: bool = False, silent: bool = False, every_s: float = 10.0) -> None:
        self.lab, self.silent, self.every_s = lab, silent, every_s
        self._last_step_line = -float("inf")

    def __enter__(self) -> "LogLines":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def echo(self, line: str) -> None:
        if not self.silent:
            click.echo(line)
            sys.stdout.flush()  # CI logs show progress as it happens

    def start(self, config: Any, data: Any, data_name: str) -> None:
        """Keep what the first line says of the run; it prints with the trainer's start event,
        which adds how the run computes."""
        self._header = (
            f"training {config.n_layers}x{config.n_embd} LSTM ({config.preset} preset) on {data_name}: "
            f"{len(data.train):,} train / {len(data.val):,} val chars, vocab {data.vocab.size}, "
            f"batch {config.batch_size} x block {config.block_size}, {config.max_iters:,} iters"
            + (f", time limit {config.time_limit:.3g} min" if config.time_limit else "")
        )

    def start_line(self, e: Any) -> str:
        resumed = f"; resuming at step {e.step:,}" if e.step else ""
        return f"{self._header}{resumed}; {e.plan}"

    def show(self, e: Any) -> None:
        if self.lab and (first := lab_first_line(e)):
            self.echo(first)
        if e.kind == "start":
            self.echo(self.start_line(e))
        elif e.kind == "step":
            now = time.monotonic()
            if now - self._last_step_line >= self.every_s:
                self._last_step_line = now
                self.echo(step_line(e))
        elif e.kind == "eval":
            self.echo(eval_line(e, self.lab))
        elif e.kind == "done":
            self.echo(done_line(e))


class RichBar(LogLines):
    """A live bar with loss, best val, tokens/s and ETA; evaluations print above it."""

    def __enter__(self) -> "RichBar":
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        self.progress = Progress(TextColumn("[bold]train"), BarColumn(bar_width=30), TaskProgressColumn(),
                                 TextColumn("{task.fields[stats]}"))
        self.task = self.progress.add_task("train", total=1.0, stats="")
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def echo(self, line: str) -> None:
        self.progress.console.print(line, markup=False, highlight=False)

    def show(self, e: Any) -> None:
        if self.lab and (first := lab_first_line(e)):
            self.echo(first)
        if e.kind == "step":
            best = f"  best val {e.best_val_loss:.4f}" if e.best_val_loss is not None else ""
            self.progress.update(self.task, completed=e.fraction, stats=(
                f"step {e.step:,}  loss {e.loss:.4f}{best}  {e.tokens_per_s:,.0f} tok/s  eta {duration(e.eta)}"))
        else:
            if e.kind == "done":
                self.progress.update(self.task, completed=e.fraction)
            super().show(e)
