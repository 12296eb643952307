"""Errors a user can act on.

Every error in ``core`` is a :class:`CharLSTMError` whose message is one line that
names the problem and the fix. The CLI turns them into ``click.ClickException``
and the app into a notice, so no user ever sees a traceback for bad input.
"""

from __future__ import annotations


class CharLSTMError(Exception):
    """Base class: ``str(err)`` is a single line naming the problem and the fix."""


class DataError(CharLSTMError):
    """A text file that cannot be used as training or evaluation data."""


class VocabError(CharLSTMError):
    """Text holding characters the model's vocabulary does not know."""

    def __init__(self, message: str, unknown: str = "") -> None:
        super().__init__(message)
        self.unknown = unknown


class CheckpointError(CharLSTMError):
    """A checkpoint that is missing, corrupt, foreign, too new or unwritable."""


class ConfigError(CharLSTMError):
    """An option value outside its valid range."""


class TrainingError(CharLSTMError):
    """Training cannot go on (a non-finite loss, a mismatched resume)."""
