"""``--preset quick``: a good model of any text within about a minute and a half of CPU.

The clock, not max_iters, ends the run, and the cosine schedule ends with the clock.
What a run learns in that time depends on how fast the machine trains, so for a text
large enough to feed any of them, :func:`plan_quick` times a training step of each
candidate width on this machine (a second or so, taken out of the budget) and picks the
widest that still sees enough characters per parameter. On Tiny Shakespeare, 1 thread,
84 s, exact val: fp32 1x192 1.549 (3.5M tokens, 11 a parameter) beat 1x256 1.602 (2M, 3.6);
bf16 1x192 1.540 (17) and 1x256 1.545 (6.6) beat 1x384 1.555 (2.3) and 1x512 1.567.
Batch 8 x block 256 beat 16 x 128 (1.555 to 1.575 at 1x192), 16 x 256 (1.579) and 32 x 64;
lr 1e-2 beat 2e-2 and 5e-3. On 2 threads, 93 s, fp32, 1x256 picked each time: weight decay 0.1
scored 1.460 and 1.461 (min lr 1e-4) against 1.482 at 0.05, 1.472 at 0.2, 1.477 at 0.3 and 1.500-1.504 at
0.01; on a 46 KB and a 10 KB text 0.1 moved val by +0.008 and -0.014, so they keep 0.01.

Small texts get small models, weight drop, and at most 25 passes over the text, after which
a model only memorises it: on a 46 KB text (1x128, 84 s budget, exact val) 10,742 steps
scored 1.832 against 1.766 for 1,000 (25 passes, 7 s) and 1.729 with weight drop 0.3
(500 steps 1.789, 2,000 1.734; weight drop 0.5 1.764); on 10 KB, 2.763 against 2.333 (440
steps, weight drop 0.3, 1 s).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

from .train import TrainConfig

# 93 s of training leaves the whole command, start-up and the final evaluation included,
# inside 100 s (96 s on a 2-core EPYC, fp32). Evaluations are rare: with the lr annealed by the end, the last one nearly
# always holds the best model. 55 batches of 8 x 256 cover Tiny Shakespeare's val split,
# so there it is read whole (exact) rather than sampled.
QUICK = TrainConfig(
    preset="quick", n_embd=192, n_layers=1, dropout=0.0, batch_size=8, block_size=256,
    lr=1e-2, min_lr=5e-4, warmup_iters=100, weight_decay=0.01, grad_clip=1.0,
    max_iters=100_000, eval_interval=1000, eval_iters=55, time_limit=1.55,
)
MAX_PASSES = 25  # over the train split: beyond this a small text is memorised, not learned
WIDTHS = (128, 160, 192, 224, 256, 320, 384, 448, 512)  # what the speed probe picks from
TOKENS_PER_PARAM = 8  # the fewest characters a parameter should see in the budget
PROBE_SHARE = 0.05  # the most of the budget the probe may take; it stops at the widest timed by then
LARGE_TEXT = 200_000  # from here on, the machine's speed, not the text, limits the model
LARGE_TEXT_DECAY = 0.1  # AdamW's weight decay there; small texts keep QUICK's (see the docstring)
SHORT_TEXT = 2_000  # below this a model learns little more than the text's letters: say so
SHORT_TEXT_ADVICE = "a few pages or more make one worth sampling"


def quick_sizes(n_chars: int) -> dict[str, float | int]:
    """The recipe's sizes for a corpus of ``n_chars`` characters, before any probe:
    n_embd, block_size, batch_size and the dropout rates."""
    if n_chars < 20_000:  # a poem, a page: small model, short context, regularised
        return {"n_embd": 64, "block_size": 32, "batch_size": 16, "dropout": 0.1, "weight_drop": 0.3}
    if n_chars < LARGE_TEXT:  # a diary, an album of lyrics
        return {"n_embd": 128, "block_size": 64, "batch_size": 16, "dropout": 0.1, "weight_drop": 0.3}
    return {"n_embd": QUICK.n_embd, "block_size": QUICK.block_size, "batch_size": QUICK.batch_size,
            "dropout": 0.0, "weight_drop": 0.0, "weight_decay": LARGE_TEXT_DECAY}


def adapt_quick(config: TrainConfig, n_chars: int, explicit: set[str] = frozenset()) -> tuple[TrainConfig, str]:
    """Fit ``config``'s model, block size, regularisation and length to a corpus of
    ``n_chars`` characters: a small text gets at most :data:`MAX_PASSES` over its train split.

    Options named in ``explicit`` (the ones the user set) win. Returns the config and a
    sentence saying what was chosen.
    """
    chosen = quick_sizes(n_chars)
    # The val split is a tenth of the text and must hold a block plus one character.
    chosen["block_size"] = max(1, min(int(chosen["block_size"]), n_chars // 10 - 2))
    config = replace(config, **{k: v for k, v in chosen.items() if k not in explicit})
    if "max_iters" not in explicit and n_chars < LARGE_TEXT:  # a large text: the clock ends the run first
        n_train = n_chars - n_chars // 10
        passes = math.ceil(MAX_PASSES * n_train / (config.batch_size * config.block_size))
        config = replace(config, max_iters=max(1, min(config.max_iters, passes)))
    return config, _sentence(config, n_chars)


def plan_quick(config: TrainConfig, n_chars: int, vocab_size: int,
               explicit: set[str] = frozenset()) -> tuple[TrainConfig, str]:
    """:func:`adapt_quick`, then, for a large text on the CPU where the user left the width
    to us, the width this machine trains best in the budget: the widest of :data:`WIDTHS`
    whose measured speed feeds each parameter :data:`TOKENS_PER_PARAM` characters. The
    probe's time comes out of the time limit."""
    import torch

    from .machine import choose_threads, precision
    from .model import LMNet
    from .train import resolve_device

    config, sentence = adapt_quick(config, n_chars, explicit)
    device = resolve_device(config.device)
    if n_chars < LARGE_TEXT or "n_embd" in explicit or device.type != "cpu" or not config.time_limit:
        return config, sentence
    start = time.perf_counter()
    amp_dtype, _ = precision(device, config.amp)
    budget = config.time_limit * 60
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):  # time the widths on the threads the run will take
        torch.set_num_threads(choose_threads(LMNet(config.model_config(vocab_size)), config.batch_size,
                                             config.block_size, device, amp_dtype)[0])
    try:
        chosen, speed = _widest(config, vocab_size, amp_dtype, budget, start)
    finally:
        torch.set_num_threads(threads)
    probe = time.perf_counter() - start
    config = replace(config, n_embd=chosen, time_limit=max(config.time_limit - probe / 60, config.time_limit / 2))
    return config, (_sentence(config, n_chars) + f"; 1x{chosen} is the widest this machine feeds "
                    f"{TOKENS_PER_PARAM} chars a parameter in the budget ({speed / 1000:,.0f}k chars/s "
                    f"in a {probe:.1f} s probe)")


