"""`charlstm-tui train` in-process: options, presets, output forms, resume and bad input."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

from core.train import PRESETS, TrainConfig, last_path, metrics_path
from train_helpers import TINY, curve, invoke, load_state

ALL_OPTIONS = {  # every option of the issue, each set away from every preset's value
    "--n-embd": 20, "--n-layers": 2, "--dropout": 0.15, "--batch-size": 3, "--block-size": 12, "--lr": 4e-3,
    "--min-lr": 1e-4, "--warmup-iters": 2, "--weight-decay": 0.05, "--grad-clip": 0.5, "--max-iters": 6,
    "--eval-interval": 3, "--eval-iters": 2, "--device": "cpu", "--time-limit": 5.0, "--seed": 42, "--ema": 0.9,
    "--weight-drop": 0.2, "--embed-drop": 0.05,
}


def test_help_names_every_option_and_the_lab_size():
    result = invoke("train", "--help")
    assert result.exit_code == 0
    for option in [*ALL_OPTIONS, "--data", "--out", "--preset", "--amp / --no-amp", "--resume"]:
        assert option in result.output
    flat = " ".join(result.output.split())
    assert "lab hides its size" in flat and "n_embd 512" in flat and "lab|default" not in flat


def test_every_option_reaches_the_recipe(corpus_file, workdir):
    args = [x for k, v in ALL_OPTIONS.items() for x in (k, str(v))]
    result = invoke("train", "--data", corpus_file, "--out", "run/m.pt", "--preset", "lab", "--no-amp", *args)
    assert result.exit_code == 0, result.output
    config = TrainConfig.from_dict(load_state(last_path(Path("run/m.pt"))).train["config"])
    expected = {k[2:].replace("-", "_"): v for k, v in ALL_OPTIONS.items()}
    assert config == TrainConfig(preset="lab", amp=False, **expected)
    first = result.stdout.splitlines()[0]
    assert "on plays:" in first and "batch 3 x block 12, 6 iters, time limit 5 min" in first
    assert re.search(r"; cpu, 1 thread( \(a model this small gains nothing from more\))?, fp32 \(--no-amp\); "
                     r"torch's LSTM \(too small a model to gain from the table LSTM\)$", first)


def test_lab_preset_prints_the_labs_lines_with_val_added(corpus_file, workdir):
    result = invoke("train", "--data", corpus_file, "--preset", "lab", *TINY, "--max-iters", "4", "--eval-interval", "2")
    assert result.exit_code == 0, result.output
    iters = [line for line in result.stdout.splitlines() if line.startswith("Iter")]
    assert len(iters) == 3
    assert re.fullmatch(r"Iter 0: train loss \d+\.\d{4}", iters[0])  # the first batch's loss, as the lab prints
    assert abs(float(iters[0].split()[-1]) - math.log(48)) < 0.5  # an untrained model: about ln(vocab)
    for line, step in zip(iters[1:], (2, 4)):
        assert re.fullmatch(rf"Iter {step}: train loss \d+\.\d{{4}}, val loss \d+\.\d{{4}}", line)
    config = TrainConfig.from_dict(load_state(Path("plays.pt")).train["config"])  # default --out: ./<data name>.pt
    lab = PRESETS["lab"]
    assert (config.n_layers, config.dropout, config.lr, config.min_lr, config.warmup_iters, config.grad_clip) == (
        lab.n_layers, lab.dropout, lab.lr, lab.lr, 0, 0.0)
    assert (lab.n_embd, lab.batch_size, lab.block_size, lab.max_iters, lab.eval_interval, lab.eval_iters) == (
        512, 128, 256, 10_000, 500, 200)


def test_default_preset_logs_plain_lines_when_not_a_tty(corpus_file, workdir):
    result = invoke("train", "--data", corpus_file, "--out", "m.pt", *TINY, "--max-iters", "6", "--eval-interval", "3")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("training 1x16 LSTM (default preset) on plays: ")
    assert re.fullmatch(r"step +1/6  loss \d\.\d{4}  lr \S+  [\d,]+ tok/s  elapsed 0:\d\d  eta 0:\d\d", lines[1])
    evals = [line for line in lines if line.startswith("eval")]
    assert len(evals) == 2 and re.fullmatch(r"eval +3: train \d\.\d{4}  val \d\.\d{4}  best \d\.\d{4} \*", evals[0])
    assert re.fullmatch(r"finished: 6 steps in 0:\d\d, best val \d\.\d{4}; saved m\.pt", lines[-1])
    assert "\x1b" not in result.output  # no terminal control codes in logs
    config = TrainConfig.from_dict(load_state(Path("m.pt")).train["config"])
    assert (config.dropout, config.weight_decay, config.warmup_iters, config.grad_clip) == (0.3, 0.1, 100, 1.0)
    assert config.min_lr < config.lr  # cosine decay
    history = load_state(last_path(Path("m.pt"))).history
    assert [json.loads(x) for x in metrics_path(Path("m.pt")).read_text().splitlines()] == history


def test_quick_preset_adapts_to_the_text_and_ends_by_its_time_limit(corpus_file, workdir):
    result = invoke("train", "--data", corpus_file, "--out", "q.pt", "--preset", "quick", "--time-limit", "0.02",
                    "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("quick preset for 15,651 chars: 1x64 LSTM, batch 16 x block 32, dropout 0.1, weight drop 0.3, 0.02 min, at most 688 steps\n")
    # A small text is read at most 25 times (688 steps, about a second here); a busy machine hits 1.2 s first.
    end = re.search(r"^(finished|time limit): ([\d,]+) steps in 0:0[012], best val \d\.\d{4}; saved q\.pt$", result.stdout, re.M)
    assert end and (end[1] == "finished") == (end[2] == "688"), result.stdout
    last = load_state(last_path(Path("q.pt")))
    assert last.history[-1]["step"] == last.step  # the last weights were evaluated
    short = invoke("train", "--data", corpus_file, "--out", "q1.pt", "--preset", "quick", "--time-limit", "0.003",
                   "--device", "cpu")
    assert short.exit_code == 0, short.output
    assert re.search(r"^time limit: [\d,]+ steps in 0:0[01], best val \d\.\d{4}; saved q1\.pt$", short.stdout, re.M)
    explicit = invoke("train", "--data", corpus_file, "--out", "q2.pt", "--preset", "quick", "--n-embd", "24",
                      "--max-iters", "2", "--device", "cpu")
    assert "1x24 LSTM, batch 16 x block 32" in explicit.stdout


def test_resume_continues_the_run_with_its_recipe(corpus_file, workdir):
    assert invoke("train", "--data", corpus_file, "--out", "m.pt", *TINY, "--max-iters", "4", "--eval-interval", "2",
                  "--dropout", "0.1").exit_code == 0
    result = invoke("train", "--data", corpus_file, "--resume", "m.last.pt", "--max-iters", "8")
    assert result.exit_code == 0, result.output
    assert "resuming at step 4" in result.stdout and "finished: 8 steps" in result.stdout
    last = load_state(Path("m.last.pt"))  # --out defaults to the resumed run's
    assert [h["step"] for h in last.history] == [2, 4, 6, 8] and last.model_config.dropout == 0.1


@pytest.fixture
def trained(corpus_file, workdir) -> Path:
    assert invoke("train", "--data", corpus_file, "--out", "m.pt", *TINY, "--max-iters", "2",
                  "--eval-interval", "2").exit_code == 0
    return Path("m.pt")


def error_line(result) -> str:
    assert result.exit_code != 0 and "Traceback" not in result.output
    return result.stderr.strip().splitlines()[-1]


def test_resume_with_another_vocabulary_or_shape_is_refused(trained, corpus_file, corpus_text):
    other = Path("other.txt")
    other.write_text(corpus_text + "~\u00e9")
    line = error_line(invoke("train", "--data", other, "--resume", "m.last.pt"))
    assert line == (f"Error: --resume m.last.pt: the checkpoint's vocabulary lacks 2 character(s) of {other} "
                    "('~', 'é'); resume with the text it was trained on, or train afresh without --resume")
    line = error_line(invoke("train", "--data", corpus_file, "--resume", "m.last.pt", "--n-embd", "32"))
    assert line == ("Error: --resume: the checkpoint's model (1x16) differs from the options (1x32); "
                    "drop the model options or match them")
    line = error_line(invoke("train", "--data", corpus_file, "--resume", "m.pt"))
    assert line.startswith("Error: this checkpoint has no optimizer state; resume from the '.last.pt' file")
    line = error_line(invoke("train", "--data", corpus_file, "--resume", "m.last.pt", "--preset", "lab"))
    assert line.startswith("Error: --preset lab differs from the resumed run's preset default; drop --preset")


def test_nan_loss_is_one_error_and_keeps_the_checkpoints(trained, corpus_file):
    before = {p: p.read_bytes() for p in (trained, last_path(trained), metrics_path(trained))}
    result = invoke("train", "--data", corpus_file, "--resume", "m.last.pt", "--max-iters", "20",
                    "--lr", "1e30", "--min-lr", "1e30", "--warmup-iters", "0", "--grad-clip", "0")
    assert re.fullmatch(r"Error: the loss became (nan|inf) at step \d+: lower --lr or set --grad-clip; "
                        r"this run saved nothing: m\.pt and m\.last\.pt are as they were", error_line(result))
    assert {p: p.read_bytes() for p in before} == before


def test_unwritable_out_fails_before_training(corpus_file, workdir):
    Path("afile").write_text("a file, not a folder")
    result = invoke("train", "--data", corpus_file, "--out", "afile/m.pt", *TINY)
    assert error_line(result) == ("Error: cannot write checkpoint afile/m.pt: afile is a file, not a folder; "
                                  "choose a path in a writable folder")
    assert "step" not in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--data", "missing.txt"], "Error: data file not found: missing.txt"),
    (["--data", "{corpus}", "--resume", "nope.last.pt"], "Error: Invalid value for '--resume': File 'nope.last.pt' does not exist"),
    (["--data", "{corpus}", "--block-size", "4000"], "Error: --block-size 4000 is too long for this text"),
    (["--data", "{corpus}", "--min-lr", "1", "--lr", "0.1"], "Error: need 0 < --lr and 0 <= --min-lr <= --lr"),
    (["--data", "{corpus}", "--dropout", "1"], "Error: Invalid value for '--dropout'"),
    (["--data", "{corpus}", "--ema", "1"], "Error: Invalid value for '--ema'"),
    pytest.param(["--data", "{corpus}", "--device", "cuda"], "Error: --device cuda asked for, but torch sees no CUDA GPU",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")),
])
def test_bad_input_is_one_error_line(corpus_file, workdir, args, message):
    args = [a.replace("{corpus}", str(corpus_file)) for a in args]
    result = invoke("train", *args, "--max-iters", "1")
    assert error_line(result).startswith(message)


def test_init_from_starts_a_new_run_from_a_checkpoints_weights(corpus_file, workdir):
    assert invoke("train", "--data", corpus_file, "--out", "base.pt", *TINY, "--max-iters", "60",
                  "--eval-interval", "60", "--lr", "1e-2", "--warmup-iters", "0").exit_code == 0
    base = load_state(Path("base.pt"))
    result = invoke("train", "--data", corpus_file, "--out", "tuned.pt", "--init-from", "base.pt",
                    "--n-layers", "1", "--batch-size", "4", "--block-size", "16", "--eval-iters", "1",
                    "--device", "cpu", "--max-iters", "2", "--eval-interval", "2", "--weight-drop", "0.3")
    assert result.exit_code == 0, result.output
    tuned = load_state(Path("tuned.pt"))
    assert tuned.model_config.n_embd == 16  # the size came with the weights, not from the preset's 512
    assert tuned.step == 2 and [h["step"] for h in tuned.history] == [2]  # a new run: its own steps and history
    assert tuned.train["init_from"] == "base.pt" and tuned.model_config.weight_drop == 0.3
    assert abs(tuned.best_val_loss - base.best_val_loss) < 0.3  # it started where the base ended, not from scratch
    assert invoke("train", "--data", corpus_file, "--out", "fresh.pt", *TINY, "--max-iters", "2",
                  "--eval-interval", "2").exit_code == 0
    assert load_state(Path("fresh.pt")).best_val_loss > base.best_val_loss + 0.5


def test_init_from_refuses_what_does_not_fit(corpus_file, workdir):
    assert invoke("train", "--data", corpus_file, "--out", "base.pt", *TINY, "--max-iters", "2",
                  "--eval-interval", "2").exit_code == 0
    Path("other.txt").write_text(Path(corpus_file).read_text() + "~€")
    cases = {
        ("--data", "other.txt"): "Error: --init-from base.pt: the checkpoint's vocabulary lacks 2 character(s)",
        ("--data", corpus_file, "--n-embd", "24"): "Error: --init-from: the checkpoint's model (1x16) differs from the options (1x24)",
        ("--data", corpus_file, "--resume", "base.last.pt"): "Error: --resume continues a run and --init-from starts a new one",
        ("--data", corpus_file, "--out", "base.pt"): "is the same file as --init-from",
    }
    for args, message in cases.items():
        result = invoke("train", "--init-from", "base.pt", "--max-iters", "2", "--device", "cpu",
                        *(args if "--out" in args else (*args, "--out", "t.pt")))
        assert result.exit_code != 0 and message in result.output, (args, result.output)
