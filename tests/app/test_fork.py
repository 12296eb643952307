"""Fork and rewind, driven with Pilot on the tiny checkpoint: picking a candidate (or
resampling) at the cursor continues exactly as core does from the session's snapshot
there with the same seed; earlier branches stay reachable with [ and ]."""

from __future__ import annotations

from charlstm_tui.branches import BranchTree, Segment
from core.checkpoint import load_checkpoint
from core.sampling import SampleConfig, Sampler
from core.session import Session

from .conftest import drive, finished, type_text, wait_for

SEED, LENGTH = 7, 80


def core_fork(checkpoint, sp: int, first: int | None, seed: int) -> str:
    """Core's own fork: generate the first run, rewind to ``sp``, feed ``first`` (if
    any), then generate with ``seed``."""
    ckpt = load_checkpoint(checkpoint)
    session = Session(Sampler(ckpt.build_model(), ckpt.vocab))
    session.feed("KING:")
    for _ in session.generate(SampleConfig(length=LENGTH, seed=SEED)):
        pass
    session.rewind(sp)
    if first is not None:
        session.feed_ids([first])
    return "".join(ckpt.vocab.chars[i] for i, _ in session.generate(SampleConfig(length=LENGTH, seed=seed)))


async def generate_then_inspect(pilot, back: int) -> tuple[str, int]:
    """Generate after "KING:", open the inspector (F8) and step ``back`` characters left:
    (the text, the cursor's position)."""
    await type_text(pilot, "KING:")
    await pilot.press("enter")
    await finished(pilot)
    original = pilot.app.main.output.transcript.text()
    await pilot.press("f8")
    for _ in range(back):
        await pilot.press("left")
    return original, pilot.app.main.output.cursor


def test_fork_continues_as_core_and_branches_stay_reachable(app_on, tiny_checkpoint) -> None:
    app = app_on(delay_ms=0, length=LENGTH, seed=SEED)

    async def script(pilot) -> None:
        main = app.main
        view = main.output
        t = view.transcript
        original, pos = await generate_then_inspect(pilot, 30)
        assert original == "KING:" + core_fork(tiny_checkpoint, 5, None, SEED)  # the first run, as core has it
        await wait_for(pilot, lambda: main.explorer.inspection is not None and main.explorer.inspection[0] == pos, "the inspector")
        top = main.explorer.inspection[1].top
        chars = main.model.vocab.chars
        pick = next(i for i, (cid, _) in enumerate(top) if chars[cid] != original[pos])  # not the char there
        cid, p = top[pick]

        await pilot.press(str((pick + 1) % 10))  # fork with that candidate
        await finished(pilot)
        forked = t.text()
        sp = pos - main.context_start
        assert main.run.kind == "fork" and main.run.seed_offset == 1
        assert forked[:pos] == original[:pos] and forked[pos] == chars[cid]
        assert forked[pos + 1:] == core_fork(tiny_checkpoint, sp, cid, SEED + 1)
        index, col = t.locate(pos)
        assert abs(t.lines[index].probs[col] - p) < 1e-6  # the heat-map shows the candidate's probability
        assert view.border_subtitle == "branch 2/2 · [ ] switch"
        assert "branch 2/2" in str(main.inspector.render())

        # [ brings the original branch back; the session follows (rewound, then only the
        # branch's text fed): after the inspector has applied it, it holds the screen's text.
        await pilot.press("left_square_bracket")
        assert t.text() == original and view.border_subtitle == "branch 1/2 · [ ] switch"
        await wait_for(pilot, lambda: main.explorer.inspection is not None and main.explorer.inspection[0] == view.cursor,
                       "the inspector after switching")
        assert main.model.session.text == t.text(main.context_start, t.end)
        await pilot.press("right_square_bracket")
        assert t.text() == forked

        # r resamples the character at the cursor: a third branch, seed offset 2.
        await pilot.press("r")
        await finished(pilot)
        assert view.border_subtitle == "branch 3/3 · [ ] switch"
        assert t.text() == original[:pos] + core_fork(tiny_checkpoint, sp, None, SEED + 2)
        for want in (original, forked):  # both earlier branches are still there
            await pilot.press("right_square_bracket")
            assert t.text() == want

        # A new run starts a new context: the forks are gone.
        await pilot.press("escape")
        await type_text(pilot, "QUEEN:")
        await pilot.press("enter")
        await finished(pilot)
        assert not main.explorer.branches.forks and view.border_subtitle == ""

    drive(app, script)


def seg(text: str) -> Segment:
    return Segment(text, bytes(len(text)), [0.5] * len(text))


def test_branch_tree_nests_forks_in_their_branch() -> None:
    """A fork inside a branch goes away with that branch and comes back with it."""
    tree = BranchTree()
    outer = tree.fork(10, seg("abcdef"))  # on screen: a new branch after 10
    inner = tree.fork(14, seg("wxyz"))  # a fork inside the new branch
    assert set(tree.forks) == {10, 14} and len(inner.branches) == 2
    back = tree.switch(outer, -1, seg("new-branch-text"))
    assert back.text == "abcdef" and set(tree.forks) == {10}  # the inner fork left with its branch
    again = tree.switch(outer, 1, seg("abcdef"))
    assert again.text == "new-branch-text" and set(tree.forks) == {10, 14}
    assert tree.at_or_before(13) is outer and tree.at_or_before(20) is inner and tree.at_or_before(9) is None
    tree.drop_from(12)
    assert set(tree.forks) == {10}


def test_a_burst_of_resamples_keeps_every_branch_reachable(app_on) -> None:
    """r pressed three times at once: a branch left before it showed a character is not
    kept, so ] goes round branches that all hold text, and never cuts the text at the
    fork (an empty branch did, and put the cursor before the fork: every branch lost)."""
    from .conftest import burst

    app = app_on(delay_ms=0, length=LENGTH, seed=None)

    async def script(pilot) -> None:
        main = app.main
        view = main.output
        t = view.transcript
        original, pos = await generate_then_inspect(pilot, 10)
        await burst(pilot, "r", 3)
        await finished(pilot)
        fork = main.explorer.branches.forks[pos]
        assert all(b.segment.text for i, b in enumerate(fork.branches) if i != fork.current)
        seen = []
        for _ in range(len(fork.branches)):
            await pilot.press("right_square_bracket")
            assert t.end > pos and view.cursor >= pos, "the text was cut at the fork"
            assert view.border_subtitle.startswith("branch "), view.border_subtitle
            seen.append(t.text())
        assert original in seen and len(set(seen)) == len(seen)
        assert main.explorer.branches.forks[pos] is fork

    drive(app, script)


def test_branch_tree_drops_a_branch_left_empty() -> None:
    """A branch that showed nothing when it was left (forked again at once, or switched
    away from) is not kept; the branch the switch was headed for is shown."""
    tree = BranchTree()
    fork = tree.fork(10, seg("original"))
    tree.fork(10, seg(""))  # forked again before the first branch showed a character
    tree.fork(10, seg(""))
    assert [b.segment.text for b in fork.branches] == ["original", ""] and fork.current == 1
    assert tree.switch(fork, 1, seg("")).text == "original"  # the empty current one goes
    assert len(fork.branches) == 1 and fork.current == 0
    tree.fork(10, seg("original"))
    assert tree.switch(fork, -1, seg("second")).text == "original"
    assert tree.switch(fork, -1, seg("original")).text == "second" and fork.current == 1
