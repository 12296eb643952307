"""``charlstm-tui score FILE``: how surprised the model is by a text."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .adapt_cli import adapt_config, adapt_options, read_both
from .cli import checkpoint_option, drop_unknown_option


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@checkpoint_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON with the totals and every character's surprise.")
@drop_unknown_option
@adapt_options
def score(file: Path, checkpoint: Path | None, as_json: bool, drop_unknown: bool, adapt: bool,
          adapt_segment: int | None, adapt_step: float | None, adapt_decay: float | None) -> None:
    """Score a text: nats/char, bits/char and perplexity (per character with --json).
    With --adapt, also as the model adapts to it while reading (both surprises with --json)."""
    from core.data import load_text

    from .cli import domain_errors, known_text, load, resolve_checkpoint

    config = adapt_config(adapt, adapt_segment, adapt_step, adapt_decay)
    with domain_errors():
        text = load_text(file, min_chars=1, what="text file")  # cheap checks before the model loads
    ckpt = load(checkpoint)
    from core.score import score_text

    text = known_text(ckpt.vocab, text, drop_unknown, str(file))
    if config is not None:
        result, adapted = read_both(ckpt, resolve_checkpoint(checkpoint), text, config)
    else:
        with domain_errors():
            result, adapted = score_text(ckpt.build_model(), ckpt.vocab, text), None
    if as_json:
        out = {"chars": len(result.text), **_totals(result)}
        per_char = [{"char": ch, "surprise_nats": round(s, 6)} for ch, s in zip(result.text, result.surprise)]
        if adapted is not None:
            out["adapted"] = {**_totals(adapted), "segment": config.segment, "step": config.step, "decay": config.decay}
            for entry, s in zip(per_char, adapted.surprise):
                entry["adapted_surprise_nats"] = round(s, 6)
        click.echo(json.dumps({**out, "per_char": per_char}, ensure_ascii=False))
        return
    click.echo(f"{file}: {_line(result)} ({len(result.text):,} chars{', state carried' if adapted else ''})")
    if adapted is not None:
        click.echo(f"{file}: {_line(adapted)} ({len(adapted.text):,} chars, adapted as read: segments of "
                   f"{config.segment}, step {config.step:g}, decay {config.decay:g})")


def _totals(result) -> dict[str, float]:  # a core.score.TextScore
    return {"nats_per_char": result.loss, "bits_per_char": result.bits_per_char, "perplexity": result.perplexity}


def _line(result) -> str:
    return f"{result.loss:.4f} nats/char, {result.bits_per_char:.4f} bits/char, perplexity {result.perplexity:.3f}"
