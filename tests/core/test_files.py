"""core.files: what may be read, what may be written, and how. Real FIFOs, symlinks,
hard links, device nodes and a second process holding a lock."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.errors import CheckpointError, DataError
from core.files import (OutputLock, atomic_write, check_output, claim_outputs, read_input, stale_temporaries)

REPO = Path(__file__).resolve().parents[2]


def refused(fn, *args, error=CheckpointError, **kwargs) -> str:
    with pytest.raises(error) as e:
        fn(*args, **kwargs)
    assert "\n" not in str(e.value)
    return str(e.value)


# -- reading ------------------------------------------------------------------------------

def test_read_input_takes_regular_files_and_symlinks_to_them(tmp_path):
    (tmp_path / "t.txt").write_bytes(b"hello")
    (tmp_path / "link.txt").symlink_to(tmp_path / "t.txt")
    assert read_input(tmp_path / "t.txt", "data file") == b"hello"
    assert read_input(tmp_path / "link.txt", "data file") == b"hello"


def test_read_input_refuses_what_would_block_or_never_end(tmp_path):
    fifo = tmp_path / "f.txt"
    os.mkfifo(fifo)  # nobody writes it: opening it the usual way would wait forever
    assert "is a named pipe (FIFO), not a regular file" in refused(read_input, fifo, "data file", error=DataError)
    assert "is a character device, not a regular file" in refused(read_input, "/dev/zero", "data file", error=DataError)
    assert "is a directory" in refused(read_input, tmp_path, "data file", error=DataError)
    assert refused(read_input, tmp_path / "nope", "prompt file", error=DataError).startswith("prompt file not found")


def test_a_file_too_large_for_memory_is_refused_by_its_size(tmp_path):
    huge = tmp_path / "huge.txt"
    with open(huge, "wb") as f:
        f.truncate(2**40)  # sparse: a TiB of nothing, taking no disk
    message = refused(read_input, huge, "data file", error=DataError)
    assert "is 1.1 TB, too large: reading it needs about 6.6 TB of memory and" in message and "is available" in message


# -- what may be written ----------------------------------------------------------------------

def test_an_output_replaces_a_regular_file_or_nothing(tmp_path):
    check_output(tmp_path / "new.pt", "checkpoint")
    (tmp_path / "old.pt").write_bytes(b"x")
    check_output(tmp_path / "old.pt", "checkpoint")
    check_output(tmp_path / "a" / "b" / "deep.pt", "checkpoint")  # folders are made when the run starts
    os.mkfifo(tmp_path / "fifo.pt")
    assert "is a named pipe (FIFO); only a regular file may be replaced" in refused(
        check_output, tmp_path / "fifo.pt", "checkpoint")
    (tmp_path / "link.pt").symlink_to(tmp_path / "old.pt")
    assert f"is a symbolic link (to {tmp_path / 'old.pt'})" in refused(check_output, tmp_path / "link.pt", "checkpoint")
    (tmp_path / "d").mkdir()
    assert "is a directory" in refused(check_output, tmp_path / "d", "checkpoint")
    assert "is not a file name" in refused(check_output, Path(""), "checkpoint")


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_a_device_node_is_never_replaced(tmp_path):
    node = tmp_path / "null.pt"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a second /dev/null
    assert "is a character device" in refused(check_output, node, "checkpoint")
    assert stat.S_ISCHR(os.lstat(node).st_mode)


def test_an_output_is_never_one_of_the_inputs_by_any_name(tmp_path):
    data = tmp_path / "d.txt"
    data.write_text("text")
    os.link(data, tmp_path / "hard.txt")
    for same in (data, tmp_path / "hard.txt", tmp_path / "sub" / ".." / "d.txt"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        message = refused(check_output, same, "checkpoint", [("--data", data)])
        assert "is the same file as --data" in message and "choose another path" in message


def test_an_unwritable_folder_is_named_before_anything_starts(tmp_path):
    (tmp_path / "afile").write_text("x")
    assert "afile is a file, not a folder" in refused(check_output, tmp_path / "afile" / "m.pt", "checkpoint")
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        assert "permission denied" in refused(check_output, ro / "m.pt", "checkpoint")


# -- how it is written ------------------------------------------------------------------------

def test_atomic_write_never_follows_a_planted_symlink_and_leaves_no_temporary(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    out = tmp_path / "m.pt"
    # Every name an older version used for its temporaries, planted as links to the victim.
    for name in (".m.pt.tmp", ".m.pt.probe", ".m.pt.aaaaaaaa.tmp"):
        (tmp_path / name).symlink_to(victim)
    with atomic_write(out, "checkpoint") as f:
        f.write(b"new")
    assert out.read_bytes() == b"new" and victim.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".m.pt.tmp", ".m.pt.probe", ".m.pt.aaaaaaaa.tmp",
                                                                  "m.pt", "victim"])


def test_atomic_write_keeps_the_old_file_when_the_write_fails(tmp_path):
    out = tmp_path / "m.pt"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(out, "checkpoint") as f:
            f.write(b"half")
            raise RuntimeError("the writer failed")
    assert out.read_bytes() == b"old" and stale_temporaries(out) == []


def test_atomic_write_without_replace_never_replaces_what_appeared_meanwhile(tmp_path):
    """replace=False (a save the user was not asked about): a file, or a link, made at the
    name while the text was written is left alone, and no temporary stays behind."""
    out = tmp_path / "notes.txt"
    with atomic_write(out, "transcript", replace=False) as f:
        f.write(b"new")
    assert out.read_bytes() == b"new" and stale_temporaries(out) == []
    for make in (lambda: out.write_text("theirs"), lambda: out.symlink_to(tmp_path / "elsewhere")):
        out.unlink()
        with pytest.raises(CheckpointError, match="exists now .* nothing was written"):
            with atomic_write(out, "transcript", replace=False) as f:
                f.write(b"mine")
                make()
        assert os.path.lexists(out) and not (out.is_file() and out.read_text() == "mine")
        assert stale_temporaries(out) == []


def test_stale_temporaries_are_only_ours(tmp_path):
    out = tmp_path / "m.pt"
    ours = tmp_path / ".m.pt.k3_x9abz.tmp"
    ours.write_bytes(b"left by a killed save")
    (tmp_path / ".m.pt.notours.tmp").write_bytes(b"7 chars")
    (tmp_path / ".m.pt.abcdefgh.tmp.bak").write_bytes(b"other suffix")
    (tmp_path / ".m.pt.zzzzzzzz.tmp").symlink_to(tmp_path / "elsewhere")
    assert stale_temporaries(out) == [ours]
    claim_outputs([(out, "checkpoint", [], ())]).release()
    assert not ours.exists() and (tmp_path / ".m.pt.notours.tmp").exists()
    assert (tmp_path / ".m.pt.zzzzzzzz.tmp").is_symlink()


# -- the lock -----------------------------------------------------------------------------------

HOLDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {repo!r})
    from pathlib import Path
    from core.files import OutputLock
    lock = OutputLock([Path({out!r})]).acquire()
    print("held", flush=True)
    sys.stdin.read()  # until the test closes our stdin
    lock.release()
""")


