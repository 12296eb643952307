"""The confidence heat-map (F5), driven with Pilot on the tiny checkpoint: each generated
character is drawn in the band of the probability it was sampled with (the probability
core's session gives it), and the toggle works while a run streams."""

from __future__ import annotations

import math

from rich.style import Style
from textual.widgets import Static

from charlstm_tui.widgets.output import MODEL
from charlstm_tui.widgets.surprise import band
from core.checkpoint import load_checkpoint
from core.sampling import SampleConfig, Sampler
from core.session import Session

from .conftest import drive, finished, type_text, wait_for


def row_styles(view, y: int) -> list[tuple[int, float, Style]]:
    """(kind, prob, drawn style) of each character on screen row ``y`` of ``view``."""
    index, sub = view.rows.find(view.scroll_offset.y + y)
    line = view.transcript.lines[index]
    starts = line.rows(view.rows.width)
    a = starts[sub]
    b = starts[sub + 1] if sub + 1 < len(starts) else len(line.text)
    styles = [seg.style for seg in view.render_line(y) for _ in seg.text]
    return [(line.kinds[i], line.probs[i], styles[i - a]) for i in range(a, b)]


def expected_style(view, kind: int, prob: float) -> Style:
    """The style the heat-map should give: the band of -log2 p for model text."""
    base = view.rich_style
    if kind == MODEL and prob == prob:
        return base + view.band_styles()[band(-math.log2(prob))]
    return base + view.get_component_rich_style(f"output--{('prompt', 'model', 'user')[kind]}")


def test_heatmap_colours_stored_probs_and_toggles_while_streaming(app_on, tiny_checkpoint) -> None:
    app = app_on(delay_ms=2, length=100_000, seed=3, temperature=1.0)

    async def script(pilot) -> None:
        main = app.main
        view = main.output
        legend = main.query_one("#heat-legend", Static)
        assert not view.heatmap and not legend.display
        await type_text(pilot, "KING:")
        await pilot.press("enter")
        await wait_for(pilot, lambda: main.run.count > 20, "some streamed text")
        await pilot.press("f5")  # toggled mid-stream (the run is far from its length)
        assert main.run.finished is None
        assert view.heatmap and legend.display
        assert "p ≥ 50%" in str(legend.render()) and "< 1.6%" in str(legend.render())
        count = main.run.count
        await wait_for(pilot, lambda: main.run.count > count + 200, "more text, coloured as it streams")
        await pilot.press("escape")
        await finished(pilot)
        n = main.run.count

        # The probabilities the transcript stores are the ones core's session sampled with.
        ckpt = load_checkpoint(tiny_checkpoint)
        session = Session(Sampler(ckpt.build_model(), ckpt.vocab))
        session.feed("KING:")
        core = list(session.generate(SampleConfig(temperature=1.0, length=n, seed=3)))
        t = view.transcript
        kinds, probs = t.kinds_probs(t.start + 5, t.end)
        assert set(kinds) == {MODEL}
        assert [ckpt.vocab.chars[i] for i, _ in core] == list(t.text(t.start + 5, t.end))
        assert all(abs(p - q) < 1e-5 for p, q in zip(probs, [p for _, p in core], strict=True))

        # Every character on screen is drawn in its band; several bands are in use.
        height = view.scrollable_content_region.height
        seen = set()
        for y in range(min(height, view.rows.total)):
            for kind, prob, style in row_styles(view, y):
                assert style == expected_style(view, kind, prob)
                if kind == MODEL:
                    seen.add(band(-math.log2(prob)))
        assert len(seen) >= 3

        # Off again: model text in one style, whatever its probability.
        await pilot.press("f5")
        assert not view.heatmap and not legend.display
        plain = view.rich_style + view.get_component_rich_style("output--model")
        assert all(style == plain for y in range(min(height, view.rows.total))
                   for kind, _, style in row_styles(view, y) if kind == MODEL)
        assert main.settings.heatmap is False

    drive(app, script)


def test_heatmap_setting_is_kept(app_on) -> None:
    """F5 is saved with the settings: the next start shows the heat-map."""
    from charlstm_tui.settings import load_settings

    app = app_on()

    async def script(pilot) -> None:
        await pilot.press("f5")
        assert load_settings().heatmap is True

    drive(app, script)
    app2 = app_on()

    async def again(pilot) -> None:
        assert app2.main.output.heatmap and app2.main.query_one("#heat-legend").display

    drive(app2, again)


def lightness(rgb) -> float:
    """CIE L* (0 black .. 100 white) of an sRGB triplet."""
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    y = sum(w * linear(c / 255) for w, c in zip((0.2126, 0.7152, 0.0722), rgb))
    return 116 * y ** (1 / 3) - 16 if y > 0.008856 else 903.3 * y


def test_the_bands_are_one_hue_that_gets_stronger_in_every_theme(app_on) -> None:
    """More surprising = stronger: each band's red lies further from the theme's background
    in lightness, in truecolour and as a 256-colour terminal shows it."""
    import colorsys

    from rich.color import ColorSystem

    app = app_on()

    async def script(pilot) -> None:
        view = app.main.output
        for theme in sorted(app.available_themes):
            app.theme = theme
            await pilot.pause()
            view.notify_style_update()
            dark = app.current_theme.dark
            for system in (None, ColorSystem.EIGHT_BIT):
                ramp = []
                for style in view.band_styles()[1:]:
                    colour = style.bgcolor if system is None else style.bgcolor.downgrade(system)
                    rgb = colour.get_truecolor()
                    assert colorsys.rgb_to_hls(*(c / 255 for c in rgb))[0] == 0, (theme, rgb)  # red
                    ramp.append(lightness(rgb))
                steps = [b - a for a, b in zip(ramp, ramp[1:])]
                assert all(s > 5 for s in steps) if dark else all(s < -5 for s in steps), (theme, ramp)

    drive(app, script)
