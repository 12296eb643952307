"""LMNet: the lab's Embedding -> LSTM -> Linear, with the recurrent state exposed."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch.nn import functional as F

from core.errors import ConfigError
from core.model import LMNet, ModelConfig


def make(vocab_size=65, n_embd=32, n_layers=1, dropout=0.0, seed=0) -> LMNet:
    torch.manual_seed(seed)
    return LMNet(ModelConfig(vocab_size, n_embd, n_layers, dropout))


@pytest.mark.parametrize("n_layers", [1, 2])
def test_shapes(n_layers):
    model = make(n_layers=n_layers)
    logits, (h, c) = model(torch.randint(0, 65, (3, 7)))
    assert logits.shape == (3, 7, 65)
    assert h.shape == c.shape == (n_layers, 3, 32)


def test_the_labs_layers_and_parameter_names():
    model = make(n_layers=2)
    assert isinstance(model.token_embedding, torch.nn.Embedding)
    assert isinstance(model.lstm, torch.nn.LSTM) and model.lstm.batch_first
    assert isinstance(model.fc, torch.nn.Linear)
    names = set(model.state_dict())
    assert {"token_embedding.weight", "lstm.weight_ih_l0", "lstm.weight_hh_l1", "fc.weight", "fc.bias"} <= names
    assert model.num_params() == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_initial_loss_is_about_ln_vocab(seed):
    model = make(seed=seed)
    x = torch.randint(0, 65, (8, 32), generator=torch.Generator().manual_seed(seed))
    y = torch.randint(0, 65, (8, 32), generator=torch.Generator().manual_seed(seed + 100))
    assert abs(model.loss(x, y).item() - math.log(65)) < 0.15


def test_loss_is_mean_cross_entropy():
    model = make()
    x, y = torch.randint(0, 65, (2, 5)), torch.randint(0, 65, (2, 5))
    logits, _ = model(x)
    log_probs = logits.log_softmax(-1)
    manual = -log_probs.gather(-1, y.unsqueeze(-1)).mean()
    assert torch.allclose(model.loss(x, y), manual, atol=1e-6)


@pytest.mark.parametrize("n_layers", [1, 2])
def test_carried_state_continues_the_sequence(n_layers):
    """forward(a) then forward(b, state) == forward(a + b): generation need not re-read context."""
    model = make(n_layers=n_layers).eval()
    x = torch.randint(0, 65, (2, 12))
    with torch.no_grad():
        full, (h, c) = model(x)
        first, state = model(x[:, :5])
        rest, (h2, c2) = model(x[:, 5:], state)
    assert torch.allclose(torch.cat([first, rest], 1), full, atol=1e-6)
    assert torch.allclose(h2, h, atol=1e-6) and torch.allclose(c2, c, atol=1e-6)
    # And the state matters: a zero state gives other logits for the same chars.
    with torch.no_grad():
        cold, _ = model(x[:, 5:])
    assert not torch.allclose(cold, rest, atol=1e-3)


def test_dropout_is_active_only_in_training():
    x = torch.randint(0, 65, (2, 10))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nn.LSTM warns on inter-layer dropout with 1 layer
        model = make(dropout=0.5)
    assert model.lstm.dropout == 0.0  # the model draws its own masks (tests/core/test_table_lstm.py)
    model.train()
    assert not torch.equal(model(x)[0], model(x)[0])
    model.eval()
    assert torch.equal(model(x)[0], model(x)[0])


def test_config_validation_and_round_trip():
    config = ModelConfig(65, 64, 2, 0.2)
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert ModelConfig.from_dict({"vocab_size": 10}) == ModelConfig(10)  # defaults fill the rest
    for bad in ({"vocab_size": 0}, {"vocab_size": 5, "n_embd": 0}, {"vocab_size": 5, "n_layers": 0},
                {"vocab_size": 5, "dropout": 1.0}, {"vocab_size": 5, "dropout": -0.1}):
        with pytest.raises(ConfigError):
            ModelConfig(**bad)


def test_logits_give_a_distribution():
    model = make()
    logits, _ = model(torch.randint(0, 65, (1, 3)))
    probs = F.softmax(logits, -1)
    assert torch.allclose(probs.sum(-1), torch.ones(1, 3))
