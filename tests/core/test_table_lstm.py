"""The CPU training LSTM (core/table_lstm.py) against nn.LSTM: same outputs, same gradients."""

from __future__ import annotations

import pytest
import torch

import core.model
from core.model import LMNet, ModelConfig
from core.table_lstm import table_lstm, table_lstm_pays


def make(n_layers: int, dropout: float = 0.0, n_embd: int = 24) -> LMNet:
    torch.manual_seed(0)
    return LMNet(ModelConfig(11, n_embd, n_layers, dropout)).train()


def run(model: LMNet, idx: torch.Tensor, targets: torch.Tensor, table: bool, amp: bool = False):
    """Loss, final state and every parameter's gradient, through nn.LSTM or the table LSTM."""
    model.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        if table:
            out, (h, c) = table_lstm(idx, model.token_embedding.weight, model.lstm)
        else:
            out, (h, c) = model.lstm(model.token_embedding(idx))
        logits = model.fc(out)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 11).float(), targets.reshape(-1))
    loss.backward()
    return loss.item(), (h.detach(), c.detach()), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("n_layers", [1, 2])
def test_matches_nn_lstm_in_fp32(n_layers):
    model = make(n_layers)
    idx, targets = torch.randint(0, 11, (5, 13)), torch.randint(0, 11, (5, 13))
    ref_loss, (ref_h, ref_c), ref_grads = run(model, idx, targets, table=False)
    loss, (h, c), grads = run(model, idx, targets, table=True)
    assert loss == pytest.approx(ref_loss, abs=1e-6)
    torch.testing.assert_close(h, ref_h, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(c, ref_c, atol=1e-6, rtol=1e-5)
    assert grads.keys() == ref_grads.keys()
    for name in grads:  # the embedding, every LSTM weight and bias, and the output layer
        torch.testing.assert_close(grads[name], ref_grads[name], atol=1e-6, rtol=1e-4, msg=name)


def test_bf16_autocast_stays_close_to_fp32():
    model = make(2)
    idx, targets = torch.randint(0, 11, (4, 9)), torch.randint(0, 11, (4, 9))
    ref_loss, _, ref_grads = run(model, idx, targets, table=False)
    loss, _, grads = run(model, idx, targets, table=True, amp=True)
    assert loss == pytest.approx(ref_loss, rel=1e-2)
    for name in grads:
        rel = (grads[name] - ref_grads[name]).norm() / ref_grads[name].norm()
        assert rel < 3e-2, name


def test_the_model_trains_on_it_only_where_it_is_the_same_function_and_pays(monkeypatch):
    assert table_lstm_pays(128, 512) and table_lstm_pays(32, 512) and not table_lstm_pays(16, 256)
    calls = []
    monkeypatch.setattr(core.model, "table_lstm", lambda *a: calls.append(1) or table_lstm(*a))
    monkeypatch.setattr(core.model, "table_lstm_pays", lambda batch, hidden: True)  # tiny test sizes
    idx = torch.randint(0, 11, (2, 6))
    make(1)(idx)  # training, no dropout, zero state: the table LSTM
    make(1).eval()(idx)  # inference: nn.LSTM
    make(1)(idx, (torch.zeros(1, 2, 24), torch.zeros(1, 2, 24)))  # a given state: nn.LSTM
    make(2, dropout=0.2)(idx)  # dropout on the embedding breaks the table
    assert calls == [1]
