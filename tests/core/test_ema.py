"""core.ema.WeightAverage: the running average, and swapping it in and out of a model."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from core.ema import WeightAverage  # noqa: E402


def test_update_is_an_exponential_moving_average_and_applied_restores_the_weights():
    model = torch.nn.Linear(3, 2)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    average = WeightAverage(model, decay=0.75)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(4.0)
    average.update()  # 0.75 * start + 0.25 * (start + 4) = start + 1
    raw = {k: v.clone() for k, v in model.state_dict().items()}
    with average.applied():
        for k, v in model.state_dict().items():
            assert torch.allclose(v, start[k] + 1.0)
    for k, v in model.state_dict().items():
        assert torch.equal(v, raw[k])  # the raw weights are back, bit for bit


def test_a_saved_average_is_taken_up_and_a_mismatched_one_starts_afresh():
    model = torch.nn.Linear(3, 2)
    saved = {k: torch.full_like(v, 7.0) for k, v in model.state_dict().items()}
    assert all(torch.equal(t, saved[k]) for k, t in WeightAverage(model, 0.9, saved).state_dict().items())
    fresh = WeightAverage(model, 0.9, {"other.weight": torch.zeros(1)})
    assert all(torch.equal(t, model.state_dict()[k]) for k, t in fresh.state_dict().items())
