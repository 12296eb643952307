"""``--preset quick``: a good model of any text within about a minute and a half of CPU.

The clock, not max_iters, ends the run, and the cosine schedule ends with the clock.
Tuned on Tiny Shakespeare at equal steps (1x256, T128, 1 thread, exact val loss after
~2M tokens): batch 32 at lr 3e-3 (the starting anchor) 1.732, lr 5e-3 1.677, lr 1e-2
1.628; batch 16 at lr 1e-2 for twice the steps 1.591 in about the same time; batch 64
1.716; width 192 1.620. Small batches and a high lr win when CPU time is what's scarce.
The model and block sizes shrink for small texts, where a big model only memorises.
"""

from __future__ import annotations

from dataclasses import replace

from .train import TrainConfig

# 84 s of training leaves the whole command, start-up and the final evaluation included,
# inside 100 s. Evaluations are rare (every 500 steps): with the lr annealed by the end,
# the last evaluation nearly always holds the best model.
QUICK = TrainConfig(
    preset="quick", n_embd=256, n_layers=1, dropout=0.0, batch_size=16, block_size=128,
    lr=1e-2, min_lr=5e-4, warmup_iters=100, weight_decay=0.01, grad_clip=1.0,
    max_iters=100_000, eval_interval=500, eval_iters=20, time_limit=1.4,
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
