"""The rules for every file charlstm-tui reads or writes, in one place.

Reading: only a regular file (a FIFO would block, ``/dev/zero`` never ends), and only
what fits in memory. Writing: an output replaces a regular file or nothing: never a
device, a FIFO, a folder or a symlink, never one of the run's own inputs (compared by
identity, so a hard link or a second name counts). New content goes to a temporary
file made by :mod:`tempfile` in the target folder (``O_EXCL``, an unguessable name,
never a symlink followed), is fsynced, then renamed over the target. A training run
holds a lock on each of its outputs for its whole life, so a second run cannot mix its
files in; with the lock held, temporaries that a killed run left behind are removed.

Every ``OSError`` becomes words in :func:`os_reason`; errors are one line each.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Sequence

from .errors import CharLSTMError, CheckpointError, DataError
from .memory import TEXT_BYTES_PER_BYTE, fits, human_bytes

TMP_SUFFIX = ".tmp"  # temporaries are ".<name>.<8 random chars>.tmp" beside <name>
_LOCK_SUFFIX = ".lock"

_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "File too large",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOENT: "no such file or folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder",
    errno.ENAMETOOLONG: "the name is too long",
}


def os_reason(e: OSError) -> str:
    """The part of an OSError a user can act on, in words: "the disk is full"."""
    return _REASONS.get(e.errno or 0) or e.strerror or str(e) or type(e).__name__


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"))


def kind_of(mode: int) -> str:
    """What a non-regular file is, for a message: "a named pipe (FIFO)"."""
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")


# -- reading ------------------------------------------------------------------------------

@contextlib.contextmanager
def open_input(path: str | Path, what: str, error: type[CharLSTMError] = DataError,
               per_byte: float = TEXT_BYTES_PER_BYTE) -> Iterator[BinaryIO]:
    """Open ``path`` for reading, or raise ``error`` naming ``what`` ("data file") and the fix.

    Opened without blocking and checked on the open descriptor, so a FIFO with no writer
    is refused rather than waited on, and the checked file is the one read. A file that
    would take more memory than is left (``per_byte`` bytes of memory for each byte) is
    refused, naming its size.
    """
    p = Path(path).expanduser()
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ENOENT:
            raise error(f"{what} not found: {p}; check the path") from None
        raise error(f"cannot read {what} {p}: {os_reason(e)}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise error(f"{what} {p} is a directory; pass a file inside it")
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{what} {p} is {kind_of(st.st_mode)}, not a regular file; save its content to a file "
                        "and pass that")
        too_big = fits(st.st_size, per_byte)
        if too_big:
            raise error(f"{what} {p} is {human_bytes(st.st_size)}, too large: {too_big}; use a smaller file")
        os.set_blocking(fd, True)
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        try:
            yield f
        except MemoryError:
            raise error(f"{what} {p} is {human_bytes(st.st_size)}, too large for this process's memory; "
                        "use a smaller file") from None
        except OSError as e:
            raise error(f"cannot read {what} {p}: {os_reason(e)}") from None


def read_input(path: str | Path, what: str, error: type[CharLSTMError] = DataError) -> bytes:
    """The bytes of a regular file that fits in memory (see :func:`open_input`)."""
    with open_input(path, what, error) as f:
        return f.read()


# -- writing ------------------------------------------------------------------------------

def check_output(path: Path, what: str, inputs: Sequence[tuple[str, Path]] = (),
                 error: type[CharLSTMError] = CheckpointError, starts_with: Sequence[bytes] = ()) -> None:
    """Raise ``error`` unless ``path`` may be written: it names a file (not a folder, a
    device, a FIFO or a symlink), it is none of ``inputs`` (``(option, path)`` pairs,
    compared by device and inode), and its folder exists or can be made, and is writable.
    With ``starts_with``, a file already there must be empty or begin with one of those
    byte strings (a file of the kind written here), so a user's other file never is."""
    if not path.name or path.name in (".", ".."):
        raise error(f"{what} {str(path) or repr('')} is not a file name; pass a path such as model.pt")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise error(f"cannot write {what} {path}: {_path_problem(path, e)}; choose a path in a writable folder") from None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise error(f"{what} {path} is a symbolic link (to {os.readlink(path)}); use the file's own path, "
                        "or remove the link")
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{what} {path} is {kind_of(st.st_mode)}; only a regular file may be replaced: "
                        "choose another path")
        for option, source in inputs:
            try:
                same = os.path.samestat(st, os.stat(source))
            except OSError:
                continue
            if same:
                raise error(f"{what} {path} is the same file as {option} {source}: writing it would destroy "
                            f"the {option} file; choose another path")
        if starts_with and st.st_size > 0 and not any(_head(path).startswith(m) for m in starts_with):
            raise error(f"{path} exists and is not a {what} written here; pass another path, or move that file "
                        "away first")
    folder = _existing_folder(path, what, error)
    if not os.access(folder, os.W_OK | os.X_OK):
        reason = _REASONS[errno.EROFS] if _read_only(folder) else f"{_REASONS[errno.EACCES]} in {folder}"
        raise error(f"cannot write {what} {path}: {reason}; choose a path in a writable folder")


