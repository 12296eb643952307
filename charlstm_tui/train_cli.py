"""``charlstm-tui train``: options -> core.train.train() -> rendered progress.

The trainer yields events; this module only decides how they look (see train_view).
Ctrl-C / SIGTERM finish the current step, save, print the resume command and exit
with 130 / 143. Under torchrun every rank runs this command; only rank 0 prints.
"""

from __future__ import annotations

import itertools
import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from core.options import MAX_SEED

PRESET_NAMES = ("default", "lab", "quick")
# Options that map one-to-one onto core.train.TrainConfig fields.
CONFIG_OPTIONS = (
    "n_embd", "n_layers", "dropout", "weight_drop", "embed_drop", "batch_size", "block_size", "lr", "min_lr", "warmup_iters",
    "weight_decay", "grad_clip", "ema", "max_iters", "eval_interval", "eval_iters", "device", "amp", "seed", "time_limit",
)
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal, as shells report it


DATA_HELP = ("A UTF-8 text file, or 'tinyshakespeare' to download the lab's dataset into the user cache "
             "(once; sha256-checked).")


def data_source(arg: str, announce: bool = True) -> tuple[Path, str]:
    """``--data`` -> (local file, short name); 'tinyshakespeare' (when no such file is
    here) is downloaded into the user cache once, and read from there after."""
    from core import datasets

    if arg == datasets.NAME and not Path(arg).exists():
        if not datasets.is_cached() and announce:
            click.echo(f"downloading Tiny Shakespeare into {datasets.cache_path()}", err=True)
        from .cli import domain_errors

        with domain_errors():
            return datasets.tinyshakespeare(), datasets.NAME
    path = Path(arg).expanduser()
    return path, path.stem


def _opt(name: str, type_: Any, help_: str) -> Any:
    return click.option(f"--{name.replace('_', '-')}", name, type=type_, default=None, help=help_)


@click.command()
@click.option("--data", "-d", "data_arg", required=True, envvar="CHARLSTM_DATA", help=DATA_HELP)
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Best-by-val checkpoint; <out>.last.pt (for --resume) and <out>.metrics.jsonl go beside it. "
                   "[default: ./<data name>.pt]")
@click.option("--preset", type=click.Choice(PRESET_NAMES), default=None,
              help="default: ours, tuned for val loss (2x512, dropout 0.3, weight decay, warm-up, cosine decay, clipping). "
                   "lab: the lab's recipe exactly (1-layer LSTM, no dropout, B128, T256, AdamW lr 3e-4, 10,000 iters, "
                   "eval every 500 over 200 batches) with n_embd 512: the lab hides its size; 512 is the size this "
                   "project's reference figures were measured with, and a multiple of 128 as cuDNN's fast LSTM "
                   "kernels need. "
                   "quick: a good model of any text in about 90 s on a laptop CPU; sizes adapt to the text and to this machine's measured speed. "
                   "Other options override the preset.  [default: default]")
@_opt("n_embd", click.IntRange(1), "Embedding and hidden size.")
@_opt("n_layers", click.IntRange(1), "Stacked LSTM layers.")
@_opt("dropout", click.FloatRange(0, 1, max_open=True),
     "Locked (variational) dropout on each LSTM layer's output, between layers and before the output layer: "
     "one mask per sequence, the same at every step.")
@_opt("weight_drop", click.FloatRange(0, 1, max_open=True),
     "DropConnect on each layer's recurrent weights W_hh, one mask per batch (AWD-LSTM's weight drop).")
@_opt("embed_drop", click.FloatRange(0, 1, max_open=True),
     "Drop whole embedding rows (characters) for a batch (AWD-LSTM's embedding dropout).")
@_opt("batch_size", click.IntRange(1), "Sequences per step (per rank under torchrun).")
@_opt("block_size", click.IntRange(1), "Characters per sequence (truncated BPTT length).")
@_opt("lr", click.FloatRange(0, min_open=True), "Peak learning rate (AdamW).")
@_opt("min_lr", click.FloatRange(0), "Learning rate at the end of the cosine decay.")
@_opt("warmup_iters", click.IntRange(0), "Linear warm-up steps.")
@_opt("weight_decay", click.FloatRange(0), "AdamW weight decay.")
@_opt("grad_clip", click.FloatRange(0), "Clip the gradient norm to this; 0 = off.")
@_opt("ema", click.FloatRange(0, 1, max_open=True),
     "Keep an exponential moving average of the weights with this decay (0.999 = about the last 1,000 steps); "
     "evaluations and the best checkpoint use it. Helps a model that overfits. 0 = off.")
