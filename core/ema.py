"""An exponential moving average of a model's weights (Polyak averaging).

Why: an overfitting LSTM's raw weights wander around a minimum with every noisy step;
their running average sits nearer its centre and generalises better, at no cost in
training speed (a handful of in-place lerps per step). The trainer evaluates and saves
the average, and keeps the raw weights for the next step and for an exact resume.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


class WeightAverage:
    """``shadow = decay * shadow + (1 - decay) * weights`` after every optimizer step."""

    def __init__(self, model: torch.nn.Module, decay: float, shadow: dict[str, torch.Tensor] | None = None) -> None:
        self.decay = decay
        params = dict(model.named_parameters())
        if shadow is None or shadow.keys() != params.keys():  # a fresh start: the average begins at the weights
            shadow = {name: p.detach() for name, p in params.items()}
        # fp32 whatever the weights are: a 0.999 decay adds 1/1000 of a step, below bf16's resolution
        self.shadow = {name: t.detach().to(params[name].device, torch.float32, copy=True) for name, t in shadow.items()}
        self._pairs = [(self.shadow[name], p) for name, p in params.items()]

    @torch.no_grad()
    def update(self) -> None:
        for avg, p in self._pairs:
            avg.lerp_(p.detach().float(), 1.0 - self.decay)

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The model holds the average inside the block and its own weights again after it."""
        with torch.no_grad():
            saved = [p.detach().clone() for _, p in self._pairs]
            for avg, p in self._pairs:
                p.copy_(avg)
        try:
            yield
        finally:
            with torch.no_grad():
                for (_, p), raw in zip(self._pairs, saved):
                    p.copy_(raw)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: t.detach().cpu().clone() for name, t in self.shadow.items()}
