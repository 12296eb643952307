"""``charlstm-tui train``: options -> core.train.train() -> rendered progress.

The trainer yields events; this module only decides how they look: a rich progress bar
on a TTY, plain log lines otherwise (and the lab's ``Iter 500: train loss ...`` lines
for ``--preset lab``). Ctrl-C / SIGTERM finish the current step, save, print the
resume command and exit with 130 / 143.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

PRESET_NAMES = ("default", "lab", "quick")
# Options that map one-to-one onto core.train.TrainConfig fields.
MODEL_AND_RUN_OPTIONS = (
    "n_embd", "n_layers", "dropout", "batch_size", "block_size", "lr", "min_lr", "warmup_iters",
    "weight_decay", "grad_clip", "max_iters", "eval_interval", "eval_iters", "device", "amp", "seed", "time_limit",
)


def _opt(name: str, type_: Any, help_: str) -> Any:
    return click.option(f"--{name.replace('_', '-')}", name, type=type_, default=None, help=help_)


@click.command()
@click.option("--data", "-d", "data_arg", required=True, envvar="CHARLSTM_DATA",
              help="A UTF-8 text file, or 'tinyshakespeare' to download the lab's dataset into the user cache.")
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Best-by-val checkpoint path; <out>.last.pt and <out>.metrics.jsonl go beside it. [default: ./<data name>.pt]")
@click.option("--preset", type=click.Choice(PRESET_NAMES), default=None,
              help="lab: the lab's recipe exactly (1x512 LSTM, B128, T256, AdamW 3e-4, 10k iters; the lab hides its "
                   "n_embd, we use 512, the size its published figures match and a cuDNN-friendly multiple of 128). "
                   "default: ours, tuned for val loss (2x512, dropout, weight decay, warm-up, cosine, clipping). "
                   "quick: a good model of any text in about a minute and a half on a laptop CPU. [default: default]")
@_opt("n_embd", click.IntRange(1), "Embedding and hidden size.")
@_opt("n_layers", click.IntRange(1), "Stacked LSTM layers.")
@_opt("dropout", click.FloatRange(0, 1, max_open=True), "Dropout on the embedding, between layers and before the output.")
@_opt("batch_size", click.IntRange(1), "Sequences per step.")
@_opt("block_size", click.IntRange(1), "Characters per sequence (truncated BPTT length).")
@_opt("lr", click.FloatRange(0, min_open=True), "Peak learning rate (AdamW).")
@_opt("min_lr", click.FloatRange(0), "Learning rate at the end of the cosine decay.")
@_opt("warmup_iters", click.IntRange(0), "Linear warm-up steps.")
@_opt("weight_decay", click.FloatRange(0), "AdamW weight decay (matrices only).")
@_opt("grad_clip", click.FloatRange(0), "Clip the gradient norm to this; 0 = off.")
@_opt("max_iters", click.IntRange(1), "Training steps.")
@_opt("eval_interval", click.IntRange(1), "Steps between evaluations (and checkpoints).")
@_opt("eval_iters", click.IntRange(1), "Batches per loss estimate.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default=None, help="[default: auto]")
@click.option("--amp/--no-amp", default=None, help="Mixed precision: bf16 on capable CPUs, fp16 on CUDA. [default: on]")
@click.option("--resume", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Continue from a <out>.last.pt file: model, optimizer, step, RNG and metrics.")
@_opt("time_limit", click.FloatRange(0, min_open=True), "Stop after this many minutes (the lr schedule ends with it).")
@_opt("seed", int, "Seed for init, batches and dropout.")
def train(data_arg: str, out: Path | None, preset: str | None, resume: Path | None, **options: Any) -> None:
    """Train a model on a text file, headless. Also runs under torchrun for DDP."""
    from core.errors import CharLSTMError

    from .cli import domain_errors

    rank = int(os.environ.get("RANK", "0"))
    with domain_errors():
        config, data, data_name, resume_ckpt, out = _prepare(data_arg, out, preset, resume, options)
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        if received:  # a second Ctrl-C means now
            raise KeyboardInterrupt
        received.append(signum)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)

    from core.train import last_path, train as run

    view = _view(config, out, quiet=rank != 0)
    try:
        with domain_errors(), view:
            if rank == 0:
                view.start(config, data, data_name)
            for event in run(config, data, out, resume=resume_ckpt, stop=stop, data_name=data_name):
                if rank == 0:
                    view.show(event)
    except CharLSTMError as e:  # pragma: no cover - domain_errors converts; kept for clarity
        raise click.ClickException(str(e)) from None
    if rank != 0:
        return
    if received:
        code = 130 if received[0] == signal.SIGINT else 143
        cmd = _resume_command(data_arg, out, last_path(out))
        click.echo(f"Interrupted: best checkpoint {out}, latest state {last_path(out)}.\nResume with: {cmd}", err=True)
        sys.exit(code)


def _prepare(data_arg: str, out: Path | None, preset: str | None, resume: Path | None, options: dict[str, Any]):
    from core.checkpoint import load_checkpoint
    from core.data import TextData
    from core.train import TrainConfig, preset as preset_config, with_overrides

    resume_ckpt = load_checkpoint(resume) if resume is not None else None
    if resume_ckpt is not None and resume_ckpt.train.get("config"):
        base = TrainConfig.from_dict(resume_ckpt.train["config"])  # the run's own recipe, then explicit overrides
        if preset is not None and preset != base.preset:
            raise click.UsageError(f"--preset {preset} differs from the resumed run's preset {base.preset}; drop --preset")
    else:
        base = preset_config(preset or "default")
    path, data_name = _data_path(data_arg)
    config = with_overrides(base, **{k: options[k] for k in MODEL_AND_RUN_OPTIONS if k in options})
    if config.preset == "quick" and resume_ckpt is None:
        from core.quick import adapt_quick

        config, chosen = adapt_quick(config, path, explicit={k for k, v in options.items() if v is not None})
        click.echo(chosen)
    config = config.validate()
    vocab = resume_ckpt.vocab if resume_ckpt is not None else None
    data = TextData.from_file(path, config.block_size, vocab=vocab)
    if out is None:
        out = resume.with_name(resume.name.replace(".last.pt", ".pt")) if resume else Path(f"{data_name}.pt")
    return config, data, data_name, resume_ckpt, out


def _data_path(data_arg: str) -> tuple[Path, str]:
    from core import datasets

    if data_arg == datasets.NAME and not Path(data_arg).exists():
        return datasets.tinyshakespeare(), datasets.NAME
    path = Path(data_arg).expanduser()
    return path, path.stem


def _resume_command(data_arg: str, out: Path, last: Path) -> str:
    return " ".join(["charlstm-tui", "train", "--data", shlex.quote(data_arg), "--out", shlex.quote(str(out)),
                     "--resume", shlex.quote(str(last))])


def _view(config: Any, out: Path, quiet: bool) -> "ProgressView":
    from .train_view import LabLines, LogLines, RichBar

    if quiet:
        return LogLines(out, silent=True)
    if config.preset == "lab":
        return LabLines(out)
    return RichBar(out) if sys.stdout.isatty() else LogLines(out)


ProgressView = Any
