"""Dynamic evaluation (core/adapt.py): exact gradients, score-then-step, exact reset, and
where the gradient statistics come from (core/adapt_stats.py)."""

from __future__ import annotations

import copy
import random
import threading

import pytest
import torch
from torch.nn import functional as F

from core import adapt_stats
from core.adapt import AdaptConfig, Adapter, GradStats, _Net, measure_stats
from core.checkpoint import load_checkpoint, save_checkpoint
from core.errors import ConfigError
from core.model import LMNet, ModelConfig
from core.sampling import Sampler

V = 11


def make(n_layers: int = 2, n_embd: int = 16, seed: int = 0) -> LMNet:
    torch.manual_seed(seed)
    return LMNet(ModelConfig(V, n_embd, n_layers)).eval()


def repeated_text(length: int = 1_200, period: int = 37, seed: int = 0) -> list[int]:
    """A random phrase over and over: a strong pattern the trained weights do not know."""
    rng = random.Random(seed)
    phrase = [rng.randrange(V) for _ in range(period)]
    return (phrase * (length // period + 1))[:length]


@pytest.fixture(scope="module")
def stats() -> GradStats:
    return measure_stats(make(), [random.Random(1).randrange(V) for _ in range(3_000)], segment=20)


def weights(model: LMNet) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.mark.parametrize("n_layers", [1, 2])
def test_forward_and_gradients_match_autograd_through_nn_lstm(n_layers):
    model = make(n_layers, n_embd=24)
    T, B, L, H = 7, 3, n_layers, 24
    x, y = torch.randint(0, V, (T, B)), torch.randint(0, V, (T, B))
    h0, c0 = torch.randn(L, B, H) * 0.5, torch.randn(L, B, H) * 0.5  # from a carried state
    net, grads = _Net(model), {}

    def keep(name, u, v):
        grads[name] = u.sum((0, 1)) if v is None else u.flatten(0, 1).t() @ v.flatten(0, 1)

    with torch.no_grad():
        nll, (h, c) = net.forward(x, y, (h0, c0), keep=True)
        net.backward(0.5, keep)
    logits, (ref_h, ref_c) = model(x.t(), (h0, c0))
    ref_nll = F.cross_entropy(logits.reshape(-1, V), y.t().reshape(-1), reduction="none").view(B, T).t()
    (0.5 * ref_nll.sum()).backward()
    torch.testing.assert_close(nll, ref_nll, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(h, ref_h, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(c, ref_c, atol=1e-6, rtol=1e-5)
    assert grads.keys() == dict(model.named_parameters()).keys()
    for name, p in model.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, atol=1e-6, rtol=1e-4, msg=name)


def test_measured_statistics_are_the_factored_mean_squares_of_each_streams_segment_gradients():
    model, segment, streams = make(2, n_embd=8), 5, 3
    ids = torch.randint(0, V, (3 * 40 + 1,))
    stats = measure_stats(model, ids, segment=segment, streams=streams, max_chars=3 * 10)
    # By autograd: each stream's stretch read from a zero state, each segment's gradient alone.
    squares = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for k in range(streams):
        row, state = ids[k * 40: k * 40 + 11], None
        for start in range(0, 10, segment):
            model.zero_grad()
            logits, state = model(row[start: start + segment].unsqueeze(0), state)
            state = (state[0].detach(), state[1].detach())
            (F.cross_entropy(logits[0], row[start + 1: start + segment + 1], reduction="sum") / segment).backward()
            for n, p in model.named_parameters():
                squares[n] += p.grad ** 2
    for n, sq in squares.items():
        mean = sq / (streams * 2)
        expect_rows = mean if mean.dim() == 1 else mean.sum(1)
        torch.testing.assert_close(stats.rows[n], expect_rows, rtol=1e-4, atol=1e-12, msg=n)
        if mean.dim() == 2:
            torch.testing.assert_close(stats.cols[n], mean.sum(0), rtol=1e-4, atol=1e-12, msg=n)
    assert stats.chars == 30 and stats.segment == segment


def test_reset_restores_the_trained_weights_bit_for_bit(stats):
    model, config = make(), AdaptConfig(segment=20, step=1e-3, decay=0.01)
    trained = weights(model)
    adapter = Adapter(model, stats, config)
    adapter.read(repeated_text(300))
    assert adapter.adapted and adapter.chars_read == 300
    assert any(not torch.equal(p, trained[n]) for n, p in model.named_parameters())
    adapter.reset()
    assert_same(weights(model), trained)
    assert not adapter.adapted
    fresh = Adapter(make(), stats, config)
    assert adapter.read(repeated_text(100)).surprise == fresh.read(repeated_text(100)).surprise  # the state is a fresh text's too


def test_on_a_repeated_pattern_adapting_beats_static_and_step_zero_equals_it_to_the_last_bit(stats):
    text = repeated_text()
    static = Adapter(make(), stats, AdaptConfig(segment=20)).read(text, learn=False).surprise
    adapter = Adapter(make(), stats, AdaptConfig(segment=20, step=1e-2, decay=0.0), compare=True)
    reading = adapter.read(text)
    assert reading.static == static  # the trained weights' surprise, scored alongside
    mean_static, mean_adapted = sum(static) / len(static), sum(reading.surprise) / len(text)
    assert mean_adapted < mean_static - 0.2  # 2.06 vs 2.39 nats/char
    assert adapter.gain == pytest.approx(mean_static - mean_adapted) and adapter.chars_compared == len(text)
    model = make()
    trained = weights(model)
    frozen = Adapter(model, stats, AdaptConfig(segment=20, step=0.0, decay=0.01), compare=True)
    assert frozen.read(text).surprise == static  # every surprise, exactly
    assert frozen.gain == 0.0
    assert_same(weights(model), trained)


def test_each_segment_is_scored_before_its_own_step(stats):
    config = AdaptConfig(segment=20, step=1e-3, decay=0.01)
    text = repeated_text(100)
    adapter = Adapter(make(), stats, config)
    adapter.read(text[:60])
    before = copy.deepcopy(adapter)  # the weights and state from before the next segment
    got = adapter.read(text[60:80]).surprise
    after = copy.deepcopy(before)
    with torch.no_grad():  # the weights after that segment's step, from the same state
        for name, p in after.model.named_parameters():
            p.copy_(dict(adapter.model.named_parameters())[name])
    assert got == before.read(text[60:80], learn=False).surprise
    assert got != after.read(text[60:80], learn=False).surprise  # (so the order is what the test sees)


def test_a_read_continues_the_text_and_can_be_stopped_between_segments(stats):
    text = repeated_text(200)
    whole = Adapter(make(), stats, AdaptConfig(segment=20, step=1e-3)).read(text).surprise
    pieces = Adapter(make(), stats, AdaptConfig(segment=20, step=1e-3))
    assert pieces.read(text[:100]).surprise + pieces.read(text[100:]).surprise == whole  # segment boundaries agree here
    stop, seen = threading.Event(), []

    def progress(done, total):
        seen.append((done, total))
        if done >= 60:
            stop.set()

    stopped = Adapter(make(), stats, AdaptConfig(segment=20, step=1e-3))
    assert stopped.read(text, stop=stop, progress=progress).surprise == whole[:60]
    assert seen == [(20, 200), (40, 200), (60, 200)] and stopped.chars_read == 60


def test_a_sampler_generates_from_the_adapted_weights_after_refresh(stats):
    model = make()
    sampler = Sampler(model, _vocab())
    adapter = Adapter(model, stats, AdaptConfig(segment=20, step=1e-3))
    adapter.read(repeated_text(200))
    ids = torch.tensor([3])

    def fused_logits():
        state = sampler.zero_state()
        return sampler.fused.step(ids, sampler.fused.to_layers(state))[0]

    with torch.no_grad():
        direct = model(ids.view(1, 1), sampler.zero_state())[0][0]
    assert not torch.allclose(fused_logits(), direct, atol=1e-5)  # the fused copy is stale until refreshed
    sampler.refresh()
    torch.testing.assert_close(fused_logits(), direct, atol=1e-5, rtol=1e-5)


def _vocab():
    from core.vocab import CharVocab

    return CharVocab.from_text("abcdefghijk")


def test_settings_are_checked():
    for bad in ({"segment": 0}, {"step": -1.0}, {"step": float("nan")}, {"decay": 1.5}, {"decay": -0.1}):
        with pytest.raises(ConfigError):
            AdaptConfig(**bad)


def test_statistics_for_another_model_are_refused(stats):
    with pytest.raises(ConfigError, match="do not fit"):
        Adapter(make(n_embd=8), stats)


# -- where the statistics come from ------------------------------------------------------------

def test_training_stores_statistics_in_the_checkpoint_for_its_weights(tiny_checkpoint):
    ckpt = load_checkpoint(tiny_checkpoint)
    model = ckpt.build_model()
    assert ckpt.adapt_stats is not None and "train split" in ckpt.adapt_stats["source"]
    assert ckpt.adapt_stats["weights"] == adapt_stats.weights_digest(model)
    assert adapt_stats.stats_for(model, ckpt, tiny_checkpoint, note=pytest.fail).fits(model)  # found, not measured


def test_statistics_are_measured_once_cached_safely_and_never_written_beside_the_checkpoint(tmp_path, tiny_checkpoint):
    ckpt = load_checkpoint(tiny_checkpoint)
    ckpt.adapt_stats = None  # as an older checkpoint
    path = save_checkpoint(tmp_path / "models" / "old.pt", ckpt)
    before = path.read_bytes()
    model, notes = ckpt.build_model(), []
    text = repeated_text(10_000)
    first = adapt_stats.stats_for(model, load_checkpoint(path), path, text, note=notes.append)
    assert len(notes) == 1 and first.source == "the text read"
    cached = adapt_stats.cache_path(adapt_stats.weights_digest(model))
    assert cached.is_file() and not list(cached.parent.glob("*.tmp"))
    again = adapt_stats.stats_for(model, load_checkpoint(path), path, text, note=pytest.fail)
    assert all(torch.equal(again.rows[n], first.rows[n]) for n in first.rows)
    assert [p.name for p in path.parent.iterdir()] == ["old.pt"] and path.read_bytes() == before
    cached.write_bytes(b"not a torch file")  # a damaged cache is measured anew, not an error
    adapt_stats.stats_for(model, load_checkpoint(path), path, text, note=notes.append)
    assert len(notes) == 2


def test_a_sidecar_is_used_only_for_the_weights_it_was_measured_on(tmp_path, tiny_checkpoint, corpus_file):
    ckpt = load_checkpoint(tiny_checkpoint)
    ckpt.adapt_stats = None
    path = save_checkpoint(tmp_path / "m.pt", ckpt)
    model = ckpt.build_model()
    assert adapt_stats.write_sidecar(path, corpus_file) == tmp_path / "m.adapt.pt"
    assert adapt_stats.stats_for(model, ckpt, path, note=pytest.fail).source == "plays (train split)"
    with torch.no_grad():
        next(model.parameters()).add_(1e-3)  # other weights: the sidecar is stale for them
    found = adapt_stats.stats_for(model, ckpt, path, repeated_text(500), note=lambda _: None)
    assert found.source == "the text read"


def test_without_statistics_or_a_text_to_measure_on_the_error_says_what_to_give(tmp_path, tiny_checkpoint):
    ckpt = load_checkpoint(tiny_checkpoint)
    ckpt.adapt_stats = None
    with pytest.raises(ConfigError, match="give a text"):
        adapt_stats.stats_for(ckpt.build_model(), ckpt, tmp_path / "m.pt", [])


def test_a_read_can_go_on_from_a_state_the_adapter_did_not_read_itself(stats):
    """restart(state, last): a text that someone else read (the app's session) continues
    exactly as if the adapter had read it, the compared static scoring too."""
    text = repeated_text(160)
    config = AdaptConfig(segment=20, step=1e-3)
    whole = Adapter(make(), stats, config, compare=True)
    whole.read(text[:100], learn=False)
    state = (whole.state[0].clone(), whole.state[1].clone())  # as a session would hand it over
    rest = whole.read(text[100:])
    other = Adapter(make(), stats, config, compare=True)
    other.read([5] * 33, learn=False)  # some other text, not the head
    other.restart(state, last=text[99])
    again = other.read(text[100:])
    assert again.surprise == rest.surprise and again.static == rest.static
    third = Adapter(make(), stats, config)
    third.restart(state, last=text[99])
    third.restart()  # and back to a fresh text's start
    assert third.read(text[:20], learn=False).surprise == Adapter(make(), stats, config).read(text[:20], learn=False).surprise


def test_a_trial_read_keeps_nothing(stats):
    model = make()
    trained = weights(model)
    adapter = Adapter(model, stats, AdaptConfig(segment=20, step=1e-3), compare=True)
    with adapter.trial():  # from the trained weights: no copy needed
        adapter.read(repeated_text(100))
        assert adapter.adapted
    assert_same(weights(model), trained) and not adapter.adapted and adapter.gain is None
    adapter.read(repeated_text(60))
    learned, totals = weights(model), (adapter.chars_read, adapter.gain)
    following = copy.deepcopy(adapter).read(repeated_text(40, seed=3)).surprise
    with adapter.trial():
        adapter.read(repeated_text(300, seed=2))
    assert_same(weights(model), learned) and (adapter.chars_read, adapter.gain) == totals
    assert adapter.read(repeated_text(40, seed=3)).surprise == following  # the state came back too
