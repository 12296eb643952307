"""Checking plain data read from a file against what the code expects.

A checkpoint's metadata is data, not code: it may hold anything a pickle of plain
values can. Each value is checked once, when the file is read, so a wrong one is a
single line naming its field (``train.config.block_size must be an integer >= 1, got
0``) rather than a TypeError deep inside ``eval`` or ``--resume``. Fields a schema does
not name are kept as they are: newer versions may add some.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Callable, Union

from .errors import ConfigError

Check = Callable[[Any, str], None]  # raises SchemaError naming the field, or returns


class SchemaError(ConfigError):
    """A value of the wrong type or out of range; the message names its field."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def fail(field: str, expected: str, value: Any) -> typing.NoReturn:
    raise SchemaError(f"{field} must be {expected}, got {_show(value)}")


def integer(low: int | None = None) -> Check:
    def check(value: Any, field: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or (low is not None and value < low):
            fail(field, "an integer" + (f" >= {low}" if low is not None else ""), value)
    return check


def number(low: float | None = None, finite: bool = True) -> Check:
    def check(value: Any, field: str) -> None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and finite and not math.isfinite(value):
            ok = False
        if ok and low is not None and not value >= low:
            ok = False
        if not ok:
            fail(field, ("a finite number" if finite else "a number") + (f" >= {low:g}" if low is not None else ""),
                 value)
    return check


def text(value: Any, field: str) -> None:
    if not isinstance(value, str):
        fail(field, "a string", value)


def optional(inner: Check) -> Check:
    def check(value: Any, field: str) -> None:
        if value is not None:
            inner(value, field)
    return check


def list_of(item: Check) -> Check:
    def check(value: Any, field: str) -> None:
        if not isinstance(value, list):
            fail(field, "a list", value)
        for i, v in enumerate(value):
            item(v, f"{field}[{i}]")
    return check


def mapping(fields: dict[str, Check] | None = None, values: Check | None = None) -> Check:
    """A dict; the named ``fields`` are checked where present, and every value by
    ``values`` when given."""
    def check(value: Any, field: str) -> None:
        if not isinstance(value, dict):
            fail(field, "a dict", value)
        for key, inner in (fields or {}).items():
            if key in value:
                inner(value[key], f"{field}.{key}")
        if values is not None:
            for key, v in value.items():
                values(v, f"{field}.{key}")
    return check


def dataclass_kwargs(cls: type, d: Any, field: str) -> dict[str, Any]:
    """The fields of dataclass ``cls`` found in ``d``, each checked against its type
    annotation (int, float, bool, str, or one of them | None). Keys ``cls`` lacks are
    left out: a file from a newer version may carry more."""
    if not isinstance(d, dict):
        fail(field, "a dict", d)
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in d:
            _annotation_check(hints[f.name])(d[f.name], f"{field}.{f.name}")
            kwargs[f.name] = d[f.name]
    return kwargs


def _annotation_check(annotation: Any) -> Check:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        inner = _annotation_check(args[0]) if len(args) == 1 else (lambda value, field: None)
        return optional(inner) if len(args) < len(typing.get_args(annotation)) else inner
    if annotation is bool:
        return lambda value, field: None if isinstance(value, bool) else fail(field, "true or false", value)
    if annotation is int:
        return integer()
    if annotation is float:
        return number()
    if annotation is str:
        return text
    return lambda value, field: None  # a type this checker does not know: left to the class
