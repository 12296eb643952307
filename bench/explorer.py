"""The main screen's explorer (issue 6), measured on the model alone (no UI).

1. Ghost text per keystroke: :class:`charlstm_tui.bridge.Ghost` (carried state: feed the
   typed id, or nothing when it was the predicted one) against re-reading the whole
   prompt and running 40 greedy steps from scratch, as a non-incremental ghost would.
2. Inspector: the distribution at a recent position (a ring snapshot) and at an old one
   (rebuilt from a stride snapshot over at most 63 ids).

    python bench/explorer.py [--checkpoint PATH] [--prompt-chars 400] [--keys 40]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
ROOT = Path(__file__).resolve().parent.parent


def ms(times: list[float]) -> str:
    return f"{1000 * statistics.median(times):.1f} ms"


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from charlstm_tui import BUNDLED_CHECKPOINT
    from charlstm_tui.bridge import Ghost, generation_threads, inspect, load_model
    from core.sampling import SampleConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=BUNDLED_CHECKPOINT)
    ap.add_argument("--prompt-chars", type=int, default=400, help="prompt typed before the timed keys")
    ap.add_argument("--keys", type=int, default=40, help="keystrokes timed")
    args = ap.parse_args()
    if not args.checkpoint.is_file():
        raise SystemExit(f"bench: no checkpoint at {args.checkpoint}; pass --checkpoint FILE")
    model = load_model(args.checkpoint)  # sets the app's generation thread count
    sampler = model.session.sampler
    text = (ROOT.parent / "shared" / "data" / "tinyshakespeare.txt")
    corpus = text.read_text(encoding="utf-8") if text.exists() else "KING:\nWhat say you to this, my lord?\n" * 500
    corpus = model.clean(corpus)[0]
    prompt, keys = corpus[:args.prompt_chars], corpus[args.prompt_chars:args.prompt_chars + args.keys]
    print(f"checkpoint {args.checkpoint} ({model.info.n_layers}x{model.info.n_embd}), {generation_threads()} thread(s), "
          f"prompt {len(prompt)} chars, {len(keys)} keys")

    ghost = Ghost(model)
    ghost.predict(prompt)
    inc, full, hit, miss = [], [], [], []
    for i in range(1, len(keys) + 1):
        typed = prompt + keys[:i]
        shown = ghost.predict(prompt + keys[:i - 1])
        start = time.perf_counter()
        ghost.predict(typed)
        inc.append(time.perf_counter() - start)
        (hit if shown and shown[0] == keys[i - 1] else miss).append(inc[-1])
        start = time.perf_counter()
        sampler.generate(typed, SampleConfig(temperature=0, length=ghost.length))
        full.append(time.perf_counter() - start)
    print(f"ghost per key {ms(inc)} median incremental vs {ms(full)} re-reading the prompt: ratio "
          f"{statistics.median(full) / statistics.median(inc):.1f}x; {len(hit)} keys typed the ghost's next "
          f"character ({ms(hit) if hit else '-'}: one step), {len(miss)} did not ({ms(miss) if miss else '-'}: "
          f"one id fed, {ghost.length} steps)")

    session = model.session
    session.feed(prompt)
    for _ in session.generate(SampleConfig(length=3000, seed=1)):
        pass
    recent, old = [], []
    for _ in range(30):
        for pos, out in ((len(session) - 10, recent), (len(session) - 2500 + 63, old)):
            start = time.perf_counter()
            inspect(session, pos)
            out.append(time.perf_counter() - start)
    print(f"inspector     {ms(recent)} median at a recent position (ring snapshot), {ms(old)} at an old one "
          f"(rebuilt over <= 63 ids); run in a worker either way")


if __name__ == "__main__":
    main()