def test_a_second_process_is_told_who_holds_the_lock(tmp_path):
    out = tmp_path / "m.pt"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.format(repo=str(REPO), out=str(out))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        message = refused(OutputLock([out]).acquire)
        assert message == (f"{out} is being written by another training run (pid {holder.pid}); wait for it to "
                           "finish, or pass another path")
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    with OutputLock([out]):  # released: free again, and the lock file is gone after
        assert (tmp_path / ".m.pt.lock").exists()
    assert not (tmp_path / ".m.pt.lock").exists()


def test_a_killed_holder_leaves_no_lock_behind(tmp_path):
    out = tmp_path / "m.pt"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.format(repo=str(REPO), out=str(out))],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    holder.kill()
    holder.wait(timeout=30)
    assert (tmp_path / ".m.pt.lock").exists()  # the file stays; the kernel dropped the lock
    with OutputLock([out]):
        pass


def test_a_planted_lock_file_is_never_written_through(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / ".m.pt.lock").symlink_to(victim)
    assert "it is a symbolic link" in refused(OutputLock([tmp_path / "m.pt"]).acquire)
    (tmp_path / ".m.pt.lock").unlink()
    os.link(victim, tmp_path / ".m.pt.lock")
    assert "is not a lock file of ours" in refused(OutputLock([tmp_path / "m.pt"]).acquire)
    assert victim.read_text() == "precious"


def test_an_existing_file_is_replaced_only_if_it_is_of_the_kind_written_there(tmp_path):
    out = tmp_path / "m.pt"
    out.write_text("a user's notes, named .pt by mistake")
    with pytest.raises(CheckpointError, match="m.pt exists and is not a checkpoint written here"):
        check_output(out, "checkpoint", starts_with=(b"PK\x03\x04",))
    assert out.read_text() == "a user's notes, named .pt by mistake"
    out.write_bytes(b"PK\x03\x04 a zip, as torch.save writes")
    check_output(out, "checkpoint", starts_with=(b"PK\x03\x04",))
    out.write_bytes(b"")  # an empty file holds nothing to lose
    check_output(out, "checkpoint", starts_with=(b"PK\x03\x04",))
