"""``--preset quick``: a good model of any text within about a minute and a half of CPU.

Anchor (2 cores, Tiny Shakespeare): a 1x256 LSTM with bf16, batch 32, block 128,
lr 3e-3 -> 3e-4 (cosine, 50 warm-up, clip 1) reached val 1.69 in 40 s. The run is
bounded by ``time_limit``, so the cosine schedule ends with the clock; the model and
block sizes shrink for small texts, where a big model only memorises.
"""

from __future__ import annotations

from dataclasses import replace

from .train import TrainConfig

# The clock, not max_iters, ends the run: 84 s of training leaves the whole command,
# start-up and the final evaluation included, inside 100 s. Evaluations are small and
# rare (10 batches every 250 steps, ~3% of the time): every second goes to training.
QUICK = TrainConfig(
    preset="quick", n_embd=256, n_layers=1, dropout=0.0, batch_size=32, block_size=128,
    lr=3e-3, min_lr=3e-4, warmup_iters=50, weight_decay=0.01, grad_clip=1.0,
    max_iters=100_000, eval_interval=250, eval_iters=10, time_limit=1.4,
)


def quick_sizes(n_chars: int) -> tuple[int, int, float]:
    """(n_embd, block_size, dropout) for a corpus of ``n_chars`` characters."""
    if n_chars < 20_000:  # a poem, a page: small model, short context, regularised
        return 64, 32, 0.1
    if n_chars < 200_000:  # a diary, an album of lyrics
        return 128, 64, 0.1
    # Tiny Shakespeare and up: in a minute and a half a 1x256 model sees well under
    # one epoch of a 1 MB text, so it neither overfits nor gains from more width.
    return 256, 128, 0.0


def adapt_quick(config: TrainConfig, n_chars: int, explicit: set[str] = frozenset()) -> tuple[TrainConfig, str]:
    """Fit ``config``'s model and block size to a corpus of ``n_chars`` characters.

    Options named in ``explicit`` (the ones the user set) win. Returns the config and a
    sentence saying what was chosen.
    """
    n_embd, block, dropout = quick_sizes(n_chars)
    # The val split is a tenth of the text and must hold a block plus one character.
    block = max(1, min(block, n_chars // 10 - 2))
    chosen = {"n_embd": n_embd, "block_size": block, "dropout": dropout}
    config = replace(config, **{k: v for k, v in chosen.items() if k not in explicit})
    limit = f", {config.time_limit:g} min" if config.time_limit else ""
    return config, (f"quick preset for {n_chars:,} chars: {config.n_layers}x{config.n_embd} LSTM, "
                    f"block {config.block_size}, dropout {config.dropout:g}{limit}")
