"""``--adapt`` for ``eval`` and ``score``: a text scored statically and adapting as it is read.

One :class:`core.adapt.Adapter` read gives both, by the same arithmetic, so the two figures
differ only by what adapting learned (with ``--adapt-step 0`` they are equal to the last bit).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable

import click


def adapt_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--adapt`` and its settings; the settings' defaults are core.adapt.AdaptConfig's."""
    for option in reversed([
        click.option("--adapt", is_flag=True,
                     help="Also read the text adapting as it reads (dynamic evaluation: each segment is scored, "
                          "then learned from) and print both figures."),
        click.option("--adapt-segment", type=click.IntRange(1, 10_000), default=None,
                     help="Characters per adaptation step.  [default: 25]"),
        click.option("--adapt-step", type=click.FloatRange(0, 1), default=None,
                     help="Step size: about how far each weight moves per step; 0 learns nothing.  [default: 0.00014]"),
        click.option("--adapt-decay", type=click.FloatRange(0, 1), default=None,
                     help="Pull back toward the trained weights per step; 0 never forgets.  [default: 0.001]"),
    ]):
        f = option(f)
    return f


def adapt_config(adapt: bool, segment: int | None, step: float | None, decay: float | None):  # -> AdaptConfig | None
    """The settings given, or None without --adapt (settings without it are a usage error)."""
    given = {k: v for k, v in (("segment", segment), ("step", step), ("decay", decay)) if v is not None}
    if not adapt:
        if given:
            raise click.UsageError(f"--adapt-{next(iter(given))} needs --adapt")
        return None
    from core.adapt import AdaptConfig

    from .cli import domain_errors

    with domain_errors():
        return AdaptConfig(**given)


def read_both(ckpt: Any, checkpoint_path: Path, text: str, config: Any) -> tuple[Any, Any]:
    """``text`` read once from the '\\n' start, adapting as it is read and scored by the trained
    weights alongside: (static, adapted), two core.score.TextScore."""
    import torch

    from core.adapt import Adapter
    from core.adapt_stats import stats_for
    from core.score import TextScore

    from .cli import domain_errors

    # One thread: a time step is a few small ops that do not split well, and on a machine
    # shared with other work a second thread made adapting 9x slower (bench/adapt.py).
    torch.set_num_threads(1)
    with domain_errors():
        ids = ckpt.vocab.encode(text)
        model = ckpt.build_model()
        stats = stats_for(model, ckpt, checkpoint_path, ids, note=_note)
        adapter = Adapter(model, stats, config, start_id=ckpt.vocab.newline_id, compare=True)
    tty = sys.stderr.isatty()
    reading = adapter.read(ids, progress=_progress("adapting") if tty else None)
    if tty:
        click.echo("\r\033[K", nl=False, err=True)
    return TextScore.of(text, reading.static), TextScore.of(text, reading.surprise)


def _note(message: str) -> None:
    click.echo(message, err=True)


def _progress(what: str) -> Callable[[int, int], None]:
    """A progress line on stderr, redrawn at most 5 times a second."""
    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.2 or done == total:
            last[0] = now
            click.echo(f"\r{what}: {done:,} / {total:,} chars", nl=False, err=True)
    return show
