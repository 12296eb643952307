"""The lab's network: Embedding -> LSTM -> Linear, with the recurrent state exposed.

Parameter names (``token_embedding``, ``lstm``, ``fc``) are the lab's, so a lab
state_dict loads as-is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from .errors import ConfigError
from .schema import dataclass_kwargs
from .table_lstm import State, table_lstm, table_lstm_pays

@dataclass(frozen=True)
class ModelConfig:
    """Shape of an :class:`LMNet`. ``n_embd`` is both the embedding and the hidden size."""

    vocab_size: int
    n_embd: int = 512
    n_layers: int = 1
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.vocab_size < 1 or self.n_embd < 1 or self.n_layers < 1:
            raise ConfigError(f"model sizes must be positive, got {self}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        """From a checkpoint's ``model_config``; a field of the wrong type raises
        :class:`core.schema.SchemaError` naming it, unknown fields are left out."""
        return cls(**dataclass_kwargs(cls, d, "model_config"))


class LMNet(nn.Module):
    """Character LM. ``forward(idx, state) -> (logits, state)``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.token_embedding = nn.Embedding(c.vocab_size, c.n_embd)
        # Dropout between stacked layers lives inside nn.LSTM; the same rate is also
        # applied to the embedding and before the output layer (Zaremba et al., 2014).
        self.lstm = nn.LSTM(
            c.n_embd, c.n_embd, num_layers=c.n_layers, batch_first=True,
            dropout=c.dropout if c.n_layers > 1 else 0.0,
        )
        self.fc = nn.Linear(c.n_embd, c.vocab_size)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        if (self.training and state is None and self.config.dropout == 0 and idx.device.type == "cpu"
                and table_lstm_pays(idx.size(0), self.config.n_embd)):
            # The same function, faster to train on the CPU at this size; see core/table_lstm.py.
            x, state = table_lstm(idx, self.token_embedding.weight, self.lstm)  # (B, T, C)
            return self.fc(x), state
        x = self.token_embedding(idx)  # (B, T, C)
        x = F.dropout(x, self.config.dropout, self.training)
        x, state = self.lstm(x, state)  # (B, T, C); state: 2 x (L, B, C)
        x = F.dropout(x, self.config.dropout, self.training)
        return self.fc(x), state  # (B, T, V)

    def loss(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy in nats/char over a (B, T) batch."""
        logits, _ = self(idx)
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1))
