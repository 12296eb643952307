"""Tiny Shakespeare: downloaded once into the user cache and checked by sha256."""

from __future__ import annotations

import hashlib
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


def tinyshakespeare(timeout: float = 30.0) -> Path:
    """Path to a verified local copy, downloading it on first use."""
    target = cache_dir() / f"{NAME}.txt"
    if target.exists() and sha256_of(target) == SHA256:
        return target
    url = os.environ.get(URL_ENV, URL)
    fix = f"download {URL} yourself and pass --data with the local file"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read(SIZE * 2)
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        raise DataError(f"cannot download Tiny Shakespeare from {url} ({reason}); {fix}") from None
    digest = hashlib.sha256(body).hexdigest()
    if digest != SHA256:
        raise DataError(f"the file from {url} has sha256 {digest[:12]}..., not the expected {SHA256[:12]}...; {fix}")
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(body)
    os.replace(tmp, target)
    return target
