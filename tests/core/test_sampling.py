"""Sampling: the fused step against nn.LSTM, stateful against window, seeds, temperature,
top-k/top-p and batched streams."""

from __future__ import annotations

import math
import threading

import pytest
import torch

from core.checkpoint import load_checkpoint
from core.errors import ConfigError, VocabError
from core.model import LMNet, ModelConfig
from core.sampling import GREEDY_BELOW, FusedLSTM, Picker, SampleConfig, Sampler, make_generator, pick_next
from core.vocab import CharVocab

LONG = SampleConfig(block_size=10_000)  # a window that covers any text in these tests


@pytest.fixture(scope="module")
def vocab(corpus_text) -> CharVocab:
    return CharVocab.from_text(corpus_text)


def random_sampler(vocab: CharVocab, n_layers: int = 1, n_embd: int = 32, seed: int = 0) -> Sampler:
    torch.manual_seed(seed)
    return Sampler(LMNet(ModelConfig(vocab.size, n_embd, n_layers)), vocab)


@pytest.fixture(scope="module")
def trained(tiny_checkpoint) -> Sampler:
    ckpt = load_checkpoint(tiny_checkpoint)
    return Sampler(ckpt.build_model(), ckpt.vocab)


@pytest.fixture(scope="module", params=[1, 2], ids=["1layer", "2layers"])
def sampler(request, vocab) -> Sampler:
    return random_sampler(vocab, n_layers=request.param)


def greedy_reference(model: LMNet, vocab: CharVocab, prompt: str, n: int, window: int | None = None) -> str:
    """Argmax of the model's own full forward, one character at a time (no Sampler code)."""
    ids = vocab.encode(prompt) or [vocab.newline_id]
    out = []
    with torch.no_grad():
        for _ in range(n):
            logits, _ = model(torch.tensor([ids[-window:] if window else ids]))
            ids.append(int(logits[0, -1].argmax()))
            out.append(ids[-1])
    return vocab.decode(out)


# -- the fused step ------------------------------------------------------------------------

@pytest.mark.parametrize("n_layers", [1, 2, 3])
def test_fused_run_matches_nn_lstm(vocab, n_layers):
    s = random_sampler(vocab, n_layers=n_layers)
    x = torch.randint(0, vocab.size, (3, 25), generator=torch.Generator().manual_seed(n_layers))  # (B, T)
    with torch.no_grad():
        ref, (h, c) = s.model(x)
    run = s.fused.start(s.zero_state(3))
    logits = torch.stack([run.step(x[:, t]).clone() for t in range(x.size(1))], 1)
    assert torch.allclose(logits, ref, atol=1e-5)
    h2, c2 = run.state()
    assert h2.shape == c2.shape == (n_layers, 3, 32)
    assert torch.allclose(h2, h, atol=1e-5) and torch.allclose(c2, c, atol=1e-5)


def test_fused_run_continues_a_primed_state(vocab):
    s = random_sampler(vocab, n_layers=2)
    x = torch.randint(0, vocab.size, (2, 12))
    with torch.no_grad():
        ref, _ = s.model(x)
        _, state = s.model(x[:, :7])
    run = s.fused.start(state)
    for t in range(7, 12):
        assert torch.allclose(run.step(x[:, t]), ref[:, t], atol=1e-5)


def test_pure_step_matches_nn_lstm_and_leaves_its_input_alone(vocab):
    s = random_sampler(vocab, n_layers=2)
    x = torch.randint(0, vocab.size, (2, 6))
    with torch.no_grad():
        ref, _ = s.model(x)
    layers = FusedLSTM.to_layers(s.zero_state(2))
    kept = [(h.clone(), c.clone()) for h, c in layers]
    for t in range(6):
        logits, new = s.fused.step(x[:, t], layers)
        assert torch.allclose(logits, ref[:, t], atol=1e-5)
        again, _ = s.fused.step(x[:, t], layers)  # a pure function: same input, same output
        assert torch.equal(again, logits)
        assert all(torch.equal(h, kh) and torch.equal(c, kc) for (h, c), (kh, kc) in zip(layers, kept))
        layers, kept = new, [(h.clone(), c.clone()) for h, c in new]
    h, c = FusedLSTM.from_layers(layers)
    assert h.shape == (2, 2, 32) and FusedLSTM.to_layers((h, c))[1][0].shape == (2, 32)


