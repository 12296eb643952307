"""Tiny Shakespeare: downloaded once into the user cache and checked by sha256."""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .errors import DataError
from .paths import cache_dir

NAME = "tinyshakespeare"
URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
URL_ENV = "CHARLSTM_TINYSHAKESPEARE_URL"  # tests point this at a local http.server
SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
SIZE = 1_115_394


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


def tinyshakespeare(timeout: float = 30.0) -> Path:
    """Path to a verified local copy, downloading it on first use.

    Raises :class:`DataError` naming the fix (pass ``--data`` with a local copy) when the
    download fails, times out, or brings a file with the wrong sha256.
    """
    target = cache_path()
    if is_cached():
        return target
    url = os.environ.get(URL_ENV) or URL
    fix = f"download {URL} yourself and pass --data with the local file"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read(SIZE * 2)  # a bound, in case the URL serves something huge
            promised = response.headers.get("Content-Length", "")
        if promised.isdigit() and len(body) < int(promised) <= SIZE * 2:
            raise http.client.IncompleteRead(body, int(promised) - len(body))  # read(n) returns short, silently
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e or type(e).__name__
        raise DataError(f"cannot download Tiny Shakespeare from {url} ({reason}); {fix}") from None
    digest = hashlib.sha256(body).hexdigest()
    if digest != SHA256:
        raise DataError(f"the file from {url} has sha256 {digest[:12]}..., not the expected {SHA256[:12]}... "
                        f"({len(body):,} bytes); {fix}")
    tmp = None
    try:  # write beside the target, then rename: a failed write never leaves a half file
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        os.replace(tmp, target)
        tmp = None
    except OSError as e:
        raise DataError(f"cannot save Tiny Shakespeare into {target.parent} ({e.strerror or e}); "
                        f"free space there, or {fix}") from None
    finally:
        if tmp is not None:
            os.unlink(tmp)
    return target