@_opt("max_iters", click.IntRange(1), "Training steps.")
@_opt("eval_interval", click.IntRange(1), "Steps between evaluations (and checkpoints).")
@_opt("eval_iters", click.IntRange(1), "Batches per loss estimate. Val is read whole instead (exact) where "
     "that reads fewer characters, as on Tiny Shakespeare.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default=None, help="[default: auto]")
@click.option("--amp/--no-amp", default=None,
              help="Mixed precision: bf16 on CPUs that have it, fp16 on CUDA; --no-amp for plain fp32.  [default: on]")
@click.option("--resume", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Continue a run from its <out>.last.pt: model, optimizer, step, RNG states, metrics and best val. "
                   "Its recipe is reused; options given here override it.")
@click.option("--init-from", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Start a new run from this checkpoint's weights (fine-tuning: a fresh optimizer, schedule and "
                   "history). Its model size comes along; the text may use only characters it knows.")
@_opt("time_limit", click.FloatRange(0, min_open=True), "Stop after this many minutes; the lr schedule ends with it.")
@_opt("seed", click.IntRange(0, MAX_SEED), "Seed for init, batches and dropout.")
def train(data_arg: str, out: Path | None, preset: str | None, resume: Path | None, init_from: Path | None,
          **options: Any) -> None:
    """Train a model on a text file, headless. Also runs under torchrun for DDP:
    torchrun --nproc-per-node N -m charlstm_tui train ..."""
    from .cli import domain_errors

    main_rank = int(os.environ.get("RANK", "0")) == 0
    with domain_errors():
        if resume is not None and init_from is not None:
            raise click.UsageError("--resume continues a run and --init-from starts a new one; pass one of them")
        config, data, data_path, data_name, resume_ckpt, init_ckpt, out, chosen = _prepare(
            data_arg, out, preset, resume, init_from, options, main_rank)
    from core.machine import keep_freed_memory
    from core.train import last_path, train as run

    keep_freed_memory()  # this process only trains: reuse the step's big buffers instead of faulting them back
    from .train_view import LogLines, RichBar

    view_type = RichBar if main_rank and sys.stdout.isatty() else LogLines
    view = view_type(lab=config.preset == "lab", silent=not main_rank)
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        if received:  # a second Ctrl-C means now
            raise KeyboardInterrupt
        received.append(signum)
        stop.set()  # the trainer finishes its step, saves and returns

    previous = {sig: signal.signal(sig, on_signal) for sig in EXIT_CODES}
    events = run(config, data, out, resume=resume_ckpt, stop=stop, data_name=data_name,
                 inputs=[("--data", data_path)], init=init_ckpt)
    try:
        with domain_errors():
            # The outputs, sizes and resume are checked before the "start" event: a run
            # that cannot start says so in one line, with no header or bar printed first.
            first = next(events)
        with domain_errors(), view:
            if chosen and main_rank:
                view.echo(chosen)
            view.start(config, data, data_name)
            for event in itertools.chain([first], events):
                view.show(event)
    finally:
        events.close()  # however this ends (a failed write to stdout too), the run lets go of its outputs
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received and main_rank:
        last = last_path(out)
        click.echo(f"Interrupted: best checkpoint {out}, latest state {last}.\n"
                   f"Resume with: {_resume_command(data_arg, out, last)}", err=True)
    if received:
        sys.exit(EXIT_CODES[received[0]])


def _prepare(data_arg: str, out: Path | None, preset: str | None, resume: Path | None, init_from: Path | None,
             options: dict[str, Any], main_rank: bool) -> tuple[Any, Any, Path, str, Any, Any, Path, str]:
    """Options -> (TrainConfig, TextData, data file, data name, resume Checkpoint or None, init Checkpoint or
    None, out, what the quick preset chose or ''), or a clear error."""
    from core.checkpoint import load_checkpoint
    from core.data import TextData, load_text
    from core.errors import CheckpointError, ConfigError, VocabError
    from core.vocab import describe_chars
    from core.train import TrainConfig, preset as preset_config, with_overrides


    resume_ckpt = load_checkpoint(resume) if resume is not None else None
    if resume_ckpt is not None and resume_ckpt.train.get("config"):
        try:
            base = TrainConfig.from_dict(resume_ckpt.train["config"])  # the run's own recipe, then explicit overrides
        except ConfigError as e:
            raise CheckpointError(f"checkpoint {resume} is malformed: {e}; it is corrupt or was not written by "
                                  "charlstm-tui, use another file") from None
        if preset is not None and preset != base.preset:
            raise click.UsageError(f"--preset {preset} differs from the resumed run's preset {base.preset}; drop --preset")
    else:
        base = preset_config(preset or "default")
    init_ckpt = load_checkpoint(init_from) if init_from is not None else None
    if init_ckpt is not None:  # the model's shape comes with its weights
        shape = init_ckpt.model_config
        base = with_overrides(base, n_embd=shape.n_embd, n_layers=shape.n_layers)
    config = with_overrides(base, **{k: options[k] for k in CONFIG_OPTIONS})
    chosen = ""
    path, data_name = data_source(data_arg, announce=main_rank)
    text = load_text(path)
    if config.preset == "quick" and resume_ckpt is None and init_ckpt is None:
        from core.quick import plan_quick

        config, chosen = plan_quick(config.validate(), len(text), len(set(text)),
                                    explicit={k for k, v in options.items() if v is not None})
    config = config.validate()
    source = resume_ckpt or init_ckpt
    try:
        data = TextData.from_text(text, vocab=source.vocab if source else None)
    except VocabError as e:
        option, fix = (("--resume", "resume with the text it was trained on") if resume_ckpt else
                       ("--init-from", "start from a model of text like this one"))
        raise VocabError(f"{option} {resume or init_from}: the checkpoint's vocabulary lacks {len(e.unknown)} "
                         f"character(s) of {path} ({describe_chars(e.unknown)}); {fix}, or train afresh without "
                         f"{option}", e.unknown) from None
    if out is None:
        out = resume.with_name(resume.name.replace(".last.pt", ".pt")) if resume else Path(f"{data_name}.pt")
    return config, data, path, data_name, resume_ckpt, init_ckpt, out, chosen


def _resume_command(data_arg: str, out: Path, last: Path) -> str:
    """The command that continues this run, as the user would type it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    head = ["torchrun", f"--nproc-per-node={world}", "-m", "charlstm_tui"] if world > 1 else ["charlstm-tui"]
    return shlex.join([*head, "train", "--data", data_arg, "--out", str(out), "--resume", str(last)])
