"""Character vocabulary: the lab's ``sorted(set(text))``, with an explicit policy
for characters it does not know."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import VocabError

if TYPE_CHECKING:
    import torch


def describe_chars(chars: str, limit: int = 12) -> str:
    """Render characters readably for an error message: ``'é', '\\t'``."""
    shown = ", ".join(repr(ch) for ch in chars[:limit])
    return shown + (f" and {len(chars) - limit} more" if len(chars) > limit else "")


@dataclass(frozen=True)
class CharVocab:
    """An ordered set of characters; a character's id is its index."""

    chars: tuple[str, ...]

    def __post_init__(self) -> None:
        # A lookup table built once; frozen dataclass, so set it via object.
        object.__setattr__(self, "_stoi", {ch: i for i, ch in enumerate(self.chars)})

    @classmethod
    def from_text(cls, text: str) -> "CharVocab":
        """The lab's vocabulary: every distinct character of ``text``, sorted."""
        return cls(tuple(sorted(set(text))))

    @property
    def size(self) -> int:
        return len(self.chars)

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, ch: object) -> bool:
        return ch in self._stoi  # type: ignore[attr-defined]

    def unknown_chars(self, text: str) -> str:
        """The distinct characters of ``text`` not in the vocabulary, in order of first use."""
        stoi = self._stoi  # type: ignore[attr-defined]
        return "".join(dict.fromkeys(ch for ch in text if ch not in stoi))

    def encode(self, text: str) -> list[int]:
        """Strict encode: raises :class:`VocabError` naming every unknown character."""
        unknown = self.unknown_chars(text)
        if unknown:
            raise VocabError(
                f"text has {len(unknown)} character(s) not in the model's vocabulary: "
                f"{describe_chars(unknown)}; remove them or let them be dropped",
                unknown,
            )
        stoi = self._stoi  # type: ignore[attr-defined]
        return [stoi[ch] for ch in text]

    def encode_lenient(self, text: str) -> tuple[list[int], str]:
        """Lenient encode: drops unknown characters and returns ``(ids, dropped)``."""
        stoi = self._stoi  # type: ignore[attr-defined]
        ids = [stoi[ch] for ch in text if ch in stoi]
        return ids, self.unknown_chars(text) if len(ids) != len(text) else ""

    def decode(self, ids: "list[int] | torch.Tensor") -> str:
        if not isinstance(ids, list):
            ids = ids.tolist()
        chars = self.chars
        return "".join(chars[i] for i in ids)

    def encode_tensor(self, text: str) -> "torch.Tensor":
        """Encode a whole corpus into the smallest integer dtype that holds it.

        ``str.translate`` maps every character to its id in C; the ids then travel as
        bytes (latin-1) or UTF-32 words, so a 100 MB corpus never becomes a list of
        100 million Python ints. Every character must be in the vocabulary: callers
        check with ``set(text)`` first (see ``core.data``), which is cheap in C.
        """
        import torch

        table = {ord(ch): i for i, ch in enumerate(self.chars)}
        mapped = text.translate(table)
        if self.size <= 256:
            return torch.frombuffer(bytearray(mapped.encode("latin-1")), dtype=torch.uint8)
        # surrogatepass: ids 0xD800-0xDFFF (vocabularies over 55,296 symbols) are lone
        # surrogates once mapped to code points; strict UTF-32 would refuse them.
        words = torch.frombuffer(bytearray(mapped.encode("utf-32-le", "surrogatepass")), dtype=torch.int32)
        return words.to(torch.int16) if self.size <= 32767 else words

    @property
    def newline_id(self) -> int:
        """Where generation starts from an empty prompt: '\\n' as in the lab, else id 0."""
        return self._stoi.get("\n", 0)  # type: ignore[attr-defined]

    def to_dict(self) -> dict[str, Any]:
        return {"chars": list(self.chars)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CharVocab":
        chars = d.get("chars")
        if not isinstance(chars, list) or not all(isinstance(c, str) and len(c) == 1 for c in chars):
            raise VocabError("vocabulary is malformed: expected a list of single characters")
        if len(set(chars)) != len(chars):
            raise VocabError("vocabulary is malformed: a character appears twice")
        return cls(tuple(chars))