def _head(path: Path, n: int = 8) -> bytes:
    """The first bytes of a regular file (never through a symlink, never waiting on a pipe)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        return os.read(fd, n)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _existing_folder(path: Path, what: str, error: type[CharLSTMError]) -> Path:
    """The nearest existing folder above ``path`` (where new folders would be made)."""
    for folder in path.absolute().parents:
        try:
            st = os.stat(folder)
        except FileNotFoundError:
            continue
        except OSError as e:
            raise error(f"cannot write {what} {path}: {_path_problem(path, e)}; choose a path in a writable "
                        "folder") from None
        if not stat.S_ISDIR(st.st_mode):
            raise error(f"cannot write {what} {path}: {folder} is a file, not a folder; choose a path in a "
                        "writable folder")
        return folder
    return Path("/")


def _path_problem(path: Path, e: OSError) -> str:
    if e.errno == errno.ELOOP and path.is_symlink():  # opened with O_NOFOLLOW: a link where a file of ours goes
        return "it is a symbolic link"
    if e.errno == errno.ENOTDIR:
        blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            return f"{blocker} is a file, not a folder"
    return os_reason(e)


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


_UMASK = os.umask(0)  # the only way to read the umask is to set it; done once, at import
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_write(path: Path, what: str, error: type[CharLSTMError] = CheckpointError,
                 check: Callable[[str], None] | None = None, replace: bool = True) -> Iterator[BinaryIO]:
    """Write ``path`` all at once: yields a temporary file in the same folder; when the
    block ends it is fsynced, given to ``check(temp_name)`` (which may raise), and renamed
    over ``path``. On any failure ``path`` is untouched and the temporary is gone.
    With ``replace=False`` a file that appeared at ``path`` meanwhile is never replaced
    (the temporary is linked to the name, which fails if the name is taken)."""
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual mode
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if check is not None:
            check(tmp_name)
        if replace or not _link_new(tmp_name, path, what, error):
            _refuse_non_regular(path, what, error)
            os.replace(tmp_name, path)
        tmp_name = None
        _fsync_dir(path.parent)
    except OSError as e:
        raise error(f"cannot write {what} {path}: {_path_problem(path, e)}; free space or choose another path "
                    "(any earlier file there is intact)") from None
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)


def _link_new(tmp_name: str, path: Path, what: str, error: type[CharLSTMError]) -> bool:
    """Give the finished temporary the name ``path`` unless something has it; False where
    the file system has no hard links (then only a look before the rename guards it)."""
    try:
        os.link(tmp_name, path, follow_symlinks=False)
    except FileExistsError:
        raise error(f"{what} {path} exists now (made by someone else meanwhile); it was left alone and "
                    "nothing was written") from None
    except OSError as e:
        if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV):
            raise
        if os.path.lexists(path):
            raise error(f"{what} {path} exists now (made by someone else meanwhile); it was left alone and "
                        "nothing was written") from None
        return False
    os.unlink(tmp_name)
    return True


def _refuse_non_regular(path: Path, what: str, error: type[CharLSTMError]) -> None:
    """The last look before a rename: a rename replaces whatever has the name."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{what} {path} is {kind_of(st.st_mode)} now; it was left alone and nothing was written")


