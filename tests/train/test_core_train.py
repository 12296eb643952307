"""core.train.train(): events, stop event, exact resume, bad states. In-process, CPU."""

from __future__ import annotations

import json
import math
import re
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from train_helpers import assert_same_weights, curve, load_state

torch = pytest.importorskip("torch")

from core.data import TextData  # noqa: E402
from core.vocab import CharVocab  # noqa: E402
from core.errors import CheckpointError, ConfigError, TrainingError  # noqa: E402
from core.train import TrainConfig, last_path, metrics_path, train  # noqa: E402

# Dropout and two layers, so the global RNG (dropout masks) matters for resume.
CONFIG = TrainConfig(preset="default", n_embd=24, n_layers=2, dropout=0.2, batch_size=4, block_size=16,
                     lr=5e-3, min_lr=5e-4, warmup_iters=3, max_iters=30, eval_interval=10, eval_iters=2,
                     device="cpu", seed=11)


@pytest.fixture(scope="module")
def data(corpus_text: str) -> TextData:
    return TextData.from_text(corpus_text)


def run(config, data, out, resume=None, stop_after: int | None = None):
    """All events of a run; with ``stop_after``, the stop event is set once that step is seen."""
    stop = threading.Event()
    events = []
    ckpt = load_state(resume) if resume else None
    for e in train(config, data, out, resume=ckpt, stop=stop, data_name="plays"):
        events.append(e)
        if stop_after is not None and e.kind == "step" and e.step == stop_after:
            stop.set()
    return events


def evals(events):
    return [(e.step, e.train_loss, e.val_loss, e.lr) for e in events if e.kind == "eval"]


@pytest.mark.parametrize("amp,ema", [(False, 0.0), (True, 0.0), (False, 0.9)], ids=["fp32", "amp", "ema"])
def test_interrupted_and_resumed_run_matches_uninterrupted(data, tmp_path, capfd, amp, ema):
    config = replace(CONFIG, amp=amp, ema=ema)
    whole = run(config, data, tmp_path / "a" / "m.pt")

    out = tmp_path / "b" / "m.pt"
    first = run(config, data, out, stop_after=4)  # stops before any evaluation
    assert first[-1].kind == "done" and first[-1].reason == "stopped" and first[-1].step == 5  # the step in progress finished
    assert out.exists() and load_state(out).best_val_loss is None  # unevaluated weights, so a model exists
    second = run(config, data, out, resume=last_path(out), stop_after=13)  # stops between evals, after one
    assert second[-1].step == 14 and second[-1].reason == "stopped"
    third = run(config, data, out, resume=last_path(out))
    assert third[-1].reason == "finished" and third[-1].step == 30

    assert evals(first + second + third) == evals(whole)
    steps = [e.loss for e in first + second + third if e.kind == "step"]
    assert steps == [e.loss for e in whole if e.kind == "step"]  # every step's loss, not only evals
    a = tmp_path / "a" / "m.pt"
    assert_same_weights(last_path(a), last_path(out))
    assert_same_weights(a, out)  # the same best
    assert curve(load_state(last_path(out)).history) == curve(load_state(last_path(a)).history)
    lines = [json.loads(x) for x in metrics_path(out).read_text().splitlines()]
    assert curve(lines) == curve(load_state(last_path(a)).history) and len(lines) == 3
    assert capfd.readouterr() == ("", "")  # core never prints


def test_events_checkpoints_and_metrics(data, tmp_path):
    out = tmp_path / "m.pt"
    events = run(CONFIG, data, out)
    kinds = [e.kind for e in events]
    assert kinds.count("step") == 30 and kinds.count("eval") == 3 and kinds[-1] == "done"
    steps = [e for e in events if e.kind == "step"]
    assert [e.step for e in steps] == list(range(1, 31))
    assert all(math.isfinite(e.loss) and e.tokens_per_s > 0 and 0 < e.fraction <= 1 for e in steps)
    assert steps[-1].fraction == 1.0 and steps[0].lr == pytest.approx(CONFIG.lr / 3)  # warm-up
    best = min(e.val_loss for e in events if e.kind == "eval")
    assert events[-1].best_val_loss == best and events[-1].path == str(out)

    ckpt, last = load_state(out), load_state(last_path(out))
    assert ckpt.best_val_loss == best and ckpt.resume is None  # the best file is small: no optimizer
    assert ckpt.step == next(e.step for e in events if e.kind == "eval" and e.val_loss == best)
    assert last.step == 30 and last.resume is not None and len(last.history) == 3
    assert set(last.history[0]) >= {"step", "train_loss", "val_loss", "lr", "tokens_per_s", "elapsed"}
    assert TrainConfig.from_dict(last.train["config"]) == CONFIG
    lines = [json.loads(x) for x in metrics_path(out).read_text().splitlines()]
    assert lines == last.history


