"""``charlstm-tui score FILE``: how surprised the model is by a text."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .cli import checkpoint_option


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@checkpoint_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON with the totals and every character's surprise.")
@click.option("--drop-unknown", is_flag=True, help="Drop characters the model does not know instead of failing.")
def score(file: Path, checkpoint: Path | None, as_json: bool, drop_unknown: bool) -> None:
    """Score a text: nats/char, bits/char and perplexity (per character with --json)."""
    from core.data import load_text
    from core.vocab import describe_chars

    from .cli import domain_errors, load

    with domain_errors():
        text = load_text(file, min_chars=1)  # cheap checks before the model loads
    ckpt = load(checkpoint)
    from core.score import score_text

    with domain_errors():
        if drop_unknown:
            ids, dropped = ckpt.vocab.encode_lenient(text)
            if dropped:
                click.echo(f"note: dropped characters not in the vocabulary: {describe_chars(dropped)}", err=True)
            text = ckpt.vocab.decode(ids)
            if not text:
                raise click.ClickException(f"{file} has no characters the model knows")
        result = score_text(ckpt.build_model(), ckpt.vocab, text)
    if as_json:
        click.echo(json.dumps({
            "chars": len(result.text), "nats_per_char": result.loss, "bits_per_char": result.bits_per_char,
            "perplexity": result.perplexity,
            "per_char": [{"char": ch, "surprise_nats": round(s, 6)} for ch, s in zip(result.text, result.surprise)],
        }, ensure_ascii=False))
    else:
        click.echo(f"{file}: {result.loss:.4f} nats/char, {result.bits_per_char:.4f} bits/char, "
                   f"perplexity {result.perplexity:.3f} ({len(result.text):,} chars)")
