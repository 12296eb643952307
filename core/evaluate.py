"""Loss estimates: the trainer's random-window estimate and a full pass over a split."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch.nn import functional as F

from .data import TextData
from .errors import DataError
from .model import LMNet, State

LN2 = math.log(2)


@dataclass(frozen=True)
class LossReport:
    """A loss in nats/char with its derived forms."""

    loss: float  # nats/char
    chars: int

    @property
    def bits_per_char(self) -> float:
        return self.loss / LN2

    @property
    def perplexity(self) -> float:
        return math.exp(self.loss) if self.loss < 709 else math.inf  # exp overflows a float past ~709.78


@torch.no_grad()
def estimate_loss(
    model: torch.nn.Module, data: TextData, split: str, iters: int, batch_size: int, block_size: int,
    generator: torch.Generator, device: torch.device, amp_dtype: torch.dtype | None = None,
) -> float:
    """Mean loss over ``iters`` fresh random (B, T) batches, as nanoGPT estimates it."""
    was_training = model.training
    model.eval()
    total = 0.0
    for _ in range(iters):
        x, y = data.sample_batch(split, batch_size, block_size, generator, device)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            total += _net(model).loss(x, y).item()
    model.train(was_training)
    return total / iters


CONTEXTS = ("window", "stream")
STREAMS = 8  # contiguous streams of ``stream`` context, read side by side


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: TextData, split: str, block_size: int, batch_size: int = 64,
             context: str = "window", progress: Callable[[int, int], None] | None = None) -> LossReport:
    """Exact loss over every character of a split, each predicted from the ones before it.

    ``window``: consecutive ``block_size`` windows that each start from a zero state: the
    quantity the trainer's random-window estimate samples (so the two agree up to sampling
    noise), and nanoGPT's measure. ``stream``: the split read as a few long streams, the
    state carried from chunk to chunk, so a character sees all the text before it, as the
    app's stateful generation reads text; an RNN's usual measure, and lower. The model is
    left in the mode it came in (the trainer evaluates mid-run). ``progress(done, total)``
    is called with the characters read so far, after each forward pass.
    """
    net = _net(model)
    was_training = net.training
    try:
        return _exact_loss(net.eval(), data, split, block_size, batch_size, context, progress)
    finally:
        net.train(was_training)


def _exact_loss(model: LMNet, data: TextData, split: str, block_size: int, batch_size: int,
                context: str, progress: Callable[[int, int], None] | None) -> LossReport:
    ids = data.split(split).long() if split != "all" else torch.cat([data.train, data.val]).long()
    if len(ids) < 2:
        raise DataError(f"the {split} split has {len(ids)} character(s), too few to evaluate; "
                        "use a longer text or --split all")
    if context not in CONTEXTS:
        raise ValueError(f"context must be one of {CONTEXTS}, got {context!r}")
    nll, count = 0.0, 0

    def add(x: torch.Tensor, y: torch.Tensor, state: State | None = None) -> State:  # x, y: (N, T)
        nonlocal nll, count
        logits, state = model(x, state)
        nll += F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1), reduction="sum").item()
        count += y.numel()
        if progress is not None:
            progress(count, len(ids) - 1)
        return state

    if context == "stream":
        streams = max(1, min(STREAMS, (len(ids) - 1) // block_size))
        n = (len(ids) - 1) // streams
        x, y = ids[: streams * n].view(streams, n), ids[1: streams * n + 1].view(streams, n)  # row i: chars [i*n, (i+1)*n)
        state = None
        for t in range(0, n, block_size):
            state = add(x[:, t: t + block_size], y[:, t: t + block_size], state)
        if streams * n < len(ids) - 1:  # the last few characters continue the last stream
            add(ids[streams * n: -1].unsqueeze(0), ids[streams * n + 1:].unsqueeze(0),
                (state[0][:, -1:].contiguous(), state[1][:, -1:].contiguous()))
        return LossReport(nll / count, count)

    n_full = (len(ids) - 1) // block_size

    x = ids[: n_full * block_size].view(n_full, block_size)
    y = ids[1: n_full * block_size + 1].view(n_full, block_size)
    for i in range(0, n_full, batch_size):
        add(x[i: i + batch_size], y[i: i + batch_size])
    if n_full * block_size < len(ids) - 1:
        add(ids[n_full * block_size: -1].unsqueeze(0), ids[n_full * block_size + 1:].unsqueeze(0))
    return LossReport(nll / count, count)


def _net(model: torch.nn.Module) -> LMNet:
    # DDP wraps the model; its .module has .loss. Calling loss via the wrapper would skip
    # DDP's gradient hooks, which is what we want in evaluation only.
    return getattr(model, "module", model)