# -- stateful == window ------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("controls", [dict(temperature=1.0), dict(temperature=0.7), dict(temperature=1.3, top_k=5),
                                      dict(temperature=1.0, top_p=0.8), dict(temperature=0.9, top_k=10, top_p=0.95)],
                         ids=["t1", "t0.7", "topk", "topp", "both"])
def test_stateful_equals_window_when_the_window_covers_the_text(trained, sampler, seed, controls):
    for s in (trained, sampler):
        cfg = LONG.with_(length=80, seed=seed, **controls)
        stateful = s.generate("KING:\nGood", cfg)
        assert len(stateful) == 80
        assert s.generate("KING:\nGood", cfg.with_(mode="window")) == stateful


def test_a_short_window_really_differs(trained):
    """The control for the test above: the comparison notices a window that forgets."""
    cfg = LONG.with_(length=120, seed=0, temperature=1.0)
    assert trained.generate("KING:\n", cfg.with_(mode="window", block_size=3)) != trained.generate("KING:\n", cfg)


def test_window_mode_reads_only_the_last_block(trained):
    cfg = SampleConfig(length=40, seed=5, temperature=1.0, mode="window", block_size=8)
    prompt = "QUEEN:\nThe king hath"
    assert trained.generate(prompt, cfg) == trained.generate(prompt[-8:], cfg)
    # Greedy, longer than the window: the window slides over the generated text too.
    assert trained.generate(prompt, cfg.with_(temperature=0)) == greedy_reference(
        trained.model, trained.vocab, prompt, 40, window=8)


def test_empty_prompt_starts_from_a_newline(trained):
    for mode in ("stateful", "window"):
        cfg = LONG.with_(length=50, seed=1, mode=mode)
        assert trained.generate("", cfg) == trained.generate("\n", cfg)
    assert trained.generate("", LONG.with_(length=30, temperature=0)) == greedy_reference(
        trained.model, trained.vocab, "", 30)


# -- seeds and temperature ---------------------------------------------------------------

def test_same_seed_same_text_different_seeds_differ(trained):
    cfg = SampleConfig(length=200, temperature=1.0)
    texts = [trained.generate("KING:", cfg.with_(seed=seed)) for seed in (7, 7, 8, 9)]
    assert texts[0] == texts[1]
    assert len(set(texts)) == 3
    # No seed: fresh OS entropy each time.
    assert trained.generate("KING:", cfg) != trained.generate("KING:", cfg)


@pytest.mark.parametrize("mode", ["stateful", "window"])
def test_temperature_zero_is_the_argmax_step_by_step(trained, sampler, mode):
    for s in (trained, sampler):
        cfg = LONG.with_(length=40, temperature=0, mode=mode, seed=123)
        assert s.generate("LORD:\n", cfg) == greedy_reference(s.model, s.vocab, "LORD:\n", 40)


def test_greedy_limits_of_top_k_top_p_and_tiny_temperature(trained):
    greedy = trained.generate("KING:\n", LONG.with_(length=60, temperature=0))
    for seed in (0, 1, 2):
        cfg = LONG.with_(length=60, seed=seed, temperature=1.5)
        assert trained.generate("KING:\n", cfg.with_(top_k=1)) == greedy
        assert trained.generate("KING:\n", cfg.with_(top_p=1e-6)) == greedy
        # 1/T overflows fp32 for T = 1e-40; it must still be greedy, not NaN.
        assert trained.generate("KING:\n", cfg.with_(temperature=1e-40)) == greedy
        assert trained.generate("KING:\n", cfg.with_(temperature=GREEDY_BELOW * 2)) == greedy


# -- pick_next ---------------------------------------------------------------------------

def test_pick_next_samples_the_softmax_distribution():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, 0.5]])
    n = 40_000
    ids, probs = pick_next(logits.expand(n, -1), 0.8, None, None, make_generator(0))
    expected = torch.softmax(logits[0] / 0.8, -1)
    assert torch.allclose(probs[0], expected, atol=1e-6)
    freq = torch.bincount(ids, minlength=5) / n
    assert (freq - expected).abs().max() < 0.01  # ~4 standard errors


