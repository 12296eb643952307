"""Tiny Shakespeare: downloaded once into the user cache and checked by sha256."""

from __future__ import annotations

import hashlib
import http.client
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from .errors import DataError
from .files import atomic_write
from .paths import cache_dir

NAME = "tinyshakespeare"
URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
URL_ENV = "CHARLSTM_TINYSHAKESPEARE_URL"  # tests point this at a local http.server
SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
SIZE = 1_115_394
DEADLINE = 300.0  # seconds for the whole download: 1.1 MB at 4 KB/s, slower than any dial-up


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_path() -> Path:
    """Where the verified copy lives: ``$XDG_CACHE_HOME/charlstm-tui/tinyshakespeare.txt``."""
    return cache_dir() / f"{NAME}.txt"


def is_cached() -> bool:
    """True when a verified copy is in the cache, so no download is needed."""
    target = cache_path()
    return target.is_file() and sha256_of(target) == SHA256


def tinyshakespeare(timeout: float = 30.0, deadline: float = DEADLINE) -> Path:
    """Path to a verified local copy, downloading it on first use.

    ``timeout`` bounds each network wait; ``deadline`` the whole download, so a server
    that trickles a byte every few seconds cannot keep it going for ever. Raises
    :class:`DataError` naming the fix (pass ``--data`` with a local copy) when the
    download fails, times out, or brings a file with the wrong sha256.
    """
    target = cache_path()
    if is_cached():
        return target
    url = os.environ.get(URL_ENV) or URL
    fix = f"download {URL} yourself and pass --data with the local file"
    try:
        body = _download(url, timeout, deadline)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e or type(e).__name__
        raise DataError(f"cannot download Tiny Shakespeare from {url} ({reason}); {fix}") from None
    digest = hashlib.sha256(body).hexdigest()
    if digest != SHA256:
        raise DataError(f"the file from {url} has sha256 {digest[:12]}..., not the expected {SHA256[:12]}... "
                        f"({len(body):,} bytes); {fix}")
    try:  # write beside the target, then rename: a failed write never leaves a half file
        with atomic_write(target, "Tiny Shakespeare", DataError) as f:
            f.write(body)
    except DataError as e:
        raise DataError(f"{e}; or {fix}") from None
    return target


def _download(url: str, timeout: float, deadline: float) -> bytes:
    """The body at ``url``, at most twice the expected size, within ``deadline`` seconds."""
    end = time.monotonic() + deadline
    late = TimeoutError(f"no complete download within the {deadline:g} s deadline")

    def left() -> float:
        remaining = end - time.monotonic()
        if remaining <= 0:
            raise late
        return remaining

    try:
        return _read(url, timeout, left)
    except TimeoutError:
        if time.monotonic() >= end:  # the wait cut short by the deadline, not by a silent server
            raise late from None
        raise


def _read(url: str, timeout: float, left: Callable[[], float]) -> bytes:
    """The body, each wait bounded by ``timeout`` and by ``left()``, the time remaining
    (which raises once there is none)."""
    chunks: list[bytes] = []
    got = 0
    with urllib.request.urlopen(url, timeout=min(timeout, left())) as response:
        promised = response.headers.get("Content-Length", "")
        sock = getattr(getattr(response.fp, "raw", None), "_sock", None)  # to shorten its waits as time runs out
        while got < SIZE * 2:  # a bound, in case the URL serves something huge
            if sock is not None:
                sock.settimeout(min(timeout, left()))
            chunk = response.read1(min(1 << 16, SIZE * 2 - got))  # what has arrived, not a full buffer
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
            left()
    body = b"".join(chunks)
    if promised.isdigit() and len(body) < int(promised) <= SIZE * 2:
        raise http.client.IncompleteRead(body, int(promised) - len(body))
    return body