def _widest(config: TrainConfig, vocab_size: int, amp_dtype: "torch.dtype | None", budget: float,
            start: float) -> tuple[int, float]:
    """(width, chars/s): the widest of :data:`WIDTHS` that the budget feeds enough, each timed."""
    import torch

    from .machine import time_paths
    from .model import LMNet

    chosen, speed = WIDTHS[0], 0.0
    for width in WIDTHS:
        with torch.random.fork_rng(devices=[]):
            model = LMNet(replace(config, n_embd=width).model_config(vocab_size))
        seconds = min(time_paths(model, config.batch_size, config.block_size, amp_dtype, runs=2).values())
        tokens_per_s = config.batch_size * min(config.block_size, 64) / seconds
        if width > WIDTHS[0] and tokens_per_s * budget < TOKENS_PER_PARAM * model.num_params():
            break
        chosen, speed = width, tokens_per_s
        if time.perf_counter() - start > PROBE_SHARE * budget:
            break
    return chosen, speed


def _sentence(config: TrainConfig, n_chars: int) -> str:
    limit = f", {config.time_limit:.3g} min" if config.time_limit else ""
    drop = f", weight drop {config.weight_drop:g}" if config.weight_drop else ""
    steps = f", at most {config.max_iters:,} steps" if config.max_iters < QUICK.max_iters else ""
    short = f"; a text this short teaches a model little: {SHORT_TEXT_ADVICE}" if n_chars < SHORT_TEXT else ""
    return (f"quick preset for {n_chars:,} chars: {config.n_layers}x{config.n_embd} LSTM, "
            f"batch {config.batch_size} x block {config.block_size}, dropout {config.dropout:g}{drop}{limit}{steps}"
            f"{short}")