def append_bytes(path: Path, data: bytes, what: str, error: type[CharLSTMError] = CheckpointError) -> None:
    """Append to a file of ours, never through a symlink put in its place."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                     0o666)
        with os.fdopen(fd, "ab") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise error(f"{what} {path} is not a regular file any more; it was left alone")
            f.write(data)
    except OSError as e:
        raise error(f"cannot write {what} {path}: {_path_problem(path, e)}") from None


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the directory entry is on disk too.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def stale_temporaries(path: Path) -> list[Path]:
    """Temporaries of ``path`` that :func:`atomic_write` made and a killed process left:
    regular files of this user named ``.<name>.<8 chars from mkstemp>.tmp``."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}{re.escape(TMP_SUFFIX)}")
    found = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return []
    for entry in entries:
        if pattern.fullmatch(entry.name):
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid():
                found.append(Path(entry.path))
    return found


# -- the lock on a run's outputs ----------------------------------------------------------------

class OutputLock:
    """An exclusive ``flock`` on ``.<name>.lock`` beside each output, held until
    :meth:`release`. The lock file holds the holder's pid, for the second run's message.
    The kernel drops the lock when the process dies (SIGKILL included), so a lock file
    left behind never blocks anyone."""

    def __init__(self, outputs: Sequence[Path], what: str = "output",
                 error: type[CharLSTMError] = CheckpointError) -> None:
        self.outputs = list(outputs)
        self.what, self.error = what, error
        self._held: list[tuple[Path, int]] = []

    def acquire(self) -> "OutputLock":
        try:
            for out in self.outputs:
                self._held.append((_lock_path(out), self._lock_one(out)))
        except BaseException:
            self.release()
            raise
        return self

    def _lock_one(self, out: Path) -> int:
        lock = _lock_path(out)
        while True:
            try:
                out.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o644)
            except OSError as e:
                raise self.error(f"cannot write {self.what} {out}: {_path_problem(lock, e)} "
                                 f"(at its lock file {lock.name}); choose another path") from None
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
                    raise self.error(f"{lock} is not a lock file of ours ({kind_of(st.st_mode)}, {st.st_nlink} "
                                     "links); remove it or choose another path")
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
                    who = f"pid {holder}" if holder.isdigit() else "another process"
                    raise self.error(f"{out} is being written by another training run ({who}); wait for it to "
                                     "finish, or pass another path") from None
                # The holder before us may have removed the file as it released it: then our
                # lock is on a name nobody will see. Lock the file that is there now instead.
                try:
                    now = os.stat(lock, follow_symlinks=False)
                except FileNotFoundError:
                    now = None
                if now is None or not os.path.samestat(st, now):
                    os.close(fd)
                    continue
                with contextlib.suppress(OSError):  # the pid is for the message only: a full disk may refuse it
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                return fd
            except BaseException:
                with contextlib.suppress(OSError):
                    os.close(fd)
                raise

    def release(self) -> None:
        """Remove the lock files (while holding them) and let go."""
        for lock, fd in reversed(self._held):
            with contextlib.suppress(OSError):
                os.unlink(lock)
            with contextlib.suppress(OSError):
                os.close(fd)
        self._held.clear()

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _lock_path(out: Path) -> Path:
    return out.with_name(f".{out.name}{_LOCK_SUFFIX}")


def claim_outputs(outputs: Sequence[tuple[Path, str, Sequence[tuple[str, Path]], Sequence[bytes]]],
                  error: type[CharLSTMError] = CheckpointError) -> OutputLock:
    """Before a run's first step: check every ``(path, what, inputs it must not be, what
    a file there must begin with)`` with :func:`check_output`, lock them all, and remove
    the temporaries a killed run left beside them (with the lock held, no other run is
    writing them). Returns the held lock; release it when the run ends."""
    for path, what, inputs, starts_with in outputs:
        check_output(path, what, inputs, error, starts_with)
    paths = [path for path, _, _, _ in outputs]
    lock = OutputLock(paths, error=error).acquire()
    for path in paths:
        for tmp in stale_temporaries(path):
            with contextlib.suppress(OSError):
                tmp.unlink()
    return lock
