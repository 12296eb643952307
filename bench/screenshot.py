"""Export a screenshot of the app mid-generation, as SVG and PNG, for the README.

Runs the real app headless (``App.run_test``), types a prompt, lets the model stream,
and saves Textual's SVG screenshot while it is still generating; then converts the
SVG to PNG with the first converter found: cairosvg (pip), rsvg-convert (apt
librsvg2-bin) or headless Chromium.

    python bench/screenshot.py [--checkpoint PATH] [--out docs/screenshot.png]
                               [--prompt "ROMEO:"] [--chars 500] [--size 110x34]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
ROOT = Path(__file__).resolve().parent.parent


def to_png(svg: Path, png: Path, width: int) -> str:
    """Convert ``svg`` to ``png`` (``width`` pixels wide); returns the converter used."""
    try:
        import cairosvg  # type: ignore[import-not-found]

        cairosvg.svg2png(url=str(svg), write_to=str(png), output_width=width)
        return "cairosvg"
    except ImportError:
        pass
    if shutil.which("rsvg-convert"):
        subprocess.run(["rsvg-convert", "-w", str(width), str(svg), "-o", str(png)], check=True)
        return "rsvg-convert"
    for browser in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(browser):
            subprocess.run([browser, "--headless", "--disable-gpu", "--no-sandbox", f"--screenshot={png}",
                            f"--window-size={width},{int(width * 0.7)}", svg.resolve().as_uri()],
                           check=True, capture_output=True)
            return browser
    raise SystemExit(f"saved {svg}, but found no SVG-to-PNG converter: pip install cairosvg, "
                     "or apt-get install librsvg2-bin (rsvg-convert), or chromium")


async def capture(checkpoint: Path, svg: Path, prompt: str, chars: int, size: tuple[int, int]) -> None:
    from charlstm_tui.app import CharLSTMApp

    app = CharLSTMApp(checkpoint, explicit=True)
    async with app.run_test(size=size) as pilot:
        while app.main.model is None:
            await pilot.pause(0.05)
        if app.screen is not app.main:
            raise SystemExit(f"could not load {checkpoint}")
        await pilot.press(*[{" ": "space", "\n": "ctrl+j"}.get(c, c) for c in prompt])
        await pilot.press("enter")
        while app.main.run is None or (app.main.run.count < chars and not app.main.run.finished):
            await pilot.pause(0.05)
        app.main._show_status()  # the status line as of this frame
        await pilot.pause(0.1)
        app.save_screenshot(filename=svg.name, path=str(svg.parent))
        await pilot.press("escape")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    from charlstm_tui import BUNDLED_CHECKPOINT

    ap.add_argument("--checkpoint", type=Path, default=BUNDLED_CHECKPOINT)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    ap.add_argument("--prompt", default="ROMEO:")
    ap.add_argument("--chars", type=int, default=500, help="characters streamed before the shot")
    ap.add_argument("--size", default="110x34", help="terminal COLSxROWS")
    ap.add_argument("--width", type=int, default=1400, help="PNG width in pixels")
    args = ap.parse_args()
    if not args.checkpoint.is_file():
        raise SystemExit(f"no checkpoint at {args.checkpoint}; pass --checkpoint FILE")
    cols, rows = (int(x) for x in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as home:
        # Own settings and history: a seeded, visibly streaming run (delay 5 ms per char).
        os.environ["XDG_DATA_HOME"] = home
        (Path(home) / "charlstm-tui").mkdir()
        (Path(home) / "charlstm-tui" / "settings.json").write_text(json.dumps(
            {"temperature": 0.8, "length": 100_000, "delay_ms": 5, "seed": 1337, "theme": "textual-dark"}))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        svg = args.out.with_suffix(".svg")
        asyncio.run(capture(args.checkpoint, svg, args.prompt, args.chars, (cols, rows)))
    tool = to_png(svg, args.out, args.width)
    print(f"wrote {svg} and {args.out} (converted with {tool})")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
