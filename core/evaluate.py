"""Loss estimates: the trainer's random-window estimate and a full pass over a split."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .data import TextData
from .model import LMNet

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
        return math.exp(self.loss)


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


@torch.no_grad()
def evaluate(model: LMNet, data: TextData, split: str, block_size: int, batch_size: int = 64) -> LossReport:
    """Exact loss over every character of a split, read in consecutive ``block_size``
    windows that each start from a zero state: the quantity the trainer's random-window
    estimate samples, so the two agree up to sampling noise."""
    model.eval()
    ids = data.split(split).long() if split != "all" else torch.cat([data.train, data.val]).long()
    n_windows = (len(ids) - 1) // block_size
    if n_windows == 0:
        block_size, n_windows = len(ids) - 1, 1
    x = ids[: n_windows * block_size].view(n_windows, block_size)
    y = ids[1: n_windows * block_size + 1].view(n_windows, block_size)
    nll, count = 0.0, 0
    for i in range(0, n_windows, batch_size):
        logits, _ = model(x[i: i + batch_size])
        nll += torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)).float(), y[i: i + batch_size].reshape(-1), reduction="sum"
        ).item()
        count += y[i: i + batch_size].numel()
    return LossReport(nll / count, count)


def _net(model: torch.nn.Module) -> LMNet:
    # DDP wraps the model; its .module has .loss. Calling loss via the wrapper would skip
    # DDP's gradient hooks, which is what we want in evaluation only.
    return getattr(model, "module", model)
