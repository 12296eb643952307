"""The inspector (F8, or a click on the text), driven with Pilot on the tiny checkpoint:
its top 10, entropy and chosen-character probability are core's distribution at the
cursor, computed independently by priming a fresh model with the text before it."""

from __future__ import annotations

import math

import torch

from charlstm_tui.widgets.inspector import InspectorPanel, bar, show_char
from core.checkpoint import load_checkpoint
from core.sampling import Sampler

from .conftest import drive, finished, type_text, wait_for


def core_distribution(checkpoint, prefix: str) -> torch.Tensor:
    """p(next char | prefix) (V,), from a fresh model primed with ``prefix`` in one call."""
    ckpt = load_checkpoint(checkpoint)
    logits, _ = Sampler(ckpt.build_model(), ckpt.vocab).prime(ckpt.vocab.encode(prefix))
    return torch.softmax(logits[0], -1)


async def inspected(pilot, pos: int):
    main = pilot.app.main
    await wait_for(pilot, lambda: main.explorer.inspection is not None and main.explorer.inspection[0] == pos,
                   f"the inspector at position {pos}")
    return main.explorer.inspection[1]


def check(inspection, probs: torch.Tensor, chosen: int) -> None:
    top_p, top_ids = probs.topk(10)
    assert [i for i, _ in inspection.top] == top_ids.tolist()
    assert all(abs(p - q) < 1e-5 for (_, p), q in zip(inspection.top, top_p.tolist()))
    entropy = -sum(p * math.log2(p) for p in probs.tolist() if p > 0)
    assert abs(inspection.entropy_bits - entropy) < 1e-3
    assert inspection.chosen == chosen
    assert abs(inspection.chosen_p - float(probs[chosen])) < 1e-5


def test_inspector_matches_core_with_keys_and_click(app_on, tiny_checkpoint) -> None:
    app = app_on(delay_ms=0, length=120, seed=5)

    async def script(pilot) -> None:
        main = app.main
        view = main.output
        await type_text(pilot, "KING:")
        await pilot.press("enter")
        await finished(pilot)
        t = view.transcript
        text = t.text()
        vocab = main.model.vocab

        await pilot.press("f8")  # inspect mode: the cursor on the last character
        assert view.has_focus and main.has_class("-inspecting")
        assert view.cursor == t.end - 1
        await inspected(pilot, t.end - 1)
        for _ in range(7):
            await pilot.press("left")
        pos = t.end - 8
        assert view.cursor == pos
        inspection = await inspected(pilot, pos)
        check(inspection, core_distribution(tiny_checkpoint, text[:pos]), vocab.encode(text[pos])[0])

        # The panel shows the 10 candidates with bars, the entropy and the chosen one.
        panel = main.query_one(InspectorPanel)
        assert panel.display and not main.panel.display
        shown = str(panel.render())
        assert f"entropy {inspection.entropy_bits:.2f} bits" in shown
        assert f"model p            {100 * inspection.chosen_p:5.1f}%" in shown
        for i, (cid, p) in enumerate(inspection.top):
            assert f"{(i + 1) % 10} {show_char(vocab.chars[cid]):>2} {bar(p)} {100 * p:5.1f}%" in shown
        # The probability it was sampled with (temperature 0.8) is shown beside it.
        index, col = t.locate(pos)
        assert f"after T and top-p  {100 * t.lines[index].probs[col]:5.1f}%" in shown

        # Up moves a display row; the inspector follows.
        await pilot.press("up")
        assert view.cursor < pos
        up = view.cursor
        check(await inspected(pilot, up), core_distribution(tiny_checkpoint, text[:up]), vocab.encode(text[up])[0])

        # A click sets the cursor: row 1 (under the run's rule), cell 2 is position 2 ('N' of KING).
        view.scroll_home(animate=False, immediate=True)
        await pilot.pause()
        await pilot.click("#output", offset=(2 + 2, 1 + 1))  # border + padding, border + the rule
        assert view.cursor == 2
        check(await inspected(pilot, 2), core_distribution(tiny_checkpoint, "KI"), vocab.encode("N")[0])

        # Esc leaves inspect mode: the settings panel is back, the prompt has the focus.
        await pilot.press("escape")
        assert view.cursor is None and not main.has_class("-inspecting") and main.prompt.has_focus

    drive(app, script)


def test_inspector_outside_the_context(app_on) -> None:
    """Text from before the current context (an earlier run) is not inspected, and says so."""
    app = app_on(delay_ms=0, length=30, seed=1)

    async def script(pilot) -> None:
        main = app.main
        await type_text(pilot, "KING:")
        await pilot.press("enter")
        await finished(pilot)
        await type_text(pilot, "QUEEN:")
        await pilot.press("enter")
        await finished(pilot)
        await pilot.press("f8")
        main.output.set_cursor(3)  # in the first run's text
        panel = main.query_one(InspectorPanel)
        await wait_for(pilot, lambda: "not in the model's current context" in str(panel.render()),
                       "the inspector to say why")
        assert main.explorer.inspection is None

    drive(app, script)
