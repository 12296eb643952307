"""What `charlstm-tui train` may write: its own three files, and nothing else, ever.

Each case is an attack or an accident from a user's report: a FIFO or a symlink as
--out, --out naming the training text or the resume file, symlinks planted where
temporaries used to go, two runs on one --out, a killed save's leftovers, and paths
that only fail after the run (''), each checked before the first step.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from core.train import last_path
from train_helpers import TINY, cli_command, invoke, load_state, subprocess_env

RUN = [*TINY, "--max-iters", "4", "--eval-interval", "4"]


def refused(*args: str | Path) -> str:
    """A train that must fail before its first step: one Error line, no step printed."""
    result = invoke("train", *RUN, *args)  # args last: they win over RUN's
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert not [line for line in result.stdout.splitlines() if line.startswith(("step", "eval"))]
    return result.stderr.strip().splitlines()[-1]


def tree(folder: Path) -> dict[str, bytes | str]:
    """Every entry of a folder: a file's bytes, else what it is."""
    out: dict[str, bytes | str] = {}
    for p in sorted(folder.iterdir()):
        st = os.lstat(p)
        out[p.name] = p.read_bytes() if stat.S_ISREG(st.st_mode) else f"mode {stat.S_IFMT(st.st_mode):o}"
    return out


def test_a_fifo_or_a_symlink_as_out_is_left_alone(corpus_file, workdir):
    os.mkfifo("f.pt")
    assert refused("-d", corpus_file, "-o", "f.pt") == (
        "Error: checkpoint f.pt is a named pipe (FIFO); only a regular file may be replaced: choose another path")
    assert stat.S_ISFIFO(os.lstat("f.pt").st_mode)
    Path("target.pt").write_bytes(b"someone's file")
    Path("link.pt").symlink_to("target.pt")
    assert refused("-d", corpus_file, "-o", "link.pt").startswith(
        "Error: checkpoint link.pt is a symbolic link (to target.pt)")
    assert Path("link.pt").is_symlink() and Path("target.pt").read_bytes() == b"someone's file"


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_a_device_node_as_out_is_never_replaced(corpus_file, workdir):
    os.mknod("null.pt", 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # what `-o /dev/null` meant, in a scratch folder
    assert "is a character device" in refused("-d", corpus_file, "-o", "null.pt")
    assert stat.S_ISCHR(os.lstat("null.pt").st_mode)


def test_out_may_not_be_the_data_or_the_resume_file_by_any_name(corpus_file, workdir):
    data = Path("d.txt")
    data.write_bytes(corpus_file.read_bytes())
    os.link(data, "hardlink.pt")
    before = tree(workdir)
    for out in ("d.txt", "hardlink.pt", "./d.txt"):
        assert "is the same file as --data d.txt: writing it would destroy the --data file" in refused(
            "-d", data, "-o", out)
    assert tree(workdir) == before
    assert invoke("train", "-d", data, "-o", "m.pt", *RUN).exit_code == 0
    before = tree(workdir)
    assert "checkpoint m.last.pt is the same file as --resume m.last.pt" in refused(
        "-d", data, "--resume", "m.last.pt", "-o", "m.last.pt", "--max-iters", "8")
    assert tree(workdir) == before


def test_symlinks_planted_beside_out_are_never_written_through(corpus_file, workdir):
    Path("s").mkdir()
    for victim in ("victim1", "victim2", "victim3"):
        Path(victim).write_text(f"{victim} is precious")
    # The names earlier versions used for their probe and temporary files.
    Path("s/.m.pt.probe").symlink_to(Path("victim1").resolve())
    Path("s/.m.metrics.jsonl.tmp").symlink_to(Path("victim2").resolve())
    result = invoke("train", "-d", corpus_file, "-o", "s/m.pt", *RUN)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in Path("s").iterdir()) == [".m.metrics.jsonl.tmp", ".m.pt.probe", "m.last.pt",
                                                           "m.metrics.jsonl", "m.pt"]
    # The lock file's name is known, so a link there is refused, not written through.
    Path("s/.m.pt.lock").symlink_to(Path("victim3").resolve())
    assert "at its lock file .m.pt.lock" in refused("-d", corpus_file, "-o", "s/m.pt")
    for victim in ("victim1", "victim2", "victim3"):
        assert Path(victim).read_text() == f"{victim} is precious"