def test_top_k_and_top_p_keep_the_right_candidates():
    probs = torch.tensor([[0.05, 0.5, 0.15, 0.3]])
    logits = probs.log()
    gen = make_generator(0)
    n = 5000
    ids, p = pick_next(logits.expand(n, -1), 1.0, 2, None, gen)
    assert set(ids.tolist()) == {1, 3}
    assert torch.allclose(p[0], torch.tensor([0, 0.5 / 0.8, 0, 0.3 / 0.8]), atol=1e-6)
    # top-p: the smallest set whose mass reaches p (ties at the boundary keep the set small).
    for top_p, kept in [(0.4, {1}), (0.5, {1}), (0.7, {1, 3}), (0.9, {1, 3, 2}), (1.0, {0, 1, 2, 3})]:
        ids, p = pick_next(logits.expand(n, -1), 1.0, None, top_p, gen)
        assert set(ids.tolist()) == kept, top_p
        assert set(torch.nonzero(p[0]).view(-1).tolist()) == kept
        assert torch.allclose(p.sum(-1), torch.ones(n))


def test_per_row_temperatures():
    logits = torch.tensor([[0.0, 3.0, 1.0]]).expand(4, -1)
    ids, probs = pick_next(logits, torch.tensor([0.0, 1.0, 0.0, 1e-40]), None, None, make_generator(0))
    assert ids[0] == ids[2] == ids[3] == 1
    assert torch.isfinite(probs).all()


@pytest.mark.parametrize("batch", [1, 3])
def test_picker_makes_pick_next_s_choices_bit_for_bit(batch):
    # Its in-place fast path and pick_next must draw the same numbers from the same
    # generator and land on the same ids, or a seed would give other text than before.
    torch.manual_seed(0)
    settings = [(0.8, None, None), (0.8, None, None), (1.3, None, None), (0.0, None, None), (1.0, 3, None),
                (0.7, None, 0.9), (0.5, 65, 1.0), (torch.tensor([0.5, 1.0, 0.0])[:batch], None, None), (0.8, None, None)]
    picker, gen = Picker(make_generator(7), batch, 65), make_generator(7)
    for _ in range(20):
        for temperature, top_k, top_p in settings:
            logits = torch.randn(batch, 65) * 3
            ids, probs = picker(logits, temperature, top_k, top_p)
            want_ids, want_probs = pick_next(logits, temperature, top_k, top_p, gen)
            assert torch.equal(ids, want_ids) and torch.equal(probs, want_probs)


# -- batched streams -----------------------------------------------------------------------

def test_batched_rows_with_per_row_temperatures(vocab):
    """Stateful == window with B = 4 on 2 layers, and the greedy rows are the greedy text."""
    s = random_sampler(vocab, n_layers=2, seed=3)
    temps = [0.0, 1.0, 0.0, 0.6]
    cfg = LONG.with_(length=50, seed=4)
    prompt = s.vocab.encode("KING:\n")

    def rows(mode: str) -> list[str]:
        steps = [ids for ids, _ in s.stream_ids(prompt, cfg.with_(mode=mode), batch=4, temperatures=temps)]
        return [s.vocab.decode(col) for col in torch.stack(steps, 1)]

    stateful = rows("stateful")
    assert stateful == rows("window")
    greedy = s.generate("KING:\n", cfg.with_(temperature=0))
    assert stateful[0] == stateful[2] == greedy
    assert stateful[1] != greedy and stateful[3] != greedy and stateful[1] != stateful[3]


def test_generate_batch_rows_are_independent_samples(trained):
    cfg = SampleConfig(length=40, seed=11, temperature=1.0)
    assert trained.generate_batch("KING:", cfg, 1) == [trained.generate("KING:", cfg)]
    rows = trained.generate_batch("KING:", cfg, 5)
    assert len(rows) == 5 and all(len(r) == 40 for r in rows)
    assert len(set(rows)) == 5
    assert trained.generate_batch("KING:", cfg.with_(temperature=0), 3) == [trained.generate("KING:", cfg.with_(temperature=0))] * 3


