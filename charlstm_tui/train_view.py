"""How ``charlstm-tui train`` shows progress: a rich bar on a TTY, log lines otherwise."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


class LogLines:
    """Plain lines for logs and CI: every eval, plus a step line at most every 10 s."""

    def __init__(self, out: Path, silent: bool = False, every_s: float = 10.0) -> None:
        self.out, self.silent, self.every_s = out, silent, every_s
        self._last = 0.0

    def __enter__(self) -> "LogLines":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def echo(self, line: str) -> None:
        if not self.silent:
            click.echo(line)
            sys.stdout.flush()

    def start(self, config: Any, data: Any, data_name: str) -> None:
        from core.train import amp_dtype_for, resolve_device

        device = resolve_device(config.device)
        amp = amp_dtype_for(device, config.amp)
        self.echo(
            f"training {config.n_layers}x{config.n_embd} LSTM ({config.preset} preset) on {data_name}: "
            f"{len(data.train):,} train / {len(data.val):,} val chars, vocab {data.vocab.size}, "
            f"{device.type} {str(amp).replace('torch.', '') if amp else 'fp32'}, "
            f"batch {config.batch_size} x block {config.block_size}, {config.max_iters:,} iters"
            + (f", time limit {config.time_limit:g} min" if config.time_limit else "")
        )

    def show(self, e: Any) -> None:
        now = time.monotonic()
        if e.kind == "step" and now - self._last >= self.every_s:
            self._last = now
            self.echo(f"step {e.step:>6}/{e.max_iters}  loss {e.loss:.4f}  lr {e.lr:.2e}  "
                      f"{e.tokens_per_s:,.0f} tok/s  elapsed {_duration(e.elapsed)}  eta {_duration(e.eta)}")
        elif e.kind == "eval":
            mark = " *" if e.val_loss == e.best_val_loss else ""
            self.echo(f"eval {e.step:>6}: train {e.train_loss:.4f}  val {e.val_loss:.4f}  best {e.best_val_loss:.4f}{mark}")
        elif e.kind == "done":
            self.done(e)

    def done(self, e: Any) -> None:
        best = f"best val {e.best_val_loss:.4f}" if e.best_val_loss is not None else "not evaluated"
        self.echo(f"{e.reason}: {e.step:,} steps in {_duration(e.elapsed)}, {best}; saved {e.path}")


class LabLines(LogLines):
    """The lab's own lines, ``Iter 500: train loss 1.8172``, with the val loss added."""

    def show(self, e: Any) -> None:
        if e.kind == "eval":
            self.echo(f"Iter {e.step}: train loss {e.train_loss:.4f}, val loss {e.val_loss:.4f}")
        elif e.kind == "done":
            self.done(e)


class RichBar(LogLines):
    """A live bar with loss, tokens/s and ETA; evaluations print above it."""

    def __enter__(self) -> "RichBar":
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
            TimeRemainingColumn(), transient=False,
        )
        self.progress.__enter__()
        self.task = None
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def echo(self, line: str) -> None:
        self.progress.console.print(line, markup=False, highlight=False)

    def show(self, e: Any) -> None:
        if self.task is None:
            self.task = self.progress.add_task("train", total=e.max_iters, completed=e.step - 1, stats="")
        if e.kind == "step":
            best = f"  best val {e.best_val_loss:.4f}" if e.best_val_loss is not None else ""
            self.progress.update(self.task, completed=e.step,
                                 stats=f"loss {e.loss:.4f}{best}  {e.tokens_per_s:,.0f} tok/s  eta {_duration(e.eta)}")
        else:
            super().show(e)
