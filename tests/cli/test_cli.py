"""The ``charlstm-tui`` commands, run in-process through ``main()`` under click's CliRunner.

``main()`` is what the entry point runs: it turns every bad input into one ``Error:`` line.
Expected outputs come from ``core`` directly, so these tests check the CLI's wiring
(checkpoint, block size, sampling controls), not just that it prints something.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from charlstm_tui import BUNDLED_CHECKPOINT
from charlstm_tui.cli import cli, main
from core.checkpoint import load_checkpoint, save_checkpoint
from core.data import TextData
from core.evaluate import evaluate
from core.sampling import SampleConfig, Sampler


def run(*args: object, env: dict[str, str] | None = None, input: str | None = None) -> tuple[int, str, str]:
    """Run ``charlstm-tui ARGS`` through main(); returns (exit code, stdout, stderr)."""
    with CliRunner().isolation(input=input, env=env) as (out, err, _):
        argv, sys.argv = sys.argv, ["charlstm-tui", *map(str, args)]
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        finally:
            sys.argv = argv
        return code, out.getvalue().decode(), err.getvalue().decode()


def fails(*args: object, env: dict[str, str] | None = None) -> str:
    """Assert a clean failure: non-zero exit, nothing on stdout, one ``Error:`` line. Returns it."""
    code, out, err = run(*args, env=env)
    assert code != 0
    assert out == ""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def ckpt(tiny_checkpoint):
    return load_checkpoint(tiny_checkpoint)


@pytest.fixture(scope="module")
def sampler(ckpt) -> Sampler:
    return Sampler(ckpt.build_model(), ckpt.vocab)


# -- generate ----------------------------------------------------------------------------

def test_generate_prints_the_prompt_and_the_sampled_text(tiny_checkpoint, sampler):
    code, out, err = run("generate", "-c", tiny_checkpoint, "-p", "KING:", "-n", 50, "--seed", 1)
    assert (code, err) == (0, "")
    expected = sampler.generate("KING:", SampleConfig(length=50, seed=1, temperature=0.8))
    assert out == "KING:" + expected + "\n"
    assert run("generate", "-c", tiny_checkpoint, "-p", "KING:", "-n", 50, "-s", 1, "--no-echo")[1] == expected + "\n"


def test_seed_makes_output_reproducible(tiny_checkpoint):
    args = ("generate", "-c", tiny_checkpoint, "-n", 120, "-t", 1.0)
    a, b, c = (run(*args, "--seed", s)[1] for s in (5, 5, 6))
    assert a == b and a != c
    assert run(*args)[1] != run(*args)[1]  # unseeded


def test_sampling_controls_reach_the_sampler(tiny_checkpoint, sampler):
    base = ("generate", "-c", tiny_checkpoint, "-p", "QUEEN:\n", "-n", 60, "--no-echo")
    greedy = sampler.generate("QUEEN:\n", SampleConfig(length=60, temperature=0))
    assert run(*base, "-t", 0)[1] == greedy + "\n"
    assert run(*base, "--top-k", 1, "-t", 2, "-s", 0)[1] == greedy + "\n"
    cfg = SampleConfig(length=60, seed=3, temperature=1.2, top_k=6, top_p=0.9)
    assert run(*base, "-t", 1.2, "--top-k", 6, "--top-p", 0.9, "-s", 3)[1] == sampler.generate("QUEEN:\n", cfg) + "\n"


def test_window_mode_uses_the_checkpoints_block_size(ckpt, sampler, tmp_path):
    """The window is the block size the model was trained with, read from the checkpoint."""
    ckpt4 = dataclasses.replace(ckpt, train={**ckpt.train, "config": {**ckpt.train["config"], "block_size": 4}})
    path = save_checkpoint(tmp_path / "block4.pt", ckpt4)
    cfg = SampleConfig(length=60, seed=3, temperature=1.0, mode="window", block_size=4)
    expected = sampler.generate("QUEEN:\n", cfg)
    assert expected != sampler.generate("QUEEN:\n", cfg.with_(block_size=256))
    code, out, _ = run("generate", "-c", path, "-p", "QUEEN:\n", "-n", 60, "-s", 3, "-t", 1, "--mode", "window")
    assert (code, out) == (0, "QUEEN:\n" + expected + "\n")


def test_num_samples_draws_a_batch(tiny_checkpoint, sampler):
    code, out, _ = run("generate", "-c", tiny_checkpoint, "-p", "LORD:", "-n", 30, "-s", 2, "--num-samples", 3)
    assert code == 0
    rows = sampler.generate_batch("LORD:", SampleConfig(length=30, seed=2), 3)
    assert out == "".join(f"{chr(10) if i else ''}--- sample {i + 1} ---\nLORD:{row}\n" for i, row in enumerate(rows))


def test_prompt_file_and_verbose(tiny_checkpoint, sampler, tmp_path):
    (tmp_path / "p.txt").write_text("KING:\nGood", encoding="utf-8")
    code, out, err = run("generate", "-c", tiny_checkpoint, "--prompt-file", tmp_path / "p.txt", "-n", 20, "-s", 0, "-v")
    assert code == 0
    assert out == "KING:\nGood" + sampler.generate("KING:\nGood", SampleConfig(length=20, seed=0)) + "\n"
    assert re.fullmatch(r"20 chars in [\d.]+ s: [\d,]+ chars/s \(stateful\)\n", err)


def test_drop_unknown_drops_and_says_which(tiny_checkpoint, sampler):
    code, out, err = run("generate", "-c", tiny_checkpoint, "-p", "KING@:{", "-n", 10, "-s", 0, "--drop-unknown")
    assert code == 0
    assert err == "note: dropped 2 character(s) the model does not know: '@', '{'\n"
    assert out == "KING:" + sampler.generate("KING:", SampleConfig(length=10, seed=0)) + "\n"


@pytest.mark.parametrize("command", ["generate", "score", "eval"])
def test_unknown_characters_are_said_alike_and_name_drop_unknown(command, tiny_checkpoint, corpus_text, tmp_path):
    """generate's prompt, score's file and eval's data: one message naming the characters
    and the option that drops them; with the option, one note naming what was dropped."""
    path = tmp_path / "text.txt"
    path.write_text(corpus_text[:3000] + "€ @", encoding="utf-8")
    args = {"generate": ["generate", "-p", "KING€ @", "-n", 5, "-s", 0], "score": ["score", path],
            "eval": ["eval", "--data", path]}[command]
    what = "the prompt" if command == "generate" else str(path)
    assert fails(*args, "-c", tiny_checkpoint) == (
        f"Error: {what} has 2 character(s) the model does not know: '€', '@'; "
        "remove them, or pass --drop-unknown to drop them")
    code, out, err = run(*args, "-c", tiny_checkpoint, "--drop-unknown")
    assert code == 0 and out and err == "note: dropped 2 character(s) the model does not know: '€', '@'\n"


def test_checkpoint_from_env_group_option_and_override(tiny_checkpoint, tmp_path):
    env = {"CHARLSTM_CHECKPOINT": str(tiny_checkpoint)}
    reference = run("generate", "-c", tiny_checkpoint, "-n", 20, "-s", 4)[1]
    assert run("generate", "-n", 20, "-s", 4, env=env)[1] == reference
    assert run("-c", tiny_checkpoint, "generate", "-n", 20, "-s", 4)[1] == reference  # the group's option
    missing = tmp_path / "elsewhere.pt"
    assert str(missing) in fails("generate", "-n", 5, env={"CHARLSTM_CHECKPOINT": str(missing)})
    assert run("generate", "-c", tiny_checkpoint, "-n", 20, "-s", 4, env={"CHARLSTM_CHECKPOINT": str(missing)})[1] == reference


@pytest.mark.skipif(BUNDLED_CHECKPOINT.exists(), reason="the bundled checkpoint is present")
def test_missing_bundled_checkpoint_is_a_clear_error():
    assert "checkpoint not found" in fails("generate", "-n", 5)


# -- bad input: one line, non-zero exit, no traceback --------------------------------------

@pytest.mark.parametrize("args, says", [
    (("-n", -5), "--length"), (("-n", 0), "--length"), (("-n", 10**9), "--length"), (("-n", "many"), "--length"),
    (("-t", -1), "--temperature"), (("-t", "nan"), "temperature"), (("-t", 1000), "--temperature"),
    (("--top-p", 0), "--top-p"), (("--top-p", 1.5), "--top-p"), (("--top-p", -0.2), "--top-p"),
    (("--top-k", 0), "--top-k"), (("--mode", "beam"), "--mode"), (("--num-samples", 0), "--num-samples"),
    # One range per option, core's (core.options): the app's panel takes the same values.
    (("-t", 2.5), "temperature: 2.5 is out of range; use 0 to 2"), (("-s", 2**64), "seed: 18446744073709551616 is out"),
    (("-s", -1), "seed: -1 is out of range"), (("-n", "1,000,001"), "length: 1,000,001 is out of range"),
    (("-p", "KING@ {"), "'@', '{'"), (("-p", "x", "--prompt-file", "README.md"), "cannot be used together"),
    (("--prompt-file", "no-such-prompt.txt"), "no-such-prompt.txt"), (("--bogus",), "--bogus"),
], ids=lambda v: v if isinstance(v, str) else " ".join(map(str, v)))
def test_generate_bad_input(tiny_checkpoint, args, says):
    assert says in fails("generate", "-c", tiny_checkpoint, *args)


def test_bad_checkpoints(tmp_path, tiny_checkpoint):
    assert f"'{tmp_path / 'nope.pt'}' does not exist" in fails("generate", "-c", tmp_path / "nope.pt")
    assert "is a directory" in fails("info", "-c", tmp_path)
    # The group's option is the app's; given to a subcommand, core reports the missing file.
    assert "checkpoint not found" in fails("-c", tmp_path / "nope.pt", "info")
    (tmp_path / "garbage.pt").write_bytes(b"\x00garbage" * 100)
    assert "is not a checkpoint at all" in fails("generate", "-c", tmp_path / "garbage.pt")
    data = Path(tiny_checkpoint).read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    assert "truncated or corrupt" in fails("eval", "-c", tmp_path / "cut.pt", "--data", tmp_path / "garbage.pt")


def test_prompt_file_not_utf8(tiny_checkpoint, tmp_path):
    (tmp_path / "p.txt").write_bytes(b"KING \xe9")
    assert "not UTF-8" in fails("generate", "-c", tiny_checkpoint, "--prompt-file", tmp_path / "p.txt")


# -- info and eval -----------------------------------------------------------------------------

def test_info_describes_the_checkpoint(tiny_checkpoint, ckpt):
    code, out, _ = run("info", "-c", tiny_checkpoint)
    assert code == 0
    assert "LSTM 1 x 32" in out and f"vocab {ckpt.vocab.size}" in out
    assert f"parameters   {sum(v.numel() for v in ckpt.state_dict.values()):,}" in out
    assert repr("".join(ckpt.vocab.chars)) in out
    assert f"training     {ckpt.step:,} steps" in out and ckpt.step == 60
    nats, bits = map(float, re.search(r"best val\s+([\d.]+) nats/char, ([\d.]+) bits/char", out).groups())
    assert nats == pytest.approx(ckpt.best_val_loss, abs=1e-4)
    assert bits == pytest.approx(ckpt.best_val_loss / math.log(2), abs=1e-4)


@pytest.mark.parametrize("extra, split, block, context", [
    ((), "val", None, "window"), (("--split", "all"), "all", None, "window"), (("--block-size", 8), "val", 8, "window"),
    (("--context", "stream"), "val", None, "stream")])
def test_eval_reports_loss_bits_and_perplexity(tiny_checkpoint, ckpt, corpus_file, corpus_text, block, extra, split,
                                               context):
    code, out, _ = run("eval", "-c", tiny_checkpoint, "--data", corpus_file, *extra)
    assert code == 0
    assert ("state carried" in out) == (context == "stream")
    loss, bits, ppl = map(float, re.search(
        r"loss ([\d.]+) nats/char, ([\d.]+) bits/char, perplexity ([\d.]+)", out).groups())
    report = evaluate(ckpt.build_model(), TextData.from_text(corpus_text, ckpt.vocab), split,
                      block or ckpt.train["config"]["block_size"], context=context)
    assert loss == pytest.approx(report.loss, abs=1e-4)
    assert bits == pytest.approx(report.loss / math.log(2), abs=1e-4)
    assert ppl == pytest.approx(math.exp(report.loss), abs=2e-3)


def test_eval_bad_data(tiny_checkpoint, tmp_path):
    def err(path: Path) -> str:
        return fails("eval", "-c", tiny_checkpoint, "--data", path)

    assert "not found" in err(tmp_path / "missing.txt")
    assert "directory" in err(tmp_path)
    (tmp_path / "latin1.txt").write_bytes("KING: héllo".encode("latin-1"))
    assert "at byte 7" in err(tmp_path / "latin1.txt")
    (tmp_path / "empty.txt").write_text("")
    assert "empty" in err(tmp_path / "empty.txt")
    (tmp_path / "alien.txt").write_text("KING: 0123456789 @@@")
    assert "--drop-unknown" in err(tmp_path / "alien.txt")
    (tmp_path / "tiny.txt").write_text("KING:")
    assert "too few to evaluate" in err(tmp_path / "tiny.txt")
    assert "--data" in fails("eval", "-c", tiny_checkpoint)


def test_help_through_clirunner_invoke():
    result = CliRunner().invoke(cli, ["generate", "--help"])
    assert result.exit_code == 0
    for option in ("--prompt-file", "--top-p", "--mode", "--num-samples", "CHARLSTM_CHECKPOINT"):
        assert option in result.output
