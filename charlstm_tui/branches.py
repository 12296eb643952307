"""Fork and rewind: the tree of continuations on the main screen, as plain data.

A *fork* sits at a transcript position: the text from there on can be one of several
*branches*. The branch on screen lives in the transcript itself; the others are kept
here as segments (text, kinds, probabilities), each with the forks nested inside it.
Switching branch swaps segments; nothing here touches the model (the screen rewinds
the session to the fork's snapshot and feeds only the restored segment).
No Textual, no torch: cheap to test.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Segment:
    """Text from a fork position to where the branch ended, with a kind and a
    probability per character (as in :class:`~charlstm_tui.widgets.transcript.Transcript`)."""

    text: str = ""
    kinds: bytes = b""
    probs: list[float] = field(default_factory=list)


@dataclass
class Branch:
    """One alternative after a fork: its text (filled when the user leaves it) and the
    forks inside it (positions past the fork), kept while it is off screen."""

    segment: Segment = field(default_factory=Segment)
    forks: dict[int, "Fork"] = field(default_factory=dict)


@dataclass
class Fork:
    """The branches that start at transcript position ``pos``; ``current`` is on screen."""

    pos: int
    branches: list[Branch] = field(default_factory=list)
    current: int = 0


class BranchTree:
    """The forks on the path on screen, by position (nested ones live in their branch)."""

    def __init__(self) -> None:
        self.forks: dict[int, Fork] = {}

    def clear(self) -> None:
        self.forks.clear()

    def _pack(self, fork: Fork, tail: Segment) -> None:
        """Store what is on screen after ``fork`` as its current branch: the tail, and
        the forks past it (they belong to that branch). A branch left before it showed
        a character (a fork pressed again at once, a stop) is dropped: there is nothing
        to come back to, and an empty branch would cut the text at the fork."""
        inner = {p: f for p, f in self.forks.items() if p > fork.pos}
        for p in inner:
            del self.forks[p]
        if not tail.text and not inner:
            del fork.branches[fork.current]
        else:
            fork.branches[fork.current] = Branch(tail, inner)

    def fork(self, pos: int, tail: Segment) -> Fork:
        """A new branch at ``pos``: the text on screen from ``pos`` (``tail``) is kept
        as a sibling, and the new, empty branch becomes current."""
        fork = self.forks.get(pos)
        if fork is None:
            fork = self.forks[pos] = Fork(pos, [Branch()])
        self._pack(fork, tail)
        fork.branches.append(Branch())
        fork.current = len(fork.branches) - 1
        return fork

    def switch(self, fork: Fork, n: int, tail: Segment) -> Segment:
        """Show the branch ``n`` steps after the current one of ``fork`` (-1: the one
        before), cyclically; ``tail`` is what the screen shows from ``fork.pos`` now.
        Returns the segment to show instead (its forks are restored)."""
        branch = fork.branches[(fork.current + n) % len(fork.branches)]
        self._pack(fork, tail)
        fork.current = next(i for i, b in enumerate(fork.branches) if b is branch)
        self.forks.update(branch.forks)
        branch.forks = {}
        return branch.segment

    def at_or_before(self, pos: int) -> Fork | None:
        """The innermost fork whose branch holds position ``pos`` (the latest fork at or
        before it), or None."""
        best = max((p for p in self.forks if p <= pos), default=None)
        return None if best is None else self.forks[best]

    def drop_from(self, pos: int) -> None:
        """Forget forks at ``pos`` or later (that text is gone)."""
        for p in [p for p in self.forks if p >= pos]:
            del self.forks[p]
