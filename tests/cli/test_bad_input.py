"""What the CLI refuses, as a table: every row is a command a user (or an attacker) might
type, and the one line it answers. Each must exit non-zero with a single ``Error:`` line
naming the problem, print nothing on stdout, write no file, and never hang or show a
traceback. Rows run in-process through ``main()``, as the entry point does; the rows
about stdout itself run the installed ``charlstm-tui`` in a real process.

Placeholders: {text} a good text, {ckpt} a good checkpoint, {last} its resume file,
{fifo} a named pipe nobody writes, {dir} a folder, {missing} a path that is not there,
{loop} a symlink to itself, {huge} a sparse 1 TiB file, {ckpt:FIELD} the good checkpoint
with one field of its metadata made wrong (see ``BAD_FIELDS``).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from charlstm_tui.cli import main
from test_cli import run

EXE = Path(sys.executable).parent / "charlstm-tui"

# One wrong field each, as a user's editing (or a hostile file) might leave it.
BAD_FIELDS = {
    "history": lambda p: p["train"].update(history=5),
    "step": lambda p: p["train"].update(step="abc"),
    "config": lambda p: p["train"].update(config=[1, 2]),
    "block": lambda p: p["train"]["config"].update(block_size=0),
    "n_embd": lambda p: p["model_config"].update(n_embd="wide"),
    "shape": lambda p: p["model_config"].update(n_embd=64),
    "nan": lambda p: p["state_dict"]["fc.bias"].fill_(math.nan),
    "rng": lambda p: p["resume"].update(rng="none"),
}

NOT_REGULAR = [  # (placeholder, what core says, what click says first where the option checks existence)
    ("{fifo}", "is a named pipe (FIFO), not a regular file", None),
    ("/dev/zero", "is a character device, not a regular file", None),
    ("{dir}", "is a directory", "is a directory"),
    ("{loop}", "Too many levels of symbolic links", "does not exist"),
    ("{huge}", "is 1.1 TB, too large: reading it needs about", None),
]

READERS = [  # every way a command reads a file the user names: (label, args before the path, click checks it)
    ("train --data", ["train", "-o", "{dir}/m.pt", "--data"], False),
    ("eval --data", ["eval", "-c", "{ckpt}", "--data"], False),
    ("score FILE", ["score", "-c", "{ckpt}"], False),
    ("generate --prompt-file", ["generate", "-c", "{ckpt}", "--prompt-file"], True),
    ("info --checkpoint", ["info", "-c"], True),
    ("generate --checkpoint", ["generate", "-c"], True),
    ("train --resume", ["train", "-d", "{text}", "-o", "{dir}/m.pt", "--resume"], True),
]

CASES = [
    # -- inputs that are not a regular file, for every command that reads one ------------------
    *[(f"{label} {path}", [*args, path], (clicks and click_says) or says) for label, args, clicks in READERS
      for path, says, click_says in NOT_REGULAR],
    ("score: not found names no option it lacks", ["score", "-c", "{ckpt}", "{missing}"],
     "text file not found: {missing}; check the path"),
    # -- where train may write --------------------------------------------------------------------
    ("train -o a FIFO", ["train", "-d", "{text}", "-o", "{fifo}"], "is a named pipe (FIFO); only a regular file"),
    ("train -o the data", ["train", "-d", "{text}", "-o", "{text}"], "is the same file as --data"),
    ("train -o a hard link to the data", ["train", "-d", "{text}", "-o", "{dir}/hard.pt"], "is the same file as --data"),
    ("train -o a symlink to the data", ["train", "-d", "{text}", "-o", "{dir}/link.pt"], "is a symbolic link"),
    ("train -o the resume file", ["train", "-d", "{text}", "--resume", "{last}", "-o", "{last}", "--max-iters", "99"],
     "is the same file as --resume"),
    ("train -o ''", ["train", "-d", "{text}", "-o", ""], "is not a file name"),
    ("train -o a text that is no checkpoint", ["train", "-d", "{text}", "-o", "{dir}/text.pt"],
     "text.pt exists and is not a checkpoint written here; pass another path, or move that file away first"),
    ("train -o a folder", ["train", "-d", "{text}", "-o", "{dir}"], "is a directory"),
    ("train -o under a file", ["train", "-d", "{text}", "-o", "{text}/m.pt"], "is a file, not a folder"),
    ("train --resume, --max-iters reached", ["train", "-d", "{text}", "-o", "{dir}/n.pt", "--resume", "{last}",
                                             "--max-iters", "60"], "leaves nothing to train"),
    # -- numbers ---------------------------------------------------------------------------------
    ("generate --seed 2^64", ["generate", "-c", "{ckpt}", "--seed", str(2**64)], "--seed"),
    ("generate --seed -1", ["generate", "-c", "{ckpt}", "--seed", "-1"], "--seed"),
    ("train --seed 10^23", ["train", "-d", "{text}", "--seed", "99999999999999999999999"], "--seed"),
    ("train --lr inf", ["train", "-d", "{text}", "-o", "{dir}/m.pt", "--lr", "inf"], "--lr must be a finite number"),
    ("train --lr nan", ["train", "-d", "{text}", "-o", "{dir}/m.pt", "--lr", "nan"], "--lr must be a finite number"),
    ("train --time-limit inf", ["train", "-d", "{text}", "-o", "{dir}/m.pt", "--time-limit", "inf"],
     "--time-limit must be a finite number"),
    ("train --n-embd 1000000", ["train", "-d", "{text}", "-o", "{dir}/m.pt", "--n-embd", "1000000"],
     "needs about 320.7 TB of memory"),
    ("train --n-layers 10^8", ["train", "-d", "{text}", "-o", "{dir}/m.pt", "--n-layers", "100000000"],
     "use smaller --n-embd, --n-layers, --batch-size or --block-size"),
    ("train --batch-size 10^10", ["train", "-d", "{text}", "-o", "{dir}/m.pt", "--batch-size", "10000000000"],
     "on batches of 10,000,000,000 x 256 characters"),
    ("train --preset quick on 10 chars", ["train", "-d", "{dir}/ten.txt", "-o", "{dir}/m.pt", "--preset", "quick"],
     "the text is too short to train on"),
    # -- checkpoints that are no checkpoint, or hold a wrong field --------------------------------
    ("a text file renamed .pt", ["info", "-c", "{dir}/text.pt"], "is not a checkpoint at all: it is a text file"),
    ("a checkpoint that asks to run code", ["info", "-c", "{dir}/evil.pt"],
     "holds code or objects that are not allowed in a checkpoint (posix.system); it was not loaded and nothing"),
    *[(f"{cmd} on train.history = 5", [*args, "{ckpt:history}"], "train.history must be a list, got 5")
      for cmd, args in [("info", ["info", "-c"]), ("generate", ["generate", "-c"]),
                        ("eval", ["eval", "-d", "{text}", "-c"])]],
    ("info on train.step = 'abc'", ["info", "-c", "{ckpt:step}"], "train.step must be an integer >= 0, got 'abc'"),
    ("generate on train.config = [1, 2]", ["generate", "-c", "{ckpt:config}"], "train.config must be a dict"),
    ("eval on block_size = 0", ["eval", "-d", "{text}", "-c", "{ckpt:block}"],
     "train.config.block_size must be an integer >= 1, got 0"),
    ("info on n_embd = 'wide'", ["info", "-c", "{ckpt:n_embd}"], "model_config.n_embd must be an integer, got 'wide'"),
    ("info on weights that do not fit", ["info", "-c", "{ckpt:shape}"],
     "has weights that do not fit its config (1x64, vocab 48): token_embedding.weight is (48, 32)"),
    ("info on NaN weights", ["info", "-c", "{ckpt:nan}"], "holds non-finite weights (NaN or inf) in fc.bias"),
    ("train --resume on resume.rng = 'none'", ["train", "-d", "{text}", "-o", "{dir}/r.pt", "--resume", "{ckpt:rng}"],
     "resume.rng must be a list, got 'none'"),
]


@pytest.fixture
def world(tmp_path: Path, tiny_checkpoint: Path, corpus_file: Path) -> dict[str, str]:
    """The files the placeholders name, made fresh for each row."""
    d = tmp_path / "d"
    d.mkdir()
    text = d / "plays.txt"
    shutil.copy(corpus_file, text)
    os.mkfifo(d / "fifo")
    (d / "loop").symlink_to(d / "loop")
    with open(d / "huge", "wb") as f:
        f.truncate(2**40)
    os.link(text, d / "hard.pt")
    (d / "link.pt").symlink_to(text)
    (d / "ten.txt").write_text("abcdefghij")
    (d / "text.pt").write_text("just some text\n" * 20)
    (d / "evil.pt").write_bytes(b"\x80\x02cposix\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.")
    last = tiny_checkpoint.with_name("tiny.last.pt")
    places = {"text": str(text), "ckpt": str(tiny_checkpoint), "last": str(d / "tiny.last.pt"), "dir": str(d),
              "fifo": str(d / "fifo"), "missing": str(d / "missing.txt"), "loop": str(d / "loop"),
              "huge": str(d / "huge")}
    shutil.copy(last, places["last"])
    for field, spoil in BAD_FIELDS.items():
        payload = torch.load(last, weights_only=True)
        spoil(payload)
        torch.save(payload, d / f"bad-{field}.pt")
        places[f"ckpt:{field}"] = str(d / f"bad-{field}.pt")
    return places


def fill(arg: str, places: dict[str, str]) -> str:
    for key, value in places.items():
        arg = arg.replace("{" + key + "}", value)
    return arg


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    """Every entry, with its type and size: a refused command leaves all of them as they were."""
    return {p.name: (os.lstat(p).st_mode, os.lstat(p).st_size) for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("args, says", [pytest.param(args, says, id=name) for name, args, says in CASES])
def test_refused_with_one_line(world, args, says, tmp_path):
    before = listing(tmp_path / "d")
    cwd = os.getcwd()
    os.chdir(tmp_path / "d")  # a default --out lands here, where it would be seen
    try:
        code, out, err = run(*(fill(a, world) for a in args))
    finally:
        os.chdir(cwd)
    assert code != 0 and out == "" and "Traceback" not in err, err
    assert len(err.splitlines()) == 1 and err.startswith("Error: ") and fill(says, world) in err, err
    assert listing(tmp_path / "d") == before


# -- stdout itself -----------------------------------------------------------------------------------

FULL = [  # (command, its args): each writes into /dev/full, the real device, which fails every write
    ("generate -n 2000", ["generate", "-c", "{ckpt}", "-n", "2000"]),
    ("info", ["info", "-c", "{ckpt}"]),
    ("score", ["score", "-c", "{ckpt}", "{text}"]),
    ("train", ["train", "-d", "{text}", "-o", "{dir}/q.pt", "--n-embd", "8", "--n-layers", "1", "--batch-size", "2",
               "--block-size", "8", "--max-iters", "2", "--device", "cpu"]),  # fails at its first line: no files left
]


@pytest.mark.parametrize("args", [pytest.param(a, id=f"{n} > /dev/full") for n, a in FULL])
def test_output_into_a_full_device_is_one_line(world, args, capsys, monkeypatch, tmp_path):
    before = listing(tmp_path / "d")
    with open("/dev/full", "w") as full:
        monkeypatch.setattr(sys, "stdout", full)
        monkeypatch.setattr(sys, "argv", ["charlstm-tui", *(fill(a, world) for a in args)])
        with pytest.raises(SystemExit) as done:
            main()
        monkeypatch.undo()  # /dev/full is closed next; nothing may flush into it after the test
    assert done.value.code == 1
    assert capsys.readouterr().err == "Error: cannot write the output: the disk is full\n"
    assert listing(tmp_path / "d") == before


def test_a_closed_stdout_is_one_line(world):
    """``>&-`` in a real shell: fd 1 is closed before the program starts."""
    command = f"exec '{EXE}' generate -c '{world['ckpt']}' -n 20 >&-"
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert (done.returncode, done.stderr) == (1, "Error: cannot write the output: standard output is closed\n")