def test_a_second_run_on_the_same_out_is_refused_and_told_who_holds_it(corpus_file, workdir):
    """Two real processes: the first trains (bounded by its time limit), the second tries."""
    first = subprocess.Popen(cli_command("train", "-d", corpus_file, "-o", "m.pt", *TINY, "--max-iters", "1000000",
                                         "--eval-interval", "1000000", "--time-limit", "1"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        for line in first.stdout:  # training has begun: its outputs are claimed
            if line.startswith("step"):
                break
        second = subprocess.run(cli_command("train", "-d", corpus_file, "-o", "m.pt", *RUN), capture_output=True,
                                text=True, timeout=120, env=subprocess_env())
        assert second.returncode == 1 and "Traceback" not in second.stderr
        assert second.stderr.strip().splitlines()[-1] == (
            f"Error: m.pt is being written by another training run (pid {first.pid}); wait for it to finish, "
            "or pass another path")
    finally:
        first.terminate()  # SIGTERM: it saves and exits 143
        first.communicate(timeout=60)
    assert first.returncode == 143
    assert load_state(Path("m.pt")).train["config"]["max_iters"] == 1000000  # the first run's files only
    assert not Path(".m.pt.lock").exists()
    assert invoke("train", "-d", corpus_file, "-o", "m.pt", *RUN).exit_code == 0  # free again


def test_temporaries_of_a_killed_save_are_removed_by_the_next_run(corpus_file, workdir):
    # What SIGKILL in the middle of a save leaves: a full-size hidden temporary.
    for name in (".m.pt.x7k2_q9a.tmp", ".m.last.pt.0abcdefg.tmp", ".m.metrics.jsonl.zz_zz_zz.tmp"):
        Path(name).write_bytes(b"\0" * 10_000)
    Path(".m.pt.mine.tmp").write_bytes(b"not a name we make")
    assert invoke("train", "-d", corpus_file, "-o", "m.pt", *RUN).exit_code == 0
    assert sorted(p.name for p in workdir.iterdir() if p.name.startswith(".")) == [".m.pt.mine.tmp"]


def test_a_save_killed_for_real_leaves_nothing_the_next_run_keeps(corpus_file, workdir):
    """SIGKILL a run as often as it takes to catch it mid-save (the temporary exists)."""
    proc = subprocess.Popen(cli_command("train", "-d", corpus_file, "-o", "m.pt", *TINY, "--n-embd", "256",
                                        "--max-iters", "100000", "--eval-interval", "1", "--time-limit", "1"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=subprocess_env())
    try:
        caught = []
        while proc.poll() is None and not caught:
            caught = [p for p in workdir.iterdir() if p.name.endswith(".tmp")]
        proc.kill()
    finally:
        proc.wait(timeout=30)
    if not caught:
        pytest.skip("the run ended before a save was caught in progress")
    assert invoke("train", "-d", corpus_file, "-o", "m.pt", *RUN).exit_code == 0
    assert [p.name for p in workdir.iterdir() if p.name.endswith(".tmp")] == []


def test_every_output_is_checked_before_the_first_step(corpus_file, workdir):
    assert refused("-d", corpus_file, "-o", "") == (
        "Error: checkpoint . is not a file name; pass a path such as model.pt")
    assert invoke("train", "-d", corpus_file, "-o", "m.pt", *RUN).exit_code == 0
    before = tree(workdir)
    assert refused("-d", corpus_file, "--resume", "m.last.pt", "-o", "new.pt", "--max-iters", "4") == (
        "Error: the resumed run is at step 4 already, so --max-iters 4 leaves nothing to train; "
        "pass a larger --max-iters")
    assert refused("-d", corpus_file, "--resume", "m.last.pt", "-o", "new.pt", "--max-iters", "2").startswith(
        "Error: the resumed run is at step 4 already")
    assert tree(workdir) == before  # no new.pt, no lock file, nothing
