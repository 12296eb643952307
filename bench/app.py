"""The terminal app, measured from outside in a real pseudo-terminal.

Runs the real ``charlstm-tui`` entry point on a pty (100x32) and reads what it writes:

1. time to first frame: from spawning the process to the first full frame on the pty
   (and to "ready", when the model has loaded behind it);
2. chars/s reaching the screen at delay 0, against the model's raw chars/s (the same
   sampler, same thread count, in this process). One app runs the prompt again and again
   (Enter, then Ctrl+R), each leg between two raw legs, and each leg is compared with
   the raw legs either side of it: this box's speed drifts by 20% within a minute, so
   only neighbours compare. The median leg is the figure. Each app leg also reports
   how much of its wall time the generating thread (in the app's generation process)
   and the UI thread ran, and the app's CPU time per character, all its processes
   counted, against the raw loop's;
3. key echo while streaming: a key written to the pty until its echo comes back; the
   same on the temperature sweep screen, idle and while a 4-way sweep streams (issue 6);
4. memory of the app after generating 100,000 characters: the UI process's resident
   set, and the proportional set size of it and its generation process together (the
   child is forked, so the pages they share are counted once);
5. key echo while typing a prompt as a run streams, with ghost text on and off.

    python bench/app.py [--checkpoint PATH] [--chars 5000] [--rounds 11] [--rss-chars 100000] [--sweep-keys 8]

Goals (issue 5): first frame <= 0.5 s; screen >= 90% of raw; echo <= 50 ms; RSS <= 500 MB.
"""

from __future__ import annotations

import argparse
import bisect
import fcntl
import json
import os
import re
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")

ROOT = Path(__file__).resolve().parent.parent
ENTRY = Path(sys.executable).parent / "charlstm-tui"
ANSI = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78MDE]")
COLS, ROWS = 100, 32


class PtyApp:
    """The app on a pty; a thread reads everything it writes, with arrival times."""

    def __init__(self, checkpoint: Path, data_home: Path, settings: dict | None = None) -> None:
        if settings is not None:
            (data_home / "charlstm-tui").mkdir(parents=True, exist_ok=True)
            (data_home / "charlstm-tui" / "settings.json").write_text(json.dumps(settings))
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        env = dict(os.environ, XDG_DATA_HOME=str(data_home), TERM="xterm-256color", COLUMNS=str(COLS),
                   LINES=str(ROWS), CHARLSTM_CLIPBOARD="file")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([str(ENTRY), "--checkpoint", str(checkpoint)], stdin=slave, stdout=slave,
                                     stderr=slave, env=env, start_new_session=True, close_fds=True)
        os.close(slave)
        self.master = master
        self.text = bytearray()  # everything written, escape sequences removed
        self.times: list[float] = []  # when each read arrived...
        self.ends: list[int] = []  # ...and len(text) after it
        self._raw = b""
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # waiters sleep until output comes, rather than poll
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            now = time.perf_counter()
            with self._lock:
                # Keep a possibly cut escape sequence for the next read.
                data = self._raw + chunk
                cut = data.rfind(b"\x1b")
                if cut >= 0 and len(data) - cut < 64 and not ANSI.match(data, cut):
                    data, self._raw = data[:cut], data[cut:]
                else:
                    self._raw = b""
                self.text += ANSI.sub(b"", data)
                self.times.append(now)
                self.ends.append(len(self.text))
                self._arrived.notify_all()

    def mark(self) -> int:
        with self._lock:
            return len(self.text)

    def wait(self, pattern: bytes, since: int = 0, timeout: float = 120.0) -> tuple[float, re.Match]:
        """When ``pattern`` (a regex) first appeared after offset ``since``, and the match."""
        regex = re.compile(pattern)
        deadline = time.perf_counter() + timeout
        scan = since  # only new text is searched (with an overlap), so waiting stays cheap
        # Times come from the reader thread's arrival stamps, so how soon this wakes does not
        # matter; sleeping until output arrives keeps this process off the app's CPUs.
        with self._lock:
            while time.perf_counter() < deadline:
                m = regex.search(self.text, max(since, scan - 256))
                scan = len(self.text)
                if m:
                    return self.times[bisect.bisect_left(self.ends, m.end())], m
                if self.proc.poll() is not None:
                    break
                self._arrived.wait(timeout=0.1)
        tail = bytes(self.text[-600:]).decode("utf-8", "replace")
        raise SystemExit(f"bench: timed out waiting for {pattern!r}; screen text ends with:\n{tail}")

    def send(self, data: bytes) -> float:
        now = time.perf_counter()
        os.write(self.master, data)
        return now

    def pids(self) -> list[int]:
        """The app's process and its children (the generation process)."""
        return [self.proc.pid] + children(self.proc.pid)

    def rss_mb(self) -> tuple[float, float]:
        """(current, peak) resident memory of the app's UI process in MB."""
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines()
                      if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

    def pss_mb(self) -> float:
        """Proportional set size of the app's processes together, in MB: shared pages
        are split between the processes that share them, so the sum counts them once."""
        total = 0
        for pid in self.pids():
            fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
                          if line.startswith("Pss:"))
            total += int(fields["Pss"].split()[0])
        return total / 1024

    def close(self) -> None:
        if self.proc.poll() is None:
            os.write(self.master, b"\x11")  # Ctrl+Q
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        os.close(self.master)


