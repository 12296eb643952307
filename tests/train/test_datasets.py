"""--data tinyshakespeare: a real http.server on 127.0.0.1 stands in for GitHub."""

from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from core import datasets
from core.errors import DataError
from train_helpers import TINY, TINYSHAKESPEARE, invoke, needs_shared_data


class Server:
    """A local HTTP server in a thread. ``mode``: "file" serves ``body``; "404"; "stall"
    answers nothing until closed; "cut" promises ``body`` but sends half and hangs up;
    "trickle" sends ``body`` a byte every 0.2 s, never silent long enough to time out."""

    def __init__(self, mode: str, body: bytes = b"") -> None:
        self.mode, self.body, self.requests = mode, body, 0
        self.release = threading.Event()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests += 1
                if owner.mode == "404":
                    self.send_error(404)
                    return
                if owner.mode == "stall":
                    owner.release.wait(30)
                    return
                if owner.mode == "trickle":  # a byte every 0.2 s, for ever (until closed)
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(owner.body)))
                    self.end_headers()
                    for byte in owner.body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        if owner.release.wait(0.2):
                            return
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(owner.body)))
                self.end_headers()
                self.wfile.write(owner.body if owner.mode == "file" else owner.body[: len(owner.body) // 2])

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/input.txt"

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch):
    """Start a server and point CHARLSTM_TINYSHAKESPEARE_URL at it."""
    servers: list[Server] = []

    def start(mode: str, body: bytes = b"") -> Server:
        server = Server(mode, body)
        servers.append(server)
        monkeypatch.setenv(datasets.URL_ENV, server.url)
        return server

    yield start
    for server in servers:
        server.close()


def test_canonical_source_and_checksum():
    assert datasets.URL == "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
    assert datasets.SHA256 == "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


@needs_shared_data
def test_download_is_verified_cached_and_reused(serve, tmp_path):
    server = serve("file", TINYSHAKESPEARE.read_bytes())
    path = datasets.tinyshakespeare(timeout=2)  # a short timeout is plenty for a server that answers
    assert path == tmp_path / "xdg-cache" / "charlstm-tui" / "tinyshakespeare.txt"  # XDG cache (conftest isolates it)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == datasets.SHA256
    assert server.requests == 1
    server.close()  # nothing is listening now: a second download would fail
    assert datasets.tinyshakespeare() == path and server.requests == 1


def test_wrong_file_is_refused_and_not_cached(serve):
    serve("file", b"To be, or not to be: that is the question.\n" * 100)
    with pytest.raises(DataError, match=r"has sha256 [0-9a-f]{12}\.\.\., not the expected 86c4e6aa9db7.*pass --data with the local file"):
        datasets.tinyshakespeare()
    assert not datasets.cache_path().exists()


@needs_shared_data
def test_corrupt_cached_copy_is_downloaded_again(serve):
    server = serve("file", TINYSHAKESPEARE.read_bytes())
    datasets.cache_path().parent.mkdir(parents=True)
    datasets.cache_path().write_text("truncated")
    assert datasets.sha256_of(datasets.tinyshakespeare()) == datasets.SHA256 and server.requests == 1


@pytest.mark.parametrize(("mode", "reason"), [("404", "Not Found"), ("cut", "IncompleteRead|incomplete"),
                                              ("stall", "timed out")])
def test_failed_download_says_to_pass_a_local_copy(serve, mode, reason):
    serve(mode, b"x" * 10_000)
    with pytest.raises(DataError, match=rf"cannot download Tiny Shakespeare from http://127\.0\.0\.1:\d+/input\.txt "
                                        rf"\(.*({reason}).*\); download https://raw\.githubusercontent\.com/.* yourself "
                                        r"and pass --data with the local file"):
        datasets.tinyshakespeare(timeout=0.5)  # a cut-short timeout: "stall" would otherwise wait 30 s
    assert not datasets.cache_path().exists()


def test_a_trickling_download_ends_at_its_deadline(serve):
    """Each byte comes well within the per-read timeout; only the overall deadline ends it."""
    serve("trickle", b"x" * 10_000)
    with pytest.raises(DataError, match=r"\(no complete download within the 1\.5 s deadline\); download https://"):
        datasets.tinyshakespeare(timeout=1.0, deadline=1.5)
    assert not datasets.cache_path().exists()


def test_cli_download_failure_is_one_error_line(serve, workdir):
    server = serve("404")
    server.close()  # refused: nothing listens on that port any more
    result = invoke("train", "--data", "tinyshakespeare", *TINY, "--max-iters", "1")
    assert result.exit_code == 1
    assert result.stderr.startswith("downloading Tiny Shakespeare into ")
    error = result.stderr.splitlines()[-1]
    assert error.startswith("Error: cannot download Tiny Shakespeare from http://127.0.0.1:")
    assert error.endswith("pass --data with the local file") and "Traceback" not in result.output


@needs_shared_data
def test_cli_trains_on_the_download_then_reuses_it(serve, workdir):
    server = serve("file", TINYSHAKESPEARE.read_bytes())
    args = ("train", "--data", "tinyshakespeare", *TINY, "--max-iters", "2", "--eval-interval", "2")
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert "downloading Tiny Shakespeare" in first.stderr and "on tinyshakespeare: 1,003,854 train / 111,540 val chars, vocab 65" in first.stdout
    assert Path("tinyshakespeare.pt").exists()  # the default --out: ./<data name>.pt
    server.close()
    second = invoke(*args)
    assert second.exit_code == 0 and "downloading" not in second.output and server.requests == 1
    # eval takes the name too, and reads the same cached copy.
    evaluated = invoke("eval", "--data", "tinyshakespeare", "-c", "tinyshakespeare.pt", "--block-size", "64")
    assert evaluated.exit_code == 0 and evaluated.stdout.startswith("val: loss ") and server.requests == 1
