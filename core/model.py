"""The lab's network: Embedding -> LSTM -> Linear, with the recurrent state exposed.

Parameter names (``token_embedding``, ``lstm``, ``fc``) are the lab's, so a lab
state_dict loads as-is. Regularisation is AWD-LSTM's (Merity et al., 2017), chosen so
that every mask is fixed for a whole batch or sequence and the recurrence stays fast:

- ``embed_drop``: whole embedding rows (characters) dropped for a batch;
- ``weight_drop``: DropConnect on each layer's W_hh, one mask per batch;
- ``dropout``: locked (variational) dropout on each layer's output, between layers and
  before the output layer, one mask per sequence shared by every time step.

All three are off in eval mode, where the network is the plain lab network.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .errors import ConfigError
from .schema import dataclass_kwargs
from .table_lstm import Masks, State, table_lstm

RATES = ("dropout", "weight_drop", "embed_drop")


@dataclass(frozen=True)
class ModelConfig:
    """Shape of an :class:`LMNet` and its training-time dropout rates. ``n_embd`` is both
    the embedding and the hidden size."""

    vocab_size: int
    n_embd: int = 512
    n_layers: int = 1
    dropout: float = 0.0
    weight_drop: float = 0.0
    embed_drop: float = 0.0

    def __post_init__(self) -> None:
        if self.vocab_size < 1 or self.n_embd < 1 or self.n_layers < 1:
            raise ConfigError(f"model sizes must be positive, got {self}")
        for name in RATES:
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(self, name)}")

    @property
    def regularised(self) -> bool:
        return any(getattr(self, name) > 0 for name in RATES)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        """From a checkpoint's ``model_config``; a field of the wrong type raises
        :class:`core.schema.SchemaError` naming it, unknown fields are left out."""
        return cls(**dataclass_kwargs(cls, d, "model_config"))


class LMNet(nn.Module):
    """Character LM. ``forward(idx, state) -> (logits, state)``.

    ``table_lstm`` (off by default) trains on :func:`core.table_lstm.table_lstm` on the
    CPU from a zero state: the same function, often faster. The trainer turns it on only
    where a measured probe shows it faster on this machine.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.token_embedding = nn.Embedding(c.vocab_size, c.n_embd)
        self.lstm = nn.LSTM(c.n_embd, c.n_embd, num_layers=c.n_layers, batch_first=True)
        self.fc = nn.Linear(c.n_embd, c.vocab_size)
        self.table_lstm = False

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        masks = self.draw_masks(idx.size(0)) if self.training and self.config.regularised else None
        if self.training and self.table_lstm and state is None and idx.device.type == "cpu":
            x, state = table_lstm(idx, self.token_embedding.weight, self.lstm, masks)  # (B, T, C)
            return self.fc(x), state
        if masks is None:
            x, state = self.lstm(self.token_embedding(idx), state)  # (B, T, C); state: 2 x (L, B, C)
            return self.fc(x), state
        x, state = masked_lstm(idx, self.token_embedding.weight, self.lstm, masks, state)
        return self.fc(x), state  # (B, T, V)

    def draw_masks(self, batch: int) -> Masks:
        """This batch's dropout masks, from the global RNG, scaled by 1 / (1 - p)."""
        c, H = self.config, self.config.n_embd
        device = self.token_embedding.weight.device

        def keep(p: float, *shape: int) -> torch.Tensor | None:
            if p == 0:
                return None
            return torch.empty(shape, device=device).bernoulli_(1 - p).div_(1 - p)

        return Masks(
            embed=keep(c.embed_drop, c.vocab_size, 1),
            weight=[keep(c.weight_drop, 4 * H, H) for _ in range(c.n_layers)],
            locked=[keep(c.dropout, batch, H) for _ in range(c.n_layers)],
        )

    def loss(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy in nats/char over a (B, T) batch."""
        logits, _ = self(idx)
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1))


def masked_lstm(idx: torch.Tensor, embedding: torch.Tensor, lstm: nn.LSTM, masks: Masks,
                state: State | None = None) -> tuple[torch.Tensor, State]:
    """``lstm`` over ``embedding[idx]`` with ``masks`` applied, one layer at a time through
    torch's own LSTM kernel (oneDNN on the CPU, cuDNN on CUDA): the masks sit between layers
    and inside W_hh, where a multi-layer call cannot take them. Returns like nn.LSTM."""
    B, L = idx.size(0), lstm.num_layers
    weight = embedding if masks.embed is None else embedding * masks.embed  # (V, C)
    x = F.embedding(idx, weight)  # (B, T, C)
    if state is None:
        zero = x.new_zeros(L, B, lstm.hidden_size)
        state = (zero, zero)
    hs, cs = [], []
    for layer in range(L):
        w_ih, w_hh, b_ih, b_hh = (getattr(lstm, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        if masks.weight[layer] is not None:
            w_hh = w_hh * masks.weight[layer]
        hx = (state[0][layer: layer + 1], state[1][layer: layer + 1])
        x, h, c = torch._VF.lstm(x, hx, [w_ih, w_hh, b_ih, b_hh], True, 1, 0.0, True, False, True)
        if masks.locked[layer] is not None:
            x = x * masks.locked[layer].unsqueeze(1)  # (B, 1, C): the same mask at every step
        hs.append(h)
        cs.append(c)
    return x, (torch.cat(hs), torch.cat(cs))