class RawModel:
    """The model's own speed, as the app runs it (same threads), in this process."""

    def __init__(self, checkpoint: Path) -> None:
        import torch

        from charlstm_tui.bridge import generation_threads
        from core.checkpoint import load_checkpoint
        from core.sampling import Sampler

        torch.set_num_threads(generation_threads())
        ckpt = load_checkpoint(checkpoint)
        self.sampler = Sampler(ckpt.build_model(), ckpt.vocab)

    def leg(self, n: int) -> tuple[float, float, float]:
        """(chars/s of Sampler.stream, chars/s of the app's Session.generate, Session's CPU
        seconds per character), each over ``n`` characters after the prompt."""
        from core.sampling import SampleConfig
        from core.session import Session

        config = SampleConfig(length=n, seed=1)
        stream = self.sampler.stream("KING:", config.with_(length=n + 1))
        next(stream)
        start = time.perf_counter()
        for _ in stream:
            pass
        sampler_rate = n / (time.perf_counter() - start)
        session = Session(self.sampler)
        session.feed("KING:")
        start, cpu = time.perf_counter(), time.process_time()
        for _ in session.generate(config):
            pass
        return sampler_rate, n / (time.perf_counter() - start), (time.process_time() - cpu) / n


def children(pid: int) -> list[int]:
    """The child processes of ``pid``."""
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            out += [int(c) for c in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
        except OSError:
            continue
    return out


def thread_cpu(pids: list[int]) -> dict[int, float]:
    """CPU seconds each thread of the processes ``pids`` has used."""
    out = {}
    for pid in pids:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # the thread ended
                continue
            out[int(tid)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def prompted_app(checkpoint: Path, home: Path, n: int) -> PtyApp:
    """The app, set to generate ``n`` chars at delay 0, loaded, with "KING:" typed in its prompt."""
    app = PtyApp(checkpoint, home, {"length": n, "delay_ms": 0, "seed": 1, "temperature": 0.8})
    try:  # a timed-out wait raises SystemExit: never leave the app running
        app.wait(rb"ready \xc2\xb7 0 chars")
        app.send(b"KING:")
        app.wait(rb"KING:")
    except BaseException:
        app.close()
        raise
    return app


def rate_legs(checkpoint: Path, home: Path, n: int, rounds: int, raw: RawModel) -> list[dict[str, float]]:
    """``rounds`` app legs of ``n`` chars at delay 0 in one app, each between two raw legs.

    A leg's screen rate runs from the first frame showing generated text to the frame
    showing the last character, counted by the status line: throughput, as the raw legs
    measure it (they leave out priming the prompt; the app's start costs, the worker's
    start and priming, are left out the same way)."""
    app = prompted_app(checkpoint, home, n)
    try:  # a timed-out wait raises SystemExit: never leave the app running
        legs, before = [], raw.leg(n)
        for i in range(rounds):
            since = app.mark()
            app.send(b"\r" if i == 0 else b"\x12")  # Enter, then Ctrl+R: the same prompt again
            first_at, first = app.wait(rb"generating \xc2\xb7 ([1-9][\d,]*) chars", since)
            cpu_first = thread_cpu(app.pids())
            done, m = app.wait(rb"done \xc2\xb7 ([\d,]+) chars", since, timeout=600)
            cpu_done = thread_cpu(app.pids())
            wall = done - first_at
            shown = int(m.group(1).replace(b",", b"")) - int(first.group(1).replace(b",", b""))
            used = {tid: cpu - cpu_first.get(tid, 0.0) for tid, cpu in cpu_done.items()}
            after = raw.leg(n)
            legs.append({
                "screen": shown / wall,
                "sampler": (before[0] + after[0]) / 2, "session": (before[1] + after[1]) / 2,
                "raw_cpu": (before[2] + after[2]) / 2, "app_cpu": sum(used.values()) / shown,
                "ui": used.get(app.proc.pid, 0.0) / wall,  # the main thread runs the UI
                "worker": max(used.values()) / wall,  # the busiest thread: the generating one
            })
            before = after
        return legs
    finally:
        app.close()


def first_frames(checkpoint: Path, home: Path, runs: int) -> list[tuple[float, float]]:
    """(first frame, ready) seconds after spawn, for ``runs`` fresh starts."""
    out = []
    for i in range(runs):
        app = PtyApp(checkpoint, home / f"ff{i}")
        frame, _ = app.wait(rb"Settings")  # the panel's title: part of the first full frame
        ready, _ = app.wait(rb"ready \xc2\xb7 0 chars")
        out.append((frame - app.started, ready - app.started))
        app.close()
    return out


def ghost_echo(checkpoint: Path, home: Path, samples: int) -> dict[bool, list[float]]:
    """Key echo on the main screen while a run streams at delay 0, typing the prompt with
    ghost text off and on (issue 6). Each sample writes a letter the model knows, then a
    marker it does not: with ghost text on, each of them makes the ghost worker feed one
    id and run 40 greedy steps; the marker's echo times both keys. Markers are used once
    each, so a marker's first appearance on the pty is its echo. Returns {ghost: echoes}."""
    out = {}
    for ghost in (False, True):
        markers = iter(b"@#%*+=~|<>{}_`^"[i:i + 1] for i in range(15))
        app = PtyApp(checkpoint, home / f"ghost-{ghost}", {"length": 100_000, "delay_ms": 0, "seed": 1,
                                                           "ghost": ghost})
        try:  # a timed-out wait raises SystemExit: never leave the app running
            app.wait(rb"ready \xc2\xb7 0 chars")
            app.send(b"KING:")
            time.sleep(0.3)
            since = app.mark()
            app.send(b"\r")
            app.wait(rb"generating", since)
            echoes = []
            for _ in range(samples):
                time.sleep(0.25)
                marker = next(markers)
                mark = app.mark()
                sent = app.send(b"e" + marker)
                at, _ = app.wait(re.escape(marker), mark)
                echoes.append(at - sent)
            out[ghost] = echoes
        finally:
            app.close()
    return out


def stream_run(checkpoint: Path, home: Path, n: int, echo_samples: int, to_the_end: bool) -> tuple[list[float], PtyApp]:
    """Generate ``n`` chars at delay 0, timing the echo of ``echo_samples`` keys typed while
    it streams; with ``to_the_end``, wait until the run is done. Returns (echoes in s, the
    running app: the caller closes it)."""
    app = prompted_app(checkpoint, home, n)
    try:  # a timed-out wait raises SystemExit: never leave the app running
        since = app.mark()
        app.send(b"\r")
        app.wait(rb"generating \xc2\xb7 [1-9]", since)
        echoes = []
        for _ in range(echo_samples):  # '@' is in no Shakespeare vocabulary: only the prompt shows it
            time.sleep(0.25)
            mark = app.mark()
            sent = app.send(b"@")
            at, _ = app.wait(rb"@", mark)
            echoes.append(at - sent)
        if to_the_end:
            app.wait(rb"done \xc2\xb7", since, timeout=600)
    except BaseException:
        app.close()
        raise
    return echoes, app


F7 = b"\x1b[18~"  # xterm's F7: the temperature sweep
# Keys for echo timing: in no Shakespeare vocabulary and nowhere in the sweep screen's own
# text, and each used once, so its first appearance on the pty is its echo (a redraw of
# the prompt row, say for the cursor's blink, cannot show a key before it arrived).
ECHO_KEYS = b"@#%*+=~|<>[]{}_`"


def sweep_echo(checkpoint: Path, home: Path, samples: int) -> tuple[list[float], list[float], float]:
    """Key echo on the sweep screen (F7), idle and while a 4-way sweep streams at delay 0.
    Returns (idle echoes in s, echoes while sweeping, steps/s the app reports)."""
    keys = iter(ECHO_KEYS[i:i + 1] for i in range(len(ECHO_KEYS)))
    app = PtyApp(checkpoint, home, {"length": 100_000, "delay_ms": 0, "seed": 1})
    try:  # a timed-out wait raises SystemExit: never leave the app running
        app.wait(rb"ready \xc2\xb7 0 chars")
        app.send(F7)
        app.wait(rb"temperatures")

        def echoes() -> list[float]:
            out = []
            for _ in range(samples):
                time.sleep(0.25)
                key = next(keys)
                mark = app.mark()
                sent = app.send(key)
                at, _ = app.wait(re.escape(key), mark)
                out.append(at - sent)
            return out

        idle = echoes()
        app.send(b"\x15")  # Ctrl+U: clear the prompt (unknown characters would pop up a notice over the status)
        time.sleep(0.2)
        app.send(b"KING:")
        time.sleep(0.2)
        since = app.mark()
        app.send(b"\r")
        app.wait(rb"generating", since)
        busy = echoes()
        mark = app.mark()
        app.send(b"\x1b")  # Esc stops the sweep
        _, m = app.wait(rb"stopped \xc2\xb7 [\d,]+ chars \xc2\xb7 ([\d,]+) chars/s", mark)
        return idle, busy, float(m.group(1).replace(b",", b""))
    finally:
        app.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    from charlstm_tui import BUNDLED_CHECKPOINT

    ap.add_argument("--checkpoint", type=Path, default=BUNDLED_CHECKPOINT)
    ap.add_argument("--chars", type=int, default=5_000, help="characters per leg of the rate comparison")
    ap.add_argument("--rounds", type=int, default=11, help="app legs of the rate comparison, each between two raw legs")
    ap.add_argument("--rss-chars", type=int, default=100_000, help="characters before reading RSS (0: skip)")
    ap.add_argument("--starts", type=int, default=3, help="fresh starts timed for the first frame")
    ap.add_argument("--ghost-keys", type=int, default=8, choices=range(16),
                    help="keys timed typing a prompt while streaming, ghost text off and on (0: skip)")
    ap.add_argument("--sweep-keys", type=int, default=8, choices=range(9),
                    help="keys timed on the sweep screen, idle and then sweeping (0: skip)")
    args = ap.parse_args()
    if args.rounds < 1:
        raise SystemExit(f"bench: --rounds must be at least 1, got {args.rounds}")
    if not args.checkpoint.is_file():
        raise SystemExit(f"bench: no checkpoint at {args.checkpoint}; pass --checkpoint FILE")
    print(f"checkpoint {args.checkpoint}, pty {COLS}x{ROWS}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}")

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        starts = first_frames(args.checkpoint, home, args.starts)
        frame = statistics.median(s[0] for s in starts)
        ready = statistics.median(s[1] for s in starts)
        print(f"first frame   {frame:.3f} s median of {len(starts)} "
              f"({', '.join(f'{s[0]:.3f}' for s in starts)}); model ready at {ready:.2f} s   goal <= 0.5 s")

        legs = rate_legs(args.checkpoint, home / "rate", args.chars, args.rounds, RawModel(args.checkpoint))

        def median(key: str) -> float:
            return statistics.median(leg[key] for leg in legs)

        of_sampler = [leg["screen"] / leg["sampler"] for leg in legs]
        of_session = [leg["screen"] / leg["session"] for leg in legs]
        print(f"raw           {median('sampler'):,.0f} chars/s Sampler.stream, {median('session'):,.0f} chars/s "
              f"Session.generate (medians of the raw legs' neighbour means)")
        print(f"screen        {median('screen'):,.0f} chars/s first to last char on the pty; ratio "
              f"{statistics.median(of_sampler):.2f} of Sampler, {statistics.median(of_session):.2f} of Session "
              f"(median of {len(legs)} legs)   goal >= 0.90")
        print(f"ratio legs    of Sampler {', '.join(f'{x:.2f}' for x in of_sampler)}")
        print(f"threads       the generating thread ran {median('worker'):.1%} of each leg's wall time, the UI "
              f"thread {median('ui'):.1%} (medians)")
        print(f"cpu per char  {1e6 * median('app_cpu'):.0f} us the whole app (both processes, every thread) vs "
              f"{1e6 * median('raw_cpu'):.0f} us raw Session")
        echoes, app = stream_run(args.checkpoint, home / "echo", 100_000, 15, to_the_end=False)
        app.close()
        print(f"key echo      {1000 * statistics.median(echoes):.0f} ms median, {1000 * max(echoes):.0f} ms max "
              f"of {len(echoes)} keys while streaming   goal <= 50 ms")

        if args.sweep_keys:
            idle, busy, steps = sweep_echo(args.checkpoint, home / "sweep", args.sweep_keys)
            print(f"sweep echo    {1000 * statistics.median(busy):.0f} ms median, {1000 * max(busy):.0f} ms max of "
                  f"{len(busy)} keys while a 4-way sweep streams ({steps:,.0f} steps/s, x4 chars); idle "
                  f"{1000 * statistics.median(idle):.0f} ms: ratio {statistics.median(busy) / statistics.median(idle):.2f}"
                  "   goal <= 50 ms")

        if args.rss_chars:
            _, app = stream_run(args.checkpoint, home / "rss", args.rss_chars, 0, to_the_end=True)
            rss, peak = app.rss_mb()
            pss, procs = app.pss_mb(), len(app.pids())
            app.close()
            print(f"memory        {pss:.0f} MB proportional set of the app's {procs} processes after "
                  f"{args.rss_chars:,} chars; UI process {rss:.0f} MB resident (peak {peak:.0f} MB)   goal <= 500 MB")

        if args.ghost_keys:
            ghost = ghost_echo(args.checkpoint, home / "ghost", args.ghost_keys)
            on, off = statistics.median(ghost[True]), statistics.median(ghost[False])
            print(f"ghost echo    {1000 * on:.0f} ms median, {1000 * max(ghost[True]):.0f} ms max of {len(ghost[True])} "
                  f"keys typed while streaming with ghost text on; off {1000 * off:.0f} ms: ratio {on / off:.2f}"
                  "   goal <= 50 ms")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
