"""Real processes: the installed ``charlstm-tui`` script and ``python -m charlstm_tui``,
writing into pipes and a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.checkpoint import load_checkpoint
from core.sampling import SampleConfig, Sampler

EXE = Path(sys.executable).parent / "charlstm-tui"
COMMANDS = {"entry point": [str(EXE)], "python -m": [sys.executable, "-m", "charlstm_tui"]}


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k != "CHARLSTM_CHECKPOINT"}
    e["OMP_NUM_THREADS"] = "1"  # tiny model; two threads only contend on a busy machine
    return e


def run(cmd: list[str], *args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, env=env(), timeout=timeout)


def test_the_entry_point_is_installed_next_to_python():
    assert EXE.is_file() and os.access(EXE, os.X_OK)


@pytest.mark.parametrize("how", COMMANDS)
def test_generate_into_a_pipe(how, tiny_checkpoint):
    ckpt = load_checkpoint(tiny_checkpoint)
    expected = Sampler(ckpt.build_model(), ckpt.vocab).generate("KING:", SampleConfig(length=300, seed=0))
    done = run(COMMANDS[how], "generate", "-c", tiny_checkpoint, "-p", "KING:", "-n", 300, "-s", 0)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "KING:" + expected + "\n"


@pytest.mark.parametrize("args, says", [
    (("generate", "-c", "/no/such/model.pt"), "'/no/such/model.pt' does not exist"),
    (("generate", "--temperature", "-1"), "--temperature"),
    (("generate", "--top-p", "1.5"), "--top-p"),
    (("eval", "--data", "/no/such/text.txt", "-c", "{ckpt}"), "data file not found"),
], ids=["missing-checkpoint", "temperature", "top-p", "missing-data"])
def test_bad_input_is_one_error_line(tiny_checkpoint, args, says):
    _one_error_line(run(COMMANDS["entry point"], *(a.format(ckpt=tiny_checkpoint) for a in args)), says)


def test_bad_input_through_python_m():
    _one_error_line(run(COMMANDS["python -m"], "info", "-c", "/no/such/model.pt"), "does not exist")


def _one_error_line(done: subprocess.CompletedProcess[str], says: str) -> None:
    assert done.returncode != 0 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and says in lines[0], done.stderr


def _read_until(fd: int, n: int, proc: subprocess.Popen, deadline: float = 60) -> bytes:
    """Read from ``fd`` until ``n`` bytes arrived (or the process ended / time ran out)."""
    got = b""
    end = time.monotonic() + deadline
    while len(got) < n and time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # a pty reports EIO once the child has gone
                break
            if not chunk:
                break
            got += chunk
        elif proc.poll() is not None:
            break
    return got


def test_output_streams_to_a_terminal_while_sampling(tiny_checkpoint):
    """On a TTY each character is flushed as it is sampled: text arrives long before the end."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([str(EXE), "generate", "-c", str(tiny_checkpoint), "-n", "1000000", "-p", "KING:"],
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE, env=env())
    os.close(slave)
    try:
        got = _read_until(master, 40, proc)
        assert len(got) >= 40 and got.startswith(b"KING:")
        assert proc.poll() is None  # a million characters: still sampling
    finally:
        proc.kill()
        proc.wait(timeout=30)
        os.close(master)
        proc.stderr.close()


def test_eval_shows_progress_on_a_terminal_and_only_there(tiny_checkpoint, corpus_file):
    """stderr on a pseudo-terminal gets a progress line, cleared at the end; stdout, a pipe,
    gets only the result."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([str(EXE), "eval", "-c", str(tiny_checkpoint), "-d", str(corpus_file), "--split", "all",
                             "--block-size", "8"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
                            env=env())
    os.close(slave)
    try:
        shown = _read_until(master, 10**6, proc)  # until the process ends and the pty closes
        out = proc.stdout.read().decode()
        proc.wait(timeout=60)
    finally:
        os.close(master)
        proc.stdout.close()
    assert proc.returncode == 0 and out.startswith("all: loss ")
    assert re.search(rb"\reval: +\d+% \([\d,]+ of [\d,]+ chars\)", shown) and shown.endswith(b"\r\x1b[K")
    assert b"100% (" in shown


def test_eval_adapt_shows_how_far_it_read_on_a_terminal(tiny_checkpoint, corpus_file):
    """The README says so: the slow --adapt reading shows its progress on a terminal's stderr."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([str(EXE), "eval", "-c", str(tiny_checkpoint), "-d", str(corpus_file), "--adapt"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=env())
    os.close(slave)
    try:
        shown = _read_until(master, 10**6, proc)
        out = proc.stdout.read().decode()
        proc.wait(timeout=60)
    finally:
        os.close(master)
        proc.stdout.close()
    assert proc.returncode == 0 and "adapted as read" in out
    assert re.search(rb"\radapting: [\d,]+ / [\d,]+ chars", shown) and shown.endswith(b"\r\x1b[K")


def test_closing_the_pipe_early_exits_cleanly(tiny_checkpoint):
    """What ``| head -c 100`` does: read a little, close the pipe; exit 0, no traceback."""
    proc = subprocess.Popen([str(EXE), "generate", "-c", str(tiny_checkpoint), "-n", "1000000", "-s", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
    got = _read_until(proc.stdout.fileno(), 100, proc)
    assert len(got) >= 100
    assert proc.poll() is None  # streaming in blocks: text arrived long before the end
    proc.stdout.close()
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0
    assert err == b""


def test_head_in_a_real_shell_pipeline(tiny_checkpoint):
    script = f'"{EXE}" generate -c "{tiny_checkpoint}" -n 200000 -s 1 | head -c 100; echo; echo "status=${{PIPESTATUS[0]}}"'
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env(), timeout=120)
    out = done.stdout.splitlines()
    assert out[-1] == "status=0"
    assert len("\n".join(out[:-1])) >= 100
    assert done.stderr == ""


PROBE = """
import sys
sys.argv = ["charlstm-tui", *sys.argv[1:]]
from charlstm_tui.cli import main
try:
    main()
except SystemExit:
    pass
print("torch imported" if "torch" in sys.modules else "torch not imported", file=sys.stderr)
"""


@pytest.mark.parametrize("args", [["--help"], ["generate", "--help"], ["eval", "--help"], ["--version"],
                                  ["generate", "--temperature", "-1"], ["generate", "--top-p", "0"],
                                  ["generate", "-c", "/no/such/model.pt"], ["eval", "-c", "/no/such.pt", "--data", "x"],
                                  ["eval", "--data", "/no/such.txt"], ["score", "/no/such.txt"]],
                         ids=" ".join)
def test_help_and_bad_options_do_not_import_torch(args):
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env(), timeout=60)
    assert done.stderr.splitlines()[-1] == "torch not imported", done.stderr


def test_the_torch_probe_notices_torch(tiny_checkpoint):
    """The control for the test above: a command that loads a model is seen importing torch."""
    done = subprocess.run([sys.executable, "-c", PROBE, "info", "-c", str(tiny_checkpoint)],
                          capture_output=True, text=True, env=env(), timeout=120)
    assert done.stderr.splitlines()[-1] == "torch imported"


def test_help_of_the_real_entry_point_in_importtime():
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "charlstm_tui", "--help"],
                          capture_output=True, text=True, env=env(), timeout=60)
    assert done.returncode == 0 and "Usage: charlstm-tui" in done.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "charlstm_tui.cli" in imported and "click" in imported
    assert not {name for name in imported if name == "torch" or name.startswith("torch.") or name == "textual"}
