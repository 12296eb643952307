"""CharVocab: the lab's sorted(set(text)), strict and lenient encoding, compact tensors."""

from __future__ import annotations

import pytest
import torch

from core.errors import VocabError
from core.vocab import CharVocab, describe_chars


def test_from_text_is_the_labs_sorted_unique_characters(corpus_text):
    vocab = CharVocab.from_text(corpus_text)
    assert list(vocab.chars) == sorted(set(corpus_text))
    assert vocab.size == len(vocab) == len(set(corpus_text))
    assert "K" in vocab and "\n" in vocab and "@" not in vocab


def test_round_trip_from_list_and_tensor(corpus_text):
    vocab = CharVocab.from_text(corpus_text)
    ids = vocab.encode(corpus_text)
    assert ids[:3] == [vocab.chars.index(ch) for ch in corpus_text[:3]]
    assert vocab.decode(ids) == corpus_text
    assert vocab.decode(torch.tensor(ids)) == corpus_text


def test_strict_encode_names_every_unknown_character_in_order_of_use():
    vocab = CharVocab.from_text("abc \n")
    with pytest.raises(VocabError) as err:
        vocab.encode("a é bz é\t")
    assert err.value.unknown == "éz\t"
    message = str(err.value)
    assert "3 character(s)" in message and "'é'" in message and "'z'" in message and "'\\t'" in message
    assert "\n" not in message  # one line


def test_lenient_encode_drops_and_reports_unknown_characters():
    vocab = CharVocab.from_text("abc ")
    ids, dropped = vocab.encode_lenient("a?b!c?")
    assert vocab.decode(ids) == "abc"
    assert dropped == "?!"
    assert vocab.encode_lenient("cab") == (vocab.encode("cab"), "")


def test_describe_chars_caps_long_lists():
    assert describe_chars("ab") == "'a', 'b'"
    assert describe_chars("abcdef", limit=2) == "'a', 'b' and 4 more"


def test_newline_id_is_where_an_empty_prompt_starts():
    assert CharVocab.from_text("b\na").newline_id == 0  # '\n' sorts first
    assert CharVocab.from_text("xyz\n").newline_id == 0
    assert CharVocab.from_text("xy").newline_id == 0  # no newline: id 0
    assert CharVocab(("\t", "\n", "a")).newline_id == 1  # tab sorts before newline


@pytest.mark.parametrize("n_symbols, dtype", [(65, torch.uint8), (256, torch.uint8), (257, torch.int16),
                                              (32767, torch.int16), (32768, torch.int32), (60000, torch.int32)])
def test_encode_tensor_uses_the_smallest_dtype_and_matches_encode(n_symbols, dtype):
    # 60000 symbols puts ids 0xD800..0xDFFF (surrogate code points) through the UTF-32 path.
    vocab = CharVocab(tuple(chr(0x4E00 + i) if i >= 128 else chr(i) for i in range(n_symbols)))
    text = "".join(vocab.chars[i] for i in [0, n_symbols - 1, 1, 0xD800 % n_symbols, n_symbols // 2, 255 % n_symbols])
    ids = vocab.encode_tensor(text)
    assert ids.dtype == dtype
    assert ids.tolist() == vocab.encode(text)


def test_serialization_round_trip_and_malformed_input():
    vocab = CharVocab.from_text("hello, world\n")
    assert CharVocab.from_dict(vocab.to_dict()) == vocab
    for bad in ({}, {"chars": "abc"}, {"chars": ["ab"]}, {"chars": [1, 2]}, {"chars": ["a", "b", "a"]}):
        with pytest.raises(VocabError, match="malformed"):
            CharVocab.from_dict(bad)