def _val_chars_read_whole(data: TextData) -> int:
    """eval_iters at which the trainer reads the val split whole rather than sampling it."""
    return -(-len(data.val) // (CONFIG.batch_size * CONFIG.block_size))


def test_val_is_exact_where_reading_it_whole_is_cheaper(data, tmp_path):
    from core.evaluate import evaluate

    for eval_iters, exact in ((_val_chars_read_whole(data), True), (2, False)):
        out = tmp_path / f"{eval_iters}.pt"
        events = run(replace(CONFIG, max_iters=10, eval_iters=eval_iters, amp=False), data, out)
        val = next(e.val_loss for e in events if e.kind == "eval")
        full = evaluate(load_state(out).build_model(), data, "val", CONFIG.block_size).loss
        assert (val == pytest.approx(full, abs=1e-5)) is exact  # the sample misses the exact figure


def test_ema_evaluates_and_saves_the_weight_average(data, tmp_path):
    from core.evaluate import evaluate

    config = replace(CONFIG, ema=0.9, max_iters=20, eval_interval=20, eval_iters=_val_chars_read_whole(data), amp=False)
    out = tmp_path / "m.pt"
    events = run(config, data, out)
    best, last = load_state(out), load_state(last_path(out))
    average = last.resume["ema"]
    for name, raw in last.state_dict.items():  # last: the raw weights, to resume from; best: the average
        assert torch.equal(best.state_dict[name], average[name]), name
        assert not torch.equal(raw, average[name]), name
    val = next(e.val_loss for e in events if e.kind == "eval")
    assert evaluate(best.build_model(), data, "val", CONFIG.block_size).loss == pytest.approx(val, abs=1e-5)

    # Off again on resume: no average kept, the best file gets the raw weights.
    run(replace(config, ema=0.0, max_iters=40), data, out, resume=last_path(out))
    assert "ema" not in load_state(last_path(out)).resume
    with pytest.raises(ConfigError, match=r"--ema must be in \[0, 1\)"):
        run(replace(config, ema=1.0), data, out)


def test_a_new_run_replaces_an_old_metrics_file(data, tmp_path):
    out = tmp_path / "m.pt"
    metrics_path(out).write_text('{"step": 999}\n')
    run(replace(CONFIG, max_iters=10), data, out)
    assert [json.loads(x)["step"] for x in metrics_path(out).read_text().splitlines()] == [10]


def test_time_limit_ends_with_an_evaluation(data, tmp_path):
    config = replace(CONFIG, max_iters=1_000_000, eval_interval=1_000_000, time_limit=0.5 / 60)
    events = run(config, data, tmp_path / "m.pt")
    done = events[-1]
    assert done.reason == "time limit" and 0 < done.step < 1_000_000
    assert events[-2].kind == "eval" and events[-2].step == done.step  # the final weights were evaluated
    assert load_state(tmp_path / "m.pt").best_val_loss == events[-2].val_loss


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(data, tmp_path):
    out = tmp_path / "m.pt"
    run(replace(CONFIG, max_iters=10), data, out)
    before = {p: p.read_bytes() for p in (out, last_path(out))}
    # An absurd learning rate drives the weights past fp32's range within two steps.
    blowup = replace(CONFIG, lr=1e30, min_lr=1e30, warmup_iters=0, grad_clip=0, max_iters=30)
    with pytest.raises(TrainingError, match=rf"loss became (nan|inf).*lower --lr.*this run saved nothing: {out} and "
                                            rf"{last_path(out)} are as they were"):
        run(blowup, data, out, resume=last_path(out))
    assert {p: p.read_bytes() for p in before} == before


def test_a_diverged_run_says_what_each_file_holds_not_that_it_is_good(data, tmp_path):
    """A run that evaluates, then diverges: the message names the step each file holds and
    its val loss, as they are on disk (the last one may already be poor: not "good")."""
    out = tmp_path / "m.pt"
    diverging = replace(CONFIG, n_layers=1, dropout=0.0, lr=1000.0, min_lr=1000.0, warmup_iters=0, grad_clip=0.0,
                        max_iters=200, eval_interval=2)
    with pytest.raises(TrainingError) as e:
        run(diverging, data, out)
    best, last = load_state(out), load_state(last_path(out))
    val = {h["step"]: h["val_loss"] for h in last.history}
    said = re.search(rf"; {re.escape(str(out))} holds the best model, from step (\d+) \(val ([^)]+)\), and "
                     rf"{re.escape(str(last_path(out)))} the state at step (\d+) \(val ([^)]+)\), the last one saved$",
                     str(e.value))
    assert said, str(e.value)
    assert (int(said[1]), int(said[3])) == (best.step, last.step) and best.step < last.step
    assert float(said[2]) == pytest.approx(val[best.step], rel=1e-3)
    assert float(said[4]) == pytest.approx(val[last.step], rel=1e-3)
    assert "good" not in str(e.value)


def test_weights_that_are_not_finite_are_never_saved(corpus_text, tmp_path):
    """Weights may hold a NaN while the loss is still finite (here in the embedding row of a
    character the text never uses: the LSTM's input side then spreads it at the next
    update). Such a state is refused at save; the files keep the last finite one."""
    vocab = CharVocab.from_text(corpus_text + "~")  # "~" is in no batch
    data = TextData.from_text(corpus_text, vocab=vocab)
    config = replace(CONFIG, n_layers=1, dropout=0.0, max_iters=4, eval_interval=4)
    out = tmp_path / "m.pt"
    run(config, data, out)
    before = {p: p.read_bytes() for p in (out, last_path(out))}
    poisoned = load_state(last_path(out))
    poisoned.state_dict["token_embedding.weight"][vocab.chars.index("~")] = math.nan
    stop = threading.Event()
    stop.set()  # one step, then save (unevaluated)
    with pytest.raises(TrainingError, match=r"the weights became NaN or inf by step 5: lower --lr or set --grad-clip; "
                                            r"this run saved nothing"):
        for _ in train(replace(config, max_iters=100, eval_interval=100), data, out, resume=poisoned, stop=stop):
            pass
    assert {p: p.read_bytes() for p in before} == before


def test_resume_that_does_not_fit_is_refused(data, tmp_path, corpus_text):
    out = tmp_path / "m.pt"
    run(replace(CONFIG, max_iters=10), data, out)
    with pytest.raises(TrainingError, match=r"model \(2x24\) differs from the options \(2x32"):
        run(replace(CONFIG, n_embd=32), data, out, resume=last_path(out))
    other = TextData.from_text(corpus_text + "~")
    with pytest.raises(TrainingError, match="vocabulary differs"):
        run(CONFIG, other, out, resume=last_path(out))


def test_resume_may_change_the_dropout(data, tmp_path):
    # Dropout regularises; it shapes no weight, so a resumed run may raise it, as it may lower the lr.
    out = tmp_path / "m.pt"
    run(replace(CONFIG, max_iters=10), data, out)
    events = run(replace(CONFIG, max_iters=20, dropout=0.4), data, out, resume=last_path(out))
    assert events[-1].step == 20
    assert load_state(last_path(out)).model_config.dropout == 0.4
    with pytest.raises(TrainingError, match="no optimizer state.*last.pt"):
        run(CONFIG, data, out, resume=out)


def test_block_too_long_and_unwritable_out_fail_before_training(data, tmp_path):
    with pytest.raises(ConfigError, match="--block-size 5000 is too long"):
        run(replace(CONFIG, block_size=5000), data, tmp_path / "m.pt")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(CheckpointError, match="cannot write checkpoint .*: .*file is a file, not a folder; choose a path in a writable folder"):
        run(CONFIG, data, blocker / "m.pt")


def test_lab_optimizer_decays_every_parameter_like_torch_defaults(data, tmp_path):
    from core.train import PRESETS

    lab = replace(PRESETS["lab"], n_embd=16, batch_size=4, block_size=16, max_iters=2, eval_interval=2,
                  eval_iters=1, device="cpu")
    out = tmp_path / "lab.pt"
    run(lab, data, out)
    groups = load_state(last_path(out)).resume["optimizer"]["param_groups"]
    assert len(groups) == 1 and groups[0]["weight_decay"] == 0.01 and tuple(groups[0]["betas"]) == (0.9, 0.999)
    assert groups[0]["lr"] == 3e-4


def test_an_overflowing_update_is_a_clear_error(data, tmp_path):
    # AdamW's first step size is lr / (1 - 0.9): 1e38 overflows fp32 before any loss can.
    with pytest.raises(TrainingError, match=r"the update overflowed at step 0 \(lr 1e\+38\): lower --lr; no checkpoint"):
        run(replace(CONFIG, lr=1e38, min_lr=1e38, warmup_iters=0), data, tmp_path / "m.pt")


@pytest.mark.parametrize("ema", [0.0, 0.9], ids=["plain", "ema"])
def test_a_resume_file_says_the_val_loss_of_its_own_weights(data, tmp_path, ema):
    """Checkpoint.val_loss: a best file's is its best val; a resume file's is its step's
    evaluation (its best_val_loss is the run's best, held by the other file), none when it
    was saved after the last evaluation or when what was evaluated was the weight average."""
    from core.checkpoint import load_checkpoint

    config = replace(CONFIG, lr=5e-2, max_iters=30, ema=ema)  # a high rate: val rises after its best
    out = tmp_path / "m.pt"
    events = run(config, data, out, stop_after=24)  # evaluations at 10 and 20; stopped at step 25
    vals = {e.step: e.val_loss for e in events if e.kind == "eval"}
    best, last = load_checkpoint(out), load_checkpoint(last_path(out))
    assert best.val_loss == best.best_val_loss == min(vals.values())
    assert last.step == 25 and last.best_val_loss == min(vals.values()) and last.val_loss is None
    run(config, data, out, resume=last_path(out))  # on to 30, evaluated there
    last = load_checkpoint(last_path(out))
    history = {h["step"]: h["val_loss"] for h in last.history}
    assert last.step == 30 and last.val_loss == (None if ema else history[30])