def test_many_samples_read_the_prompt_once(trained):
    """64 streams of a long prompt: the LSTM reads its characters once, not 64 times, and
    every stream starts from that one state (a 10 KB prompt took 115 s and 6.7 GB for
    64 samples when each read it)."""
    prompt = trained.vocab.encode("KING:\nThe crown, my lord, the crown!\n" * 50)
    read = []
    hook = trained.model.lstm.register_forward_hook(lambda _m, args, _out: read.append(args[0].shape[:2]))
    try:
        steps = list(trained.stream_ids(prompt, SampleConfig(length=3, seed=0, temperature=1.0), batch=64))
    finally:
        hook.remove()
    assert read == [(1, len(prompt))]  # (batch, positions): one pass over the prompt
    logits, _ = trained.prime(prompt)
    assert torch.allclose(steps[0][1], torch.softmax(logits[0], -1).expand(64, -1), atol=1e-6)
    assert len({tuple(ids.tolist()) for ids, _ in steps}) > 1  # and the streams still go their own ways


def test_each_batched_row_samples_the_models_distribution(trained):
    """First characters of 4000 rows follow the softmax of the primed logits."""
    n = 4000
    prompt = trained.vocab.encode("KING:\nThe ")
    ids, probs = next(trained.stream_ids(prompt, SampleConfig(length=1, seed=0, temperature=1.0), batch=n))
    logits, _ = trained.prime(prompt)
    expected = torch.softmax(logits[0], -1)
    assert torch.allclose(probs, expected.expand(n, -1), atol=1e-5)
    assert (torch.bincount(ids, minlength=len(expected)) / n - expected).abs().max() < 0.03


def test_yielded_probs_are_not_overwritten_by_later_steps(trained):
    kept = [(ids.clone(), probs.clone(), probs) for ids, probs in
            trained.stream_ids(trained.vocab.encode("KING:"), SampleConfig(length=20, seed=0), batch=2)]
    assert all(torch.equal(p, later) for _, p, later in kept)
    assert len({tuple(p[0].tolist()) for _, p, _ in kept}) > 1


# -- control, priming, validation ----------------------------------------------------------

def test_stop_event_ends_the_stream(trained):
    stop = threading.Event()
    out = []
    for ch in trained.stream("", SampleConfig(length=500, seed=0), stop):
        out.append(ch)
        if len(out) == 5:
            stop.set()
    assert len(out) == 5


def test_priming_in_two_parts_equals_priming_at_once(trained):
    a, b = trained.vocab.encode("KING:\n"), trained.vocab.encode("Good night")
    logits, (h, c) = trained.prime(a + b)
    _, state = trained.prime(a)
    logits2, (h2, c2) = trained.prime(b, state=state)
    assert torch.allclose(logits, logits2, atol=1e-5) and torch.allclose(h, h2, atol=1e-5)
    with pytest.raises(ValueError):
        trained.prime([], state=state)


def test_strict_prompt_names_unknown_characters(trained):
    with pytest.raises(VocabError, match="'@'"):
        trained.generate("KING@", SampleConfig(length=5))


@pytest.mark.parametrize("bad", [dict(temperature=-0.1), dict(temperature=math.nan), dict(temperature=math.inf),
                                 dict(top_k=0), dict(top_p=0.0), dict(top_p=1.01), dict(length=-1),
                                 dict(length=0), dict(length=10**7), dict(temperature=2.5), dict(seed=-1),
                                 dict(seed=2**64), dict(top_k=2.5), dict(mode="beam"), dict(block_size=0)])
def test_sample_config_validation(bad):
    name = next(iter(bad))
    with pytest.raises(ConfigError, match="block size" if name == "block_size" else "out of range; use"):
        SampleConfig(**bad)


def test_stream_ids_validation(trained):
    ids = trained.vocab.encode("KING")
    for kwargs in (dict(batch=2, temperatures=[1.0]), dict(batch=2, temperatures=[1.0, -1.0]), dict(batch=0)):
        with pytest.raises(ConfigError):
            next(trained.stream_ids(ids, SampleConfig(length=3), **kwargs))
