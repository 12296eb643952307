"""The CPU training LSTM (core/table_lstm.py) against nn.LSTM: same outputs, same gradients."""

from __future__ import annotations

import pytest
import torch

import core.model
from core.model import LMNet, ModelConfig, masked_lstm
from core.table_lstm import Masks, table_lstm


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


def test_the_model_trains_on_it_only_when_asked_on_the_cpu_from_a_zero_state(monkeypatch):
    calls = []
    monkeypatch.setattr(core.model, "table_lstm", lambda *a: calls.append(1) or table_lstm(*a))
    idx = torch.randint(0, 11, (2, 6))
    fast = make(2, dropout=0.2)
    fast.table_lstm = True
    fast(idx)  # training, a zero state, asked for: the table LSTM, dropout and all
    fast.eval()(idx)  # inference: nn.LSTM
    fast.train()(idx, (torch.zeros(2, 2, 24), torch.zeros(2, 2, 24)))  # a given state: nn.LSTM
    make(1)(idx)  # not asked for (the trainer asks where a probe shows it faster)
    assert calls == [1]


# -- AWD-LSTM regularisation: the same masks give the same function on every path -----------

def awd_model(n_layers: int = 2) -> LMNet:
    torch.manual_seed(0)
    return LMNet(ModelConfig(11, 24, n_layers, dropout=0.3, weight_drop=0.4, embed_drop=0.3)).train()


def reference(model: LMNet, idx: torch.Tensor, masks: Masks) -> torch.Tensor:
    """Logits of a plain step-by-step LSTM written from the equations, with ``masks``."""
    B, T = idx.shape
    x = (model.token_embedding.weight * masks.embed)[idx]  # (B, T, C)
    for layer in range(model.config.n_layers):
        w_ih, w_hh, b_ih, b_hh = (getattr(model.lstm, f"{n}_l{layer}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        w_hh = w_hh * masks.weight[layer]
        h = c = torch.zeros(B, model.config.n_embd)
        outs = []
        for t in range(T):
            i, f, g, o = (x[:, t] @ w_ih.t() + b_ih + h @ w_hh.t() + b_hh).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        x = torch.stack(outs, 1) * masks.locked[layer][:, None]  # one mask for every step
    return model.fc(x)


def loss_and_grads(model: LMNet, logits: torch.Tensor, targets: torch.Tensor):
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 11), targets.reshape(-1))
    model.zero_grad(set_to_none=True)
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("n_layers", [1, 2])
def test_masks_give_the_reference_function_on_the_table_and_torch_paths(n_layers):
    model = awd_model(n_layers)
    idx, targets = torch.randint(0, 11, (5, 9)), torch.randint(0, 11, (5, 9))
    torch.manual_seed(3)
    masks = model.draw_masks(5)
    assert all(m is not None for m in [masks.embed, *masks.weight, *masks.locked])
    assert (masks.embed == 0).any() and (masks.weight[0] == 0).any()  # some rows and weights really are dropped
    ref_loss, ref_grads = loss_and_grads(model, reference(model, idx, masks), targets)
    table_out, _ = table_lstm(idx, model.token_embedding.weight, model.lstm, masks)
    torch_out, _ = masked_lstm(idx, model.token_embedding.weight, model.lstm, masks)
    for out in (table_out, torch_out):
        loss, grads = loss_and_grads(model, model.fc(out), targets)
        assert loss == pytest.approx(ref_loss, abs=1e-6)
        for name in grads:
            torch.testing.assert_close(grads[name], ref_grads[name], atol=1e-6, rtol=1e-4, msg=name)


def test_the_model_draws_one_set_of_masks_per_batch_and_uses_none_in_eval():
    model = awd_model()
    idx = torch.randint(0, 11, (3, 7))
    for fast in (False, True):
        model.table_lstm = fast
        torch.manual_seed(5)
        masks = model.draw_masks(3)
        torch.manual_seed(5)
        logits, _ = model(idx)
        torch.testing.assert_close(logits, reference(model, idx, masks), atol=1e-6, rtol=1e-5)
    model.eval()
    plain, _ = model.lstm(model.token_embedding(idx))
    torch.testing.assert_close(model(idx)[0], model.fc(plain))  # eval: the plain lab network


def test_the_masks_keep_their_expectation():
    torch.manual_seed(0)
    model = LMNet(ModelConfig(50, 64, 2, dropout=0.5, weight_drop=0.5, embed_drop=0.5))
    masks = model.draw_masks(64)
    for mask in [masks.embed, *masks.weight, *masks.locked]:
        assert set(mask.unique().tolist()) == {0.0, 2.0}  # dropped, or kept and scaled by 1 / (1 - p)
        assert mask.mean().item() == pytest.approx(1.0, abs=0.2)
